/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * CPython's frames, read where the native unwinder (bpf/unwind.bpf.h)
 * steps through _PyEval_EvalFrameDefault: each activation of the evaluator
 * runs a run of Python frames, whose code objects and instruction indexes
 * take the evaluator's place in the stack, tagged (bpf/python.h), for the
 * agent to name. The agent writes python_processes when it reads a
 * process's mappings; a process sampled before that has no Python frames.
 *
 * The thread's PyThreadState is found by its thread_id, which is
 * pthread_self(), the thread pointer (fsbase on x86-64): through a cache
 * by tid checked on every use, else by a walk of every interpreter's
 * threads. Its current frame is read once per sample; each activation then
 * takes the frames up to its first (3.11: is_entry; 3.12+: the frame owned
 * by the C stack below it; <= 3.10: exactly one PyFrameObject).
 */
#ifndef KILN_PYTHON_BPF_H
#define KILN_PYTHON_BPF_H

#include "bpf/python.h"

/* pid -> its interpreter's addresses and layout: ~80 bytes a process, as used. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct python_process);
} python_processes SEC(".maps");

/* tid -> its PyThreadState, checked on use: 16384 * (4 + 8 + LRU overhead) ~ 1 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} python_threads SEC(".maps");

enum python_walk_status {
	PYTHON_WALK_OFF = 0, /* not a Python process, or not known as one yet */
	PYTHON_WALK_READY, /* frame is the next one to take */
	PYTHON_WALK_FAILED, /* the thread's frames could not be found: reason says why */
};

/* enum python_step_result: what the unwinder does with this iteration. */
enum python_step_result {
	PYTHON_STEP_CONTINUE = 0, /* handled: the next iteration */
	PYTHON_STEP_STOP = 1, /* handled, and the walk ends */
	PYTHON_STEP_NATIVE, /* not the evaluator's: the native frame as ever */
	PYTHON_STEP_REPLACED, /* the evaluator's frame, whose Python frames stand in its place */
};

static __always_inline bool python_read(struct task_struct *task, void *dst, __u32 size, __u64 addr)
{
	return read_user(task, dst, size, addr) == 0;
}

struct python_find_thread {
	const struct python_process *python;
	struct task_struct *task;
	__u64 interp; /* the interpreter whose threads come after tstate's */
	__u64 tstate; /* the thread state to look at next; 0: the next interpreter's first */
	__u64 thread_pointer;
	__u64 found;
};

static long python_find_thread_step(__u32 iteration, void *data)
{
	struct python_find_thread *find = data;
	const struct python_offsets *offsets = &find->python->offsets;
	__u64 thread_id = 0, interp = find->interp;

	if (!find->tstate) {
		if (!interp ||
		    !python_read(find->task, &find->tstate, 8, interp + offsets->interp_threads))
			return 1;
		if (!python_read(find->task, &find->interp, 8, interp + offsets->interp_next))
			find->interp = 0;
		return 0;
	}
	if (!python_read(find->task, &thread_id, 8, find->tstate + offsets->tstate_thread_id))
		return 1;
	if (thread_id == find->thread_pointer) {
		find->found = find->tstate;
		return 1;
	}
	if (!python_read(find->task, &find->tstate, 8, find->tstate + offsets->tstate_next))
		return 1;
	return 0;
}

/* The thread's PyThreadState, 0 when none is found (a thread Python never ran in). */
static __always_inline __u64 python_thread_state(const struct python_process *python,
						 struct task_struct *task)
{
	struct task_struct *thread = task ? task : bpf_get_current_task_btf();
	struct python_find_thread find = { .python = python, .task = task };
	__u64 thread_id = 0, *cached;
	__u32 tid = thread->pid;

	find.thread_pointer = thread->thread.fsbase;
	cached = bpf_map_lookup_elem(&python_threads, &tid);
	if (cached &&
	    python_read(task, &thread_id, 8, *cached + python->offsets.tstate_thread_id) &&
	    thread_id == find.thread_pointer)
		return *cached;
	count_stat(CPU_STAT_PYTHON_THREAD_SEARCHES);
	if (!python_read(task, &find.interp, 8, python->interp_head))
		return 0;
	bpf_loop(PYTHON_MAX_THREADS, python_find_thread_step, &find, 0);
	if (find.found)
		bpf_map_update_elem(&python_threads, &tid, &find.found, BPF_ANY);
	return find.found;
}

/*
 * Before the walk: whether pid runs CPython, and the thread's innermost
 * frame if so. A thread whose frames cannot be found gets a marker in
 * place of each activation's.
 */
static __always_inline void python_walk_start(struct python_walk *walk,
					      const struct python_process *python,
					      struct task_struct *task)
{
	const struct python_offsets *offsets = &python->offsets;
	__u64 tstate, frame = 0;

	walk->status = PYTHON_WALK_OFF;
	walk->activation_sp = 0;
	walk->emitting = 0;
	walk->frames = 0;
	if (!python)
		return;
	tstate = python_thread_state(python, task);
	if (!tstate) {
		count_stat(CPU_STAT_PYTHON_THREAD_NOT_FOUND);
		walk->status = PYTHON_WALK_FAILED;
		walk->reason = PYTHON_UNREADABLE_THREAD;
		return;
	}
	if (!python_read(task, &frame, 8, tstate + offsets->tstate_frame) ||
	    (offsets->cframe_current_frame != PYTHON_NO_OFFSET && frame &&
	     !python_read(task, &frame, 8, frame + offsets->cframe_current_frame))) {
		count_stat(CPU_STAT_PYTHON_READ_FAILED);
		walk->status = PYTHON_WALK_FAILED;
		walk->reason = PYTHON_UNREADABLE_READ;
		return;
	}
	walk->frame = frame;
	walk->status = PYTHON_WALK_READY;
}

static __always_inline bool python_in_evaluator(const struct python_process *python, __u64 pc)
{
	return (pc >= python->eval_start && pc < python->eval_end) ||
	       (pc >= python->cold_start && pc < python->cold_end);
}

/* Appends a tagged frame; false when the stack is full (the walk ends there). */
static __always_inline bool python_append(struct user_unwind_state *state, __u64 address)
{
	__u32 count = state->trace.frame_count;

	if (count >= MAX_USER_STACK_DEPTH)
		return false;
	state->trace.addresses[count & (MAX_USER_STACK_DEPTH - 1)] = address;
	state->trace.frame_count = count + 1;
	return true;
}

static __always_inline __u64 python_field(const struct python_walk *walk, __u16 offset)
{
	__u64 value = 0;

	if (offset > PYTHON_FRAME_READ_MAX - 8)
		return 0;
	__builtin_memcpy(&value, &walk->buffer[offset & (PYTHON_FRAME_READ_MAX - 1)], 8);
	return value;
}

/* The frame's index in code units; negative: an incomplete frame, not begun (3.11+). */
static __always_inline __s64 python_instr_index(const struct python_walk *walk,
						const struct python_process *python, __u64 code)
{
	__u64 value = python_field(walk, python->offsets.frame_instr);
	__s32 lasti = (__s32)value;

	switch (python->instr_kind) {
	case PYTHON_INSTR_LASTI_BYTES:
		return lasti < 0 ? 0 : (__u32)lasti / 2;
	case PYTHON_INSTR_LASTI_UNITS:
		return lasti < 0 ? 0 : lasti;
	default:
		if (value < code + python->offsets.code_adaptive)
			return -1;
		return (value - code - python->offsets.code_adaptive) / 2;
	}
}

/*
 * Takes the next frame of the activation: appends it, or skips it (a
 * frame not begun; 3.12+: the C stack's frame that ends the activation).
 */
static __always_inline long python_take_frame(struct user_unwind_state *state,
					      const struct python_process *python,
					      struct task_struct *task)
{
	struct python_walk *walk = &state->python;
	const struct python_offsets *offsets = &python->offsets;
	__u32 size = offsets->frame_read;
	__u64 frame = walk->frame, code, address;
	__s64 index;

	if (!frame) {
		/* More activations than frames: the chain ended before the stack. */
		count_stat(CPU_STAT_PYTHON_CHAIN_ENDED);
		walk->emitting = 0;
		return PYTHON_STEP_CONTINUE;
	}
	if (size > PYTHON_FRAME_READ_MAX)
		size = PYTHON_FRAME_READ_MAX;
	if (!python_read(task, walk->buffer, size, frame)) {
		count_stat(CPU_STAT_PYTHON_READ_FAILED);
		walk->status = PYTHON_WALK_FAILED;
		walk->reason = PYTHON_UNREADABLE_READ;
		walk->emitting = 0;
		return python_append(state, PYTHON_FRAME(0, PYTHON_UNREADABLE_READ))
			       ? PYTHON_STEP_CONTINUE
			       : end_walk(state, STACK_END_DEPTH);
	}
	walk->frame = python_field(walk, offsets->frame_previous);
	switch (python->frame_kind) {
	case PYTHON_FRAMES_OBJECTS:
		walk->emitting = 0;
		break;
	case PYTHON_FRAMES_IS_ENTRY:
		if (walk->buffer[offsets->frame_is_entry & (PYTHON_FRAME_READ_MAX - 1)])
			walk->emitting = 0;
		break;
	default:
		if (walk->buffer[offsets->frame_owner & (PYTHON_FRAME_READ_MAX - 1)] ==
		    PYTHON_OWNED_BY_CSTACK) {
			walk->emitting = 0;
			return PYTHON_STEP_CONTINUE;
		}
	}
	code = python_field(walk, offsets->frame_code);
	if (!code || (code & 7) || code >= (1ULL << 47)) {
		count_stat(CPU_STAT_PYTHON_BAD_CODE);
		address = PYTHON_FRAME_TAG | ((__u64)PYTHON_UNREADABLE_CODE << PYTHON_INDEX_SHIFT);
		goto append;
	}
	index = python_instr_index(walk, python, code);
	if (index < 0) {
		count_stat(CPU_STAT_PYTHON_INCOMPLETE);
		return PYTHON_STEP_CONTINUE;
	}
	if (index > PYTHON_INDEX_MAX) {
		count_stat(CPU_STAT_PYTHON_INDEX_CLAMPED);
		index = PYTHON_INDEX_MAX;
	}
	address = PYTHON_FRAME(code, index);
	walk->frames++;
	count_stat(CPU_STAT_PYTHON_FRAMES);
append:
	return python_append(state, address) ? PYTHON_STEP_CONTINUE
					     : end_walk(state, STACK_END_DEPTH);
}

/*
 * The Python part of one unwinder iteration, before its native step. An
 * iteration at an evaluator's frame starts its activation; the next ones
 * take its Python frames, one each; then the same frame comes again and
 * its native step is taken, its address replaced by the frames taken.
 */
static __always_inline long python_unwind_step(struct user_unwind_state *state,
					       const struct python_process *python,
					       struct task_struct *task)
{
	struct python_walk *walk = &state->python;

	if (!python || walk->status == PYTHON_WALK_OFF)
		return PYTHON_STEP_NATIVE;
	if (walk->emitting)
		return python_take_frame(state, python, task);
	if (!python_in_evaluator(python, state->pc - state->return_address))
		return PYTHON_STEP_NATIVE;
	if (walk->activation_sp == state->sp && walk->activation_pc == state->pc)
		return walk->frames != walk->activation_start ? PYTHON_STEP_REPLACED
							      : PYTHON_STEP_NATIVE;
	walk->activation_sp = state->sp;
	walk->activation_pc = state->pc;
	walk->activation_start = walk->frames;
	if (walk->status == PYTHON_WALK_FAILED) {
		/* The evaluator's frame stays, after a marker that says why its frames do not. */
		if (!python_append(state,
				   PYTHON_FRAME_TAG | ((__u64)walk->reason << PYTHON_INDEX_SHIFT)))
			return end_walk(state, STACK_END_DEPTH);
		return PYTHON_STEP_CONTINUE;
	}
	walk->emitting = 1;
	return PYTHON_STEP_CONTINUE;
}

#endif /* KILN_PYTHON_BPF_H */
