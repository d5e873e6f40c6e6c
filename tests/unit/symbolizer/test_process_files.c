// SPDX-License-Identifier: Apache-2.0
/*
 * process_files: a process's files as it sees them. Through map_files
 * for a deleted file, through /proc/PID/root otherwise, and by path once
 * the process is gone, only while the path is still the same inode. Files
 * named by path resolve inside a root (here a plain directory standing in
 * for /proc/PID/root) and pass the open policy: regular, owner and mode,
 * the process's read rights, size; by openat2 and by the fallback walk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
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

/* A directory standing in for a process's root, and a file outside it. */
struct fake_root {
	char dir[64];
	char outside[96];
	int fd;
};

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = unlink(path) < 0 && errno != ENOENT
			 ? -1
			 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) && chmod(path, mode) == 0 ? 0 : -EIO;
}

/*
 * Who owns the files the policy tests write: this user, or as root (whom
 * every check lets through) a made-up user the files are given to.
 */
static uid_t test_uid(void)
{
	return geteuid() == 0 ? 4242 : geteuid();
}

static gid_t test_gid(void)
{
	return geteuid() == 0 ? 4243 : getegid();
}

/* Writes root/name (a relative path) with text and mode, owned by test_uid. */
static int root_file(const struct fake_root *root, const char *name, const char *text, mode_t mode)
{
	char path[256];
	int err;

	snprintf(path, sizeof(path), "%s/%s", root->dir, name);
	err = write_text(path, text, mode);
	if (!err && geteuid() == 0 && chown(path, test_uid(), test_gid()) < 0)
		err = -errno;
	return err;
}

static int root_symlink(const struct fake_root *root, const char *target, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root->dir, name);
	return symlink(target, path) < 0 ? -errno : 0;
}

/*
 * root/etc/secret says "inside", the file outside says "outside", and
 * links inside the root try to reach out: absolute, through "..", via a
 * directory link, and one that loops.
 */
static int make_root(struct fake_root *root)
{
	char path[256];
	int err;

	snprintf(root->dir, sizeof(root->dir), "/tmp/kiln-test-root-XXXXXX");
	if (!mkdtemp(root->dir))
		return -errno;
	snprintf(root->outside, sizeof(root->outside), "%s-outside", root->dir);
	snprintf(path, sizeof(path), "%s/etc", root->dir);
	err = mkdir(path, 0755) < 0 ? -errno : 0;
	snprintf(path, sizeof(path), "%s/tmp", root->dir);
	if (!err)
		err = mkdir(path, 0777) < 0 ? -errno : 0;
	if (!err)
		err = root_file(root, "etc/secret", "inside", 0644);
	if (!err)
		err = write_text(root->outside, "outside", 0644);
	if (!err)
		err = root_symlink(root, "/etc/secret", "tmp/absolute");
	/* From root/tmp, enough ".." to leave any root, then the outside file's path. */
	snprintf(path, sizeof(path), "../../../../../../..%s", root->outside);
	if (!err)
		err = root_symlink(root, path, "tmp/relative");
	if (!err)
		err = root_symlink(root, "/", "tmp/slash");
	if (!err)
		err = root_symlink(root, "loop", "tmp/loop");
	root->fd = err ? -1 : open(root->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return err ? err : root->fd < 0 ? -errno : 0;
}

static void free_root(struct fake_root *root)
{
	char command[256];

	if (root->fd >= 0)
		close(root->fd);
	snprintf(command, sizeof(command), "rm -rf '%s' '%s'", root->dir, root->outside);
	CHECK(system(command) == 0);
}

/* What fd's file says, read to its end (at most size - 1 bytes). */
static const char *contents(int fd, char *buffer, size_t size)
{
	ssize_t n = fd >= 0 ? pread(fd, buffer, size - 1, 0) : -1;

	buffer[n > 0 ? n : 0] = '\0';
	return buffer;
}

/* Opens path in root with no policy and returns what it says, or "" (closes the fd). */
static const char *read_in_root(const struct fake_root *root, const char *path, char *buffer,
				size_t size)
{
	int fd = process_files_open(root->fd, path, NULL, NULL);

	contents(fd, buffer, size);
	if (fd >= 0)
		close(fd);
	return buffer;
}

/* Whether the walk reaches the same file as openat2 does, or fails as it does. */
static bool walk_agrees(const struct fake_root *root, const char *path)
{
	struct open_how_result {
		int fd;
		struct stat st;
	} a = { process_files_open(root->fd, path, NULL, NULL) },
	  b = { process_files_walk(root->fd, path, true) };
	bool same;

	if (a.fd >= 0)
		fstat(a.fd, &a.st);
	if (b.fd >= 0)
		fstat(b.fd, &b.st);
	same = (a.fd < 0 && b.fd < 0) ||
	       (a.fd >= 0 && b.fd >= 0 && a.st.st_ino == b.st.st_ino && a.st.st_dev == b.st.st_dev);
	if (!same)
		fprintf(stderr, "%s: openat2 %d, walk %d\n", path, a.fd, b.fd);
	if (a.fd >= 0)
		close(a.fd);
	if (b.fd >= 0)
		close(b.fd);
	return same;
}

/* Symlinks inside a root resolve against it: nothing outside is ever reached. */
static void test_confined_to_root(void)
{
	static const char *const paths[] = {
		"/etc/secret",
		"/tmp/absolute",
		"/tmp/relative",
		"/tmp/slash/etc/secret",
		"/../../etc/secret",
		"tmp/../../etc/secret",
		"/tmp/loop",
		"/tmp/missing",
		"/tmp/slash/../tmp/absolute",
	};
	struct fake_root root;
	char buffer[64];

	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	CHECK_STR(read_in_root(&root, "/etc/secret", buffer, sizeof(buffer)), "inside");
	/* An absolute link is the root's /etc/secret, not the host's. */
	CHECK_STR(read_in_root(&root, "/tmp/absolute", buffer, sizeof(buffer)), "inside");
	CHECK_STR(read_in_root(&root, "/tmp/slash/etc/secret", buffer, sizeof(buffer)), "inside");
	CHECK_STR(read_in_root(&root, "/../../etc/secret", buffer, sizeof(buffer)), "inside");
	/* ".." stops at the root: the outside file's path does not exist inside. */
	CHECK(process_files_open(root.fd, "/tmp/relative", NULL, NULL) == -ENOENT);
	CHECK(process_files_open(root.fd, root.outside, NULL, NULL) == -ENOENT);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		CHECK(walk_agrees(&root, paths[i]));
	/* Not followed at the end where it must not be: the link itself. */
	{
		int fd = process_files_walk(root.fd, "/tmp/absolute", false);
		struct stat st;

		CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode));
		if (fd >= 0)
			close(fd);
	}
cleanup:
	free_root(&root);
}

/* A magic link (/proc/self/root) on the way is refused as a way out, on the walk too. */
static void test_magic_link(void)
{
	enum process_file_refusal refusal = PROCESS_FILE_REFUSALS;
	int root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	CHECK(process_files_open(root_fd, "/proc/self/root/etc/hostname", NULL, &refusal) ==
	      -EPERM);
	CHECK(refusal == PROCESS_FILE_ESCAPES_ROOT);
	close(root_fd);
}

static int refusal_of(int root_fd, const char *path, const struct process_file_policy *policy)
{
	enum process_file_refusal refusal = PROCESS_FILE_REFUSALS;
	int fd = process_files_open(root_fd, path, policy, &refusal);

	if (fd >= 0) {
		close(fd);
		return -1; /* opened */
	}
	return fd == -EPERM ? (int)refusal : -2;
}

/* A FIFO and a device are refused without being opened: no open can block. */
static void test_not_regular(void)
{
	struct fake_root root;
	char path[256];
	int dev_fd = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);

	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	snprintf(path, sizeof(path), "%s/tmp/fifo", root.dir);
	CHECK(mkfifo(path, 0644) == 0);
	/* A blocking open of a FIFO without a writer would never return: fail instead. */
	alarm(10);
	CHECK(refusal_of(root.fd, "/tmp/fifo", NULL) == PROCESS_FILE_NOT_REGULAR);
	alarm(0);
	CHECK(refusal_of(dev_fd, "/null", NULL) == PROCESS_FILE_NOT_REGULAR);
	CHECK(refusal_of(dev_fd, "/zero", NULL) == PROCESS_FILE_NOT_REGULAR);
	CHECK(refusal_of(root.fd, "/etc", NULL) == PROCESS_FILE_NOT_REGULAR);
	CHECK(process_files_open_regular("/dev/zero") == -EPERM);
	CHECK(refusal_of(root.fd, "/etc/secret", NULL) == -1);
cleanup:
	close(dev_fd);
	free_root(&root);
}

/* A device node made in the root, as a process with CAP_MKNOD could. */
static void test_device_node(void)
{
	struct fake_root root;
	char path[256];

	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	snprintf(path, sizeof(path), "%s/tmp/zero", root.dir);
	CHECK(mknod(path, S_IFCHR | 0644, makedev(1, 5)) == 0);
	CHECK(refusal_of(root.fd, "/tmp/zero", NULL) == PROCESS_FILE_NOT_REGULAR);
cleanup:
	free_root(&root);
}

/* An identity with every uid and gid the same, and no other groups. */
static struct process_identity identity_of(uint32_t uid, uint32_t gid)
{
	return (struct process_identity){ { uid, uid, uid, uid }, { gid, gid, gid, gid } };
}

/* perf's rule for perf maps: owner, writers, and no symlink; checked against a given identity. */
static void test_owner_policy(void)
{
	struct process_identity me = identity_of(test_uid(), test_gid()),
				other = identity_of(test_uid() + 1, test_gid());
	struct process_file_policy owned = { .identity = &me, .owned_by_process = true };
	struct fake_root root;

	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	CHECK(root_file(&root, "tmp/map", "1000 10 f\n", 0644) == 0);
	CHECK(refusal_of(root.fd, "/tmp/map", &owned) == -1);
	/* The same file for another uid's process: not its file. */
	owned.identity = &other;
	CHECK(refusal_of(root.fd, "/tmp/map", &owned) == PROCESS_FILE_FOREIGN_OWNER);
	owned.identity = &me;
	CHECK(root_file(&root, "tmp/map", "1000 10 f\n", 0664) == 0);
	CHECK(refusal_of(root.fd, "/tmp/map", &owned) == PROCESS_FILE_WRITABLE_BY_OTHERS);
	CHECK(root_file(&root, "tmp/map", "1000 10 f\n", 0646) == 0);
	CHECK(refusal_of(root.fd, "/tmp/map", &owned) == PROCESS_FILE_WRITABLE_BY_OTHERS);
	CHECK(root_file(&root, "tmp/map", "1000 10 f\n", 0644) == 0);
	/* A symlink to a file that would pass: refused as a symlink, whatever it points at. */
	CHECK(root_symlink(&root, "map", "tmp/link") == 0);
	CHECK(refusal_of(root.fd, "/tmp/link", &owned) == PROCESS_FILE_SYMLINK);
	CHECK(refusal_of(root.fd, "/tmp/absolute", &owned) == PROCESS_FILE_SYMLINK);
	/* Without the owner rule (debug files), a link inside the root is followed. */
	owned.owned_by_process = false;
	CHECK(refusal_of(root.fd, "/tmp/link", &owned) == -1);
cleanup:
	free_root(&root);
}

/* Mode bits against the process's uid, gid and groups, as the kernel applies them. */
static void test_readable_by_process(void)
{
	uint32_t uid = test_uid(), gid = test_gid();
	struct process_identity owner = identity_of(uid, gid + 1),
				member = identity_of(uid + 1, gid),
				supplementary = identity_of(uid + 1, gid + 1),
				stranger = identity_of(uid + 1, gid + 1),
				root_user = identity_of(0, 0);
	struct process_file_policy policy = {};
	static const struct {
		mode_t mode;
		bool owner, member, supplementary, stranger;
	} cases[] = {
		{ 0600, true, false, false, false },
		{ 0640, true, true, true, false },
		{ 0604, true, false, false, true },
		/* The owner gets the owner's bits only, as in the kernel. */
		{ 0044, false, true, true, true },
		{ 0000, false, false, false, false },
	};
	struct fake_root root;

	supplementary.groups[0] = gid;
	supplementary.group_count = 1;
	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct process_identity *identities[] = { &owner, &member, &supplementary,
								&stranger, &root_user };
		const bool expected[] = { cases[i].owner, cases[i].member, cases[i].supplementary,
					  cases[i].stranger, true };

		CHECK(root_file(&root, "etc/file", "text", cases[i].mode) == 0);
		/* What kiln itself cannot read (not as root) says nothing about the policy. */
		if (geteuid() != 0 && !(cases[i].mode & S_IRUSR))
			continue;
		for (size_t j = 0; j < ARRAY_SIZE(identities); j++) {
			int result;

			policy.identity = identities[j];
			result = refusal_of(root.fd, "/etc/file", &policy);
			if (result != (expected[j] ? -1 : (int)PROCESS_FILE_UNREADABLE)) {
				fprintf(stderr, "mode %o, identity %zu: %d\n", cases[i].mode, j,
					result);
				CHECK(!"readable as the kernel would say");
			}
		}
	}
cleanup:
	free_root(&root);
}

static void test_size_bound(void)
{
	struct process_file_policy policy = { .max_bytes = 6 };
	struct fake_root root;

	CHECK(make_root(&root) == 0);
	if (root.fd < 0)
		goto cleanup;
	CHECK(refusal_of(root.fd, "/etc/secret", &policy) == -1); /* "inside": 6 bytes */
	policy.max_bytes = 5;
	CHECK(refusal_of(root.fd, "/etc/secret", &policy) == PROCESS_FILE_TOO_LARGE);
cleanup:
	free_root(&root);
}

/* This process's uids and gids, as /proc/self/status has them. */
static void test_identity(void)
{
	struct process_identity identity;
	gid_t groups[PROCESS_IDENTITY_MAX_GROUPS];
	int count = getgroups(PROCESS_IDENTITY_MAX_GROUPS, groups);
	int gone = fork();

	CHECK(process_files_read_identity(getpid(), &identity) == 0);
	CHECK(identity.uids[0] == getuid() && identity.uids[1] == geteuid());
	CHECK(identity.gids[0] == getgid() && identity.gids[1] == getegid());
	CHECK(identity.namespace_pid == getpid()); /* in the test's own pid namespace */
	CHECK(count >= 0 && identity.group_count == (size_t)count);
	for (int i = 0; i < count && i < (int)identity.group_count; i++)
		CHECK(identity.groups[i] == groups[i]);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	CHECK(process_files_read_identity(gone, &identity) == -ESRCH);
}

/* Counted by reason, -EPERM only. */
static void test_refusal_counts(void)
{
	struct process_file_refusals refusals = {}, sum = {};

	process_file_refusals__count(&refusals, -EPERM, PROCESS_FILE_SYMLINK);
	process_file_refusals__count(&refusals, -ENOENT, PROCESS_FILE_SYMLINK);
	process_file_refusals__count(&refusals, 3, PROCESS_FILE_TOO_LARGE);
	process_file_refusals__add(&sum, &refusals);
	process_file_refusals__add(&sum, &refusals);
	CHECK(refusals.counts[PROCESS_FILE_SYMLINK] == 1);
	CHECK(refusals.counts[PROCESS_FILE_TOO_LARGE] == 0);
	CHECK(sum.counts[PROCESS_FILE_SYMLINK] == 2);
}

/* Runs path as nobody until stdin closes; its pid once it said ready, or -1. */
static pid_t start_as_nobody(const char *path, int *ret_stdin)
{
	int to_child[2], from_child[2];
	char buffer[4096];
	size_t filled = 0;
	pid_t pid;

	if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(to_child[0], STDIN_FILENO);
		dup2(from_child[1], STDOUT_FILENO);
		if (setgid(65534) == 0 && setuid(65534) == 0)
			execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	while (pid > 0 && filled < sizeof(buffer) - 1) {
		ssize_t n = read(from_child[0], buffer + filled, sizeof(buffer) - 1 - filled);

		if (n <= 0)
			break;
		filled += (size_t)n;
		buffer[filled] = '\0';
		if (strstr(buffer, "ready\n"))
			break;
	}
	close(from_child[0]);
	*ret_stdin = to_child[1];
	return pid > 0 && strstr(buffer, "ready\n") ? pid : -1;
}

/*
 * The kernel runs a binary its user may execute but not read (mode 0711):
 * kiln does not read it for that process either. The same file readable
 * (0755) is opened, so the refusal is the mode's doing.
 */
static void test_execute_only(void)
{
	static const mode_t modes[] = { 0711, 0755 };
	char source[512], copy[] = "/tmp/kiln-test-execute-only-XXXXXX";
	int fd = mkstemp(copy);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	snprintf(source, sizeof(source), "%s/fixture_pie", FIXTURE_DIR);
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		struct proc_maps maps = {};
		const struct proc_mapping *mapping = NULL;
		int stdin_fd = -1, status;
		pid_t pid;

		CHECK(copy_file(source, copy, modes[i]) == 0 && chmod(copy, modes[i]) == 0);
		pid = start_as_nobody(copy, &stdin_fd);
		CHECK(pid > 0);
		if (pid > 0 && procmaps__read(pid, true, &maps) == 0)
			for (size_t j = 0; j < maps.count && !mapping; j++)
				if (strcmp(maps.mappings[j].path, copy) == 0)
					mapping = &maps.mappings[j];
		CHECK(mapping != NULL);
		if (mapping) {
			fd = process_files_open_mapping(pid, mapping);
			if (modes[i] & S_IROTH)
				CHECK(same_file(fd, copy));
			else
				CHECK(fd == -EPERM);
			if (fd >= 0)
				close(fd);
		}
		procmaps__free(&maps);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		if (stdin_fd >= 0)
			close(stdin_fd);
	}
	unlink(copy);
}

/* Makes openat2 fail with ENOSYS in this process, as on a kernel without it. */
static int without_openat2(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = { .len = ARRAY_SIZE(filter), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0)
		return -errno;
	return syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) < 0 && errno == ENOSYS ? 0 : -EIO;
}

/* The policy tests again where openat2 is missing: the walk gives the same answers. */
static void test_without_openat2(void)
{
	int status = -1;
	pid_t child = fork();

	if (child == 0) {
		if (without_openat2() < 0)
			_exit(100);
		test_confined_to_root();
		test_magic_link();
		test_not_regular();
		test_owner_policy();
		test_readable_by_process();
		_exit(testing_failures ? 1 : 0);
	}
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_MAIN("process_files", TEST(test_file_backed), TEST(test_path), TEST(test_live_process),
	  TEST_ROOT(test_deleted_file, "a deleted file is reached through /proc/PID/map_files"),
	  TEST(test_path_reused), TEST(test_confined_to_root), TEST(test_magic_link),
	  TEST(test_not_regular), TEST_ROOT(test_device_node, "mknod makes a device node"),
	  TEST(test_owner_policy), TEST(test_readable_by_process), TEST(test_size_bound),
	  TEST(test_identity), TEST(test_refusal_counts),
	  TEST_ROOT(test_execute_only, "a process of another user"), TEST(test_without_openat2))
