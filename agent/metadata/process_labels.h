/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The labels each process's samples carry: its __meta_* labels
 * (process_metadata.h) read once, the relabel rules run on them once, the
 * __meta_* ones dropped after, as Prometheus drops them. A bounded cache
 * by pid: past max_processes the least recently used process is evicted
 * (counted) and read again if it is asked for again.
 */
#ifndef KILN_PROCESS_LABELS_H
#define KILN_PROCESS_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/metadata/labels.h"
#include "agent/metadata/process_metadata.h"
#include "agent/metadata/relabel.h"

struct process_labels;

struct process_labels_opts {
	size_t max_processes;
	int proc_fd; /* /proc, or a directory laid out as it is; the caller's */
	const struct host_metadata *host; /* may be NULL */
	const struct relabel_rules *rules; /* NULL: none; the caller's, kept valid */
};

struct process_labels_stats {
	uint64_t reads; /* processes whose /proc was read */
	uint64_t read_failures; /* gone before they could be read */
	uint64_t dropped; /* processes a keep/drop rule excluded */
	uint64_t evictions; /* the cache was full */
	uint64_t match_limit; /* label values a rule's regex gave up on */
};

/* NULL with errno set. */
struct process_labels *process_labels__new(const struct process_labels_opts *opts);
void process_labels__free(struct process_labels *cache);

/*
 * pid's labels after relabeling, read at the first call for it. Returns 1
 * with *ret_labels when the process is kept, 0 when a rule dropped it, or
 * a negative errno (-ENOENT: gone before it was read; asked again, it is
 * read again). *ret_labels stays valid until the next call on the cache.
 */
int process_labels__get(struct process_labels *cache, uint32_t pid,
			const struct label_set **ret_labels);

/* Forgets pid: it exited, or exec'd into another program. True when a rule had dropped it. */
bool process_labels__forget(struct process_labels *cache, uint32_t pid);

/* New rules (SIGHUP): every process is read and relabeled again. */
void process_labels__set_rules(struct process_labels *cache, const struct relabel_rules *rules);

size_t process_labels__size(const struct process_labels *cache);
void process_labels__stats(const struct process_labels *cache,
			   struct process_labels_stats *ret_stats);

#endif /* KILN_PROCESS_LABELS_H */
