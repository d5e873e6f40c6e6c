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
	/*
	 * CFA = rbx + cfa_offset: ld.so's lazy-binding trampolines
	 * (_dl_runtime_resolve_xsavec and kin) align rsp to 64 and keep the
	 * frame in rbx, so every process's first call to a libc function
	 * passes through one.
	 */
	UNWIND_CFA_RBX,
};

enum unwind_rbp_rule {
	UNWIND_RBP_SAME = 0, /* the caller's rbp is this frame's */
	UNWIND_RBP_OFFSET, /* saved at CFA + rbp_offset * 8 */
	UNWIND_RBP_UNDEFINED,
	UNWIND_RBP_UNSUPPORTED,
};

/*
 * Where the caller's rbx is, known only as far as the trampolines above
 * need it: a callee that saves rbx pushes it in its prologue, right below
 * rbp when it saves both (GCC's order: r15, r14, r13, r12, rbp, rbx). Two
 * bits, so a row stays 8 bytes: rbp_offset holds rbx's slot when rbp is
 * not saved there.
 */
enum unwind_rbx_rule {
	UNWIND_RBX_SAME = 0, /* the caller's rbx is this frame's */
	UNWIND_RBX_BELOW_RBP, /* saved at CFA + (rbp_offset - 1) * 8, rbp at rbp_offset */
	UNWIND_RBX_OFFSET, /* saved at CFA + rbp_offset * 8; rbp not saved */
	UNWIND_RBX_UNKNOWN, /* elsewhere, or another rule */
};

/* A row's rules byte: CFA rule in bits 0-3, rbp rule in bits 4-5, rbx rule in bits 6-7. */
#define UNWIND_RULES(cfa, rbp, rbx) ((__u8)((cfa) | (rbp) << 4 | (rbx) << 6))
#define UNWIND_CFA_RULE(rules) ((rules)&0xf)
#define UNWIND_RBP_RULE(rules) (((rules) >> 4) & 3)
#define UNWIND_RBX_RULE(rules) ((rules) >> 6)

struct unwind_row {
	__u32 pc; /* ELF virtual address where the row starts applying */
	__u16 cfa_offset;
	__u8 rules; /* UNWIND_RULES(enum unwind_cfa_rule, unwind_rbp_rule, unwind_rbx_rule) */
	__s8 rbp_offset; /* in 8-byte slots (rbx's, UNWIND_RBX_OFFSET) */
};

struct unwind_chunk {
	struct unwind_row rows[UNWIND_CHUNK_ROWS];
};

struct unwind_index {
	__u32 first_pc[UNWIND_MAX_CHUNKS]; /* of chunk i, stored in element i + 1 */
};

/*
 * One executable mapping of a process: which table, and where. It also
 * names its file (device, inode, offset) without the process, so a process
 * that exited before the agent read its maps can still be symbolized.
 */
struct unwind_mapping {
	__u64 start;
	__u64 end;
	__u64 load_bias; /* process address - ELF virtual address */
	__u64 file_offset; /* file offset of start (vm_pgoff * page size) */
	__u64 inode; /* 0: anonymous memory */
	__u32 dev; /* the kernel's encoding: major << 20 | minor */
	/*
	 * 0: no table (JIT, anonymous memory; for a file, one the agent could
	 * not open when it read the mappings: asked for again);
	 * UNWIND_TABLE_NONE: the file has none (no usable CFI, or deferred for
	 * room). Both are stepped by frame pointers.
	 */
	__u32 table_id;
};

#define UNWIND_TABLE_NONE 0xffffffffu

/* The kernel's dev_t encoding, as sb->s_dev holds it (MKDEV). */
#define UNWIND_DEV(major, minor) (((__u32)(major) << 20) | ((__u32)(minor)&0xfffff))
/* And back, as /proc/PID/maps splits it. */
#define UNWIND_DEV_MAJOR(dev) ((dev) >> 20)
#define UNWIND_DEV_MINOR(dev) ((dev)&0xfffff)

enum process_unwind_flags {
	PROCESS_UNWIND_BY_AGENT = 1 << 0, /* written from /proc/PID/maps by the agent */
	/*
	 * Its thread group is gone: kept for the agent to read what an exited
	 * process mapped, then deleted at a window's end; the unwinder and the
	 * kernel's fill take it as absent (a new process may have its pid).
	 */
	PROCESS_UNWIND_EXITED = 1 << 1,
	/*
	 * Bits 2-3: how many times the kernel filled the entry again, each
	 * after a walk found a pc in none of its mappings (the first fill was
	 * made inside the dynamic loader, before the libraries were mapped;
	 * the next before a dlopen). Not filled again past
	 * PROCESS_UNWIND_MAX_REFILLS.
	 */
	PROCESS_UNWIND_REFILLS_SHIFT = 2,
	PROCESS_UNWIND_REFILLS_MASK = 3 << 2,
	/* Filled by the kernel with a file mapping it had no table for: the agent must read it. */
	PROCESS_UNWIND_UNTABLED = 1 << 4,
};

#define PROCESS_UNWIND_MAX_REFILLS 3

/*
 * A file the agent has a table for, by identity, so that the kernel can
 * fill a new process's mappings itself from its VMAs (bpf/unwind.bpf.h):
 * the load bias of a mapping is vm_start - vm_pgoff * page size -
 * vaddr_minus_offset. The vDSO is the identity { 0, 0 }.
 */
struct unwind_file_key {
	__u64 inode;
	__u32 dev; /* UNWIND_DEV */
	__u32 padding;
};

struct unwind_file {
	__u64 vaddr_minus_offset; /* p_vaddr - p_offset of the file's executable PT_LOADs */
	__u32 table_id;
	__u32 padding;
};

/* Files the kernel can place: 16384 * (16 + 16 + overhead) ~ 1 MiB at most, as used. */
#define UNWIND_MAX_FILES 16384
/* Processes exited whose entries await the agent's sweep at a window's end. */
#define UNWIND_MAX_EXITED 8192
/*
 * Images replaced by an exec whose entries await the sweep: a forked
 * child's samples before its exec (a shell's loop) are named from them.
 * Up to 1024 * 6 KiB = 6 MiB, allocated as used: a few hundred a window.
 */
#define UNWIND_MAX_REPLACED 1024

struct process_unwind {
	__u32 mapping_count;
	__u32 generation; /* new each time the entry is written: invalidates cached rows */
	__u32 flags; /* enum process_unwind_flags */
	__u32 padding;
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
