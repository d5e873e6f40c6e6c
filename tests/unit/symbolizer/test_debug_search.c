// SPDX-License-Identifier: Apache-2.0
/*
 * Where debug_search finds a file's debug information, in order: the
 * file itself, the build-id directory, .gnu_debuglink (three places, CRC
 * checked), MiniDebugInfo. The fixtures (tests/fixtures/build.sh) put debug
 * files whose function names say where they lie ("from_build_id_alpha",
 * "stale_alpha") in the places that must lose, so the names a lookup
 * returns show which file won.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/clock.h"

#include "symbolizer/debug_search.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/testing.h"

#define DEBUG_ROOT FIXTURE_DIR "/debugroot"
/* A debug directory with nothing in it: only the file's own neighbourhood counts. */
#define NO_DEBUG_DIR FIXTURE_DIR "/no-such-debug-dir"

struct lookup {
	char names[3][64]; /* what alpha, beta and gamma resolved to; "" for no symbol */
	size_t function_count;
	struct debug_search_stats stats;
	struct symbolizer_stats symbolizer_stats;
};

/* Runs a fixture and resolves its three functions with the given debug directory. */
static void look_up(const char *program, const char *debug_dir, struct lookup *ret_lookup)
{
	const struct debug_search_opts opts = { .debug_dir = debug_dir };
	struct symbolizer_stack stack;
	struct symbolizer *symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	struct fixture_process process;
	char path[512];

	memset(ret_lookup, 0, sizeof(*ret_lookup));
	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, program);
	CHECK(symbolizer != NULL);
	CHECK(start_fixture(path, &process) == 0);
	CHECK(process.function_count == 3);
	ret_lookup->function_count = process.function_count;
	for (size_t i = 0; symbolizer && i < process.function_count && i < 3; i++) {
		const uint64_t addr = process.functions[i].addr + 3;
		const struct proc_mapping *mapping = procmaps__find(&process.maps, addr);
		struct symbolized_location location = {};

		CHECK(mapping != NULL);
		if (mapping &&
		    symbolizer__resolve_user(symbolizer, process.pid, mapping, addr, false,
					     &location) == 0 &&
		    location.frame_count)
			snprintf(ret_lookup->names[i], sizeof(ret_lookup->names[i]), "%s",
				 location.frames[0].function);
	}
	if (symbolizer) {
		debug_search__stats(stack.debug_search, &ret_lookup->stats);
		symbolizer__stats(symbolizer, &ret_lookup->symbolizer_stats);
	}
	stop_fixture(&process);
	symbolizer_stack__free(&stack);
}

/*
 * alpha and beta resolved to PREFIX_alpha and PREFIX_beta: the debug files'
 * symbol tables are renamed to tell them apart. gamma is static, and a
 * local function takes its name from DWARF, which the renaming leaves
 * alone, so it only has to resolve.
 */
static void check_names(const struct lookup *lookup, const char *prefix)
{
	static const char *const functions[] = { "alpha", "beta" };
	char expected[64];

	CHECK(lookup->function_count == 3);
	CHECK(lookup->names[2][0] != '\0');
	for (size_t i = 0; i < 2; i++) {
		snprintf(expected, sizeof(expected), "%s_%s", prefix, functions[i]);
		CHECK_STR(lookup->names[i], expected);
	}
}

static void check_found(const struct lookup *lookup, uint64_t build_id, uint64_t debuglink,
			uint64_t minidebuginfo)
{
	CHECK(lookup->stats.build_id == build_id);
	CHECK(lookup->stats.debuglink == debuglink);
	CHECK(lookup->stats.minidebuginfo == minidebuginfo);
	CHECK(lookup->stats.debuginfod == 0);
	CHECK(!lookup->stats.debuginfod_enabled);
	/* The symbolizer reports the same counts as its cache's debug search. */
	CHECK(lookup->symbolizer_stats.debug_files_build_id == build_id);
	CHECK(lookup->symbolizer_stats.debug_files_debuglink == debuglink);
	CHECK(lookup->symbolizer_stats.debug_files_minidebuginfo == minidebuginfo);
	CHECK(lookup->symbolizer_stats.elf_open_errors == 0);
}

/* A file with DWARF is its own debug file: the build-id directory's copy is not read. */
static void test_file_itself_first(void)
{
	struct lookup lookup;

	look_up("fixture_pie", DEBUG_ROOT, &lookup);
	check_names(&lookup, "fixture");
	check_found(&lookup, 0, 0, 0);
}

static void test_build_id_before_debuglink(void)
{
	struct lookup lookup;

	look_up("debuglink-order/fixture_dl_order", DEBUG_ROOT, &lookup);
	check_names(&lookup, "from_build_id");
	check_found(&lookup, 1, 0, 0);
	/* Without the build-id directory, .gnu_debuglink's file next to it. */
	look_up("debuglink-order/fixture_dl_order", NO_DEBUG_DIR, &lookup);
	check_names(&lookup, "fixture");
	check_found(&lookup, 0, 1, 0);
}

static void test_debuglink_places(void)
{
	static const char *const programs[] = {
		"debuglink-same/fixture_dl_same", /* next to the file */
		"debuglink-subdir/fixture_dl_subdir", /* in .debug/ */
		"debuglink-debugdir/fixture_dl_debugdir", /* DEBUG_DIR/<the file's directory>/ */
	};
	struct lookup lookup;
	uint64_t value;
	char path[512];

	for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, programs[i]);
		/* Stripped: the names are only in the debug file. */
		CHECK(nm_address(path, "fixture_alpha", &value) == -ENOENT);
		look_up(programs[i], DEBUG_ROOT, &lookup);
		check_names(&lookup, "fixture");
		check_found(&lookup, 0, 1, 0);
	}
	/* The third place exists only under the debug directory. */
	look_up("debuglink-debugdir/fixture_dl_debugdir", NO_DEBUG_DIR, &lookup);
	CHECK_STR(lookup.names[0], "");
	check_found(&lookup, 0, 0, 0);
}

/* The CRC32 of a whole file, by an independent implementation (gzip's, through python3's zlib). */
static int crc32_of(const char *path, uint32_t *ret_crc)
{
	char command[1024], line[64];
	int err;

	snprintf(command, sizeof(command),
		 "python3 -c 'import sys, zlib; print(\"crc\", zlib.crc32(open(sys.argv[1], "
		 "\"rb\").read()))' '%s'",
		 path);
	err = command_line_with(command, "crc ", line, sizeof(line));
	if (!err)
		*ret_crc = (uint32_t)strtoul(line, NULL, 10);
	return err;
}

/*
 * The stale files have the program's build id and a .symtab: only their CRC
 * tells them apart, so taking one would show as "stale_" names.
 */
static void test_debuglink_crc_mismatch(void)
{
	char program[512], stale[512], good[512], id_program[128], id_stale[128];
	uint32_t crc_stale = 0, crc_good = 0;
	struct lookup lookup;

	snprintf(program, sizeof(program), "%s/debuglink-crc/fixture_dl_crc", FIXTURE_DIR);
	snprintf(stale, sizeof(stale), "%s/debuglink-crc/fixture_dl_crc.debug", FIXTURE_DIR);
	snprintf(good, sizeof(good), "%s/debuglink-crc/.debug/fixture_dl_crc.debug", FIXTURE_DIR);
	CHECK(readelf_build_id(program, id_program, sizeof(id_program)) == 0);
	CHECK(readelf_build_id(stale, id_stale, sizeof(id_stale)) == 0);
	CHECK_STR(id_stale, id_program);
	CHECK(crc32_of(stale, &crc_stale) == 0 && crc32_of(good, &crc_good) == 0);
	CHECK(crc_stale != crc_good);

	/* Next to the file comes first, but its CRC is wrong: .debug/'s is taken. */
	look_up("debuglink-crc/fixture_dl_crc", NO_DEBUG_DIR, &lookup);
	check_names(&lookup, "fixture");
	check_found(&lookup, 0, 1, 0);
	/* Only a stale file: nothing is taken, and nothing resolves. */
	look_up("debuglink-badcrc/fixture_dl_badcrc", NO_DEBUG_DIR, &lookup);
	for (size_t i = 0; i < 3; i++)
		CHECK_STR(lookup.names[i], "");
	check_found(&lookup, 0, 0, 0);
}

/* A .symtab without DWARF does not end the search: a debug file may have both. */
static void test_symtab_without_dwarf(void)
{
	struct lookup lookup;

	look_up("fixture_nodwarf", DEBUG_ROOT, &lookup);
	check_names(&lookup, "from_build_id");
	check_found(&lookup, 1, 0, 0);
	look_up("fixture_nodwarf", NO_DEBUG_DIR, &lookup);
	check_names(&lookup, "fixture");
	check_found(&lookup, 0, 0, 0);
}

/* Whether nm (-D: .dynsym) lists name in path. */
static bool nm_lists(const char *path, bool dynamic, const char *name)
{
	char command[1024], line[256];

	snprintf(command, sizeof(command),
		 "nm %s '%s' 2>/dev/null | awk '$3 == \"%s\" { print \"found\" }'",
		 dynamic ? "-D" : "", path, name);
	return command_line_with(command, "found", line, sizeof(line)) == 0;
}

/*
 * Fedora's layout: .dynsym names the exported alpha and beta, the
 * MiniDebugInfo only what .dynsym lacks (the static gamma). Both together
 * name all three.
 */
static void test_minidebuginfo(void)
{
	char path[512];
	struct lookup lookup;

	snprintf(path, sizeof(path), "%s/fixture_minidebuginfo", FIXTURE_DIR);
	CHECK(nm_lists(path, true, "fixture_alpha"));
	CHECK(!nm_lists(path, true, "fixture_gamma"));
	CHECK(!nm_lists(path, false, "fixture_gamma"));
	look_up("fixture_minidebuginfo", NO_DEBUG_DIR, &lookup);
	check_names(&lookup, "fixture");
	check_found(&lookup, 0, 0, 1);
}

/* A .gnu_debugdata that is not xz: the file still opens, with .dynsym's names. */
static void test_corrupt_minidebuginfo(void)
{
	struct lookup lookup;

	look_up("fixture_bad_debugdata", NO_DEBUG_DIR, &lookup);
	CHECK_STR(lookup.names[0], "fixture_alpha");
	CHECK_STR(lookup.names[1], "fixture_beta");
	CHECK_STR(lookup.names[2], "");
	check_found(&lookup, 0, 0, 0);
}

/*
 * The name the symbol table of program (under FIXTURE_DIR), given a debug
 * file by debug_search__find alone, gives fixture_alpha's address: no
 * process, cache or symbolizer in the way. "" when none.
 */
static void find_on_file(const char *program, const char *debug_dir, char *ret_name, size_t size,
			 struct debug_search_stats *ret_stats)
{
	const struct debug_search_opts opts = { .debug_dir = debug_dir };
	struct debug_search *search = debug_search__new(&opts);
	char path[512], debug_path[600];
	struct elf_file *elf = NULL;
	const char *name = NULL;
	uint64_t alpha = 0;
	int fd;

	snprintf(ret_name, size, "%s", "");
	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, program);
	/* The program is stripped: its debug file next to it knows where alpha is. */
	snprintf(debug_path, sizeof(debug_path), "%s.debug", path);
	CHECK(nm_address(debug_path, "fixture_alpha", &alpha) == 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(search && fd >= 0);
	if (fd >= 0)
		elf = elf_file__probe(fd);
	CHECK(elf && elf_file__load(elf) == 0);
	if (search && elf) {
		/* Our own process: its root is the host's, where the fixtures are. */
		debug_search__find(search, getpid(), path, elf);
		if (elf_file__find_symbol(elf, alpha, &name, NULL) == 0)
			snprintf(ret_name, size, "%s", name);
		debug_search__stats(search, ret_stats);
	}
	elf_file__free(elf);
	if (fd >= 0)
		close(fd);
	debug_search__free(search);
}

/* The search works on a file by itself: the build-id directory first, else .gnu_debuglink. */
static void test_find_on_file(void)
{
	struct debug_search_stats stats = {};
	char name[64];

	find_on_file("debuglink-order/fixture_dl_order", DEBUG_ROOT, name, sizeof(name), &stats);
	CHECK_STR(name, "from_build_id_alpha");
	CHECK(stats.build_id == 1 && stats.debuglink == 0 && stats.minidebuginfo == 0);
	find_on_file("debuglink-order/fixture_dl_order", NO_DEBUG_DIR, name, sizeof(name), &stats);
	CHECK_STR(name, "fixture_alpha");
	CHECK(stats.build_id == 0 && stats.debuglink == 1 && stats.minidebuginfo == 0);
}

/* When a file is asked for again, by why its last request did not give a file. */
static void test_ask_again_at(void)
{
	const struct debug_search_opts opts = { .debug_dir = NO_DEBUG_DIR,
						.debuginfod_retry_ms = 5000 };
	struct debug_search *search = debug_search__new(&opts);
	struct debug_search_fetched fetched;
	uint64_t before, at;

	CHECK(search != NULL);
	if (!search)
		return;
	CHECK(debug_search__ask_again_at(search, -EINPROGRESS) == DEBUG_SEARCH_WAITING);
	CHECK(debug_search__ask_again_at(search, -EINVAL) == DEBUG_SEARCH_NEVER);
	before = clock_ns(CLOCK_MONOTONIC);
	/* A full queue: as soon as there is room. */
	at = debug_search__ask_again_at(search, -ENOSPC);
	CHECK(at >= before && at < before + 1000000000ULL);
	/* A failure: after the retry interval. */
	at = debug_search__ask_again_at(search, -ENOENT);
	CHECK(at >= before + 5000000000ULL && at < before + 6000000000ULL);
	/* Without servers, nothing is ever due, wanted, or fetched. */
	CHECK(!debug_search__due(search, before));
	CHECK(debug_search__take_fetched(search, &fetched) == -EAGAIN);
	debug_search__free(search);
}

TEST_MAIN("debug_search", TEST(test_find_on_file), TEST(test_ask_again_at),
	  TEST(test_file_itself_first), TEST(test_build_id_before_debuglink),
	  TEST(test_debuglink_places), TEST(test_debuglink_crc_mismatch),
	  TEST(test_symtab_without_dwarf), TEST(test_minidebuginfo),
	  TEST(test_corrupt_minidebuginfo))
