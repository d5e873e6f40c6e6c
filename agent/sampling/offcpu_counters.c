// SPDX-License-Identifier: Apache-2.0
/* The counters of the off-CPU program (bpf/offcpu.bpf.c) and their log lines, each window. */
#include "agent/sampling/sampler_counters.h"
#include "bpf/offcpu.h"

#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

/* Counters, the first line led by what was written ("wrote offcpu-...pb.gz"). */
static const struct counter summary_counters[] = {
	{ .name = "kiln_offcpu_profile_blocks_total",
	  .help = "Blocks with stacks in the off-CPU profiles written",
	  SUMMARY(samples),
	  .kind = COUNTER_WINDOW,
	  .text = "% blocks with stacks" },
	{ .name = "kiln_offcpu_blocks_total",
	  .help = "Blocks of tracked threads that ended, short ones included",
	  WINDOW_STAT(OFFCPU_STAT_BLOCKS),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "all blocks: %" },
	{ .name = "kiln_offcpu_blocked_seconds_total",
	  .help = "Time those blocks lasted",
	  WINDOW_STAT(OFFCPU_STAT_BLOCKED_NS),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_SECONDS,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% s)" },
	{ .name = "kiln_offcpu_short_blocks_total",
	  .help = "Blocks shorter than --off-cpu-min-block, counted without stacks",
	  WINDOW_STAT(OFFCPU_STAT_SHORT_BLOCKS),
	  .text = "% shorter than --off-cpu-min-block" },
	{ .name = "kiln_offcpu_short_blocked_seconds_total",
	  .help = "Time the short blocks lasted",
	  WINDOW_STAT(OFFCPU_STAT_SHORT_NS),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_SECONDS,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% s, counted without stacks)" },
};

static const struct counter still_blocked_counters[] = {
	{ .name = "kiln_offcpu_still_blocked_total",
	  .help = "Threads still blocked at a window's end, charged their time so far",
	  WINDOW_STAT(OFFCPU_STAT_STILL_BLOCKED),
	  .text = "% threads still blocked at the window's end, charged their time so far",
	  .alarm = true },
};

static const struct counter lost_counters[] = {
	{ .name = "kiln_offcpu_blocks_lost_total",
	  .help = "Blocks lost: the counts map was full (--max-sample-keys)",
	  WINDOW_STAT(OFFCPU_STAT_COUNTS_MAP_FULL),
	  .text = "% blocks (counts map full, raise --max-sample-keys)",
	  .alarm = true },
	SAMPLER_STACKS_LOST_COUNTER("kiln_offcpu_stacks_lost_total"),
	{ .name = "kiln_offcpu_storage_failures_total",
	  .help = "Threads whose block could not be stored",
	  WINDOW_STAT(OFFCPU_STAT_STORAGE_FAILED),
	  .text = "% threads without block storage",
	  .alarm = true },
	{ .name = "kiln_offcpu_blocks_map_full_total",
	  .help = "Of those, threads over the raw_tp hooks' map of blocks by thread id",
	  WINDOW_STAT(OFFCPU_STAT_BLOCKS_MAP_FULL),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% of them: " TO_STRING(OFFCPU_MAX_THREADS) " threads by id already)",
	  .alarm = true },
};

static const struct counter user_stack_counters[] = {
	{ .name = "kiln_offcpu_stack_requests_full_total",
	  .help = "Blocks whose user stack could not be asked for: too many threads waiting",
	  WINDOW_STAT(OFFCPU_STAT_REQUESTS_FULL),
	  .text = "% blocks (" TO_STRING(OFFCPU_MAX_THREADS) " threads awaiting one already)",
	  .alarm = true },
	{ .name = "kiln_offcpu_task_work_failures_total",
	  .help = "User stacks the kernel's task work refused to take",
	  WINDOW_STAT(OFFCPU_STAT_TASK_WORK_FAILED),
	  .text = "% refused by the kernel's task work",
	  .alarm = true },
};

static const struct counter window_counters[] = {
	{ .name = "kiln_offcpu_switches_total",
	  .help = "Context switches the off-CPU program saw",
	  WINDOW_STAT(OFFCPU_STAT_SWITCHES),
	  .text = "% switches" },
	{ .name = "kiln_offcpu_recorded_total",
	  .help = "Blocks added to the counts map",
	  WINDOW_STAT(OFFCPU_STAT_RECORDED),
	  .text = "% recorded" },
	{ .name = "kiln_offcpu_window_ended_total",
	  .help = "Stacks stored in the previous window's buffer",
	  WINDOW_STAT(OFFCPU_STAT_WINDOW_ENDED),
	  .text = "% stacks from the previous window" },
	{ .name = "kiln_offcpu_user_stack_unknown_total",
	  .help = "Blocks outside a syscall: user stack unknown",
	  WINDOW_STAT(OFFCPU_STAT_USER_STACK_UNKNOWN),
	  .text = "% user stacks unknown (not blocked in a syscall)" },
	{ .name = "kiln_offcpu_earlier_seconds_total",
	  .help = "Parts of blocks before their window began, not charged",
	  WINDOW_STAT(OFFCPU_STAT_EARLIER_NS),
	  .unit = COUNTER_UNIT_NS,
	  .shown = COUNTER_SHOWN_SECONDS,
	  .text = "% s of blocks before the window not charged" },
};

static const struct counter bpf_counters[] = { SAMPLER_BPF_COUNTERS("offcpu", "off-CPU program") };

const struct counter_line offcpu_counter_lines[] = {
	{ .counters = summary_counters,
	  .count = COUNTER_COUNT_OF(summary_counters),
	  .level = LOG_INFO },
	{ .prefix = "off-CPU",
	  .counters = still_blocked_counters,
	  .count = COUNTER_COUNT_OF(still_blocked_counters),
	  .level = LOG_INFO,
	  .only_on_alarm = true,
	  .alarm_keeps_level = true },
	{ .prefix = "off-CPU window lost data",
	  .counters = lost_counters,
	  .count = COUNTER_COUNT_OF(lost_counters),
	  .only_on_alarm = true },
	{ .prefix = "off-CPU user stacks not taken",
	  .counters = user_stack_counters,
	  .count = COUNTER_COUNT_OF(user_stack_counters),
	  .only_on_alarm = true },
	{ .prefix = "off-CPU counters",
	  .counters = window_counters,
	  .count = COUNTER_COUNT_OF(window_counters),
	  .level = LOG_DEBUG },
	{ .prefix = "bpf",
	  .counters = bpf_counters,
	  .count = COUNTER_COUNT_OF(bpf_counters),
	  .level = LOG_DEBUG,
	  .only_on_alarm = true,
	  .alarm_keeps_level = true },
};
const unsigned int offcpu_counter_line_count = COUNTER_COUNT_OF(offcpu_counter_lines);
