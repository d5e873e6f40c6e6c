// SPDX-License-Identifier: Apache-2.0
/* Opening a process's files through /proc, as the process sees them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/process_files.h"

bool process_files_is_file_backed(const struct proc_mapping *mapping)
{
	return mapping->inode != 0 && mapping->path && mapping->path[0] == '/';
}

int process_files_open_readonly(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int process_files_path(int pid, const char *path, char *buffer, size_t size)
{
	int length = snprintf(buffer, size, "/proc/%d/root%s", pid, path);

	return length < 0 || (size_t)length >= size ? -ENAMETOOLONG : 0;
}

int process_files_open_mapping(int pid, const struct proc_mapping *mapping)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, mapping->start,
		 mapping->end);
	fd = process_files_open_readonly(path);
	if (fd >= 0 || mapping->deleted)
		return fd;
	err = process_files_path(pid, mapping->path, path, sizeof(path));
	if (err)
		return err;
	fd = process_files_open_readonly(path);
	if (fd >= 0)
		return fd;
	fd = process_files_open_readonly(mapping->path);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != mapping->inode)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}
