/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by bpf/cpu.bpf.c and the agent: sample keys, stacks, counters. */
#ifndef KILN_CPU_H
#define KILN_CPU_H

/* BPF programs take the kernel's types from vmlinux.h, included first. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "bpf/unwind.h"

#define TASK_COMM_LEN 16
/* The kernel's default perf_event_max_stack, the most bpf_get_stack returns. */
#define MAX_STACK_DEPTH 127
/* User stacks unwound by kiln itself hold more. */
#define MAX_USER_STACK_DEPTH UNWIND_MAX_FRAMES

/*
 * Stack ids are 64-bit hashes of the frames. The smallest values are
 * reserved so that a sample whose stack was lost still says why.
 */
#define STACK_ID_NONE 0 /* no stack of this kind (kernel thread, user mode) */
#define STACK_ID_CAPTURE_FAILED 1 /* the stack could not be read */
#define STACK_ID_MAP_FULL 2 /* the stacks map was full */
#define STACK_ID_COLLISION 3 /* another stack had the same hash */
#define STACK_ID_WINDOW_ENDED 4 /* captured into the previous window's buffer */
#define STACK_ID_DEFERRED 5 /* BPF only: the sample went to a task work, recorded there */
#define STACK_ID_FIRST_VALID 16

/*
 * glibc's struct r_debug (<link.h>), which ld.so's _r_debug is: r_state,
 * after r_version, r_map and r_brk, is RT_CONSISTENT (0) once the list of
 * objects is stable again, RT_ADD or RT_DELETE while it changes.
 */
#define LOADER_R_STATE_OFFSET 24
#define LOADER_RT_CONSISTENT 0

/*
 * stack flags: why a stack ends where it does. Anything but
 * STACK_END_COMPLETE is shown in the profile as a final [truncated: ...]
 * frame (STACK_END_FRAME_POINTERS as [frame pointers: ...]); frame-pointer
 * stacks end unknown unless cut at the depth limit.
 */
enum stack_end {
	STACK_END_UNKNOWN = 0, /* frame pointers: the walk stopped, complete or not */
	STACK_END_COMPLETE, /* CFI marked the outermost frame */
	STACK_END_DEPTH, /* the stack had more frames than kept */
	STACK_END_NO_MAPPING, /* a pc in no known mapping */
	STACK_END_NO_CFI, /* a pc no CFI covers */
	STACK_END_UNSUPPORTED, /* CFI kiln cannot follow */
	STACK_END_BAD_READ, /* the stack could not be read */
	STACK_END_NO_RBP, /* the CFA needs an rbp that was lost */
	/* The process had no tables ready: the kernel's frame-pointer walk, callers may be missing */
	STACK_END_FRAME_POINTERS,
	STACK_END__COUNT,
};

/* Frames leaf first; kernel stacks use the first MAX_STACK_DEPTH. */
struct stack_trace {
	__u32 frame_count;
	__u32 end; /* enum stack_end */
	__u64 addresses[MAX_USER_STACK_DEPTH];
};

struct kernel_stack_trace {
	__u32 frame_count;
	__u32 end;
	__u64 addresses[MAX_STACK_DEPTH];
};

/*
 * One entry per distinct (process, thread, user stack, kernel stack, state).
 * CPU samples and off-CPU blocks share the layout; state is 0 for CPU.
 */
struct sample_key {
	__u32 pid; /* thread group id, as user space calls a process id */
	__u32 tid;
	__u64 user_stack_id;
	__u64 kernel_stack_id;
	__u32 state; /* enum offcpu_state */
	__u32 padding;
};

enum offcpu_state {
	OFFCPU_STATE_SLEEPING, /* waiting, interruptibly (S) */
	OFFCPU_STATE_UNINTERRUPTIBLE, /* waiting, uninterruptibly (D): disk I/O, some locks */
	OFFCPU_STATE_PREEMPTED, /* runnable, but another task got the CPU */
	OFFCPU_STATE__COUNT,
};

struct sample_value {
	__u64 count; /* CPU: samples; off-CPU: blocks */
	__u64 blocked_ns; /* off-CPU: time blocked */
	char thread_comm[TASK_COMM_LEN];
	char process_comm[TASK_COMM_LEN]; /* the thread group leader's comm */
};

/* Counters kept per CPU; the agent reports their increase every window. */
enum cpu_stat {
	CPU_STAT_SAMPLES, /* perf events handled */
	CPU_STAT_IDLE, /* the idle task was running: not recorded */
	CPU_STAT_FILTERED, /* not a --pid process */
	CPU_STAT_RECORDED, /* samples added to the counts map */
	CPU_STAT_KERNEL_STACK_FAILED,
	CPU_STAT_USER_STACK_FAILED,
	CPU_STAT_STACK_MAP_FULL,
	CPU_STAT_STACK_COLLISION,
	CPU_STAT_STACK_TRUNCATED,
	CPU_STAT_COUNTS_MAP_FULL, /* sample lost entirely */
	CPU_STAT_PROCESS_EVENTS, /* new processes announced to the agent */
	CPU_STAT_PROCESS_EVENTS_LOST, /* ring buffer full */
	CPU_STAT_EXECS,
	/* DWARF unwinding of user stacks, per sample or per frame as named */
	CPU_STAT_UNWIND_SAMPLES, /* user stacks unwound from CFI */
	CPU_STAT_UNWIND_COMPLETE, /* ... that reached the outermost frame */
	CPU_STAT_UNWIND_NOT_READY, /* process not yet known: frame pointers used */
	CPU_STAT_UNWIND_FP_FRAMES, /* frames in code without a table (JIT): frame pointers */
	CPU_STAT_UNWIND_TABLE_MISSING, /* table evicted or not loaded: frame pointers */
	CPU_STAT_UNWIND_END_DEPTH, /* one counter per stack_end reason that cut a stack */
	CPU_STAT_UNWIND_END_NO_MAPPING,
	CPU_STAT_UNWIND_END_NO_CFI,
	CPU_STAT_UNWIND_END_UNSUPPORTED,
	CPU_STAT_UNWIND_END_BAD_READ,
	CPU_STAT_UNWIND_END_NO_RBP,
	CPU_STAT_UNWIND_REFRESH_REQUESTS, /* asked the agent to re-read a process's mappings */
	CPU_STAT_USER_STACK_IN_EXEC, /* sampled inside execve: no user stack taken */
	CPU_STAT_UNWIND_FP_MIXED_FRAMES, /* frames in a file's code no CFI covers: frame pointers */
	CPU_STAT_UNWIND_FP_CHAIN_BROKEN, /* frame-pointer steps refused: rbp was no frame pointer */
	CPU_STAT_UNWIND_PYTHON_TRAMPOLINES, /* frames through CPython's perf trampolines (-X perf) */
	/*
	 * The kernel's own fill of a new process's mappings: a task work
	 * scheduled by the sample fills them and unwinds that sample.
	 */
	CPU_STAT_FILL_SCHEDULED, /* samples handed to a task work */
	CPU_STAT_FILL_BUSY, /* one still pending for the thread: frame pointers */
	CPU_STAT_FILL_FAILED, /* requests map full, or the kernel refused: frame pointers */
	CPU_STAT_FILLED, /* process entries the kernel filled */
	CPU_STAT_FILL_NO_TABLE, /* file mappings filled without a table: frame pointers there */
	CPU_STAT_FILL_MAPPINGS_DROPPED, /* beyond UNWIND_MAX_MAPPINGS */
	CPU_STAT_FILL_NO_VMAS, /* the VMAs could not be read (mm busy): not filled */
	CPU_STAT_FILL_MAP_FULL, /* process_unwind full: not filled */
	CPU_STAT_FILL_REFILLS, /* kernel entries filled again: a walk found a pc in none */
	CPU_STAT_FILL_LATE, /* recorded after the window ended: kernel stack dropped */
	CPU_STAT_FILL_LOST, /* thread exiting, or scratch busy: no user stack */
	CPU_STAT_FILL_NS, /* time in the task works and fills at the loader */
	CPU_STAT_EXITED_FULL, /* exited processes not queued for the sweep: map full */
	CPU_STAT_EXECS_PLACEABLE, /* execs of a file with a table already: not announced */
	CPU_STAT_UNWIND_RBX_LOST, /* cut in ld.so's trampoline: a callee's CFI lost rbx */
	CPU_STAT_REPLACED_FULL, /* images replaced by an exec not kept: map full */
	CPU_STAT_FILL_WHOLE, /* processes the kernel filled with a table for every file: not announced */
	CPU_STAT_FILL_AT_LOADER, /* fills at the dynamic loader's debugger hook (fill_at_loader) */
	CPU_STAT_FILL_AT_LOADER_BUSY, /* ... given up: the CPU's scratch space was in use */
	CPU_STAT_FILL_AT_LOADER_SKIPPED, /* calls with the loader's list changing: no fill */
	/* CPython's frames (bpf/python.bpf.h) */
	CPU_STAT_PYTHON_STACKS, /* user stacks with Python frames */
	CPU_STAT_PYTHON_FRAMES, /* Python frames put in them */
	CPU_STAT_PYTHON_THREAD_SEARCHES, /* thread states looked for among the threads */
	CPU_STAT_PYTHON_THREAD_NOT_FOUND, /* ... not found: [python: unreadable] */
	CPU_STAT_PYTHON_READ_FAILED, /* a thread state or frame unreadable: the same */
	CPU_STAT_PYTHON_BAD_CODE, /* a frame's code address no object's: the same */
	CPU_STAT_PYTHON_INCOMPLETE, /* frames not begun, skipped as CPython does */
	CPU_STAT_PYTHON_INDEX_CLAMPED, /* instruction index past 2^19 - 1: line of the last */
	CPU_STAT_PYTHON_CHAIN_ENDED, /* an evaluator activation with no frame left: native kept */
	CPU_STAT_UNWIND_NS, /* time in the CFI unwinder's walks, Python frames included */
	CPU_STAT__COUNT,
};

enum process_event_kind {
	PROCESS_EVENT_NEW = 1, /* first sample of this process (or since its exec) */
	PROCESS_EVENT_MAPPINGS_CHANGED, /* a pc in no known mapping: dlopen? */
	PROCESS_EVENT_EXEC, /* it just exec'd: build the tables of what it maps already */
};

/* Processes relabel rules dropped that BPF skips (excluded_processes). */
#define MAX_EXCLUDED_PROCESSES 4096

struct process_event {
	__u32 pid;
	__u32 kind;
};

#endif /* KILN_CPU_H */
