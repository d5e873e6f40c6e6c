/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Helpers every sampling program shares: counters, storing stacks by the
 * hash of their frames, bpf_get_stack captures, announcing processes, and
 * the DWARF unwinder. The including program defines the maps they use:
 * stats, stack_scratch, known_processes and process_events.
 */
#ifndef KILN_STACKS_BPF_H
#define KILN_STACKS_BPF_H

#include "bpf/cpu.h"

static __always_inline void count_stat(__u32 stat)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &stat);

	if (counter)
		(*counter)++;
}

static __always_inline void add_stat(__u32 stat, __u64 amount)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &stat);

	if (counter)
		*counter += amount;
}

static __always_inline __u64 hash_frames(const struct stack_trace *trace)
{
	__u64 hash = 0xcbf29ce484222325ULL ^ trace->frame_count ^ ((__u64)trace->end << 32);

	for (__u32 i = 0; i < MAX_USER_STACK_DEPTH; i++) {
		if (i >= trace->frame_count)
			break;
		hash ^= trace->addresses[i];
		hash *= 0x100000001b3ULL;
		hash ^= hash >> 29;
	}
	if (hash < STACK_ID_FIRST_VALID)
		hash += STACK_ID_FIRST_VALID;
	return hash;
}

/*
 * Stores a stack into a stacks map (whose values hold max_depth frames)
 * and returns its id, or a STACK_ID_* reason when it could not be stored.
 */
static __always_inline __u64 store_stack(void *stacks, struct stack_trace *trace, __u32 max_depth)
{
	struct stack_trace *stored;
	__u64 id;
	long err;

	if (trace->frame_count == 0)
		return STACK_ID_NONE;
	id = hash_frames(trace);
	stored = bpf_map_lookup_elem(stacks, &id);
	if (stored) {
		/* 64-bit, so the bounds check and the access use the same register. */
		__u64 last = (__u64)trace->frame_count - 1;

		/* A cheap check that the same hash means the same stack. */
		if (last >= max_depth || stored->frame_count != trace->frame_count ||
		    stored->addresses[0] != trace->addresses[0] ||
		    stored->addresses[last] != trace->addresses[last]) {
			count_stat(CPU_STAT_STACK_COLLISION);
			return STACK_ID_COLLISION;
		}
		return id;
	}
	err = bpf_map_update_elem(stacks, &id, trace, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count_stat(CPU_STAT_STACK_MAP_FULL);
		return STACK_ID_MAP_FULL;
	}
	return id;
}

/* Fills in a trace the kernel's frame-pointer walk wrote `bytes` of, or counts the failure. */
static __always_inline struct stack_trace *finish_stack(struct stack_trace *trace, long bytes,
							__u32 failed_stat)
{
	if (bytes < 0) {
		count_stat(failed_stat);
		return NULL;
	}
	trace->frame_count = bytes / sizeof(__u64);
	trace->end = STACK_END_UNKNOWN;
	if (trace->frame_count >= MAX_STACK_DEPTH) {
		trace->end = STACK_END_DEPTH;
		count_stat(CPU_STAT_STACK_TRUNCATED);
	}
	return trace;
}

/*
 * A user stack the DWARF unwinder could not take (the process had no
 * tables ready), walked by the kernel with frame pointers instead: said so,
 * since in code built without them it skips callers and yet looks whole.
 */
static __always_inline struct stack_trace *frame_pointers_instead(struct stack_trace *trace,
								  bool instead_of_cfi)
{
	if (trace && instead_of_cfi && trace->end == STACK_END_UNKNOWN)
		trace->end = STACK_END_FRAME_POINTERS;
	return trace;
}

/* A stack through the kernel's frame-pointer walk (bpf_get_stack), at most 127 frames. */
static __always_inline struct stack_trace *get_stack(void *ctx, __u64 flags, __u32 failed_stat)
{
	__u32 zero = 0;
	struct stack_trace *trace = bpf_map_lookup_elem(&stack_scratch, &zero);

	if (!trace)
		return NULL;
	return finish_stack(
		trace, bpf_get_stack(ctx, trace->addresses, MAX_STACK_DEPTH * sizeof(__u64), flags),
		failed_stat);
}

/*
 * The same for a given task, into trace: its kernel stack, or the user
 * stack of the current task (the kernel reads no other task's user stack).
 */
static __always_inline struct stack_trace *
get_task_stack(struct task_struct *task, struct stack_trace *trace, __u64 flags, __u32 failed_stat)
{
	if (!trace)
		return NULL;
	return finish_stack(
		trace,
		bpf_get_task_stack(task, trace->addresses, MAX_STACK_DEPTH * sizeof(__u64), flags),
		failed_stat);
}

/* Tells the agent about pid (enum process_event_kind); false when the ring buffer is full. */
static __always_inline bool send_process_event(__u32 pid, __u32 kind)
{
	struct process_event *event;

	event = bpf_ringbuf_reserve(&process_events, sizeof(*event), 0);
	if (!event) {
		count_stat(CPU_STAT_PROCESS_EVENTS_LOST);
		return false;
	}
	event->pid = pid;
	event->kind = kind;
	bpf_ringbuf_submit(event, 0);
	return true;
}

static __always_inline void announce_process(__u32 pid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known_processes, &pid))
		return;
	/* Not marked known when lost: the next sample tries again. */
	if (!send_process_event(pid, PROCESS_EVENT_NEW))
		return;
	bpf_map_update_elem(&known_processes, &pid, &one, BPF_ANY);
	count_stat(CPU_STAT_PROCESS_EVENTS);
}

/* A perf-event sample taken in user mode: its ip is a user (lower-half) address. */
static __always_inline bool sampled_in_user_mode(const struct bpf_perf_event_data *ctx)
{
	return (__s64)ctx->regs.ip >= 0;
}

#include "bpf/unwind.bpf.h"

#endif /* KILN_STACKS_BPF_H */
