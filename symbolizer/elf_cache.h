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
#include "symbolizer/elf_file.h"
#include "symbolizer/procmaps.h"

struct elf_cache;
struct Elf;

struct elf_cache_opts {
	size_t max_files; /* cached ELF files; 0 means the default (256) */
	/*
	 * What their symbol indexes may hold (elf_file__memory), the agent's
	 * share of --max-memory; past it the least recently used files are
	 * closed, one alone never. 0: no bound but max_files.
	 */
	uint64_t max_bytes;
	/* Where debug files are looked for; kept by the caller, outliving the cache. NULL: none. */
	struct debug_search *debug_search;
};

struct elf_cache_stats {
	uint64_t files_opened; /* read in full: one per distinct build id */
	uint64_t
		files_snapshotted; /* of those opened, read into a sealed copy: others may write them */
	uint64_t files_shared; /* another copy of a file already read, found by build id */
	uint64_t files_evicted; /* cache at its limit */
	uint64_t files_evicted_memory; /* closed to stay within max_bytes */
	uint64_t bytes; /* what the cached files hold now (elf_file__memory) */
	uint64_t open_errors; /* missing, unreadable or corrupt files */
	uint64_t failures_evicted; /* failed files retried early: negative cache full */
	/* Files that lost one part (a damaged section, a debug file too large), by elf_file_loss. */
	uint64_t losses[ELF_LOSS_COUNT];
	uint64_t damaged_unnamed; /* damaged files not named in a warning: too many at once */
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

/*
 * The path a file cached under this device and inode was first opened by:
 * 0 and *ret_path (valid until the next call into the cache), or -ENOENT.
 * Opens nothing: it names the files of a process that is gone, by the
 * identity the kernel kept for its mappings.
 */
int elf_cache__find_path(const struct elf_cache *cache, uint32_t dev_major, uint32_t dev_minor,
			 uint64_t inode, const char **ret_path);

/*
 * Lets go of the pages kiln read from every cached file's mapping
 * (elf_drop_pages): they stay in the page cache, out of kiln's RSS.
 */
void elf_cache__drop_pages(struct elf_cache *cache);

void elf_cache__stats(const struct elf_cache *cache, struct elf_cache_stats *ret_stats);

/* A file that lost parts since the last elf_cache__take_damaged, for a warning naming it. */
struct elf_cache_damage {
	const char *path; /* as the process that mapped it named it */
	unsigned int losses; /* the elf_file_loss bits new this time */
};

/*
 * Takes the next file with new losses: 0 and *ret_damage (valid until the
 * next call), or -EAGAIN when none is waiting. The latest 16 wait; older
 * ones are only counted (and in losses, as always).
 */
int elf_cache__take_damaged(struct elf_cache *cache, struct elf_cache_damage *ret_damage);

#endif /* KILN_ELF_CACHE_H */
