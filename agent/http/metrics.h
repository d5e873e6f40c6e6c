/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counter lines (lib/counters.h) as Prometheus' text exposition format
 * 0.0.4: window counters summed into totals, totals and gauges as last
 * read, a family per metric name with its HELP and TYPE once.
 */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/counters.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics;

/* NULL with errno set. */
struct metrics *metrics__new(void);
/* Accepts NULL. */
void metrics__free(struct metrics *metrics);

/*
 * Takes a line's values as logged: a window counter's is added to its
 * total, a total's or gauge's replaces the last. 0 or -ENOMEM (the
 * counters taken before it keep their values).
 */
int metrics__record(struct metrics *metrics, const struct counter_line *line,
		    const void *const *sources);

/*
 * Everything recorded so far, families in name order: malloc'd text,
 * NUL-terminated, its length in *ret_length. NULL with errno set.
 */
char *metrics__render(const struct metrics *metrics, size_t *ret_length);

/* Prometheus' rules for a metric name, and for a counter's labels ('a="x",b="y"'). */
bool metrics_name_valid(const char *name);
bool metrics_labels_valid(const char *labels);

#endif /* KILN_METRICS_H */
