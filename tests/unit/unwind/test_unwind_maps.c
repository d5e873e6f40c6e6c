// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the unwind maps, fed by the process table through its
 * listener: BPF maps created as bpf/unwind.bpf.h defines them (a hash of
 * array maps, and a hash of processes), so this needs root; without it the
 * tests print a "skip" line. Checks that a table is built once per build
 * id for two processes, that a removed process leaves the tables to the
 * other, that tables past max_bytes are evicted least shared first, that
 * the kernel's file map names exactly the loaded tables' files with the
 * bias the agent computes, that exited processes are swept a window
 * late, and that a table deferred for room is retried once room can be
 * made.
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
	int files_fd;
	int exited_fd;
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
	stage->tables_fd = stage->processes_fd = stage->files_fd = stage->exited_fd = -1;
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
	stage->files_fd =
		bpf_map_create(BPF_MAP_TYPE_HASH, "test_files", sizeof(struct unwind_file_key),
			       sizeof(struct unwind_file), UNWIND_MAX_FILES, &process_opts);
	stage->exited_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_exited", sizeof(uint32_t),
					  sizeof(uint8_t), UNWIND_MAX_EXITED, &process_opts);
	CHECK(stage->tables_fd >= 0 && stage->processes_fd >= 0 && stage->files_fd >= 0 &&
	      stage->exited_fd >= 0);
	stage->symbolizer = symbolizer_stack__new(&stage->symbols, NULL, 0, NULL);
	stage->unwind = unwind_maps__new(&(struct unwind_maps_opts){
		.tables_fd = stage->tables_fd,
		.processes_fd = stage->processes_fd,
		.files_fd = stage->files_fd,
		.exited_fd = stage->exited_fd,
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
	if (stage->files_fd >= 0)
		close(stage->files_fd);
	if (stage->exited_fd >= 0)
		close(stage->exited_fd);
}

static bool has_process_entry(const struct stage *stage, pid_t pid)
{
	struct process_unwind entry;
	uint32_t key = (uint32_t)pid;

	return !bpf_map_lookup_elem(stage->processes_fd, &key, &entry);
}

/* Keys in a BPF hash map of 4-byte keys, counted by walking them. */
static uint64_t count_keys(int fd, size_t key_size)
{
	char key[32], next[32];
	uint64_t count = 0;
	void *previous = NULL;

	while (key_size <= sizeof(key) && !bpf_map_get_next_key(fd, previous, next)) {
		count++;
		memcpy(key, next, key_size);
		previous = key;
	}
	return count;
}

/* Tables in the BPF outer map. */
static uint64_t loaded_tables(const struct stage *stage)
{
	return count_keys(stage->tables_fd, sizeof(uint32_t));
}

/*
 * Every entry of the kernel's file map names a loaded table, and there are
 * as many as the stats say.
 */
static bool files_name_loaded_tables(const struct stage *stage, uint64_t placed)
{
	struct unwind_file_key key, next;
	struct unwind_file file;
	uint32_t inner;
	void *previous = NULL;
	uint64_t count = 0;

	while (!bpf_map_get_next_key(stage->files_fd, previous, &next)) {
		if (bpf_map_lookup_elem(stage->files_fd, &next, &file) ||
		    bpf_map_lookup_elem(stage->tables_fd, &file.table_id, &inner))
			return false;
		count++;
		key = next;
		previous = &key;
	}
	return count == placed;
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

/*
 * What the kernel's fill would write for each of a process's mappings, from
 * its VMA (start, file offset, device, inode) and the file map, is what the
 * agent wrote from /proc/PID/maps: the same table and the same load bias.
 */
static void check_kernel_would_place(const struct stage *stage, pid_t pid)
{
	struct process_unwind entry;
	uint32_t key = (uint32_t)pid;
	unsigned int placed = 0, wrong = 0;

	CHECK(bpf_map_lookup_elem(stage->processes_fd, &key, &entry) == 0);
	for (uint32_t i = 0; i < entry.mapping_count && i < UNWIND_MAX_MAPPINGS; i++) {
		const struct unwind_mapping *mapping = &entry.mappings[i];
		struct unwind_file_key file_key = { .inode = mapping->inode, .dev = mapping->dev };
		struct unwind_file file;

		if (!mapping->table_id || mapping->table_id == UNWIND_TABLE_NONE)
			continue;
		if (bpf_map_lookup_elem(stage->files_fd, &file_key, &file)) {
			wrong++;
			continue;
		}
		placed++;
		if (file.table_id != mapping->table_id ||
		    mapping->start - mapping->file_offset - file.vaddr_minus_offset !=
			    mapping->load_bias)
			wrong++;
	}
	/* The program, libc, the loader and the vDSO ({ 0, 0 }). */
	CHECK(placed >= 4);
	CHECK(wrong == 0);
}

static void test_file_map_follows_tables(void)
{
	struct fixture_process first = {}, second = {};
	struct unwind_maps_stats alone, after;
	struct stage stage;

	if (!stage_new(&stage, MAX_BYTES_UNLIMITED))
		goto cleanup;
	if (!start("fixture_uselib", &first))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	unwind_maps__stats(stage.unwind, &alone);
	CHECK(alone.files_placed >= 4 && alone.files_map_full == 0);
	CHECK(files_name_loaded_tables(&stage, alone.files_placed));
	check_kernel_would_place(&stage, first.pid);
	stage_free(&stage);

	/* Room for that process's tables only: the next one evicts, and its files go too. */
	if (!stage_new(&stage, alone.table_bytes))
		goto cleanup;
	if (!start("fixture_pie", &second))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	stop_fixture(&first);
	process_table__end_window(stage.table);
	process_table__end_window(stage.table);
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	unwind_maps__stats(stage.unwind, &after);
	CHECK(after.tables_evicted >= 1);
	CHECK(files_name_loaded_tables(&stage, after.files_placed));
	check_kernel_would_place(&stage, second.pid);
cleanup:
	stop_fixture(&first);
	stop_fixture(&second);
	stage_free(&stage);
}

/* An entry as the kernel's fill leaves it, marked exited by its exit hook. */
static void add_exited(const struct stage *stage, uint32_t pid)
{
	struct process_unwind entry = { .flags = PROCESS_UNWIND_EXITED };
	uint8_t one = 1;

	CHECK(bpf_map_update_elem(stage->processes_fd, &pid, &entry, BPF_ANY) == 0);
	CHECK(bpf_map_update_elem(stage->exited_fd, &pid, &one, BPF_ANY) == 0);
}

static void test_exited_swept_a_window_late(void)
{
	struct process_unwind fresh = { .flags = PROCESS_UNWIND_BY_AGENT };
	struct unwind_maps_stats stats;
	struct stage stage;
	uint32_t gone = 4000001, reused = 4000002;

	if (!stage_new(&stage, MAX_BYTES_UNLIMITED))
		goto cleanup;
	add_exited(&stage, gone);
	add_exited(&stage, reused);
	/* Taken at the end of the window they exited in: still readable for it. */
	unwind_maps__sweep_exited(stage.unwind);
	CHECK(has_process_entry(&stage, gone) && has_process_entry(&stage, reused));
	CHECK(count_keys(stage.exited_fd, sizeof(uint32_t)) == 0);
	/* A new process took one pid meanwhile: its entry stays. */
	CHECK(bpf_map_update_elem(stage.processes_fd, &reused, &fresh, BPF_ANY) == 0);
	unwind_maps__sweep_exited(stage.unwind);
	unwind_maps__stats(stage.unwind, &stats);
	CHECK(!has_process_entry(&stage, gone) && has_process_entry(&stage, reused));
	CHECK(stats.exited_swept == 1);
cleanup:
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

/*
 * A table deferred for room while the tables it could evict are in use
 * waits; once their process goes, take_waiting names the process that
 * waits (once), and reading it again builds the table, evicting theirs.
 */
/*
 * The deferred file's mapping says the agent knows it has no table now
 * (UNWIND_TABLE_NONE), so BPF does not ask for the process's mappings
 * again; no file mapping is left at 0, which would ask.
 */
static void check_deferred_marked(const struct stage *stage, pid_t pid)
{
	struct process_unwind entry;
	uint32_t key = (uint32_t)pid;
	unsigned int none = 0, unknown = 0;

	CHECK(bpf_map_lookup_elem(stage->processes_fd, &key, &entry) == 0);
	for (uint32_t i = 0; i < entry.mapping_count && i < UNWIND_MAX_MAPPINGS; i++) {
		none += entry.mappings[i].table_id == UNWIND_TABLE_NONE;
		unknown += entry.mappings[i].table_id == 0 && entry.mappings[i].inode;
	}
	CHECK(none >= 1);
	CHECK(unknown == 0);
}

static void test_deferred_table_retried(void)
{
	struct fixture_process first = {}, second = {};
	struct unwind_maps_stats alone, after;
	struct stage stage;
	uint32_t pids[4];
	uint64_t budget;

	if (!stage_new(&stage, MAX_BYTES_UNLIMITED))
		goto cleanup;
	if (!start("fixture_pie", &first) || !start("fixture_uselib", &second))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	unwind_maps__stats(stage.unwind, &alone);
	budget = alone.table_bytes;
	stage_free(&stage);

	if (!stage_new(&stage, budget))
		goto cleanup;
	CHECK(process_table__capture(stage.table, (uint32_t)second.pid) == 0);
	/* The second's tables all in use: the first's own one cannot be loaded. */
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	unwind_maps__stats(stage.unwind, &after);
	CHECK(after.tables_deferred >= 1 && after.tables_evicted == 0);
	check_deferred_marked(&stage, first.pid);
	CHECK(unwind_maps__take_waiting(stage.unwind, pids, 4) == 0);
	stop_fixture(&second);
	process_table__end_window(stage.table);
	process_table__end_window(stage.table);
	CHECK(unwind_maps__take_waiting(stage.unwind, pids, 4) == 1 &&
	      pids[0] == (uint32_t)first.pid);
	CHECK(unwind_maps__take_waiting(stage.unwind, pids, 4) == 0);
	CHECK(process_table__capture(stage.table, (uint32_t)first.pid) == 0);
	unwind_maps__stats(stage.unwind, &after);
	CHECK(after.tables_evicted >= 1 && after.tables_evicted_in_use == 0);
	CHECK(after.table_bytes <= budget && after.processes == 1);
	CHECK(after.tables_built > alone.tables_built && after.processes_retried == 1);
cleanup:
	stop_fixture(&first);
	stop_fixture(&second);
	stage_free(&stage);
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_one_table_per_build_id),  TEST(test_eviction_past_max_bytes),
		TEST(test_file_map_follows_tables), TEST(test_exited_swept_a_window_late),
		TEST(test_deferred_table_retried),
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
