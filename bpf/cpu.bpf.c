// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CPU sampling: a perf-event program counts (pid, tid, user stack, kernel stack). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "bpf/cpu.h"

#define EEXIST 17 /* vmlinux.h carries no macros */
#define EBUSY 16
#define PF_EXITING 0x00000004
/* A process this young may have been read inside its dynamic loader. */
#define YOUNG_PROCESS_NS 1000000000ULL

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent between open and load. */
const volatile bool filter_pids = false;
const volatile bool dwarf_unwinding = true;
/* The kernel fills a new process's mappings itself (bpf_task_work, 6.18+). */
const volatile bool fill_in_kernel = false;

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

extern int bpf_task_work_schedule_resume_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map, bpf_task_work_callback_t callback,
					      void *aux__prog) __ksym __weak;

/*
 * The task works' scratch: a new process's entry as it is filled, and the
 * unwinder's state. One per CPU; busy while a work uses it, as a preempted
 * work may be followed by another thread's on the same CPU.
 * (24 + 128 * 48) + ~18.5 KiB ~ 25 KiB per CPU.
 */
struct fill_scratch {
	__u32 busy;
	__u32 padding;
	struct process_unwind entry;
	struct user_unwind_state unwind;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fill_scratch);
} fill_scratch SEC(".maps");

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

/*
 * Whether a walk that found a pc in none of a young process's mappings
 * wants them filled again: a process sampled first inside the dynamic
 * loader had no libraries mapped yet, in the kernel's fill or in the
 * agent's capture, as early. The entry is dropped for the task work to
 * fill anew from the VMAs as they are now, up to PROCESS_UNWIND_MAX_REFILLS
 * times (a library dlopened after the first refill needs another). An older
 * process's missing mapping is a library loaded since: the agent re-reads
 * it (request_refresh), with the library's own table. *ret_refills: the
 * refill's number.
 */
static __always_inline bool wants_refill(const struct stack_trace *trace, __u32 pid,
					 __u32 *ret_refills)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct process_unwind *process;
	__u32 refills;

	if (!fill_in_kernel || trace->end != STACK_END_NO_MAPPING ||
	    bpf_ktime_get_ns() - task->group_leader->start_time > YOUNG_PROCESS_NS)
		return false;
	process = find_process_unwind(pid);
	if (!process)
		return false;
	refills = (process->flags & PROCESS_UNWIND_REFILLS_MASK) >> PROCESS_UNWIND_REFILLS_SHIFT;
	if (refills >= PROCESS_UNWIND_MAX_REFILLS)
		return false;
	bpf_map_delete_elem(&process_unwind, &pid);
	count_stat(CPU_STAT_FILL_REFILLS);
	*ret_refills = refills + 1;
	return true;
}

static __always_inline bool defer_sample(__u32 tid, __u64 kernel_stack_id, __u32 buffer,
					 __u32 refills);

/*
 * DWARF unwinding when the process's tables are ready; frame pointers
 * otherwise. STACK_ID_DEFERRED when the sample went to a task work.
 */
static __always_inline __u64 capture_user_stack(struct bpf_perf_event_data *ctx, void *stacks,
						__u32 pid, __u32 tid, __u64 kernel_stack_id,
						__u32 buffer)
{
	struct stack_trace *trace = NULL;
	__u32 refills = 0;

	if (!sampled_in_user_mode(ctx) && in_execve()) {
		count_stat(CPU_STAT_USER_STACK_IN_EXEC);
		return STACK_ID_NONE;
	}
	if (dwarf_unwinding)
		trace = unwind_sampled_user_stack(ctx, pid);
	if (trace && wants_refill(trace, pid, &refills) &&
	    defer_sample(tid, kernel_stack_id, buffer, refills))
		return STACK_ID_DEFERRED;
	if (!trace)
		trace = frame_pointers_instead(
			get_stack(ctx, BPF_F_USER_STACK, CPU_STAT_USER_STACK_FAILED),
			dwarf_unwinding);
	return trace ? store_stack(stacks, trace, MAX_USER_STACK_DEPTH) : STACK_ID_CAPTURE_FAILED;
}

/*
 * Adds one sample to a buffer's counts; the first of its key with a user
 * stack announces the process. The comms come from a deferred sample's request, or from the
 * current task (read only for a new key: most samples find theirs).
 */
static __always_inline void add_sample(void *counts, const struct sample_key *key,
				       const struct fill_request *carried)
{
	struct sample_value *value, new_value = {};
	struct task_struct *task;
	long err;

	value = bpf_map_lookup_elem(counts, key);
	if (value) {
		__sync_fetch_and_add(&value->count, 1);
		count_stat(CPU_STAT_RECORDED);
		return;
	}
	new_value.count = 1;
	if (carried) {
		__builtin_memcpy(new_value.thread_comm, carried->thread_comm, TASK_COMM_LEN);
		__builtin_memcpy(new_value.process_comm, carried->process_comm, TASK_COMM_LEN);
	} else {
		bpf_get_current_comm(new_value.thread_comm, sizeof(new_value.thread_comm));
		task = (struct task_struct *)bpf_get_current_task();
		BPF_CORE_READ_STR_INTO(&new_value.process_comm, task, group_leader, comm);
	}
	err = bpf_map_update_elem(counts, key, &new_value, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the same key first. */
		value = bpf_map_lookup_elem(counts, key);
		if (value)
			__sync_fetch_and_add(&value->count, 1);
	} else if (err) {
		count_stat(CPU_STAT_COUNTS_MAP_FULL);
		return;
	}
	count_stat(CPU_STAT_RECORDED);
	/*
	 * Only user frames need the process's mappings: a sample in the
	 * kernel alone (a kernel thread, a process in execve or exiting)
	 * costs the agent no /proc read. Its next sample with a user stack
	 * announces it.
	 */
	if (key->user_stack_id >= STACK_ID_FIRST_VALID)
		announce_process(key->pid);
}

static int fill_at_resume(struct bpf_map *map, void *key, void *value);

/*
 * Whether this sample waits for a task work that fills its process's
 * mappings and unwinds it: the process has no entry yet, and the sample a
 * user stack to unwind (not a kernel thread's, not inside execve, whose
 * registers belong to the image being replaced).
 */
static __always_inline bool wants_fill(struct bpf_perf_event_data *ctx, __u32 pid)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!fill_in_kernel || !dwarf_unwinding || !task->mm || find_process_unwind(pid))
		return false;
	return sampled_in_user_mode(ctx) || !in_execve();
}

/*
 * Hands the sample to a task work that runs as the thread returns to user
 * mode, before it runs more user code: its user registers are still the
 * sampled ones there, and the VMAs can be read. False when it cannot be
 * (the caller walks frame pointers now, as before).
 */
static __always_inline bool defer_sample(__u32 tid, __u64 kernel_stack_id, __u32 buffer,
					 __u32 refills)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fill_request *request, empty = {};
	long err;

	request = bpf_map_lookup_elem(&fill_requests, &tid);
	if (!request) {
		err = bpf_map_update_elem(&fill_requests, &tid, &empty, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			count_stat(CPU_STAT_FILL_FAILED);
			return false;
		}
		request = bpf_map_lookup_elem(&fill_requests, &tid);
		if (!request) {
			count_stat(CPU_STAT_FILL_FAILED);
			return false;
		}
	}
	err = bpf_task_work_schedule_resume_impl(task, &request->work, &fill_requests,
						 fill_at_resume, NULL);
	if (err == -EBUSY) {
		/* A sample of this same trip into the kernel waits already. */
		count_stat(CPU_STAT_FILL_BUSY);
		return false;
	}
	if (err) {
		count_stat(CPU_STAT_FILL_FAILED);
		return false;
	}
	/* The work runs on this thread, after this program: nothing reads these yet. */
	request->kernel_stack_id = kernel_stack_id;
	request->buffer = buffer;
	request->refills = refills;
	bpf_get_current_comm(request->thread_comm, sizeof(request->thread_comm));
	BPF_CORE_READ_STR_INTO(&request->process_comm, task, group_leader, comm);
	count_stat(CPU_STAT_FILL_SCHEDULED);
	return true;
}

static __always_inline int record_sample(struct bpf_perf_event_data *ctx, void *counts,
					 void *user_stacks, void *kernel_stacks, __u32 pid,
					 __u32 tid, __u32 buffer)
{
	struct sample_key key = {};

	key.pid = pid;
	key.tid = tid;
	key.kernel_stack_id = capture_kernel_stack(ctx, kernel_stacks);
	/* The task work tells the agent of the process if it must read it. */
	if (wants_fill(ctx, pid) && defer_sample(tid, key.kernel_stack_id, buffer, 0))
		return 0;
	key.user_stack_id =
		capture_user_stack(ctx, user_stacks, pid, tid, key.kernel_stack_id, buffer);
	if (key.user_stack_id != STACK_ID_DEFERRED)
		add_sample(counts, &key, NULL);
	return 0;
}

/*
 * After a fill: a process whose every file the kernel placed with a table
 * needs nothing of the agent now (the usual case: a shell's coreutils, a
 * build's compilers), so it is marked known without being announced. The
 * agent reads it at the window's end if it still runs, else names its
 * samples from the kernel's record: a short-lived process costs no /proc
 * reads. Any other (a file without a table, no entry) is announced as
 * before: the agent reads it now and builds its tables; one known, filled
 * again with such a file (dlopened since), is announced as changed.
 */
static __always_inline void process_filled(__u32 pid)
{
	struct process_unwind *process = find_process_unwind(pid);
	bool known = bpf_map_lookup_elem(&known_processes, &pid) != NULL;
	__u8 one = 1;

	if (!process || (process->flags & PROCESS_UNWIND_UNTABLED)) {
		/* Known, not read (filled whole before): a library without a table since. */
		if (known && process)
			send_process_event(pid, PROCESS_EVENT_MAPPINGS_CHANGED);
		else
			announce_process(pid);
		return;
	}
	if (known)
		return;
	bpf_map_update_elem(&known_processes, &pid, &one, BPF_ANY);
	count_stat(CPU_STAT_FILL_WHOLE);
}

/*
 * The deferred sample's user stack, unwound with its process's mappings
 * (filled first if still missing), in scratch space of the task works'
 * own: a perf event may interrupt this one and use the sampler's. NULL
 * when it cannot be taken (counted).
 */
static __always_inline struct stack_trace *
deferred_user_stack(struct fill_scratch *scratch, const struct fill_request *request, __u32 pid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct stack_trace *trace;
	struct pt_regs *regs;

	fill_process_unwind(&scratch->entry, pid,
			    (request->refills << PROCESS_UNWIND_REFILLS_SHIFT) &
				    PROCESS_UNWIND_REFILLS_MASK,
			    FILL_KEEP);
	process_filled(pid);
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	trace = unwind_stack_into(&scratch->unwind, NULL, NULL, pid, regs->ip, regs->sp, regs->bp,
				  regs->bx);
	if (!trace)
		trace = get_task_stack(task, &scratch->unwind.trace, BPF_F_USER_STACK,
				       CPU_STAT_USER_STACK_FAILED);
	return trace;
}

static __always_inline void record_deferred(struct fill_request *request, struct sample_key *key,
					    struct stack_trace *trace, void *counts,
					    void *user_stacks)
{
	if (trace)
		key->user_stack_id = store_stack(user_stacks, trace, MAX_USER_STACK_DEPTH);
	add_sample(counts, key, request);
}

/* The task work defer_sample asked for: the sampled thread, on its way back to user mode. */
static int fill_at_resume(struct bpf_map *map, void *tid, void *value)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fill_request *request = value;
	struct sample_key key = {
		.pid = task->tgid,
		.tid = task->pid,
		.user_stack_id = STACK_ID_CAPTURE_FAILED,
		.kernel_stack_id = request->kernel_stack_id,
	};
	__u64 start = bpf_ktime_get_ns();
	struct stack_trace *trace = NULL;
	struct fill_scratch *scratch;
	__u32 buffer = active_buffer, zero = 0;

	/* Its kernel stack went into the buffer of a window since drained. */
	if (request->buffer != buffer) {
		count_stat(CPU_STAT_FILL_LATE);
		if (key.kernel_stack_id >= STACK_ID_FIRST_VALID)
			key.kernel_stack_id = STACK_ID_WINDOW_ENDED;
	}
	scratch = bpf_map_lookup_elem(&fill_scratch, &zero);
	/* Exiting, its memory may be gone; busy: another thread's work here was preempted. */
	if (!scratch || (task->flags & PF_EXITING) || __sync_lock_test_and_set(&scratch->busy, 1)) {
		count_stat(CPU_STAT_FILL_LOST);
		scratch = NULL;
	} else {
		trace = deferred_user_stack(scratch, request, key.pid);
	}
	if (buffer)
		record_deferred(request, &key, trace, &counts_1, &user_stacks_1);
	else
		record_deferred(request, &key, trace, &counts_0, &user_stacks_0);
	if (scratch) {
		asm volatile("" ::: "memory");
		scratch->busy = 0;
	}
	add_stat(CPU_STAT_FILL_NS, bpf_ktime_get_ns() - start);
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
	if ((filter_pids && !bpf_map_lookup_elem(&pid_filter, &pid)) ||
	    bpf_map_lookup_elem(&excluded_processes, &pid)) {
		count_stat(CPU_STAT_FILTERED);
		return 0;
	}
	if (active_buffer)
		return record_sample(ctx, &counts_1, &user_stacks_1, &kernel_stacks_1, pid, tid, 1);
	return record_sample(ctx, &counts_0, &user_stacks_0, &kernel_stacks_0, pid, tid, 0);
}

/*
 * The dynamic loader's debugger hook, _dl_debug_state, which ld.so calls
 * before and after it maps objects: at start-up, before main, and around
 * every dlopen. A sleepable uprobe there runs in the process's own context,
 * where the VMA iterator works, so the process's entry is filled (or, made
 * by the kernel before, filled again) before its code runs: its first
 * samples are unwound with CFI without a task work, which some kernels
 * refuse to perf-event programs. The agent attaches it to each loader
 * file it meets (agent/sampling/cpu_profiler.c). The agent's own entries
 * are left alone past a process's first second (a dlopen: the agent reads
 * again when a walk finds a pc in none of its mappings).
 */
SEC("uprobe.s")
int fill_at_loader(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, zero = 0, state;
	__u64 start = bpf_ktime_get_ns(), state_at;
	struct fill_scratch *scratch;
	struct task_struct *task;

	if ((filter_pids && !bpf_map_lookup_elem(&pid_filter, &pid)) ||
	    bpf_map_lookup_elem(&excluded_processes, &pid))
		return 0;
	/*
	 * Each change to the loader's list calls here twice, before (RT_ADD,
	 * RT_DELETE) and after (RT_CONSISTENT): only the second has what the
	 * process runs. The cookie places r_state from this function's own
	 * address; 0, and every call fills, when the agent found no _r_debug
	 * or has no task works to fill for samples taken in between.
	 */
	state_at = bpf_get_attach_cookie(ctx);
	if (state_at &&
	    !bpf_copy_from_user(&state, sizeof(state), (void *)(PT_REGS_IP(ctx) + state_at)) &&
	    state != LOADER_RT_CONSISTENT) {
		count_stat(CPU_STAT_FILL_AT_LOADER_SKIPPED);
		return 0;
	}
	scratch = bpf_map_lookup_elem(&fill_scratch, &zero);
	/* Busy: a fill on this CPU was preempted; the next call, or the agent, fills it. */
	if (!scratch || __sync_lock_test_and_set(&scratch->busy, 1)) {
		count_stat(CPU_STAT_FILL_AT_LOADER_BUSY);
		return 0;
	}
	count_stat(CPU_STAT_FILL_AT_LOADER);
	/*
	 * A young process's entry from the agent may have been read before
	 * the loader mapped the libraries (announced by a sample before its
	 * exec, or at the first call here): the VMAs now are what it runs.
	 */
	task = bpf_get_current_task_btf();
	fill_process_unwind(&scratch->entry, pid, 0,
			    bpf_ktime_get_ns() - task->group_leader->start_time <= YOUNG_PROCESS_NS
				    ? FILL_REPLACE_ANY
				    : FILL_REPLACE_KERNEL);
	process_filled(pid);
	asm volatile("" ::: "memory");
	scratch->busy = 0;
	add_stat(CPU_STAT_FILL_NS, bpf_ktime_get_ns() - start);
	return 0;
}

#include "bpf/process.bpf.h"
