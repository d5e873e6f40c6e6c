/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which processes run CPython, and what BPF needs to read their frames
 * (bpf/python.h): found in a process's mappings (python3.X, or the
 * libpython3.X.so it links), its version from Py_Version (3.11+) or the
 * file's name, its addresses from the file's symbols, its layout from a
 * table per version checked against _Py_DebugOffsets where CPython has it
 * (3.13+). Written to the python_processes map when the process table
 * reads a process's mappings, deleted when it goes.
 */
#ifndef KILN_PYTHON_PROCESS_H
#define KILN_PYTHON_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

struct process_listener;
struct python_code_cache;
struct python_processes;

struct python_processes_stats {
	uint64_t found; /* processes found running CPython and given to BPF */
	uint64_t unsupported; /* a CPython kiln has no layout for (2.x, 3.14+) */
	uint64_t unreadable; /* its file's symbols or its memory could not be read */
	uint64_t map_full; /* python_processes full: no Python frames for it */
	uint64_t layout_mismatch; /* _Py_DebugOffsets disagreed with the table: run time's used */
};

/* NULL with errno set. map_fd: python_processes; code: forgotten with each process. */
struct python_processes *python_processes__new(int map_fd, struct python_code_cache *code);
void python_processes__free(struct python_processes *processes);

/* Listens to the process table: finds CPython in new mappings, forgets exited processes. */
void python_processes__process_listener(struct python_processes *processes,
					struct process_listener *ret_listener);

/* pid's CPython minor version (3.minor): 0 and false when it runs none kiln knows. */
bool python_processes__minor(const struct python_processes *processes, uint32_t pid,
			     unsigned int *ret_minor);

void python_processes__stats(const struct python_processes *processes,
			     struct python_processes_stats *ret_stats);

#endif /* KILN_PYTHON_PROCESS_H */
