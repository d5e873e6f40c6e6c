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

#include "agent/metadata/process_labels.h"
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

/* A fake /proc/PID with the given comm and executable, in root_fd. */
static void make_process(int root_fd, uint32_t pid, const char *comm, const char *exe)
{
	char name[32], text[128];
	int fd;

	snprintf(name, sizeof(name), "%u", pid);
	CHECK(mkdirat(root_fd, name, 0755) == 0);
	fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	snprintf(text, sizeof(text), "%u (%s) S 1 %u %u 0 -1 0\n", pid, comm, pid, pid);
	write_file(fd, "stat", text, strlen(text));
	snprintf(text, sizeof(text), "%s\n", comm);
	write_file(fd, "comm", text, strlen(text));
	write_file(fd, "cgroup", "0::/system.slice/app.service\n", 29);
	CHECK(symlinkat(exe, fd, "exe") == 0);
	close(fd);
}

static struct relabel_rules *rules_of(const struct relabel_spec *specs, size_t count)
{
	struct relabel_rules *rules = relabel_rules__new();
	enum relabel_field field;
	char error[256];

	CHECK(rules);
	for (size_t i = 0; rules && i < count; i++)
		CHECK(relabel_rules__add(rules, &specs[i], &field, error, sizeof(error)) == 0);
	return rules;
}

/*
 * The cache: labels relabeled once (service_name from the executable's
 * name, the unit kept), __meta_* dropped, a dropped process said so, the
 * least recently used evicted past the bound, a gone process not cached.
 */
static void test_labels_cache(void)
{
	static const char *const exe_name[] = { "__meta_process_executable_name" };
	static const char *const comm[] = { "__meta_process_comm" };
	static const char *const unit[] = { "__meta_systemd_unit" };
	const struct relabel_spec specs[] = {
		{ .action = "drop", .source_labels = comm, .source_count = 1, .regex = "noisy.*" },
		{ .source_labels = exe_name, .source_count = 1, .target_label = "service_name" },
		{ .source_labels = unit,
		  .source_count = 1,
		  .regex = "(.*)\\.service",
		  .target_label = "unit" },
	};
	char root[] = "/tmp/kiln-proc-XXXXXX", command[PATH_MAX];
	struct relabel_rules *rules = rules_of(specs, ARRAY_SIZE(specs));
	struct relabel_rules *none = relabel_rules__new();
	struct process_labels_stats stats;
	const struct label_set *labels;
	struct process_labels *cache;
	int root_fd;

	CHECK(mkdtemp(root));
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(root_fd >= 0);
	make_process(root_fd, 100, "web", "/srv/bin/web-server");
	make_process(root_fd, 101, "noisy-cron", "/usr/bin/cron");
	make_process(root_fd, 102, "db", "/usr/sbin/postgres");
	cache = process_labels__new(&(struct process_labels_opts){
		.max_processes = 2, .proc_fd = root_fd, .rules = rules });
	CHECK(cache);
	if (!cache || !rules)
		goto out;

	CHECK(process_labels__get(cache, 100, &labels) == 1);
	CHECK_STR(label_set__get(labels, "service_name"), "web-server");
	CHECK_STR(label_set__get(labels, "unit"), "app");
	for (size_t i = 0; i < labels->count; i++)
		CHECK(strncmp(labels->labels[i].name, "__meta_", 7) != 0);
	CHECK(labels->count == 2);
	/* Read once: asked again, it is the cache's. */
	CHECK(process_labels__get(cache, 100, &labels) == 1);
	CHECK(process_labels__get(cache, 101, &labels) == 0);
	CHECK(labels->count == 0);
	process_labels__stats(cache, &stats);
	CHECK(stats.reads == 2 && stats.dropped == 1 && stats.evictions == 0);

	/* Using 100 makes 101 the least recently used: the one a fourth process evicts. */
	CHECK(process_labels__get(cache, 100, &labels) == 1);
	CHECK(process_labels__get(cache, 102, &labels) == 1);
	CHECK_STR(label_set__get(labels, "service_name"), "postgres");
	process_labels__stats(cache, &stats);
	CHECK(stats.evictions == 1 && process_labels__size(cache) == 2);
	CHECK(process_labels__get(cache, 100, &labels) == 1);
	process_labels__stats(cache, &stats);
	CHECK(stats.reads == 3); /* 100 stayed */
	CHECK(process_labels__get(cache, 101, &labels) == 0);
	process_labels__stats(cache, &stats);
	CHECK(stats.reads == 4 && stats.dropped == 2 && stats.evictions == 2);

	/* Gone: an error, and not cached. */
	CHECK(process_labels__get(cache, 999, &labels) == -ENOENT);
	CHECK(process_labels__get(cache, 999, &labels) == -ENOENT);
	process_labels__stats(cache, &stats);
	CHECK(stats.read_failures == 2);

	/* New rules: read again, and no rule keeps the __meta_* labels either. */
	process_labels__set_rules(cache, none);
	CHECK(process_labels__size(cache) == 0);
	CHECK(process_labels__get(cache, 101, &labels) == 1);
	CHECK(labels->count == 0);
	process_labels__forget(cache, 101);
	CHECK(process_labels__size(cache) == 0);
out:
	process_labels__free(cache);
	relabel_rules__free(rules);
	relabel_rules__free(none);
	close(root_fd);
	snprintf(command, sizeof(command), "rm -rf '%s'", root);
	CHECK(system(command) == 0);
}

/* What the annotate callback of test_incomplete gives: the namespace once the pod is "known". */
struct annotator {
	int calls;
	int known_after; /* calls before the pod is known */
	uint32_t dropped[8], undropped[8];
	size_t dropped_count, undropped_count;
};

static int annotate(void *ctx, uint32_t pid, struct label_set *labels)
{
	struct annotator *annotator = ctx;

	(void)pid;
	if (++annotator->calls <= annotator->known_after)
		return PROCESS_LABELS_INCOMPLETE;
	return label_set__set(labels, "__meta_kubernetes_namespace", "shop");
}

static void on_dropped(void *ctx, uint32_t pid)
{
	struct annotator *annotator = ctx;

	if (annotator->dropped_count < ARRAY_SIZE(annotator->dropped))
		annotator->dropped[annotator->dropped_count++] = pid;
}

static void on_undropped(void *ctx, uint32_t pid)
{
	struct annotator *annotator = ctx;

	if (annotator->undropped_count < ARRAY_SIZE(annotator->undropped))
		annotator->undropped[annotator->undropped_count++] = pid;
}

/*
 * Labels not known at the first read (the pod not in the API's answers
 * yet) are read again in later windows, once a window, and a keep rule
 * that dropped the process keeps it once they are known: the caller is
 * told both times. A process whose labels never complete is read again a
 * bounded number of times. New rules take back every drop.
 */
static void test_incomplete(void)
{
	static const char *const namespace[] = { "__meta_kubernetes_namespace" };
	const struct relabel_spec specs[] = {
		{ .action = "keep",
		  .source_labels = namespace,
		  .source_count = 1,
		  .regex = "shop" },
		{ .source_labels = namespace, .source_count = 1, .target_label = "namespace" },
	};
	char root[] = "/tmp/kiln-proc-XXXXXX", command[PATH_MAX];
	struct relabel_rules *rules = rules_of(specs, ARRAY_SIZE(specs));
	struct relabel_rules *none = relabel_rules__new();
	struct annotator annotator = { .known_after = 2 };
	struct process_labels_stats stats;
	const struct label_set *labels;
	struct process_labels *cache;
	int root_fd, windows;

	CHECK(mkdtemp(root));
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(root_fd >= 0);
	make_process(root_fd, 200, "shop-api", "/srv/bin/api");
	cache = process_labels__new(&(struct process_labels_opts){
		.max_processes = 8,
		.proc_fd = root_fd,
		.rules = rules,
		.annotate = annotate,
		.dropped = on_dropped,
		.undropped = on_undropped,
		.ctx = &annotator,
	});
	CHECK(cache && rules && none);
	if (!cache || !rules || !none)
		goto out;

	CHECK(process_labels__get(cache, 200, &labels) == 0);
	CHECK(annotator.dropped_count == 1 && annotator.dropped[0] == 200);
	/* Asked again in the same window: not read again. */
	CHECK(process_labels__get(cache, 200, &labels) == 0);
	CHECK(annotator.calls == 1);
	process_labels__end_window(cache);
	CHECK(process_labels__get(cache, 200, &labels) == 0);
	CHECK(annotator.calls == 2 && annotator.dropped_count == 1);
	process_labels__end_window(cache);
	CHECK(process_labels__get(cache, 200, &labels) == 1);
	CHECK_STR(label_set__get(labels, "namespace"), "shop");
	CHECK(annotator.undropped_count == 1 && annotator.undropped[0] == 200);
	/* Complete now: never read again. */
	process_labels__end_window(cache);
	CHECK(process_labels__get(cache, 200, &labels) == 1);
	CHECK(annotator.calls == 3);
	process_labels__stats(cache, &stats);
	CHECK(stats.rereads == 2 && stats.dropped == 1 && stats.left_incomplete == 0);

	/* Never known: read again PROCESS_LABELS_MAX_REREADS times, then left. */
	annotator.known_after = 1000;
	make_process(root_fd, 201, "other", "/srv/bin/other");
	CHECK(process_labels__get(cache, 201, &labels) == 0);
	for (windows = 0; windows < PROCESS_LABELS_MAX_REREADS + 10; windows++) {
		process_labels__end_window(cache);
		CHECK(process_labels__get(cache, 201, &labels) == 0);
	}
	process_labels__stats(cache, &stats);
	CHECK(stats.rereads == 2 + PROCESS_LABELS_MAX_REREADS);
	CHECK(stats.left_incomplete == 1);
	CHECK(annotator.dropped_count == 2); /* once, not at every reread */

	/* New rules: the one dropped is taken back first. */
	annotator.undropped_count = 0;
	process_labels__set_rules(cache, none);
	CHECK(annotator.undropped_count == 1 && annotator.undropped[0] == 201);
	CHECK(process_labels__size(cache) == 0);
out:
	process_labels__free(cache);
	relabel_rules__free(rules);
	relabel_rules__free(none);
	close(root_fd);
	snprintf(command, sizeof(command), "rm -rf '%s'", root);
	CHECK(system(command) == 0);
}

TEST_MAIN("process_metadata", TEST(test_self), TEST(test_hostile_files), TEST(test_labels_cache),
	  TEST(test_incomplete))
