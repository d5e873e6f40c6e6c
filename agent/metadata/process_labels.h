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

/* What annotate returns for labels that may be completed later. */
#define PROCESS_LABELS_INCOMPLETE 1

/* A process whose labels stay incomplete is read again at most this many windows. */
#define PROCESS_LABELS_MAX_REREADS 30

struct process_labels_opts {
	size_t max_processes;
	int proc_fd; /* /proc, or a directory laid out as it is; the caller's */
	const struct host_metadata *host; /* may be NULL */
	const struct relabel_rules *rules; /* NULL: none; the caller's, kept valid */
	/*
	 * Adds what /proc does not say (the executable's build id, what the
	 * Kubernetes API says of its pod) to a process's __meta_* labels,
	 * before the rules run; may be NULL. Returns 0;
	 * PROCESS_LABELS_INCOMPLETE when something is not known yet (its pod
	 * is not in the API's answers yet): the process is then read again in
	 * a later window (process_labels__end_window), at most
	 * PROCESS_LABELS_MAX_REREADS times; or a negative errno, which leaves
	 * the labels as /proc gave them (counted).
	 */
	int (*annotate)(void *ctx, uint32_t pid, struct label_set *labels);
	/*
	 * Told when a read finds a rule drops pid (dropped) and when one that
	 * was dropped is kept after all (read again, or new rules): the
	 * caller leaves it out of sampling, or takes it back. Either may be NULL.
	 */
	void (*dropped)(void *ctx, uint32_t pid);
	void (*undropped)(void *ctx, uint32_t pid);
	void *ctx; /* the callbacks' */
};

struct process_labels_stats {
	uint64_t reads; /* processes whose /proc was read */
	uint64_t read_failures; /* gone before they could be read */
	uint64_t dropped; /* processes a keep/drop rule excluded */
	uint64_t evictions; /* the cache was full */
	uint64_t match_limit; /* label values a rule's regex gave up on */
	uint64_t annotate_failures; /* annotate failed: the process's labels are /proc's only */
	uint64_t rereads; /* incomplete labels read again */
	uint64_t left_incomplete; /* still incomplete after PROCESS_LABELS_MAX_REREADS */
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

/*
 * New rules (SIGHUP): every process is read and relabeled again when next
 * asked for; undropped is told first of each process the old rules dropped.
 */
void process_labels__set_rules(struct process_labels *cache, const struct relabel_rules *rules);

/*
 * Reads pid again now if its labels are incomplete: what was missing (its
 * mappings, for the build id) has just been read.
 */
void process_labels__refresh(struct process_labels *cache, uint32_t pid);

/* A window ended: processes whose labels are incomplete are read again when next asked for. */
void process_labels__end_window(struct process_labels *cache);

size_t process_labels__size(const struct process_labels *cache);
void process_labels__stats(const struct process_labels *cache,
			   struct process_labels_stats *ret_stats);

#endif /* KILN_PROCESS_LABELS_H */
