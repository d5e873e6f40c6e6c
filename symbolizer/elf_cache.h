/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's ELF files: a bounded LRU cache of opened files, keyed by
 * build id and by device+inode, so a file shared by many processes (or
 * copied into many container images) is read once. Each file gets its
 * debug file as a debug_search finds it. The symbolizer and the unwind
 * tables both read through one cache.
 *
 * Used from one thread. Library code: it never prints, it returns 0 or a
 * negative errno.
 */
#ifndef KILN_ELF_CACHE_H
#define KILN_ELF_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/debug_search.h"
#include "symbolizer/procmaps.h"

struct elf_cache;
struct Elf;

struct elf_cache_opts {
	size_t max_files; /* cached ELF files; 0 means the default (256) */
	/* Where debug files are looked for; kept by the caller, outliving the cache. NULL: none. */
	struct debug_search *debug_search;
};

struct elf_cache_stats {
	uint64_t files_opened; /* read in full: one per distinct build id */
	uint64_t files_shared; /* another copy of a file already read, found by build id */
	uint64_t files_evicted; /* cache at its limit */
	uint64_t open_errors; /* missing, unreadable or corrupt files */
	uint64_t failures_evicted; /* failed files retried early: negative cache full */
	struct debug_search_stats debug_files; /* of the cache's debug_search; zero without */
};

/* NULL with errno set. opts may be NULL. */
struct elf_cache *elf_cache__new(const struct elf_cache_opts *opts);
void elf_cache__free(struct elf_cache *cache);

/* The opened file behind a mapping, for readers of its sections (unwind tables). */
struct elf_cache_file {
	struct Elf *elf; /* the mapped file itself */
	struct Elf *debug_elf; /* its separate debug file (or MiniDebugInfo), or NULL */
	const char *build_id; /* lowercase hex, "" when none */
	uint64_t load_bias; /* process address minus ELF virtual address in this mapping */
};

/*
 * Opens (or finds in the cache) the file behind a mapping of process pid,
 * through /proc/PID/map_files or /proc/PID/root. Everything in *ret_file
 * stays valid until the next call into the cache (or its symbolizer).
 * Returns 0 or a negative errno (-ENOENT for anonymous memory and [vdso]).
 * A file that failed is not tried again for a minute.
 */
int elf_cache__file(struct elf_cache *cache, int pid, const struct proc_mapping *mapping,
		    struct elf_cache_file *ret_file);

void elf_cache__stats(const struct elf_cache *cache, struct elf_cache_stats *ret_stats);

#endif /* KILN_ELF_CACHE_H */
