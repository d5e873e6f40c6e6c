// SPDX-License-Identifier: Apache-2.0
/* Process capture: announced processes read at once, on sampling's thread; the main one takes them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>

#include "agent/process/process_capture.h"
#include "bpf/cpu.h"
#include "lib/clock.h"
#include "symbolizer/process_files.h"

/*
 * Files recently opened for a capture are not opened again for the next
 * process that maps them: the main thread has them by then. Forgotten
 * after a while, in case the symbolizer's cache let them go since.
 */
#define SEEN_FILES 4096 /* 4096 * 16 bytes = 64 KiB */
#define SEEN_FILES_FORGET_NS (30ULL * 1000 * 1000 * 1000)

struct file_identity {
	uint64_t inode; /* 0: empty slot */
	uint32_t dev_major;
	uint32_t dev_minor;
};

struct process_capture {
	size_t max_pending;
	size_t max_held_files;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t queued;
	struct captured_process **pending; /* ring of max_pending */
	size_t pending_first;
	size_t pending_count;
	size_t held_files;
	struct file_identity *seen; /* open addressing, SEEN_FILES slots */
	size_t seen_count;
	uint64_t seen_since_ns;
	struct process_capture_stats stats;
};

struct process_capture *process_capture__new(const struct process_capture_opts *opts)
{
	struct process_capture *capture = calloc(1, sizeof(*capture));
	pthread_condattr_t attr;

	if (!capture)
		return NULL;
	capture->max_pending = opts->max_pending ? opts->max_pending : 1;
	capture->max_held_files = opts->max_held_files;
	pthread_mutex_init(&capture->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&capture->queued, &attr);
	pthread_condattr_destroy(&attr);
	capture->pending = calloc(capture->max_pending, sizeof(*capture->pending));
	capture->seen = calloc(SEEN_FILES, sizeof(*capture->seen));
	if (!capture->pending || !capture->seen) {
		process_capture__free(capture);
		errno = ENOMEM;
		return NULL;
	}
	capture->seen_since_ns = now_ns();
	return capture;
}

/* Closes the descriptors and frees the capture; takes the lock for the descriptor count. */
static void release(struct process_capture *capture, struct captured_process *process)
{
	size_t closed = 0;

	if (!process)
		return;
	for (size_t i = 0; process->fds && i < process->fd_count; i++) {
		if (process->fds[i] >= 0) {
			close(process->fds[i]);
			closed++;
		}
	}
	pthread_mutex_lock(&capture->lock);
	capture->held_files -= closed;
	pthread_mutex_unlock(&capture->lock);
	free(process->fds);
	procmaps__free(&process->maps);
	free(process);
}

/* Takes the oldest queued capture, or NULL. */
static struct captured_process *pop(struct process_capture *capture)
{
	struct captured_process *process = NULL;

	pthread_mutex_lock(&capture->lock);
	if (capture->pending_count) {
		process = capture->pending[capture->pending_first];
		capture->pending_first = (capture->pending_first + 1) % capture->max_pending;
		capture->pending_count--;
	}
	pthread_mutex_unlock(&capture->lock);
	return process;
}

void process_capture__free(struct process_capture *capture)
{
	if (!capture)
		return;
	while (capture->pending && capture->pending_count)
		release(capture, pop(capture));
	pthread_cond_destroy(&capture->queued);
	pthread_mutex_destroy(&capture->lock);
	free(capture->pending);
	free(capture->seen);
	free(capture);
}

/* Marks a file seen; true if it already was. Called with the lock held. */
static bool see_file(struct process_capture *capture, const struct proc_mapping *mapping)
{
	uint64_t now = now_ns();
	size_t slot;

	if (capture->seen_count >= SEEN_FILES / 2 ||
	    now - capture->seen_since_ns >= SEEN_FILES_FORGET_NS) {
		memset(capture->seen, 0, SEEN_FILES * sizeof(*capture->seen));
		capture->seen_count = 0;
		capture->seen_since_ns = now;
	}
	slot = (mapping->inode * 0x9e3779b97f4a7c15ULL ^ mapping->dev_major ^
		((uint64_t)mapping->dev_minor << 20)) %
	       SEEN_FILES;
	for (;; slot = (slot + 1) % SEEN_FILES) {
		struct file_identity *seen = &capture->seen[slot];

		if (!seen->inode) {
			*seen = (struct file_identity){ mapping->inode, mapping->dev_major,
							mapping->dev_minor };
			capture->seen_count++;
			return false;
		}
		if (seen->inode == mapping->inode && seen->dev_major == mapping->dev_major &&
		    seen->dev_minor == mapping->dev_minor)
			return true;
	}
}

/*
 * Opens the files behind the executable mappings through map_files, which
 * reaches deleted files and other mount namespaces, and keeps them open
 * until the main thread has read them: regular files only, so a mapped
 * device is never opened. Called with the lock held.
 */
static void hold_files(struct process_capture *capture, struct captured_process *process,
		       const struct process_identity *identity)
{
	for (size_t i = 0; i < process->maps.count; i++) {
		const struct proc_mapping *mapping = &process->maps.mappings[i];

		process->fds[i] = -1;
		if (!(mapping->perms & PROC_MAP_EXEC) || !mapping->inode ||
		    mapping->path[0] != '/' || see_file(capture, mapping))
			continue;
		if (capture->held_files >= capture->max_held_files) {
			capture->stats.files_not_held++;
			continue;
		}
		process->fds[i] =
			process_files_open_map_file((int)process->pid, mapping, identity, NULL);
		if (process->fds[i] < 0) {
			if (process->fds[i] == -EPERM)
				capture->stats.files_refused++;
			process->fds[i] = -1;
		} else {
			capture->held_files++;
			capture->stats.files_held++;
		}
	}
}

void process_capture__on_event(struct process_capture *capture, const struct process_event *event)
{
	struct captured_process *process = calloc(1, sizeof(*process));
	struct process_identity identity;
	int err;

	if (!process)
		return; /* The main thread reads the process when it symbolizes it. */
	process->pid = event->pid;
	process->at_exec = event->kind == PROCESS_EVENT_EXEC;
	/* Who it is before what it maps: its files are held to its rights. */
	err = process_files_read_identity((int)event->pid, &identity);
	if (!err)
		err = procmaps__read((int)event->pid, true, &process->maps);
	process->fds = err ? NULL
			   : malloc((process->maps.count ? process->maps.count : 1) *
				    sizeof(*process->fds));
	pthread_mutex_lock(&capture->lock);
	if (err) {
		capture->stats.gone++;
	} else if (!process->fds || capture->pending_count >= capture->max_pending) {
		capture->stats.dropped++;
	} else {
		process->fd_count = process->maps.count;
		hold_files(capture, process, &identity);
		capture->pending[(capture->pending_first + capture->pending_count) %
				 capture->max_pending] = process;
		capture->pending_count++;
		capture->stats.captures++;
		capture->stats.exec_captures += process->at_exec;
		pthread_cond_signal(&capture->queued);
		process = NULL;
	}
	pthread_mutex_unlock(&capture->lock);
	release(capture, process); /* not queued: holds no descriptors yet */
}

void process_capture__wait(struct process_capture *capture, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec until = { .tv_sec = deadline / 1000000000,
				  .tv_nsec = deadline % 1000000000 };

	pthread_mutex_lock(&capture->lock);
	if (!capture->pending_count)
		pthread_cond_timedwait(&capture->queued, &capture->lock, &until);
	pthread_mutex_unlock(&capture->lock);
}

void process_capture__drain(struct process_capture *capture, process_capture_fn fn, void *ctx)
{
	struct captured_process *process;

	while ((process = pop(capture))) {
		fn(ctx, process);
		release(capture, process);
	}
}

void process_capture__stats(struct process_capture *capture,
			    struct process_capture_stats *ret_stats)
{
	pthread_mutex_lock(&capture->lock);
	*ret_stats = capture->stats;
	pthread_mutex_unlock(&capture->lock);
}
