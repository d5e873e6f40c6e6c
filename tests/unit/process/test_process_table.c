// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the process table: capture and insert, eviction at the
 * limit, exited processes dropped at a window's end, listeners called in
 * order, lookups that change nothing, and a window's sync re-reading a
 * process's maps at most once per window (a library loaded since).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/process/process_table.h"
#include "agent/sampling/window.h"
#include "lib/hashmap.h"
#include "tests/unit/testing.h"

/* Far above any pid_max: a process that does not exist. */
#define MISSING_PID 0x7ffffff0u

/* What the listeners heard, in order: "A+pid" changed (alive), "A-pid" removed, ... */
struct heard {
	char log[1024];
	size_t changes;
	size_t removals;
};

struct recorder {
	struct heard *heard;
	char name;
};

static void note(struct heard *heard, char name, char what, uint32_t pid)
{
	size_t used = strlen(heard->log);

	snprintf(heard->log + used, sizeof(heard->log) - used, "%c%c%u ", name, what, pid);
}

static void on_changed(void *ctx, const struct process_change *change)
{
	struct recorder *recorder = ctx;

	CHECK(change->maps != NULL && change->maps->count > 0);
	note(recorder->heard, recorder->name, change->alive ? '+' : '~', change->pid);
	recorder->heard->changes++;
}

static void on_removed(void *ctx, uint32_t pid)
{
	struct recorder *recorder = ctx;

	note(recorder->heard, recorder->name, '-', pid);
	recorder->heard->removals++;
}

static struct process_table *table_with_recorders(size_t max, struct recorder recorders[2],
						  struct heard *heard)
{
	struct process_table *table = process_table__new(max);

	CHECK(table != NULL);
	*heard = (struct heard){};
	for (int i = 0; i < 2; i++) {
		recorders[i] = (struct recorder){ .heard = heard, .name = (char)('A' + i) };
		CHECK(process_table__add_listener(table, &(struct process_listener){
								 .on_mappings_changed = on_changed,
								 .on_removed = on_removed,
								 .ctx = &recorders[i],
							 }) == 0);
	}
	return table;
}

/* A child that waits to be killed: a live pid with known mappings (this program's). */
static pid_t start_child(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECK(pid > 0);
	return pid;
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* An address in this program's text, mapped the same in every forked child. */
static uint64_t own_code(void)
{
	return (uint64_t)(uintptr_t)&start_child;
}

static void test_capture_and_find(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	const struct proc_mapping *mapping;
	char expected[64];
	uint32_t self = (uint32_t)getpid();

	CHECK(process_table__capture(table, self) == 0);
	CHECK(process_table__size(table) == 1);
	mapping = process_table__find_mapping(table, self, own_code());
	CHECK(mapping != NULL && mapping->perms & PROC_MAP_EXEC);
	/* Both listeners heard it, in the order they were added. */
	snprintf(expected, sizeof(expected), "A+%u B+%u ", self, self);
	CHECK_STR(heard.log, expected);
	/* Captured again (an exec): re-read, not added twice. */
	CHECK(process_table__capture(table, self) == 0);
	process_table__stats(table, &stats);
	CHECK(stats.captures == 2 && stats.refreshes == 1);
	CHECK(process_table__size(table) == 1 && heard.changes == 4);
	/* A process that does not exist is counted, not added. */
	CHECK(process_table__capture(table, MISSING_PID) < 0);
	process_table__stats(table, &stats);
	CHECK(stats.capture_failures == 1 && process_table__size(table) == 1);
	process_table__free(table);
}

static void test_insert_takes_maps(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct proc_maps maps;
	char expected[64];

	CHECK(procmaps__read(getpid(), true, &maps) == 0);
	/* Mappings read while it lived, for a process gone since: kept, announced as not alive. */
	CHECK(process_table__insert(table, MISSING_PID, &maps, NULL) == 0);
	CHECK(maps.mappings == NULL && maps.count == 0);
	CHECK(process_table__find_mapping(table, MISSING_PID, own_code()) != NULL);
	snprintf(expected, sizeof(expected), "A~%u B~%u ", MISSING_PID, MISSING_PID);
	CHECK_STR(heard.log, expected);
	/* Exited, but looked at in this window: dropped only at the end of the next. */
	process_table__end_window(table);
	CHECK(process_table__size(table) == 1);
	process_table__end_window(table);
	CHECK(process_table__size(table) == 0);
	process_table__free(table);
}

static void test_eviction_at_max(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(2, recorders, &heard);
	struct process_table_stats stats;
	pid_t first = start_child(), second = start_child(), third = start_child();
	char expected[64];

	CHECK(process_table__capture(table, (uint32_t)first) == 0);
	process_table__end_window(table);
	CHECK(process_table__capture(table, (uint32_t)second) == 0);
	process_table__end_window(table);
	/* Live, both: the least recently used one makes room. */
	heard = (struct heard){};
	CHECK(process_table__capture(table, (uint32_t)third) == 0);
	CHECK(process_table__size(table) == 2);
	CHECK(process_table__find_mapping(table, (uint32_t)first, own_code()) == NULL);
	CHECK(process_table__find_mapping(table, (uint32_t)second, own_code()) != NULL);
	CHECK(process_table__find_mapping(table, (uint32_t)third, own_code()) != NULL);
	/* Removal is announced before the new process's mappings. */
	snprintf(expected, sizeof(expected), "A-%d B-%d A+%d B+%d ", first, first, third, third);
	CHECK_STR(heard.log, expected);
	process_table__stats(table, &stats);
	CHECK(stats.evictions == 1 && stats.exited == 0);
	stop_child(first);
	stop_child(second);
	stop_child(third);
	process_table__free(table);
}

static void test_end_window_drops_exited(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	pid_t live = start_child(), exiting = start_child();
	char expected[64];

	CHECK(process_table__capture(table, (uint32_t)live) == 0);
	CHECK(process_table__capture(table, (uint32_t)exiting) == 0);
	process_table__end_window(table);
	stop_child(exiting);
	heard = (struct heard){};
	process_table__end_window(table);
	CHECK(process_table__size(table) == 1);
	CHECK(process_table__find_mapping(table, (uint32_t)live, own_code()) != NULL);
	CHECK(process_table__find_mapping(table, (uint32_t)exiting, own_code()) == NULL);
	snprintf(expected, sizeof(expected), "A-%d B-%d ", exiting, exiting);
	CHECK_STR(heard.log, expected);
	process_table__stats(table, &stats);
	CHECK(stats.exited == 1 && stats.evictions == 0);
	/* Alive: kept window after window. */
	process_table__end_window(table);
	CHECK(process_table__size(table) == 1);
	stop_child(live);
	process_table__free(table);
}

static void test_lookups_change_nothing(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats before, after;
	pid_t child = start_child();
	uint32_t self = (uint32_t)getpid();

	CHECK(process_table__capture(table, self) == 0);
	process_table__stats(table, &before);
	heard = (struct heard){};
	/* A miss, an unknown live process, an unknown dead one: all just NULL. */
	CHECK(process_table__find_mapping(table, self, 0x10) == NULL);
	CHECK(process_table__find_mapping(table, (uint32_t)child, own_code()) == NULL);
	CHECK(process_table__find_mapping(table, MISSING_PID, own_code()) == NULL);
	process_table__stats(table, &after);
	CHECK(!memcmp(&before, &after, sizeof(before)));
	CHECK(process_table__size(table) == 1 && heard.log[0] == '\0');
	stop_child(child);
	process_table__free(table);
}

/* A window with one sample per pid, each with a user stack of the given addresses. */
static void make_window(struct sample_window *window, const uint32_t *pids, size_t count,
			const uint64_t *addresses, uint32_t address_count)
{
	struct drained_stack *stack = malloc(sizeof(*stack) + address_count * sizeof(uint64_t));

	*window = (struct sample_window){};
	window->stacks = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	window->samples = calloc(count, sizeof(*window->samples));
	CHECK(stack && window->stacks && window->samples);
	*stack = (struct drained_stack){ .frame_count = address_count };
	memcpy(stack->addresses, addresses, address_count * sizeof(uint64_t));
	CHECK(hashmap__set(window->stacks, STACK_ID_FIRST_VALID, stack, NULL, NULL) == 0);
	for (size_t i = 0; i < count; i++) {
		window->samples[i].key = (struct sample_key){
			.pid = pids[i],
			.tid = pids[i],
			.user_stack_id = STACK_ID_FIRST_VALID,
		};
		window->samples[i].value.count = 1;
	}
	window->sample_count = count;
}

static void test_sync_rereads_once_per_window(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	struct sample_window window;
	uint32_t self = (uint32_t)getpid();
	/* An address in no mapping, sampled twice: a library loaded since would be here. */
	const uint64_t missing[] = { own_code(), 0x10, 0x10 };

	CHECK(process_table__capture(table, self) == 0);
	make_window(&window, (uint32_t[]){ self, self }, 2, missing, 3);
	process_table__sync_window(table, &window);
	process_table__stats(table, &stats);
	CHECK(stats.refreshes == 1 && stats.captures == 2);
	/* The CPU and off-CPU windows of one period: still once. */
	process_table__sync_window(table, &window);
	process_table__stats(table, &stats);
	CHECK(stats.refreshes == 1);
	/* The next window may read them again. */
	process_table__end_window(table);
	process_table__sync_window(table, &window);
	process_table__stats(table, &stats);
	CHECK(stats.refreshes == 2 && stats.captures == 3);
	CHECK(heard.changes == 2 * 3);
	sample_window__free(&window);
	process_table__free(table);
}

static void test_sync_finds_a_library_loaded_since(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	struct sample_window window;
	uint32_t self = (uint32_t)getpid();
	const struct proc_mapping *mapping;
	uint64_t address;
	void *library, *function;

	CHECK(process_table__capture(table, self) == 0);
	library = dlopen(FIXTURE_DIR "/libfixture.so", RTLD_NOW);
	CHECK(library != NULL);
	if (!library) {
		process_table__free(table);
		return;
	}
	function = dlsym(library, "fixture_lib_alpha");
	CHECK(function != NULL);
	address = (uint64_t)(uintptr_t)function;
	/* Not captured when the table read the maps. */
	CHECK(process_table__find_mapping(table, self, address) == NULL);
	make_window(&window, &self, 1, &address, 1);
	process_table__sync_window(table, &window);
	mapping = process_table__find_mapping(table, self, address);
	CHECK(mapping != NULL && strstr(mapping->path, "libfixture.so") != NULL);
	process_table__stats(table, &stats);
	CHECK(stats.refreshes == 1);
	/* Found now: nothing to re-read in the next window. */
	process_table__end_window(table);
	process_table__sync_window(table, &window);
	process_table__stats(table, &stats);
	CHECK(stats.refreshes == 1);
	sample_window__free(&window);
	dlclose(library);
	process_table__free(table);
}

static void test_sync_captures_unknown_processes(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	struct sample_window window;
	pid_t child = start_child();
	const uint64_t address = own_code();
	char expected[64];

	/* Its announcement was lost, and a dead one is tried once per window. */
	make_window(&window, (uint32_t[]){ (uint32_t)child, MISSING_PID, MISSING_PID }, 3, &address,
		    1);
	process_table__sync_window(table, &window);
	CHECK(process_table__size(table) == 1);
	CHECK(process_table__find_mapping(table, (uint32_t)child, address) != NULL);
	snprintf(expected, sizeof(expected), "A+%d B+%d ", child, child);
	CHECK_STR(heard.log, expected);
	process_table__stats(table, &stats);
	CHECK(stats.capture_failures == 1);
	/* Sampled in this window: kept at its end even once it exits. */
	stop_child(child);
	process_table__end_window(table);
	CHECK(process_table__size(table) == 1);
	process_table__end_window(table);
	CHECK(process_table__size(table) == 0);
	sample_window__free(&window);
	process_table__free(table);
}

/* The image an exec replaced, as the kernel keeps it: a file of its own, and one over own_code. */
static int read_replaced(void *ctx, uint32_t pid, struct proc_maps *ret_maps)
{
	const struct proc_mapping *own = ctx;
	struct proc_maps maps = { .mappings = calloc(2, sizeof(*maps.mappings)), .count = 2 };

	(void)pid;
	CHECK(maps.mappings != NULL);
	maps.mappings[0] = (struct proc_mapping){ .start = 0x10000,
						  .end = 0x20000,
						  .inode = 42,
						  .perms = PROC_MAP_READ | PROC_MAP_EXEC,
						  .path = strdup("") };
	maps.mappings[1] = (struct proc_mapping){ .start = own->start,
						  .end = own->end,
						  .inode = 43,
						  .perms = PROC_MAP_READ | PROC_MAP_EXEC,
						  .path = strdup("") };
	*ret_maps = maps;
	return 0;
}

static int read_none(void *ctx, uint32_t pid, struct proc_maps *ret_maps)
{
	(void)ctx, (void)pid, (void)ret_maps;
	return -ENOENT;
}

static int find_replaced_path(void *ctx, const struct proc_mapping *mapping, const char **ret_path)
{
	(void)ctx;
	*ret_path = mapping->inode == 42 ? "/replaced/42" : "/replaced/43";
	return 0;
}

/*
 * A forked child's samples before its exec: a frame in none of its mappings
 * takes those of the image the exec replaced that overlap none of its own,
 * once a window, told to the listeners as not alive (the unwinder keeps the
 * live image). One gone without a record of its own takes them whole.
 */
static void test_sync_takes_the_replaced_image(void)
{
	struct recorder recorders[2];
	struct heard heard;
	struct process_table *table = table_with_recorders(8, recorders, &heard);
	struct process_table_stats stats;
	struct sample_window window;
	uint32_t self = (uint32_t)getpid();
	const uint64_t addresses[] = { own_code(), 0x10010 };
	const struct proc_mapping *own, *mapping;
	struct proc_mapping own_copy;
	char expected[64];

	CHECK(process_table__capture(table, self) == 0);
	own = process_table__find_mapping(table, self, own_code());
	CHECK(own != NULL);
	if (!own) {
		process_table__free(table);
		return;
	}
	own_copy = *own;
	process_table__set_exited_reader(table, &(struct process_exited_reader){
							.read_maps = read_none,
							.find_path = find_replaced_path,
							.read_replaced_maps = read_replaced,
							.ctx = &own_copy,
						});
	make_window(&window, (uint32_t[]){ self, self, MISSING_PID }, 3, addresses, 2);
	process_table__sync_window(table, &window);
	mapping = process_table__find_mapping(table, self, 0x10010);
	CHECK(mapping != NULL && !strcmp(mapping->path, "/replaced/42"));
	mapping = process_table__find_mapping(table, self, own_code());
	CHECK(mapping != NULL && mapping->inode == own_copy.inode);
	snprintf(expected, sizeof(expected), "A+%u B+%u A+%u B+%u A~%u B~%u ", self, self, self,
		 self, self, self);
	CHECK(!strncmp(heard.log, expected, strlen(expected)));
	/* Gone, with no record but the replaced image's: named from it whole. */
	mapping = process_table__find_mapping(table, MISSING_PID, 0x10010);
	CHECK(mapping != NULL && !strcmp(mapping->path, "/replaced/42"));
	process_table__stats(table, &stats);
	CHECK(stats.from_replaced == 1 && stats.from_kernel == 1);
	/* The CPU and off-CPU windows of one period: once. */
	process_table__sync_window(table, &window);
	process_table__stats(table, &stats);
	CHECK(stats.from_replaced == 1);
	sample_window__free(&window);
	process_table__free(table);
}

static void test_listener_limit(void)
{
	struct process_table *table = process_table__new(1);
	const struct process_listener listener = {};

	for (int i = 0; i < PROCESS_TABLE_MAX_LISTENERS; i++)
		CHECK(process_table__add_listener(table, &listener) == 0);
	CHECK(process_table__add_listener(table, &listener) == -ENOSPC);
	process_table__free(table);
}

TEST_MAIN("process_table", TEST(test_capture_and_find), TEST(test_insert_takes_maps),
	  TEST(test_eviction_at_max), TEST(test_end_window_drops_exited),
	  TEST(test_lookups_change_nothing), TEST(test_sync_rereads_once_per_window),
	  TEST(test_sync_finds_a_library_loaded_since), TEST(test_sync_captures_unknown_processes),
	  TEST(test_sync_takes_the_replaced_image), TEST(test_listener_limit))
