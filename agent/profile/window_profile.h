/* SPDX-License-Identifier: Apache-2.0 */
/* Turns one drained window (CPU samples or off-CPU blocks) into a symbolized pprof file. */
#ifndef KILN_WINDOW_PROFILE_H
#define KILN_WINDOW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sampling/window.h"

struct process_table;
struct symbol_history;
struct symbolizer;
struct window_profile;

struct window_profile_meta {
	int64_t start_ns; /* window start, Unix time */
	int64_t duration_ns;
	uint64_t period_ns; /* CPU time one sample stands for */
	const char *comment; /* provenance, stored in Profile.comment; NULL for none */
	bool off_cpu; /* blocks: samples/count and off_cpu/nanoseconds, a state label */
};

struct window_profile_result {
	uint64_t samples; /* sampled events (CPU) or blocks (off-CPU) in the profile */
	uint64_t samples_dropped; /* ... left out: their process a relabel rule dropped */
	uint64_t stacks_missing; /* referenced stack not in the drained map */
	uint64_t frames; /* frames resolved through the symbolizer */
	uint64_t frames_without_mapping; /* user address in no known mapping */
	uint64_t frames_without_symbol;
	uint64_t frames_remembered; /* named from the symbol history, not the symbolizer */
	uint64_t symbols_evicted; /* symbol history entries dropped meanwhile */
	uint64_t python_frames; /* distinct Python frames (locations) named */
	uint64_t python_unreadable; /* ... of them BPF's [python: unreadable] markers */
	uint64_t python_unresolved; /* ... whose code object the agent could not read */
};

/*
 * A drained window to be written as profiles. It reads the window and the
 * process table, neither of which may change while it lives (the table is
 * brought up to date before: process_table__sync_window). built_twice:
 * both a whole-window file and per-process profiles will be built, so
 * each address is symbolized once and its lines kept for the second.
 * history (NULL for none): the symbol history (symbol_cache.h) this window
 * takes names from and adds to, which outlives it. NULL with errno set.
 */
struct window_profile *
window_profile__new(const struct sample_window *window, const struct process_table *processes,
		    struct symbolizer *symbolizer, struct symbol_history *history,
		    const struct window_profile_meta *meta, bool built_twice);
void window_profile__free(struct window_profile *profile);

/* Names the Python frames of the processes python knows, from their code objects. */
struct python_code_cache;
struct python_processes;
void window_profile__set_python(struct window_profile *profile,
				const struct python_processes *processes,
				struct python_code_cache *code);

/*
 * Labels every sample with its process's labels (process_labels.h, read
 * once per process) and leaves out the samples of processes a relabel
 * rule dropped. NULL (the default): the built-in labels only.
 */
struct process_labels;
void window_profile__set_labels(struct window_profile *profile, struct process_labels *labels);

/* Builds the whole window's profile and writes it atomically to path. 0 or a negative errno. */
int window_profile__write(struct window_profile *profile, const char *path,
			  struct window_profile_result *ret_result);

/* The same profile, gzip-compressed, malloc'd in *ret_data: kept in memory, not written. */
int window_profile__encode_gzip(struct window_profile *profile, uint8_t **ret_data,
				size_t *ret_size, struct window_profile_result *ret_result);

/* Called with one process's profile (gzip-compressed or not, as asked); non-zero stops the walk. */
typedef int (*window_profile_process_fn)(void *ctx, uint32_t pid, const char *comm,
					 const uint8_t *data, size_t size);

/*
 * Builds one profile per process in the window (what Pyroscope and Parca
 * store as a series) and hands each to fn. One builder lives at a time.
 * Returns 0, fn's error, or a negative errno.
 */
int window_profile__for_each_process(struct window_profile *profile, bool gzip,
				     window_profile_process_fn fn, void *fn_ctx,
				     struct window_profile_result *ret_result);

#endif /* KILN_WINDOW_PROFILE_H */
