/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the symbolizer's tests: run a fixture program
 * (tests/fixtures/build.sh) and read the addresses it prints, and ask
 * binutils (readelf, nm) for ground truth.
 */
#ifndef KILN_TEST_FIXTURE_PROCESS_H
#define KILN_TEST_FIXTURE_PROCESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolizer/procmaps.h"

#define MAX_FUNCTIONS 8

struct fixture_function {
	char name[64];
	uint64_t addr;
};

struct fixture_process {
	pid_t pid;
	int stdin_fd;
	struct fixture_function functions[MAX_FUNCTIONS];
	size_t function_count;
	struct proc_maps maps;
};

/* Starts a fixture and reads the addresses it prints; it then waits for stdin to close. */
static inline int start_fixture(const char *path, struct fixture_process *process)
{
	int to_child[2], from_child[2];
	char line[256];
	FILE *out;
	bool ready = false;

	memset(process, 0, sizeof(*process));
	if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0)
		return -errno;
	process->pid = fork();
	if (process->pid < 0)
		return -errno;
	if (process->pid == 0) {
		dup2(to_child[0], STDIN_FILENO);
		dup2(from_child[1], STDOUT_FILENO);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	process->stdin_fd = to_child[1];
	out = fdopen(from_child[0], "r");
	if (!out)
		return -errno;
	while (!ready && fgets(line, sizeof(line), out)) {
		struct fixture_function *function = &process->functions[process->function_count];
		void *addr;

		if (strcmp(line, "ready\n") == 0)
			ready = true;
		else if (process->function_count < MAX_FUNCTIONS &&
			 sscanf(line, "%63s %p", function->name, &addr) == 2 &&
			 strncmp(function->name, "fixture_", 8) == 0) {
			function->addr = (uint64_t)(uintptr_t)addr;
			process->function_count++;
		}
	}
	fclose(out);
	if (!ready)
		return -EPROTO;
	return procmaps__read(process->pid, true, &process->maps);
}

static inline void stop_fixture(struct fixture_process *process)
{
	if (process->pid > 0) {
		kill(process->pid, SIGKILL);
		waitpid(process->pid, NULL, 0);
		close(process->stdin_fd);
		process->pid = 0;
	}
	procmaps__free(&process->maps);
}

/* Runs a command and returns its first output line that starts with prefix (after spaces). */
static inline int command_line_with(const char *command, const char *prefix, char *ret_line,
				    size_t size)
{
	char line[512];
	FILE *pipe = popen(command, "r");
	int err = -ENOENT;

	if (!pipe)
		return -errno;
	while (fgets(line, sizeof(line), pipe)) {
		const char *start = line + strspn(line, " \t");

		if (err && strncmp(start, prefix, strlen(prefix)) == 0) {
			snprintf(ret_line, size, "%s", start + strlen(prefix));
			ret_line[strcspn(ret_line, "\n")] = '\0';
			err = 0;
		}
	}
	pclose(pipe);
	return err;
}

/* The build id as binutils' readelf prints it. */
static inline int readelf_build_id(const char *path, char *ret_build_id, size_t size)
{
	char command[1024];

	snprintf(command, sizeof(command), "readelf -n '%s' 2>/dev/null", path);
	return command_line_with(command, "Build ID: ", ret_build_id, size);
}

/* A symbol's value as nm prints it. */
static inline int nm_address(const char *path, const char *name, uint64_t *ret_addr)
{
	char command[1024], line[128];
	int err;

	snprintf(command, sizeof(command),
		 "nm '%s' 2>/dev/null | awk '$3 == \"%s\" && ($2 == \"T\" || $2 == \"t\") "
		 "{ print \"value \" $1 }'",
		 path, name);
	err = command_line_with(command, "value ", line, sizeof(line));
	if (!err)
		*ret_addr = strtoull(line, NULL, 16);
	return err;
}

static inline int copy_file(const char *from, const char *to, mode_t mode)
{
	char buffer[8192];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t n;
	int err = 0;

	if (in < 0 || out < 0)
		err = -errno;
	while (!err && (n = read(in, buffer, sizeof(buffer))) > 0)
		if (write(out, buffer, n) != n)
			err = -EIO;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/* A mapping that claims a file, in this process: opened through /proc/self/root. */
static inline int fake_mapping(const char *path, struct proc_mapping *mapping)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*mapping = (struct proc_mapping){
		.start = 0x10000,
		.end = 0x11000,
		.inode = st.st_ino,
		.dev_major = major(st.st_dev),
		.dev_minor = minor(st.st_dev),
		.perms = PROC_MAP_READ | PROC_MAP_EXEC,
		.path = (char *)path,
	};
	return 0;
}

#endif /* KILN_TEST_FIXTURE_PROCESS_H */
