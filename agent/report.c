// SPDX-License-Identifier: Apache-2.0
/* The reporter: counter lines logged each window, warnings on what rose; the stages' tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/process/process_capture.h"
#include "agent/process/process_table.h"
#include "agent/profile/window_profile.h"
#include "agent/push/uploader.h"
#include "agent/report.h"
#include "agent/unwind/unwind_maps.h"
#include "lib/hashmap.h"
#include "symbolizer/symbolizer.h"

/* Each line fits: the longest is under 400 bytes. */
#define LINE_MAX_BYTES 1024

/* Totals are remembered as pointer-sized values. */
_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "totals kept in hashmap values");

struct reporter {
	struct hashmap *reported; /* const struct counter * -> its value when last logged */
};

struct reporter *reporter__new(void)
{
	struct reporter *reporter = calloc(1, sizeof(*reporter));

	if (!reporter)
		return NULL;
	reporter->reported = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!reporter->reported) {
		free(reporter);
		errno = ENOMEM;
		return NULL;
	}
	return reporter;
}

void reporter__free(struct reporter *reporter)
{
	if (!reporter)
		return;
	hashmap__free(reporter->reported);
	free(reporter);
}

/* How much an alarm counter rose since it was last logged; remembers the value now. */
static uint64_t rise(struct reporter *reporter, const struct counter *counter, uint64_t value)
{
	void *reported = NULL;

	if (counter->kind != COUNTER_TOTAL)
		return value;
	hashmap__find(reporter->reported, (uintptr_t)counter, &reported);
	/* Failing to remember repeats the warning next window: better than dropping it. */
	hashmap__set(reporter->reported, (uintptr_t)counter, (void *)(uintptr_t)value, NULL, NULL);
	return value > (uintptr_t)reported ? value - (uintptr_t)reported : 0;
}

void reporter__mark_reported(struct reporter *reporter, const struct counter_line *line,
			     const void *const *sources)
{
	for (unsigned int i = 0; i < line->count; i++)
		if (line->counters[i].alarm)
			rise(reporter, &line->counters[i],
			     counter__value(&line->counters[i], sources));
}

void reporter__log(struct reporter *reporter, const struct counter_line *line,
		   const void *const *sources, const char *prefix, const char *suffix)
{
	const struct counter *first_alarm = NULL;
	uint64_t first_rise = 0;
	char text[LINE_MAX_BYTES];

	for (unsigned int i = 0; i < line->count; i++) {
		const struct counter *counter = &line->counters[i];
		uint64_t up;

		if (!counter->alarm)
			continue;
		up = rise(reporter, counter, counter__value(counter, sources));
		if (up && !first_alarm) {
			first_alarm = counter;
			first_rise = up;
		}
	}
	if (line->only_on_alarm && !first_alarm)
		return;
	counter_line__format(line, sources, prefix, suffix, text, sizeof(text));
	log_message(first_alarm && !line->alarm_keeps_level ? LOG_WARN : line->level, "%s", text);
	if (first_alarm && line->alarm_note) {
		char value[24];

		snprintf(value, sizeof(value), "%" PRIu64, first_rise);
		counter_text__format(line->alarm_note, value, text, sizeof(text));
		log_warn("%s", text);
	}
}

void reporter__log_lines(struct reporter *reporter, const struct counter_line *lines,
			 unsigned int count, const void *const *sources, const char *prefix)
{
	for (unsigned int i = 0; i < count; i++)
		reporter__log(reporter, &lines[i], sources, prefix, NULL);
}

#define PROFILE(field) COUNTER_FIELD(REPORT_SOURCE_PROFILE, struct window_profile_result, field)
#define SYMBOLS(field) COUNTER_FIELD(REPORT_SOURCE_SYMBOLIZER, struct symbolizer_stats, field)
#define CAPTURE(field) COUNTER_FIELD(REPORT_SOURCE_CAPTURE, struct process_capture_stats, field)
#define PROCESSES(field) COUNTER_FIELD(REPORT_SOURCE_PROCESSES, struct process_table_stats, field)
#define UNWIND(field) COUNTER_FIELD(REPORT_SOURCE_UNWIND, struct unwind_maps_stats, field)
#define UPLOADS(field) COUNTER_FIELD(REPORT_SOURCE_UPLOADER, struct uploader_stats, field)

static const struct counter symbol_counters[] = {
	{ .name = "kiln_frames_total",
	  .help = "Frames of CPU profiles resolved through the symbolizer",
	  PROFILE(frames),
	  .kind = COUNTER_WINDOW,
	  .text = "% frames" },
	{ .name = "kiln_frames_without_mapping_total",
	  .help = "User addresses in no known mapping",
	  PROFILE(frames_without_mapping),
	  .kind = COUNTER_WINDOW,
	  .text = "% without mapping" },
	{ .name = "kiln_frames_without_symbol_total",
	  .help = "Addresses no symbol covers",
	  PROFILE(frames_without_symbol),
	  .kind = COUNTER_WINDOW,
	  .text = "% without symbol" },
	{ .name = "kiln_elf_files_opened_total",
	  .help = "ELF files read in full, one per distinct build id",
	  SYMBOLS(elf_files_opened),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "ELF files % opened" },
	{ .name = "kiln_elf_files_shared_total",
	  .help = "Copies of a file already read, found by build id",
	  SYMBOLS(elf_files_shared),
	  .text = "% shared by build id" },
	{ .name = "kiln_elf_files_evicted_total",
	  .help = "ELF files closed with the cache at its limit",
	  SYMBOLS(elf_files_evicted),
	  .text = "% evicted" },
	{ .name = "kiln_elf_open_errors_total",
	  .help = "ELF files missing, unreadable or corrupt",
	  SYMBOLS(elf_open_errors),
	  .text = "% unreadable" },
};

/* Lines dropped at the limits leave JIT frames unnamed: say so once they happen. */
static const struct counter perf_map_counters[] = {
	{ .name = "kiln_perf_map_reads_total",
	  .help = "Perf maps (or their new tails) read",
	  SYMBOLS(perf_maps.reads),
	  .text = "% reads" },
	{ .name = "kiln_perf_map_lines_total",
	  .help = "Perf map lines read",
	  SYMBOLS(perf_maps.entries_read),
	  .text = "% lines" },
	{ .name = "kiln_perf_map_lines_dropped_total",
	  .help = "Perf map lines malformed or over the limit",
	  SYMBOLS(perf_maps.entries_dropped),
	  .text = "% lines dropped (malformed or over the limit)",
	  .alarm = true },
	{ .name = "kiln_perf_maps_evicted_total",
	  .help = "Perf maps with lines dropped to stay within the limits",
	  SYMBOLS(perf_maps.maps_evicted),
	  .text = "% maps evicted",
	  .alarm = true },
	{ .name = "kiln_perf_map_lookups_total",
	  .help = "Addresses looked up in perf maps",
	  SYMBOLS(perf_maps.lookups),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% lookups" },
	{ .name = "kiln_perf_map_misses_total",
	  .help = "Perf map lookups no line covered",
	  SYMBOLS(perf_maps.misses),
	  .text = "% unnamed" },
};

/* Dropped captures mean the main thread fell behind: short-lived processes go unnamed. */
static const struct counter capture_counters[] = {
	{ .name = "kiln_captures_total",
	  .help = "Processes whose mappings were read when announced",
	  CAPTURE(captures),
	  .text = "% read when announced" },
	{ .name = "kiln_captures_gone_total",
	  .help = "Announced processes that exited before they could be read",
	  CAPTURE(gone),
	  .text = "% gone before" },
	{ .name = "kiln_captures_dropped_total",
	  .help = "Captures dropped with the queue full: the main thread fell behind",
	  CAPTURE(dropped),
	  .text = "% dropped with the queue full",
	  .alarm = true },
	{ .name = "kiln_capture_files_held_total",
	  .help = "Files opened while their process lived",
	  CAPTURE(files_held),
	  .text = "% files held open" },
	{ .name = "kiln_capture_files_not_held_total",
	  .help = "Files not held at the descriptor limit, read by path later",
	  CAPTURE(files_not_held),
	  .text = "% not (limit)" },
};

/* Limits here cost time (files read again) or detail (lines only), never samples. */
static const struct counter dwarf_counters[] = {
	{ .name = "kiln_dwarf_files_opened_total",
	  .help = "Files whose DWARF was read (again after eviction)",
	  SYMBOLS(dwarf_files_opened),
	  .text = "% files read" },
	{ .name = "kiln_dwarf_files_evicted_total",
	  .help = "DWARF closed at the open-file limit",
	  SYMBOLS(dwarf_files_evicted),
	  .text = "% closed at the open-file limit" },
	{ .name = "kiln_dwarf_memory_evictions_total",
	  .help = "DWARF closed to stay within --max-dwarf-memory",
	  SYMBOLS(dwarf_memory_evictions),
	  .text = "% at --max-dwarf-memory",
	  .alarm = true },
	{ .name = "kiln_dwarf_errors_total",
	  .help = "Files with unreadable DWARF: symbols only",
	  SYMBOLS(dwarf_errors),
	  .text = "% unreadable" },
	{ .name = "kiln_dwarf_memory_bytes",
	  .help = "What open DWARF holds now, estimated",
	  SYMBOLS(dwarf_memory),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% MiB held" },
	{ .name = "kiln_dwarf_lookups_total",
	  .help = "User addresses with DWARF lines",
	  SYMBOLS(dwarf_lookups),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% lookups" },
	{ .name = "kiln_dwarf_index_ranges",
	  .help = "Address ranges indexed now, 32 bytes each",
	  SYMBOLS(dwarf_index_rows),
	  .kind = COUNTER_GAUGE,
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "index % ranges" },
	{ .name = "kiln_dwarf_index_resets_total",
	  .help = "A file's indexes dropped at the index limit",
	  SYMBOLS(dwarf_index_resets),
	  .text = "% resets" },
	{ .name = "kiln_dwarf_units_not_indexed_total",
	  .help = "Units too large for the index: lines only",
	  SYMBOLS(dwarf_units_not_indexed),
	  .text = "% units too large" },
	{ .name = "kiln_inline_chains_truncated_total",
	  .help = "Inline chains deeper than kept: innermost dropped",
	  SYMBOLS(inline_chains_truncated),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% inline chains" },
	{ .name = "kiln_names_truncated_total",
	  .help = "Names longer than kept",
	  SYMBOLS(names_truncated),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "and % names cut" },
};

static const struct counter debug_file_counters[] = {
	{ .name = "kiln_debug_files_build_id_total",
	  .help = "Debug files found by build id",
	  SYMBOLS(debug_files_build_id),
	  .text = "% by build id" },
	{ .name = "kiln_debug_files_debuglink_total",
	  .help = "Debug files found by debuglink",
	  SYMBOLS(debug_files_debuglink),
	  .text = "% by debuglink" },
	{ .name = "kiln_debug_files_minidebuginfo_total",
	  .help = "MiniDebugInfo sections read",
	  SYMBOLS(debug_files_minidebuginfo),
	  .text = "% MiniDebugInfo" },
	{ .name = "kiln_debug_files_debuginfod_total",
	  .help = "Debug files fetched from debuginfod",
	  SYMBOLS(debug_files_debuginfod),
	  .text = "% from debuginfod" },
};

/* A full table drops live processes: worth a warning, as their frames go unnamed. */
static const struct counter process_counters[] = {
	{ .name = "kiln_process_mappings_read_total",
	  .help = "Processes whose mappings were read from /proc",
	  PROCESSES(captures),
	  .text = "% mappings read" },
	{ .name = "kiln_process_mappings_gone_total",
	  .help = "Processes gone before their mappings could be read",
	  PROCESSES(capture_failures),
	  .text = "% gone before they could be" },
	{ .name = "kiln_process_mappings_refreshed_total",
	  .help = "Mappings re-read after a miss (dlopen) or an exec",
	  PROCESSES(refreshes),
	  .text = "% re-read" },
	{ .name = "kiln_processes_exited_total",
	  .help = "Processes dropped because they exited",
	  PROCESSES(exited),
	  .text = "% exited" },
	{ .name = "kiln_processes_evicted_total",
	  .help = "Live processes dropped with the table full (--max-processes)",
	  PROCESSES(evictions),
	  .text = "% dropped with the table full (raise --max-processes)",
	  .alarm = true },
};

const struct counter_line report_window_lines[] = {
	{ .prefix = "symbols",
	  .counters = symbol_counters,
	  .count = COUNTER_COUNT_OF(symbol_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "perf maps (JIT)",
	  .counters = perf_map_counters,
	  .count = COUNTER_COUNT_OF(perf_map_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "process capture",
	  .counters = capture_counters,
	  .count = COUNTER_COUNT_OF(capture_counters),
	  .level = LOG_DEBUG },
	/* Files read again each window cost CPU: say so, once per window it happens in. */
	{ .prefix = "DWARF",
	  .counters = dwarf_counters,
	  .count = COUNTER_COUNT_OF(dwarf_counters),
	  .level = LOG_DEBUG,
	  .alarm_note = "DWARF: % files closed this window to stay within --max-dwarf-memory, "
			"to be read again when needed" },
	{ .prefix = "debug files",
	  .counters = debug_file_counters,
	  .count = COUNTER_COUNT_OF(debug_file_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "processes",
	  .counters = process_counters,
	  .count = COUNTER_COUNT_OF(process_counters),
	  .level = LOG_DEBUG },
};
const unsigned int report_window_line_count = COUNTER_COUNT_OF(report_window_lines);

/* Tables evicted in this window mean the budget is too small: say so. */
static const struct counter unwind_table_counters[] = {
	{ .name = "kiln_unwind_tables",
	  .help = "Unwind tables loaded now",
	  UNWIND(tables),
	  .kind = COUNTER_GAUGE,
	  .text = "% loaded" },
	{ .name = "kiln_unwind_table_rows",
	  .help = "Rows of the unwind tables loaded now",
	  UNWIND(table_rows),
	  .kind = COUNTER_GAUGE,
	  .text = "% rows" },
	{ .name = "kiln_unwind_table_bytes",
	  .help = "BPF map memory the unwind tables use now",
	  UNWIND(table_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "in % bytes of BPF maps" },
	{ .name = "kiln_unwind_tables_built_total",
	  .help = "Unwind tables built",
	  UNWIND(tables_built),
	  .text = "% built" },
	{ .name = "kiln_unwind_table_build_seconds_total",
	  .help = "Time spent building unwind tables",
	  UNWIND(build_ns),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_MILLISECONDS,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "in % ms" },
	{ .name = "kiln_unwind_tables_failed_total",
	  .help = "Files without usable CFI: no table",
	  UNWIND(tables_failed),
	  .text = "% without usable CFI" },
	{ .name = "kiln_unwind_tables_evicted_total",
	  .help = "Unwind tables evicted to stay within --max-unwind-memory",
	  UNWIND(tables_evicted),
	  .text = "% evicted",
	  .alarm = true },
	{ .name = "kiln_unwind_tables_evicted_in_use_total",
	  .help = "Of those, tables a process still mapped",
	  UNWIND(tables_evicted_in_use),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% in use)" },
	{ .name = "kiln_unwind_tables_deferred_total",
	  .help = "Tables put off for lack of room, tried later",
	  UNWIND(tables_deferred),
	  .text = "% deferred for room" },
	{ .name = "kiln_unwind_processes",
	  .help = "Processes with unwind tables now",
	  UNWIND(processes),
	  .kind = COUNTER_GAUGE,
	  .text = "% processes" },
};

const struct counter_line report_unwind_tables_line = {
	.prefix = "unwind tables",
	.counters = unwind_table_counters,
	.count = COUNTER_COUNT_OF(unwind_table_counters),
	.level = LOG_DEBUG,
	.alarm_note = "unwind tables over --max-unwind-memory: least used tables evicted, "
		      "their frames fall back to frame pointers",
};

static const struct counter debuginfod_counters[] = {
	{ .name = "kiln_debuginfod_requested_total",
	  .help = "debuginfod fetches queued",
	  SYMBOLS(debuginfod_requested),
	  .text = "% fetches requested" },
	{ .name = "kiln_debuginfod_succeeded_total",
	  .help = "debuginfod fetches that brought a usable file",
	  SYMBOLS(debuginfod_succeeded),
	  .text = "% succeeded" },
	{ .name = "kiln_debuginfod_failed_total",
	  .help = "debuginfod fetches not found, unreachable, timed out or unusable",
	  SYMBOLS(debuginfod_failed),
	  .text = "% failed" },
	{ .name = "kiln_debuginfod_queue_full_total",
	  .help = "debuginfod requests dropped with the queue full, retried later",
	  SYMBOLS(debuginfod_queue_full),
	  .text = "% dropped with the queue full" },
	{ .name = "kiln_debuginfod_pending",
	  .help = "debuginfod fetches queued or under way now",
	  SYMBOLS(debuginfod_pending),
	  .kind = COUNTER_GAUGE,
	  .text = "% under way" },
	{ .name = "kiln_debuginfod_forgotten_total",
	  .help = "Fetched or failed build ids forgotten for room",
	  SYMBOLS(debuginfod_forgotten),
	  .text = "% forgotten" },
};

const struct counter_line report_debuginfod_line = {
	.prefix = "debuginfod",
	.counters = debuginfod_counters,
	.count = COUNTER_COUNT_OF(debuginfod_counters),
	.level = LOG_INFO,
};

static const struct counter upload_counters[] = {
	{ .name = "kiln_uploads_sent_total",
	  .help = "Profiles delivered to the remote store",
	  UPLOADS(sent),
	  .text = "% sent" },
	{ .name = "kiln_uploads_sent_bytes_total",
	  .help = "Payload bytes of the profiles delivered",
	  UPLOADS(sent_bytes),
	  .unit = COUNTER_UNIT_BYTES,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% bytes)" },
	{ .name = "kiln_uploads_failed_total",
	  .help = "Profiles given up: rejected by the server, or unreadable",
	  UPLOADS(failed),
	  .text = "% failed" },
	{ .name = "kiln_uploads_retried_total",
	  .help = "Upload attempts that failed and will be retried",
	  UPLOADS(retried),
	  .text = "% retried" },
	{ .name = "kiln_uploads_dropped_total",
	  .help = "Profiles dropped unsent to keep the spool within --spool-max-bytes",
	  UPLOADS(dropped),
	  .text = "% dropped",
	  .alarm = true },
	{ .name = "kiln_spool_profiles",
	  .help = "Profiles waiting in the spool",
	  UPLOADS(pending),
	  .kind = COUNTER_GAUGE,
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% waiting in the spool" },
	{ .name = "kiln_spool_bytes",
	  .help = "Bytes waiting in the spool",
	  UPLOADS(pending_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% bytes)" },
};

static const struct counter upload_loss_counters[] = {
	{ .name = "kiln_uploads_dropped_bytes_total",
	  .help = "Bytes of the profiles dropped unsent",
	  UPLOADS(dropped_bytes),
	  .unit = COUNTER_UNIT_BYTES,
	  .text = "% bytes of profiles dropped unsent",
	  .alarm = true },
	{ .name = "kiln_spool_corrupt_total",
	  .help = "Spool files that failed their checks, removed",
	  UPLOADS(corrupt),
	  .text = "% damaged files removed",
	  .alarm = true },
};

const struct counter_line report_uploads_lines[] = {
	{ .counters = upload_counters,
	  .count = COUNTER_COUNT_OF(upload_counters),
	  .level = LOG_INFO,
	  .alarm_keeps_level = true,
	  .alarm_note = "spool full (--spool-max-bytes): % oldest profiles dropped unsent" },
	{ .prefix = "spool",
	  .counters = upload_loss_counters,
	  .count = COUNTER_COUNT_OF(upload_loss_counters),
	  .level = LOG_DEBUG,
	  .only_on_alarm = true,
	  .alarm_keeps_level = true },
};
const unsigned int report_uploads_line_count = COUNTER_COUNT_OF(report_uploads_lines);
