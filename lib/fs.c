// SPDX-License-Identifier: Apache-2.0
/* Small file-system helpers shared by the agent's writers. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"

int fs_make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return access(buf, W_OK) ? -errno : 0;
}

DIR *fs_opendir_at(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (fd < 0)
		return NULL;
	dir = fdopendir(fd);
	if (!dir) {
		int err = errno;

		close(fd);
		errno = err;
	}
	return dir;
}

int fs_write_all(int fd, const void *data, size_t size)
{
	const char *cursor = data;

	while (size) {
		ssize_t written = write(fd, cursor, size);

		if (written < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		cursor += written;
		size -= (size_t)written;
	}
	return 0;
}

/* Opens a new temporary file beside name; its name goes to temp. Returns the fd or -errno. */
static int open_temp(int dir_fd, const char *name, char *temp, size_t temp_size, mode_t mode)
{
	static unsigned int counter; /* with the pid: unique among this host's writers */

	for (int attempt = 0; attempt < 16; attempt++) {
		unsigned int unique = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
		int fd;

		if (snprintf(temp, temp_size, FS_TEMP_PREFIX "%s.%d.%u", name, (int)getpid(),
			     unique) >= (int)temp_size)
			return -ENAMETOOLONG;
		fd = openat(dir_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
		/* Left by an earlier process that had this pid: take the next number. */
	}
	return -EEXIST;
}

/* Makes a rename in the directory durable; the file is in place even if this fails. */
static void sync_directory(int dir_fd)
{
	int fd = dir_fd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dir_fd;

	if (fd < 0)
		return;
	fsync(fd);
	if (fd != dir_fd)
		close(fd);
}

int fs_write_file_atomic(int dir_fd, const char *name, const struct iovec *parts, size_t part_count,
			 mode_t mode, unsigned int flags)
{
	char temp[NAME_MAX + 1];
	int fd, err = 0;

	if (!*name || strchr(name, '/'))
		return -EINVAL;
	fd = open_temp(dir_fd, name, temp, sizeof(temp), mode);
	if (fd < 0)
		return fd;
	/* The mode asked for, whatever the umask: readers of the directory rely on it. */
	if (fchmod(fd, mode) < 0)
		err = -errno;
	for (size_t i = 0; i < part_count && !err; i++)
		err = fs_write_all(fd, parts[i].iov_base, parts[i].iov_len);
	if (!err && (flags & FS_WRITE_DURABLE) && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && renameat(dir_fd, temp, dir_fd, name) < 0)
		err = -errno;
	if (err) {
		unlinkat(dir_fd, temp, 0);
		return err;
	}
	if (flags & FS_WRITE_DURABLE)
		sync_directory(dir_fd);
	return 0;
}

int fs_read_credential(const char *path, char *buf, size_t size)
{
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	if (len < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	len = (ssize_t)strlen(buf);
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	return len ? 0 : -ENODATA;
}
