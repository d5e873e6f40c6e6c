/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CPython code objects read from a profiled process: (process, CPython
 * version, code object address, instruction index) to function, file and
 * line. The BPF side records the code object and instruction index of each
 * Python frame; this reads the object's names and line table with
 * process_vm_readv (works across mount namespaces), as hostile data: every
 * length bounded, type pointers checked, line tables decoded in bounded
 * loops. Entries are cached by (pid, code address), checked against the
 * object on every hit (an address may be reused by another code object)
 * and evicted least recently used past a memory bound.
 *
 * Library-like code: it never prints, it returns 0 or a negative errno.
 * Not thread-safe: one thread resolves (the one that symbolizes windows).
 */
#ifndef KILN_PYTHON_CODE_H
#define KILN_PYTHON_CODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/counters.h"

struct python_frame_info {
	const char *function; /* co_qualname (3.11+) else co_name; owned by the cache */
	const char *file; /* co_filename; owned by the cache */
	uint32_t line; /* from the line table and the instruction index; 0 if unknown */
	uint32_t first_line; /* co_firstlineno */
};

struct python_code_cache;

/* NULL with errno set. max_bytes: what entries may hold; 0: default (8 MiB). */
struct python_code_cache *python_code_cache__new(size_t max_bytes);
void python_code_cache__free(struct python_code_cache *cache);

/*
 * minor: CPython 3.<minor>, 6..13. instr_index: the instruction index in code units
 * (_Py_CODEUNIT, 2 bytes), as the BPF side computes it: for 3.6-3.9 f_lasti/2, 3.10 f_lasti,
 * 3.11/3.12 (prev_instr - _PyCode_CODE(co)), 3.13 (instr_ptr - _PyCode_CODE(co)).
 * Returns 0 and fills out, or a negative errno-style code (counted by reason):
 * -ESRCH the process is gone, -EFAULT memory unreadable, -ENOTSUP a version
 * not handled, -EINVAL not a code object, -EBADMSG a name or file that is
 * not a str or too long, -EILSEQ a line table not bytes, too long or
 * malformed, -ENOMEM. The strings in out stay valid until the next call.
 */
int python_code_cache__resolve(struct python_code_cache *cache, pid_t pid, unsigned minor,
			       uint64_t code_addr, uint32_t instr_index,
			       struct python_frame_info *out);

/*
 * A window's stacks are about to be resolved: from the first call on, an
 * entry checked against its object (one process_vm_readv, about 12 us on
 * the test machine) is trusted for the rest of the window, as a window's
 * samples are read after the fact anyway. Without it, every hit is checked.
 */
void python_code_cache__begin_window(struct python_code_cache *cache);

/* The process exited or exec'd: drop its entries. */
void python_code_cache__forget_process(struct python_code_cache *cache, pid_t pid);

struct python_code_stats {
	uint64_t resolutions; /* calls to resolve */
	uint64_t hits; /* answered from the cache (the object checked unchanged) */
	uint64_t hits_unchecked; /* of those, trusted as checked earlier in the window */
	uint64_t reread; /* cached, but the object at the address changed: read again */
	uint64_t evicted; /* entries dropped past max_bytes */
	uint64_t lines_unknown; /* resolved, but no line for the instruction (line 0) */
	/* Failures, by reason. */
	uint64_t failed_read; /* process gone, or its memory unreadable */
	uint64_t failed_version; /* a CPython version not handled */
	uint64_t failed_not_code; /* the address holds no code object */
	uint64_t failed_string; /* name or file not a compact str, or over the bound */
	uint64_t failed_line_table; /* not bytes, over the bound, or malformed */
	uint64_t failed_memory; /* out of memory */
	uint64_t entries; /* held now */
	uint64_t processes; /* with entries or known types, now */
	uint64_t bytes; /* what entries and processes hold now, against max_bytes */
};

void python_code_cache__stats(const struct python_code_cache *cache,
			      struct python_code_stats *ret_stats);

/* Its counters as one log line, "python code objects: ...", from a struct python_code_stats. */
extern const struct counter_line python_code_counter_line;

#endif /* KILN_PYTHON_CODE_H */
