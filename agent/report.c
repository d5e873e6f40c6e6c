// SPDX-License-Identifier: Apache-2.0
/* The reporter: counter lines logged each window, warnings on what rose; the stages' tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/http/metrics.h"
#include "agent/process/process_capture.h"
#include "agent/process/process_table.h"
#include "agent/profile/window_profile.h"
#include "agent/push/uploader.h"
#include "agent/report.h"
#include "agent/unwind/unwind_maps.h"
#include "lib/hashmap.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/symbolizer.h"

/* Each line fits: the longest is under 400 bytes. */
#define LINE_MAX_BYTES 1024

/* Totals are remembered as pointer-sized values. */
_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "totals kept in hashmap values");

struct reporter {
	struct hashmap *reported; /* const struct counter * -> its value when last logged */
	struct metrics *metrics; /* NULL: no metrics endpoint */
	bool metrics_failed; /* said once */
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

void reporter__set_metrics(struct reporter *reporter, struct metrics *metrics)
{
	reporter->metrics = metrics;
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

	/* Every line, even one that stays silent: the metrics count what the log leaves out. */
	if (reporter->metrics && metrics__record(reporter->metrics, line, sources) &&
	    !reporter->metrics_failed) {
		reporter->metrics_failed = true;
		log_warn("metrics: out of memory recording counters, some left out");
	}
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
#define LABELS(field) COUNTER_FIELD(REPORT_SOURCE_LABELS, struct labels_report, field)

static const struct counter symbol_counters[] = {
	{ .name = "kiln_frames_total",
	  .help = "Frames of CPU profiles resolved through the symbolizer",
	  PROFILE(frames),
	  .kind = COUNTER_WINDOW,
	  .text = "% frames" },
	{ .name = "kiln_frames_remembered_total",
	  .help = "Frames named from the symbol history, without the symbolizer",
	  PROFILE(frames_remembered),
	  .kind = COUNTER_WINDOW,
	  .text = "% from earlier windows" },
	{ .name = "kiln_symbols_evicted_total",
	  .help = "Symbol history entries dropped with their generation",
	  PROFILE(symbols_evicted),
	  .kind = COUNTER_WINDOW,
	  .text = "% forgotten" },
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
	{ .name = "kiln_python_locations_total",
	  .help = "Distinct CPython frames named from code objects, per profile",
	  PROFILE(python_frames),
	  .kind = COUNTER_WINDOW,
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "Python frames %" },
	{ .name = "kiln_python_unreadable_total",
	  .help = "CPython frames BPF could not read ([python: unreadable: ...])",
	  PROFILE(python_unreadable),
	  .kind = COUNTER_WINDOW,
	  .text = "% unreadable in BPF" },
	{ .name = "kiln_python_unresolved_total",
	  .help = "CPython frames whose code object the agent could not read",
	  PROFILE(python_unresolved),
	  .kind = COUNTER_WINDOW,
	  .text = "% code objects unread" },
	{ .name = "kiln_samples_relabel_dropped_total",
	  .help = "Samples left out of profiles: their process a relabel rule dropped",
	  PROFILE(samples_dropped),
	  .kind = COUNTER_WINDOW,
	  .text = "% samples of processes relabeling dropped" },
	{ .name = "kiln_elf_files_opened_total",
	  .help = "ELF files read in full, one per distinct build id",
	  SYMBOLS(elf_files_opened),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "ELF files % opened" },
	{ .name = "kiln_elf_files_snapshotted_total",
	  .help = "ELF files read into a sealed copy: a user may write (truncate) them",
	  SYMBOLS(elf_files_snapshotted),
	  .text = "% of them copied (writable by users)" },
	{ .name = "kiln_elf_files_shared_total",
	  .help = "Copies of a file already read, found by build id",
	  SYMBOLS(elf_files_shared),
	  .text = "% shared by build id" },
	{ .name = "kiln_elf_files_evicted_total",
	  .help = "ELF files closed with the cache at its limit",
	  SYMBOLS(elf_files_evicted),
	  .text = "% evicted" },
	{ .name = "kiln_elf_files_evicted_memory_total",
	  .help = "ELF files closed to keep their symbols within their share of --max-memory",
	  SYMBOLS(elf_files_evicted_memory),
	  .text = "% evicted at --max-memory" },
	{ .name = "kiln_elf_symbols_memory_bytes",
	  .help = "What the cached ELF files' symbol indexes hold now",
	  SYMBOLS(elf_memory),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .text = "% MiB of symbols" },
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
	{ .name = "kiln_perf_maps_memory_bytes",
	  .help = "What perf maps hold now, against their share of --max-memory",
	  SYMBOLS(perf_maps.bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .text = "% MiB held" },
	{ .name = "kiln_perf_maps_truncated_total",
	  .help = "Perf maps read up to the size bound, the rest left unread",
	  SYMBOLS(perf_maps.maps_truncated),
	  .text = "% cut at the size bound",
	  .alarm = true },
	{ .name = "kiln_perf_map_reads_stopped_total",
	  .help = "Perf map reads stopped at the time bound, continued next window",
	  SYMBOLS(perf_maps.reads_stopped),
	  .text = "% reads stopped at the time bound",
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
	{ .name = "kiln_captures_at_exec_total",
	  .help = "Of those, read at an exec so that the tables of its files are built early",
	  CAPTURE(exec_captures),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% at exec)" },
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
	{ .name = "kiln_capture_files_refused_total",
	  .help = "Mapped files not regular, or unreadable by their process: not read",
	  CAPTURE(files_refused),
	  .text = "% refused (not regular, or unreadable by their process)" },
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
	  .help = "DWARF closed to stay within its share of --max-memory (or --max-dwarf-memory)",
	  SYMBOLS(dwarf_memory_evictions),
	  .text = "% at --max-dwarf-memory",
	  .alarm = true },
	{ .name = "kiln_dwarf_lookups_deferred_total",
	  .help = "Addresses given symbols only: their file's DWARF was closed for memory this "
		  "window",
	  SYMBOLS(dwarf_lookups_deferred),
	  .text = "% lookups without lines until the next window" },
	{ .name = "kiln_dwarf_errors_total",
	  .help = "Files with unreadable DWARF: symbols only",
	  SYMBOLS(dwarf_errors),
	  .text = "% unreadable" },
	{ .name = "kiln_dwarf_decompressed_total",
	  .help = "Files of compressed DWARF written decompressed to a file once, read from there",
	  SYMBOLS(dwarf_decompressed),
	  .text = "% decompressed to disk" },
	{ .name = "kiln_dwarf_decompressed_bytes",
	  .help = "What the decompressed copies of compressed DWARF take on disk now",
	  SYMBOLS(dwarf_decompressed_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% MiB on disk" },
	{ .name = "kiln_dwarf_decompress_failed_total",
	  .help = "Compressed DWARF not written decompressed (disk, or its bound): read from the "
		  "heap",
	  SYMBOLS(dwarf_decompress_failed),
	  .text = "% not decompressed to disk" },
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
	  .help = "Address ranges in DWARF unit tables now, 40 bytes each",
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
	{ .name = "kiln_dwarf_reader_reopens_total",
	  .help = "libdw's reader opened again to read a unit not read yet (tables kept)",
	  SYMBOLS(dwarf_reader_reopens),
	  .text = "reader reopened % times" },
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

/* Where debug files came from: one family, a source each. */
#define DEBUG_FILES_FOUND(value)                                                                   \
	.name = "kiln_debug_files_found_total", .labels = "source=\"" value "\"",                  \
	.help = "Debug files found, by where (MiniDebugInfo: sections read)"

static const struct counter debug_file_counters[] = {
	{ DEBUG_FILES_FOUND("build_id"), SYMBOLS(debug_files_build_id), .text = "% by build id" },
	{ DEBUG_FILES_FOUND("debuglink"), SYMBOLS(debug_files_debuglink),
	  .text = "% by debuglink" },
	{ DEBUG_FILES_FOUND("minidebuginfo"), SYMBOLS(debug_files_minidebuginfo),
	  .text = "% MiniDebugInfo" },
	{ DEBUG_FILES_FOUND("debuginfod"), SYMBOLS(debug_files_debuginfod),
	  .text = "% from debuginfod" },
};

#define REFUSED(reason) SYMBOLS(refused_files.counts[PROCESS_FILE_##reason])

/* Why files were refused: one family, a reason each. */
#define FILE_REFUSED(value)                                                                        \
	.name = "kiln_files_refused_total", .labels = "reason=\"" value "\"",                      \
	.help = "Files a process named (perf maps, debug files) that kiln refused to read, by reason"

/*
 * Files a process named that kiln would not read for it (perf maps, debug
 * files in its root): each is a process trying, or a misconfiguration.
 */
static const struct counter refused_file_counters[] = {
	{ FILE_REFUSED("not_regular"), REFUSED(NOT_REGULAR), .text = "% not regular",
	  .alarm = true },
	{ FILE_REFUSED("symlink"), REFUSED(SYMLINK), .text = "% symlinks", .alarm = true },
	{ FILE_REFUSED("foreign_owner"), REFUSED(FOREIGN_OWNER), .text = "% owned by another user",
	  .alarm = true },
	{ FILE_REFUSED("writable_by_others"), REFUSED(WRITABLE_BY_OTHERS),
	  .text = "% writable by others", .alarm = true },
	{ FILE_REFUSED("unreadable"), REFUSED(UNREADABLE), .text = "% unreadable by their process",
	  .alarm = true },
	{ FILE_REFUSED("too_large"), REFUSED(TOO_LARGE), .text = "% too large", .alarm = true },
	{ FILE_REFUSED("escapes_root"), REFUSED(ESCAPES_ROOT),
	  .text = "% leading out of their process's root", .alarm = true },
};

#define LOSS(loss) SYMBOLS(elf_losses[loss])

/* Which sections were damaged: one family, a section each. */
#define DAMAGED_SECTION(value)                                                                     \
	.name = "kiln_elf_damaged_sections_total", .labels = "section=\"" value "\"",              \
	.help = "ELF files with a damaged section, skipped (the rest of the file still read), by section"

/*
 * Each file is counted once per part it lost; report_damaged_files warns of
 * each by name, so this line is detail for -v, when it rose.
 */
static const struct counter elf_loss_counters[] = {
	{ DAMAGED_SECTION(".symtab"), LOSS(ELF_LOSS_SYMTAB), .text = "% .symtab", .alarm = true },
	{ DAMAGED_SECTION(".strtab"), LOSS(ELF_LOSS_STRTAB), .text = "% .strtab", .alarm = true },
	{ DAMAGED_SECTION(".dynsym"), LOSS(ELF_LOSS_DYNSYM), .text = "% .dynsym", .alarm = true },
	{ DAMAGED_SECTION(".eh_frame"), LOSS(ELF_LOSS_EH_FRAME), .text = "% .eh_frame",
	  .alarm = true },
	{ DAMAGED_SECTION(".eh_frame_hdr"), LOSS(ELF_LOSS_EH_FRAME_HDR), .text = "% .eh_frame_hdr",
	  .alarm = true },
	{ DAMAGED_SECTION(".debug_frame"), LOSS(ELF_LOSS_DEBUG_FRAME), .text = "% .debug_frame",
	  .alarm = true },
	{ DAMAGED_SECTION(".debug_info"), LOSS(ELF_LOSS_DEBUG_INFO), .text = "% .debug_info",
	  .alarm = true },
	{ DAMAGED_SECTION(".debug_line"), LOSS(ELF_LOSS_DEBUG_LINE), .text = "% .debug_line",
	  .alarm = true },
	{ DAMAGED_SECTION("other"), LOSS(ELF_LOSS_OTHER_SECTION), .text = "% other sections",
	  .alarm = true },
	{ .name = "kiln_debug_files_too_large_total",
	  .help = "Debug files over 4 GiB, refused before reading",
	  LOSS(ELF_LOSS_DEBUG_FILE_TOO_LARGE),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% debug files over 4 GiB refused",
	  .alarm = true },
	{ .name = "kiln_minidebuginfo_too_large_total",
	  .help = "MiniDebugInfo sections decompressing past 64 MiB, refused",
	  LOSS(ELF_LOSS_MINIDEBUGINFO_TOO_LARGE),
	  .text = "% MiniDebugInfo over 64 MiB",
	  .alarm = true },
	{ .name = "kiln_elf_damaged_unnamed_total",
	  .help = "Damaged files not named in a warning: more than 16 in one window",
	  SYMBOLS(elf_damaged_unnamed),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "% not named" },
};
_Static_assert(COUNTER_COUNT_OF(elf_loss_counters) == ELF_LOSS_COUNT + 1,
	       "a counter per loss, and the files not named");

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
	{ .name = "kiln_process_mappings_from_kernel_total",
	  .help = "Processes gone before /proc was read, mapped from the kernel's record instead",
	  PROCESSES(from_kernel),
	  .text = "% mapped from the kernel's record" },
	{ .name = "kiln_process_mappings_from_replaced_total",
	  .help = "Processes given the mappings of the image their exec replaced, for samples before it",
	  PROCESSES(from_replaced),
	  .text = "% given their image before exec" },
	{ .name = "kiln_process_kernel_files_not_found_total",
	  .help = "Their mappings of a file kiln had not opened: frames left unnamed",
	  PROCESSES(files_not_found),
	  .text = "% of their files not found" },
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
	  .alarm_note =
		  "DWARF: % files closed this window to stay within its share of --max-memory, "
		  "to be read again when needed" },
	{ .prefix = "debug files",
	  .counters = debug_file_counters,
	  .count = COUNTER_COUNT_OF(debug_file_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "refused files",
	  .counters = refused_file_counters,
	  .count = COUNTER_COUNT_OF(refused_file_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "damaged ELF files, the rest of each still read",
	  .counters = elf_loss_counters,
	  .count = COUNTER_COUNT_OF(elf_loss_counters),
	  .level = LOG_DEBUG,
	  .only_on_alarm = true,
	  .alarm_keeps_level = true },
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
	{ .name = "kiln_unwind_processes_retried_total",
	  .help = "Processes read again for a deferred table once others went",
	  UNWIND(processes_retried),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% processes read again for them)" },
	{ .name = "kiln_unwind_processes",
	  .help = "Processes with unwind tables now",
	  UNWIND(processes),
	  .kind = COUNTER_GAUGE,
	  .text = "% processes" },
	{ .name = "kiln_unwind_files_placed",
	  .help = "Files the kernel can give a new process's mappings their table by, now",
	  UNWIND(files_placed),
	  .kind = COUNTER_GAUGE,
	  .text = "% files placeable by the kernel" },
	{ .name = "kiln_unwind_files_not_placed_total",
	  .help = "File mappings the kernel cannot place: executable segments disagree, or too "
		  "many copies",
	  UNWIND(files_not_placed),
	  .text = "% not placeable" },
	{ .name = "kiln_unwind_files_map_full_total",
	  .help = "Files the kernel's file map refused: full",
	  UNWIND(files_map_full),
	  .text = "% refused with the file map full",
	  .alarm = true },
	{ .name = "kiln_unwind_exited_swept_total",
	  .help = "Entries of exited processes deleted after their last window",
	  UNWIND(exited_swept),
	  .text = "% exited swept" },
};

const struct counter_line report_unwind_tables_line = {
	.prefix = "unwind tables",
	.counters = unwind_table_counters,
	.count = COUNTER_COUNT_OF(unwind_table_counters),
	.level = LOG_DEBUG,
	.alarm_note = "unwind tables over --max-unwind-memory: least used tables evicted, "
		      "their frames fall back to frame pointers",
};

static const struct counter labels_counters[] = {
	{ .name = "kiln_process_labels_read_total",
	  .help = "Processes whose metadata was read and relabeled",
	  LABELS(cache.reads),
	  .text = "% processes read" },
	{ .name = "kiln_process_labels_gone_total",
	  .help = "Processes gone before their metadata could be read",
	  LABELS(cache.read_failures),
	  .text = "% gone first" },
	{ .name = "kiln_process_labels_dropped_total",
	  .help = "Processes a keep or drop rule of relabel_configs left out, and BPF skips",
	  LABELS(cache.dropped),
	  .text = "% dropped by relabel_configs" },
	{ .name = "kiln_process_labels_evicted_total",
	  .help = "Processes' labels evicted with the cache full (--max-processes)",
	  LABELS(cache.evictions),
	  .text = "% evicted" },
	{ .name = "kiln_process_labels_reread_total",
	  .help = "Processes read again because their labels were incomplete (pod not known yet)",
	  LABELS(cache.rereads),
	  .text = "% read again" },
	{ .name = "kiln_process_labels_incomplete_total",
	  .help = "Processes whose labels stayed incomplete after every reread",
	  LABELS(cache.left_incomplete),
	  .text = "% left incomplete",
	  .alarm = true },
	{ .name = "kiln_process_labels_annotate_failures_total",
	  .help = "Processes whose build id could not be read",
	  LABELS(cache.annotate_failures),
	  .text = "% without build id" },
	{ .name = "kiln_relabel_match_limit_total",
	  .help = "Label values a relabel regex gave up on (PCRE2's match limit)",
	  LABELS(cache.match_limit),
	  .text = "% regex matches given up",
	  .alarm = true },
	{ .name = "kiln_config_reloads_total",
	  .help = "Times SIGHUP read --config again",
	  LABELS(config_reloads),
	  .text = "% config reloads" },
	{ .name = "kiln_config_reload_failures_total",
	  .help = "Times SIGHUP found --config bad and kept the rules in use",
	  LABELS(config_reload_failures),
	  .text = "% failed",
	  .alarm = true },
};

const struct counter_line report_labels_line = {
	.prefix = "labels",
	.counters = labels_counters,
	.count = COUNTER_COUNT_OF(labels_counters),
	.level = LOG_DEBUG,
};

static const struct counter kubernetes_counters[] = {
	{ .name = "kiln_kubernetes_pods",
	  .help = "Pods of this node known from the Kubernetes API now",
	  LABELS(kubernetes.pods.pods),
	  .kind = COUNTER_GAUGE,
	  .text = "% pods" },
	{ .name = "kiln_kubernetes_watching",
	  .help = "1 while a watch of the node's pods is open",
	  LABELS(kubernetes.watching),
	  .kind = COUNTER_GAUGE,
	  .text = "watching %" },
	{ .name = "kiln_kubernetes_lists_total",
	  .help = "Complete lists of the node's pods",
	  LABELS(kubernetes.lists),
	  .text = "% lists" },
	{ .name = "kiln_kubernetes_list_failures_total",
	  .help = "Lists of the node's pods that failed, retried with backoff",
	  LABELS(kubernetes.list_failures),
	  .text = "% failed",
	  .alarm = true },
	{ .name = "kiln_kubernetes_watches_total",
	  .help = "Watches the server ended, opened again",
	  LABELS(kubernetes.watches),
	  .text = "% watches" },
	{ .name = "kiln_kubernetes_watch_failures_total",
	  .help = "Watches that broke off or got an ERROR event, then listed again",
	  LABELS(kubernetes.watch_failures),
	  .text = "% broke" },
	{ .name = "kiln_kubernetes_relists_expired_total",
	  .help = "Lists again because the watch's resourceVersion was too old (410)",
	  LABELS(kubernetes.relists_expired),
	  .text = "% expired" },
	{ .name = "kiln_kubernetes_events_total",
	  .help = "Watch events applied",
	  LABELS(kubernetes.pods.events),
	  .text = "% events" },
	{ .name = "kiln_kubernetes_pods_full_total",
	  .help = "Pods left out: more than the store holds",
	  LABELS(kubernetes.pods.pods_full),
	  .text = "% pods left out",
	  .alarm = true },
	{ .name = "kiln_kubernetes_malformed_total",
	  .help = "Objects or events from the API that were not what it sends",
	  LABELS(kubernetes.pods.malformed),
	  .text = "% malformed",
	  .alarm = true },
	{ .name = "kiln_kubernetes_values_left_out_total",
	  .help = "Pod labels, annotations or containers past the bounds, left out",
	  LABELS(kubernetes.pods.values_left_out),
	  .text = "% values left out" },
	{ .name = "kiln_kubernetes_lookups_missed_total",
	  .help = "Processes whose pod or container was not known (yet)",
	  LABELS(kubernetes.pods.lookups_missed),
	  .text = "% lookups missed" },
};

const struct counter_line report_kubernetes_line = {
	.prefix = "kubernetes",
	.counters = kubernetes_counters,
	.count = COUNTER_COUNT_OF(kubernetes_counters),
	.level = LOG_DEBUG,
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
	{ .name = "kiln_debuginfod_too_large_total",
	  .help = "debuginfod fetches over 4 GiB, stopped or refused",
	  SYMBOLS(debuginfod_too_large),
	  .text = "% over 4 GiB refused" },
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
	{ .name = "kiln_uploads_partially_rejected_total",
	  .help = "Profiles a backend dropped from requests it accepted (OTLP partial_success)",
	  UPLOADS(partially_rejected),
	  .text = "% dropped by the backend" },
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

#define UPLOAD_FAILURES(reason) UPLOADS(failures[PUSH_FAILURE_##reason])

/* Why upload attempts failed: one family, a reason each. */
#define UPLOAD_FAILURE(value)                                                                      \
	.name = "kiln_upload_failures_total", .labels = "reason=\"" value "\"",                    \
	.help = "Upload attempts that failed, by reason"

/*
 * Why attempts failed, each window with -v. The ways a backend can
 * misbehave rather than be down make it a warning, once a window at most;
 * the uploader's own log lines for each are rate-limited too.
 */
static const struct counter upload_failure_counters[] = {
	{ UPLOAD_FAILURE("refused"), UPLOAD_FAILURES(REFUSED), .text = "% refused" },
	{ UPLOAD_FAILURE("connection"), UPLOAD_FAILURES(CONNECTION),
	  .text = "% connection errors" },
	{ UPLOAD_FAILURE("timed_out"), UPLOAD_FAILURES(TIMED_OUT), .text = "% timed out" },
	{ UPLOAD_FAILURE("too_slow"), UPLOAD_FAILURES(TOO_SLOW), .text = "% too slow",
	  .alarm = true },
	{ UPLOAD_FAILURE("response_too_large"), UPLOAD_FAILURES(RESPONSE_TOO_LARGE),
	  .text = "% responses too large", .alarm = true },
	{ UPLOAD_FAILURE("headers_too_large"), UPLOAD_FAILURES(HEADERS_TOO_LARGE),
	  .text = "% headers too large", .alarm = true },
	{ UPLOAD_FAILURE("redirected"), UPLOAD_FAILURES(REDIRECTED),
	  .text = "% redirects not followed", .alarm = true },
	{ UPLOAD_FAILURE("bad_grpc_status"), UPLOAD_FAILURES(BAD_GRPC_STATUS),
	  .text = "% bad grpc-status", .alarm = true },
	{ UPLOAD_FAILURE("protocol"), UPLOAD_FAILURES(PROTOCOL), .text = "% protocol errors",
	  .alarm = true },
	{ UPLOAD_FAILURE("local"), UPLOAD_FAILURES(LOCAL), .text = "% local errors" },
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
	{ .prefix = "upload failures",
	  .counters = upload_failure_counters,
	  .count = COUNTER_COUNT_OF(upload_failure_counters),
	  .level = LOG_DEBUG },
};
const unsigned int report_uploads_line_count = COUNTER_COUNT_OF(report_uploads_lines);

void report_damaged_files(struct elf_cache *files)
{
	struct elf_cache_damage damage;
	char parts[LINE_MAX_BYTES];

	while (elf_cache__take_damaged(files, &damage) == 0) {
		size_t used = 0;

		parts[0] = '\0';
		for (unsigned int loss = 0; loss < ELF_LOSS_COUNT; loss++)
			if (damage.losses & 1U << loss && used < sizeof(parts))
				used += snprintf(parts + used, sizeof(parts) - used, "%s%s",
						 used ? ", " : "", elf_file_loss_name(loss));
		log_warn("%s: skipped %s; the rest of the file is still read", damage.path, parts);
	}
}
