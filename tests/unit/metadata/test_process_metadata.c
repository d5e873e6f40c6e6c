// SPDX-License-Identifier: Apache-2.0
/*
 * A process's __meta_* labels: read from this very process in the real
 * /proc (checked against what the test knows of itself), and from a
 * /proc laid out by hand whose files a hostile process would shape: a
 * comm with ')' in it, a command line of NULs, newlines and megabytes, a
 * cgroup of a Kubernetes pod, a process gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/metadata/process_metadata.h"
#include "tests/unit/testing.h"

#define ID "3f4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829"
#define UID "8e6a1b2c-3d4e-4f50-9a6b-7c8d9e0f1a2b"
#define UID_ "8e6a1b2c_3d4e_4f50_9a6b_7c8d9e0f1a2b"

static void test_self(void)
{
	struct host_metadata host;
	struct label_set labels = {};
	char expected[PATH_MAX], text[64], comm[32] = "";
	ssize_t n;
	FILE *file;
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	CHECK(proc_fd >= 0);
	host_metadata_read(&host);
	CHECK(host.hostname[0] && host.kernel_release[0]);
	CHECK(process_metadata_read(proc_fd, (uint32_t)getpid(), &host, &labels) == 0);
	snprintf(text, sizeof(text), "%d", getpid());
	CHECK_STR(label_set__get(&labels, "__meta_process_pid"), text);
	snprintf(text, sizeof(text), "%d", getppid());
	CHECK_STR(label_set__get(&labels, "__meta_process_ppid"), text);
	file = fopen("/proc/self/comm", "re");
	CHECK(file && fgets(comm, sizeof(comm), file));
	if (file)
		fclose(file);
	comm[strcspn(comm, "\n")] = '\0';
	CHECK_STR(label_set__get(&labels, "__meta_process_comm"), comm);
	n = readlink("/proc/self/exe", expected, sizeof(expected) - 1);
	CHECK(n > 0);
	expected[n > 0 ? n : 0] = '\0';
	CHECK_STR(label_set__get(&labels, "__meta_process_executable_path"), expected);
	CHECK_STR(label_set__get(&labels, "__meta_process_executable_name"),
		  strrchr(expected, '/') + 1);
	/* This binary's path is its argv[0] as the test runner starts it, or ends it. */
	const char *cmdline = label_set__get(&labels, "__meta_process_cmdline");
	CHECK(cmdline && strstr(cmdline, "test_process_metadata"));
	CHECK(label_set__get(&labels, "__meta_process_cgroup"));
	CHECK_STR(label_set__get(&labels, "__meta_hostname"), host.hostname);
	CHECK_STR(label_set__get(&labels, "__meta_kernel_release"), host.kernel_release);
	label_set__clear(&labels);
	close(proc_fd);
}

static void write_file(int dir_fd, const char *name, const void *data, size_t size)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
}

static void test_hostile_files(void)
{
	char root[] = "/tmp/kiln-proc-XXXXXX", path[PATH_MAX];
	static const char stat[] = "4711 (a) b) (c) R 42 4711 4711 0 -1 4194560 0 0 0 0\n";
	static const char cgroup[] =
		"0::/kubepods.slice/kubepods-burstable.slice/"
		"kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID ".scope\n";
	static const char cmdline[] = "python3\0-c\0print('x')\nrm -rf /\0";
	struct label_set labels = {};
	size_t big_size = 4u << 20;
	char *big = malloc(big_size);
	int proc_fd, pid_fd;

	CHECK(big && mkdtemp(root));
	snprintf(path, sizeof(path), "%s/4711", root);
	CHECK(mkdir(path, 0755) == 0);
	proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pid_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(proc_fd >= 0 && pid_fd >= 0);
	write_file(pid_fd, "stat", stat, strlen(stat));
	write_file(pid_fd, "comm", "a) b) (c\n", 9);
	write_file(pid_fd, "cmdline", cmdline, sizeof(cmdline) - 1);
	write_file(pid_fd, "cgroup", cgroup, strlen(cgroup));
	CHECK(symlinkat("/opt/app/bin/server\n (deleted)", pid_fd, "exe") == 0);

	CHECK(process_metadata_read(proc_fd, 4711, NULL, &labels) == 0);
	CHECK_STR(label_set__get(&labels, "__meta_process_pid"), "4711");
	/* The comm holds ") (": the ppid is after the last ')'. */
	CHECK_STR(label_set__get(&labels, "__meta_process_ppid"), "42");
	CHECK_STR(label_set__get(&labels, "__meta_process_comm"), "a) b) (c");
	/* Arguments joined by spaces; the newline a process put in one is no line break. */
	CHECK_STR(label_set__get(&labels, "__meta_process_cmdline"),
		  "python3 -c print('x')_rm -rf /");
	CHECK_STR(label_set__get(&labels, "__meta_process_executable_path"),
		  "/opt/app/bin/server_ (deleted)");
	CHECK_STR(label_set__get(&labels, "__meta_process_executable_name"), "server_");
	CHECK_STR(label_set__get(&labels, "__meta_container_id"), ID);
	CHECK_STR(label_set__get(&labels, "__meta_container_runtime"), "containerd");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_uid"), UID);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_qos_class"), "Burstable");
	CHECK_STR(label_set__get(&labels, "__meta_systemd_unit"), "cri-containerd-" ID ".scope");
	CHECK(!label_set__get(&labels, "__meta_hostname"));

	/* A command line of megabytes is cut at the bound, and read only that far. */
	if (big) {
		memset(big, 'A', big_size);
		write_file(pid_fd, "cmdline", big, big_size);
		CHECK(process_metadata_read(proc_fd, 4711, NULL, &labels) == 0);
		const char *value = label_set__get(&labels, "__meta_process_cmdline");
		CHECK(value && strlen(value) == PROCESS_METADATA_VALUE_MAX - 1);
	}

	/* A FIFO where a file should be does not hang the reader. */
	CHECK(unlinkat(pid_fd, "comm", 0) == 0);
	CHECK(mkfifoat(pid_fd, "comm", 0644) == 0);
	CHECK(process_metadata_read(proc_fd, 4711, NULL, &labels) == 0);
	CHECK(!label_set__get(&labels, "__meta_process_comm"));
	CHECK_STR(label_set__get(&labels, "__meta_process_ppid"), "42");

	/* A stat that is not one: no labels. */
	write_file(pid_fd, "stat", "garbage", 7);
	CHECK(process_metadata_read(proc_fd, 4711, NULL, &labels) == -EINVAL);
	CHECK(labels.count == 0);

	/* A process gone: -ENOENT, no labels. */
	CHECK(process_metadata_read(proc_fd, 4712, NULL, &labels) == -ENOENT);
	CHECK(labels.count == 0);

	label_set__clear(&labels);
	close(pid_fd);
	close(proc_fd);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	CHECK(system(path) == 0);
	free(big);
}

TEST_MAIN("process_metadata", TEST(test_self), TEST(test_hostile_files))
