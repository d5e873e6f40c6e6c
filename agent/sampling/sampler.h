/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the daemon asks of every profiling program (CPU, off-CPU): start,
 * end a window, say what its BPF code cost, free. Each program's object
 * embeds a struct sampler and hands it out; the daemon keeps the enabled
 * ones in an array.
 */
#ifndef KILN_SAMPLER_H
#define KILN_SAMPLER_H

#include <stdint.h>

#include "agent/sampling/window.h"

struct counter_line;
struct sampler;

struct sampler_ops {
	const char *name; /* "CPU", "off-CPU": for messages */
	/* Attaches: samples flow from here on. 0 or a negative errno. */
	int (*start)(struct sampler *sampler);
	/* Swaps buffers and drains the ended window. 0 or a negative errno. */
	int (*end_window)(struct sampler *sampler, struct sample_window *ret_window);
	/* Run time and count of its main BPF program (kernel.bpf_stats_enabled=1). */
	int (*bpf_run_stats)(const struct sampler *sampler, uint64_t *ret_run_time_ns,
			     uint64_t *ret_run_count);
	void (*free)(struct sampler *sampler);
};

/* The sources a sampler's counter lines read (struct counter's source), in this order. */
enum sampler_source {
	SAMPLER_SOURCE_STATS, /* a window's stats: CPU_STAT_* and OFFCPU_STAT_* */
	SAMPLER_SOURCE_SUMMARY, /* struct sampler_summary */
	SAMPLER_SOURCE_BPF, /* struct sampler_bpf_stats */
	SAMPLER_SOURCE__COUNT,
};

/* What the daemon made of a window, for the first line reported about it. */
struct sampler_summary {
	uint64_t samples; /* samples (CPU) or blocks (off-CPU) in the profile */
	uint64_t stacks; /* distinct stacks drained */
	uint64_t processes; /* processes the process model tracks */
};

/* Its BPF program's cost since start, from bpf_run_stats. */
struct sampler_bpf_stats {
	uint64_t run_count;
	uint64_t run_time_ns;
	uint64_t ns_per_run;
};

struct sampler {
	const struct sampler_ops *ops;
	/* Its window counters and how they are logged, every window. */
	const struct counter_line *counter_lines;
	unsigned int counter_line_count;
};

static inline const char *sampler__name(const struct sampler *sampler)
{
	return sampler->ops->name;
}

static inline int sampler__start(struct sampler *sampler)
{
	return sampler->ops->start(sampler);
}

static inline int sampler__end_window(struct sampler *sampler, struct sample_window *ret_window)
{
	int err = sampler->ops->end_window(sampler, ret_window);

	if (!err)
		ret_window->sampler = sampler;
	return err;
}

static inline int sampler__bpf_run_stats(const struct sampler *sampler, uint64_t *ret_run_time_ns,
					 uint64_t *ret_run_count)
{
	return sampler->ops->bpf_run_stats(sampler, ret_run_time_ns, ret_run_count);
}

/* Accepts NULL. */
static inline void sampler__free(struct sampler *sampler)
{
	if (sampler)
		sampler->ops->free(sampler);
}

#endif /* KILN_SAMPLER_H */
