// SPDX-License-Identifier: Apache-2.0
/*
 * perf maps: writes /tmp/perf-PID.map for this test's own pid (and a
 * child's), as a JIT runtime would, and checks lookups against the lines
 * written: names with spaces, malformed lines, later lines winning where
 * they overlap (against a brute-force reference), growth, rewrites, the
 * limits, and the symbolizer naming code in anonymous executable memory.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolizer/perf_map.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/testing.h"

/* Every lookup re-checks the file: growth shows at once. */
static const struct perf_maps_opts always_recheck = { .recheck_interval_ns = 1 };

static void map_path(int pid, char *path, size_t size)
{
	snprintf(path, size, "/tmp/perf-%d.map", pid);
}

static int write_map(int pid, const char *mode, const char *text)
{
	char path[64];
	FILE *file;

	map_path(pid, path, sizeof(path));
	file = fopen(path, mode);
	if (!file)
		return -errno;
	fputs(text, file);
	return fclose(file) ? -errno : 0;
}

static void remove_map(int pid)
{
	char path[64];

	map_path(pid, path, sizeof(path));
	unlink(path);
}

/* The name at addr, or NULL. */
static const char *name_at(struct perf_maps *maps, int pid, uint64_t addr)
{
	const char *name;

	return perf_maps__lookup(maps, pid, addr, &name) == 0 ? name : NULL;
}

static void test_lines(void)
{
	struct perf_maps *maps = perf_maps__new(&always_recheck);
	struct perf_maps_stats stats;
	int pid = getpid();

	CHECK(maps != NULL);
	if (!maps)
		return;
	CHECK(perf_maps__lookup(maps, pid, 0x1000, &(const char *){ NULL }) == -ENOENT);
	CHECK(write_map(pid, "w",
			"1000 100 plain\n"
			"1100 20 LazyCompile:*fib /srv/app.js:12:3\n"
			"0x2000 0x10 with 0x prefix\n"
			"3000 10 crlf\r\n"
			"nothex 10 malformed\n"
			"4000 0 empty range\n"
			"5000 10\n"
			"\n"
			"ffffffffffffffff 10 wraps around\n"
			"6000 10 Ljava/lang/String;::hashCode@plt\n") == 0);
	CHECK(perf_maps__prepare(maps, pid) == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "plain");
	CHECK_STR(name_at(maps, pid, 0x10ff), "plain");
	CHECK_STR(name_at(maps, pid, 0x1100), "LazyCompile:*fib /srv/app.js:12:3");
	CHECK_STR(name_at(maps, pid, 0x111f), "LazyCompile:*fib /srv/app.js:12:3");
	CHECK(name_at(maps, pid, 0x1120) == NULL);
	CHECK(name_at(maps, pid, 0xfff) == NULL);
	CHECK_STR(name_at(maps, pid, 0x2008), "with 0x prefix");
	CHECK_STR(name_at(maps, pid, 0x3000), "crlf");
	CHECK(name_at(maps, pid, 0x4000) == NULL);
	CHECK(name_at(maps, pid, 0x5000) == NULL);
	/* Taken as written: no ELF symbol version to strip. */
	CHECK_STR(name_at(maps, pid, 0x6004), "Ljava/lang/String;::hashCode@plt");
	perf_maps__stats(maps, &stats);
	CHECK(stats.entries_read == 5);
	CHECK(stats.entries_dropped == 5);
	CHECK(stats.reads == 1);
	perf_maps__free(maps);
	remove_map(pid);
}

static void test_later_lines_win(void)
{
	struct perf_maps *maps = perf_maps__new(&always_recheck);
	int pid = getpid();

	CHECK(maps != NULL);
	if (!maps)
		return;
	CHECK(write_map(pid, "w",
			"1000 1000 outer\n"
			"1400 100 inner\n"
			"3400 100 early\n"
			"3000 1000 late\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x13ff), "outer");
	CHECK_STR(name_at(maps, pid, 0x1400), "inner");
	CHECK_STR(name_at(maps, pid, 0x14ff), "inner");
	CHECK_STR(name_at(maps, pid, 0x1500), "outer");
	CHECK_STR(name_at(maps, pid, 0x1fff), "outer");
	CHECK_STR(name_at(maps, pid, 0x3450), "late");
	/* Appended lines override what was read before. */
	CHECK(write_map(pid, "a", "1f00 200 reused\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x1eff), "outer");
	CHECK_STR(name_at(maps, pid, 0x1f00), "reused");
	CHECK_STR(name_at(maps, pid, 0x20ff), "reused");
	CHECK(name_at(maps, pid, 0x2100) == NULL);
	CHECK_STR(name_at(maps, pid, 0x1450), "inner");
	perf_maps__free(maps);
	remove_map(pid);
}

/* Random overlapping lines, appended in batches, against the last line covering each address. */
static void test_against_reference(void)
{
	enum { SPACE = 4096, LINES = 600, BATCH = 97 };
	struct perf_maps *maps = perf_maps__new(&always_recheck);
	static int expected[SPACE];
	int pid = getpid(), mismatches = 0;
	char line[64];

	CHECK(maps != NULL);
	if (!maps)
		return;
	srand(12345);
	memset(expected, -1, sizeof(expected));
	CHECK(write_map(pid, "w", "") == 0);
	for (int i = 0; i < LINES; i++) {
		int start = rand() % SPACE, size = 1 + rand() % (i % 10 == 0 ? 1500 : 60);

		if (start + size > SPACE)
			size = SPACE - start;
		for (int a = start; a < start + size; a++)
			expected[a] = i;
		snprintf(line, sizeof(line), "%x %x fn %d\n", 0x10000 + start, size, i);
		CHECK(write_map(pid, "a", line) == 0);
		if (i % BATCH != BATCH - 1 && i != LINES - 1)
			continue;
		for (int a = 0; a < SPACE; a++) {
			const char *name = name_at(maps, pid, 0x10000 + a);
			char want[32];

			snprintf(want, sizeof(want), "fn %d", expected[a]);
			if (expected[a] < 0 ? name != NULL : !name || strcmp(name, want) != 0)
				mismatches++;
		}
	}
	CHECK(mismatches == 0);
	perf_maps__free(maps);
	remove_map(pid);
}

static void test_growth_and_rewrite(void)
{
	struct perf_maps *maps = perf_maps__new(&always_recheck);
	struct perf_maps_stats stats;
	int pid = getpid();

	CHECK(maps != NULL);
	if (!maps)
		return;
	CHECK(write_map(pid, "w", "1000 10 first\n7000 10 being wri") == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	/* A line still being written is read once it ends. */
	CHECK(name_at(maps, pid, 0x7000) == NULL);
	CHECK(write_map(pid, "a", "tten\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x7000), "being written");
	perf_maps__stats(maps, &stats);
	CHECK(stats.entries_read == 2 && stats.entries_dropped == 0);
	/* Rewritten from scratch (a new process with the pid, or a truncating writer). */
	CHECK(write_map(pid, "w", "2000 10 second\n") == 0);
	CHECK(name_at(maps, pid, 0x1000) == NULL);
	CHECK_STR(name_at(maps, pid, 0x2000), "second");
	/* Gone: what was read stays. */
	remove_map(pid);
	CHECK_STR(name_at(maps, pid, 0x2000), "second");
	perf_maps__forget(maps, pid);
	CHECK(name_at(maps, pid, 0x2000) == NULL);
	perf_maps__free(maps);
}

/* With the default interval, a lookup right after a read does not look at the file again. */
static void test_recheck_interval(void)
{
	struct perf_maps *maps = perf_maps__new(NULL);
	struct perf_maps_stats stats;
	int pid = getpid();

	CHECK(maps != NULL);
	if (!maps)
		return;
	CHECK(write_map(pid, "w", "1000 10 first\n") == 0);
	CHECK(perf_maps__prepare(maps, pid) == 0);
	CHECK(write_map(pid, "a", "2000 10 second\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	CHECK(name_at(maps, pid, 0x2000) == NULL);
	perf_maps__stats(maps, &stats);
	CHECK(stats.reads == 1);
	perf_maps__free(maps);
	remove_map(pid);
}

static void test_limits(void)
{
	struct perf_maps_opts opts = {
		.max_entries_per_map = 4,
		.max_entries = 6,
		.recheck_interval_ns = 1,
	};
	struct perf_maps *maps = perf_maps__new(&opts);
	struct perf_maps_stats stats;
	int pid = getpid(), status;
	pid_t child = fork();

	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(maps != NULL && child > 0);
	if (!maps || child <= 0)
		goto cleanup;
	CHECK(write_map(pid, "w",
			"1000 10 a\n2000 10 b\n3000 10 c\n4000 10 d\n5000 10 e\n6000 10 f\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x4000), "d");
	CHECK(name_at(maps, pid, 0x5000) == NULL);
	perf_maps__stats(maps, &stats);
	CHECK(stats.entries_read == 4 && stats.entries_dropped == 2);
	/* Another process's map pushes the total over 6: the older map goes. */
	CHECK(write_map(child, "w", "1000 10 x\n2000 10 y\n3000 10 z\n") == 0);
	CHECK_STR(name_at(maps, child, 0x3000), "z");
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 1);
	/* Read again from the file on its next use. */
	CHECK_STR(name_at(maps, pid, 0x1000), "a");
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 2);
cleanup:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		remove_map(child);
	}
	perf_maps__free(maps);
	remove_map(pid);
}

/* Past max_processes the least recently used goes; counted only when it had lines. */
static void test_process_limit(void)
{
	struct perf_maps_opts opts = { .max_processes = 2, .recheck_interval_ns = 1 };
	struct perf_maps *maps = perf_maps__new(&opts);
	struct perf_maps_stats stats;
	int pid = getpid(), status;
	pid_t child = fork();

	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(maps != NULL && child > 0);
	if (!maps || child <= 0)
		goto cleanup;
	CHECK(write_map(pid, "w", "1000 10 mine\n") == 0);
	CHECK(name_at(maps, child, 0x1000) == NULL); /* no map */
	CHECK_STR(name_at(maps, pid, 0x1000), "mine");
	CHECK(name_at(maps, 1, 0x1000) == NULL); /* evicts the child's empty entry */
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 0);
	CHECK(name_at(maps, child, 0x1000) == NULL); /* evicts this process's map */
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 1);
cleanup:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	perf_maps__free(maps);
	remove_map(pid);
}

static void test_may_name(void)
{
	struct proc_mapping anonymous = { .path = "" }, named = { .path = "[anon:v8 code]" },
			    memfd = { .path = "/memfd:doublemapper", .inode = 7 },
			    file = { .path = "/usr/lib/libc.so.6", .inode = 9 },
			    vdso = { .path = "[vdso]" }, heap = { .path = "[heap]" };

	CHECK(perf_maps__may_name(&anonymous));
	CHECK(perf_maps__may_name(&named));
	CHECK(perf_maps__may_name(&memfd));
	CHECK(!perf_maps__may_name(&file));
	CHECK(!perf_maps__may_name(&vdso));
	CHECK(!perf_maps__may_name(&heap));
}

/* The symbolizer names code in this process's anonymous executable memory from its map. */
static void test_symbolizer_jit(void)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolized_location location = {};
	const struct proc_mapping *mapping;
	struct symbolizer_stats stats;
	struct proc_maps maps = {};
	int pid = getpid();
	char line[128];
	uint8_t *code;

	code = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(symbolizer != NULL && code != MAP_FAILED);
	if (!symbolizer || code == MAP_FAILED)
		goto cleanup;
	snprintf(line, sizeof(line), "%lx 40 jit_function\n", (unsigned long)(code + 0x100));
	CHECK(write_map(pid, "w", line) == 0);
	CHECK(procmaps__read(pid, true, &maps) == 0);
	mapping = procmaps__find(&maps, (uint64_t)(uintptr_t)code);
	CHECK(mapping && mapping->path[0] == '\0');
	if (!mapping)
		goto cleanup;
	CHECK(symbolizer__prepare_process(symbolizer, pid, &maps) == 0);
	CHECK(symbolizer__resolve_user(symbolizer, pid, mapping, (uint64_t)(uintptr_t)code + 0x110,
				       false, &location) == 0);
	CHECK(location.frame_count == 1);
	CHECK_STR(location.frames[0].function, "jit_function");
	CHECK_STR(location.frames[0].system_name, "jit_function");
	/* A return address just past the function is the call inside it. */
	CHECK(symbolizer__resolve_user(symbolizer, pid, mapping, (uint64_t)(uintptr_t)code + 0x140,
				       true, &location) == 0);
	CHECK_STR(location.frames[0].function, "jit_function");
	CHECK(symbolizer__resolve_user(symbolizer, pid, mapping, (uint64_t)(uintptr_t)code + 0x140,
				       false, &location) == 0);
	CHECK(location.frame_count == 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.perf_maps.reads == 1 && stats.perf_maps.lookups == 3 &&
	      stats.perf_maps.misses == 1);
	CHECK(stats.user_lookups == 3 && stats.user_misses == 1);
	/* Forgotten with the process: read again from the file. */
	symbolizer__forget_process(symbolizer, pid);
	CHECK(symbolizer__resolve_user(symbolizer, pid, mapping, (uint64_t)(uintptr_t)code + 0x100,
				       false, &location) == 0);
	CHECK_STR(location.frames[0].function, "jit_function");
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.perf_maps.reads == 2);
cleanup:
	if (code != MAP_FAILED)
		munmap(code, 4096);
	procmaps__free(&maps);
	symbolizer__free(symbolizer);
	remove_map(pid);
}

TEST_MAIN("perf_map", TEST(test_lines), TEST(test_later_lines_win), TEST(test_against_reference),
	  TEST(test_growth_and_rewrite), TEST(test_recheck_interval), TEST(test_limits),
	  TEST(test_process_limit), TEST(test_may_name), TEST(test_symbolizer_jit))
