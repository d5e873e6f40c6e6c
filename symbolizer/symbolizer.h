/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Addresses to function names. The symbolizer owns a bounded cache of ELF
 * files keyed by build id (and by device+inode, so a file shared by many
 * processes is opened once) and the kernel's symbol table.
 *
 * Debug information for a file is looked for in this order, stopping once
 * a file with DWARF (.debug_info) is found:
 *   1. the file itself;
 *   2. DEBUG_DIR/.build-id/xx/yyyy.debug, on the host and in the process's
 *      root (/proc/PID/root), DEBUG_DIR being /usr/lib/debug;
 *   3. .gnu_debuglink's name, with its CRC checked: next to the file, in
 *      .debug/ next to it, under DEBUG_DIR followed by the file's directory;
 *   4. .gnu_debugdata (MiniDebugInfo: symbols only), when no .symtab yet;
 *   5. debuginfod, by build id, when servers are configured: fetched in the
 *      background, so lookups use what 1-4 gave until the file arrives.
 *
 * The symbolizer is used from one thread; debuginfod's fetch thread is
 * internal and hands its results back at later calls.
 *
 * Library code: it never prints, it returns 0 or a negative errno.
 */
#ifndef KILN_SYMBOLIZER_H
#define KILN_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/perf_map.h"
#include "symbolizer/procmaps.h"

struct symbolizer;

struct symbolizer_opts {
	size_t max_elf_files; /* cached ELF files; 0 means the default (256) */
	/* Cached files whose DWARF is open at once; 0 means the default (32). */
	size_t max_dwarf_files;
	/* Address ranges indexed per DWARF file (32 bytes each); 0 means the default (256Ki). */
	size_t max_dwarf_index_rows;
	/*
	 * What open DWARF may hold in all, estimated (dwarf_info__memory); past
	 * it the least recently used files are closed. One file alone is never
	 * closed for it. 0 means the default (64 MiB).
	 */
	uint64_t max_dwarf_memory;
	const char *kallsyms_path; /* NULL means /proc/kallsyms */
	const char *debug_dir; /* NULL means /usr/lib/debug */
	/*
	 * debuginfod servers, space-separated as in DEBUGINFOD_URLS (which
	 * symbolizer__new then sets: libdebuginfod reads only the
	 * environment); NULL or "": no debuginfod.
	 */
	const char *debuginfod_urls;
	size_t debuginfod_max_queued; /* fetches waiting or under way; 0: 64 */
	uint64_t debuginfod_timeout_ms; /* one whole fetch; 0: 120 s */
	uint64_t debuginfod_retry_ms; /* a failed build id is not asked again before; 0: 10 min */
};

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
};

struct symbolizer_stats {
	uint64_t elf_files_opened; /* read in full: one per distinct build id */
	uint64_t elf_files_shared; /* another copy of a file already read, found by build id */
	uint64_t elf_files_evicted; /* cache at its limit */
	uint64_t elf_open_errors; /* missing, unreadable or corrupt files */
	uint64_t elf_failures_evicted; /* failed files retried early: negative cache full */
	uint64_t user_lookups;
	uint64_t user_misses; /* address had no symbol */
	uint64_t kernel_lookups;
	uint64_t kernel_misses;
	uint64_t kallsyms_reloads;
	struct perf_maps_stats perf_maps; /* JIT code named by /tmp/perf-PID.map */
	uint64_t dwarf_files_opened; /* files whose DWARF was read (again after eviction) */
	uint64_t dwarf_files_evicted; /* DWARF closed: max_dwarf_files open at once */
	uint64_t dwarf_memory_evictions; /* DWARF closed: max_dwarf_memory reached */
	uint64_t dwarf_memory; /* what open DWARF holds now, estimated */
	uint64_t dwarf_errors; /* files with unreadable DWARF: symbols only */
	uint64_t dwarf_lookups; /* user addresses with DWARF lines */
	uint64_t dwarf_index_rows; /* address ranges indexed now, 32 bytes each */
	uint64_t dwarf_index_resets; /* a file's indexes dropped: max_dwarf_index_rows */
	uint64_t dwarf_units_not_indexed; /* units too large for the index: lines only */
	uint64_t inline_chains_truncated; /* deeper than SYMBOLIZER_MAX_FRAMES: innermost dropped */
	uint64_t names_truncated; /* longer than SYMBOLIZER_MAX_NAME */
	/* Debug files found, by where (see the search order above). */
	uint64_t debug_files_build_id;
	uint64_t debug_files_debuglink;
	uint64_t debug_files_minidebuginfo;
	uint64_t debug_files_debuginfod;
	bool debuginfod_enabled;
	uint64_t debuginfod_requested; /* fetches queued */
	uint64_t debuginfod_succeeded; /* a server sent a usable file */
	uint64_t debuginfod_failed; /* not found, unreachable, timed out or unusable */
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

struct Elf;

/* The opened file behind a mapping, for readers other than the symbolizer (unwind tables). */
struct symbolizer_file {
	struct Elf *elf; /* the mapped file itself */
	struct Elf *debug_elf; /* its separate debug file (or MiniDebugInfo), or NULL */
	const char *build_id; /* lowercase hex, "" when none */
	uint64_t load_bias; /* process address minus ELF virtual address in this mapping */
};

/*
 * Opens (or finds in the cache) the file behind a mapping. Everything in
 * *ret_file stays valid until the next call into the symbolizer. Returns
 * 0 or a negative errno (-ENOENT for anonymous memory and [vdso]).
 */
int symbolizer__file(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
		     struct symbolizer_file *ret_file);

/* Kernel address through kallsyms; function and system_name are the symbol's name. */
int symbolizer__resolve_kernel(struct symbolizer *symbolizer, uint64_t addr, bool is_return_address,
			       struct symbolized_location *ret_location);

/* Drops what is kept per process (its perf map): it exited and its profiles are written. */
void symbolizer__forget_process(struct symbolizer *symbolizer, int pid);

void symbolizer__stats(const struct symbolizer *symbolizer, struct symbolizer_stats *ret_stats);

#endif /* KILN_SYMBOLIZER_H */
