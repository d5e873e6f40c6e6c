/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers shared by the agent's writers. */
#ifndef KILN_FS_H
#define KILN_FS_H

#include <dirent.h>
#include <stddef.h>

/* mkdir -p, then checks the directory is writable. Returns 0 or a negative errno. */
int fs_make_dirs(const char *path);

/*
 * A stream over the directory dir_fd names, from a descriptor of its own
 * (so that dir_fd stays open after closedir). NULL with errno set.
 */
DIR *fs_opendir_at(int dir_fd);

/* Writes all of data, through short writes and EINTR. Returns 0 or a negative errno. */
int fs_write_all(int fd, const void *data, size_t size);

#endif /* KILN_FS_H */
