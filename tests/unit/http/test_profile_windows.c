// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the windows the HTTP endpoint serves: a directory's, or kept in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/http/profile_windows.h"
#include "tests/unit/testing.h"

#define SECOND 1000000000LL
#define START (1796425070LL * SECOND) /* 2026-12-04T22:57:50Z */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = fopen(path, "we");
	CHECK(file);
	fputs(text, file);
	fclose(file);
}

static void test_directory_serves_only_kiln_names(void)
{
	char dir[] = "/tmp/kiln-windows-XXXXXX", path[512];
	struct profile_window *list;
	struct profile_windows *windows;
	uint8_t *data;
	size_t size;
	int count;

	CHECK(mkdtemp(dir));
	write_file(dir, "cpu-20261204T225750Z.pb.gz", "old");
	write_file(dir, "cpu-20261204T225800Z.pb.gz", "newer");
	write_file(dir, "offcpu-20261204T225800Z.pb.gz", "off");
	write_file(dir, "notes.txt", "not a window");
	write_file(dir, "cpu-2026.pb.gz", "not a stamp");
	/* A link under a window's name, to a file the page must not serve. */
	snprintf(path, sizeof(path), "%s/cpu-20261204T225810Z.pb.gz", dir);
	CHECK(!symlink("/etc/passwd", path));
	windows = profile_windows__new(dir);
	CHECK(windows && !profile_windows__in_memory(windows));
	count = profile_windows__list(windows, 100, &list);
	CHECK(count == 3);
	/* Newest first; of one start, CPU first. */
	CHECK_STR(list[0].name, "cpu-20261204T225800Z.pb.gz");
	CHECK(list[0].kind == PROFILE_KIND_CPU && list[0].start_ns == START + 10 * SECOND);
	CHECK(list[0].bytes == 5);
	CHECK_STR(list[1].name, "offcpu-20261204T225800Z.pb.gz");
	CHECK_STR(list[2].name, "cpu-20261204T225750Z.pb.gz");
	CHECK(list[2].start_ns == START);
	free(list);
	CHECK(profile_windows__list(windows, 1, &list) == 1);
	free(list);
	CHECK(!profile_windows__read(windows, "cpu-20261204T225750Z.pb.gz", &data, &size));
	CHECK(size == 3 && !memcmp(data, "old", 3));
	free(data);
	CHECK(profile_windows__read(windows, "cpu-20261204T225810Z.pb.gz", &data, &size) ==
	      -ENOENT);
	CHECK(profile_windows__read(windows, "notes.txt", &data, &size) == -ENOENT);
	CHECK(profile_windows__read(windows, "../../etc/passwd", &data, &size) == -ENOENT);
	CHECK(profile_windows__read(windows, "cpu-20261204T225750Z.pb.gz/..", &data, &size) ==
	      -ENOENT);
	profile_windows__free(windows);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(!system(path));
}

static uint8_t *bytes(size_t size)
{
	uint8_t *data = malloc(size);

	CHECK(data);
	memset(data, 0x5a, size);
	return data;
}

static void test_memory_keeps_the_last_within_bounds(void)
{
	struct profile_windows *windows = profile_windows__new(NULL);
	struct profile_windows_stats stats;
	struct profile_window *list;
	uint8_t *data;
	size_t size;
	int count;

	CHECK(windows && profile_windows__in_memory(windows));
	for (int i = 0; i < PROFILE_WINDOWS_MEMORY_COUNT + 5; i++)
		profile_windows__add(windows, PROFILE_KIND_CPU, START + i * SECOND, bytes(100),
				     100);
	profile_windows__stats(windows, &stats);
	CHECK(stats.kept == PROFILE_WINDOWS_MEMORY_COUNT && stats.dropped == 5);
	count = profile_windows__list(windows, 1000, &list);
	CHECK(count == PROFILE_WINDOWS_MEMORY_COUNT);
	CHECK(list[0].start_ns == START + (PROFILE_WINDOWS_MEMORY_COUNT + 4) * SECOND);
	CHECK(list[count - 1].start_ns == START + 5 * SECOND);
	CHECK(!profile_windows__read(windows, list[0].name, &data, &size));
	CHECK(size == 100 && data[99] == 0x5a);
	free(data);
	free(list);
	/* The oldest go, not the new one, when the bytes run out. */
	profile_windows__add(windows, PROFILE_KIND_OFF_CPU, START + 100 * SECOND,
			     bytes(PROFILE_WINDOWS_MEMORY_BYTES - 50),
			     PROFILE_WINDOWS_MEMORY_BYTES - 50);
	profile_windows__stats(windows, &stats);
	CHECK(stats.kept == 1 && stats.kept_bytes == PROFILE_WINDOWS_MEMORY_BYTES - 50);
	/* One larger than the whole bound is not kept. */
	profile_windows__add(windows, PROFILE_KIND_CPU, START + 200 * SECOND,
			     bytes(PROFILE_WINDOWS_MEMORY_BYTES + 1),
			     PROFILE_WINDOWS_MEMORY_BYTES + 1);
	profile_windows__stats(windows, &stats);
	CHECK(stats.kept == 1 && stats.dropped == 5 + PROFILE_WINDOWS_MEMORY_COUNT + 1);
	CHECK(profile_windows__read(windows, "cpu-20261204T225750Z.pb.gz", &data, &size) ==
	      -ENOENT);
	profile_windows__free(windows);
}

TEST_MAIN("profile_windows", TEST(test_directory_serves_only_kiln_names),
	  TEST(test_memory_keeps_the_last_within_bounds))
