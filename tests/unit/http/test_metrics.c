// SPDX-License-Identifier: Apache-2.0
/*
 * agent/http/metrics: counter lines as Prometheus text (window counters
 * summed across windows, totals and gauges as last read, labelled
 * families under one HELP and TYPE, seconds from nanoseconds), and every
 * table the daemon has names valid, distinct families.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http/http_endpoint.h"
#include "agent/http/metrics.h"
#include "agent/python/python_code.h"
#include "agent/report.h"
#include "agent/sampling/sampler_counters.h"
#include "tests/unit/testing.h"

struct stats {
	uint64_t samples; /* per window */
	uint64_t loaded; /* now */
	uint64_t evicted; /* since start */
	uint64_t build_ns; /* per window */
	uint64_t cut_depth, cut_no_cfi; /* per window */
};

#define STAT(field) COUNTER_FIELD(0, struct stats, field)
#define CUT(reason)                                                                                \
	.name = "kiln_test_cut_total", .labels = "reason=\"" reason "\"",                          \
	.help = "Stacks cut, by reason\\n\nsecond line"

static const struct counter counters[] = {
	{ .name = "kiln_test_samples_total",
	  .help = "Samples",
	  STAT(samples),
	  .kind = COUNTER_WINDOW,
	  .text = "% samples" },
	{ .name = "kiln_test_loaded",
	  .help = "Loaded now",
	  STAT(loaded),
	  .kind = COUNTER_GAUGE,
	  .text = "% loaded" },
	{ .name = "kiln_test_evicted_total",
	  .help = "Evicted",
	  STAT(evicted),
	  .kind = COUNTER_TOTAL,
	  .text = "% evicted" },
	{ .name = "kiln_test_build_seconds_total",
	  .help = "Build time",
	  STAT(build_ns),
	  .kind = COUNTER_WINDOW,
	  .unit = COUNTER_UNIT_NS,
	  .text = "in % ns" },
	{ CUT("depth"), STAT(cut_depth), .kind = COUNTER_WINDOW, .text = "depth %" },
};

/* Another line with a member of the same family: one family still. */
static const struct counter more_counters[] = {
	{ CUT("no_cfi"), STAT(cut_no_cfi), .kind = COUNTER_WINDOW, .text = "no CFI %" },
};

static const struct counter_line line = {
	.prefix = "test",
	.counters = counters,
	.count = COUNTER_COUNT_OF(counters),
};
static const struct counter_line more_line = {
	.prefix = "more",
	.counters = more_counters,
	.count = COUNTER_COUNT_OF(more_counters),
};

static char *render(struct metrics *metrics)
{
	size_t length = 0;
	char *text = metrics__render(metrics, &length);

	CHECK(text && strlen(text) == length);
	return text;
}

static size_t occurrences(const char *text, const char *what)
{
	size_t count = 0;

	for (const char *at = text; (at = strstr(at, what)); at += strlen(what))
		count++;
	return count;
}

static void test_empty(void)
{
	struct metrics *metrics = metrics__new();
	char *text = render(metrics);

	CHECK_STR(text, "");
	free(text);
	metrics__free(metrics);
	metrics__free(NULL);
}

static void test_two_windows(void)
{
	struct metrics *metrics = metrics__new();
	struct stats first = { .samples = 10,
			       .loaded = 3,
			       .evicted = 2,
			       .build_ns = 1500000000,
			       .cut_depth = 1,
			       .cut_no_cfi = 4 };
	struct stats second = { .samples = 5,
				.loaded = 1,
				.evicted = 7,
				.build_ns = 2000000001,
				.cut_depth = 0,
				.cut_no_cfi = 2 };
	const void *sources[] = { &first };
	char *text;

	CHECK(metrics__record(metrics, &line, sources) == 0);
	CHECK(metrics__record(metrics, &more_line, sources) == 0);
	sources[0] = &second;
	CHECK(metrics__record(metrics, &line, sources) == 0);
	CHECK(metrics__record(metrics, &more_line, sources) == 0);
	text = render(metrics);
	/* Families in name order; a labelled family's members in the order first recorded. */
	CHECK_STR(text, "# HELP kiln_test_build_seconds_total Build time\n"
			"# TYPE kiln_test_build_seconds_total counter\n"
			"kiln_test_build_seconds_total 3.500000001\n"
			"# HELP kiln_test_cut_total Stacks cut, by reason\\\\n\\nsecond line\n"
			"# TYPE kiln_test_cut_total counter\n"
			"kiln_test_cut_total{reason=\"depth\"} 1\n"
			"kiln_test_cut_total{reason=\"no_cfi\"} 6\n"
			"# HELP kiln_test_evicted_total Evicted\n"
			"# TYPE kiln_test_evicted_total counter\n"
			"kiln_test_evicted_total 7\n"
			"# HELP kiln_test_loaded Loaded now\n"
			"# TYPE kiln_test_loaded gauge\n"
			"kiln_test_loaded 1\n"
			"# HELP kiln_test_samples_total Samples\n"
			"# TYPE kiln_test_samples_total counter\n"
			"kiln_test_samples_total 15\n");
	free(text);
	metrics__free(metrics);
}

static void test_names_and_labels(void)
{
	CHECK(metrics_name_valid("kiln_a:b_1"));
	CHECK(metrics_name_valid("_x"));
	CHECK(!metrics_name_valid(""));
	CHECK(!metrics_name_valid(NULL));
	CHECK(!metrics_name_valid("1kiln"));
	CHECK(!metrics_name_valid("kiln-x"));
	CHECK(!metrics_name_valid("kiln x"));
	CHECK(metrics_labels_valid("reason=\"no_cfi\""));
	CHECK(metrics_labels_valid("a=\"\",b=\"x \\\" \\\\ \\n y\""));
	CHECK(!metrics_labels_valid(""));
	CHECK(!metrics_labels_valid("a=\"x\","));
	CHECK(!metrics_labels_valid("a=x"));
	CHECK(!metrics_labels_valid("a:b=\"x\""));
	CHECK(!metrics_labels_valid("__a=\"x\""));
	CHECK(!metrics_labels_valid("a=\"x"));
	CHECK(!metrics_labels_valid("a=\"x\\\""));
	CHECK(!metrics_labels_valid("a=\"x\ny\""));
	CHECK(!metrics_labels_valid("a=\"x\\q\""));
	CHECK(!metrics_labels_valid("a=\"x\" b=\"y\""));
}

/* Every table the daemon logs, and what the endpoint reads itself. */
static const struct {
	const struct counter_line *lines;
	const unsigned int *count;
} tables[] = {
	{ cpu_counter_lines, &cpu_counter_line_count },
	{ offcpu_counter_lines, &offcpu_counter_line_count },
	{ report_window_lines, &report_window_line_count },
	{ &report_unwind_tables_line, NULL },
	{ &report_debuginfod_line, NULL },
	{ report_uploads_lines, &report_uploads_line_count },
	{ &python_code_counter_line, NULL },
	{ &http_process_counter_line, NULL },
};

#define MAX_COUNTERS 1024

static unsigned int all_counters(const struct counter **ret_counters)
{
	unsigned int count = 0;

	for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
		for (unsigned int i = 0; i < (tables[t].count ? *tables[t].count : 1); i++)
			for (unsigned int j = 0; j < tables[t].lines[i].count; j++)
				if (count < MAX_COUNTERS)
					ret_counters[count++] = &tables[t].lines[i].counters[j];
	return count;
}

/* Prometheus' conventions: counters end _total, times are in seconds, sizes in bytes. */
static void check_counter(const struct counter *counter)
{
	const char *name = counter->name;
	size_t length = strlen(name);
	bool total = counter->kind != COUNTER_GAUGE;

	if (!metrics_name_valid(name) || strncmp(name, "kiln_", 5) ||
	    (counter->labels && !metrics_labels_valid(counter->labels))) {
		fprintf(stderr, "bad name or labels: %s{%s}\n", name,
			counter->labels ? counter->labels : "");
		CHECK(!"a valid kiln_ name and labels");
	}
	CHECK(counter->help && counter->help[0] && !strchr(counter->help, '\n'));
	CHECK(strchr(counter->text, '%') != NULL);
	if (total != (length > 6 && !strcmp(name + length - 6, "_total")))
		fprintf(stderr, "%s: _total if and only if a counter\n", name);
	CHECK(total == (length > 6 && !strcmp(name + length - 6, "_total")));
	CHECK(counter->unit != COUNTER_UNIT_NS || strstr(name, "_seconds"));
	CHECK(counter->unit != COUNTER_UNIT_BYTES || strstr(name, "_bytes"));
}

/* Names once per family; members of one agree on help, type and unit, and differ in labels. */
static void check_pair(const struct counter *a, const struct counter *b)
{
	if (strcmp(a->name, b->name))
		return;
	if (!a->labels || !b->labels || !strcmp(a->labels, b->labels) || strcmp(a->help, b->help) ||
	    (a->kind == COUNTER_GAUGE) != (b->kind == COUNTER_GAUGE) || a->unit != b->unit) {
		fprintf(stderr, "%s{%s} and %s{%s} collide\n", a->name, a->labels ?: "", b->name,
			b->labels ?: "");
		CHECK(!"two counters of one name are members of one family");
	}
}

static void test_every_table(void)
{
	static const struct counter *counters[MAX_COUNTERS];
	unsigned int count = all_counters(counters);

	CHECK(count > 150 && count < MAX_COUNTERS);
	for (unsigned int i = 0; i < count; i++) {
		check_counter(counters[i]);
		for (unsigned int j = i + 1; j < count; j++)
			check_pair(counters[i], counters[j]);
	}
}

/* Rendering every table gives each family one HELP and one TYPE, and parseable lines. */
static void test_every_table_renders(void)
{
	static uint64_t zeros[4096];
	const void *sources[8];
	struct metrics *metrics = metrics__new();
	char *text, *saveptr = NULL;
	unsigned int samples = 0;

	for (size_t i = 0; i < ARRAY_SIZE(sources); i++)
		sources[i] = zeros;
	for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
		for (unsigned int i = 0; i < (tables[t].count ? *tables[t].count : 1); i++)
			CHECK(metrics__record(metrics, &tables[t].lines[i], sources) == 0);
	text = render(metrics);
	for (char *row = strtok_r(text, "\n", &saveptr); row;
	     row = strtok_r(NULL, "\n", &saveptr)) {
		char name[128], help_or_type[8];
		const char *value;

		if (sscanf(row, "# %7s %127s", help_or_type, name) == 2) {
			char header[160];

			snprintf(header, sizeof(header), "# %s %s ", help_or_type, name);
			/* strtok_r cut the text after this row: count in what is left. */
			CHECK(!occurrences(row + strlen(row) + 1, header));
			continue;
		}
		value = strrchr(row, ' ');
		CHECK(row[0] != '#' && value &&
		      (!strcmp(value, " 0") || !strcmp(value, " 0.000000000")));
		samples++;
	}
	CHECK(samples > 150);
	free(text);
	metrics__free(metrics);
}

TEST_MAIN("metrics", TEST(test_empty), TEST(test_two_windows), TEST(test_names_and_labels),
	  TEST(test_every_table), TEST(test_every_table_renders))
