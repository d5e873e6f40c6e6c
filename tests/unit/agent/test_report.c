// SPDX-License-Identifier: Apache-2.0
/*
 * The reporter: lines at their level, warnings when an alarm counter rose
 * (only then, and once), alarm notes with the rise. The tables' names are
 * checked with the metrics (tests/unit/http/test_metrics.c).
 */
#include <stdint.h>
#include <unistd.h>

#include "agent/report.h"
#include "lib/log.h"
#include "tests/unit/testing.h"

struct totals {
	uint64_t evicted;
	uint64_t loaded;
};

static const struct counter counters[] = {
	{ .name = "kiln_test_loaded", COUNTER_FIELD(0, struct totals, loaded), .text = "% loaded" },
	{ .name = "kiln_test_evicted_total",
	  COUNTER_FIELD(0, struct totals, evicted),
	  .text = "% evicted",
	  .alarm = true },
};

static const struct counter_line line = {
	.prefix = "tables",
	.counters = counters,
	.count = COUNTER_COUNT_OF(counters),
	.level = LOG_DEBUG,
	.alarm_note = "% evicted this window",
};

static const struct counter_line quiet_line = {
	.prefix = "lost",
	.counters = counters,
	.count = COUNTER_COUNT_OF(counters),
	.only_on_alarm = true,
};

/* What the reporter logged while fn ran, from stderr. */
static void capture_log(void (*fn)(void *ctx), void *ctx, char *ret_text, size_t size)
{
	FILE *file = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t length;

	fflush(stderr);
	dup2(fileno(file), STDERR_FILENO);
	fn(ctx);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(file);
	length = fread(ret_text, 1, size - 1, file);
	ret_text[length] = '\0';
	fclose(file);
}

struct log_call {
	struct reporter *reporter;
	const struct counter_line *line;
	const struct totals *totals;
};

static void log_line(void *ctx)
{
	const struct log_call *call = ctx;
	const void *sources[] = { call->totals };

	reporter__log(call->reporter, call->line, sources, NULL, NULL);
}

static void test_warns_on_rise_only(void)
{
	struct reporter *reporter = reporter__new();
	struct totals totals = { .evicted = 0, .loaded = 5 };
	struct log_call call = { reporter, &line, &totals };
	char text[512];

	log_set_level(LOG_DEBUG);
	capture_log(log_line, &call, text, sizeof(text));
	CHECK_STR(text, "kiln: debug: tables: 5 loaded, 0 evicted\n");
	totals.evicted = 3;
	capture_log(log_line, &call, text, sizeof(text));
	CHECK_STR(text, "kiln: warning: tables: 5 loaded, 3 evicted\n"
			"kiln: warning: 3 evicted this window\n");
	/* Still 3: no longer news. */
	capture_log(log_line, &call, text, sizeof(text));
	CHECK_STR(text, "kiln: debug: tables: 5 loaded, 3 evicted\n");
	totals.evicted = 10;
	capture_log(log_line, &call, text, sizeof(text));
	CHECK(strstr(text, "kiln: warning: 7 evicted this window\n") != NULL);
	log_set_level(LOG_INFO);
	reporter__free(reporter);
}

static void test_only_on_alarm(void)
{
	struct reporter *reporter = reporter__new();
	struct totals totals = { .evicted = 2, .loaded = 1 };
	struct log_call call = { reporter, &quiet_line, &totals };
	const void *sources[] = { &totals };
	char text[512];

	/* Counted before: taken as reported, so silent. */
	reporter__mark_reported(reporter, &quiet_line, sources);
	capture_log(log_line, &call, text, sizeof(text));
	CHECK_STR(text, "");
	totals.evicted = 4;
	capture_log(log_line, &call, text, sizeof(text));
	CHECK_STR(text, "kiln: warning: lost: 1 loaded, 4 evicted\n");
	reporter__free(reporter);
}

TEST_MAIN("report", TEST(test_warns_on_rise_only), TEST(test_only_on_alarm))
