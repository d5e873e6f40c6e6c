// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for processes that exited before /proc showed their mappings:
 * the process table takes them from the kernel's record (the unwinder's
 * process entry, in a real BPF hash map as bpf/unwind.bpf.h defines it, so
 * this needs root; without it the tests print a "skip" line) and names
 * their files by device and inode from the files kiln opened, so their
 * frames are symbolized. A fixture whose files the symbolizer opened while
 * it ran is the ground truth.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/process/kernel_maps.h"
#include "agent/process/process_table.h"
#include "agent/sampling/window.h"
#include "bpf/unwind.h"
#include "lib/hashmap.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/testing.h"

/* A file kiln never opened, mapped past the fixture's last mapping: it stays unnamed. */
#define UNKNOWN_INODE 0x7ffffffffff0ULL

struct stage {
	int processes_fd;
	struct symbolizer_stack symbols;
	struct process_table *table;
};

static int read_kernel_maps(void *ctx, uint32_t pid, struct proc_maps *ret_maps)
{
	struct stage *stage = ctx;

	return kernel_maps__read(stage->processes_fd, pid, ret_maps);
}

static int find_opened_file(void *ctx, const struct proc_mapping *mapping, const char **ret_path)
{
	struct stage *stage = ctx;

	return elf_cache__find_path(stage->symbols.files, mapping->dev_major, mapping->dev_minor,
				    mapping->inode, ret_path);
}

static void symbolizer_on_mappings_changed(void *ctx, const struct process_change *change)
{
	symbolizer__prepare_process_files(ctx, (int)change->pid, change->maps, change->fds);
}

static bool stage_new(struct stage *stage, bool with_reader)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);

	memset(stage, 0, sizeof(*stage));
	stage->processes_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_processes", sizeof(uint32_t),
					     sizeof(struct process_unwind), 64, &opts);
	CHECK(stage->processes_fd >= 0);
	CHECK(symbolizer_stack__new(&stage->symbols, NULL, 0, NULL) != NULL);
	stage->table = process_table__new(8);
	CHECK(stage->table != NULL);
	if (stage->processes_fd < 0 || !stage->symbols.symbolizer || !stage->table)
		return false;
	CHECK(process_table__add_listener(
		      stage->table, &(struct process_listener){
					    .on_mappings_changed = symbolizer_on_mappings_changed,
					    .ctx = stage->symbols.symbolizer,
				    }) == 0);
	if (with_reader)
		process_table__set_exited_reader(stage->table,
						 &(struct process_exited_reader){
							 .read_maps = read_kernel_maps,
							 .find_path = find_opened_file,
							 .ctx = stage,
						 });
	return true;
}

static void stage_free(struct stage *stage)
{
	process_table__free(stage->table);
	symbolizer_stack__free(&stage->symbols);
	if (stage->processes_fd >= 0)
		close(stage->processes_fd);
}

/*
 * The entry BPF keeps for the process: its executable mappings, then one of
 * a file never opened. Returns where that one starts.
 */
static uint64_t write_entry(int fd, uint32_t pid, const struct proc_maps *maps)
{
	static struct process_unwind entry;
	uint64_t start;

	memset(&entry, 0, sizeof(entry));
	for (size_t i = 0; i < maps->count && entry.mapping_count < UNWIND_MAX_MAPPINGS - 1; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];

		entry.mappings[entry.mapping_count++] = (struct unwind_mapping){
			.start = mapping->start,
			.end = mapping->end,
			.file_offset = mapping->offset,
			.inode = mapping->inode,
			.dev = UNWIND_DEV(mapping->dev_major, mapping->dev_minor),
		};
	}
	start = entry.mappings[entry.mapping_count - 1].end + 0x1000;
	entry.mappings[entry.mapping_count++] = (struct unwind_mapping){
		.start = start,
		.end = start + 0x1000,
		.inode = UNKNOWN_INODE,
		.dev = UNWIND_DEV(8, 1),
	};
	CHECK(bpf_map_update_elem(fd, &pid, &entry, BPF_ANY) == 0);
	return start;
}

/* One sample of pid whose user stack is the given addresses. */
static void make_window(struct sample_window *window, uint32_t pid, const uint64_t *addresses,
			uint32_t count)
{
	struct drained_stack *stack = malloc(sizeof(*stack) + count * sizeof(uint64_t));

	*window = (struct sample_window){};
	window->stacks = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	window->samples = calloc(1, sizeof(*window->samples));
	CHECK(stack && window->stacks && window->samples);
	*stack = (struct drained_stack){ .frame_count = count };
	memcpy(stack->addresses, addresses, count * sizeof(uint64_t));
	CHECK(hashmap__set(window->stacks, STACK_ID_FIRST_VALID, stack, NULL, NULL) == 0);
	window->samples[0].key = (struct sample_key){
		.pid = pid,
		.tid = pid,
		.user_stack_id = STACK_ID_FIRST_VALID,
	};
	window->samples[0].value.count = 1;
	window->sample_count = 1;
}

/*
 * Runs the fixture with the symbolizer opening its files (as when another
 * process of the same binary was sampled), writes its kernel entry, and
 * lets it exit before the table ever read it. Returns its pid, 0 on failure,
 * and where the mapping of the file never opened starts.
 */
static uint32_t exited_fixture(struct stage *stage, struct fixture_process *process,
			       uint64_t *ret_unknown_start)
{
	uint32_t pid;

	if (start_fixture(FIXTURE_DIR "/fixture_pie", process) || !process->function_count) {
		CHECK(!"fixture_pie started");
		stop_fixture(process);
		return 0;
	}
	pid = (uint32_t)process->pid;
	CHECK(symbolizer__prepare_process_files(stage->symbols.symbolizer, (int)pid, &process->maps,
						NULL) == 0);
	*ret_unknown_start = write_entry(stage->processes_fd, pid, &process->maps);
	kill(process->pid, SIGKILL);
	waitpid(process->pid, NULL, 0);
	process->pid = 0;
	close(process->stdin_fd);
	return pid;
}

static void test_exited_process_named_from_kernel_entry(void)
{
	struct fixture_process process;
	struct process_table_stats stats;
	struct symbolized_location location;
	struct sample_window window;
	const struct proc_mapping *mapping;
	uint64_t addresses[MAX_FUNCTIONS + 2];
	struct stage stage;
	uint64_t unknown = 0;
	uint32_t pid, count = 0;

	if (!stage_new(&stage, true))
		goto cleanup;
	pid = exited_fixture(&stage, &process, &unknown);
	if (!pid)
		goto cleanup;
	for (size_t i = 0; i < process.function_count; i++)
		addresses[count++] = process.functions[i].addr;
	addresses[count++] = unknown + 0x10;
	addresses[count++] = 0x10; /* in no mapping: a live process would be read again */
	make_window(&window, pid, addresses, count);
	process_table__sync_window(stage.table, &window);

	process_table__stats(stage.table, &stats);
	CHECK(stats.capture_failures == 1 && stats.from_kernel == 1);
	CHECK(stats.files_not_found == 1);
	if (stats.capture_failures != 1 || stats.files_not_found != 1)
		fprintf(stderr, "capture failures %llu, from kernel %llu, files not found %llu\n",
			(unsigned long long)stats.capture_failures,
			(unsigned long long)stats.from_kernel,
			(unsigned long long)stats.files_not_found);
	for (size_t i = 0; i < process.function_count; i++) {
		const struct fixture_function *function = &process.functions[i];

		mapping = process_table__find_mapping(stage.table, pid, function->addr);
		CHECK(mapping != NULL && strstr(mapping->path, "fixture_pie") != NULL);
		if (!mapping)
			continue;
		location.frame_count = 0;
		CHECK(symbolizer__resolve_user(stage.symbols.symbolizer, (int)pid, mapping,
					       function->addr, false, &location) == 0);
		CHECK(location.frame_count > 0);
		if (location.frame_count)
			CHECK_STR(location.frames[location.frame_count - 1].function,
				  function->name);
	}
	/* Gone: an address in none of its mappings reads nothing again. */
	process_table__end_window(stage.table);
	process_table__sync_window(stage.table, &window);
	process_table__stats(stage.table, &stats);
	CHECK(stats.capture_failures == 1 && stats.refreshes == 0);
	/* The file kiln never opened: in a mapping, unnamed. */
	mapping = process_table__find_mapping(stage.table, pid, unknown + 0x10);
	CHECK(mapping != NULL && mapping->path && mapping->path[0] == '\0');
	sample_window__free(&window);
cleanup:
	stop_fixture(&process);
	stage_free(&stage);
}

/*
 * Captured early, inside its dynamic loader (here: without the mapping its
 * functions are in), then gone before the window that sampled them: the
 * re-read fails, and the kernel's record, filled again since, names them.
 */
static void test_early_capture_completed_from_kernel_entry(void)
{
	struct fixture_process process;
	struct process_table_stats stats;
	struct proc_maps partial = {};
	struct sample_window window;
	const struct proc_mapping *mapping;
	struct stage stage;
	uint64_t unknown;
	uint32_t pid;

	if (!stage_new(&stage, true))
		goto cleanup;
	pid = exited_fixture(&stage, &process, &unknown);
	if (!pid)
		goto cleanup;
	partial.mappings = calloc(process.maps.count, sizeof(*partial.mappings));
	CHECK(partial.mappings != NULL);
	for (size_t i = 0; partial.mappings && i < process.maps.count; i++) {
		const struct proc_mapping *m = &process.maps.mappings[i];

		if (m->start <= process.functions[0].addr && process.functions[0].addr < m->end)
			continue;
		partial.mappings[partial.count] = *m;
		partial.mappings[partial.count++].path = strdup(m->path);
	}
	CHECK(partial.count > 0 && partial.count < process.maps.count);
	CHECK(process_table__insert(stage.table, pid, &partial, NULL) == 0);
	CHECK(process_table__find_mapping(stage.table, pid, process.functions[0].addr) == NULL);

	make_window(&window, pid, &process.functions[0].addr, 1);
	process_table__sync_window(stage.table, &window);
	process_table__stats(stage.table, &stats);
	CHECK(stats.refreshes >= 1 && stats.from_kernel == 1);
	mapping = process_table__find_mapping(stage.table, pid, process.functions[0].addr);
	CHECK(mapping != NULL && strstr(mapping->path, "fixture_pie") != NULL);
	sample_window__free(&window);
cleanup:
	procmaps__free(&partial);
	stop_fixture(&process);
	stage_free(&stage);
}

/* Without the kernel's record, as before: the exited process stays unknown, its frames unnamed. */
static void test_exited_process_unknown_without_reader(void)
{
	struct fixture_process process;
	struct process_table_stats stats;
	struct sample_window window;
	struct stage stage;
	uint64_t unknown;
	uint32_t pid;

	if (!stage_new(&stage, false))
		goto cleanup;
	pid = exited_fixture(&stage, &process, &unknown);
	if (!pid)
		goto cleanup;
	make_window(&window, pid, &process.functions[0].addr, 1);
	process_table__sync_window(stage.table, &window);
	process_table__stats(stage.table, &stats);
	CHECK(stats.capture_failures == 1 && stats.from_kernel == 0);
	CHECK(process_table__find_mapping(stage.table, pid, process.functions[0].addr) == NULL);
	sample_window__free(&window);
cleanup:
	stop_fixture(&process);
	stage_free(&stage);
}

/* The entry as the kernel encodes it, read back: device split, offset kept, order checked. */
static void test_kernel_maps_read(void)
{
	static struct process_unwind entry;
	struct proc_maps maps = {};
	struct stage stage;
	uint32_t pid = 4242;

	if (!stage_new(&stage, false))
		goto cleanup;
	CHECK(kernel_maps__read(stage.processes_fd, pid, &maps) == -ENOENT);
	memset(&entry, 0, sizeof(entry));
	entry.mapping_count = 3;
	entry.mappings[0] = (struct unwind_mapping){
		.start = 0x1000,
		.end = 0x3000,
		.file_offset = 0x2000,
		.inode = 77,
		.dev = UNWIND_DEV(259, 0x12345),
	};
	/* Overlaps the first: a torn entry, skipped. */
	entry.mappings[1] = (struct unwind_mapping){ .start = 0x2000, .end = 0x4000, .inode = 78 };
	entry.mappings[2] = (struct unwind_mapping){ .start = 0x5000, .end = 0x6000 };
	CHECK(bpf_map_update_elem(stage.processes_fd, &pid, &entry, BPF_ANY) == 0);
	CHECK(kernel_maps__read(stage.processes_fd, pid, &maps) == 0);
	CHECK(maps.count == 2);
	if (maps.count == 2) {
		CHECK(maps.mappings[0].dev_major == 259 && maps.mappings[0].dev_minor == 0x12345);
		CHECK(maps.mappings[0].offset == 0x2000 && maps.mappings[0].inode == 77);
		CHECK(maps.mappings[0].perms & PROC_MAP_EXEC);
		CHECK_STR(maps.mappings[0].path, "");
		CHECK(maps.mappings[1].start == 0x5000 && maps.mappings[1].inode == 0);
	}
	procmaps__free(&maps);
cleanup:
	stage_free(&stage);
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_kernel_maps_read),
		TEST(test_exited_process_named_from_kernel_entry),
		TEST(test_early_capture_completed_from_kernel_entry),
		TEST(test_exited_process_unknown_without_reader),
	};
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int probe = bpf_map_create(BPF_MAP_TYPE_HASH, "test_probe", 4, 4, 1, &opts);

	if (probe < 0) {
		printf("skip kernel_maps: creating BPF maps: %s (needs root)\n", strerror(errno));
		return 0;
	}
	close(probe);
	return testing_run("kernel_maps", tests, sizeof(tests) / sizeof(tests[0]));
}
