// SPDX-License-Identifier: Apache-2.0
/*
 * perf maps: writes /tmp/perf-PID.map for this test's own pid (and a
 * child's), as a JIT runtime would, and checks lookups against the lines
 * written: names with spaces, malformed lines, later lines winning where
 * they overlap (against a brute-force reference), growth, rewrites, the
 * limits, and the symbolizer naming code in anonymous executable memory.
 * Files a process could use against kiln are refused, counted once by
 * reason, and never block: a FIFO, a symlink, a map others may write, one
 * over the size bound; a read stops at its time bound and goes on later.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* A child that waits to be killed: another process with a map of its own. */
static pid_t start_waiting_child(void)
{
	pid_t child = fork();

	if (child == 0) {
		pause();
		_exit(0);
	}
	return child;
}

/* Ends a start_waiting_child child and removes its map. */
static void stop_waiting_child(pid_t child)
{
	int status;

	if (child <= 0)
		return;
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	remove_map(child);
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
	int pid = getpid();
	pid_t child = start_waiting_child();

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
	stop_waiting_child(child);
	perf_maps__free(maps);
	remove_map(pid);
}

/* count lines of 93-byte names, from address base on. */
static char *long_lines(unsigned int base, unsigned int count)
{
	char *text = malloc((size_t)count * 128 + 1), *p = text;

	if (!text)
		return NULL;
	for (unsigned int i = 0; i < count; i++)
		p += sprintf(p, "%x 10 fn_%05u_%s\n", base + i * 0x10, i,
			     "padding_to_a_hundred_bytes_padding_to_a_hundred_bytes_padding_to_a_"
			     "hundred_bytes_pad");
	*p = '\0';
	return text;
}

/*
 * Past max_memory the least recently used map goes, counted, and what the
 * maps hold stays within it; one map alone over it keeps its first lines.
 */
static void test_memory_bound(void)
{
	struct perf_maps_opts opts = { .max_memory = 64 << 10, .recheck_interval_ns = 1 };
	struct perf_maps *maps = perf_maps__new(&opts);
	char *mine = long_lines(0x10000, 400), *theirs = long_lines(0x10000, 400);
	char *huge = long_lines(0x10000, 2000);
	struct perf_maps_stats stats;
	int pid = getpid();
	pid_t child = start_waiting_child();

	CHECK(maps != NULL && child > 0 && mine && theirs && huge);
	if (!maps || child <= 0 || !mine || !theirs || !huge)
		goto cleanup;
	CHECK(write_map(pid, "w", mine) == 0);
	CHECK(strncmp(name_at(maps, pid, 0x10000 + 399 * 0x10) ?: "", "fn_00399_", 9) == 0);
	perf_maps__stats(maps, &stats);
	/* 400 names of 93 bytes and their NULs, and a 24-byte range each. */
	CHECK(stats.bytes == 400 * (94 + 24));
	CHECK(stats.maps_evicted == 0 && stats.entries_dropped == 0);
	/* Both would not fit: this process's map, used longest ago, goes. */
	CHECK(write_map(child, "w", theirs) == 0);
	CHECK(strncmp(name_at(maps, child, 0x10000) ?: "", "fn_00000_", 9) == 0);
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 1);
	CHECK(stats.bytes <= opts.max_memory);
	/* Read again on its next use, which evicts the other. */
	CHECK(strncmp(name_at(maps, pid, 0x10000 + 0x10) ?: "", "fn_00001_", 9) == 0);
	perf_maps__stats(maps, &stats);
	CHECK(stats.maps_evicted == 2 && stats.bytes <= opts.max_memory);
	/* One map over the bound alone: its first lines serve, the rest are dropped. */
	CHECK(write_map(pid, "w", huge) == 0);
	CHECK(strncmp(name_at(maps, pid, 0x10000) ?: "", "fn_00000_", 9) == 0);
	CHECK(name_at(maps, pid, 0x10000 + 1999 * 0x10) == NULL);
	perf_maps__stats(maps, &stats);
	CHECK(stats.entries_dropped > 0 && stats.bytes <= opts.max_memory);
cleanup:
	stop_waiting_child(child);
	free(mine);
	free(theirs);
	free(huge);
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

/* What refused pid's map, and how often, since maps were made. */
static uint64_t refused(struct perf_maps *maps, enum process_file_refusal reason)
{
	struct perf_maps_stats stats;

	perf_maps__stats(maps, &stats);
	return stats.refused.counts[reason];
}

/*
 * Each file a process may put at its map's path that kiln must not read:
 * refused, counted once while it stays, never blocking, and what was read
 * before stays.
 */
static void test_refused_files(void)
{
	struct perf_maps_opts opts = { .recheck_interval_ns = 1, .max_bytes = 64 };
	struct perf_maps *maps = perf_maps__new(&opts);
	char path[64], target[] = "/tmp/kiln-test-perf-map-target-XXXXXX";
	int pid = getpid(), fd = mkstemp(target);

	map_path(pid, path, sizeof(path));
	CHECK(maps != NULL && fd >= 0);
	if (!maps || fd < 0)
		goto cleanup;
	CHECK(write(fd, "1000 10 through_a_link\n", 23) == 23 && fchmod(fd, 0644) == 0);
	CHECK(write_map(pid, "w", "1000 10 first\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	/* A FIFO without a writer: an open that blocked would hang here, so fail instead. */
	remove_map(pid);
	CHECK(mkfifo(path, 0644) == 0);
	alarm(10);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	alarm(0);
	CHECK(refused(maps, PROCESS_FILE_NOT_REGULAR) == 1);
	/* A symlink to a file that would pass. */
	remove_map(pid);
	CHECK(symlink(target, path) == 0);
	CHECK(name_at(maps, pid, 0x1000) && strcmp(name_at(maps, pid, 0x1000), "through_a_link"));
	CHECK(refused(maps, PROCESS_FILE_SYMLINK) == 1);
	/* Writable by others: anyone could have put lines in it. */
	remove_map(pid);
	CHECK(write_map(pid, "w", "1000 10 written_by_anyone\n") == 0 && chmod(path, 0666) == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	CHECK(refused(maps, PROCESS_FILE_WRITABLE_BY_OTHERS) == 1);
	/* Over the size bound: not read at all. */
	CHECK(chmod(path, 0644) == 0);
	CHECK(write_map(pid, "w",
			"1000 10 past_the_bound\n2000 10 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n") ==
	      0);
	CHECK_STR(name_at(maps, pid, 0x1000), "first");
	CHECK(refused(maps, PROCESS_FILE_TOO_LARGE) == 1);
	/* A file that passes again is read. */
	CHECK(write_map(pid, "w", "1000 10 fine\n") == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "fine");
	CHECK(refused(maps, PROCESS_FILE_NOT_REGULAR) == 1 &&
	      refused(maps, PROCESS_FILE_SYMLINK) == 1);
cleanup:
	if (fd >= 0)
		close(fd);
	unlink(target);
	perf_maps__free(maps);
	remove_map(pid);
}

/* A map owned by another user, when this process is not root: refused as foreign. */
static void test_foreign_owner(void)
{
	struct perf_maps *maps = perf_maps__new(&always_recheck);
	int status, pipe_fds[2] = { -1, -1 };
	char path[64], ready;
	pid_t child;

	CHECK(maps != NULL && pipe(pipe_fds) == 0);
	child = maps ? fork() : -1;
	if (child == 0) {
		/* The process profiled: nobody, whose map root wrote and nobody owns not. */
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(1);
		CHECK(write(pipe_fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(child > 0 && read(pipe_fds[0], &ready, 1) == 1);
	if (child <= 0)
		goto cleanup;
	map_path(child, path, sizeof(path));
	CHECK(write_map(child, "w", "1000 10 not_its_own\n") == 0 && chown(path, 4242, 4242) == 0);
	CHECK(name_at(maps, child, 0x1000) == NULL);
	CHECK(refused(maps, PROCESS_FILE_FOREIGN_OWNER) == 1);
	/* Its own: read. */
	CHECK(chown(path, 65534, 65534) == 0);
	CHECK_STR(name_at(maps, child, 0x1000), "not_its_own");
	/* Root's, but 0600: root may own it, yet nobody could not read it. */
	CHECK(chown(path, 0, 0) == 0 && chmod(path, 0600) == 0 &&
	      write_map(child, "w", "1000 10 root_only\n") == 0);
	CHECK(name_at(maps, child, 0x1000) && strcmp(name_at(maps, child, 0x1000), "root_only"));
	CHECK(refused(maps, PROCESS_FILE_UNREADABLE) == 1);
	/*
	 * Gone, its /tmp being ours: the file is still read, held to the uid
	 * it had while it ran. Its own again, then another user's.
	 */
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	CHECK(write_map(child, "w", "1000 10 after_exit\n") == 0 &&
	      chown(path, 65534, 65534) == 0 && chmod(path, 0644) == 0);
	CHECK_STR(name_at(maps, child, 0x1000), "after_exit");
	CHECK(write_map(child, "w", "1000 10 planted_after_exit\n") == 0 &&
	      chown(path, 4242, 4242) == 0);
	CHECK_STR(name_at(maps, child, 0x1000), "after_exit");
	CHECK(refused(maps, PROCESS_FILE_FOREIGN_OWNER) == 2);
	remove_map(child);
	child = -1;
cleanup:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		remove_map(child);
	}
	if (pipe_fds[0] >= 0) {
		close(pipe_fds[0]);
		close(pipe_fds[1]);
	}
	perf_maps__free(maps);
}

/* A read stops at its time bound after a chunk at least, and goes on at the next refresh. */
static void test_time_bound(void)
{
	struct perf_maps_opts opts = { .recheck_interval_ns = 1, .max_read_ns = 1 };
	struct perf_maps *maps = perf_maps__new(&opts);
	struct perf_maps_stats stats;
	int pid = getpid();
	char *text = malloc(8192 * 32), *end = text;

	CHECK(maps != NULL && text != NULL);
	if (!maps || !text)
		goto cleanup;
	/* 8192 lines of 25 bytes: 200 KiB, four chunks of 64 KiB. */
	for (int i = 0; i < 8192; i++)
		end += sprintf(end, "%08x 10 line_%08x\n", 0x1000 + i * 0x10, i);
	CHECK(write_map(pid, "w", text) == 0);
	CHECK_STR(name_at(maps, pid, 0x1000), "line_00000000");
	perf_maps__stats(maps, &stats);
	CHECK(stats.reads_stopped >= 1 && stats.entries_read < 8192);
	for (int i = 0; i < 8 && stats.entries_read < 8192; i++) {
		name_at(maps, pid, 0x1000);
		perf_maps__stats(maps, &stats);
	}
	CHECK(stats.entries_read == 8192);
	CHECK_STR(name_at(maps, pid, 0x1000 + 8191 * 0x10), "line_00001fff");
	/* Read to its end and unchanged: not read again. */
	perf_maps__stats(maps, &stats);
	{
		uint64_t reads = stats.reads;

		name_at(maps, pid, 0x1000);
		perf_maps__stats(maps, &stats);
		CHECK(stats.reads == reads);
	}
cleanup:
	free(text);
	perf_maps__free(maps);
	remove_map(pid);
}

TEST_MAIN("perf_map", TEST(test_lines), TEST(test_later_lines_win), TEST(test_against_reference),
	  TEST(test_growth_and_rewrite), TEST(test_recheck_interval), TEST(test_limits),
	  TEST(test_process_limit), TEST(test_memory_bound), TEST(test_may_name),
	  TEST(test_symbolizer_jit), TEST(test_refused_files),
	  TEST_ROOT(test_foreign_owner, "a process of another user, and files it does not own"),
	  TEST(test_time_bound))
