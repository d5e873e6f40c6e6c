// SPDX-License-Identifier: Apache-2.0
/* procmaps: every line form the kernel prints, malformed input, and this process's own maps. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/array.h"
#include "symbolizer/procmaps.h"
#include "tests/unit/testing.h"

/* Out of order on purpose (the parser sorts); padding as the kernel prints it. */
static const char sample[] =
	"7f1000000000-7f1000001000 r-xp 00001000 08:10 42         /opt/my app/lib with spaces.so\n"
	"55d0c6a00000-55d0c6a21000 r-xp 00002000 fd:01 1234567    /usr/bin/foo (deleted)\n"
	"55d0c6800000-55d0c6802000 r--p 00000000 fd:01 1234567    /usr/bin/foo (deleted)\n"
	"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
	"7f0000100000-7f0000121000 rw-p 00000000 00:00 0\n"
	"7f2000000000-7f2000001000 rw-s 00000000 00:05 99         /dev/shm/a (deleted) b\n"
	"7f3000000000-7f3000004000 r-xp 0001a000 103:02 77        /usr/lib/libc.so.6\n"
	"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
	"7ffd10000000-7ffd10002000 r-xp 00000000 00:00 0                          [vdso]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

static int parse_text(const char *text, bool exec_only, struct proc_maps *ret_maps)
{
	FILE *file = fmemopen((void *)text, strlen(text), "r");
	int err;

	if (!file)
		return -errno;
	err = procmaps__parse(file, exec_only, ret_maps);
	fclose(file);
	return err;
}

static void test_parse_every_form(void)
{
	struct proc_maps maps = {};
	const struct proc_mapping *m;

	CHECK(parse_text(sample, false, &maps) == 0);
	CHECK(maps.count == 10);
	if (maps.count != 10)
		goto cleanup;
	for (size_t i = 1; i < maps.count; i++)
		CHECK(maps.mappings[i - 1].end <= maps.mappings[i].start);

	m = &maps.mappings[0];
	CHECK(m->start == 0x55d0c6800000 && m->end == 0x55d0c6802000);
	CHECK(m->perms == PROC_MAP_READ);
	m = &maps.mappings[1];
	CHECK(m->start == 0x55d0c6a00000 && m->end == 0x55d0c6a21000 && m->offset == 0x2000);
	CHECK(m->perms == (PROC_MAP_READ | PROC_MAP_EXEC));
	CHECK(m->dev_major == 0xfd && m->dev_minor == 1 && m->inode == 1234567);
	CHECK(m->deleted);
	CHECK_STR(m->path, "/usr/bin/foo");

	m = &maps.mappings[2]; /* anonymous, with the trailing space some kernels print */
	CHECK_STR(m->path, "");
	CHECK(m->inode == 0 && !m->deleted);
	CHECK(m->perms == (PROC_MAP_READ | PROC_MAP_WRITE));
	m = &maps.mappings[3]; /* anonymous, line ends at the inode */
	CHECK_STR(m->path, "");

	m = &maps.mappings[4];
	CHECK_STR(m->path, "/opt/my app/lib with spaces.so");
	CHECK(m->offset == 0x1000 && m->dev_major == 8 && m->dev_minor == 0x10 && m->inode == 42);

	m = &maps.mappings[5]; /* " (deleted)" in the middle is part of the name */
	CHECK_STR(m->path, "/dev/shm/a (deleted) b");
	CHECK(!m->deleted);
	CHECK(m->perms == (PROC_MAP_READ | PROC_MAP_WRITE | PROC_MAP_SHARED));

	m = &maps.mappings[6];
	CHECK(m->dev_major == 0x103 && m->dev_minor == 2 && m->offset == 0x1a000);
	CHECK_STR(m->path, "/usr/lib/libc.so.6");
	CHECK_STR(maps.mappings[7].path, "[stack]");
	CHECK_STR(maps.mappings[8].path, "[vdso]");
	m = &maps.mappings[9];
	CHECK_STR(m->path, "[vsyscall]");
	CHECK(m->start == 0xffffffffff600000ULL && m->perms == PROC_MAP_EXEC);
cleanup:
	procmaps__free(&maps);
}

static void test_exec_only(void)
{
	struct proc_maps maps = {};

	CHECK(parse_text(sample, true, &maps) == 0);
	CHECK(maps.count == 5);
	for (size_t i = 0; i < maps.count; i++)
		CHECK(maps.mappings[i].perms & PROC_MAP_EXEC);
	if (maps.count == 5) {
		CHECK_STR(maps.mappings[0].path, "/usr/bin/foo");
		CHECK_STR(maps.mappings[4].path, "[vsyscall]");
	}
	procmaps__free(&maps);
}

static void test_find(void)
{
	struct proc_maps maps = {};
	const struct proc_mapping *m;

	CHECK(parse_text(sample, false, &maps) == 0);
	CHECK(procmaps__find(&maps, 0) == NULL);
	CHECK(procmaps__find(&maps, 0x55d0c67fffff) == NULL);
	m = procmaps__find(&maps, 0x55d0c6800000);
	CHECK(m && m->start == 0x55d0c6800000);
	m = procmaps__find(&maps, 0x55d0c6801fff);
	CHECK(m && m->start == 0x55d0c6800000);
	CHECK(procmaps__find(&maps, 0x55d0c6802000) == NULL); /* end is exclusive, then a gap */
	m = procmaps__find(&maps, 0x55d0c6a10000);
	CHECK(m && m->offset == 0x2000);
	m = procmaps__find(&maps, 0x7ffd10001234);
	CHECK(m && strcmp(m->path, "[vdso]") == 0);
	m = procmaps__find(&maps, 0xffffffffff600fffULL);
	CHECK(m && strcmp(m->path, "[vsyscall]") == 0);
	CHECK(procmaps__find(&maps, UINT64_MAX) == NULL);
	procmaps__free(&maps);

	/* An empty set finds nothing; freeing a zeroed struct is fine. */
	CHECK(procmaps__find(&maps, 0x1000) == NULL);
	procmaps__free(&maps);
	procmaps__free(NULL);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"zzzz-2000 r-xp 00000000 00:00 0\n",
		"1000-2000 r-xq 00000000 00:00 0\n",
		"1000-2000 r-x 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 0000 0\n",
		"1000-2000 r-xp 00000000 00:00\n",
		"1000-2000 r-xp 00000000 00:00 x /bin/true\n",
		"2000-1000 r-xp 00000000 00:00 0\n",
		"1000 r-xp 00000000 00:00 0\n",
		"1000-2000\n",
		"-1000-2000 r-xp 00000000 00:00 0\n",
		"1000-2000 r-xp 00000000 100000000:00 0\n",
		/* Overlapping mappings. */
		"1000-3000 r-xp 00000000 00:00 0\n2000-4000 r-xp 00000000 00:00 0\n",
		/* A good line does not excuse a bad one after it. */
		"1000-2000 r-xp 00000000 00:00 0 /bin/true\ngarbage\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct proc_maps sentinel = { (struct proc_mapping *)&sentinel, 12345 };
		struct proc_maps maps = sentinel;
		int err = parse_text(bad[i], false, &maps);

		if (err != -EINVAL)
			fprintf(stderr, "line %zu: %d\n", i, err);
		CHECK(err == -EINVAL);
		/* Untouched on failure. */
		CHECK(maps.mappings == sentinel.mappings && maps.count == sentinel.count);
	}
}

static void test_read_self(void)
{
	uint64_t code = (uint64_t)(uintptr_t)test_read_self;
	char exe[PATH_MAX];
	struct proc_maps maps = {};
	const struct proc_mapping *m;

	CHECK(realpath("/proc/self/exe", exe) != NULL);
	CHECK(procmaps__read(getpid(), false, &maps) == 0);
	CHECK(maps.count > 5);
	m = procmaps__find(&maps, code);
	CHECK(m != NULL);
	if (m) {
		CHECK(m->perms == (PROC_MAP_READ | PROC_MAP_EXEC));
		CHECK_STR(m->path, exe);
		CHECK(m->inode != 0);
	}
	procmaps__free(&maps);

	CHECK(procmaps__read(getpid(), true, &maps) == 0);
	m = procmaps__find(&maps, code);
	CHECK(m && strcmp(m->path, exe) == 0);
	/* Stack memory is not executable, so exec_only dropped it. */
	CHECK(procmaps__find(&maps, (uint64_t)(uintptr_t)&maps) == NULL);
	procmaps__free(&maps);
}

static void test_read_gone(void)
{
	struct proc_maps maps = {};

	/* Above any pid_max the kernel allows: no such process. */
	CHECK(procmaps__read(INT_MAX, false, &maps) == -ENOENT);
	CHECK(maps.mappings == NULL && maps.count == 0);
}

TEST_MAIN("procmaps", TEST(test_parse_every_form), TEST(test_exec_only), TEST(test_find),
	  TEST(test_malformed), TEST(test_read_self), TEST(test_read_gone))
