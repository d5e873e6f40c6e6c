/* SPDX-License-Identifier: Apache-2.0 */
/* Shorthands for the samplers' counter tables (cpu_profiler.c, offcpu_profiler.c). */
#ifndef KILN_SAMPLER_COUNTERS_H
#define KILN_SAMPLER_COUNTERS_H

#include "agent/sampling/sampler.h"
#include "lib/counters.h"

/*
 * Each sampler's lines (the CPU sampler's two unwind lines last, left out with
 * --unwind fp), for the daemon and for tests that check every table.
 */
extern const struct counter_line cpu_counter_lines[];
extern const unsigned int cpu_counter_line_count;
extern const struct counter_line offcpu_counter_lines[];
extern const unsigned int offcpu_counter_line_count;

/* A counter of the window's stats map: its increase over the window. */
#define WINDOW_STAT(stat) COUNTER_ELEMENT(SAMPLER_SOURCE_STATS, stat), .kind = COUNTER_WINDOW
#define SUMMARY(field) COUNTER_FIELD(SAMPLER_SOURCE_SUMMARY, struct sampler_summary, field)
#define BPF_STAT(field) COUNTER_FIELD(SAMPLER_SOURCE_BPF, struct sampler_bpf_stats, field)

/* Both programs store stacks alike, and lose them alike. */
#define SAMPLER_STACKS_LOST_COUNTER(metric_name)                                                   \
	{                                                                                          \
		.name = metric_name,                                                               \
		.help = "Stacks lost: the stacks map was full (--max-stacks)",                     \
		WINDOW_STAT(CPU_STAT_STACK_MAP_FULL),                                              \
		.text = "% stacks (stacks map full, raise --max-stacks)", .alarm = true,           \
	}

/*
 * The BPF program's cost, one family for both programs, told apart by
 * their label (program="cpu").
 */
#define SAMPLER_BPF_COUNTERS(program, words)                                                       \
	{ .name = "kiln_bpf_runs_total",                                                           \
	  .labels = "program=\"" program "\"",                                                     \
	  .help = "Runs of the BPF program (kernel.bpf_stats_enabled=1)",                          \
	  BPF_STAT(run_count),                                                                     \
	  .kind = COUNTER_TOTAL,                                                                   \
	  .text = words " ran % times",                                                            \
	  .alarm = true },                                                                         \
		{ .name = "kiln_bpf_run_seconds_total",                                            \
		  .labels = "program=\"" program "\"",                                             \
		  .help = "Time in the BPF program (kernel.bpf_stats_enabled=1)",                  \
		  BPF_STAT(run_time_ns),                                                           \
		  .kind = COUNTER_TOTAL,                                                           \
		  .unit = COUNTER_UNIT_NS,                                                         \
		  .text = "% ns in all" },                                                         \
	{                                                                                          \
		.name = "kiln_bpf_seconds_per_run", .labels = "program=\"" program "\"",           \
		.help = "Mean time of one run of the BPF program", BPF_STAT(ns_per_run),           \
		.kind = COUNTER_GAUGE, .unit = COUNTER_UNIT_NS, .text = "% ns per run",            \
	}

#endif /* KILN_SAMPLER_COUNTERS_H */
