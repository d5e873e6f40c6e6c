/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * CPython processes as the BPF walker of their frames reads them
 * (bpf/python.bpf.h), written by the agent (agent/python/python_process.c),
 * and the tagged frames the walker puts among a user stack's addresses.
 */
#ifndef KILN_PYTHON_H
#define KILN_PYTHON_H

/* BPF programs take the kernel's types from vmlinux.h, included first. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * A Python frame in a user stack's addresses: bit 63 set, which no user
 * address has (they end below 1 << 47); bits 62..44 the instruction index
 * in code units, clamped; bits 43..0 the code object's address >> 3 (an
 * object is 8-aligned and below 1 << 47). A code field of 0 is a frame that
 * could not be read: the index field says why (enum python_unreadable).
 */
#define PYTHON_FRAME_TAG (1ULL << 63)
#define PYTHON_INDEX_SHIFT 44
#define PYTHON_INDEX_MAX ((1ULL << 19) - 1)
#define PYTHON_CODE_MASK ((1ULL << 44) - 1)
#define PYTHON_FRAME(code, index)                                                                  \
	(PYTHON_FRAME_TAG | ((__u64)(index) << PYTHON_INDEX_SHIFT) | ((__u64)(code) >> 3))
#define PYTHON_FRAME_IS(address) (((address)&PYTHON_FRAME_TAG) != 0)
#define PYTHON_FRAME_CODE(address) (((address)&PYTHON_CODE_MASK) << 3)
#define PYTHON_FRAME_INDEX(address) (((address) >> PYTHON_INDEX_SHIFT) & PYTHON_INDEX_MAX)

enum python_unreadable {
	PYTHON_UNREADABLE_THREAD = 1, /* the thread's PyThreadState was not found */
	PYTHON_UNREADABLE_READ, /* a frame's memory could not be read */
	PYTHON_UNREADABLE_CODE, /* a frame's code object address is no object's */
	PYTHON_UNREADABLE__COUNT,
};

/* How a frame says where it is in its code. */
enum python_instr_kind {
	PYTHON_INSTR_LASTI_BYTES = 0, /* 3.6-3.9: int f_lasti, a byte offset */
	PYTHON_INSTR_LASTI_UNITS, /* 3.10: int f_lasti, in code units */
	PYTHON_INSTR_POINTER, /* 3.11+: a pointer into the code's co_code_adaptive */
};

/* How one evaluator activation's frames end. */
enum python_frame_kind {
	PYTHON_FRAMES_OBJECTS = 0, /* <= 3.10: PyFrameObject, one per activation */
	PYTHON_FRAMES_IS_ENTRY, /* 3.11: _PyInterpreterFrame; is_entry marks an activation's first */
	PYTHON_FRAMES_CSTACK, /* 3.12+: a frame owned by the C stack sits below each activation */
};

#define PYTHON_OWNED_BY_CSTACK 3 /* FRAME_OWNED_BY_CSTACK, 3.12 and 3.13 */
/* Bytes of a frame read at once: every field the walker wants lies within. */
#define PYTHON_FRAME_READ_MAX 128
/* Threads of all interpreters looked at to find one's thread state. */
#define PYTHON_MAX_THREADS 256

#define PYTHON_NO_OFFSET 0xffff

/* Offsets, in bytes, of what the walker reads; PYTHON_NO_OFFSET when the version lacks it. */
struct python_offsets {
	__u16 interp_next; /* PyInterpreterState.next */
	__u16 interp_threads; /* .tstate_head (<= 3.9), .threads.head */
	__u16 tstate_next; /* PyThreadState.next */
	__u16 tstate_thread_id; /* .thread_id: pthread_self(), the thread pointer */
	__u16 tstate_frame; /* .frame (<= 3.10), .cframe (3.11, 3.12), .current_frame (3.13) */
	__u16 cframe_current_frame; /* _PyCFrame.current_frame (3.11, 3.12) */
	__u16 frame_previous; /* f_back, previous */
	__u16 frame_code; /* f_code, f_executable */
	__u16 frame_instr; /* f_lasti, prev_instr, instr_ptr */
	__u16 frame_owner; /* 3.12+: owner */
	__u16 frame_is_entry; /* 3.11: is_entry */
	__u16 code_adaptive; /* PyCodeObject.co_code_adaptive (3.11+) */
	__u16 frame_read; /* bytes of a frame to read: past every frame field, <= PYTHON_FRAME_READ_MAX */
	__u16 padding[3];
};

struct python_process {
	__u64 interp_head; /* address of the pointer to the first PyInterpreterState */
	__u64 eval_start; /* _PyEval_EvalFrameDefault, as mapped */
	__u64 eval_end;
	__u64 cold_start; /* its .cold part, or 0 */
	__u64 cold_end;
	__u32 minor; /* 3.minor */
	__u8 frame_kind; /* enum python_frame_kind */
	__u8 instr_kind; /* enum python_instr_kind */
	__u16 padding;
	struct python_offsets offsets;
};

/* The walker's state, in the unwinder's (per-CPU scratch, not the BPF stack). */
struct python_walk {
	__u32 status; /* enum python_walk_status (bpf/python.bpf.h) */
	__u32 reason; /* enum python_unreadable, when it failed */
	__u32 emitting; /* taking an activation's frames */
	__u32 frames; /* Python frames appended so far */
	__u32 activation_start; /* frames when the current activation began */
	__u32 padding;
	__u64 activation_sp; /* the evaluator frame whose activation it is */
	__u64 activation_pc;
	__u64 frame; /* the next frame to take; 0: none left */
	__u8 buffer[PYTHON_FRAME_READ_MAX]; /* the frame being read */
};

#endif /* KILN_PYTHON_H */
