// SPDX-License-Identifier: Apache-2.0
/*
 * DWARF lines, inlined frames and demangled names: runs the inline fixtures
 * (tests/fixtures/inline_*), resolves every address of chosen functions in
 * the live process, and checks the frames against the fixture sources'
 * MARK comments and nm's symbols, read independently of kiln.
 * tests/integration/test_symbolize_golden.py compares with llvm-symbolizer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolizer/demangle.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/testing.h"

#define SOURCE_DIR FIXTURE_SOURCE_DIR
#define MAX_MARKS 32

struct mark {
	char name[48];
	uint32_t line;
};

struct source {
	char path[512];
	struct mark marks[MAX_MARKS];
	size_t count;
};

/* The fixture source's "MARK:name" comments and their line numbers. */
static int read_marks(const char *file, struct source *source)
{
	char line[512];
	uint32_t number = 0;
	FILE *in;

	memset(source, 0, sizeof(*source));
	snprintf(source->path, sizeof(source->path), "%s/%s", SOURCE_DIR, file);
	in = fopen(source->path, "re");
	if (!in)
		return -errno;
	while (fgets(line, sizeof(line), in)) {
		const char *mark = strstr(line, "MARK:");

		number++;
		if (mark && source->count < MAX_MARKS) {
			struct mark *m = &source->marks[source->count++];

			sscanf(mark + 5, "%47[a-z_]", m->name);
			m->line = number;
		}
	}
	fclose(in);
	return 0;
}

static uint32_t mark_line(const struct source *source, const char *name)
{
	for (size_t i = 0; i < source->count; i++)
		if (strcmp(source->marks[i].name, name) == 0)
			return source->marks[i].line;
	fprintf(stderr, "no MARK:%s in %s\n", name, source->path);
	return UINT32_MAX;
}

/* A function's value and size as nm prints them. */
static int nm_function(const char *path, const char *symbol, uint64_t *ret_start,
		       uint64_t *ret_size)
{
	char command[1024], line[1024], name[512];
	unsigned long long start, size;
	int err = -ENOENT;
	FILE *pipe;

	snprintf(command, sizeof(command), "nm -S --defined-only '%s'", path);
	pipe = popen(command, "r");
	if (!pipe)
		return -errno;
	while (fgets(line, sizeof(line), pipe)) {
		char type;

		if (sscanf(line, "%llx %llx %c %511s", &start, &size, &type, name) == 4 &&
		    strcmp(name, symbol) == 0) {
			*ret_start = start;
			*ret_size = size;
			err = 0;
		}
	}
	pclose(pipe);
	return err;
}

struct fixture {
	pid_t pid;
	int stdin_fd;
	struct proc_maps maps;
	char path[512];
};

/* Starts a fixture; it prints "ready" and waits for stdin to close. */
static int start_fixture(const char *name, struct fixture *fixture)
{
	int to_child[2], from_child[2];
	char line[64] = "";
	FILE *out;

	memset(fixture, 0, sizeof(*fixture));
	snprintf(fixture->path, sizeof(fixture->path), "%s/%s", FIXTURE_DIR, name);
	if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0)
		return -errno;
	fixture->pid = fork();
	if (fixture->pid < 0)
		return -errno;
	if (fixture->pid == 0) {
		dup2(to_child[0], STDIN_FILENO);
		dup2(from_child[1], STDOUT_FILENO);
		execl(fixture->path, fixture->path, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	fixture->stdin_fd = to_child[1];
	out = fdopen(from_child[0], "r");
	if (!out)
		return -errno;
	if (!fgets(line, sizeof(line), out) || strcmp(line, "ready\n") != 0) {
		fclose(out);
		return -EPROTO;
	}
	fclose(out);
	return procmaps__read(fixture->pid, true, &fixture->maps);
}

static void stop_fixture(struct fixture *fixture)
{
	if (fixture->pid > 0) {
		kill(fixture->pid, SIGKILL);
		waitpid(fixture->pid, NULL, 0);
		close(fixture->stdin_fd);
		fixture->pid = 0;
	}
	procmaps__free(&fixture->maps);
}

/* The load bias of one of the fixture's mappings, read from its file alone. */
static int load_bias(const struct fixture *fixture, const struct proc_mapping *mapping,
		     uint64_t *ret_bias)
{
	struct elf_file *elf = NULL;
	int err, fd;

	fd = open(fixture->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_file__probe(fd);
	err = elf ? elf_file__load(elf) : -errno;
	if (!err)
		err = elf_file__load_bias(elf, mapping->start, mapping->offset,
					  mapping->end - mapping->start, ret_bias);
	elf_file__free(elf);
	close(fd);
	return err;
}

/* The process address of a virtual address of the fixture's executable. */
static int process_address(const struct fixture *fixture, uint64_t vaddr, uint64_t *ret_address)
{
	for (size_t i = 0; i < fixture->maps.count; i++) {
		const struct proc_mapping *mapping = &fixture->maps.mappings[i];
		uint64_t bias;

		if (strcmp(mapping->path, fixture->path) != 0 ||
		    load_bias(fixture, mapping, &bias) < 0)
			continue;
		if (vaddr + bias >= mapping->start && vaddr + bias < mapping->end) {
			*ret_address = vaddr + bias;
			return 0;
		}
	}
	return -ENOENT;
}

static int resolve(struct symbolizer *symbolizer, const struct fixture *fixture, uint64_t vaddr,
		   struct symbolized_location *ret_location)
{
	const struct proc_mapping *mapping;
	uint64_t address;
	int err;

	err = process_address(fixture, vaddr, &address);
	if (err)
		return err;
	mapping = procmaps__find(&fixture->maps, address);
	if (!mapping)
		return -ENOENT;
	return symbolizer__resolve_user(symbolizer, fixture->pid, mapping, address, false,
					ret_location);
}

/* One function of an inline chain as the fixture source says it must look. */
struct expected_function {
	const char *name; /* display name */
	const char *decl_mark; /* MARK of its declaration: start_line */
};

/* Where a caller calls a callee: the caller frame's line above that callee's frame. */
struct expected_call {
	const char *caller;
	const char *callee;
	const char *mark;
};

struct chain_check {
	const char *fixture;
	const char *source_file;
	const char *symbol; /* the outer function, as nm names it */
	const struct expected_function *functions;
	size_t function_count;
	const struct expected_call *calls;
	size_t call_count;
	const char *const *deepest; /* the longest chain, innermost first, which must occur */
	size_t deepest_length;
};

static const struct expected_function *find_function(const struct chain_check *check,
						     const char *name)
{
	for (size_t i = 0; i < check->function_count; i++)
		if (strcmp(check->functions[i].name, name) == 0)
			return &check->functions[i];
	return NULL;
}

static const char *call_mark(const struct chain_check *check, const char *caller,
			     const char *callee)
{
	for (size_t i = 0; i < check->call_count; i++)
		if (strcmp(check->calls[i].caller, caller) == 0 &&
		    strcmp(check->calls[i].callee, callee) == 0)
			return check->calls[i].mark;
	return NULL;
}

/*
 * Every address of the outer function: each frame is a known function of
 * the fixture source with its declaration line, the outermost is the outer
 * function, every caller frame sits on the line of its call, and the
 * deepest chain occurs somewhere.
 */
static void check_inline_chains(const struct chain_check *check)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct fixture fixture;
	struct source source;
	uint64_t start = 0, size = 0;
	size_t deepest_seen = 0, with_inlines = 0;
	int failures_before = testing_failures;

	CHECK(symbolizer != NULL);
	CHECK(read_marks(check->source_file, &source) == 0);
	CHECK(start_fixture(check->fixture, &fixture) == 0);
	CHECK(nm_function(fixture.path, check->symbol, &start, &size) == 0 && size > 0);
	for (uint64_t vaddr = start; symbolizer && vaddr < start + size; vaddr++) {
		struct symbolized_location location = {};
		const struct symbolized_frame *frames = location.frames;
		size_t count;

		if (resolve(symbolizer, &fixture, vaddr, &location) != 0 ||
		    location.frame_count == 0) {
			CHECK(!"every address of the function resolves");
			break;
		}
		count = location.frame_count;
		CHECK_STR(frames[count - 1].function, check->functions[0].name);
		with_inlines += count > 1;
		for (size_t i = 0; i < count; i++) {
			const struct expected_function *expected =
				find_function(check, frames[i].function);

			CHECK(expected != NULL);
			CHECK_STR(frames[i].file, source.path);
			if (expected)
				CHECK(frames[i].start_line ==
				      mark_line(&source, expected->decl_mark));
			if (i > 0) {
				const char *mark = call_mark(check, frames[i].function,
							     frames[i - 1].function);

				CHECK(mark && frames[i].line == mark_line(&source, mark));
			}
		}
		if (count == check->deepest_length) {
			bool same = true;

			for (size_t i = 0; i < count; i++)
				same = same && strcmp(frames[i].function, check->deepest[i]) == 0;
			deepest_seen += same;
		}
		if (testing_failures != failures_before) {
			fprintf(stderr, "%s: first wrong frames at 0x%" PRIx64 "\n", check->fixture,
				vaddr);
			break;
		}
	}
	CHECK(with_inlines > 0);
	CHECK(deepest_seen > 0);
	stop_fixture(&fixture);
	symbolizer__free(symbolizer);
}

/* GCC names static functions by DW_AT_name alone; clang gives them a linkage name. */
static void check_cpp(const char *fixture, const char *mix_name)
{
	const struct expected_function functions[] = {
		{ "ns::Type<double>::method(int)", "method_decl" },
		{ "double ns::scale<double>(double, int)", "scale_decl" },
		{ mix_name, "mix_decl" },
	};
	const struct expected_call calls[] = {
		{ functions[0].name, functions[1].name, "method" },
		{ functions[1].name, functions[2].name, "scale" },
	};
	const char *const deepest[] = { functions[2].name, functions[1].name, functions[0].name };
	const struct chain_check check = {
		fixture,
		"inline_cpp.cc",
		"_ZN2ns4TypeIdE6methodEi",
		functions,
		3,
		calls,
		2,
		deepest,
		3,
	};

	check_inline_chains(&check);
}

static void test_cpp_gcc(void)
{
	check_cpp("inline_cpp_gcc", "mix");
}

static void test_cpp_clang(void)
{
	check_cpp("inline_cpp_clang", "ns::mix(unsigned long)");
}

static void check_c(const char *fixture)
{
	const struct expected_function functions[] = {
		{ "compute", "compute_decl" },
		{ "twice", "twice_decl" },
		{ "sum_squares", "sum_squares_decl" },
		{ "square", "square_decl" },
	};
	const struct expected_call calls[] = {
		{ "compute", "twice", "compute" },
		{ "compute", "square", "compute_square" },
		{ "twice", "sum_squares", "twice" },
		{ "sum_squares", "square", "sum_squares" },
	};
	const char *const deepest[] = { "square", "sum_squares", "twice", "compute" };
	const struct chain_check check = {
		fixture, "inline_c.c", "compute", functions, 4, calls, 4, deepest, 4,
	};

	check_inline_chains(&check);
}

static void test_c_gcc(void)
{
	check_c("inline_c_gcc");
}

static void test_c_clang(void)
{
	check_c("inline_c_clang");
}

/*
 * Compressed DWARF, as in distributions' debug files: libdw decompresses
 * it, kiln hides the sections it never reads (locations, macros) from
 * libdw and drops the compressed pages; the frames must not change.
 */
static void test_compressed(void)
{
	check_c("inline_c_gcc_gz");
	check_cpp("inline_cpp_gcc_gz", "mix");
}

/* Without DWARF, the symbol table still gives the demangled name, and no line. */
static void test_symbols_demangled_without_dwarf(void)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolized_location location = {};
	struct fixture fixture;
	struct symbolizer_stats stats;
	uint64_t start = 0, size = 0;

	CHECK(start_fixture("inline_cpp_nodebug", &fixture) == 0);
	CHECK(nm_function(fixture.path, "_ZN2ns4TypeIdE6methodEi", &start, &size) == 0);
	CHECK(symbolizer && resolve(symbolizer, &fixture, start + size / 2, &location) == 0);
	CHECK(location.frame_count == 1);
	CHECK_STR(location.frames[0].function, "ns::Type<double>::method(int)");
	CHECK_STR(location.frames[0].system_name, "_ZN2ns4TypeIdE6methodEi");
	CHECK(location.frames[0].file == NULL && location.frames[0].line == 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_files_opened == 0 && stats.dwarf_errors == 0);
	stop_fixture(&fixture);
	symbolizer__free(symbolizer);
}

/* Resolves the middle of symbol in an already started fixture; returns the frame count. */
static size_t resolve_symbol(struct symbolizer *symbolizer, const struct fixture *fixture,
			     const char *symbol, struct symbolized_location *ret_location)
{
	uint64_t start = 0, size = 0;

	if (nm_function(fixture->path, symbol, &start, &size) != 0 ||
	    resolve(symbolizer, fixture, start + size / 2, ret_location) != 0)
		return 0;
	return ret_location->frame_count;
}

static void check_same_frames(const struct symbolized_location *a,
			      const struct symbolized_location *b)
{
	CHECK(a->frame_count > 1 && a->frame_count == b->frame_count);
	for (size_t i = 0; i < a->frame_count && i < b->frame_count; i++) {
		CHECK_STR(a->frames[i].function, b->frames[i].function);
		CHECK_STR(a->frames[i].file, b->frames[i].file);
		CHECK(a->frames[i].line > 0 && a->frames[i].line == b->frames[i].line);
		CHECK(a->frames[i].start_line == b->frames[i].start_line);
	}
}

/*
 * Compressed DWARF is written decompressed to a file once and read from
 * there: the same frames as from libdw's heap copy, less heap held, and
 * opened again (after being closed for memory) from the copy, not
 * decompressed again.
 */
static void test_compressed_read_from_copy(void)
{
	struct symbolizer_opts heap_opts = { .decompressed_dir = "" };
	struct symbolizer_opts copy_opts = { .decompressed_dir = FIXTURE_DIR,
					     .max_dwarf_memory = 1024 };
	struct symbolizer *heap = symbolizer__new(&heap_opts);
	struct symbolizer *copy = symbolizer__new(&copy_opts);
	struct symbolized_location from_heap = {}, from_copy = {}, again = {};
	struct symbolizer_stats heap_stats = {}, copy_stats = {};
	struct fixture c;

	CHECK(start_fixture("inline_c_gcc_gz", &c) == 0);
	CHECK(heap && copy);
	CHECK(resolve_symbol(heap, &c, "compute", &from_heap) > 1);
	CHECK(resolve_symbol(copy, &c, "compute", &from_copy) > 1);
	check_same_frames(&from_heap, &from_copy);
	symbolizer__stats(heap, &heap_stats);
	symbolizer__stats(copy, &copy_stats);
	CHECK(heap_stats.dwarf_decompressed == 0 && heap_stats.dwarf_decompressed_bytes == 0);
	CHECK(copy_stats.dwarf_decompressed == 1 && copy_stats.dwarf_decompressed_bytes > 0);
	CHECK(copy_stats.dwarf_decompress_failed == 0);
	/* The decompressed sections are not in the heap any more. */
	CHECK(copy_stats.dwarf_memory < heap_stats.dwarf_memory);
	/* Over its tiny bound: closed at the window's end, read again from the copy. */
	symbolizer__end_window(copy);
	symbolizer__stats(copy, &copy_stats);
	CHECK(copy_stats.dwarf_memory == 0);
	CHECK(resolve_symbol(copy, &c, "compute", &again) > 1);
	check_same_frames(&from_heap, &again);
	symbolizer__stats(copy, &copy_stats);
	CHECK(copy_stats.dwarf_files_opened == 2 && copy_stats.dwarf_decompressed == 1);
	stop_fixture(&c);
	symbolizer__free(heap);
	symbolizer__free(copy);
}

/*
 * Between windows libdw's reader is closed and the units' tables stay: the
 * same frames again without reading the file, less memory held; a unit not
 * read yet opens the reader again, counted, with the frames a fresh
 * symbolizer gives.
 */
static void test_reader_closed_between_windows(void)
{
	struct symbolizer *fresh = symbolizer__new(NULL), *symbolizer = symbolizer__new(NULL);
	struct symbolized_location expected = {}, location = {};
	struct symbolizer_stats stats = {};
	uint64_t open_memory;
	struct fixture c;

	CHECK(start_fixture("inline_c_gcc", &c) == 0);
	CHECK(fresh && symbolizer);
	CHECK(resolve_symbol(fresh, &c, "compute", &expected) > 1);
	CHECK(resolve_symbol(symbolizer, &c, "compute", &location) > 1);
	check_same_frames(&expected, &location);
	symbolizer__stats(symbolizer, &stats);
	open_memory = stats.dwarf_memory;
	symbolizer__end_window(symbolizer);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_reader_closes == 1 && stats.dwarf_memory_evictions == 0);
	CHECK(stats.dwarf_memory > 0 && stats.dwarf_memory < open_memory);
	CHECK(resolve_symbol(symbolizer, &c, "compute", &location) > 1);
	check_same_frames(&expected, &location);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_reader_reopens == 0 && stats.dwarf_files_opened == 1);
	CHECK(resolve_symbol(fresh, &c, "extra", &expected) > 1);
	CHECK(resolve_symbol(symbolizer, &c, "extra", &location) > 1);
	check_same_frames(&expected, &location);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_reader_reopens == 1 && stats.dwarf_files_opened == 1);
	stop_fixture(&c);
	symbolizer__free(fresh);
	symbolizer__free(symbolizer);
}

/* Fewer DWARF files open than in use: closed and reopened, counted, same answers. */
/*
 * The memory bound: with room for less than two files' DWARF, reading a
 * second closes the first (never the one being read). The first is read
 * again when needed, the same frames, closing the second; after
 * SYMBOLIZER_DWARF_READS_AFTER_CLOSE closes in a window it gets symbols
 * only for the rest of the window, counted, and reads the same again in the
 * next. With room for both, nothing is closed.
 */
static void check_dwarf_memory_limit(uint64_t max_dwarf_memory, bool evicts)
{
	struct symbolizer_opts opts = { .max_dwarf_memory = max_dwarf_memory };
	struct symbolizer *symbolizer = symbolizer__new(&opts);
	struct symbolized_location first = {}, again = {}, other = {};
	struct symbolizer_stats stats = {};
	char first_function[256] = "";
	struct fixture c, cpp;
	const uint64_t rounds = SYMBOLIZER_DWARF_READS_AFTER_CLOSE - 1;
	uint64_t one_file;

	CHECK(start_fixture("inline_c_gcc_gz", &c) == 0);
	CHECK(start_fixture("inline_cpp_gcc_gz", &cpp) == 0);
	CHECK(symbolizer && resolve_symbol(symbolizer, &c, "compute", &first) > 0);
	snprintf(first_function, sizeof(first_function), "%s", first.frames[0].function);
	symbolizer__stats(symbolizer, &stats);
	one_file = stats.dwarf_memory;
	/* Its units at least (over 1 KiB even for this small program). */
	CHECK(one_file > 1024);
	CHECK(resolve_symbol(symbolizer, &cpp, "_ZN2ns4TypeIdE6methodEi", &other) > 1);
	if (evicts) {
		/* Read in turn, each closing the other: every lookup with its lines. */
		for (uint64_t i = 0; i < rounds; i++) {
			CHECK(resolve_symbol(symbolizer, &c, "compute", &again) ==
			      first.frame_count);
			CHECK(again.frames[0].line == first.frames[0].line && !again.deferred);
			CHECK(resolve_symbol(symbolizer, &cpp, "_ZN2ns4TypeIdE6methodEi", &again) ==
			      other.frame_count);
			CHECK(!again.deferred);
		}
		/* Closed too often this window: its symbol, without lines. */
		CHECK(resolve_symbol(symbolizer, &c, "compute", &again) == 1);
		CHECK(again.frames[0].line == 0);
		/* Said so, so that the symbol history does not keep it without lines. */
		CHECK(again.deferred);
		symbolizer__stats(symbolizer, &stats);
		CHECK(stats.dwarf_lookups_deferred == 1);
		CHECK(stats.dwarf_files_opened == 2 + 2 * rounds);
		/* The window ends: the second file, alone over the bound, is closed too. */
		symbolizer__end_window(symbolizer);
	}
	CHECK(!first.deferred);
	CHECK(resolve_symbol(symbolizer, &c, "compute", &again) == first.frame_count);
	CHECK_STR(again.frames[0].function, first_function);
	CHECK(!again.deferred);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_memory_evictions == (evicts ? 2 + 2 * rounds : 0));
	CHECK(stats.dwarf_files_opened == (evicts ? 3 + 2 * rounds : 2));
	/* Closed: only the first file's again, as much as the first time. */
	CHECK(evicts ? stats.dwarf_memory == one_file : stats.dwarf_memory > one_file);
	stop_fixture(&c);
	stop_fixture(&cpp);
	symbolizer__free(symbolizer);
}

static void test_dwarf_memory_limit(void)
{
	check_dwarf_memory_limit(2048, true);
	check_dwarf_memory_limit(64 << 20, false);
}

static void test_dwarf_file_limit(void)
{
	struct symbolizer_opts opts = { .max_dwarf_files = 1 };
	struct symbolizer *symbolizer = symbolizer__new(&opts);
	struct symbolized_location first = {}, again = {};
	struct fixture c, cpp;
	struct symbolizer_stats stats;
	char first_function[256] = "";

	CHECK(start_fixture("inline_c_gcc", &c) == 0);
	CHECK(start_fixture("inline_cpp_gcc", &cpp) == 0);
	CHECK(symbolizer && resolve_symbol(symbolizer, &c, "compute", &first) > 0);
	snprintf(first_function, sizeof(first_function), "%s", first.frames[0].function);
	CHECK(resolve_symbol(symbolizer, &cpp, "_ZN2ns4TypeIdE6methodEi", &again) > 0);
	CHECK(!first.deferred);
	CHECK(resolve_symbol(symbolizer, &c, "compute", &again) == first.frame_count);
	CHECK_STR(again.frames[0].function, first_function);
	CHECK(!again.deferred);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_files_opened == 3);
	CHECK(stats.dwarf_files_evicted == 2);
	stop_fixture(&c);
	stop_fixture(&cpp);
	symbolizer__free(symbolizer);
}

/* Index rows of one unit, from a fresh symbolizer that resolved only there. */
static uint64_t unit_rows(const struct fixture *fixture, const char *symbol)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolized_location location = {};
	struct symbolizer_stats stats = {};

	if (symbolizer && resolve_symbol(symbolizer, fixture, symbol, &location) > 0)
		symbolizer__stats(symbolizer, &stats);
	symbolizer__free(symbolizer);
	return stats.dwarf_index_rows;
}

/*
 * inline_c has two units. With room for the larger alone, going back and
 * forth drops and rebuilds indexes; with room for neither, lines still come
 * from the line table. Both are counted.
 */
static void test_index_limit(void)
{
	const char *symbols[] = { "compute", "extra", "compute", "extra" };
	struct symbolized_location expected[2] = {}, location = {};
	struct symbolizer_opts opts = {};
	struct symbolizer_stats stats;
	struct symbolizer *symbolizer;
	struct fixture fixture;
	uint64_t compute_rows, extra_rows;
	char names[2][256];

	CHECK(start_fixture("inline_c_gcc", &fixture) == 0);
	compute_rows = unit_rows(&fixture, "compute");
	extra_rows = unit_rows(&fixture, "extra");
	CHECK(compute_rows > 1 && extra_rows > 1);

	symbolizer = symbolizer__new(NULL);
	for (size_t i = 0; i < 2 && symbolizer; i++) {
		CHECK(resolve_symbol(symbolizer, &fixture, symbols[i], &expected[i]) > 1);
		snprintf(names[i], sizeof(names[i]), "%s", expected[i].frames[0].function);
	}
	symbolizer__free(symbolizer);

	opts.max_dwarf_index_rows = compute_rows > extra_rows ? compute_rows : extra_rows;
	symbolizer = symbolizer__new(&opts);
	for (size_t i = 0; i < 4 && symbolizer; i++) {
		CHECK(resolve_symbol(symbolizer, &fixture, symbols[i], &location) ==
		      expected[i % 2].frame_count);
		CHECK_STR(location.frames[0].function, names[i % 2]);
	}
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_index_resets >= 3 && stats.dwarf_units_not_indexed == 0);
	symbolizer__free(symbolizer);

	opts.max_dwarf_index_rows = 1;
	symbolizer = symbolizer__new(&opts);
	CHECK(symbolizer && resolve_symbol(symbolizer, &fixture, "compute", &location) == 1);
	CHECK_STR(location.frames[0].function, "compute");
	CHECK(location.frames[0].file && location.frames[0].line > 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.dwarf_units_not_indexed == 1 && stats.dwarf_index_rows == 0);
	symbolizer__free(symbolizer);
	stop_fixture(&fixture);
}

static void check_demangle(const char *mangled, const char *expected)
{
	char buffer[512];
	bool truncated = true;

	CHECK(demangle__name(mangled, buffer, sizeof(buffer), &truncated) == 0);
	CHECK_STR(buffer, expected);
	CHECK(!truncated);
}

static void test_demangle_cpp(void)
{
	check_demangle("_ZN2ns4TypeIdE6methodEi", "ns::Type<double>::method(int)");
	check_demangle("_ZNSt6vectorIiSaIiEE9push_backEOi",
		       "std::vector<int, std::allocator<int> >::push_back(int&&)");
	check_demangle("_ZZ4mainENKUliE_clEi", "main::{lambda(int)#1}::operator()(int) const");
	check_demangle("_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo()");
	check_demangle("_ZNK2ns4TypeIdE6methodEi.cold",
		       "ns::Type<double>::method(int) const [clone .cold]");
}

/* Legacy Rust names end in a hash the display leaves out, as rustc-demangle's {:#} does. */
static void test_demangle_rust_legacy(void)
{
	check_demangle("_ZN4core3fmt5Write9write_fmt17h3e4f1a2b3c4d5e6fE",
		       "core::fmt::Write::write_fmt");
	check_demangle("_ZN5alloc3oom3oom17h722648b727b8bcd0E", "alloc::oom::oom");
}

/* Rust v0 (RFC 2603): examples from the RFC and the rustc book, and one from rustc 1.95. */
static void test_demangle_rust_v0(void)
{
	check_demangle("_RNvCs15kBYyAo9fc_7mycrate7example", "mycrate::example");
	check_demangle("_RNvMsr_NtCs3ssYzQotkvD_3std4pathNtB5_7PathBuf3newCs15kBYyAo9fc_7mycrate",
		       "<std::path::PathBuf>::new");
	check_demangle("_RNvXCs15kBYyAo9fc_7mycrateNtB2_7ExampleNtB2_5Trait3foo",
		       "<mycrate::Example as mycrate::Trait>::foo");
	check_demangle("_RNCNvCsgStHSCytQ6I_7mycrate4mains_0B3_", "mycrate::main::{closure#1}");
	check_demangle("_RINvCsgStHSCytQ6I_7mycrate7examplelKj1_EB2_",
		       "mycrate::example::<i32, 1>");
	check_demangle("_RINvCs7qp2U7fqm6G_7mycrate7exampleFG0_RL1_hRL0_tEuEB2_",
		       "mycrate::example::<for<'a, 'b> fn(&'a u8, &'b u16)>");
	check_demangle("_RNvCs6GmmlP4bgsG_1r4main", "r::main");
	/* Punycode identifiers decode to UTF-8. */
	check_demangle("_RNvC7mycrateu30____7hkackfecea1cbdathfdh9hlq6y",
		       "mycrate::საჭმელად_გემრიელი_სადილი");
}

static void test_demangle_rejects(void)
{
	char buffer[64] = "untouched";

	CHECK(demangle__name("main", buffer, sizeof(buffer), NULL) == -EINVAL);
	CHECK_STR(buffer, "");
	CHECK(demangle__name("_Znot_mangled", buffer, sizeof(buffer), NULL) == -EINVAL);
	CHECK(demangle__name("_R", buffer, sizeof(buffer), NULL) == -EINVAL);
	CHECK(demangle__name("_GLOBAL__sub_I_main", buffer, sizeof(buffer), NULL) == -EINVAL);
}

/* A name longer than the buffer ends in "..." and never splits a UTF-8 character. */
static void test_demangle_truncates(void)
{
	char buffer[16], mangled[DEMANGLE_MAX_MANGLED + 64];
	bool truncated = false;
	size_t length;

	CHECK(demangle__name("_ZN2ns4TypeIdE6methodEi", buffer, sizeof(buffer), &truncated) == 0);
	CHECK(truncated);
	CHECK_STR(buffer, "ns::Type<dou...");
	/* "mycrate::" is 9 bytes, then 3-byte characters: a cut inside one backs up. */
	CHECK(demangle__name("_RNvC7mycrateu30____7hkackfecea1cbdathfdh9hlq6y", buffer,
			     sizeof(buffer), &truncated) == 0);
	length = strlen(buffer);
	CHECK(truncated && length < sizeof(buffer) && strcmp(buffer + length - 3, "...") == 0);
	CHECK(strncmp(buffer, "mycrate::", 9) == 0 && length == 9 + 3 + 3);

	/* Mangled names past the limit are not demangled at all. */
	strcpy(mangled, "_ZN");
	for (length = 3; length + 12 < sizeof(mangled) - 8;)
		length += (size_t)sprintf(mangled + length, "9abcdefghi");
	strcpy(mangled + length, "Ev");
	CHECK(demangle__name(mangled, buffer, sizeof(buffer), NULL) == -E2BIG);
}

/*
 * Names through a fake kallsyms: a long mangled one (1500 characters
 * demangled, as C++ templates give) comes out whole; a display name longer
 * than SYMBOLIZER_MAX_NAME is cut, ends in "..." and is counted.
 */
static void test_long_names(void)
{
	char path[] = "/tmp/kiln-test-kallsyms-XXXXXX", mangled[2048];
	struct symbolizer_opts opts = { .kallsyms_path = path };
	struct symbolized_location location = {};
	struct symbolizer *symbolizer;
	struct symbolizer_stats stats;
	size_t length = 3;
	FILE *file;
	int fd;

	strcpy(mangled, "_ZN");
	while (length < 1500)
		length += (size_t)sprintf(mangled + length, "9abcdefghi");
	strcpy(mangled + length, "Ev");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	file = fdopen(fd, "w");
	CHECK(file != NULL);
	if (!file)
		return;
	fprintf(file, "ffffffff81000000 T %s\nffffffff81001000 T ", mangled);
	/* Versioned, so the display name is a copy without the version. */
	for (size_t i = 0; i < SYMBOLIZER_MAX_NAME + 100; i++)
		fputc('k', file);
	fprintf(file, "@@V1\nffffffff81002000 T _RNvCs15kBYyAo9fc_7mycrate7example\n"
		      "ffffffff81003000 T end_marker\n");
	fclose(file);
	symbolizer = symbolizer__new(&opts);
	CHECK(symbolizer &&
	      symbolizer__resolve_kernel(symbolizer, 0xffffffff81000010, false, &location) == 0);
	CHECK(location.frame_count == 1);
	if (location.frame_count == 1) {
		length = strlen(location.frames[0].function);
		CHECK(length == 150 * strlen("abcdefghi::") - 2 + strlen("()"));
		CHECK(strncmp(location.frames[0].function, "abcdefghi::abcdefghi::", 22) == 0);
		CHECK(strcmp(location.frames[0].function + length - 11, "abcdefghi()") == 0);
		CHECK_STR(location.frames[0].system_name, mangled);
	}
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81001010, false, &location) == 0);
	if (location.frame_count == 1) {
		length = strlen(location.frames[0].function);
		CHECK(length == SYMBOLIZER_MAX_NAME - 1);
		CHECK(strcmp(location.frames[0].function + length - 4, "k...") == 0);
		CHECK(strlen(location.frames[0].system_name) == SYMBOLIZER_MAX_NAME + 100 + 4);
	}
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81002008, false, &location) == 0);
	CHECK_STR(location.frames[0].function, "mycrate::example");
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.names_truncated == 1);
	symbolizer__free(symbolizer);
	unlink(path);
}

TEST_MAIN("dwarf", TEST(test_cpp_gcc), TEST(test_cpp_clang), TEST(test_c_gcc), TEST(test_c_clang),
	  TEST(test_compressed), TEST(test_compressed_read_from_copy),
	  TEST(test_symbols_demangled_without_dwarf), TEST(test_dwarf_file_limit),
	  TEST_ROOT(test_dwarf_memory_limit, "reads its own mappings through /proc/self/map_files"),
	  TEST(test_index_limit), TEST(test_reader_closed_between_windows), TEST(test_demangle_cpp),
	  TEST(test_demangle_rust_legacy), TEST(test_demangle_rust_v0), TEST(test_demangle_rejects),
	  TEST(test_demangle_truncates), TEST(test_long_names))
