/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DWARF CFI unwinder for user stacks: walks frames from the sampled
 * registers with the tables the agent builds (bpf/unwind.h), in a bpf_loop
 * of up to UNWIND_MAX_FRAMES steps. Code without a table (JIT, anonymous
 * memory) or without CFI rows (assembly) is walked with frame pointers.
 *
 * Included by BPF programs that need user stacks; they provide count_stat().
 */
#ifndef KILN_UNWIND_BPF_H
#define KILN_UNWIND_BPF_H

#include "bpf/cpu.h"
#include "bpf/python.h"

/* Offsets in the ucontext a signal trampoline's rsp points at (x86-64 sigcontext). */
#define UCONTEXT_RBP 120
#define UCONTEXT_RBX 128
#define UCONTEXT_RSP 160
#define UCONTEXT_RIP 168
/*
 * The user stack is copied a page at a time, when a frame first needs that
 * page: one read per page instead of one or two per frame (each
 * bpf_probe_read_user costs ~175 ns here). Whole pages, because a read that
 * runs past the stack's end faults, and a fault costs microseconds.
 */
#define STACK_COPY_PAGES 4
#define PAGE_SIZE_BYTES 4096
#define STACK_COPY_SIZE (STACK_COPY_PAGES * PAGE_SIZE_BYTES)
/* How often a process may ask the agent to re-read its mappings. */
#define REFRESH_INTERVAL_NS 1000000000ULL

/* One table: element 0 the chunk index, elements 1.. chunks of rows. Sized by the agent. */
struct unwind_table_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_chunk);
};

/* Table id -> table. Memory is the tables' own: rows * 8 bytes plus a 4 KiB index each. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__array(values, struct unwind_table_map);
} unwind_tables SEC(".maps");

/* pid -> its executable mappings; ~6 KiB a process, allocated as used (--max-processes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct process_unwind);
} process_unwind SEC(".maps");

/* File identity -> its table, for the kernel's own fill (UNWIND_MAX_FILES; written by the agent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, UNWIND_MAX_FILES);
	__type(key, struct unwind_file_key);
	__type(value, struct unwind_file);
} unwind_files SEC(".maps");

/* Processes whose entry is marked PROCESS_UNWIND_EXITED: the agent deletes them after a window. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, UNWIND_MAX_EXITED);
	__type(key, __u32);
	__type(value, __u8);
} exited_processes SEC(".maps");

/*
 * pid -> the entry of the image its last exec replaced (UNWIND_MAX_REPLACED),
 * kept until the agent's sweep after the window that may hold its samples.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, UNWIND_MAX_REPLACED);
	__type(key, __u32);
	__type(value, struct process_unwind);
} replaced_images SEC(".maps");

struct user_unwind_state {
	__u64 pc;
	__u64 sp;
	__u64 bp;
	__u64 bx; /* for ld.so's trampolines, whose CFA is rbx-based (UNWIND_CFA_RBX) */
	__u32 pid;
	__u32 return_address; /* pc is a return address: look it up at pc - 1 */
	__u32 bp_known; /* false once a frame's CFI could not restore rbp */
	__u32 pages_copied; /* bit i: page i of stack_copy holds user memory */
	__u32 pc_trusted; /* pc is the sampled one or came from CFI, not a frame-pointer guess */
	__u32 bx_known; /* false once a frame's CFI could not restore rbx */
	__u64 stack_base; /* user address of stack_copy[0]: the page of the sampled rsp */
	struct stack_trace trace;
	struct python_walk python; /* CPython's frames, put where its evaluator's are */
	__u8 stack_copy[STACK_COPY_SIZE];
};

/* 2 KiB of frames: per CPU, not on the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct user_unwind_state);
} unwind_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_row_cache);
} unwind_row_cache SEC(".maps");

struct unwind_loop {
	struct user_unwind_state *state;
	struct process_unwind *process; /* NULL: frame pointers only */
	struct unwind_row_cache *cache; /* NULL: no cache */
	struct task_struct *task; /* whose stack; NULL: the current task's */
	const struct python_process *python; /* NULL: no CPython known in the process */
};

/*
 * The binary searches are global functions: the verifier checks each once,
 * on its own, instead of once per path of the caller.
 */
__noinline int find_mapping(const struct process_unwind *process, __u64 pc)
{
	__u32 lo = 0, hi;

	if (!process)
		return -1;
	hi = process->mapping_count;
	if (hi > UNWIND_MAX_MAPPINGS)
		hi = UNWIND_MAX_MAPPINGS;
	/* The last mapping starting at or below pc. */
	for (int step = 0; step < 8 && lo < hi; step++) {
		__u32 mid = (lo + hi) / 2;

		if (mid >= UNWIND_MAX_MAPPINGS)
			return -1;
		if (process->mappings[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || lo > UNWIND_MAX_MAPPINGS)
		return -1;
	if (pc >= process->mappings[lo - 1].end)
		return -1;
	return lo - 1;
}

/* The last chunk whose first pc <= pc; padded slots hold UNWIND_PC_PAD. */
__noinline int find_chunk(const struct unwind_index *index, __u32 pc)
{
	__u32 lo = 0;

	if (!index || index->first_pc[0] > pc)
		return -1;
	for (__u32 step = UNWIND_MAX_CHUNKS / 2; step > 0; step /= 2) {
		__u32 probe = (lo + step) & (UNWIND_MAX_CHUNKS - 1);

		if (index->first_pc[probe] <= pc)
			lo = probe;
	}
	return lo;
}

/* The last row whose pc <= pc in a chunk that starts at or below pc. */
__noinline int find_row(const struct unwind_chunk *chunk, __u32 pc)
{
	__u32 lo = 0;

	if (!chunk)
		return -1;
	for (__u32 step = UNWIND_CHUNK_ROWS / 2; step > 0; step /= 2) {
		__u32 probe = (lo + step) & (UNWIND_CHUNK_ROWS - 1);

		if (chunk->rows[probe].pc <= pc)
			lo = probe;
	}
	return lo;
}

static __always_inline void request_refresh(struct process_unwind *process, __u32 pid)
{
	struct process_event *event;
	__u64 now = bpf_ktime_get_ns();

	if (now - process->refresh_requested_ns < REFRESH_INTERVAL_NS)
		return;
	process->refresh_requested_ns = now;
	event = bpf_ringbuf_reserve(&process_events, sizeof(*event), 0);
	if (!event)
		return;
	event->pid = pid;
	event->kind = PROCESS_EVENT_MAPPINGS_CHANGED;
	bpf_ringbuf_submit(event, 0);
	count_stat(CPU_STAT_UNWIND_REFRESH_REQUESTS);
}

/*
 * Another task's memory can only be read by a sleepable program (a task
 * iterator at the end of a window); for the current task the plain read is
 * cheaper and allowed everywhere.
 */
static __always_inline long read_user(struct task_struct *task, void *dst, __u32 size, __u64 addr)
{
	if (task)
		return bpf_copy_from_user_task(dst, size, (void *)addr, task, 0);
	return bpf_probe_read_user(dst, size, (void *)addr);
}

/* Reads 8 bytes of user stack, through the page copies when it can. */
static __always_inline long read_stack(struct user_unwind_state *state, struct task_struct *task,
				       __u64 addr, __u64 *value)
{
	__u64 offset = addr - state->stack_base;
	__u32 page = offset / PAGE_SIZE_BYTES;

	if (addr < state->stack_base || offset > STACK_COPY_SIZE - 8 ||
	    (offset & (PAGE_SIZE_BYTES - 1)) > PAGE_SIZE_BYTES - 8)
		return read_user(task, value, 8, addr);
	page &= STACK_COPY_PAGES - 1;
	if (!(state->pages_copied & (1u << page))) {
		if (read_user(task, &state->stack_copy[page * PAGE_SIZE_BYTES], PAGE_SIZE_BYTES,
			      state->stack_base + page * PAGE_SIZE_BYTES))
			return -1;
		state->pages_copied |= 1u << page;
	}
	offset &= STACK_COPY_SIZE - 1;
	if (offset > STACK_COPY_SIZE - 8)
		return -1;
	__builtin_memcpy(value, &state->stack_copy[offset], 8);
	return 0;
}

/* Ends the walk; returns 1 so bpf_loop stops. */
static __always_inline long end_walk(struct user_unwind_state *state, __u32 end)
{
	state->trace.end = end;
	if (end != STACK_END_COMPLETE)
		count_stat(CPU_STAT_UNWIND_END_DEPTH + end - STACK_END_DEPTH);
	return 1;
}

/*
 * Whether rbp can be a frame pointer: a register that holds anything else (a
 * heap pointer, a counter) rarely falls 8-aligned within this distance above
 * rsp, while JIT and assembly frames are far smaller.
 */
#define FRAME_POINTER_MAX_FRAME (256 * 1024)

static __always_inline bool frame_pointer_plausible(const struct user_unwind_state *state)
{
	return state->bp >= state->sp && state->bp - state->sp <= FRAME_POINTER_MAX_FRAME &&
	       !(state->bp & 7);
}

/*
 * CPython's perf trampolines (python -X perf, 3.12 and 3.13): one copy per
 * Python function, in anonymous memory, of "sub $8, %rsp; call *%rcx;
 * add $8, %rsp; ret", with neither CFI nor a frame pointer, so rbp is
 * whatever the C code around it keeps there. Recognised by their bytes
 * around the return address: the 8 from 6 before it, then 3 more.
 */
#define PYTHON_TRAMPOLINE_CODE 0x8348d1ff08ec8348ULL /* 48 83 ec 08 ff d1 | 48 83 */
#define PYTHON_TRAMPOLINE_CODE_END 0xc308c4ULL /* c4 08 c3 */

/*
 * Steps over a CPython trampoline that pc returns into: its caller's return
 * address is at rsp + 8. Only tried where a frame-pointer step cannot go, so
 * other JIT code costs no read of its instructions.
 */
static __always_inline bool python_trampoline_step(struct user_unwind_state *state,
						   struct task_struct *task,
						   const struct process_unwind *process)
{
	__u64 code[2], caller;

	if (!state->return_address || !process ||
	    read_user(task, code, sizeof(code), state->pc - 6) ||
	    code[0] != PYTHON_TRAMPOLINE_CODE || (code[1] & 0xffffff) != PYTHON_TRAMPOLINE_CODE_END)
		return false;
	if (read_stack(state, task, state->sp + 8, &caller) || find_mapping(process, caller) < 0)
		return false;
	count_stat(CPU_STAT_UNWIND_PYTHON_TRAMPOLINES);
	state->pc = caller;
	state->sp += 16;
	state->pc_trusted = 0;
	return true;
}

/*
 * One frame-pointer step: for code without a table (JIT, anonymous memory)
 * or, without_cfi, for a pc in a file's code that no CFI row covers (V8's
 * builtins in node's .text, hand-written assembly), after which CFI takes
 * over again. It is taken only if the chain is sane: rbp plausible and the
 * return address it saved in one of the process's executable mappings (when
 * they are known); otherwise the walk ends there rather than with frames
 * made of whatever rbp pointed at.
 */
static __always_inline long frame_pointer_step(struct user_unwind_state *state,
					       struct task_struct *task,
					       const struct process_unwind *process,
					       bool without_cfi)
{
	__u32 refused = without_cfi ? STACK_END_NO_CFI : STACK_END_NO_RBP;
	__u64 frame[2]; /* saved rbp, return address */

	/*
	 * _start clears rbp. In a file's code without CFI, rbp 0 is as likely a
	 * register in use: that stack is not called complete.
	 */
	if (!state->bp_known || (!state->bp && !without_cfi)) {
		if (!without_cfi && python_trampoline_step(state, task, process))
			return 0;
		return end_walk(state, state->bp_known ? STACK_END_COMPLETE : refused);
	}
	if (!frame_pointer_plausible(state))
		goto broken;
	if (read_stack(state, task, state->bp, &frame[0]) ||
	    read_stack(state, task, state->bp + 8, &frame[1]))
		return end_walk(state, without_cfi ? STACK_END_NO_CFI : STACK_END_BAD_READ);
	if (!frame[1] && !without_cfi)
		return end_walk(state, STACK_END_COMPLETE);
	if (process && find_mapping(process, frame[1]) < 0)
		goto broken;
	count_stat(without_cfi ? CPU_STAT_UNWIND_FP_MIXED_FRAMES : CPU_STAT_UNWIND_FP_FRAMES);
	state->bx_known = 0; /* a frame without CFI may have saved and reused it anywhere */
	state->sp = state->bp + 16;
	state->bp = frame[0];
	state->pc = frame[1];
	state->return_address = 1;
	state->pc_trusted = 0;
	return 0;

broken:
	if (!without_cfi && python_trampoline_step(state, task, process))
		return 0;
	count_stat(CPU_STAT_UNWIND_FP_CHAIN_BROKEN);
	return end_walk(state, refused);
}

/* The caller's rbx by a row's rule (enum unwind_rbx_rule); nonzero when it cannot be read. */
static __always_inline long restore_rbx(struct user_unwind_state *state, struct task_struct *task,
					const struct unwind_row *row, __u64 cfa)
{
	__s64 slot = row->rbp_offset;

	switch (UNWIND_RBX_RULE(row->rules)) {
	case UNWIND_RBX_SAME:
		return 0;
	case UNWIND_RBX_BELOW_RBP:
		slot -= 1;
		break;
	case UNWIND_RBX_OFFSET:
		break;
	default:
		state->bx_known = 0;
		return 0;
	}
	if (read_stack(state, task, cfa + slot * 8, &state->bx))
		return -1;
	state->bx_known = 1;
	return 0;
}

#include "bpf/python.bpf.h"

static long unwind_step(__u32 iteration, void *data)
{
	struct unwind_loop *loop = data;
	struct user_unwind_state *state = loop->state;
	struct process_unwind *process = loop->process;
	struct unwind_row_cache *cache = loop->cache;
	struct task_struct *task = loop->task;
	struct unwind_cached_row *cached = NULL;
	const struct unwind_chunk *index, *chunk;
	const struct unwind_mapping *mapping;
	struct unwind_row row;
	__u32 count, zero = 0, chunk_key;
	__u64 cfa, lookup_pc, key;
	void *table;
	long python;
	int found;

	if (!state)
		return 1;
	python = python_unwind_step(state, loop->python, task);
	if (python == PYTHON_STEP_CONTINUE || python == PYTHON_STEP_STOP)
		return python;
	count = state->trace.frame_count;
	if (count >= MAX_USER_STACK_DEPTH)
		return end_walk(state, STACK_END_DEPTH);
	if (python == PYTHON_STEP_NATIVE) {
		state->trace.addresses[count & (MAX_USER_STACK_DEPTH - 1)] = state->pc;
		state->trace.frame_count = count + 1;
	}
	if (!process)
		return frame_pointer_step(state, task, NULL, false);

	key = state->pc * 2 + state->return_address;
	if (cache) {
		cached = &cache->entries[(key ^ (key >> 11) ^ state->pid) &
					 (UNWIND_ROW_CACHE_SIZE - 1)];
		if (cached->pc == key && cached->pid == state->pid &&
		    cached->generation == process->generation) {
			row = cached->row;
			goto apply_row;
		}
	}

	found = find_mapping(process, state->pc);
	if (found < 0) {
		/* A library loaded since (dlopen), unless a frame-pointer guess went astray. */
		if (state->pc_trusted)
			request_refresh(process, state->pid);
		return end_walk(state, STACK_END_NO_MAPPING);
	}
	mapping = &process->mappings[found & (UNWIND_MAX_MAPPINGS - 1)];
	if (!mapping->table_id || mapping->table_id == UNWIND_TABLE_NONE) {
		/*
		 * A file whose table the agent did not place (it could not open
		 * the file as it read the mappings, a library caught mid-dlopen):
		 * its mappings are asked for again, at most once a second.
		 */
		if (!mapping->table_id && mapping->inode && state->pc_trusted)
			request_refresh(process, state->pid);
		return frame_pointer_step(state, task, process, false);
	}
	table = bpf_map_lookup_elem(&unwind_tables, &mapping->table_id);
	if (!table) {
		count_stat(CPU_STAT_UNWIND_TABLE_MISSING);
		return frame_pointer_step(state, task, process, false);
	}
	lookup_pc = state->pc - mapping->load_bias - state->return_address;
	if (lookup_pc >= UNWIND_PC_PAD)
		return frame_pointer_step(state, task, process, true);
	index = bpf_map_lookup_elem(table, &zero);
	found = find_chunk((const struct unwind_index *)index, lookup_pc);
	if (found < 0)
		return frame_pointer_step(state, task, process, true);
	chunk_key = found + 1;
	chunk = bpf_map_lookup_elem(table, &chunk_key);
	found = find_row(chunk, lookup_pc);
	if (!chunk || found < 0)
		return frame_pointer_step(state, task, process, true);
	row = chunk->rows[found & (UNWIND_CHUNK_ROWS - 1)];
	if (cached) {
		cached->pc = key;
		cached->pid = state->pid;
		cached->generation = process->generation;
		cached->row = row;
	}

apply_row:
	switch (UNWIND_CFA_RULE(row.rules)) {
	case UNWIND_CFA_RSP:
		cfa = state->sp + row.cfa_offset;
		break;
	case UNWIND_CFA_RBP:
		if (!state->bp_known)
			return end_walk(state, STACK_END_NO_RBP);
		cfa = state->bp + row.cfa_offset;
		break;
	case UNWIND_CFA_PLT:
		cfa = state->sp + 8 + (((state->pc & 15) >= row.cfa_offset) ? 8 : 0);
		break;
	case UNWIND_CFA_RBX:
		if (!state->bx_known) {
			count_stat(CPU_STAT_UNWIND_RBX_LOST);
			return end_walk(state, STACK_END_UNSUPPORTED);
		}
		cfa = state->bx + row.cfa_offset;
		break;
	case UNWIND_CFA_SIGNAL: {
		/* The interrupted context, saved by the kernel in the ucontext at rsp. */
		__u64 sp = state->sp;

		if (read_stack(state, task, sp + UCONTEXT_RIP, &state->pc) ||
		    read_stack(state, task, sp + UCONTEXT_RBP, &state->bp) ||
		    read_stack(state, task, sp + UCONTEXT_RBX, &state->bx) ||
		    read_stack(state, task, sp + UCONTEXT_RSP, &state->sp))
			return end_walk(state, STACK_END_BAD_READ);
		state->return_address = 0; /* an exact pc, not after a call */
		state->bp_known = 1;
		state->bx_known = 1;
		state->pc_trusted = 1;
		return 0;
	}
	case UNWIND_CFA_END:
		return end_walk(state, STACK_END_COMPLETE);
	case UNWIND_CFA_NONE:
		return frame_pointer_step(state, task, process, true);
	default:
		return end_walk(state, STACK_END_UNSUPPORTED);
	}

	if (read_stack(state, task, cfa - 8, &state->pc))
		return end_walk(state, STACK_END_BAD_READ);
	/* rbx first: UNWIND_RBX_BELOW_RBP reads row.rbp_offset, not the rbp it restores. */
	if (restore_rbx(state, task, &row, cfa))
		return end_walk(state, STACK_END_BAD_READ);
	switch (UNWIND_RBP_RULE(row.rules)) {
	case UNWIND_RBP_OFFSET:
		if (read_stack(state, task, cfa + (__s64)row.rbp_offset * 8, &state->bp))
			return end_walk(state, STACK_END_BAD_READ);
		state->bp_known = 1;
		break;
	case UNWIND_RBP_SAME:
		break;
	default:
		state->bp_known = 0;
	}
	state->sp = cfa;
	state->return_address = 1;
	state->pc_trusted = 1;
	return state->pc ? 0 : end_walk(state, STACK_END_COMPLETE);
}

/*
 * The current task's user registers as saved on its entry into the kernel.
 * Returns false for kernel threads, which have no user stack.
 */
static __always_inline bool saved_user_registers(__u64 *pc, __u64 *sp, __u64 *bp, __u64 *bx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;

	if (!task->mm)
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	*pc = BPF_CORE_READ(regs, ip);
	*sp = BPF_CORE_READ(regs, sp);
	*bp = BPF_CORE_READ(regs, bp);
	*bx = BPF_CORE_READ(regs, bx);
	return true;
}

/* pid's entry, unless it is a process that exited (its pid may be another's now). */
static __always_inline struct process_unwind *find_process_unwind(__u32 pid)
{
	struct process_unwind *process = bpf_map_lookup_elem(&process_unwind, &pid);

	if (process && (process->flags & PROCESS_UNWIND_EXITED))
		return NULL;
	return process;
}

/*
 * Unwinds a user stack from the given registers into state->trace: the
 * current task's (task NULL), or, from a sleepable program, another's.
 * Without the process's tables the current task's walk gives up (NULL: the
 * caller falls back to the kernel's frame-pointer walk, which is cheaper);
 * another task's is walked with frame pointers.
 */
static __always_inline struct stack_trace *unwind_stack_into(struct user_unwind_state *state,
							     struct unwind_row_cache *cache,
							     struct task_struct *task, __u32 pid,
							     __u64 pc, __u64 sp, __u64 bp, __u64 bx)
{
	struct unwind_loop loop = { .state = state, .cache = cache, .task = task };
	__u64 start = bpf_ktime_get_ns();

	loop.process = find_process_unwind(pid);
	loop.python = bpf_map_lookup_elem(&python_processes, &pid);
	if (!loop.process) {
		count_stat(CPU_STAT_UNWIND_NOT_READY);
		if (!task)
			return NULL;
	}
	state->pc = pc;
	state->sp = sp;
	state->bp = bp;
	state->bx = bx;
	state->pid = pid;
	state->return_address = 0;
	state->bp_known = 1;
	state->bx_known = 1;
	state->pc_trusted = 1;
	state->stack_base = state->sp & ~(__u64)(PAGE_SIZE_BYTES - 1);
	state->pages_copied = 0;
	state->trace.frame_count = 0;
	state->trace.end = STACK_END_DEPTH;
	count_stat(CPU_STAT_UNWIND_SAMPLES);
	python_walk_start(&state->python, loop.python, task);
	/* Python's take one iteration each, and one more per activation and skipped frame. */
	bpf_loop(2 * MAX_USER_STACK_DEPTH + 1, unwind_step, &loop, 0);
	if (state->python.frames)
		count_stat(CPU_STAT_PYTHON_STACKS);
	if (state->trace.end == STACK_END_COMPLETE)
		count_stat(CPU_STAT_UNWIND_COMPLETE);
	add_stat(CPU_STAT_UNWIND_NS, bpf_ktime_get_ns() - start);
	return &state->trace;
}

extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
				 __u64 addr) __ksym __weak;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym __weak;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym __weak;

#define VM_EXEC 0x00000004
#ifndef ENOENT
#define ENOENT 2 /* vmlinux.h carries no macros */
#endif
#define FILL_GENERATION_BIT 0x80000000u /* kernel-made generations never equal the agent's */

/*
 * One executable VMA as a mapping: which file, and its table when the agent
 * has one for that file (else PROCESS_UNWIND_UNTABLED goes into *flags).
 * The vDSO has no file: it is the identity { 0, 0 }.
 */
static __always_inline void fill_mapping(struct unwind_mapping *mapping, struct vm_area_struct *vma,
					 __u64 vdso, __u32 *flags)
{
	struct unwind_file_key key = {};
	struct unwind_file *file;
	struct inode *inode;

	mapping->start = vma->vm_start;
	mapping->end = vma->vm_end;
	mapping->file_offset = (__u64)vma->vm_pgoff * PAGE_SIZE_BYTES;
	mapping->load_bias = 0;
	mapping->table_id = 0;
	mapping->inode = 0;
	mapping->dev = 0;
	if (vma->vm_file) {
		inode = vma->vm_file->f_inode;
		key.inode = mapping->inode = inode->i_ino;
		key.dev = mapping->dev = inode->i_sb->s_dev;
	} else if (vma->vm_start != vdso) {
		return; /* anonymous code (JIT): frame pointers, as the agent does */
	}
	file = bpf_map_lookup_elem(&unwind_files, &key);
	if (!file) {
		count_stat(CPU_STAT_FILL_NO_TABLE);
		*flags |= PROCESS_UNWIND_UNTABLED;
		return;
	}
	mapping->table_id = file->table_id;
	mapping->load_bias = mapping->start - mapping->file_offset - file->vaddr_minus_offset;
}

/*
 * Fills pid's entry from the current task's VMAs (sorted by address, as the
 * iterator walks them) and the tables the agent has by file identity, so a
 * process of known files is unwound from its first sample, before the agent
 * has read its maps. Process context only: the VMA iterator refuses a
 * context with IRQs disabled, as a perf-event program's. An entry already
 * there wins (BPF_NOEXIST) unless replace says otherwise: the agent's, from
 * /proc/PID/maps, knows more, and a walk that finds a pc in none of its
 * mappings asks the agent to read them again.
 * entry is scratch space; flags go into the new entry. Returns whether pid has an entry now.
 */
enum fill_replace {
	FILL_KEEP, /* any entry there stays */
	FILL_REPLACE_KERNEL, /* one the kernel made is filled again */
	FILL_REPLACE_ANY, /* the agent's too: read from /proc before the libraries were mapped */
};

static __always_inline bool fill_process_unwind(struct process_unwind *entry, __u32 pid,
						__u32 flags, enum fill_replace replace)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct process_unwind *existing = find_process_unwind(pid);
	struct bpf_iter_task_vma vmas;
	struct vm_area_struct *vma;
	__u64 update = BPF_NOEXIST;
	__u32 count;
	__u64 vdso;
	long err;

	if (existing && (replace == FILL_KEEP || (replace == FILL_REPLACE_KERNEL &&
						  (existing->flags & PROCESS_UNWIND_BY_AGENT))))
		return true;
	if (existing)
		update = BPF_EXIST;
	else /* An exited process's, kept for the agent: this is a new process with its pid. */
		bpf_map_delete_elem(&process_unwind, &pid);
	if (!task->mm)
		return false;
	vdso = (__u64)task->mm->context.vdso;
	/*
	 * The count lives in the map value, not in a register: the verifier
	 * does not track it there, so every iteration looks alike to it and
	 * the loop is checked once, not once per mapping.
	 */
	entry->mapping_count = 0;
	entry->flags = flags;
	bpf_iter_task_vma_new(&vmas, task, 0);
	while ((vma = bpf_iter_task_vma_next(&vmas))) {
		count = entry->mapping_count;
		if (!(vma->vm_flags & VM_EXEC))
			continue;
		if (count >= UNWIND_MAX_MAPPINGS) {
			count_stat(CPU_STAT_FILL_MAPPINGS_DROPPED);
			continue;
		}
		fill_mapping(&entry->mappings[count & (UNWIND_MAX_MAPPINGS - 1)], vma, vdso,
			     &entry->flags);
		entry->mapping_count = count + 1;
	}
	bpf_iter_task_vma_destroy(&vmas);
	/* The mm was busy (the iterator only trylocks it): the next sample tries again. */
	if (!entry->mapping_count) {
		count_stat(CPU_STAT_FILL_NO_VMAS);
		return false;
	}
	entry->generation = bpf_get_prandom_u32() | FILL_GENERATION_BIT;
	entry->padding = 0;
	entry->refresh_requested_ns = 0;
	err = bpf_map_update_elem(&process_unwind, &pid, entry, update);
	if (!err)
		count_stat(CPU_STAT_FILLED);
	else if (err != -EEXIST && err != -ENOENT)
		count_stat(CPU_STAT_FILL_MAP_FULL);
	/* -ENOENT: the process's entry went (it exited) while it was filled again. */
	return !err || err == -EEXIST;
}

/* The current task's user stack, in the per-CPU scratch space. */
static __always_inline struct stack_trace *unwind_user_stack(__u32 pid, __u64 pc, __u64 sp,
							     __u64 bp, __u64 bx)
{
	struct user_unwind_state *state;
	struct unwind_row_cache *cache;
	__u32 zero = 0;

	cache = bpf_map_lookup_elem(&unwind_row_cache, &zero);
	state = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!state || !cache)
		return NULL;
	return unwind_stack_into(state, cache, NULL, pid, pc, sp, bp, bx);
}

#define UPROBE_XOL_SLOT_BYTES 128 /* the kernel's slot per out-of-line instruction */

/*
 * A thread at a uprobe (kiln's own at the loader's hook, or anyone's) runs
 * a copy of the probed instruction in the [uprobes] page, which no table
 * covers and which a process's entry filled before the probe's first hit
 * lacks: a pc in its slot stands for the probed address.
 */
static __always_inline __u64 uprobe_original_pc(__u64 pc)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct uprobe_task *utask;
	__u64 slot;

	if (!bpf_core_field_exists(task->utask))
		return pc;
	utask = task->utask;
	if (!utask || !utask->active_uprobe)
		return pc;
	slot = utask->xol_vaddr;
	if (!slot || pc < slot || pc >= slot + UPROBE_XOL_SLOT_BYTES)
		return pc;
	return utask->vaddr + (pc - slot);
}

/* A perf-event sample's user stack: its registers, or the saved ones if it hit the kernel. */
static __always_inline struct stack_trace *
unwind_sampled_user_stack(struct bpf_perf_event_data *ctx, __u32 pid)
{
	__u64 pc, sp, bp, bx;

	if (sampled_in_user_mode(ctx)) {
		/* The registers are the user's. */
		pc = ctx->regs.ip;
		sp = ctx->regs.sp;
		bp = ctx->regs.bp;
		bx = ctx->regs.bx;
	} else if (!saved_user_registers(&pc, &sp, &bp, &bx)) {
		return NULL;
	}
	return unwind_user_stack(pid, uprobe_original_pc(pc), sp, bp, bx);
}

#endif /* KILN_UNWIND_BPF_H */
