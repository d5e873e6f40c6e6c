/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profiles read back and merged: what kiln's HTTP endpoint serves when a
 * user asks for one process of a window, or for the last minutes of
 * windows as one profile. The inputs are kiln's own pprof files, read as
 * untrusted all the same: an index out of range drops what uses it,
 * counted, and never reads past the message.
 */
#ifndef KILN_PPROF_MERGE_H
#define KILN_PPROF_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which samples are kept: every field that is set must match. */
struct pprof_filter {
	int64_t pid; /* the "pid" label; 0: any */
	int64_t tid; /* the "tid" label; 0: any */
	const char *comm; /* the "comm" label; NULL: any */
	const char *label_key; /* a string label's key and value; NULL: any */
	const char *label_value;
};

/* A process seen among the kept samples, with the sum of their first value. */
struct pprof_merge_process {
	int64_t pid;
	const char *comm; /* "" when the samples had none */
	const char *container_id; /* "" when none */
	int64_t value;
};

/* At most this many processes are told apart; the rest are counted in other_processes. */
#define PPROF_MERGE_MAX_PROCESSES 4096

struct pprof_merge_stats {
	uint64_t profiles; /* added */
	uint64_t samples; /* kept */
	uint64_t samples_filtered; /* dropped by the filter */
	uint64_t samples_invalid; /* dropped: an unknown location, a value count not the types' */
	uint64_t other_processes; /* processes past PPROF_MERGE_MAX_PROCESSES */
};

struct pprof_merge;

/* NULL with errno set. */
struct pprof_merge *pprof_merge__new(void);
void pprof_merge__free(struct pprof_merge *merge);

/*
 * Adds the samples of a serialized, uncompressed profile that pass filter
 * (NULL: all). Returns 0; -EINVAL when data is no profile, or one whose
 * sample types are not the first's (a CPU and an off-CPU window); -ENOMEM.
 */
int pprof_merge__add(struct pprof_merge *merge, const uint8_t *data, size_t size,
		     const struct pprof_filter *filter);

void pprof_merge__stats(const struct pprof_merge *merge, struct pprof_merge_stats *ret_stats);

/* Calls fn for each process seen, in no order; stops at fn's first non-zero return, returned. */
int pprof_merge__for_each_process(const struct pprof_merge *merge,
				  int (*fn)(void *ctx, const struct pprof_merge_process *process),
				  void *ctx);

/*
 * The merged profile, gzip-compressed, malloc'd: its time the earliest
 * input's, its duration up to the end of the latest. -ENOENT when no
 * profile was added.
 */
int pprof_merge__encode_gzip(struct pprof_merge *merge, uint8_t **ret_data, size_t *ret_size);

#endif /* KILN_PPROF_MERGE_H */
