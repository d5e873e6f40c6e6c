/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of /proc/PID/maps into a sorted array of mappings. */
#ifndef KILN_PROCMAPS_H
#define KILN_PROCMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
	PROC_MAP_READ = 1 << 0,
	PROC_MAP_WRITE = 1 << 1,
	PROC_MAP_EXEC = 1 << 2,
	PROC_MAP_SHARED = 1 << 3,
};

struct proc_mapping {
	uint64_t start; /* first address */
	uint64_t end; /* one past the last address */
	uint64_t offset; /* file offset of start */
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t perms; /* PROC_MAP_* */
	bool deleted; /* the path ended in " (deleted)", which is stripped */
	char *path; /* "" for anonymous memory, "[vdso]", "[stack]", ... as the kernel prints */
};

struct proc_maps {
	struct proc_mapping *mappings; /* sorted by start, not overlapping */
	size_t count;
};

/*
 * Parses a maps file. With exec_only, only executable mappings are kept.
 * Returns 0 or a negative errno (-EINVAL names a malformed line); *ret_maps
 * is untouched on failure.
 */
int procmaps__parse(FILE *file, bool exec_only, struct proc_maps *ret_maps);

/* Reads /proc/PID/maps. -ENOENT/-ESRCH when the process is gone. */
int procmaps__read(int pid, bool exec_only, struct proc_maps *ret_maps);

/* Frees the contents (not the struct itself); accepts a zeroed struct. */
void procmaps__free(struct proc_maps *maps);

/* Binary search; NULL when addr is in no mapping. */
const struct proc_mapping *procmaps__find(const struct proc_maps *maps, uint64_t addr);

#endif /* KILN_PROCMAPS_H */
