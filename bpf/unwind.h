/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * DWARF CFI unwind tables as the BPF unwinder reads them, shared with the
 * agent that builds them from .eh_frame / .debug_frame.
 */
#ifndef KILN_UNWIND_H
#define KILN_UNWIND_H

/*
 * The tables and their unwinder follow x86-64's registers (rip, rsp, rbp),
 * on both sides: the agent writes them, the BPF programs read them.
 */
#if defined(__bpf__) && !defined(__TARGET_ARCH_x86)
#error "kiln's BPF unwinder reads x86-64 registers: build with -D__TARGET_ARCH_x86"
#elif !defined(__bpf__) && !defined(__x86_64__)
#error "kiln unwinds x86-64 stacks only (rip, rsp, rbp): build it for x86_64"
#endif

/* BPF programs take the kernel's types from vmlinux.h, included first. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* User frames an unwound stack keeps. */
#define UNWIND_MAX_FRAMES 256
/* Executable mappings per process the unwinder knows. */
#define UNWIND_MAX_MAPPINGS 128

/*
 * A table is one BPF array map: element 0 is an index (the first pc of
 * every chunk), elements 1.. are chunks of rows sorted by pc. Unused index
 * slots and rows are padded with UNWIND_PC_PAD so both binary searches can
 * run a fixed number of steps. 1024 * 512 rows = 524288 rows at most.
 */
#define UNWIND_CHUNK_ROWS 512
#define UNWIND_MAX_CHUNKS 1024
#define UNWIND_PC_PAD 0xffffffffu

enum unwind_cfa_rule {
	UNWIND_CFA_NONE = 0, /* no CFI covers this pc (a gap between FDEs) */
	UNWIND_CFA_RSP, /* CFA = rsp + cfa_offset */
	UNWIND_CFA_RBP, /* CFA = rbp + cfa_offset */
	UNWIND_CFA_PLT, /* CFA = rsp + 8 + ((pc & 15) >= cfa_offset ? 8 : 0), the PLT's expression */
	UNWIND_CFA_SIGNAL, /* a signal trampoline: registers come from the ucontext at rsp */
	UNWIND_CFA_END, /* the return address is undefined: the outermost frame */
	UNWIND_CFA_UNSUPPORTED, /* another register or expression */
};

enum unwind_rbp_rule {
	UNWIND_RBP_SAME = 0, /* the caller's rbp is this frame's */
	UNWIND_RBP_OFFSET, /* saved at CFA + rbp_offset * 8 */
	UNWIND_RBP_UNDEFINED,
	UNWIND_RBP_UNSUPPORTED,
};

struct unwind_row {
	__u32 pc; /* ELF virtual address where the row starts applying */
	__u16 cfa_offset;
	__u8 rules; /* enum unwind_cfa_rule | enum unwind_rbp_rule << 4 */
	__s8 rbp_offset; /* in 8-byte slots */
};

struct unwind_chunk {
	struct unwind_row rows[UNWIND_CHUNK_ROWS];
};

struct unwind_index {
	__u32 first_pc[UNWIND_MAX_CHUNKS]; /* of chunk i, stored in element i + 1 */
};

/* One executable file mapping of a process: which table, and where. */
struct unwind_mapping {
	__u64 start;
	__u64 end;
	__u64 load_bias; /* process address - ELF virtual address */
	__u32 table_id; /* 0: no table (JIT, anonymous memory): frame pointers */
	__u32 flags;
};

struct process_unwind {
	__u32 mapping_count;
	__u32 generation; /* new each time the agent writes the entry: invalidates cached rows */
	__u64 refresh_requested_ns; /* last time BPF asked the agent to re-read the mappings */
	struct unwind_mapping mappings[UNWIND_MAX_MAPPINGS]; /* sorted by start */
};

/*
 * Rows recently used, per CPU: hot code unwinds through the same return
 * addresses sample after sample, and a hit skips both binary searches.
 * 1024 entries * 24 bytes = 24 KiB per CPU.
 */
#define UNWIND_ROW_CACHE_SIZE 1024

struct unwind_cached_row {
	__u64 pc; /* pc * 2 + return_address; 0: empty */
	__u32 pid;
	__u32 generation;
	struct unwind_row row;
};

struct unwind_row_cache {
	struct unwind_cached_row entries[UNWIND_ROW_CACHE_SIZE];
};

#endif /* KILN_UNWIND_H */
