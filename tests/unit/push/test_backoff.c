// SPDX-License-Identifier: Apache-2.0
/* Retry delays: doubling, capped, jittered within [half, full]. */
#include <errno.h>
#include <stdint.h>

#include "agent/push/backoff.h"
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

TEST_MAIN("backoff", TEST(test_doubles_then_caps), TEST(test_jitter_spreads))
