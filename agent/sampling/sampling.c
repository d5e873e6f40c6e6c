// SPDX-License-Identifier: Apache-2.0
/* The maps the programs share, created by the first program loaded, and its events thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/sampling.h"
#include "bpf/cpu.h"
#include "lib/log.h"

enum shared_map {
	SHARED_PID_FILTER,
	SHARED_KNOWN_PROCESSES,
	SHARED_PROCESS_EVENTS,
	SHARED_UNWIND_TABLES,
	SHARED_PROCESS_UNWIND,
	SHARED_UNWIND_FILES,
	SHARED_EXITED_PROCESSES,
	SHARED_PYTHON_PROCESSES,
	SHARED_REPLACED_IMAGES,
	SHARED_EXCLUDED_PROCESSES,
	SHARED__COUNT,
};

struct sampling {
	uint32_t *pids;
	size_t pid_count;
	uint64_t max_processes;
	int fds[SHARED__COUNT]; /* ours, dup'ed from the first program loaded; -1 before */
	struct ring_buffer *events;
	struct bpf_link *exec_tracking;
	struct bpf_link *exit_tracking;
	process_event_fn on_process_event;
	void *ctx;
	pthread_mutex_t consume_lock; /* one consumer of the ring buffer at a time */
	pthread_t thread;
	bool thread_started;
	int stop_fd; /* eventfd that tells the thread to exit */
};

/* libbpf's own lines already start with "libbpf: "; verifier logs span many lines. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's debug level narrates every relocation: only on request. */
	if (level == LIBBPF_DEBUG && !getenv("KILN_LIBBPF_DEBUG"))
		return 0;
	fputs("kiln: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

struct sampling *sampling__new(const struct sampling_opts *opts)
{
	struct sampling *sampling = calloc(1, sizeof(*sampling));
	int err = 0;

	if (!sampling)
		return NULL;
	libbpf_set_print(libbpf_print);
	for (int map = 0; map < SHARED__COUNT; map++)
		sampling->fds[map] = -1;
	pthread_mutex_init(&sampling->consume_lock, NULL);
	sampling->max_processes = opts->max_processes;
	sampling->pid_count = opts->pid_count;
	sampling->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sampling->stop_fd < 0)
		err = -errno;
	if (!err && opts->pid_count) {
		sampling->pids = malloc(opts->pid_count * sizeof(*sampling->pids));
		if (sampling->pids)
			memcpy(sampling->pids, opts->pids,
			       opts->pid_count * sizeof(*sampling->pids));
		else
			err = -ENOMEM;
	}
	if (err) {
		sampling__free(sampling);
		errno = -err;
		return NULL;
	}
	return sampling;
}

void sampling__free(struct sampling *sampling)
{
	if (!sampling)
		return;
	if (sampling->thread_started) {
		eventfd_write(sampling->stop_fd, 1);
		pthread_join(sampling->thread, NULL);
	}
	ring_buffer__free(sampling->events);
	bpf_link__destroy(sampling->exec_tracking);
	bpf_link__destroy(sampling->exit_tracking);
	for (int map = 0; map < SHARED__COUNT; map++)
		if (sampling->fds[map] >= 0)
			close(sampling->fds[map]);
	if (sampling->stop_fd >= 0)
		close(sampling->stop_fd);
	pthread_mutex_destroy(&sampling->consume_lock);
	free(sampling->pids);
	free(sampling);
}

static void shared_maps_as_array(const struct shared_maps *maps, struct bpf_map *ret[SHARED__COUNT])
{
	ret[SHARED_PID_FILTER] = maps->pid_filter;
	ret[SHARED_KNOWN_PROCESSES] = maps->known_processes;
	ret[SHARED_PROCESS_EVENTS] = maps->process_events;
	ret[SHARED_UNWIND_TABLES] = maps->unwind_tables;
	ret[SHARED_PROCESS_UNWIND] = maps->process_unwind;
	ret[SHARED_UNWIND_FILES] = maps->unwind_files;
	ret[SHARED_EXITED_PROCESSES] = maps->exited_processes;
	ret[SHARED_PYTHON_PROCESSES] = maps->python_processes;
	ret[SHARED_REPLACED_IMAGES] = maps->replaced_images;
	ret[SHARED_EXCLUDED_PROCESSES] = maps->excluded_processes;
}

static bool maps_created(const struct sampling *sampling)
{
	return sampling->fds[0] >= 0;
}

/* Exec tracking needs BTF-enabled tracepoints; without them, mappings refresh lazily. */
static bool can_track_execs(void)
{
	if (!access("/sys/kernel/btf/vmlinux", R_OK))
		return true;
	log_warn("no kernel BTF: exec tracking off, mappings refresh on misses only");
	return false;
}

/* Before the load: sizes the maps the first program creates, or has a later one reuse them. */
static int share_maps(struct sampling *sampling, const struct shared_maps *maps)
{
	struct bpf_map *map[SHARED__COUNT];

	shared_maps_as_array(maps, map);
	/* The first program's copy tracks execs for all, attached by maps_loaded. */
	bpf_program__set_autoattach(maps->process_exec, false);
	bpf_program__set_autoattach(maps->process_exit, false);
	if (maps_created(sampling)) {
		bpf_program__set_autoload(maps->process_exec, false);
		bpf_program__set_autoload(maps->process_exit, false);
		for (int i = 0; i < SHARED__COUNT; i++)
			if (bpf_map__reuse_fd(map[i], sampling->fds[i]))
				return -errno;
		return 0;
	}
	bpf_map__set_max_entries(map[SHARED_PID_FILTER],
				 sampling->pid_count ? sampling->pid_count : 1);
	bpf_map__set_max_entries(map[SHARED_PROCESS_UNWIND], sampling->max_processes);
	bpf_program__set_autoload(maps->process_exec, can_track_execs());
	bpf_program__set_autoload(maps->process_exit, bpf_program__autoload(maps->process_exec));
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct sampling *sampling = ctx;

	if (size < sizeof(struct process_event))
		return 0;
	if (sampling->on_process_event)
		sampling->on_process_event(sampling->ctx, data);
	return 0;
}

static int fill_pid_filter(const struct sampling *sampling)
{
	uint8_t one = 1;

	for (size_t i = 0; i < sampling->pid_count; i++)
		if (bpf_map_update_elem(sampling->fds[SHARED_PID_FILTER], &sampling->pids[i], &one,
					BPF_ANY))
			return -errno;
	return 0;
}

/* After the load: the first program's maps become the shared ones. */
static int maps_loaded(struct sampling *sampling, const struct shared_maps *maps)
{
	struct bpf_map *map[SHARED__COUNT];
	int err;

	if (maps_created(sampling))
		return 0;
	shared_maps_as_array(maps, map);
	for (int i = 0; i < SHARED__COUNT; i++) {
		/* Ours, so that the maps outlive whichever program created them. */
		sampling->fds[i] = fcntl(bpf_map__fd(map[i]), F_DUPFD_CLOEXEC, 0);
		if (sampling->fds[i] < 0) {
			err = -errno;
			goto fail;
		}
	}
	err = fill_pid_filter(sampling);
	if (err)
		goto fail;
	if (bpf_program__autoload(maps->process_exec)) {
		sampling->exec_tracking = bpf_program__attach(maps->process_exec);
		if (!sampling->exec_tracking)
			log_warn("attaching exec tracking: %s, ignoring", strerror(errno));
	}
	if (bpf_program__autoload(maps->process_exit)) {
		sampling->exit_tracking = bpf_program__attach(maps->process_exit);
		if (!sampling->exit_tracking)
			log_warn("attaching exit tracking: %s, ignoring", strerror(errno));
	}
	sampling->events = ring_buffer__new(sampling->fds[SHARED_PROCESS_EVENTS], handle_event,
					    sampling, NULL);
	if (!sampling->events) {
		err = -errno;
		goto fail;
	}
	return 0;
fail:
	bpf_link__destroy(sampling->exec_tracking);
	sampling->exec_tracking = NULL;
	bpf_link__destroy(sampling->exit_tracking);
	sampling->exit_tracking = NULL;
	for (int i = 0; i < SHARED__COUNT; i++) {
		if (sampling->fds[i] >= 0)
			close(sampling->fds[i]);
		sampling->fds[i] = -1;
	}
	return err;
}

int sampling__load_program(struct sampling *sampling, struct bpf_object_skeleton *skeleton,
			   const struct shared_maps *maps)
{
	int err = share_maps(sampling, maps);

	if (err)
		return err;
	err = bpf_object__load_skeleton(skeleton);
	if (err)
		return err;
	return maps_loaded(sampling, maps);
}

int sampling__exclude_process(struct sampling *sampling, uint32_t pid, bool excluded)
{
	uint8_t one = 1;
	int fd = sampling->fds[SHARED_EXCLUDED_PROCESSES];

	if (fd < 0)
		return -EBADF;
	if (excluded)
		return bpf_map_update_elem(fd, &pid, &one, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(fd, &pid) && errno != ENOENT)
		return -errno;
	return 0;
}

bool sampling__filters_pids(const struct sampling *sampling)
{
	return sampling->pid_count > 0;
}

int sampling__unwind_tables_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_UNWIND_TABLES];
}

int sampling__process_unwind_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_PROCESS_UNWIND];
}

int sampling__unwind_files_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_UNWIND_FILES];
}

int sampling__exited_processes_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_EXITED_PROCESSES];
}

int sampling__python_processes_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_PYTHON_PROCESSES];
}

int sampling__replaced_images_fd(const struct sampling *sampling)
{
	return sampling->fds[SHARED_REPLACED_IMAGES];
}

void sampling__set_process_listener(struct sampling *sampling, process_event_fn fn, void *ctx)
{
	sampling->on_process_event = fn;
	sampling->ctx = ctx;
}

int sampling__flush_process_events(struct sampling *sampling)
{
	int err;

	if (!sampling->events)
		return 0;
	pthread_mutex_lock(&sampling->consume_lock);
	err = ring_buffer__consume(sampling->events);
	pthread_mutex_unlock(&sampling->consume_lock);
	return err < 0 ? err : 0;
}

static void *events_thread(void *arg)
{
	struct sampling *sampling = arg;
	struct pollfd fds[] = {
		{ .fd = ring_buffer__epoll_fd(sampling->events), .events = POLLIN },
		{ .fd = sampling->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break; /* The main thread still flushes at every window's end. */
		}
		if (fds[1].revents)
			break;
		if (fds[0].revents)
			sampling__flush_process_events(sampling);
	}
	return NULL;
}

int sampling__start_events(struct sampling *sampling)
{
	sigset_t all, old;
	int err;

	if (!sampling->events)
		return -EINVAL;
	/* Signals go to the main thread, which decides when to stop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&sampling->thread, NULL, events_thread, sampling);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sampling->thread_started = err == 0;
	return err;
}

void sampling__forget_process(struct sampling *sampling, uint32_t pid)
{
	if (maps_created(sampling))
		bpf_map_delete_elem(sampling->fds[SHARED_KNOWN_PROCESSES], &pid);
}
