// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the unwind maps, fed by the process table through its
 * listener: BPF maps created as bpf/unwind.bpf.h defines them (a hash of
 * array maps, and a hash of processes), so this needs root; without it the
 * tests print a "skip" line. Checks that a table is built once per build
 * id for two processes, that a removed process leaves the tables to the
 * other, and that tables past max_bytes are evicted least shared first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/process/process_table.h"
#include "agent/unwind/unwind_maps.h"
#include "bpf/unwind.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/testing.h"

#define MAX_BYTES_UNLIMITED (1ULL << 40)

struct stage {
	int tables_fd;
	int processes_fd;
	struct symbolizer_stack symbols;
	struct symbolizer *symbolizer;
	struct unwind_maps *unwind;
	struct process_table *table;
};

static void symbolizer_on_mappings_changed(void *ctx, const struct process_change *change)
{
	symbolizer__prepare_process_files(ctx, (int)change->pid, change->maps, change->fds);
}

/* The maps as the BPF side defines them. */
static bool stage_new(struct stage *stage, uint64_t max_bytes)
{
	LIBBPF_OPTS(bpf_map_create_opts, inner_opts, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_create_opts, process_opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	struct process_listener unwind_listener;
	int inner;

	memset(stage, 0, sizeof(*stage));
	stage->tables_fd = stage->processes_fd = -1;
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_inner", sizeof(uint32_t),
			       sizeof(struct unwind_chunk), 1, &inner_opts);
	CHECK(inner >= 0);
	if (inner < 0)
		return false;
	outer_opts.inner_map_fd = inner;
	stage->tables_fd = bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, "test_tables",
					  sizeof(uint32_t), sizeof(uint32_t), 8192, &outer_opts);
	close(inner);
	stage->processes_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_processes", sizeof(uint32_t),
					     sizeof(struct process_unwind), 64, &process_opts);
	CHECK(stage->tables_fd >= 0 && stage->processes_fd >= 0);
	stage->symbolizer = symbolizer_stack__new(&stage->symbols, NULL, 0, NULL);
	stage->unwind = unwind_maps__new(&(struct unwind_maps_opts){
		.tables_fd = stage->tables_fd,
		.processes_fd = stage->processes_fd,
		.max_bytes = max_bytes,
		.elf_cache = stage->symbols.files,
	});
	stage->table = process_table__new(8);
	CHECK(stage->symbolizer && stage->unwind && stage->table);
	if (!stage->symbolizer || !stage->unwind || !stage->table)
		return false;
	/* As main.c registers them: the symbolizer opens the files the unwinder reads. */
	CHECK(process_table__add_listener(
		      stage->table, &(struct process_listener){
					    .on_mappings_changed = symbolizer_on_mappings_changed,
					    .ctx = stage->symbolizer,
				    }) == 0);
	unwind_maps__process_listener(stage->unwind, &unwind_listener);
	CHECK(process_table__add_listener(stage->table, &unwind_listener) == 0);
	return true;
}

static void stage_free(struct stage *stage)
{
	process_table__free(stage->table);
	unwind_maps__free(stage->unwind);
	symbolizer_stack__free(&stage->symbols);
	if (stage->tables_fd >= 0)
		close(stage->tables_fd);
	if (stage->processes_fd >= 0)
		close(stage->processes_fd);
}

static bool has_process_entry(const struct stage *stage, pid_t pid)
{
	struct process_unwind entry;
	uint32_t key = (uint32_t)pid;

	return !bpf_map_lookup_elem(stage->processes_fd, &key, &entry);
}

/* Tables in the BPF outer map, counted by walking its keys. */
static uint64_t loaded_tables(const struct stage *stage)
{
	uint32_t key, next;
	uint64_t count = 0;
	void *previous = NULL;

	while (!bpf_map_get_next_key(stage->tables_fd, previous, &next)) {
		count++;
		key = next;
		previous = &key;
	}
	return count;
}

static bool start(const char *name, struct fixture_process *process)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
	if (start_fixture(path, process)) {
		CHECK(!"fixture started");
		return false;
	}
	return true;
}

static void test_one_table_per_build_id(void)
{
	struct fixture_process first = {}, second = {};
	struct unwind_maps_stats one, two;
	struct stage stage;

	if (!stage_new(&stage, MAX_BYTES_UNLIMITED))
		goto cleanup;
	if (!start("fixture_pie", &first) || !start("fixture_pie", &second))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	unwind_maps__stats(stage.unwind, &one);
	/* The program, libc, the loader and the vDSO at least. */
	CHECK(one.tables_built >= 3 && one.tables == one.tables_built && one.processes == 1);
	CHECK(loaded_tables(&stage) == one.tables);
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	unwind_maps__stats(stage.unwind, &two);
	/* The same files: nothing built again, both processes point at the same tables. */
	CHECK(two.tables_built == one.tables_built && two.tables == one.tables);
	CHECK(two.table_bytes == one.table_bytes && two.processes == 2);
	CHECK(has_process_entry(&stage, first.pid) && has_process_entry(&stage, second.pid));

	/* Removed (it exited): its entry goes, the tables stay for the other. */
	stop_fixture(&first);
	process_table__end_window(stage.table);
	process_table__end_window(stage.table);
	unwind_maps__stats(stage.unwind, &two);
	CHECK(two.processes == 1 && two.tables == one.tables);
	CHECK(!has_process_entry(&stage, first.pid) && has_process_entry(&stage, second.pid));
	/* A table no process maps stays loaded, for the next process that does. */
	stop_fixture(&second);
	process_table__end_window(stage.table);
	unwind_maps__stats(stage.unwind, &two);
	CHECK(two.processes == 0 && two.tables == one.tables &&
	      loaded_tables(&stage) == two.tables);
cleanup:
	stop_fixture(&first);
	stop_fixture(&second);
	stage_free(&stage);
}

static void test_eviction_past_max_bytes(void)
{
	struct fixture_process first = {}, second = {};
	struct unwind_maps_stats alone, after;
	struct stage stage;
	uint64_t budget;

	/* What one process's tables take, with no limit. */
	if (!stage_new(&stage, MAX_BYTES_UNLIMITED))
		goto cleanup;
	if (!start("fixture_pie", &first) || !start("fixture_uselib", &second))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	unwind_maps__stats(stage.unwind, &alone);
	budget = alone.table_bytes;
	stage_free(&stage);

	/* Budget for exactly those; then another program with a table of its own. */
	if (!stage_new(&stage, budget))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	unwind_maps__stats(stage.unwind, &after);
	CHECK(after.table_bytes == budget && after.tables_evicted == 0);
	/* Gone: its tables stay loaded but unused, the first to make room. */
	stop_fixture(&second);
	process_table__end_window(stage.table);
	process_table__end_window(stage.table);
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	unwind_maps__stats(stage.unwind, &after);
	CHECK(after.tables_evicted >= 1 && after.tables_evicted_in_use == 0);
	CHECK(after.table_bytes <= budget && after.processes == 1);
	CHECK(loaded_tables(&stage) == after.tables);
	/* The new program's own table was built and loaded after the eviction. */
	CHECK(after.tables_built > alone.tables_built);
cleanup:
	stop_fixture(&first);
	stop_fixture(&second);
	stage_free(&stage);
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_one_table_per_build_id),
		TEST(test_eviction_past_max_bytes),
	};
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int probe = bpf_map_create(BPF_MAP_TYPE_HASH, "test_probe", 4, 4, 1, &opts);

	if (probe < 0) {
		printf("skip unwind_maps: creating BPF maps: %s (needs root)\n", strerror(errno));
		return 0;
	}
	close(probe);
	return testing_run("unwind_maps", tests, sizeof(tests) / sizeof(tests[0]));
}
