// SPDX-License-Identifier: Apache-2.0
/* Counter lines to Prometheus text: running totals of window counters, families by name. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http/metrics.h"
#include "lib/array.h"
#include "lib/hashmap.h"

struct metric {
	const struct counter *counter;
	uint64_t value;
};

struct metrics {
	struct metric *metrics; /* in the order first recorded */
	size_t count, capacity;
	struct hashmap *index; /* const struct counter * -> its index in metrics, plus one */
};

struct metrics *metrics__new(void)
{
	struct metrics *metrics = calloc(1, sizeof(*metrics));

	if (!metrics)
		return NULL;
	metrics->index = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!metrics->index) {
		free(metrics);
		errno = ENOMEM;
		return NULL;
	}
	return metrics;
}

void metrics__free(struct metrics *metrics)
{
	if (!metrics)
		return;
	hashmap__free(metrics->index);
	free(metrics->metrics);
	free(metrics);
}

/* The counter's slot, made on its first value. NULL: no memory. */
static struct metric *find_or_add(struct metrics *metrics, const struct counter *counter)
{
	void *slot;

	if (hashmap__find(metrics->index, (uintptr_t)counter, &slot))
		return &metrics->metrics[(uintptr_t)slot - 1];
	if (ARRAY_RESERVE_ONE(metrics->metrics, metrics->count, metrics->capacity, 64))
		return NULL;
	if (hashmap__set(metrics->index, (uintptr_t)counter,
			 (void *)(uintptr_t)(metrics->count + 1), NULL, NULL))
		return NULL;
	metrics->metrics[metrics->count] = (struct metric){ .counter = counter };
	return &metrics->metrics[metrics->count++];
}

int metrics__record(struct metrics *metrics, const struct counter_line *line,
		    const void *const *sources)
{
	for (unsigned int i = 0; i < line->count; i++) {
		const struct counter *counter = &line->counters[i];
		struct metric *metric = find_or_add(metrics, counter);
		uint64_t value = counter__value(counter, sources);

		if (!metric)
			return -ENOMEM;
		metric->value = counter->kind == COUNTER_WINDOW ? metric->value + value : value;
	}
	return 0;
}

/* HELP text escapes backslashes and line breaks, as the format requires. */
static void write_help(FILE *out, const char *help)
{
	for (const char *c = help; *c; c++) {
		if (*c == '\\')
			fputs("\\\\", out);
		else if (*c == '\n')
			fputs("\\n", out);
		else
			fputc(*c, out);
	}
}

/* Nanoseconds as exact decimal seconds: a double would round large totals. */
static void write_value(FILE *out, const struct counter *counter, uint64_t value)
{
	if (counter->unit == COUNTER_UNIT_NS)
		fprintf(out, "%" PRIu64 ".%09" PRIu64, value / 1000000000, value % 1000000000);
	else
		fprintf(out, "%" PRIu64, value);
}

/* By name, then as first recorded: a family's members stay together and in table order. */
static int compare_metrics(const void *a, const void *b)
{
	const struct metric *const *x = a, *const *y = b;
	int by_name = strcmp((*x)->counter->name, (*y)->counter->name);

	return by_name ? by_name : (*x > *y) - (*x < *y);
}

char *metrics__render(const struct metrics *metrics, size_t *ret_length)
{
	const struct metric **sorted = calloc(metrics->count ?: 1, sizeof(*sorted));
	char *text = NULL;
	size_t length = 0;
	FILE *out;

	if (!sorted)
		return NULL;
	out = open_memstream(&text, &length);
	if (!out) {
		free(sorted);
		return NULL;
	}
	for (size_t i = 0; i < metrics->count; i++)
		sorted[i] = &metrics->metrics[i];
	qsort(sorted, metrics->count, sizeof(*sorted), compare_metrics);
	for (size_t i = 0; i < metrics->count; i++) {
		const struct counter *counter = sorted[i]->counter;

		if (!i || strcmp(sorted[i - 1]->counter->name, counter->name)) {
			fprintf(out, "# HELP %s ", counter->name);
			write_help(out, counter->help);
			fprintf(out, "\n# TYPE %s %s\n", counter->name,
				counter->kind == COUNTER_GAUGE ? "gauge" : "counter");
		}
		fputs(counter->name, out);
		if (counter->labels)
			fprintf(out, "{%s}", counter->labels);
		fputc(' ', out);
		write_value(out, counter, sorted[i]->value);
		fputc('\n', out);
	}
	free(sorted);
	/* open_memstream's buffer is complete, and NUL-terminated, once closed. */
	if (fclose(out) || !text) {
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	*ret_length = length;
	return text;
}

static bool is_name_char(char c, bool first, bool colon_ok)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (colon_ok && c == ':') || (!first && c >= '0' && c <= '9');
}

/* [a-zA-Z_:][a-zA-Z0-9_:]*, or for a label name the same without ':'; the length taken. */
static size_t name_length(const char *text, bool colon_ok)
{
	size_t length = 0;

	while (is_name_char(text[length], !length, colon_ok))
		length++;
	return length;
}

bool metrics_name_valid(const char *name)
{
	size_t length = name ? name_length(name, true) : 0;

	return length && !name[length];
}

bool metrics_labels_valid(const char *labels)
{
	const char *c = labels;

	if (!c || !*c)
		return false;
	for (;;) {
		size_t length = name_length(c, false);

		/* Label names starting "__" are Prometheus' own. */
		if (!length || !strncmp(c, "__", 2) || c[length] != '=' || c[length + 1] != '"')
			return false;
		for (c += length + 2; *c != '"'; c++)
			if (!*c || *c == '\n' || (*c == '\\' && (!c[1] || !strchr("\\\"n", *++c))))
				return false;
		if (!*++c)
			return true;
		if (*c++ != ',')
			return false;
	}
}
