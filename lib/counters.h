/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters as data: a table names each counter once (metric name, help,
 * where its value lives, how it reads in a log line), lines group them,
 * and the log text (and any metrics endpoint) is generated from that.
 */
#ifndef KILN_COUNTERS_H
#define KILN_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

enum counter_kind {
	COUNTER_TOTAL, /* the source holds the total since start */
	COUNTER_WINDOW, /* the source holds the increase during this window */
	COUNTER_GAUGE, /* the source holds a current level */
};

/* What the value counts; metric names end to match (_total, _seconds_total, _bytes). */
enum counter_unit {
	COUNTER_UNIT_COUNT,
	COUNTER_UNIT_NS,
	COUNTER_UNIT_BYTES,
};

/* How the value reads in a log line. */
enum counter_shown {
	COUNTER_SHOWN_AS_IS,
	COUNTER_SHOWN_SECONDS, /* nanoseconds as "%.3f" seconds */
	COUNTER_SHOWN_MILLISECONDS, /* nanoseconds as whole milliseconds */
	COUNTER_SHOWN_MIB, /* bytes as whole MiB */
};

/* What precedes a counter's text in its line (the first counter has nothing). */
enum counter_join {
	COUNTER_JOIN_COMMA, /* ", " */
	COUNTER_JOIN_CLAUSE, /* "; " */
	COUNTER_JOIN_SPACE, /* " ": a detail of the counter before, "N rows in M bytes" */
};

struct counter {
	const char *name; /* metric name: kiln_cpu_samples_total */
	/*
	 * NULL, or this counter's labels within its family: counters that
	 * are reasons of one thing share a name and differ here
	 * ("reason=\"no_cfi\""); each keeps its own words in the log line.
	 */
	const char *labels;
	const char *help; /* one line, for a metrics endpoint: the family's, when labelled */
	uint8_t source; /* index into the sources the line is given */
	uint32_t offset; /* of its uint64_t in that source */
	enum counter_kind kind;
	enum counter_unit unit;
	enum counter_shown shown;
	enum counter_join join;
	const char *text; /* its part of the log line, '%' where the value goes: "% samples" */
	bool alarm; /* its rise (or, per window, any value) is worth a warning */
};

/* Counters that read as one log line: "prefix: 12 samples, 3 stacks". */
struct counter_line {
	const char *prefix; /* NULL: the caller gives one */
	const struct counter *counters;
	unsigned int count;
	enum log_level level; /* a warning instead when an alarm counter rose */
	bool only_on_alarm; /* silent unless an alarm counter rose */
	bool alarm_keeps_level; /* an alarm shows the line, at its level, not as a warning */
	const char *alarm_note; /* a further line when it alarms; '%': the first alarm's rise */
};

/* Where a counter's value lives: a struct's field, or an element of a uint64_t array. */
#define COUNTER_FIELD(source_index, type, field)                                                   \
	.source = (source_index), .offset = offsetof(type, field)
#define COUNTER_ELEMENT(source_index, index)                                                       \
	.source = (source_index), .offset = (index) * sizeof(uint64_t)

#define COUNTER_COUNT_OF(array) ((unsigned int)(sizeof(array) / sizeof((array)[0])))

/* A counter's current value in the sources its line is given. */
uint64_t counter__value(const struct counter *counter, const void *const *sources);

/*
 * Writes a line's text: prefix (the line's, else the given one), ": ",
 * each counter's text with its value, then suffix (may be NULL). Returns
 * the length it needed, as snprintf does; text is cut to fit size.
 */
int counter_line__format(const struct counter_line *line, const void *const *sources,
			 const char *prefix, const char *suffix, char *buf, size_t size);

/* Writes text with every '%' replaced by value. Returns the length needed, as snprintf. */
int counter_text__format(const char *text, const char *value, char *buf, size_t size);

#endif /* KILN_COUNTERS_H */
