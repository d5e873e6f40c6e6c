/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names for JIT code from perf maps: /tmp/perf-PID.map, which JIT runtimes
 * (the JVM with perf-map-agent or -XX:+DumpPerfMapAtExit, V8 --perf-prof,
 * .NET with DOTNET_PerfMapEnabled, LuaJIT, Julia, ...) write one line per
 * function: "START SIZE name", hex without 0x, the name running to the end
 * of the line. The file is read inside the process's root, as the process
 * sees its /tmp, under the pid its own namespace gives it, and read again as
 * it grows. Later lines override earlier ones where they overlap, as when a
 * code cache reuses memory.
 *
 * The file is the process's to write, so it is held to perf's rules and the
 * process's rights (process_files.h): a regular file, not a symlink, owned
 * by the process (its uid as recorded while it ran) or root, writable by
 * its owner only, readable by the process, and no larger than max_bytes.
 * A refused file is counted once by reason until the file changes. A read
 * stops at max_bytes and after max_read_ns, counted, so no file stalls a
 * window: what was left is read on the next refresh.
 *
 * Library code: it never prints, it returns 0 or a negative errno.
 */
#ifndef KILN_PERF_MAP_H
#define KILN_PERF_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/process_files.h"
#include "symbolizer/procmaps.h"

struct perf_maps;

struct perf_maps_opts {
	size_t max_entries_per_map; /* lines taken from one file; 0: default (256Ki) */
	size_t max_entries; /* lines kept over all processes; 0: default (512Ki) */
	size_t max_processes; /* processes with a map; 0: default (4096) */
	uint64_t recheck_interval_ns; /* between checks for growth; 0: default (1 s) */
	uint64_t max_bytes; /* a larger file is refused, a growing one read this far; 0: 64 MiB */
	uint64_t max_read_ns; /* one refresh reads no longer; 0: default (100 ms) */
	/*
	 * What all maps' ranges and names may take (the agent's share of
	 * --max-memory): past it the least recently used maps are evicted, and
	 * one map alone takes no more lines. 0: no bound but max_entries.
	 */
	uint64_t max_memory;
};

struct perf_maps_stats {
	uint64_t reads; /* files (or their new tails) read */
	uint64_t entries_read;
	uint64_t entries_dropped; /* over max_entries_per_map, malformed, or empty */
	uint64_t
		maps_evicted; /* maps with lines dropped to stay under max_entries or max_processes */
	uint64_t lookups;
	uint64_t misses; /* no map, or no line covering the address */
	uint64_t maps_truncated; /* read up to max_bytes, the rest left unread */
	uint64_t reads_stopped; /* stopped at max_read_ns, to go on next refresh */
	struct process_file_refusals refused; /* files refused, by reason */
	uint64_t bytes; /* what the maps hold now, against max_memory */
};

/* NULL with errno set. opts may be NULL. */
struct perf_maps *perf_maps__new(const struct perf_maps_opts *opts);
void perf_maps__free(struct perf_maps *maps);

/* Whether a perf map may name code in this mapping: anonymous memory, [anon:NAME], memfd. */
bool perf_maps__may_name(const struct proc_mapping *mapping);

/*
 * Finds where pid's map lives while the process still runs (its /tmp and
 * its pid in its own namespace; a /tmp shared with ours is read directly,
 * so the file still counts after the process exited) and reads it if it
 * exists. Returns 0, -ENOENT when there is no map (yet), or a negative errno.
 */
int perf_maps__prepare(struct perf_maps *maps, int pid);

/*
 * The name of the function at addr in pid's map. The file is checked for
 * growth at most once per recheck interval per process (a window is
 * symbolized in one go: once per window). The name stays valid until the next call. Returns
 * 0, -ENOENT when no line covers addr, or a negative errno.
 */
int perf_maps__lookup(struct perf_maps *maps, int pid, uint64_t addr, const char **ret_name);

/* Drops what is known about pid (it exited and its profiles are written). */
void perf_maps__forget(struct perf_maps *maps, int pid);

void perf_maps__stats(const struct perf_maps *maps, struct perf_maps_stats *ret_stats);

#endif /* KILN_PERF_MAP_H */
