/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by bpf/cpu.bpf.c and the agent: sample keys, stacks, counters. */
#ifndef KILN_CPU_H
#define KILN_CPU_H

#define TASK_COMM_LEN 16
/* The kernel's default perf_event_max_stack; deeper stacks are marked truncated. */
#define MAX_STACK_DEPTH 127

/*
 * Stack ids are 64-bit hashes of the frames. The smallest values are
 * reserved so that a sample whose stack was lost still says why.
 */
#define STACK_ID_NONE 0 /* no stack of this kind (kernel thread, user mode) */
#define STACK_ID_CAPTURE_FAILED 1 /* the stack could not be read */
#define STACK_ID_MAP_FULL 2 /* the stacks map was full */
#define STACK_ID_COLLISION 3 /* another stack had the same hash */
#define STACK_ID_FIRST_VALID 16

#define STACK_TRUNCATED 1 /* the walk stopped at MAX_STACK_DEPTH */

struct stack_trace {
	__u32 frame_count;
	__u32 flags; /* STACK_* */
	__u64 addresses[MAX_STACK_DEPTH]; /* leaf first */
};

/* One entry per distinct (process, thread, user stack, kernel stack). */
struct sample_key {
	__u32 pid; /* thread group id, as user space calls a process id */
	__u32 tid;
	__u64 user_stack_id;
	__u64 kernel_stack_id;
};

struct sample_value {
	__u64 count;
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
	CPU_STAT__COUNT,
};

enum process_event_kind {
	PROCESS_EVENT_NEW = 1, /* first sample of this process (or since its exec) */
};

struct process_event {
	__u32 pid;
	__u32 kind;
};

#endif /* KILN_CPU_H */
