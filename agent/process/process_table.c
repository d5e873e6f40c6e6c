// SPDX-License-Identifier: Apache-2.0
/* Process table: pid -> mappings captured at first sight, bounded, refreshed on demand. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/process/process_table.h"
#include "agent/sampling/window.h"
#include "lib/hashmap.h"

struct process {
	uint32_t pid;
	struct proc_maps maps;
	uint64_t last_used_window; /* announced or sampled */
	uint64_t refreshed_window; /* last window a miss re-read the maps */
	uint64_t
		replaced_window; /* last window a miss added the replaced image's (+ 1; 0: never) */
	bool from_kernel; /* gone before /proc was read: nothing there to re-read */
};

struct process_table {
	struct hashmap *processes; /* pid -> struct process * */
	struct hashmap *unreadable; /* pids that could not be read this window */
	size_t max_processes;
	uint64_t window; /* counts windows, for recency */
	struct process_listener listeners[PROCESS_TABLE_MAX_LISTENERS];
	size_t listener_count;
	struct process_exited_reader exited_reader; /* read_maps NULL when none */
	struct process_table_stats stats;
};

struct process_table *process_table__new(size_t max_processes)
{
	struct process_table *table = calloc(1, sizeof(*table));

	if (!table)
		return NULL;
	table->processes = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	table->unreadable = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!table->processes || !table->unreadable) {
		process_table__free(table);
		errno = ENOMEM;
		return NULL;
	}
	table->max_processes = max_processes;
	table->window = 1;
	return table;
}

static void process_free(struct process *process)
{
	if (!process)
		return;
	procmaps__free(&process->maps);
	free(process);
}

int process_table__add_listener(struct process_table *table,
				const struct process_listener *listener)
{
	if (table->listener_count == PROCESS_TABLE_MAX_LISTENERS)
		return -ENOSPC;
	table->listeners[table->listener_count++] = *listener;
	return 0;
}

static void drop_process(struct process_table *table, struct process *process)
{
	hashmap__delete(table->processes, process->pid, NULL, NULL);
	for (size_t i = 0; i < table->listener_count; i++)
		if (table->listeners[i].on_removed)
			table->listeners[i].on_removed(table->listeners[i].ctx, process->pid);
	process_free(process);
}

void process_table__free(struct process_table *table)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *process;

	if (!table)
		return;
	while (table->processes && hashmap__next(table->processes, &iter, NULL, &process))
		process_free(process);
	hashmap__free(table->processes);
	hashmap__free(table->unreadable);
	free(table);
}

/* Makes room by dropping the process unused for longest. */
static void evict_least_recent(struct process_table *table)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	struct process *oldest = NULL;
	void *value;

	while (hashmap__next(table->processes, &iter, NULL, &value)) {
		struct process *process = value;

		if (!oldest || process->last_used_window < oldest->last_used_window)
			oldest = process;
	}
	if (oldest) {
		drop_process(table, oldest);
		table->stats.evictions++;
	}
}

/* Exited: no such pid, or a zombie whose parent has not reaped it yet. */
static bool process_gone(uint32_t pid)
{
	char path[64], stat[512], *state;
	FILE *file;
	size_t len;

	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	file = fopen(path, "re");
	if (!file)
		return errno == ENOENT;
	len = fread(stat, 1, sizeof(stat) - 1, file);
	fclose(file);
	stat[len] = '\0';
	/* The state follows the command name, which may itself hold ") ". */
	state = strrchr(stat, ')');
	return state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

/* Takes freshly read mappings and tells the listeners (files to open, tables to build). */
static void install_maps(struct process_table *table, struct process *process,
			 struct proc_maps *maps, const int *fds, bool alive)
{
	const struct process_change change = {
		.pid = process->pid,
		.maps = &process->maps,
		.fds = fds,
		.alive = alive,
	};

	procmaps__free(&process->maps);
	process->maps = *maps;
	*maps = (struct proc_maps){};
	table->stats.captures++;
	/* Failures of single files are the listeners' to count. */
	for (size_t i = 0; i < table->listener_count; i++)
		if (table->listeners[i].on_mappings_changed)
			table->listeners[i].on_mappings_changed(table->listeners[i].ctx, &change);
}

static int read_maps(struct process_table *table, struct process *process)
{
	struct proc_maps maps;
	int err;

	err = procmaps__read(process->pid, true, &maps);
	if (err) {
		table->stats.capture_failures++;
		return err;
	}
	install_maps(table, process, &maps, NULL, true);
	return 0;
}

static struct process *lookup(const struct process_table *table, uint32_t pid)
{
	void *process;

	return hashmap__find(table->processes, pid, &process) ? process : NULL;
}

/* Installs maps (or, when NULL, reads them now) for pid, known or new. */
static int update_process(struct process_table *table, uint32_t pid, struct proc_maps *maps,
			  const int *fds)
{
	struct process *process = lookup(table, pid);
	bool created = !process;
	int err = 0;

	if (process) {
		table->stats.refreshes++;
	} else {
		if (hashmap__size(table->processes) >= table->max_processes)
			evict_least_recent(table);
		process = calloc(1, sizeof(*process));
		if (!process)
			return -ENOMEM;
		process->pid = pid;
	}
	process->last_used_window = table->window;
	if (maps)
		install_maps(table, process, maps, fds, !process_gone(pid));
	else
		err = read_maps(table, process);
	if (!err && created)
		err = hashmap__set(table->processes, pid, process, NULL, NULL);
	if (err && created)
		process_free(process);
	return err;
}

int process_table__capture(struct process_table *table, uint32_t pid)
{
	return update_process(table, pid, NULL, NULL);
}

int process_table__insert(struct process_table *table, uint32_t pid, struct proc_maps *maps,
			  const int *fds)
{
	return update_process(table, pid, maps, fds);
}

void process_table__set_exited_reader(struct process_table *table,
				      const struct process_exited_reader *reader)
{
	table->exited_reader = reader ? *reader : (struct process_exited_reader){};
}

/* Gives a file mapping of the kernel's record the path of the file kiln opened with its identity. */
static void name_file(struct process_table *table, struct proc_mapping *mapping)
{
	const struct process_exited_reader *reader = &table->exited_reader;
	const char *path;
	char *copy = NULL;

	if (!mapping->inode)
		return; /* anonymous memory (JIT): named by perf maps, if at all */
	if (reader->find_path && reader->find_path(reader->ctx, mapping, &path) == 0)
		copy = strdup(path);
	if (!copy) {
		table->stats.files_not_found++;
		return;
	}
	free(mapping->path);
	mapping->path = copy;
}

typedef int (*read_kernel_maps_fn)(void *ctx, uint32_t pid, struct proc_maps *ret_maps);

/*
 * A sampled process that exited before its maps were read, from the
 * kernel's record of its mappings (read), so its frames are named all the same.
 */
static int insert_from_kernel(struct process_table *table, uint32_t pid, read_kernel_maps_fn read)
{
	const struct process_exited_reader *reader = &table->exited_reader;
	struct proc_maps maps;
	int err;

	if (!read)
		return -ENOENT;
	err = read(reader->ctx, pid, &maps);
	if (err)
		return err;
	for (size_t i = 0; i < maps.count; i++)
		name_file(table, &maps.mappings[i]);
	err = update_process(table, pid, &maps, NULL);
	procmaps__free(&maps); /* emptied when taken */
	if (err)
		return err;
	lookup(table, pid)->from_kernel = true;
	table->stats.from_kernel++;
	return 0;
}

static int insert_exited(struct process_table *table, uint32_t pid)
{
	return insert_from_kernel(table, pid, table->exited_reader.read_maps);
}

/*
 * The sampled process pid, captured now when the table does not know it;
 * NULL when unreadable. One gone before /proc showed its mappings (the
 * capture found it exited, or read a zombie's empty maps) takes them from
 * the kernel's record; each is tried once a window.
 */
static struct process *sampled_process(struct process_table *table, uint32_t pid)
{
	struct process *process = lookup(table, pid);

	if (process && process->maps.count)
		return process;
	if (hashmap__find(table->unreadable, pid, NULL))
		return process;
	/* Never announced (its event was lost) or evicted: read it now if it lives. */
	if (!process)
		process_table__capture(table, pid);
	process = lookup(table, pid);
	/*
	 * With no record of its own (never sampled after its exec), the image
	 * its exec replaced holds its samples from before it.
	 */
	if ((!process || !process->maps.count) && process_gone(pid) &&
	    (insert_exited(table, pid) == 0 ||
	     insert_from_kernel(table, pid, table->exited_reader.read_replaced_maps) == 0))
		process = lookup(table, pid);
	if (!process || !process->maps.count)
		hashmap__set(table->unreadable, pid, NULL, NULL, NULL);
	return process;
}

/* Whether a mapping overlaps one of maps (sorted), around position i of a merge. */
static bool overlaps(const struct proc_maps *maps, size_t i, const struct proc_mapping *mapping)
{
	return (i < maps->count && maps->mappings[i].start < mapping->end) ||
	       (i > 0 && maps->mappings[i - 1].end > mapping->start);
}

/* Moves maps' mappings and those of added that overlap none of them (and have a file) into ret. */
static int merge_maps(struct proc_maps *maps, struct proc_maps *added, struct proc_maps *ret_maps)
{
	struct proc_maps merged = {};
	size_t i = 0, j = 0;

	merged.mappings = calloc(maps->count + added->count + 1, sizeof(*merged.mappings));
	if (!merged.mappings)
		return -ENOMEM;
	while (i < maps->count || j < added->count) {
		struct proc_mapping *next;

		if (j >= added->count ||
		    (i < maps->count && maps->mappings[i].start <= added->mappings[j].start)) {
			next = &maps->mappings[i++];
		} else {
			next = &added->mappings[j++];
			if (!next->path[0] || overlaps(maps, i, next))
				continue;
		}
		merged.mappings[merged.count++] = *next;
		next->path = NULL; /* moved */
	}
	procmaps__free(maps);
	*ret_maps = merged;
	return 0;
}

/*
 * Adds to process's mappings those of the image its last exec replaced, where
 * they overlap none of its own: a forked child (a shell's) sampled before
 * its exec ran its parent's code, which its maps now no longer show. The
 * unwinder keeps the live image's (alive false to the listeners).
 */
static void add_replaced_image(struct process_table *table, struct process *process)
{
	const struct process_exited_reader *reader = &table->exited_reader;
	const struct process_change change = {
		.pid = process->pid,
		.maps = &process->maps,
		.alive = false,
	};
	struct proc_maps replaced, merged;

	if (!reader->read_replaced_maps ||
	    reader->read_replaced_maps(reader->ctx, process->pid, &replaced))
		return;
	for (size_t i = 0; i < replaced.count; i++)
		name_file(table, &replaced.mappings[i]);
	if (!merge_maps(&process->maps, &replaced, &merged)) {
		process->maps = merged;
		table->stats.from_replaced++;
		for (size_t i = 0; i < table->listener_count; i++)
			if (table->listeners[i].on_mappings_changed)
				table->listeners[i].on_mappings_changed(table->listeners[i].ctx,
									&change);
	}
	procmaps__free(&replaced);
}

/*
 * A user frame outside every mapping re-reads them, and then takes those of
 * the image an exec replaced, each at most once per window.
 */
static void sync_address(struct process_table *table, uint32_t pid, uint64_t addr)
{
	struct process *process = sampled_process(table, pid);

	if (!process)
		return;
	process->last_used_window = table->window;
	if (procmaps__find(&process->maps, addr))
		return;
	if (process->refreshed_window != table->window && !process->from_kernel) {
		process->refreshed_window = table->window;
		table->stats.refreshes++;
		/*
		 * Gone since: the kernel's record may know more than the capture
		 * did, read inside the dynamic loader before the libraries were
		 * mapped (the unwinder fills a young process's record again when
		 * it finds a pc in none of its mappings); a zombie shows none.
		 */
		if ((read_maps(table, process) || !process->maps.count) && process_gone(pid))
			insert_exited(table, pid);
		process = lookup(table, pid);
		if (!process || procmaps__find(&process->maps, addr))
			return;
	}
	if (process->replaced_window != table->window + 1) {
		process->replaced_window = table->window + 1;
		add_replaced_image(table, process);
	}
}

void process_table__sync_window(struct process_table *table, const struct sample_window *window)
{
	for (size_t i = 0; i < window->sample_count; i++) {
		const struct sample_key *key = &window->samples[i].key;
		const struct drained_stack *stack;

		/* Only user frames are looked up in a process's mappings. */
		if (key->user_stack_id < STACK_ID_FIRST_VALID)
			continue;
		stack = sample_window__stack(window, key->user_stack_id);
		for (uint32_t f = 0; stack && f < stack->frame_count; f++)
			sync_address(table, key->pid, stack->addresses[f]);
	}
}

const struct proc_mapping *process_table__find_mapping(const struct process_table *table,
						       uint32_t pid, uint64_t addr)
{
	const struct process *process = lookup(table, pid);

	return process ? procmaps__find(&process->maps, addr) : NULL;
}

const struct proc_maps *process_table__maps(const struct process_table *table, uint32_t pid)
{
	const struct process *process = lookup(table, pid);

	return process ? &process->maps : NULL;
}

void process_table__for_each(const struct process_table *table, void (*fn)(void *ctx, uint32_t pid),
			     void *ctx)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	while (hashmap__next(table->processes, &iter, NULL, &value))
		fn(ctx, ((const struct process *)value)->pid);
}

void process_table__end_window(struct process_table *table)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	while (hashmap__next(table->processes, &iter, NULL, &value)) {
		struct process *process = value;

		if (process->last_used_window == table->window)
			continue;
		if (process_gone(process->pid)) {
			drop_process(table, process);
			table->stats.exited++;
		}
	}
	/* Rebuilt each window: a pid may be reused by a new process. */
	hashmap__clear(table->unreadable);
	table->window++;
}

size_t process_table__size(const struct process_table *table)
{
	return hashmap__size(table->processes);
}

void process_table__stats(const struct process_table *table, struct process_table_stats *ret_stats)
{
	*ret_stats = table->stats;
}
