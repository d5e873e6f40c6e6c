// SPDX-License-Identifier: Apache-2.0
/* Counter lines to text: values in their words, joins, units shown, cut to the buffer. */
#include <stdint.h>

#include "lib/counters.h"
#include "tests/unit/testing.h"

struct blocks {
	uint64_t count;
	uint64_t blocked_ns;
	uint64_t memory;
};

static const uint64_t window_stats[] = { 7, 0, 42 };

static const struct counter counters[] = {
	{ .name = "kiln_test_samples_total",
	  COUNTER_ELEMENT(0, 2),
	  .kind = COUNTER_WINDOW,
	  .text = "% samples" },
	{ .name = "kiln_test_blocks_total",
	  COUNTER_FIELD(1, struct blocks, count),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "all blocks: %" },
	{ .name = "kiln_test_blocked_seconds_total",
	  COUNTER_FIELD(1, struct blocks, blocked_ns),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_SECONDS,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% s)" },
	{ .name = "kiln_test_build_seconds_total",
	  COUNTER_FIELD(1, struct blocks, blocked_ns),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_MILLISECONDS,
	  .text = "built in % ms" },
	{ .name = "kiln_test_memory_bytes",
	  COUNTER_FIELD(1, struct blocks, memory),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .text = "% MiB held" },
	{ .name = "kiln_test_first_total",
	  COUNTER_ELEMENT(0, 0),
	  .text = "stack failures % kernel" },
	{ .name = "kiln_test_second_total",
	  COUNTER_ELEMENT(0, 1),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "/ % user" },
};

static const struct counter_line line = {
	.prefix = "test",
	.counters = counters,
	.count = COUNTER_COUNT_OF(counters),
};

static const struct blocks blocks = { 3, 1500000000, 12 << 20 | 5 };

static void test_values_from_sources(void)
{
	const void *sources[] = { window_stats, &blocks };

	CHECK(counter__value(&counters[0], sources) == 42);
	CHECK(counter__value(&counters[1], sources) == 3);
	CHECK(counter__value(&counters[2], sources) == 1500000000);
}

static void test_line_text(void)
{
	const void *sources[] = { window_stats, &blocks };
	char text[256];
	int length = counter_line__format(&line, sources, "unused", NULL, text, sizeof(text));

	CHECK_STR(text, "test: 42 samples; all blocks: 3 (1.500 s), built in 1500 ms, 12 MiB held, "
			"stack failures 7 kernel / 0 user");
	CHECK(length == (int)strlen(text));
}

static void test_caller_prefix_and_suffix(void)
{
	const struct counter_line unnamed = { .counters = counters, .count = 1 };
	const void *sources[] = { window_stats, &blocks };
	char text[128];

	counter_line__format(&unnamed, sources, "wrote cpu.pb.gz", "; last failure: gone", text,
			     sizeof(text));
	CHECK_STR(text, "wrote cpu.pb.gz: 42 samples; last failure: gone");
}

static void test_cut_to_the_buffer(void)
{
	const void *sources[] = { window_stats, &blocks };
	char whole[256], small[12];
	int needed = counter_line__format(&line, sources, NULL, NULL, whole, sizeof(whole));

	CHECK(counter_line__format(&line, sources, NULL, NULL, small, sizeof(small)) == needed);
	CHECK_STR(small, "test: 42 sa");
	CHECK(counter_text__format("% of %", "12", small, 5) == 8);
	CHECK_STR(small, "12 o");
}

TEST_MAIN("counters", TEST(test_values_from_sources), TEST(test_line_text),
	  TEST(test_caller_prefix_and_suffix), TEST(test_cut_to_the_buffer))
