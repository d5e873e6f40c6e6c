/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Addresses to function names: frames of user code through the ELF files
 * of an elf_cache (symbols, and DWARF's lines and inlined calls within a
 * memory budget), JIT code through perf maps, kernel code through
 * kallsyms. Where debug files are looked for is debug_search's part.
 *
 * Used from one thread. Library code: it never prints, it returns 0 or a
 * negative errno.
 */
#ifndef KILN_SYMBOLIZER_H
#define KILN_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/elf_file.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/process_files.h"
#include "symbolizer/procmaps.h"

struct symbolizer;
struct elf_cache;

struct symbolizer_opts {
	/*
	 * The ELF files to read, kept by the caller (and shared with the
	 * unwind tables); it must outlive the symbolizer. NULL: one of the
	 * symbolizer's own, with the defaults (256 files, debug files under
	 * /usr/lib/debug, no debuginfod).
	 */
	struct elf_cache *elf_cache;
	/* Cached files whose DWARF is open at once; 0 means the default (32). */
	size_t max_dwarf_files;
	/* Address ranges indexed per DWARF file (32 bytes each); 0 means the default (256Ki). */
	size_t max_dwarf_index_rows;
	/*
	 * What open DWARF may hold in all, estimated (dwarf_info__memory); past
	 * it the least recently used files are closed, and read again when
	 * needed (SYMBOLIZER_DWARF_READS_AFTER_CLOSE). One file alone over it
	 * serves the lookup that opened it, and is closed and read again at its
	 * next (or closed at symbolizer__end_window). 0 means the default (64 MiB).
	 */
	uint64_t max_dwarf_memory;
	/*
	 * Where compressed DWARF is written decompressed, once per file, to be
	 * read from there (unnamed files: O_TMPFILE); NULL means /var/tmp, ""
	 * none. Not used on tmpfs or ramfs. What the copies may take on disk in
	 * all; 0 means the default (1 GiB).
	 */
	const char *decompressed_dir;
	uint64_t max_decompressed_bytes;
	/* What perf maps may hold in all (perf_maps_opts.max_memory); 0: no bound but lines. */
	uint64_t max_perf_map_memory;
	const char *kallsyms_path; /* NULL means /proc/kallsyms */
};

/*
 * A file whose DWARF was closed for memory is read again at once, up to so
 * many times a window; past that its lookups get symbols only until the
 * next window (symbolized_location.deferred), so that files that do not fit
 * together are not read in turn for every address they alternate on.
 */
#define SYMBOLIZER_DWARF_READS_AFTER_CLOSE 4

/* Frames per address: inlined calls and the function containing them. */
#define SYMBOLIZER_MAX_FRAMES 32
/*
 * Display names longer than this (NUL included) are cut and end in "...";
 * C++ template code has names of several thousand characters.
 */
#define SYMBOLIZER_MAX_NAME 16384

struct symbolized_frame {
	const char *function; /* display name (demangled, no symbol version); NULL when unknown */
	const char *system_name; /* raw (mangled) name; NULL when unknown */
	const char *file; /* source file; NULL when unknown */
	uint32_t line; /* the line inside this frame; 0 when unknown */
	uint32_t start_line; /* the function's declaration line; 0 when unknown */
};

/*
 * Innermost first, as pprof's Location.line wants: for code inlined into
 * other code, the inlined function, then its callers (each at its call
 * site's line), ending with the function the address is in. Without
 * DWARF, one frame from the symbol table.
 */
struct symbolized_location {
	struct symbolized_frame frames[SYMBOLIZER_MAX_FRAMES];
	size_t frame_count; /* 0: not symbolized (keep the address and mapping) */
	/*
	 * Its file's DWARF was closed for memory this window: symbols only, the
	 * lines and inlined frames may come in a later window. Not to be
	 * remembered beyond this one.
	 */
	bool deferred;
};

struct symbolizer_stats {
	/* The elf_cache's (elf_cache_stats). */
	uint64_t elf_files_opened; /* read in full: one per distinct build id */
	uint64_t
		elf_files_snapshotted; /* of those, read into a sealed copy: users may write them */
	uint64_t elf_files_shared; /* another copy of a file already read, found by build id */
	uint64_t elf_files_evicted; /* cache at its limit */
	uint64_t elf_files_evicted_memory; /* closed to stay within the cache's max_bytes */
	uint64_t elf_memory; /* what the cached files' symbol indexes hold now */
	uint64_t elf_open_errors; /* missing, unreadable or corrupt files */
	uint64_t elf_failures_evicted; /* failed files retried early: negative cache full */
	/* Files that lost one part: a damaged section, a debug file too large (elf_file_loss). */
	uint64_t elf_losses[ELF_LOSS_COUNT];
	uint64_t elf_damaged_unnamed; /* damaged files not named in a warning: too many at once */
	uint64_t user_lookups;
	uint64_t user_misses; /* address had no symbol */
	uint64_t kernel_lookups;
	uint64_t kernel_misses;
	uint64_t kallsyms_reloads;
	struct perf_maps_stats perf_maps; /* JIT code named by /tmp/perf-PID.map */
	uint64_t dwarf_files_opened; /* files whose DWARF was read (again after eviction) */
	uint64_t dwarf_files_evicted; /* DWARF closed: max_dwarf_files open at once */
	uint64_t dwarf_memory_evictions; /* DWARF closed: max_dwarf_memory reached */
	/* Symbols only: the file's DWARF was closed for memory this window, read next window. */
	uint64_t dwarf_lookups_deferred;
	uint64_t dwarf_memory; /* what open DWARF holds now, estimated */
	uint64_t dwarf_errors; /* files with unreadable DWARF: symbols only */
	/* Compressed DWARF written decompressed to a file once, read from there after. */
	uint64_t dwarf_decompressed;
	uint64_t dwarf_decompressed_bytes; /* what those copies take on disk now */
	uint64_t dwarf_decompress_failed; /* not written (disk, the bound): heap copies */
	uint64_t dwarf_lookups; /* user addresses with DWARF lines */
	uint64_t dwarf_index_rows; /* address ranges in unit tables now, 40 bytes each */
	uint64_t dwarf_index_resets; /* a file's indexes dropped: max_dwarf_index_rows */
	uint64_t dwarf_units_not_indexed; /* units too large for the index: lines only */
	uint64_t dwarf_reader_closes; /* libdw's reader closed, the unit tables kept */
	uint64_t dwarf_reader_reopens; /* libdw's reader opened again for a unit not read yet */
	uint64_t inline_chains_truncated; /* deeper than SYMBOLIZER_MAX_FRAMES: innermost dropped */
	uint64_t names_truncated; /* longer than SYMBOLIZER_MAX_NAME */
	/* Debug files the elf_cache's debug_search found, by where (debug_search.h). */
	uint64_t debug_files_build_id;
	uint64_t debug_files_debuglink;
	uint64_t debug_files_minidebuginfo;
	uint64_t debug_files_debuginfod;
	/* Files opened for a process refused by process_files' checks: perf maps, debug files. */
	struct process_file_refusals refused_files;
	bool debuginfod_enabled;
	uint64_t debuginfod_requested; /* fetches queued */
	uint64_t debuginfod_succeeded; /* a server sent a usable file */
	uint64_t debuginfod_failed; /* not found, unreachable, timed out or unusable */
	uint64_t debuginfod_too_large; /* of those, over 4 GiB: stopped or refused */
	uint64_t debuginfod_queue_full; /* requests dropped, retried once there is room */
	uint64_t debuginfod_pending; /* queued or under way now */
	uint64_t debuginfod_forgotten; /* fetched or failed build ids dropped for room */
	int debuginfod_last_error; /* negative errno of the latest failure, 0 if none */
};

/* NULL with errno set on failure. opts may be NULL. */
struct symbolizer *symbolizer__new(const struct symbolizer_opts *opts);
void symbolizer__free(struct symbolizer *symbolizer);

/*
 * Opens and caches the ELF files behind the executable mappings of a live
 * process, so its addresses can still be resolved after it exits. Files are
 * read through /proc/PID/map_files (deleted binaries) or /proc/PID/root
 * (other mount namespaces). Returns 0, or a negative errno when nothing
 * could be read (process gone); files that fail individually are counted in
 * elf_open_errors and skipped.
 */
int symbolizer__prepare_process(struct symbolizer *symbolizer, int pid,
				const struct proc_maps *maps);

/*
 * The same with the files already opened: fds[i] is maps->mappings[i]'s
 * file, opened while the process lived (or -1), so a process that exited
 * since, from a deleted file or another mount namespace, is still read.
 * The fds stay the caller's. Does not fail when the process is gone.
 */
int symbolizer__prepare_process_files(struct symbolizer *symbolizer, int pid,
				      const struct proc_maps *maps, const int *fds);

/*
 * Resolves addr, a user address of process pid inside mapping (from
 * /proc/PID/maps). Code in anonymous memory or a memfd (JIT) is named by
 * the process's perf map, /tmp/perf-PID.map as the process sees it. A return address (every frame but the sampled leaf) is
 * looked up at addr - 1, the call instruction. Strings in *ret_location stay
 * valid until the next call into the symbolizer. Returns 0 (frame_count may
 * still be 0: no symbol) or a negative errno when the file cannot be read.
 */
int symbolizer__resolve_user(struct symbolizer *symbolizer, int pid,
			     const struct proc_mapping *mapping, uint64_t addr,
			     bool is_return_address, struct symbolized_location *ret_location);

/*
 * The GNU build id of the file behind a mapping, as lowercase hex, or ""
 * when it has none. The string stays valid until the next call into the
 * symbolizer. Returns 0 or a negative errno.
 */
int symbolizer__build_id(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
			 const char **ret_build_id);

/* Kernel address through kallsyms; function and system_name are the symbol's name. */
int symbolizer__resolve_kernel(struct symbolizer *symbolizer, uint64_t addr, bool is_return_address,
			       struct symbolized_location *ret_location);

/* Drops what is kept per process (its perf map): it exited and its profiles are written. */
void symbolizer__forget_process(struct symbolizer *symbolizer, int pid);

/*
 * A window is written: DWARF still over max_dwarf_memory is closed, the
 * last file's included, and the pages read from cached files are let go
 * (elf_drop_pages), so what a window read does not stay in RSS.
 */
void symbolizer__end_window(struct symbolizer *symbolizer);

void symbolizer__stats(const struct symbolizer *symbolizer, struct symbolizer_stats *ret_stats);

#endif /* KILN_SYMBOLIZER_H */
