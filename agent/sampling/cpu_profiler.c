// SPDX-License-Identifier: Apache-2.0
/* Loads the CPU sampler, attaches it per CPU, and drains its double-buffered maps. */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/cpu_profiler.h"
#include "lib/log.h"
#include "bpf/cpu.skel.h"
#include "lib/hashmap.h"

/* Entries moved per batch syscall; grows when one hash bucket holds more. */
#define DRAIN_BATCH 256
/* Longer than any run of the sampling program, so none still writes the drained buffer. */
#define BUFFER_GRACE_NS (5 * 1000 * 1000)

struct cpu_profiler {
	struct cpu_bpf *skel;
	struct bpf_link **links; /* one per possible CPU, NULL when not attached */
	int possible_cpus;
	unsigned int attached_cpus;
	uint64_t frequency_hz;
	struct ring_buffer *events;
	process_event_fn on_process_event;
	void *ctx;
	uint64_t stats_at_window_start[CPU_STAT__COUNT];
};

static int read_online_cpus(bool *online, int possible)
{
	FILE *file = fopen("/sys/devices/system/cpu/online", "re");
	char list[4096];
	char *cursor;
	int err = 0;

	if (!file)
		return -errno;
	if (!fgets(list, sizeof(list), file)) {
		err = -EIO;
		goto cleanup;
	}
	for (cursor = list; *cursor && *cursor != '\n';) {
		char *end;
		long first = strtol(cursor, &end, 10), last = first;

		if (end == cursor) {
			err = -EINVAL;
			goto cleanup;
		}
		if (*end == '-')
			last = strtol(end + 1, &end, 10);
		for (long cpu = first; cpu <= last && cpu < possible; cpu++)
			online[cpu] = true;
		cursor = *end == ',' ? end + 1 : end;
	}
cleanup:
	fclose(file);
	return err;
}

static int attach_cpu(struct cpu_profiler *profiler, int cpu)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = profiler->frequency_hz,
	};
	struct bpf_link *link;
	int fd, err;

	fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(profiler->skel->progs.sample_cpu, fd);
	if (!link) {
		err = -errno;
		close(fd);
		return err;
	}
	/* The link owns fd from here on: bpf_link__destroy closes it. */
	profiler->links[cpu] = link;
	profiler->attached_cpus++;
	return 0;
}

int cpu_profiler__start(struct cpu_profiler *profiler)
{
	int err = cpu_profiler__attach_new_cpus(profiler);

	if (err < 0)
		return err;
	return profiler->attached_cpus ? 0 : -ENODEV;
}

int cpu_profiler__attach_new_cpus(struct cpu_profiler *profiler)
{
	bool *online = calloc(profiler->possible_cpus, sizeof(*online));
	int attached = 0, err;

	if (!online)
		return -ENOMEM;
	err = read_online_cpus(online, profiler->possible_cpus);
	if (err)
		goto cleanup;
	for (int cpu = 0; cpu < profiler->possible_cpus; cpu++) {
		if (!online[cpu] || profiler->links[cpu])
			continue;
		err = attach_cpu(profiler, cpu);
		if (err == -ENODEV) {
			/* Went offline between reading the list and opening the event. */
			err = 0;
			continue;
		}
		if (err == -EINVAL && attached == 0 && profiler->attached_cpus == 0) {
			log_error("cpu %d: perf_event_open refused %" PRIu64
				  " Hz: above kernel.perf_event_max_sample_rate?",
				  cpu, profiler->frequency_hz);
			goto cleanup;
		}
		if (err) {
			log_error("cpu %d: attaching the sampler: %s", cpu, strerror(-err));
			goto cleanup;
		}
		attached++;
	}
	err = attached;
cleanup:
	free(online);
	return err;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct cpu_profiler *profiler = ctx;

	if (size < sizeof(struct process_event))
		return 0;
	if (profiler->on_process_event)
		profiler->on_process_event(profiler->ctx, data);
	return 0;
}

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

static void read_stats(const struct cpu_profiler *profiler, uint64_t totals[CPU_STAT__COUNT])
{
	read_percpu_counters(bpf_map__fd(profiler->skel->maps.stats), CPU_STAT__COUNT, totals);
}

/* libbpf's own lines already start with "libbpf: "; verifier logs span many lines. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's debug level narrates every relocation: only on request. */
	if (level == LIBBPF_DEBUG && !getenv("KILN_LIBBPF_DEBUG"))
		return 0;
	fputs("kiln: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

struct cpu_profiler *cpu_profiler__new(const struct cpu_profiler_opts *opts)
{
	struct cpu_profiler *profiler;
	struct cpu_bpf *skel;
	int err;

	libbpf_set_print(libbpf_print);
	profiler = calloc(1, sizeof(*profiler));
	if (!profiler)
		return NULL;
	profiler->frequency_hz = opts->frequency_hz;
	profiler->on_process_event = opts->on_process_event;
	profiler->ctx = opts->ctx;
	profiler->possible_cpus = libbpf_num_possible_cpus();
	if (profiler->possible_cpus <= 0) {
		err = profiler->possible_cpus ? profiler->possible_cpus : -EINVAL;
		goto fail;
	}
	profiler->links = calloc(profiler->possible_cpus, sizeof(*profiler->links));
	if (!profiler->links) {
		err = -ENOMEM;
		goto fail;
	}

	skel = profiler->skel = cpu_bpf__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	skel->rodata->filter_pids = opts->pid_count > 0;
	skel->rodata->dwarf_unwinding = opts->dwarf_unwinding;
	bpf_map__set_max_entries(skel->maps.pid_filter, opts->pid_count ? opts->pid_count : 1);
	bpf_map__set_max_entries(skel->maps.user_stacks_0, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.user_stacks_1, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.kernel_stacks_0, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.kernel_stacks_1, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.process_unwind, opts->max_processes);
	bpf_map__set_max_entries(skel->maps.counts_0, opts->max_sample_keys);
	bpf_map__set_max_entries(skel->maps.counts_1, opts->max_sample_keys);
	/* Exec tracking needs BTF-enabled tracepoints; without them, mappings refresh lazily. */
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_warn("no kernel BTF: exec tracking off, mappings refresh on misses only");
		bpf_program__set_autoload(skel->progs.process_exec, false);
	}

	err = cpu_bpf__load(skel);
	if (err)
		goto fail;
	for (size_t i = 0; i < opts->pid_count; i++) {
		uint8_t one = 1;

		if (bpf_map__update_elem(skel->maps.pid_filter, &opts->pids[i], sizeof(uint32_t),
					 &one, sizeof(one), BPF_ANY)) {
			err = -errno;
			goto fail;
		}
	}
	if (bpf_program__autoload(skel->progs.process_exec)) {
		skel->links.process_exec = bpf_program__attach(skel->progs.process_exec);
		if (!skel->links.process_exec)
			log_warn("attaching exec tracking: %s, ignoring", strerror(errno));
	}
	profiler->events = ring_buffer__new(bpf_map__fd(skel->maps.process_events), handle_event,
					    profiler, NULL);
	if (!profiler->events) {
		err = -errno;
		goto fail;
	}
	read_stats(profiler, profiler->stats_at_window_start);
	return profiler;
fail:
	cpu_profiler__free(profiler);
	errno = -err;
	return NULL;
}

void cpu_profiler__free(struct cpu_profiler *profiler)
{
	if (!profiler)
		return;
	for (int cpu = 0; profiler->links && cpu < profiler->possible_cpus; cpu++)
		bpf_link__destroy(profiler->links[cpu]);
	free(profiler->links);
	ring_buffer__free(profiler->events);
	cpu_bpf__destroy(profiler->skel);
	free(profiler);
}

unsigned int cpu_profiler__cpu_count(const struct cpu_profiler *profiler)
{
	return profiler->attached_cpus;
}

int cpu_profiler__events_fd(const struct cpu_profiler *profiler)
{
	return ring_buffer__epoll_fd(profiler->events);
}

int cpu_profiler__consume(struct cpu_profiler *profiler)
{
	int err = ring_buffer__consume(profiler->events);

	return err < 0 ? err : 0;
}

void cpu_profiler__forget_process(struct cpu_profiler *profiler, uint32_t pid)
{
	bpf_map__delete_elem(profiler->skel->maps.known_processes, &pid, sizeof(pid), 0);
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
	struct cpu_window *window;
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
	struct cpu_window *window;
	size_t capacity;
};

static int consume_sample(void *ctx, const void *key, const void *value)
{
	struct sample_array *array = ctx;
	struct cpu_window *window = array->window;

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
			       struct bpf_map *counts, struct cpu_window *window)
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

int window_buffers__end_window(const struct window_buffers *buffers, struct cpu_window *ret_window)
{
	struct timespec grace = { 0, BUFFER_GRACE_NS };
	uint32_t drained = __atomic_load_n(buffers->active_buffer, __ATOMIC_RELAXED) & 1;
	uint64_t stats_now[OFFCPU_STAT__END];
	struct cpu_window window = {};
	int err;

	if (buffers->stat_count > OFFCPU_STAT__END)
		return -EINVAL;
	window.stacks = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!window.stacks)
		return -ENOMEM;
	__atomic_store_n(buffers->active_buffer, !drained, __ATOMIC_SEQ_CST);
	nanosleep(&grace, NULL);

	err = drain_window_buffer(buffers->user_stacks[drained], buffers->kernel_stacks[drained],
				  buffers->counts[drained], &window);
	if (err) {
		cpu_window__free(&window);
		return err;
	}
	read_percpu_counters(buffers->stats_fd, buffers->stat_count, stats_now);
	for (uint32_t stat = 0; stat < buffers->stat_count; stat++) {
		window.stats[stat] = stats_now[stat] - buffers->stats_at_window_start[stat];
		buffers->stats_at_window_start[stat] = stats_now[stat];
	}
	*ret_window = window;
	return 0;
}

int cpu_profiler__end_window(struct cpu_profiler *profiler, struct cpu_window *ret_window)
{
	struct cpu_bpf *skel = profiler->skel;
	const struct window_buffers buffers =
		WINDOW_BUFFERS_OF(skel, CPU_STAT__COUNT, profiler->stats_at_window_start);

	return window_buffers__end_window(&buffers, ret_window);
}

void cpu_window__free(struct cpu_window *window)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *stack;

	if (!window)
		return;
	while (window->stacks && hashmap__next(window->stacks, &iter, NULL, &stack))
		free(stack);
	hashmap__free(window->stacks);
	free(window->samples);
	*window = (struct cpu_window){};
}

const struct drained_stack *cpu_window__stack(const struct cpu_window *window, uint64_t id)
{
	void *stack;

	return hashmap__find(window->stacks, id, &stack) ? stack : NULL;
}

void cpu_profiler__shared_fds(const struct cpu_profiler *profiler,
			      struct cpu_profiler_shared_fds *ret_fds)
{
	const struct cpu_bpf *skel = profiler->skel;

	*ret_fds = (struct cpu_profiler_shared_fds){
		.pid_filter = bpf_map__fd(skel->maps.pid_filter),
		.known_processes = bpf_map__fd(skel->maps.known_processes),
		.process_events = bpf_map__fd(skel->maps.process_events),
		.unwind_tables = bpf_map__fd(skel->maps.unwind_tables),
		.process_unwind = bpf_map__fd(skel->maps.process_unwind),
	};
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

int cpu_profiler__bpf_run_stats(const struct cpu_profiler *profiler, uint64_t *ret_run_time_ns,
				uint64_t *ret_run_count)
{
	return bpf_program_run_stats(profiler->skel->progs.sample_cpu, ret_run_time_ns,
				     ret_run_count);
}
