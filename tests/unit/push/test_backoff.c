// SPDX-License-Identifier: Apache-2.0
/* Retry delays: doubling, capped, jittered within [half, full]; spool labels round trip. */
#include <errno.h>
#include <stdint.h>

#include "agent/push/backoff.h"
#include "agent/push/remote.h"
#include "tests/unit/testing.h"

static void test_doubles_then_caps(void)
{
	const struct backoff_policy policy = { .initial_ms = 500, .max_ms = 30000 };
	/* random 0 gives the least delay, half the backoff; random = backoff/2 the most. */
	const uint64_t expected[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 };

	for (unsigned int attempt = 1; attempt <= 8; attempt++) {
		uint64_t full = expected[attempt - 1];

		CHECK(backoff_delay_ms(&policy, attempt, 0) == full - full / 2);
		CHECK(backoff_delay_ms(&policy, attempt, full / 2) == full);
	}
	/* No overflow however long the outage. */
	CHECK(backoff_delay_ms(&policy, 1000000, UINT64_MAX) <= 30000);
	CHECK(backoff_delay_ms(&policy, 1000000, UINT64_MAX) >= 15000);
}

static void test_jitter_spreads(void)
{
	const struct backoff_policy policy = { .initial_ms = 1000, .max_ms = 1000 };
	uint64_t state = 42, low = UINT64_MAX, high = 0;

	for (int i = 0; i < 10000; i++) {
		uint64_t delay = backoff_delay_ms(&policy, 3, backoff_random(&state));

		CHECK(delay >= 500 && delay <= 1000);
		low = delay < low ? delay : low;
		high = delay > high ? delay : high;
	}
	/* Agents that failed together spread over the whole range. */
	CHECK(low < 520 && high > 980);
}

static void test_profile_labels_round_trip(void)
{
	struct remote_profile in = {
		.off_cpu = true,
		.pid = 4242,
		.comm = "web worker\n=1",
		.service_name = "checkout",
		.hostname = "node-7.example",
		.start_ns = 1795281900123456789LL,
		.duration_ns = 10000000000LL,
	}, out;
	char text[1024];

	CHECK(remote_profile__format(&in, text, sizeof(text)) == 0);
	CHECK(remote_profile__parse(text, &out) == 0);
	CHECK(out.off_cpu && out.pid == 4242 && out.start_ns == in.start_ns &&
	      out.duration_ns == in.duration_ns);
	/* Kept on one line: control characters and spaces become '_'. */
	CHECK_STR(out.comm, "web_worker_=1");
	CHECK_STR(out.service_name, "checkout");
	CHECK_STR(out.hostname, "node-7.example");
	CHECK(remote_profile__parse("kind=cpu\npid=1\n", &out) == -EINVAL);
	CHECK(remote_profile__parse("garbage", &out) == -EINVAL);
}

static void test_sanitize(void)
{
	char out[16];

	remote_sanitize("a,b{c}d=e", ",{}=", out, sizeof(out));
	CHECK_STR(out, "a_b_c_d_e");
	remote_sanitize("\xc3\xa9t\xe9", "", out, sizeof(out));
	CHECK_STR(out, "__t_");
	remote_sanitize("", "", out, sizeof(out));
	CHECK_STR(out, "unknown");
	remote_sanitize("0123456789abcdefghij", "", out, sizeof(out));
	CHECK_STR(out, "0123456789abcde");
}

TEST_MAIN("backoff", TEST(test_doubles_then_caps), TEST(test_jitter_spreads),
	  TEST(test_profile_labels_round_trip), TEST(test_sanitize))
