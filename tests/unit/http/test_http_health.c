// SPDX-License-Identifier: Apache-2.0
/* agent/http: what /healthz answers, from loading through late and failed windows. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agent/http/http_endpoint.h"
#include "tests/unit/testing.h"

#define S 1000000000ULL
#define WINDOW (10 * S)

static char text[128];

static unsigned int describe(const struct http_health *health, uint64_t now)
{
	return http_health_describe(health, now, WINDOW, text, sizeof(text));
}

static void test_before_the_first_window(void)
{
	struct http_health health = {};

	CHECK(describe(&health, 100 * S) == 503);
	CHECK_STR(text, "BPF programs not attached\n");
	health.attached = true;
	health.attached_ns = 100 * S;
	CHECK(describe(&health, 107 * S) == 503);
	CHECK_STR(text, "no window written yet (attached 7 s ago)\n");
}

static void test_written_then_late(void)
{
	struct http_health health = {
		.attached = true,
		.attached_ns = 100 * S,
		.windows_written = 1,
		.last_window_ns = 110 * S,
	};

	CHECK(describe(&health, 111 * S) == 200);
	CHECK_STR(text, "ok\n");
	/* Two windows and the slack after the last one: still on time. */
	CHECK(describe(&health, 110 * S + 2 * WINDOW + HTTP_HEALTH_SLACK_NS) == 200);
	CHECK(describe(&health, 110 * S + 2 * WINDOW + HTTP_HEALTH_SLACK_NS + 1) == 503);
	CHECK_STR(text, "last window is 15 s late\n");
	CHECK(describe(&health, 110 * S + 60 * S) == 503);
	CHECK_STR(text, "last window is 50 s late\n");
}

static void test_failed_window(void)
{
	struct http_health health = {
		.attached = true,
		.windows_written = 3,
		.windows_failed = 1,
		.last_error = -ENOSPC,
		.last_window_ns = 110 * S,
	};

	CHECK(describe(&health, 111 * S) == 503);
	CHECK_STR(text, "last window failed: No space left on device\n");
	health.last_error = 0;
	CHECK(describe(&health, 111 * S) == 200);
}

TEST_MAIN("http_health", TEST(test_before_the_first_window), TEST(test_written_then_late),
	  TEST(test_failed_window))
