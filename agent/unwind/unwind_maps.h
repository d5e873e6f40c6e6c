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
	int files_fd; /* BPF hash: struct unwind_file_key -> struct unwind_file; -1: none */
	int exited_fd; /* BPF hash: pids whose entry is marked exited; -1: none */
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
	uint64_t files_placed; /* file identities the kernel can place a table by, now */
	uint64_t files_not_placed; /* executable segments disagree on their bias, or too many */
	uint64_t files_map_full; /* the kernel's file map refused an identity */
	uint64_t exited_swept; /* entries of exited processes deleted after their windows */
	uint64_t processes_retried; /* read again for a deferred table once room could be made */
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

/*
 * Builds and loads the tables of pid's executable mappings without giving
 * the process an entry: at its exec, so that the kernel's own fill finds
 * them at its first sample. The tables stay until evicted, unused ones
 * first.
 */
void unwind_maps__prepare_files(struct unwind_maps *maps, uint32_t pid,
				const struct proc_maps *mappings);

/*
 * At a window's end, after it was symbolized: deletes the BPF entries of
 * processes that had exited at the previous window's end (so one window
 * later: their last samples may be in the window just written), and takes
 * the processes that have exited since for the next call. Bounded by
 * UNWIND_MAX_EXITED.
 */
void unwind_maps__sweep_exited(struct unwind_maps *maps);

/* Forgets pid; its tables stay cached for other processes until evicted. */
void unwind_maps__remove_process(struct unwind_maps *maps, uint32_t pid);

/*
 * Once processes went (remove_process) since the last call: up to max pids
 * of processes holding a table deferred for room that evicting could now
 * make, to be read again (their next add_process builds it). A table that
 * waits is walked with frame pointers, and BPF asks for no re-read of a
 * mapping it knows, so without this it would wait for the process's next
 * dlopen or exec.
 */
size_t unwind_maps__take_waiting(struct unwind_maps *maps, uint32_t *ret_pids, size_t max);

/*
 * A listener for the process table: mappings read from a live process are
 * given to the unwinder (add_process), removed processes forgotten.
 */
void unwind_maps__process_listener(struct unwind_maps *maps, struct process_listener *ret_listener);

void unwind_maps__stats(const struct unwind_maps *maps, struct unwind_maps_stats *ret_stats);

#endif /* KILN_UNWIND_MAPS_H */
