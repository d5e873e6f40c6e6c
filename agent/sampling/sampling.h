/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the profiling programs share: the --pid filter, the processes
 * already announced, the ring buffer that announces them, and the unwind
 * tables. The first program loaded creates these maps; every later one is
 * pointed at them, so any program runs with or without the others. Process
 * announcements are read on a thread of sampling's own and handed to one
 * listener (the process model) there.
 */
#ifndef KILN_SAMPLING_H
#define KILN_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_map;
struct process_event;
struct sampling;

struct sampling_opts {
	const uint32_t *pids; /* filter; NULL/0: every process */
	size_t pid_count;
	uint64_t max_processes; /* processes the DWARF unwinder knows */
};

/* NULL with errno set. */
struct sampling *sampling__new(const struct sampling_opts *opts);
/* Stops the events thread and closes the shared maps; accepts NULL. */
void sampling__free(struct sampling *sampling);

/*
 * A program's shared maps, with the names bpf/maps.bpf.h and bpf/unwind.bpf.h
 * give, and its copy of exec and exit tracking (bpf/process.bpf.h): only
 * the first program's is loaded and attached, by sampling.
 */
struct bpf_program;
struct shared_maps {
	struct bpf_program *process_exec;
	struct bpf_program *process_exit;
	struct bpf_map *pid_filter;
	struct bpf_map *known_processes;
	struct bpf_map *process_events;
	struct bpf_map *unwind_tables;
	struct bpf_map *process_unwind;
	struct bpf_map *unwind_files;
	struct bpf_map *exited_processes;
	struct bpf_map *python_processes;
	struct bpf_map *replaced_images;
	struct bpf_map *excluded_processes;
};

#define SHARED_MAPS_OF(skel)                                                                       \
	((struct shared_maps){                                                                     \
		.process_exec = (skel)->progs.process_exec,                                        \
		.process_exit = (skel)->progs.process_exit,                                        \
		.pid_filter = (skel)->maps.pid_filter,                                             \
		.known_processes = (skel)->maps.known_processes,                                   \
		.process_events = (skel)->maps.process_events,                                     \
		.unwind_tables = (skel)->maps.unwind_tables,                                       \
		.process_unwind = (skel)->maps.process_unwind,                                     \
		.unwind_files = (skel)->maps.unwind_files,                                         \
		.exited_processes = (skel)->maps.exited_processes,                                 \
		.python_processes = (skel)->maps.python_processes,                                 \
		.replaced_images = (skel)->maps.replaced_images,                                   \
		.excluded_processes = (skel)->maps.excluded_processes,                             \
	})

/*
 * Loads a program's skeleton (its __open() done, its settings made) with
 * its shared maps: the first program loaded creates them (sized, the
 * filter filled, the ring buffer opened, exec tracking attached), every
 * later one reuses those. 0 or a negative errno.
 */
struct bpf_object_skeleton;
int sampling__load_program(struct sampling *sampling, struct bpf_object_skeleton *skeleton,
			   const struct shared_maps *maps);

/* Whether programs keep to the --pid processes. */
bool sampling__filters_pids(const struct sampling *sampling);

/*
 * Leaves pid out of sampling and unwinding in BPF (excluded), or takes it
 * back. 0, -E2BIG when MAX_EXCLUDED_PROCESSES are excluded already, or a
 * negative errno.
 */
int sampling__exclude_process(struct sampling *sampling, uint32_t pid, bool excluded);

/* The unwind maps' descriptors, for the agent's table builder; -1 before any load. */
int sampling__unwind_tables_fd(const struct sampling *sampling);
int sampling__process_unwind_fd(const struct sampling *sampling);
int sampling__unwind_files_fd(const struct sampling *sampling);
int sampling__exited_processes_fd(const struct sampling *sampling);
int sampling__python_processes_fd(const struct sampling *sampling);
int sampling__replaced_images_fd(const struct sampling *sampling);

/*
 * The one listener of process announcements. Called on the events thread,
 * or on the thread that flushes; never on two at once.
 */
typedef void (*process_event_fn)(void *ctx, const struct process_event *event);
void sampling__set_process_listener(struct sampling *sampling, process_event_fn fn, void *ctx);

/*
 * Starts the thread that hands announcements to the listener as they
 * come, so that a process living 50 ms is read while it lives. Needs a
 * loaded program. 0 or a negative errno.
 */
int sampling__start_events(struct sampling *sampling);

/* Hands every announcement made so far to the listener, on this thread. 0 or -errno. */
int sampling__flush_process_events(struct sampling *sampling);

/* The agent forgot this process: the next sample announces it again. */
void sampling__forget_process(struct sampling *sampling, uint32_t pid);

#endif /* KILN_SAMPLING_H */
