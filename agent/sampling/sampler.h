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
	/* Its window counters (struct sample_window's stats) and how they are logged. */
	const struct counter_line *counter_lines;
	unsigned int counter_line_count;
};

struct sampler {
	const struct sampler_ops *ops;
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
	return sampler->ops->end_window(sampler, ret_window);
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
