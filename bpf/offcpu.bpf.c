// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Off-CPU time: sched_switch notes when a thread leaves the CPU and adds
 * the time to (pid, tid, user stack, kernel stack, state) when it comes
 * back. Short blocks cost two task-storage writes and are only counted;
 * stacks are taken for long ones alone: the kernel stack when the thread is
 * switched back in, the user stack when its syscall returns, where its user
 * registers are those it blocked with.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "bpf/offcpu.h"

#define EEXIST 17 /* vmlinux.h carries no macros */
#define PF_KTHREAD 0x00200000
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_STATE_MASK 0xff

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool filter_pids = false;
const volatile bool dwarf_unwinding = true;
const volatile __u64 min_block_ns = 1000000;
const volatile __u32 state_mask = (1 << OFFCPU_STATE__COUNT) - 1;

__u32 active_buffer = 0;
/*
 * When the current window began (bpf_ktime_get_ns clock), set by the agent
 * as it swaps buffers. A block that began earlier is charged only its part
 * inside this window: earlier windows are already written.
 */
__u64 window_start_ns = 0;

#include "bpf/maps.bpf.h"

/* Counters per CPU: the shared helpers' CPU_STAT_* first, then OFFCPU_STAT_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OFFCPU_STAT__END);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* The block in progress of each thread; bounded by the threads there are. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct block);
} blocks SEC(".maps");

#include "bpf/stacks.bpf.h"

static __always_inline void add_stat(__u32 stat, __u64 amount)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &stat);

	if (counter)
		*counter += amount;
}

static __always_inline bool tracked(struct task_struct *task, __u32 *pid, __u32 *tid)
{
	*tid = task->pid;
	*pid = task->tgid;
	if (!*tid || (task->flags & PF_KTHREAD))
		return false;
	return !filter_pids || bpf_map_lookup_elem(&pid_filter, pid);
}

static __always_inline void record_into(void *counts, struct task_struct *task, __u32 pid,
					__u32 tid, __u64 user_stack_id, __u64 kernel_stack_id,
					__u32 state, __u64 blocked_ns)
{
	struct sample_key key = {
		.pid = pid,
		.tid = tid,
		.user_stack_id = user_stack_id,
		.kernel_stack_id = kernel_stack_id,
		.state = state,
	};
	struct sample_value *value, new_value = { .count = 1, .blocked_ns = blocked_ns };
	long err;

	value = bpf_map_lookup_elem(counts, &key);
	if (value) {
		__sync_fetch_and_add(&value->count, 1);
		__sync_fetch_and_add(&value->blocked_ns, blocked_ns);
		count_stat(OFFCPU_STAT_RECORDED);
		return;
	}
	BPF_CORE_READ_STR_INTO(&new_value.thread_comm, task, comm);
	BPF_CORE_READ_STR_INTO(&new_value.process_comm, task, group_leader, comm);
	err = bpf_map_update_elem(counts, &key, &new_value, BPF_NOEXIST);
	if (err == -EEXIST) {
		value = bpf_map_lookup_elem(counts, &key);
		if (value) {
			__sync_fetch_and_add(&value->count, 1);
			__sync_fetch_and_add(&value->blocked_ns, blocked_ns);
		}
	} else if (err) {
		count_stat(OFFCPU_STAT_COUNTS_MAP_FULL);
		return;
	}
	count_stat(OFFCPU_STAT_RECORDED);
	announce_process(pid);
}

/* Adds an ended block; stack ids stored in another window's buffer are void. */
static __always_inline void record_block(struct task_struct *task, __u32 pid, __u32 tid,
					 struct block *block, __u64 user_stack_id)
{
	__u64 kernel_stack_id = block->kernel_stack_id;

	if (block->buffer != active_buffer) {
		count_stat(OFFCPU_STAT_WINDOW_ENDED);
		if (kernel_stack_id >= STACK_ID_FIRST_VALID)
			kernel_stack_id = STACK_ID_WINDOW_ENDED;
		if (user_stack_id >= STACK_ID_FIRST_VALID && (block->flags & BLOCK_CAPTURED))
			user_stack_id = STACK_ID_WINDOW_ENDED;
	}
	if (active_buffer)
		record_into(&counts_1, task, pid, tid, user_stack_id, kernel_stack_id, block->state,
			    block->pending_ns);
	else
		record_into(&counts_0, task, pid, tid, user_stack_id, kernel_stack_id, block->state,
			    block->pending_ns);
}

static __always_inline __u64 store_user_stack(struct stack_trace *trace)
{
	if (!trace)
		return STACK_ID_CAPTURE_FAILED;
	if (active_buffer)
		return store_stack(&user_stacks_1, trace, MAX_USER_STACK_DEPTH);
	return store_stack(&user_stacks_0, trace, MAX_USER_STACK_DEPTH);
}

static __always_inline __u64 store_kernel_stack(struct stack_trace *trace)
{
	if (!trace)
		return STACK_ID_CAPTURE_FAILED;
	if (active_buffer)
		return store_stack(&kernel_stacks_1, trace, MAX_STACK_DEPTH);
	return store_stack(&kernel_stacks_0, trace, MAX_STACK_DEPTH);
}

/* The current task's user stack, from its saved registers. */
static __always_inline __u64 current_user_stack(void *ctx, __u32 pid, __u64 pc, __u64 sp,
						__u64 bp)
{
	struct stack_trace *trace = NULL;

	if (dwarf_unwinding)
		trace = unwind_user_stack(pid, pc, sp, bp);
	if (!trace)
		trace = get_stack(ctx, BPF_F_USER_STACK, CPU_STAT_USER_STACK_FAILED);
	return store_user_stack(trace);
}

/* prev leaves the CPU: note when, and why. */
static __always_inline void block_starts(void *ctx, struct task_struct *prev, bool preempt,
					 unsigned int prev_state, __u64 now)
{
	struct block *block;
	struct pt_regs *regs;
	__u32 pid, tid, state;

	if (!tracked(prev, &pid, &tid))
		return;
	if (preempt || !(prev_state & TASK_STATE_MASK))
		state = OFFCPU_STATE_PREEMPTED;
	else if (prev_state & TASK_UNINTERRUPTIBLE)
		state = OFFCPU_STATE_UNINTERRUPTIBLE;
	else
		state = OFFCPU_STATE_SLEEPING;
	if (!(state_mask & (1u << state)))
		return;
	block = bpf_task_storage_get(&blocks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!block) {
		count_stat(OFFCPU_STAT_STORAGE_FAILED);
		return;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	/*
	 * Blocking again inside the syscall whose earlier block still awaits
	 * its user stack (a syscall can wait more than once): prev is current
	 * with the same saved registers, so take that stack now.
	 */
	if (block->flags & BLOCK_PENDING) {
		__u64 user_stack_id = STACK_ID_CAPTURE_FAILED;

		if (BPF_CORE_READ(regs, ip) == block->saved_pc &&
		    BPF_CORE_READ(regs, sp) == block->saved_sp)
			user_stack_id = current_user_stack(ctx, pid, block->saved_pc,
							   block->saved_sp, BPF_CORE_READ(regs, bp));
		else
			count_stat(OFFCPU_STAT_USER_STACK_UNKNOWN);
		record_block(prev, pid, tid, block, user_stack_id);
	}
	block->start_ns = now;
	block->state = state;
	block->flags = 0;
	block->saved_pc = BPF_CORE_READ(regs, ip);
	block->saved_sp = BPF_CORE_READ(regs, sp);
	/*
	 * Preempted in user mode (entered the kernel through an interrupt, so
	 * orig_ax is negative), it will not return through a syscall: take its
	 * stacks now, while prev is still the current task. That happens at
	 * most once per scheduler tick. Preemption inside a syscall (a wakeup,
	 * in a context-switch storm at every switch) waits for the syscall's
	 * return like any other block, so short ones cost nothing.
	 */
	if (state == OFFCPU_STATE_PREEMPTED && (__s64)BPF_CORE_READ(regs, orig_ax) < 0) {
		block->kernel_stack_id = store_kernel_stack(get_stack(ctx, 0, CPU_STAT_KERNEL_STACK_FAILED));
		block->user_stack_id = current_user_stack(ctx, pid, block->saved_pc, block->saved_sp,
							  BPF_CORE_READ(regs, bp));
		block->buffer = active_buffer;
		block->flags = BLOCK_CAPTURED;
	}
}

/* next comes back: the block's length is known. */
static __always_inline void block_ends(struct task_struct *next, __u64 now)
{
	struct stack_trace *trace;
	struct block *block;
	__u32 pid, tid, zero = 0;
	__u64 length;
	long bytes;

	if (!tracked(next, &pid, &tid))
		return;
	block = bpf_task_storage_get(&blocks, next, 0, 0);
	if (!block || !block->start_ns)
		return;
	length = now - block->start_ns;
	if (block->start_ns < window_start_ns) {
		add_stat(OFFCPU_STAT_EARLIER_NS, window_start_ns - block->start_ns);
		length = now - window_start_ns;
	}
	block->start_ns = 0;
	count_stat(OFFCPU_STAT_BLOCKS);
	add_stat(OFFCPU_STAT_BLOCKED_NS, length);
	if (length < min_block_ns) {
		count_stat(OFFCPU_STAT_SHORT_BLOCKS);
		add_stat(OFFCPU_STAT_SHORT_NS, length);
		block->flags = 0;
		return;
	}
	block->pending_ns = length;
	if (block->flags & BLOCK_CAPTURED) {
		record_block(next, pid, tid, block, block->user_stack_id);
		block->flags = 0;
		return;
	}
	/* Where it waited in the kernel: its stack stopped in schedule(). */
	trace = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!trace)
		return;
	bytes = bpf_get_task_stack(next, trace->addresses, MAX_STACK_DEPTH * sizeof(__u64), 0);
	if (bytes < 0) {
		block->kernel_stack_id = STACK_ID_CAPTURE_FAILED;
	} else {
		trace->frame_count = bytes / sizeof(__u64);
		trace->end = trace->frame_count >= MAX_STACK_DEPTH ? STACK_END_DEPTH
								   : STACK_END_UNKNOWN;
		block->kernel_stack_id = store_kernel_stack(trace);
	}
	block->buffer = active_buffer;
	block->flags = BLOCK_PENDING;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();

	count_stat(OFFCPU_STAT_SWITCHES);
	block_starts(ctx, prev, preempt, prev_state, now);
	block_ends(next, now);
	return 0;
}

/*
 * A syscall returns: if its thread has an ended block awaiting its user
 * stack, the registers it blocked with are still those saved at the
 * syscall's entry, so its user stack is the one it waited in.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(syscall_return, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct block *block = bpf_task_storage_get(&blocks, task, 0, 0);
	__u64 user_stack_id = STACK_ID_CAPTURE_FAILED;
	__u32 pid, tid;

	if (!block || !(block->flags & BLOCK_PENDING))
		return 0;
	block->flags = 0;
	pid = task->tgid;
	tid = task->pid;
	if (regs->ip == block->saved_pc && regs->sp == block->saved_sp)
		user_stack_id = current_user_stack(ctx, pid, regs->ip, regs->sp, regs->bp);
	else
		/* It blocked outside this syscall (a page fault): where is unknown. */
		count_stat(OFFCPU_STAT_USER_STACK_UNKNOWN);
	record_block(task, pid, tid, block, user_stack_id);
	return 0;
}
