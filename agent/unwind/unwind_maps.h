/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unwind tables the BPF unwinder reads: one per file (by build id),
 * shared by every process that maps it, within a memory budget with
 * least-recently-used eviction; and each process's executable mappings.
 */
#ifndef KILN_UNWIND_MAPS_H
#define KILN_UNWIND_MAPS_H

#include <stdint.h>

#include "symbolizer/procmaps.h"

struct unwind_maps;
struct elf_cache;
struct process_listener;

struct unwind_maps_opts {
	int tables_fd; /* BPF hash of maps: table id -> table */
	int processes_fd; /* BPF hash: pid -> struct process_unwind */
	uint64_t max_bytes; /* budget for all tables in BPF map memory */
	struct elf_cache *elf_cache; /* opens the files behind mappings */
};

struct unwind_maps_stats {
	uint64_t tables_built;
	uint64_t tables_failed; /* no CFI, unreadable, too large */
	uint64_t tables_evicted; /* budget reached: least recently used first */
	uint64_t tables_evicted_in_use; /* ... while a process still mapped it */
	uint64_t tables_deferred; /* no room without evicting more shared tables: tried later */
	uint64_t table_bytes; /* BPF map memory now used by tables */
	uint64_t table_rows;
	uint64_t tables; /* loaded now */
	uint64_t processes;
	uint64_t mappings_dropped; /* beyond UNWIND_MAX_MAPPINGS in one process */
	uint64_t process_updates_failed; /* BPF map full or error */
	uint64_t build_ns; /* time spent building tables */
};

/* NULL with errno set. */
struct unwind_maps *unwind_maps__new(const struct unwind_maps_opts *opts);
void unwind_maps__free(struct unwind_maps *maps);

/*
 * Gives process pid's executable mappings to the unwinder, building and
 * loading the tables of files not seen before. Replaces what pid had.
 * Returns 0 or a negative errno; files that fail are counted and walked
 * with frame pointers.
 */
int unwind_maps__add_process(struct unwind_maps *maps, uint32_t pid,
			     const struct proc_maps *mappings);

/* Forgets pid; its tables stay cached for other processes until evicted. */
void unwind_maps__remove_process(struct unwind_maps *maps, uint32_t pid);

/*
 * A listener for the process table: mappings read from a live process are
 * given to the unwinder (add_process), removed processes forgotten.
 */
void unwind_maps__process_listener(struct unwind_maps *maps, struct process_listener *ret_listener);

void unwind_maps__stats(const struct unwind_maps *maps, struct unwind_maps_stats *ret_stats);

#endif /* KILN_UNWIND_MAPS_H */
