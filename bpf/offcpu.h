/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by bpf/offcpu.bpf.c and the agent: per-task blocks, counters. */
#ifndef KILN_OFFCPU_H
#define KILN_OFFCPU_H

/* BPF programs take the kernel's types from vmlinux.h, included first. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "bpf/cpu.h"

/*
 * Counters of the off-CPU program, after the CPU_STAT_* ones its stack and
 * unwinding helpers count into (one stats map holds both).
 */
enum offcpu_stat {
	OFFCPU_STAT_SWITCHES = CPU_STAT__COUNT, /* sched_switch events seen */
	OFFCPU_STAT_BLOCKS, /* blocks of tracked threads that ended */
	OFFCPU_STAT_BLOCKED_NS, /* their total length, short ones included */
	OFFCPU_STAT_SHORT_BLOCKS, /* shorter than --off-cpu-min-block: no stack */
	OFFCPU_STAT_SHORT_NS,
	OFFCPU_STAT_RECORDED, /* blocks added to the counts map */
	OFFCPU_STAT_COUNTS_MAP_FULL, /* block lost entirely */
	OFFCPU_STAT_WINDOW_ENDED, /* stack stored in the previous window's buffer */
	OFFCPU_STAT_USER_STACK_UNKNOWN, /* not blocked in a syscall: user stack unknown */
	OFFCPU_STAT_STORAGE_FAILED, /* no task storage for a thread */
	OFFCPU_STAT_EARLIER_NS, /* parts of blocks before the window began: not charged */
	OFFCPU_STAT_STILL_BLOCKED, /* blocks under way at a window's end, charged so far */
	OFFCPU_STAT_REQUESTS_FULL, /* no room to ask for a user stack: taken as unknown */
	OFFCPU_STAT_TASK_WORK_FAILED, /* the kernel refused to run the user-stack task work */
	OFFCPU_STAT_BLOCKS_MAP_FULL, /* raw_tp hooks: no room for a thread's block */
	OFFCPU_STAT__END,
};

/*
 * Which kernel hooks gather off-CPU time, best first; the agent probes the
 * kernel for the first it offers.
 *  TASK_WORK: tp_btf sched_switch; a long block's user stack is taken by a
 *    task work that runs as the thread returns to user mode (kernel 6.18+).
 *  SYS_EXIT: tp_btf sched_switch; the user stack is taken at the syscall's
 *    exit tracepoint, which every syscall of the host then pays for.
 *  RAW_TP: raw_tp sched_switch and sys_exit, for kernels without BTF-typed
 *    tracepoints: blocks are kept in a hash map by thread id, and kernel
 *    stacks are taken when a thread leaves the CPU.
 */
enum offcpu_hooks {
	OFFCPU_HOOKS_TASK_WORK,
	OFFCPU_HOOKS_SYS_EXIT,
	OFFCPU_HOOKS_RAW_TP,
	OFFCPU_HOOKS__COUNT,
};

/* Threads with a long block at a time, in the maps that hold them by thread id. */
#define OFFCPU_MAX_THREADS 65536

enum block_flags {
	BLOCK_CAPTURED = 1 << 0, /* stacks taken when the thread left the CPU */
	BLOCK_PENDING = 1 << 1, /* ended; the user stack is taken on the way back to user mode */
};

/* One per thread, in task storage (freed with the thread) or, for raw_tp hooks, by thread id. */
struct block {
	__u64 start_ns; /* 0: not blocked */
	__u64 pending_ns; /* length of an ended block awaiting its user stack */
	__u64 user_stack_id;
	__u64 kernel_stack_id;
	__u64 saved_pc; /* user registers when it left the CPU */
	__u64 saved_sp;
	__u32 state; /* enum offcpu_state */
	__u32 flags; /* enum block_flags */
	__u32 buffer; /* the buffer its stacks were stored in */
	__u32 padding;
};

#endif /* KILN_OFFCPU_H */
