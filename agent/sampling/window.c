// SPDX-License-Identifier: Apache-2.0
/* A program's double buffer: swaps it, drains the ended half into a window, reads counters. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/window.h"
#include "lib/hashmap.h"

/* Entries moved per batch syscall; grows when one hash bucket holds more. */
#define DRAIN_BATCH 256
/* Longer than any run of the sampling program, so none still writes the drained buffer. */
#define BUFFER_GRACE_NS (5 * 1000 * 1000)

void read_percpu_counters(int fd, uint32_t count, uint64_t *ret_totals)
{
	int possible_cpus = libbpf_num_possible_cpus();
	uint64_t per_cpu[possible_cpus > 0 ? possible_cpus : 1];

	memset(per_cpu, 0, sizeof(per_cpu)); /* filled by the kernel, unseen by valgrind */
	for (uint32_t stat = 0; stat < count; stat++) {
		ret_totals[stat] = 0;
		if (possible_cpus <= 0 || bpf_map_lookup_elem(fd, &stat, per_cpu))
			continue;
		for (int cpu = 0; cpu < possible_cpus; cpu++)
			ret_totals[stat] += per_cpu[cpu];
	}
}

/*
 * Moves every entry of a hash map out with lookup_and_delete batches,
 * handing each (key, value) to the consumer.
 */
typedef int (*drain_fn)(void *ctx, const void *key, const void *value);

static int drain_map(struct bpf_map *map, drain_fn consume, void *ctx)
{
	size_t key_size = bpf_map__key_size(map), value_size = bpf_map__value_size(map);
	uint32_t batch_size = DRAIN_BATCH;
	uint64_t in_batch[4], out_batch[4]; /* opaque tokens; the kernel uses a bucket index */
	void *keys = NULL, *values = NULL;
	bool first = true, done = false;
	int fd = bpf_map__fd(map), err = 0;

	_Static_assert(sizeof(in_batch) >= sizeof(struct sample_key), "batch token size");
	while (!done) {
		uint32_t count = batch_size;

		if (!keys) {
			/* Zeroed: the kernel fills them, which valgrind cannot see. */
			keys = calloc(batch_size, key_size);
			values = calloc(batch_size, value_size);
			if (!keys || !values) {
				err = -ENOMEM;
				goto cleanup;
			}
		}
		err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : in_batch, out_batch, keys,
						      values, &count, NULL);
		if (err) {
			err = -errno;
			if (err == -ENOSPC) {
				/* One bucket holds more than a batch: retry with more room. */
				batch_size *= 2;
				free(keys);
				free(values);
				keys = values = NULL;
				continue;
			}
			if (err != -ENOENT)
				goto cleanup;
			done = true; /* the last batch may still carry entries */
			err = 0;
		}
		for (uint32_t i = 0; i < count; i++) {
			err = consume(ctx, (char *)keys + i * key_size,
				      (char *)values + i * value_size);
			if (err)
				goto cleanup;
		}
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
cleanup:
	free(keys);
	free(values);
	return err;
}

struct stack_drain {
	struct sample_window *window;
	uint32_t max_frames; /* what the map's values hold */
};

static int consume_stack(void *ctx, const void *key, const void *value)
{
	/* User and kernel stacks share the layout; only the number of frames differs. */
	const struct stack_trace *trace = value;
	struct stack_drain *drain = ctx;
	struct drained_stack *stack;
	uint32_t frames = trace->frame_count;
	uint64_t id;
	int err;

	if (frames > drain->max_frames)
		frames = drain->max_frames;
	stack = malloc(sizeof(*stack) + frames * sizeof(uint64_t));
	if (!stack)
		return -ENOMEM;
	stack->frame_count = frames;
	stack->end = trace->end;
	memcpy(stack->addresses, trace->addresses, frames * sizeof(uint64_t));
	memcpy(&id, key, sizeof(id));
	err = hashmap__set(drain->window->stacks, id, stack, NULL, NULL);
	if (err)
		free(stack);
	return err;
}

struct sample_array {
	struct sample_window *window;
	size_t capacity;
};

static int consume_sample(void *ctx, const void *key, const void *value)
{
	struct sample_array *array = ctx;
	struct sample_window *window = array->window;

	if (window->sample_count == array->capacity) {
		size_t capacity = array->capacity ? array->capacity * 2 : 1024;
		struct drained_sample *samples =
			realloc(window->samples, capacity * sizeof(*samples));

		if (!samples)
			return -ENOMEM;
		window->samples = samples;
		array->capacity = capacity;
	}
	memcpy(&window->samples[window->sample_count].key, key, sizeof(struct sample_key));
	memcpy(&window->samples[window->sample_count].value, value, sizeof(struct sample_value));
	window->sample_count++;
	return 0;
}

static int drain_window_buffer(struct bpf_map *user_stacks, struct bpf_map *kernel_stacks,
			       struct bpf_map *counts, struct sample_window *window)
{
	struct stack_drain user = { window, MAX_USER_STACK_DEPTH };
	struct stack_drain kernel = { window, MAX_STACK_DEPTH };
	struct sample_array array = { .window = window };
	int err;

	err = drain_map(user_stacks, consume_stack, &user);
	if (!err)
		err = drain_map(kernel_stacks, consume_stack, &kernel);
	if (!err)
		err = drain_map(counts, consume_sample, &array);
	return err;
}

void window_buffers__set_sizes(const struct window_buffers *buffers, uint64_t max_stacks,
			       uint64_t max_keys)
{
	for (int buffer = 0; buffer < 2; buffer++) {
		bpf_map__set_max_entries(buffers->user_stacks[buffer], max_stacks);
		bpf_map__set_max_entries(buffers->kernel_stacks[buffer], max_stacks);
		bpf_map__set_max_entries(buffers->counts[buffer], max_keys);
	}
}

void window_buffers__start(const struct window_buffers *buffers)
{
	read_percpu_counters(bpf_map__fd(buffers->stats), buffers->stat_count,
			     buffers->stats_at_window_start);
}

int window_buffers__end_window(const struct window_buffers *buffers,
			       struct sample_window *ret_window)
{
	struct timespec grace = { 0, BUFFER_GRACE_NS };
	uint32_t drained = __atomic_load_n(buffers->active_buffer, __ATOMIC_RELAXED) & 1;
	uint64_t stats_now[SAMPLE_WINDOW_MAX_STATS];
	struct sample_window window = {};
	int err;

	if (buffers->stat_count > SAMPLE_WINDOW_MAX_STATS)
		return -EINVAL;
	window.stacks = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!window.stacks)
		return -ENOMEM;
	__atomic_store_n(buffers->active_buffer, !drained, __ATOMIC_SEQ_CST);
	nanosleep(&grace, NULL);

	err = drain_window_buffer(buffers->user_stacks[drained], buffers->kernel_stacks[drained],
				  buffers->counts[drained], &window);
	if (err) {
		sample_window__free(&window);
		return err;
	}
	read_percpu_counters(bpf_map__fd(buffers->stats), buffers->stat_count, stats_now);
	for (uint32_t stat = 0; stat < buffers->stat_count; stat++) {
		window.stats[stat] = stats_now[stat] - buffers->stats_at_window_start[stat];
		buffers->stats_at_window_start[stat] = stats_now[stat];
	}
	*ret_window = window;
	return 0;
}

void sample_window__free(struct sample_window *window)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *stack;

	if (!window)
		return;
	while (window->stacks && hashmap__next(window->stacks, &iter, NULL, &stack))
		free(stack);
	hashmap__free(window->stacks);
	free(window->samples);
	*window = (struct sample_window){};
}

const struct drained_stack *sample_window__stack(const struct sample_window *window, uint64_t id)
{
	void *stack;

	return hashmap__find(window->stacks, id, &stack) ? stack : NULL;
}

int bpf_program_run_stats(const struct bpf_program *program, uint64_t *ret_run_time_ns,
			  uint64_t *ret_run_count)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(program), &info, &len))
		return -errno;
	*ret_run_time_ns = info.run_time_ns;
	*ret_run_count = info.run_cnt;
	return 0;
}
