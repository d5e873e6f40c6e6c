// SPDX-License-Identifier: Apache-2.0
/*
 * process_files: a process's files as it sees them. Through map_files
 * for a deleted file, through /proc/PID/root otherwise, and by path once
 * the process is gone, only while the path is still the same inode.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/process_files.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/testing.h"

/* Whether fd is the file path is (the same inode). */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fd >= 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static void test_file_backed(void)
{
	struct proc_mapping mapping = { .inode = 12, .path = "/usr/lib/libc.so.6" };

	CHECK(process_files_is_file_backed(&mapping));
	mapping.path = "[vdso]";
	CHECK(!process_files_is_file_backed(&mapping));
	mapping.path = "";
	CHECK(!process_files_is_file_backed(&mapping));
	mapping = (struct proc_mapping){ .inode = 0, .path = "/memfd:jit (deleted)" };
	CHECK(!process_files_is_file_backed(&mapping));
}

static void test_path(void)
{
	char buffer[64], small[16];

	CHECK(process_files_path(42, "/usr/lib/debug", buffer, sizeof(buffer)) == 0);
	CHECK_STR(buffer, "/proc/42/root/usr/lib/debug");
	CHECK(process_files_path(42, "", buffer, sizeof(buffer)) == 0);
	CHECK_STR(buffer, "/proc/42/root");
	CHECK(process_files_path(42, "/usr/lib/debug", small, sizeof(small)) == -ENAMETOOLONG);
}

/* A live process's mappings, read through /proc/PID/map_files or its root. */
static void test_live_process(void)
{
	struct fixture_process process;
	char path[512];

	snprintf(path, sizeof(path), "%s/fixture_pie", FIXTURE_DIR);
	CHECK(start_fixture(path, &process) == 0);
	CHECK(process.function_count > 0);
	if (process.function_count) {
		const struct proc_mapping *mapping =
			procmaps__find(&process.maps, process.functions[0].addr);
		int fd = mapping ? process_files_open_mapping(process.pid, mapping) : -ENOENT;

		CHECK(same_file(fd, path));
		if (fd >= 0)
			close(fd);
	}
	stop_fixture(&process);
}

/*
 * A deleted file is reached through map_files only, while its process
 * lives; once the process is gone, -ENOENT, not another file of its name.
 */
static void test_deleted_file(void)
{
	char source[512], copy[] = "/tmp/kiln-test-process-files-XXXXXX";
	struct fixture_process process = {};
	struct proc_mapping mapping = {};
	int fd = mkstemp(copy);
	bool found = false;

	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	snprintf(source, sizeof(source), "%s/fixture_pie", FIXTURE_DIR);
	CHECK(copy_file(source, copy, 0755) == 0 && chmod(copy, 0755) == 0);
	CHECK(start_fixture(copy, &process) == 0);
	unlink(copy);
	procmaps__free(&process.maps);
	CHECK(procmaps__read(process.pid, false, &process.maps) == 0);
	for (size_t i = 0; i < process.maps.count && !found; i++) {
		if (process.maps.mappings[i].deleted &&
		    strcmp(process.maps.mappings[i].path, copy) == 0) {
			mapping = process.maps.mappings[i];
			mapping.path = strdup(mapping.path);
			found = true;
		}
	}
	CHECK(found);
	if (found) {
		int pid = process.pid;
		struct stat st;

		fd = process_files_open_mapping(pid, &mapping);
		CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == mapping.inode);
		if (fd >= 0)
			close(fd);
		stop_fixture(&process);
		CHECK(process_files_open_mapping(pid, &mapping) < 0);
		free(mapping.path);
	}
	stop_fixture(&process);
}

/* The process is gone and its path now names another file: -ESTALE, not that file. */
static void test_path_reused(void)
{
	char path[] = "/tmp/kiln-test-process-files-XXXXXX";
	struct proc_mapping mapping;
	int fd = mkstemp(path), gone = fork();
	struct stat st;

	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	CHECK(fake_mapping(path, &mapping) == 0);
	/* The same inode by path: taken. */
	fd = process_files_open_mapping(gone, &mapping);
	CHECK(same_file(fd, path));
	if (fd >= 0)
		close(fd);
	/* Another inode at the path now. */
	CHECK(stat(path, &st) == 0);
	mapping.inode = st.st_ino + 1;
	CHECK(process_files_open_mapping(gone, &mapping) == -ESTALE);
	unlink(path);
}

TEST_MAIN("process_files", TEST(test_file_backed), TEST(test_path), TEST(test_live_process),
	  TEST_ROOT(test_deleted_file, "a deleted file is reached through /proc/PID/map_files"),
	  TEST(test_path_reused))
