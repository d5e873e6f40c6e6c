// SPDX-License-Identifier: Apache-2.0
/* lib/fs's atomic write: parts in order, the mode asked for, replaced whole, no leftovers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "tests/unit/testing.h"

/* Names in dir other than "." and ".."; the first goes to ret_name. */
static int count_entries(const char *dir, char *ret_name, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	int count = 0;

	if (!d)
		return -1;
	while ((entry = readdir(d)))
		if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..") && !count++)
			snprintf(ret_name, size, "%s", entry->d_name);
	closedir(d);
	return count;
}

static void read_back(int dir_fd, const char *name, char *buf, size_t size)
{
	int fd = openat(dir_fd, name, O_RDONLY);
	ssize_t len = fd >= 0 ? read(fd, buf, size - 1) : -1;

	buf[len > 0 ? len : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void test_write_and_replace(void)
{
	char dir[] = "/tmp/kiln-fs-test.XXXXXX", text[64], name[256];
	const struct iovec parts[] = { { "head ", 5 }, { "", 0 }, { "body", 4 } };
	mode_t old_umask = umask(077);
	struct stat st;
	int dir_fd;

	CHECK(mkdtemp(dir) != NULL);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(fs_write_file_atomic(dir_fd, "file", parts, 3, 0644, FS_WRITE_DURABLE) == 0);
	read_back(dir_fd, "file", text, sizeof(text));
	CHECK_STR(text, "head body");
	/* The mode asked for, whatever the umask. */
	CHECK(fstatat(dir_fd, "file", &st, 0) == 0 && (st.st_mode & 0777) == 0644);
	umask(old_umask);

	/* Replaced whole, not appended to; no temporary file left either way. */
	CHECK(fs_write_file_atomic(dir_fd, "file", parts + 2, 1, 0600, 0) == 0);
	read_back(dir_fd, "file", text, sizeof(text));
	CHECK_STR(text, "body");
	CHECK(fstatat(dir_fd, "file", &st, 0) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(count_entries(dir, name, sizeof(name)) == 1);
	CHECK_STR(name, "file");

	/* Names with a directory in them, or none, are refused. */
	CHECK(fs_write_file_atomic(dir_fd, "a/b", parts, 1, 0644, 0) == -EINVAL);
	CHECK(fs_write_file_atomic(dir_fd, "", parts, 1, 0644, 0) == -EINVAL);
	/* A failed rename (a directory is in the way) leaves the temporary file removed. */
	CHECK(mkdirat(dir_fd, "sub", 0755) == 0);
	CHECK(fs_write_file_atomic(dir_fd, "sub", parts, 1, 0644, 0) < 0);
	CHECK(count_entries(dir, name, sizeof(name)) == 2);
	unlinkat(dir_fd, "sub", AT_REMOVEDIR);
	unlinkat(dir_fd, "file", 0);
	close(dir_fd);
	CHECK(rmdir(dir) == 0);
}

static void test_at_fdcwd_and_missing_dir(void)
{
	char dir[] = "/tmp/kiln-fs-test.XXXXXX", cwd[4096], text[16];
	const struct iovec part = { "x", 1 };

	CHECK(mkdtemp(dir) != NULL);
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(dir) == 0);
	CHECK(fs_write_file_atomic(AT_FDCWD, "here", &part, 1, 0644, FS_WRITE_DURABLE) == 0);
	read_back(AT_FDCWD, "here", text, sizeof(text));
	CHECK_STR(text, "x");
	unlink("here");
	CHECK(chdir(cwd) == 0);
	CHECK(rmdir(dir) == 0);
	/* The directory removed under its descriptor: the error, not a crash. */
	char gone[] = "/tmp/kiln-fs-test.XXXXXX";
	int gone_fd;

	CHECK(mkdtemp(gone) != NULL);
	gone_fd = open(gone, O_RDONLY | O_DIRECTORY);
	CHECK(rmdir(gone) == 0);
	CHECK(fs_write_file_atomic(gone_fd, "none", &part, 1, 0644, 0) == -ENOENT);
	close(gone_fd);
}

TEST_MAIN("fs", TEST(test_write_and_replace), TEST(test_at_fdcwd_and_missing_dir))
