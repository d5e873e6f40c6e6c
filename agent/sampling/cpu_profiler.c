// SPDX-License-Identifier: Apache-2.0
/* Loads the CPU sampler, with sampling's shared maps, and attaches it per CPU. */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/cpu_profiler.h"
#include "agent/sampling/features.h"
#include "agent/sampling/sampler_counters.h"
#include "agent/sampling/sampling.h"
#include "bpf/cpu.skel.h"
#include "lib/array.h"
#include "lib/log.h"

struct cpu_profiler {
	struct sampler sampler;
	struct cpu_bpf *skel;
	struct bpf_link **links; /* one per possible CPU, NULL when not attached */
	int possible_cpus;
	unsigned int attached_cpus;
	uint64_t frequency_hz;
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

static struct cpu_profiler *profiler_of(const struct sampler *sampler)
{
	return (struct cpu_profiler *)((char *)sampler - offsetof(struct cpu_profiler, sampler));
}

static struct window_buffers buffers_of(struct cpu_profiler *profiler)
{
	return WINDOW_BUFFERS_OF(profiler->skel, CPU_STAT__COUNT, profiler->stats_at_window_start);
}

static int start(struct sampler *sampler)
{
	struct cpu_profiler *profiler = profiler_of(sampler);
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
static int end_window(struct sampler *sampler, struct sample_window *ret_window)
{
	const struct window_buffers buffers = buffers_of(profiler_of(sampler));

	return window_buffers__end_window(&buffers, ret_window);
}

static int bpf_run_stats(const struct sampler *sampler, uint64_t *ret_run_time_ns,
			 uint64_t *ret_run_count)
{
	return bpf_program_run_stats(profiler_of(sampler)->skel->progs.sample_cpu, ret_run_time_ns,
				     ret_run_count);
}

static void profiler_free(struct cpu_profiler *profiler)
{
	if (!profiler)
		return;
	for (int cpu = 0; profiler->links && cpu < profiler->possible_cpus; cpu++)
		bpf_link__destroy(profiler->links[cpu]);
	free(profiler->links);
	cpu_bpf__destroy(profiler->skel);
	free(profiler);
}

static void sampler_free(struct sampler *sampler)
{
	profiler_free(profiler_of(sampler));
}

static const struct sampler_ops cpu_sampler_ops = {
	.name = "CPU",
	.start = start,
	.end_window = end_window,
	.bpf_run_stats = bpf_run_stats,
	.free = sampler_free,
};

struct cpu_profiler *cpu_profiler__new(const struct cpu_profiler_opts *opts)
{
	struct cpu_profiler *profiler;
	struct shared_maps shared;
	struct window_buffers buffers;
	const char *no_fill_reason = "--no-kernel-fill";
	struct cpu_bpf *skel;
	int err;

	profiler = calloc(1, sizeof(*profiler));
	if (!profiler)
		return NULL;
	profiler->sampler.ops = &cpu_sampler_ops;
	profiler->sampler.counter_lines = cpu_counter_lines;
	profiler->sampler.counter_line_count = cpu_counter_line_count - (!opts->dwarf_unwinding ? 3
									 : opts->python_frames	? 0
											       : 1);
	profiler->frequency_hz = opts->frequency_hz;
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
	skel->rodata->filter_pids = sampling__filters_pids(opts->sampling);
	skel->rodata->dwarf_unwinding = opts->dwarf_unwinding;
	if (opts->dwarf_unwinding && opts->kernel_fill)
		skel->rodata->fill_in_kernel =
			!features__task_work(TASK_WORK_IN_PERF_EVENT, &no_fill_reason);
	if (opts->dwarf_unwinding && !skel->rodata->fill_in_kernel)
		log_info("new processes are unwound with frame pointers until their mappings are "
			 "read: %s%s",
			 opts->kernel_fill ? "the kernel refuses a BPF task work in a perf-event "
					     "program: "
					   : "",
			 no_fill_reason);
	buffers = buffers_of(profiler);
	window_buffers__set_sizes(&buffers, opts->max_stacks, opts->max_sample_keys);
	shared = SHARED_MAPS_OF(skel);
	err = sampling__load_program(opts->sampling, skel->skeleton, &shared);
	if (err)
		goto fail;
	window_buffers__start(&buffers);
	return profiler;
fail:
	profiler_free(profiler);
	errno = -err;
	return NULL;
}

struct sampler *cpu_profiler__sampler(struct cpu_profiler *profiler)
{
	return &profiler->sampler;
}

unsigned int cpu_profiler__cpu_count(const struct cpu_profiler *profiler)
{
	return profiler->attached_cpus;
}
