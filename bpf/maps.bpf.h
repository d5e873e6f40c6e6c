/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps every profiling program has alike: its two buffers of stacks and
 * counts (the agent drains one while the program fills the other), and those
 * the agent shares between programs (the --pid filter, the processes already
 * announced, the ring buffer that announces them). Included once per program.
 */
#ifndef KILN_MAPS_BPF_H
#define KILN_MAPS_BPF_H

#include "bpf/cpu.h"

/*
 * Stacks, keyed by the hash of their frames. Not preallocated: memory
 * follows the number of distinct stacks, up to max_entries (--max-stacks):
 * user stacks ~2 KiB each, kernel stacks ~1 KiB.
 */
struct user_stacks_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stack_trace);
};

struct kernel_stacks_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kernel_stack_trace);
};

/* Sample counts: 16384 entries * (24 + 40 + overhead) ~ 1.5 MiB a buffer. */
struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct sample_key);
	__type(value, struct sample_value);
};

struct user_stacks_map user_stacks_0 SEC(".maps");
struct user_stacks_map user_stacks_1 SEC(".maps");
struct kernel_stacks_map kernel_stacks_0 SEC(".maps");
struct kernel_stacks_map kernel_stacks_1 SEC(".maps");
struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");

/* --pid filter: thread group ids; sized by the agent to the number given. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/*
 * Processes a relabel rule dropped (the agent's process labels): neither
 * sampled nor unwound. Bounded: past it the agent counts the processes it
 * could not add, which are then sampled and left out of profiles only. An
 * exec takes a process out: its new program is relabeled.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_EXCLUDED_PROCESSES);
	__type(key, __u32);
	__type(value, __u8);
} excluded_processes SEC(".maps");

/* Processes already announced to the agent; LRU so it can never fill up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u8);
} known_processes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* 16k events of 16 bytes */
} process_events SEC(".maps");

/*
 * A sample of a process without mappings in the kernel yet, handed to a
 * task work that fills them and unwinds it (bpf/cpu.bpf.c), per thread;
 * deleted when the thread exits (bpf/process.bpf.h). Not preallocated:
 * 4096 * ~80 bytes at most.
 */
struct fill_request {
	struct bpf_task_work work;
	__u64 kernel_stack_id;
	__u32 buffer; /* the kernel stack's buffer */
	__u32 refills; /* the kernel's entry missed a mapping: its refills, this one included */
	char thread_comm[TASK_COMM_LEN];
	char process_comm[TASK_COMM_LEN];
};

#define FILL_MAX_THREADS 4096

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FILL_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct fill_request);
} fill_requests SEC(".maps");

/* Scratch space for a stack read with bpf_get_stack: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_trace);
} stack_scratch SEC(".maps");

#endif /* KILN_MAPS_BPF_H */
