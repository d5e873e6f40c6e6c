// SPDX-License-Identifier: Apache-2.0
/* A process's __meta_* labels, from /proc/PID's stat, comm, exe, cmdline and cgroup. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/metadata/cgroup.h"
#include "agent/metadata/process_metadata.h"
#include "lib/array.h"

/* /proc/PID/stat is a line; cgroup a few (one per v1 hierarchy). */
#define STAT_MAX 1024
#define CGROUP_TEXT_MAX 8192
#define DELETED " (deleted)"

void host_metadata_read(struct host_metadata *host)
{
	struct utsname name;

	memset(host, 0, sizeof(*host));
	if (uname(&name))
		return;
	snprintf(host->hostname, sizeof(host->hostname), "%s", name.nodename);
	snprintf(host->kernel_release, sizeof(host->kernel_release), "%s", name.release);
}

/*
 * Reads at most size - 1 bytes of PID/name under proc_fd, NUL-terminated.
 * Returns the length, or a negative errno.
 */
static ssize_t read_proc_file(int proc_fd, uint32_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	size_t length = 0;
	int fd;

	snprintf(path, sizeof(path), "%" PRIu32 "/%s", pid, name);
	fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	while (length < size - 1) {
		ssize_t n = read(fd, buf + length, size - 1 - length);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		if (n == 0)
			break;
		length += (size_t)n;
	}
	close(fd);
	buf[length] = '\0';
	return (ssize_t)length;
}

/* Makes length bytes of text a label value in place: NULs become spaces, other non-printables '_'. */
static void clean_value(char *text, size_t length)
{
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\0')
			text[i] = ' ';
		else if (c < 0x20 || c > 0x7e)
			text[i] = '_';
	}
	while (length && text[length - 1] == ' ')
		length--;
	text[length] = '\0';
}

static int set_number(struct label_set *labels, const char *name, uint64_t value)
{
	char text[24];

	snprintf(text, sizeof(text), "%" PRIu64, value);
	return label_set__set(labels, name, text);
}

/* The ppid from stat's text: the fields after the comm's last ')' are "S ppid ...". */
static int parse_ppid(const char *stat, uint64_t *ret_ppid)
{
	const char *close = strrchr(stat, ')');
	char state;
	unsigned long long ppid;

	if (!close || sscanf(close + 1, " %c %llu", &state, &ppid) != 2)
		return -EINVAL;
	*ret_ppid = ppid;
	return 0;
}

static int add_cgroup(struct label_set *labels, const char *text, size_t length)
{
	struct cgroup_metadata cgroup;
	int err = 0;

	if (cgroup_metadata_parse(text, length, &cgroup))
		return 0;
	const struct {
		const char *name, *value;
	} fields[] = {
		{ "__meta_process_cgroup", cgroup.path },
		{ "__meta_systemd_unit", cgroup.systemd_unit },
		{ "__meta_systemd_slice", cgroup.systemd_slice },
		{ "__meta_container_id", cgroup.container_id },
		{ "__meta_container_runtime", cgroup.container_runtime },
		{ "__meta_kubernetes_pod_uid", cgroup.pod_uid },
		{ "__meta_kubernetes_pod_qos_class", cgroup.qos_class },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fields) && !err; i++) {
		char value[PROCESS_METADATA_VALUE_MAX];
		size_t n;

		if (!fields[i].value || !fields[i].value[0])
			continue;
		n = strnlen(fields[i].value, sizeof(value) - 1);
		memcpy(value, fields[i].value, n);
		clean_value(value, n);
		err = label_set__set(labels, fields[i].name, value);
	}
	return err;
}

static int add_file_label(struct label_set *labels, int proc_fd, uint32_t pid, const char *file,
			  const char *name)
{
	char value[PROCESS_METADATA_VALUE_MAX];
	ssize_t n = read_proc_file(proc_fd, pid, file, value, sizeof(value));

	if (n <= 0)
		return 0;
	/* comm ends in a newline, cmdline in a NUL: both go with the trailing blanks. */
	if (value[n - 1] == '\n')
		value[--n] = '\0';
	clean_value(value, (size_t)n);
	return label_set__set(labels, name, value);
}

static int add_executable(struct label_set *labels, int proc_fd, uint32_t pid)
{
	char link[64], path[PROCESS_METADATA_VALUE_MAX];
	const char *base;
	size_t length;
	ssize_t n;
	int err;

	snprintf(link, sizeof(link), "%" PRIu32 "/exe", pid);
	n = readlinkat(proc_fd, link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0; /* a kernel thread, or not ours to read */
	clean_value(path, (size_t)n);
	err = label_set__set(labels, "__meta_process_executable_path", path);
	if (err)
		return err;
	/* A deleted file's link ends " (deleted)": the name is the file's. */
	length = strlen(path);
	if (length > strlen(DELETED) && !strcmp(path + length - strlen(DELETED), DELETED))
		path[length - strlen(DELETED)] = '\0';
	base = strrchr(path, '/');
	return label_set__set(labels, "__meta_process_executable_name", base ? base + 1 : path);
}

int process_metadata_read(int proc_fd, uint32_t pid, const struct host_metadata *host,
			  struct label_set *labels)
{
	char stat[STAT_MAX], cgroup[CGROUP_TEXT_MAX];
	uint64_t ppid;
	ssize_t n;
	int err;

	label_set__clear(labels);
	n = read_proc_file(proc_fd, pid, "stat", stat, sizeof(stat));
	if (n < 0)
		return (int)n;
	if (parse_ppid(stat, &ppid))
		return -EINVAL;
	err = set_number(labels, "__meta_process_pid", pid);
	if (!err)
		err = set_number(labels, "__meta_process_ppid", ppid);
	if (!err)
		err = add_file_label(labels, proc_fd, pid, "comm", "__meta_process_comm");
	if (!err)
		err = add_file_label(labels, proc_fd, pid, "cmdline", "__meta_process_cmdline");
	if (!err)
		err = add_executable(labels, proc_fd, pid);
	if (!err) {
		n = read_proc_file(proc_fd, pid, "cgroup", cgroup, sizeof(cgroup));
		if (n > 0)
			err = add_cgroup(labels, cgroup, (size_t)n);
	}
	if (!err && host && host->hostname[0])
		err = label_set__set(labels, "__meta_hostname", host->hostname);
	if (!err && host && host->kernel_release[0])
		err = label_set__set(labels, "__meta_kernel_release", host->kernel_release);
	if (err)
		label_set__clear(labels);
	return err;
}
