/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The processes kiln has sampled, with the mappings captured while they
 * were alive, so that a process that exits mid-window is still symbolized.
 */
#ifndef KILN_PROCESS_TABLE_H
#define KILN_PROCESS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/procmaps.h"

struct process_table;
struct sample_window;

struct process_table_stats {
	uint64_t captures; /* mappings read from /proc */
	uint64_t capture_failures; /* the process was gone before it could be read */
	uint64_t refreshes; /* re-read after an address missed (dlopen) or an exec */
	uint64_t evictions; /* live processes dropped because the table was full */
	uint64_t exited; /* dropped because they exited */
	uint64_t from_kernel; /* gone before /proc was read: mappings from the kernel's record */
	uint64_t files_not_found; /* their mappings of a file kiln had not opened: unnamed */
	uint64_t from_replaced; /* given the mappings of the image their exec replaced */
};

/* What changed in one process: its mappings were (re)read. */
struct process_change {
	uint32_t pid;
	const struct proc_maps *maps; /* valid during the call only */
	const int *fds; /* fds[i] holds maps->mappings[i]'s file open, or -1; NULL: none */
	bool alive; /* false when it exited already: nothing left to sample */
};

/*
 * Stages that keep state per process (the symbolizer's open files, unwind
 * tables, the sampler's per-process BPF entries) hear of changes through a
 * listener, so the process model depends on none of them. Either callback
 * may be NULL. Listeners are called in the order they were added.
 */
struct process_listener {
	void (*on_mappings_changed)(void *ctx, const struct process_change *change);
	void (*on_removed)(void *ctx, uint32_t pid); /* exited, or evicted for room */
	void *ctx;
};

#define PROCESS_TABLE_MAX_LISTENERS 6

/* NULL with errno set. */
struct process_table *process_table__new(size_t max_processes);
/* Frees the table without calling listeners: they may be gone already. */
void process_table__free(struct process_table *table);

/* Copies *listener. Returns 0, or -ENOSPC past PROCESS_TABLE_MAX_LISTENERS. */
int process_table__add_listener(struct process_table *table,
				const struct process_listener *listener);

/*
 * Where the mappings of a sampled process that exited before /proc could be
 * read come from: the kernel's record of them (kernel_maps.h), which names
 * files by device and inode only, and the files kiln opened for other
 * processes (the ELF cache), which give them back a path. Either callback
 * may fail; ctx is both's.
 */
struct process_exited_reader {
	/* pid's executable mappings, paths "": 0, -ENOENT when none were kept, or a negative errno. */
	int (*read_maps)(void *ctx, uint32_t pid, struct proc_maps *ret_maps);
	/* The path of a file kiln has open with mapping's device and inode: 0, or -ENOENT. */
	int (*find_path)(void *ctx, const struct proc_mapping *mapping, const char **ret_path);
	/*
	 * Those of the image pid's last exec replaced, as read_maps; NULL when
	 * none are kept. A forked child's samples before its exec are there.
	 */
	int (*read_replaced_maps)(void *ctx, uint32_t pid, struct proc_maps *ret_maps);
	void *ctx;
};

/* Copies *reader; NULL: processes gone before they were read stay unknown (the default). */
void process_table__set_exited_reader(struct process_table *table,
				      const struct process_exited_reader *reader);

/*
 * Reads /proc/PID/maps now and opens the files behind them: called when BPF
 * announces a process, so the capture happens while it still lives. A
 * known process is re-read (it announced itself again after an exec).
 */
int process_table__capture(struct process_table *table, uint32_t pid);

/*
 * The same with mappings read earlier (the capture thread's), whose files
 * fds[i] hold open (or -1), so a process that exited since is still
 * symbolized. Takes *maps, leaving it zeroed; the fds stay the caller's.
 */
int process_table__insert(struct process_table *table, uint32_t pid, struct proc_maps *maps,
			  const int *fds);

/*
 * Brings the table up to date with a drained window before it is
 * symbolized: captures the processes it sampled that the table does not
 * know (their announcement was lost, or they were evicted; from the exited
 * reader's record when they are gone already), re-reads once
 * per window the maps of a process whose user frame is in none of its
 * mappings (a library loaded since), and marks the sampled ones used.
 */
void process_table__sync_window(struct process_table *table, const struct sample_window *window);

/*
 * The mapping that holds addr in process pid, or NULL. Reads the table
 * only: symbolizing a window does not change the process model.
 */
const struct proc_mapping *process_table__find_mapping(const struct process_table *table,
						       uint32_t pid, uint64_t addr);

/* pid's mappings as last read, or NULL when the table does not know pid. */
const struct proc_maps *process_table__maps(const struct process_table *table, uint32_t pid);

/* Calls fn for every process the table holds; fn must not change the table. */
void process_table__for_each(const struct process_table *table, void (*fn)(void *ctx, uint32_t pid),
			     void *ctx);

/* Ends a window: drops processes that have exited and were not sampled in it. */
void process_table__end_window(struct process_table *table);

size_t process_table__size(const struct process_table *table);
void process_table__stats(const struct process_table *table, struct process_table_stats *ret_stats);

#endif /* KILN_PROCESS_TABLE_H */
