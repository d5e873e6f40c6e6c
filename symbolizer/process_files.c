// SPDX-License-Identifier: Apache-2.0
/* Opening a process's files confined to its root and its rights, through /proc. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "lib/array.h"
#include "symbolizer/process_files.h"

/* For the walk where openat2 is missing: the kernel's own limit on links, and a depth bound. */
#define MAX_SYMLINKS 40
#define MAX_DEPTH 64

/* errno, negated; the kernel's EPERM as EACCES, as -EPERM says a file was refused. */
static int system_error(void)
{
	return errno == EPERM ? -EACCES : -errno;
}

bool process_files_is_file_backed(const struct proc_mapping *mapping)
{
	return mapping->inode != 0 && mapping->path && mapping->path[0] == '/';
}

int process_files_path(int pid, const char *path, char *buffer, size_t size)
{
	int length = snprintf(buffer, size, "/proc/%d/root%s", pid, path);

	return length < 0 || (size_t)length >= size ? -ENAMETOOLONG : 0;
}

/* "Uid:\t0\t0\t0\t0" and the like: up to max numbers after the key. */
static size_t parse_ids(const char *text, uint32_t *ret_ids, size_t max)
{
	size_t count = 0;

	while (count < max) {
		char *end;
		unsigned long id = strtoul(text, &end, 10);

		if (end == text)
			break;
		ret_ids[count++] = (uint32_t)id;
		text = end;
	}
	return count;
}

int process_files_read_identity(int pid, struct process_identity *ret_identity)
{
	struct process_identity identity = {};
	bool uids = false, gids = false;
	char path[64], line[1024];
	FILE *status;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	status = fopen(path, "re");
	if (!status)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), status)) {
		if (strncmp(line, "Uid:", 4) == 0)
			uids = parse_ids(line + 4, identity.uids, 4) == 4;
		else if (strncmp(line, "Gid:", 4) == 0)
			gids = parse_ids(line + 4, identity.gids, 4) == 4;
		else if (strncmp(line, "Groups:", 7) == 0)
			identity.group_count =
				parse_ids(line + 7, identity.groups, PROCESS_IDENTITY_MAX_GROUPS);
		else if (strncmp(line, "NSpid:", 6) == 0 && strrchr(line, '\t'))
			identity.namespace_pid = atoi(strrchr(line, '\t') + 1);
	}
	fclose(status);
	/* A status without them is no process to read for: refuse rather than guess. */
	if (!uids || !gids)
		return -ESRCH;
	if (identity.namespace_pid <= 0)
		identity.namespace_pid = pid;
	*ret_identity = identity;
	return 0;
}

int process_files_open_root(int pid)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? system_error() : fd;
}

static bool in_groups(const struct process_identity *identity, uint32_t gid)
{
	for (size_t i = 0; i < ARRAY_SIZE(identity->gids); i++)
		if (identity->gids[i] == gid)
			return true;
	for (size_t i = 0; i < identity->group_count; i++)
		if (identity->groups[i] == gid)
			return true;
	return false;
}

/*
 * Whether the process could read st by its mode bits, as any of the uids
 * it holds (it may switch between them): the owner's bits for the owner,
 * the group's for a member, the others' for the rest. uid 0 reads all.
 */
static bool readable_by(const struct stat *st, const struct process_identity *identity)
{
	for (size_t i = 0; i < ARRAY_SIZE(identity->uids); i++) {
		uint32_t uid = identity->uids[i];

		if (uid == 0)
			return true;
		if (uid == st->st_uid) {
			if (st->st_mode & S_IRUSR)
				return true;
		} else if (in_groups(identity, st->st_gid)) {
			if (st->st_mode & S_IRGRP)
				return true;
		} else if (st->st_mode & S_IROTH) {
			return true;
		}
	}
	return false;
}

static int refuse(enum process_file_refusal why, enum process_file_refusal *ret_refusal)
{
	if (ret_refusal)
		*ret_refusal = why;
	return -EPERM;
}

int process_files_check(int fd, const struct process_file_policy *policy,
			enum process_file_refusal *ret_refusal)
{
	const struct process_identity *identity = policy ? policy->identity : NULL;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return system_error();
	if (S_ISLNK(st.st_mode))
		return refuse(PROCESS_FILE_SYMLINK, ret_refusal);
	if (!S_ISREG(st.st_mode))
		return refuse(PROCESS_FILE_NOT_REGULAR, ret_refusal);
	if (policy && policy->owned_by_process && identity) {
		if (st.st_uid != 0 && st.st_uid != identity->uids[0] &&
		    st.st_uid != identity->uids[1])
			return refuse(PROCESS_FILE_FOREIGN_OWNER, ret_refusal);
		if (st.st_mode & (S_IWGRP | S_IWOTH))
			return refuse(PROCESS_FILE_WRITABLE_BY_OTHERS, ret_refusal);
	}
	if (identity && !readable_by(&st, identity))
		return refuse(PROCESS_FILE_UNREADABLE, ret_refusal);
	if (policy && policy->max_bytes && (uint64_t)st.st_size > policy->max_bytes)
		return refuse(PROCESS_FILE_TOO_LARGE, ret_refusal);
	return 0;
}

/* Closes every descriptor of the walk's directory stack. */
static void close_all(int *fds, size_t count)
{
	for (size_t i = 0; i < count; i++)
		close(fds[i]);
}

/*
 * One component at a time with O_NOFOLLOW, each symlink read and followed
 * by hand (an absolute one from root_fd; none of /proc's), ".." never
 * above root_fd: a stack of the directories walked, so a directory renamed
 * meanwhile cannot lead out.
 */
int process_files_walk(int root_fd, const char *path, bool follow_last)
{
	char pending[PATH_MAX], target[PATH_MAX], joined[PATH_MAX];
	int stack[MAX_DEPTH], links = 0, err = 0;
	size_t depth = 0, position = 0;

	if (snprintf(pending, sizeof(pending), "%s", path) >= (int)sizeof(pending))
		return -ENAMETOOLONG;
	for (;;) {
		int current = depth ? stack[depth - 1] : root_fd, fd;
		size_t length;
		bool last;
		struct statfs fs;
		struct stat st;
		ssize_t n;

		while (pending[position] == '/')
			position++;
		length = strcspn(pending + position, "/");
		if (!length) {
			/* The path ended on a directory: that directory. */
			fd = fcntl(current, F_DUPFD_CLOEXEC, 0);
			err = fd < 0 ? system_error() : fd;
			break;
		}
		last = pending[position + length + strspn(pending + position + length, "/")] ==
		       '\0';
		pending[position + length] = '\0';
		if (strcmp(pending + position, ".") == 0 || strcmp(pending + position, "..") == 0) {
			if (pending[position + 1] == '.' && depth)
				close(stack[--depth]);
			position += length + (last ? 0 : 1);
			continue;
		}
		fd = openat(current, pending + position, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			err = system_error();
			if (fd >= 0)
				close(fd);
			break;
		}
		if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
			/* /proc's links are magic (RESOLVE_NO_MAGICLINKS): not followed at all. */
			bool magic = fstatfs(fd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;

			n = magic ? -1 : readlinkat(fd, "", target, sizeof(target) - 1);
			close(fd);
			if (n < 0 || ++links > MAX_SYMLINKS) {
				err = n < 0 && !magic ? system_error() : -ELOOP;
				break;
			}
			target[n] = '\0';
			/* The link's target, then what was left after the link. */
			if (snprintf(joined, sizeof(joined), "%s/%s", target,
				     last ? "" : pending + position + length + 1) >=
			    (int)sizeof(joined)) {
				err = -ENAMETOOLONG;
				break;
			}
			memcpy(pending, joined, sizeof(pending));
			position = 0;
			if (target[0] == '/') {
				close_all(stack, depth);
				depth = 0;
			}
			continue;
		}
		if (last) {
			err = fd;
			break;
		}
		if (!S_ISDIR(st.st_mode) || depth == MAX_DEPTH) {
			close(fd);
			err = S_ISDIR(st.st_mode) ? -ELOOP : -ENOTDIR;
			break;
		}
		stack[depth++] = fd;
		position += length + 1;
	}
	close_all(stack, depth);
	return err;
}

/* path inside root_fd as an O_PATH descriptor: openat2 confined to it, else the walk. */
static int resolve_in_root(int root_fd, const char *path, bool follow_last)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | (follow_last ? 0 : O_NOFOLLOW),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	for (int attempt = 0; attempt < 3; attempt++) {
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		/* EAGAIN: a rename raced with a "..": the kernel asks to try again. */
		if (errno != EAGAIN)
			break;
	}
	/*
	 * ENOSYS: a kernel without it; EPERM: a seccomp profile that does not
	 * know it (Docker's before 20.10), as nothing else makes an O_PATH
	 * openat2 fail so.
	 */
	if (errno == ENOSYS || errno == EPERM)
		return process_files_walk(root_fd, path, follow_last);
	return system_error();
}

/* The file an O_PATH descriptor reached, opened for reading: the same inode, never a path again. */
static int reopen(int path_fd)
{
	char self[64];
	int fd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", path_fd);
	fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? system_error() : fd;
}

/* Checks the file path_fd reached, then opens it; closes path_fd. */
static int check_and_reopen(int path_fd, const struct process_file_policy *policy,
			    enum process_file_refusal *ret_refusal)
{
	int err = process_files_check(path_fd, policy, ret_refusal);

	if (!err)
		err = reopen(path_fd);
	close(path_fd);
	return err;
}

int process_files_open(int root_fd, const char *path, const struct process_file_policy *policy,
		       enum process_file_refusal *ret_refusal)
{
	/* perf's rule: a perf map that is a symlink is not followed, whatever it points at. */
	bool follow_last = !(policy && policy->owned_by_process);
	int fd = resolve_in_root(root_fd, path, follow_last);

	/* ELOOP: a magic link (/proc/PID/root inside it) or a loop, both ways out. */
	if (fd == -ELOOP || fd == -EXDEV)
		return refuse(PROCESS_FILE_ESCAPES_ROOT, ret_refusal);
	if (fd < 0)
		return fd;
	return check_and_reopen(fd, policy, ret_refusal);
}

int process_files_open_directory(int root_fd, const char *path)
{
	int fd = resolve_in_root(root_fd, path, true);
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
		close(fd);
		return -ENOTDIR;
	}
	return fd;
}

void process_file_refusals__count(struct process_file_refusals *refusals, int err,
				  enum process_file_refusal refusal)
{
	if (err == -EPERM && refusal < PROCESS_FILE_REFUSALS)
		refusals->counts[refusal]++;
}

void process_file_refusals__add(struct process_file_refusals *sum,
				const struct process_file_refusals *more)
{
	for (size_t i = 0; i < PROCESS_FILE_REFUSALS; i++)
		sum->counts[i] += more->counts[i];
}

int process_files_open_regular(const char *path)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	return fd < 0 ? system_error() : check_and_reopen(fd, NULL, NULL);
}

int process_files_open_map_file(int pid, const struct proc_mapping *mapping,
				const struct process_identity *identity,
				enum process_file_refusal *ret_refusal)
{
	const struct process_file_policy policy = { .identity = identity };
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, mapping->start,
		 mapping->end);
	/* A magic link to the very file mapped: followed, as is its purpose. */
	fd = open(path, O_PATH | O_CLOEXEC);
	return fd < 0 ? system_error() : check_and_reopen(fd, &policy, ret_refusal);
}

int process_files_open_mapping(int pid, const struct proc_mapping *mapping)
{
	struct process_identity identity;
	struct process_file_policy policy = {};
	int fd, root_fd;
	struct stat st;

	/* Gone: no identity, and only the same-inode check below holds. */
	if (process_files_read_identity(pid, &identity) == 0)
		policy.identity = &identity;
	fd = process_files_open_map_file(pid, mapping, policy.identity, NULL);
	if (fd >= 0 || mapping->deleted || fd == -EPERM)
		return fd;
	root_fd = process_files_open_root(pid);
	if (root_fd >= 0) {
		fd = process_files_open(root_fd, mapping->path, &policy, NULL);
		close(root_fd);
		if (fd >= 0 || fd == -EPERM)
			return fd;
	}
	/* Gone: the path on our side, only while it is still the same file. */
	fd = process_files_open_regular(mapping->path);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != mapping->inode)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}
