/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reads a process's mappings the moment BPF announces it, on the thread
 * sampling hands announcements over on, and opens the files behind them through /proc/PID/map_files.
 * A process that lives 50 ms is read before it exits however long the main
 * thread spends on unwind tables, and its files stay readable after it
 * exited, even when deleted or only in its own mount namespace. The main
 * thread takes the captures from a bounded queue.
 */
#ifndef KILN_PROCESS_CAPTURE_H
#define KILN_PROCESS_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/procmaps.h"

struct process_capture;
struct process_event;

struct captured_process {
	uint32_t pid;
	bool at_exec; /* read at its exec (PROCESS_EVENT_EXEC), before its libraries are mapped */
	struct proc_maps maps; /* executable mappings; the consumer may take them */
	int *fds; /* per mapping: its file opened while the process lived, or -1 */
	size_t fd_count; /* maps.count when captured */
};

struct process_capture_opts {
	size_t max_pending; /* captures waiting for the main thread */
	size_t max_held_files; /* descriptors held for them at once */
};

struct process_capture_stats {
	uint64_t captures; /* mappings read when announced */
	uint64_t exec_captures; /* of those, read at an exec, for the tables of its files */
	uint64_t gone; /* exited before they could be read */
	uint64_t dropped; /* queue full: the main thread fell behind */
	uint64_t files_held; /* files opened while their process lived */
	uint64_t files_not_held; /* descriptor limit reached: read by path later */
	/* Not regular, or its process could not read it (process_files.h): not read at all. */
	uint64_t files_refused;
};

/* NULL with errno set. */
struct process_capture *process_capture__new(const struct process_capture_opts *opts);
/* Stops the thread, closes what is still queued; accepts NULL. */
void process_capture__free(struct process_capture *capture);

/*
 * The listener of sampling's process announcements: reads the process now.
 * Called on one thread at a time (sampling__set_process_listener).
 */
void process_capture__on_event(struct process_capture *capture, const struct process_event *event);

/* Waits up to timeout_ms for a capture to be queued. */
void process_capture__wait(struct process_capture *capture, int timeout_ms);

/*
 * Hands each queued capture to fn, oldest first. fn may take process->maps
 * (leaving it zeroed); the descriptors are closed after it returns.
 */
typedef void (*process_capture_fn)(void *ctx, struct captured_process *process);
void process_capture__drain(struct process_capture *capture, process_capture_fn fn, void *ctx);

void process_capture__stats(struct process_capture *capture,
			    struct process_capture_stats *ret_stats);

#endif /* KILN_PROCESS_CAPTURE_H */
