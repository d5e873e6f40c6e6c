// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Off-CPU time: sched_switch notes when a thread leaves the CPU and adds
 * the time to (pid, tid, user stack, kernel stack, state) when it comes
 * back. Short blocks cost two task-storage writes and are only counted;
 * stacks are taken for long ones alone: the kernel stack when the thread is
 * switched back in, the user stack on its way back to user mode, where its
 * user registers are still those it blocked with (enum offcpu_hooks says
 * how, per kernel). At the end of a window a task iterator charges the
 * threads still blocked with their time so far.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "bpf/offcpu.h"

#define EEXIST 17 /* vmlinux.h carries no macros */
#define EBUSY 16
#define PF_KTHREAD 0x00200000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_STATE_MASK 0xff
#define SYSCALL_INSN_SIZE 2 /* a restarted syscall's ip is moved back by this */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool filter_pids = false;
const volatile bool dwarf_unwinding = true;
const volatile __u64 min_block_ns = 1000000;
const volatile __u32 state_mask = (1 << OFFCPU_STATE__COUNT) - 1;
/* enum offcpu_hooks: where the window-end iterator finds blocks. */
const volatile __u32 hooks = OFFCPU_HOOKS_TASK_WORK;

__u32 active_buffer = 0;
/*
 * When the current window began (bpf_ktime_get_ns clock), set by the agent
 * as it swaps buffers. A block that began earlier is charged only its part
 * inside this window: earlier windows are already written.
 */
__u64 window_start_ns = 0;
/* The end of the window being closed, set by the agent before it runs blocked_tasks. */
__u64 window_end_ns = 0;

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

/* The same by thread id, for raw_tp hooks (no task pointer to hang storage on). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, OFFCPU_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct block);
} blocks_by_tid SEC(".maps");

/* The task work that takes a long block's user stack, per thread that had one. */
struct stack_request {
	struct bpf_task_work work;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, OFFCPU_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct stack_request);
} stack_requests SEC(".maps");

#include "bpf/stacks.bpf.h"
#include "bpf/process.bpf.h"

/*
 * The window-end iterator's scratch space. It sleeps (it reads other tasks'
 * memory), so it cannot share the per-CPU scratch of the sched_switch
 * program, which may run on its CPU meanwhile. One iterator runs at a time.
 */
struct iter_scratch {
	struct stack_trace kernel;
	struct user_unwind_state unwind;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iter_scratch);
} iter_scratch SEC(".maps");

extern int bpf_task_work_schedule_resume_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map, bpf_task_work_callback_t callback,
					      void *aux__prog) __ksym __weak;

/* Whether a thread's blocks count; raw_tp hooks get untyped task pointers. */
static __always_inline bool tracked(struct task_struct *task, __u32 *pid, __u32 *tid, bool raw)
{
	__u32 flags;

	if (raw) {
		*tid = BPF_CORE_READ(task, pid);
		*pid = BPF_CORE_READ(task, tgid);
		flags = BPF_CORE_READ(task, flags);
	} else {
		*tid = task->pid;
		*pid = task->tgid;
		flags = task->flags;
	}
	if (!*tid || (flags & PF_KTHREAD))
		return false;
	if (bpf_map_lookup_elem(&excluded_processes, pid))
		return false;
	return !filter_pids || bpf_map_lookup_elem(&pid_filter, pid);
}

/* The value for tid in a hash map by thread, inserted empty if missing; full_stat counts a full map. */
static __always_inline void *lookup_or_create(void *map, __u32 *tid, const void *empty,
					      __u32 full_stat)
{
	void *value = bpf_map_lookup_elem(map, tid);
	long err;

	if (value)
		return value;
	err = bpf_map_update_elem(map, tid, empty, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count_stat(full_stat);
		return NULL;
	}
	return bpf_map_lookup_elem(map, tid);
}

static __always_inline struct block *find_block(struct task_struct *task, __u32 tid, bool create,
						bool raw)
{
	struct block empty = {};

	if (!raw)
		return bpf_task_storage_get(&blocks, task, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (!create)
		return bpf_map_lookup_elem(&blocks_by_tid, &tid);
	return lookup_or_create(&blocks_by_tid, &tid, &empty, OFFCPU_STAT_BLOCKS_MAP_FULL);
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
	/* As the sampler does: without user frames there is nothing to map. */
	if (user_stack_id >= STACK_ID_FIRST_VALID)
		announce_process(pid);
}

static __always_inline void record(struct task_struct *task, __u32 pid, __u32 tid,
				   __u64 user_stack_id, __u64 kernel_stack_id, __u32 state,
				   __u64 blocked_ns)
{
	if (active_buffer)
		record_into(&counts_1, task, pid, tid, user_stack_id, kernel_stack_id, state,
			    blocked_ns);
	else
		record_into(&counts_0, task, pid, tid, user_stack_id, kernel_stack_id, state,
			    blocked_ns);
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
	record(task, pid, tid, user_stack_id, kernel_stack_id, block->state, block->pending_ns);
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

/*
 * The current task's user stack from its saved registers. ctx is a program
 * context for bpf_get_stack, or NULL (a task work) to ask for the current
 * task's stack by task.
 */
static __always_inline __u64 current_user_stack(void *ctx, __u32 pid, __u64 pc, __u64 sp, __u64 bp)
{
	struct stack_trace *trace = NULL;
	struct pt_regs *regs;
	__u32 zero = 0;

	if (dwarf_unwinding) {
		/* rbx as saved too: ld.so's lazy-binding trampolines keep their frame in it. */
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		trace = unwind_user_stack(pid, pc, sp, bp, BPF_CORE_READ(regs, bx));
	}
	if (trace)
		return store_user_stack(trace);
	if (ctx)
		trace = get_stack(ctx, BPF_F_USER_STACK, CPU_STAT_USER_STACK_FAILED);
	else
		trace = get_task_stack(bpf_get_current_task_btf(),
				       bpf_map_lookup_elem(&stack_scratch, &zero), BPF_F_USER_STACK,
				       CPU_STAT_USER_STACK_FAILED);
	return store_user_stack(frame_pointers_instead(trace, dwarf_unwinding));
}

/*
 * The user stack of a thread whose ended block awaits it, now that it is
 * current again on its way back to user mode. Its registers are still those
 * it blocked with, or, when a signal made the syscall restart, the same
 * with the pc moved back onto the syscall instruction. Anything else
 * (blocked in a page fault, a signal handler about to run) is unknown.
 */
static __always_inline void take_pending_user_stack(void *ctx, struct task_struct *task,
						    struct block *block, __u64 pc, __u64 sp,
						    __u64 bp)
{
	__u64 user_stack_id = STACK_ID_CAPTURE_FAILED;

	block->flags = 0;
	if (sp == block->saved_sp &&
	    (pc == block->saved_pc || pc + SYSCALL_INSN_SIZE == block->saved_pc))
		user_stack_id = current_user_stack(ctx, task->tgid, block->saved_pc, sp, bp);
	else
		count_stat(OFFCPU_STAT_USER_STACK_UNKNOWN);
	record_block(task, task->tgid, task->pid, block, user_stack_id);
}

/* prev leaves the CPU: note when, and why. */
static __always_inline void block_starts(void *ctx, struct task_struct *prev, bool preempt,
					 unsigned int prev_state, __u64 now, bool raw)
{
	struct task_struct *current;
	struct block *block;
	struct pt_regs *regs;
	__u32 pid, tid, state;

	if (!tracked(prev, &pid, &tid, raw))
		return;
	if (preempt || !(prev_state & TASK_STATE_MASK))
		state = OFFCPU_STATE_PREEMPTED;
	else if (prev_state & TASK_UNINTERRUPTIBLE)
		state = OFFCPU_STATE_UNINTERRUPTIBLE;
	else
		state = OFFCPU_STATE_SLEEPING;
	if (!(state_mask & (1u << state)))
		return;
	/* prev is the current task; raw_tp types it loosely: a trusted pointer to it then. */
	current = raw ? bpf_get_current_task_btf() : prev;
	block = find_block(current, tid, true, raw);
	if (!block) {
		count_stat(OFFCPU_STAT_STORAGE_FAILED);
		return;
	}
	/*
	 * Blocking again inside the syscall whose earlier block still awaits
	 * its user stack (a syscall can wait more than once): the saved
	 * registers are unchanged, so take that stack now.
	 */
	if (block->flags & BLOCK_PENDING) {
		regs = (struct pt_regs *)bpf_task_pt_regs(current);
		take_pending_user_stack(ctx, current, block, regs->ip, regs->sp, regs->bp);
	}
	block->state = state;
	block->flags = 0;
	/*
	 * Preempted in user mode (entered the kernel through an interrupt, so
	 * orig_ax is negative), it will not return through a syscall: take its
	 * stacks now, while prev is still the current task. That happens at
	 * most once per scheduler tick. Preemption inside a syscall (a wakeup,
	 * in a context-switch storm at every switch) waits for the block's end
	 * like any other, so short ones cost nothing. raw_tp hooks cannot read
	 * another task's kernel stack at its switch-in, so they take it here.
	 */
	if (state == OFFCPU_STATE_PREEMPTED) {
		regs = (struct pt_regs *)bpf_task_pt_regs(current);
		if ((__s64)regs->orig_ax < 0) {
			block->saved_pc = regs->ip;
			block->saved_sp = regs->sp;
			block->kernel_stack_id =
				store_kernel_stack(get_stack(ctx, 0, CPU_STAT_KERNEL_STACK_FAILED));
			block->user_stack_id =
				current_user_stack(ctx, pid, regs->ip, regs->sp, regs->bp);
			block->buffer = active_buffer;
			block->flags = BLOCK_CAPTURED;
		}
	}
	if (raw && !(block->flags & BLOCK_CAPTURED)) {
		regs = (struct pt_regs *)bpf_task_pt_regs(current);
		block->saved_pc = regs->ip;
		block->saved_sp = regs->sp;
		block->kernel_stack_id =
			store_kernel_stack(get_stack(ctx, 0, CPU_STAT_KERNEL_STACK_FAILED));
		block->buffer = active_buffer;
	}
	/* Last: the window-end iterator takes a nonzero start as a block under way. */
	asm volatile("" ::: "memory");
	block->start_ns = now;
}

static int user_stack_at_resume(struct bpf_map *map, void *key, void *value);

/*
 * Asks for the user stack of a thread whose long block just ended: a task
 * work runs as it returns to user mode. Returns false when it cannot be
 * asked (the caller records the block without it).
 */
static __always_inline bool request_user_stack(struct task_struct *task, __u32 tid)
{
	struct stack_request *request, empty = {};
	long err;

	request = lookup_or_create(&stack_requests, &tid, &empty, OFFCPU_STAT_REQUESTS_FULL);
	if (!request)
		return false;
	err = bpf_task_work_schedule_resume_impl(task, &request->work, &stack_requests,
						 user_stack_at_resume, NULL);
	/* EBUSY: already asked, for an earlier block of this same trip into the kernel. */
	if (err && err != -EBUSY) {
		count_stat(OFFCPU_STAT_TASK_WORK_FAILED);
		return false;
	}
	return true;
}

/* next comes back: the block's length is known. */
static __always_inline void block_ends(struct task_struct *next, __u64 now, __u32 how)
{
	bool raw = how == OFFCPU_HOOKS_RAW_TP;
	struct stack_trace *trace;
	struct pt_regs *regs;
	struct block *block;
	__u32 pid, tid, zero = 0;
	__u64 start, length;

	if (!tracked(next, &pid, &tid, raw))
		return;
	block = find_block(next, tid, false, raw);
	if (!block || !block->start_ns)
		return;
	/* Atomic: the window-end iterator may be moving this block's start. */
	start = __sync_lock_test_and_set(&block->start_ns, 0);
	if (!start)
		return;
	length = now - start;
	if (start < window_start_ns) {
		add_stat(OFFCPU_STAT_EARLIER_NS, window_start_ns - start);
		length = now - window_start_ns;
	}
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
	/*
	 * Still inside the kernel entry it blocked in, next has the user
	 * registers it blocked with: kept to check they are unchanged when its
	 * user stack is taken.
	 */
	if (!raw) {
		regs = (struct pt_regs *)bpf_task_pt_regs(next);
		block->saved_pc = regs->ip;
		block->saved_sp = regs->sp;
		/* Where it waited in the kernel: its stack stopped in schedule(). */
		trace = get_task_stack(next, bpf_map_lookup_elem(&stack_scratch, &zero), 0,
				       CPU_STAT_KERNEL_STACK_FAILED);
		block->kernel_stack_id = store_kernel_stack(trace);
		block->buffer = active_buffer;
	}
	block->flags = BLOCK_PENDING;
	if (how == OFFCPU_HOOKS_TASK_WORK && !request_user_stack(next, tid)) {
		block->flags = 0;
		record_block(next, pid, tid, block, STACK_ID_CAPTURE_FAILED);
	}
}

/* The task work request_user_stack asked for: the thread is current, bound for user mode. */
static int user_stack_at_resume(struct bpf_map *map, void *key, void *value)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct block *block = bpf_task_storage_get(&blocks, task, 0, 0);
	struct pt_regs *regs;

	if (!block || !(block->flags & BLOCK_PENDING))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	take_pending_user_stack(NULL, task, block, regs->ip, regs->sp, regs->bp);
	return 0;
}

/* One context switch: prev's block starts, next's ends. */
static __always_inline void switch_happens(void *ctx, bool preempt, struct task_struct *prev,
					   struct task_struct *next, unsigned int prev_state,
					   __u32 how)
{
	__u64 now = bpf_ktime_get_ns();

	count_stat(OFFCPU_STAT_SWITCHES);
	/* BTF-typed tracepoint arguments may be NULL as far as the verifier knows. */
	if (how != OFFCPU_HOOKS_RAW_TP && (!prev || !next))
		return;
	block_starts(ctx, prev, preempt, prev_state, now, how == OFFCPU_HOOKS_RAW_TP);
	block_ends(next, now, how);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_happens(ctx, preempt, prev, next, prev_state, OFFCPU_HOOKS_TASK_WORK);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_sys_exit, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	switch_happens(ctx, preempt, prev, next, prev_state, OFFCPU_HOOKS_SYS_EXIT);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_happens(ctx, preempt, prev, next, prev_state, OFFCPU_HOOKS_RAW_TP);
	return 0;
}

/*
 * A syscall returns (SYS_EXIT and RAW_TP hooks): if its thread has an
 * ended block awaiting its user stack, the registers it blocked with are
 * still those saved at the syscall's entry.
 */
static __always_inline void syscall_returns(void *ctx, bool raw)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct block *block = find_block(task, task->pid, false, raw);
	struct pt_regs *regs;

	if (!block || !(block->flags & BLOCK_PENDING))
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	take_pending_user_stack(ctx, task, block, regs->ip, regs->sp, regs->bp);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(syscall_return)
{
	syscall_returns(ctx, false);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(syscall_return_raw)
{
	syscall_returns(ctx, true);
	return 0;
}

/* A thread exits: drop what is kept for it by thread id (task storage goes by itself). */
static __always_inline void thread_exits(struct task_struct *task, bool raw)
{
	__u32 tid = raw ? BPF_CORE_READ(task, pid) : task->pid;

	if (raw)
		bpf_map_delete_elem(&blocks_by_tid, &tid);
	else
		bpf_map_delete_elem(&stack_requests, &tid);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	if (task)
		thread_exits(task, false);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(thread_exit_raw, struct task_struct *task)
{
	thread_exits(task, true);
	return 0;
}

/*
 * The state of a task asleep off the CPU, or -1: runnable, running, on its
 * way to sleep, stopped or exiting.
 */
static __always_inline int asleep_state(struct task_struct *task)
{
	unsigned int state = task->__state;

	if (task->on_cpu || task->exit_state)
		return -1;
	if (state & TASK_UNINTERRUPTIBLE)
		return OFFCPU_STATE_UNINTERRUPTIBLE;
	if (state & TASK_INTERRUPTIBLE)
		return OFFCPU_STATE_SLEEPING;
	return -1;
}

/*
 * Run by the agent as a window ends: a thread still blocked has its time so
 * far (from the later of its block's start and the window's) charged to the
 * window, with the stacks it waits in, and its block restarts at the
 * window's end. A thread asleep that kiln never saw leave the CPU went to
 * sleep before kiln started: it is charged the whole window, and followed
 * from then on. Sleepable: the user stack of another task is read through
 * bpf_copy_from_user_task.
 */
SEC("iter.s/task")
int blocked_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	bool raw = hooks == OFFCPU_HOOKS_RAW_TP;
	struct iter_scratch *scratch;
	struct stack_trace *trace;
	__u64 start, from, end = window_end_ns;
	__u64 user_stack_id, kernel_stack_id;
	struct block *block;
	struct pt_regs *regs;
	__u32 pid, tid, zero = 0;
	int state;

	if (!task || !tracked(task, &pid, &tid, false) || !window_start_ns)
		return 0;
	block = find_block(task, tid, false, raw);
	start = block ? block->start_ns : 0;
	if (start) {
		from = start > window_start_ns ? start : window_start_ns;
		if (end <= from || end - from < min_block_ns)
			return 0;
		state = block->state;
	} else {
		state = asleep_state(task);
		if (state < 0 || !(state_mask & (1u << state)))
			return 0;
		from = window_start_ns;
		if (end <= from || end - from < min_block_ns)
			return 0;
		block = find_block(task, tid, true, raw);
		if (!block)
			return 0;
		block->state = state;
	}
	scratch = bpf_map_lookup_elem(&iter_scratch, &zero);
	if (!scratch)
		return 0;
	/* It was switched in meanwhile: sched_switch charges the block whole. */
	if (__sync_val_compare_and_swap(&block->start_ns, start, end) != start)
		return 0;
	trace = get_task_stack(task, &scratch->kernel, 0, CPU_STAT_KERNEL_STACK_FAILED);
	kernel_stack_id = store_kernel_stack(trace);
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	trace = unwind_stack_into(&scratch->unwind, NULL, task, pid, regs->ip, regs->sp, regs->bp,
				  regs->bx);
	user_stack_id = store_user_stack(trace);
	count_stat(OFFCPU_STAT_STILL_BLOCKED);
	record(task, pid, tid, user_stack_id, kernel_stack_id, state, end - from);
	return 0;
}
