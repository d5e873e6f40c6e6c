// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CPU sampling: a perf-event program counts (pid, tid, user stack, kernel stack). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "bpf/cpu.h"

#define EEXIST 17 /* vmlinux.h carries no macros */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent between open and load. */
const volatile bool filter_pids = false;
const volatile bool dwarf_unwinding = true;

/*
 * Which of the two buffers samples go to. The agent flips it at the end of
 * a window and drains the other one, so no sample is lost while draining.
 */
__u32 active_buffer = 0;

#include "bpf/maps.bpf.h"

/* Counters per CPU (enum cpu_stat); the agent reports their increase each window. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CPU_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

_Static_assert(sizeof(struct stack_trace) == 8 + 8 * MAX_USER_STACK_DEPTH, "stack_trace layout");
_Static_assert(sizeof(struct kernel_stack_trace) == 8 + 8 * MAX_STACK_DEPTH, "kernel layout");
_Static_assert(sizeof(struct sample_key) == 32, "sample_key layout");
_Static_assert((MAX_USER_STACK_DEPTH & (MAX_USER_STACK_DEPTH - 1)) == 0, "masks need 2^n");

#include "bpf/stacks.bpf.h"

static __always_inline __u64 capture_kernel_stack(struct bpf_perf_event_data *ctx, void *stacks)
{
	struct stack_trace *trace;

	/* Sampled in user mode: there is no kernel stack to walk. */
	if (sampled_in_user_mode(ctx))
		return STACK_ID_NONE;
	trace = get_stack(ctx, 0, CPU_STAT_KERNEL_STACK_FAILED);

	return trace ? store_stack(stacks, trace, MAX_STACK_DEPTH) : STACK_ID_CAPTURE_FAILED;
}

/*
 * Inside execve the saved user registers are those of the image being
 * replaced, while the task may already run on the new image's mm: a user
 * stack read then is the old program's execve call site, in no mapping of
 * the new one. Such a sample is the kernel's exec work, with no user stack.
 */
static __always_inline bool in_execve(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!bpf_core_field_exists(task->in_execve))
		return false;
	return BPF_CORE_READ_BITFIELD(task, in_execve);
}

/* DWARF unwinding when the process's tables are ready; frame pointers otherwise. */
static __always_inline __u64 capture_user_stack(struct bpf_perf_event_data *ctx, void *stacks,
						__u32 pid)
{
	struct stack_trace *trace = NULL;

	if (!sampled_in_user_mode(ctx) && in_execve()) {
		count_stat(CPU_STAT_USER_STACK_IN_EXEC);
		return STACK_ID_NONE;
	}
	if (dwarf_unwinding)
		trace = unwind_sampled_user_stack(ctx, pid);
	if (!trace)
		trace = get_stack(ctx, BPF_F_USER_STACK, CPU_STAT_USER_STACK_FAILED);
	return trace ? store_stack(stacks, trace, MAX_USER_STACK_DEPTH) : STACK_ID_CAPTURE_FAILED;
}

static __always_inline int record_sample(struct bpf_perf_event_data *ctx, void *counts,
					 void *user_stacks, void *kernel_stacks, __u32 pid,
					 __u32 tid)
{
	struct sample_value *value, new_value = {};
	struct task_struct *task;
	struct sample_key key = {};
	long err;

	key.pid = pid;
	key.tid = tid;
	key.kernel_stack_id = capture_kernel_stack(ctx, kernel_stacks);
	key.user_stack_id = capture_user_stack(ctx, user_stacks, pid);

	value = bpf_map_lookup_elem(counts, &key);
	if (value) {
		__sync_fetch_and_add(&value->count, 1);
		count_stat(CPU_STAT_RECORDED);
		return 0;
	}
	new_value.count = 1;
	bpf_get_current_comm(new_value.thread_comm, sizeof(new_value.thread_comm));
	task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&new_value.process_comm, task, group_leader, comm);
	err = bpf_map_update_elem(counts, &key, &new_value, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the same key first. */
		value = bpf_map_lookup_elem(counts, &key);
		if (value)
			__sync_fetch_and_add(&value->count, 1);
	} else if (err) {
		count_stat(CPU_STAT_COUNTS_MAP_FULL);
		return 0;
	}
	count_stat(CPU_STAT_RECORDED);
	announce_process(pid);
	return 0;
}

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;

	count_stat(CPU_STAT_SAMPLES);
	if (tid == 0) {
		count_stat(CPU_STAT_IDLE);
		return 0;
	}
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &pid)) {
		count_stat(CPU_STAT_FILTERED);
		return 0;
	}
	if (active_buffer)
		return record_sample(ctx, &counts_1, &user_stacks_1, &kernel_stacks_1, pid, tid);
	return record_sample(ctx, &counts_0, &user_stacks_0, &kernel_stacks_0, pid, tid);
}

#include "bpf/process.bpf.h"
