/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's reporter: logs counter lines (lib/counters.h) each window,
 * as warnings when a counter worth one rose since it last reported, and
 * holds the tables of the counters of the stages after sampling.
 */
#ifndef KILN_REPORT_H
#define KILN_REPORT_H

#include "agent/metadata/kubernetes.h"
#include "agent/metadata/process_labels.h"
#include "lib/counters.h"

struct reporter;

/* NULL with errno set. */
struct reporter *reporter__new(void);
void reporter__free(struct reporter *reporter);

struct metrics;
/* From now on every line logged is recorded in metrics too (NULL: no longer). */
void reporter__set_metrics(struct reporter *reporter, struct metrics *metrics);

/*
 * Logs one line: at its level, or as a warning when an alarm counter rose
 * (a window counter above 0, a total above what it was when last logged),
 * then the line's alarm note. prefix leads lines without one; suffix
 * (may be NULL) ends the line.
 */
void reporter__log(struct reporter *reporter, const struct counter_line *line,
		   const void *const *sources, const char *prefix, const char *suffix);
/* Takes the alarm counters' values now as reported: only later rises warn. */
void reporter__mark_reported(struct reporter *reporter, const struct counter_line *line,
			     const void *const *sources);
void reporter__log_lines(struct reporter *reporter, const struct counter_line *lines,
			 unsigned int count, const void *const *sources, const char *prefix);

/*
 * The stages' counters, from the sources named here (struct counter's
 * source): what the agent's table lines read.
 */
enum report_source {
	REPORT_SOURCE_PROFILE, /* struct window_profile_result, of the CPU window */
	REPORT_SOURCE_SYMBOLIZER, /* struct symbolizer_stats */
	REPORT_SOURCE_CAPTURE, /* struct process_capture_stats */
	REPORT_SOURCE_PROCESSES, /* struct process_table_stats */
	REPORT_SOURCE_UNWIND, /* struct unwind_maps_stats */
	REPORT_SOURCE_UPLOADER, /* struct uploader_stats */
	REPORT_SOURCE_LABELS, /* struct labels_report */
	REPORT_SOURCE__COUNT,
};

/* Processes' labels: the cache, the config file's reloads, the Kubernetes watch. */
struct labels_report {
	struct process_labels_stats cache;
	uint64_t config_reloads; /* SIGHUP read --config again */
	uint64_t config_reload_failures; /* ... and it did not read: the old rules stay */
	struct kubernetes_stats kubernetes;
};

/* After every CPU window: symbols, perf maps, process capture, DWARF, debug files, processes. */
extern const struct counter_line report_window_lines[];
extern const unsigned int report_window_line_count;
/* After every CPU window with DWARF unwinding. */
extern const struct counter_line report_unwind_tables_line;
/* After every CPU window with --config. */
extern const struct counter_line report_labels_line;
/* After every CPU window watching Kubernetes. */
extern const struct counter_line report_kubernetes_line;
/* Every window with debuginfod on. */
extern const struct counter_line report_debuginfod_line;
/* Every window when pushing, led by "uploads to URL". */
extern const struct counter_line report_uploads_lines[];
extern const unsigned int report_uploads_line_count;

struct elf_cache;
/* Warns once of each file that lost parts (damaged sections, debug files too large). */
void report_damaged_files(struct elf_cache *files);

#endif /* KILN_REPORT_H */
