/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A process's files as the process sees them (internal to the symbolizer):
 * through /proc/PID/map_files and /proc/PID/root, so that deleted files and
 * files in other mount namespaces are read too.
 */
#ifndef KILN_PROCESS_FILES_H
#define KILN_PROCESS_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "symbolizer/procmaps.h"

/* Regular files only: not anonymous memory, [vdso], [heap] and the like. */
bool process_files_is_file_backed(const struct proc_mapping *mapping);

/*
 * A file descriptor for the file behind a mapping, or a negative errno.
 * /proc/PID/map_files works for deleted files and any mount namespace;
 * /proc/PID/root/PATH for readers without the capability map_files wants;
 * PATH when the process is gone, if it is still the same inode (-ESTALE
 * when not).
 */
int process_files_open_mapping(int pid, const struct proc_mapping *mapping);

/*
 * path as process pid sees it, "/proc/PID/root" followed by path, into
 * buffer. Returns 0 or -ENAMETOOLONG.
 */
int process_files_path(int pid, const char *path, char *buffer, size_t size);

/* O_RDONLY | O_CLOEXEC: a file descriptor, or a negative errno. */
int process_files_open_readonly(const char *path);

#endif /* KILN_PROCESS_FILES_H */
