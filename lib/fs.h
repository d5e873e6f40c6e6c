/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers shared by the agent's writers. */
#ifndef KILN_FS_H
#define KILN_FS_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* mkdir -p, then checks the directory is writable. Returns 0 or a negative errno. */
int fs_make_dirs(const char *path);

/*
 * A stream over the directory dir_fd names, from a descriptor of its own
 * (so that dir_fd stays open after closedir). NULL with errno set.
 */
DIR *fs_opendir_at(int dir_fd);

/* Writes all of data, through short writes and EINTR. Returns 0 or a negative errno. */
int fs_write_all(int fd, const void *data, size_t size);

/* fs_write_file_atomic: fsync the file before the rename and the directory after it. */
#define FS_WRITE_DURABLE (1u << 0)

/*
 * Writes the parts (in order) as the file name in the directory dir_fd
 * (AT_FDCWD: the working directory), atomically: readers see the old file
 * or the whole new one, never part of it. The data goes to a hidden
 * temporary file ".tmp-<name>.<unique>" in the same directory, which is
 * renamed over name. With FS_WRITE_DURABLE the file is fsync'd before the
 * rename and the directory after it, so a power loss keeps it whole too.
 * Returns 0 or a negative errno; on failure no temporary file is left.
 */
int fs_write_file_atomic(int dir_fd, const char *name, const struct iovec *parts, size_t part_count,
			 mode_t mode, unsigned int flags);

/*
 * The first line of a small credential file (a bearer token, a password),
 * without trailing whitespace, NUL-terminated in buf. Read at each use,
 * so a rotated token is picked up. Returns 0, -ENODATA when the line is
 * empty, or a negative errno.
 */
int fs_read_credential(const char *path, char *buf, size_t size);

/* The prefix of fs_write_file_atomic's temporary files: what a crash may leave behind. */
#define FS_TEMP_PREFIX ".tmp-"

#endif /* KILN_FS_H */
