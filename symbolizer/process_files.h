/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A process's files as the process sees them, opened confined: the one way
 * kiln, which runs as root, opens a file on behalf of a process.
 *
 * Mapped files are opened through /proc/PID/map_files (deleted files and
 * other mount namespaces too). Files named by path (perf maps, debug files
 * in a container) are resolved inside the process's root, /proc/PID/root,
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so a symlink or
 * ".." never leaves it (a component-by-component walk where openat2 is
 * missing). Every file is first reached as an O_PATH descriptor and checked
 * with fstat before it is opened for reading: a FIFO, a device or a socket
 * is never opened at all, so it can neither block nor act on its open.
 * Files must also be readable by the process itself by their mode bits
 * (mapped ones too: an execute-only binary is not read), so kiln never
 * reads for a process what it could not read.
 */
#ifndef KILN_PROCESS_FILES_H
#define KILN_PROCESS_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/procmaps.h"

/* Why a file was refused; each is counted. */
enum process_file_refusal {
	PROCESS_FILE_NOT_REGULAR, /* a FIFO, device, socket or directory */
	PROCESS_FILE_SYMLINK, /* the file itself is a symlink where it must not be one */
	PROCESS_FILE_FOREIGN_OWNER, /* owned by neither the process nor root */
	PROCESS_FILE_WRITABLE_BY_OTHERS, /* group or others may write it */
	PROCESS_FILE_UNREADABLE, /* the process could not read it by its mode bits */
	PROCESS_FILE_TOO_LARGE,
	PROCESS_FILE_ESCAPES_ROOT, /* a magic link, or a ".." raced out of the process's root */
	PROCESS_FILE_REFUSALS,
};

struct process_file_refusals {
	uint64_t counts[PROCESS_FILE_REFUSALS];
};

/* Supplementary groups past this are not considered: a file only they could read is refused. */
#define PROCESS_IDENTITY_MAX_GROUPS 64

/* Who a process is, for the checks on its files (/proc/PID/status, in kiln's namespaces). */
struct process_identity {
	uint32_t uids[4]; /* real, effective, saved, filesystem */
	uint32_t gids[4];
	uint32_t groups[PROCESS_IDENTITY_MAX_GROUPS];
	size_t group_count;
	int namespace_pid; /* its pid in its own pid namespace (NSpid's last) */
};

/* What a file opened for a process must be. */
struct process_file_policy {
	/* NULL: no owner or mode checks (a file kiln chose itself, or a mapped one). */
	const struct process_identity *identity;
	/*
	 * perf's rule for perf maps: owned by the process's real or effective
	 * uid or by root, writable by its owner only, and not a symlink itself.
	 */
	bool owned_by_process;
	uint64_t max_bytes; /* larger is refused; 0: no bound */
};

/* Regular files only: not anonymous memory, [vdso], [heap] and the like. */
bool process_files_is_file_backed(const struct proc_mapping *mapping);

/* Reads pid's identity while it runs. Returns 0, -ESRCH when it is gone, or a negative errno. */
int process_files_read_identity(int pid, struct process_identity *ret_identity);

/* A directory descriptor (O_PATH) of pid's root, /proc/PID/root, or a negative errno. */
int process_files_open_root(int pid);

/*
 * Opens path (absolute, as the process sees it) inside root_fd, which acts
 * as "/" for every symlink and ".." on the way, for reading (O_RDONLY |
 * O_NONBLOCK | O_CLOEXEC). Returns a descriptor, a negative errno (-ENOENT
 * and the like), or -EPERM for a file the policy refuses, with
 * *ret_refusal saying why (ret_refusal may be NULL). Every open here
 * returns -EPERM for a refusal only: the kernel's own EPERM comes back as
 * -EACCES.
 */
int process_files_open(int root_fd, const char *path, const struct process_file_policy *policy,
		       enum process_file_refusal *ret_refusal);

/*
 * How path is resolved inside root_fd where openat2 is missing (its
 * RESOLVE_IN_ROOT by hand; process_files_open falls back to it by itself):
 * an O_PATH descriptor of what it reaches, or a negative errno. A symlink
 * as the last component is followed only with follow_last.
 */
int process_files_walk(int root_fd, const char *path, bool follow_last);

/* The same as an O_PATH descriptor of a directory, to compare it or open below it. */
int process_files_open_directory(int root_fd, const char *path);

/*
 * process_files_open's checks on a file already reached (an O_PATH
 * descriptor or an open one): 0, or -EPERM with *ret_refusal.
 */
int process_files_check(int fd, const struct process_file_policy *policy,
			enum process_file_refusal *ret_refusal);

/* Counts err's refusal (nothing when err is not -EPERM). */
void process_file_refusals__count(struct process_file_refusals *refusals, int err,
				  enum process_file_refusal refusal);
void process_file_refusals__add(struct process_file_refusals *sum,
				const struct process_file_refusals *more);

/*
 * A regular file kiln names itself (a host debug directory, debuginfod's
 * cache): O_RDONLY | O_NONBLOCK | O_CLOEXEC, anything else refused with
 * -EPERM before it is opened. A descriptor, or a negative errno.
 */
int process_files_open_regular(const char *path);

/*
 * /proc/PID/map_files/START-END: a descriptor, or a negative errno; -EPERM
 * with *ret_refusal (may be NULL) for anything but a regular file, or one
 * identity (may be NULL: not checked) could not read by its mode bits.
 */
int process_files_open_map_file(int pid, const struct proc_mapping *mapping,
				const struct process_identity *identity,
				enum process_file_refusal *ret_refusal);

/*
 * A file descriptor for the file behind a mapping, or a negative errno.
 * /proc/PID/map_files works for deleted files and any mount namespace;
 * PATH inside /proc/PID/root for readers without the capability map_files
 * wants; PATH when the process is gone, if it is still the same inode
 * (-ESTALE when not). Regular files only, and while the process runs, only
 * those it could read itself by their mode bits (-EPERM).
 */
int process_files_open_mapping(int pid, const struct proc_mapping *mapping);

/*
 * path as process pid sees it, "/proc/PID/root" followed by path, into
 * buffer. Returns 0 or -ENAMETOOLONG.
 */
int process_files_path(int pid, const char *path, char *buffer, size_t size);

#endif /* KILN_PROCESS_FILES_H */
