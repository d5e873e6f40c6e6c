// SPDX-License-Identifier: Apache-2.0
/* Each process's relabeled labels, read once, in a bounded LRU cache by pid. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "agent/metadata/process_labels.h"
#include "lib/hashmap.h"
#include "lib/list.h"

struct entry {
	struct list_node lru; /* most recently used first */
	uint32_t pid;
	bool kept;
	bool incomplete; /* annotate said so: read again in a later window */
	uint32_t rereads;
	uint64_t read_window;
	struct label_set labels;
};

struct process_labels {
	struct process_labels_opts opts;
	struct hashmap *by_pid; /* pid -> struct entry */
	struct list_node lru;
	struct process_labels_stats stats;
	uint64_t window;
};

struct process_labels *process_labels__new(const struct process_labels_opts *opts)
{
	struct process_labels *cache;

	if (!opts->max_processes) {
		errno = EINVAL;
		return NULL;
	}
	cache = calloc(1, sizeof(*cache));
	if (!cache)
		return NULL;
	cache->opts = *opts;
	list_init(&cache->lru);
	cache->by_pid = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!cache->by_pid) {
		free(cache);
		errno = ENOMEM;
		return NULL;
	}
	return cache;
}

static void remove_entry(struct process_labels *cache, struct entry *entry)
{
	hashmap__delete(cache->by_pid, entry->pid, NULL, NULL);
	list_remove(&entry->lru);
	label_set__clear(&entry->labels);
	free(entry);
}

static void clear(struct process_labels *cache)
{
	while (!list_empty(&cache->lru))
		remove_entry(cache, container_of(cache->lru.next, struct entry, lru));
}

void process_labels__free(struct process_labels *cache)
{
	if (!cache)
		return;
	clear(cache);
	hashmap__free(cache->by_pid);
	free(cache);
}

/* Reads and relabels pid into entry. 0, or a negative errno (entry's labels empty). */
static int read_entry(struct process_labels *cache, struct entry *entry)
{
	struct relabel_counters counters = {};
	int err = process_metadata_read(cache->opts.proc_fd, entry->pid, cache->opts.host,
					&entry->labels);

	if (err) {
		cache->stats.read_failures++;
		return err;
	}
	cache->stats.reads++;
	entry->read_window = cache->window;
	entry->incomplete = false;
	if (cache->opts.annotate) {
		err = cache->opts.annotate(cache->opts.ctx, entry->pid, &entry->labels);
		if (err < 0)
			cache->stats.annotate_failures++;
		entry->incomplete = err == PROCESS_LABELS_INCOMPLETE;
	}
	err = cache->opts.rules ? relabel_rules__apply(cache->opts.rules, &entry->labels, &counters)
				: 1;
	cache->stats.match_limit += counters.match_limit;
	if (err < 0) {
		label_set__clear(&entry->labels);
		return err;
	}
	entry->kept = err == 1;
	if (!entry->kept)
		label_set__clear(&entry->labels);
	label_set__remove_prefix(&entry->labels, "__meta_");
	return 0;
}

static void note_dropped(struct process_labels *cache, const struct entry *entry)
{
	cache->stats.dropped++;
	if (cache->opts.dropped)
		cache->opts.dropped(cache->opts.ctx, entry->pid);
}

/*
 * Reads an incomplete entry again. A process gone since keeps what was
 * read; a decision that changed is passed on.
 */
static void reread_entry(struct process_labels *cache, struct entry *entry)
{
	struct entry fresh = { .pid = entry->pid };

	cache->stats.rereads++;
	if (read_entry(cache, &fresh)) {
		entry->incomplete = false;
		return;
	}
	label_set__clear(&entry->labels);
	entry->labels = fresh.labels;
	entry->read_window = fresh.read_window;
	entry->incomplete = fresh.incomplete && ++entry->rereads < PROCESS_LABELS_MAX_REREADS;
	if (fresh.incomplete && !entry->incomplete)
		cache->stats.left_incomplete++;
	if (entry->kept != fresh.kept) {
		entry->kept = fresh.kept;
		if (!entry->kept)
			note_dropped(cache, entry);
		if (entry->kept && cache->opts.undropped)
			cache->opts.undropped(cache->opts.ctx, entry->pid);
	}
}

int process_labels__get(struct process_labels *cache, uint32_t pid,
			const struct label_set **ret_labels)
{
	struct entry *entry;
	void *value;
	int err;

	if (hashmap__find(cache->by_pid, pid, &value)) {
		entry = value;
		list_move_front(&cache->lru, &entry->lru);
		if (entry->incomplete && entry->read_window != cache->window)
			reread_entry(cache, entry);
		*ret_labels = &entry->labels;
		return entry->kept;
	}
	if (hashmap__size(cache->by_pid) >= cache->opts.max_processes) {
		struct entry *oldest = container_of(cache->lru.prev, struct entry, lru);

		/* Sampled again until it is read again: its exclusion is not left behind. */
		if (!oldest->kept && cache->opts.undropped)
			cache->opts.undropped(cache->opts.ctx, oldest->pid);
		remove_entry(cache, oldest);
		cache->stats.evictions++;
	}
	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->pid = pid;
	err = read_entry(cache, entry);
	if (!err)
		err = hashmap__set(cache->by_pid, pid, entry, NULL, NULL);
	if (err) {
		/* Not kept: a process gone is read again if it is asked for again. */
		label_set__clear(&entry->labels);
		free(entry);
		return err;
	}
	list_push_front(&cache->lru, &entry->lru);
	if (!entry->kept)
		note_dropped(cache, entry);
	*ret_labels = &entry->labels;
	return entry->kept;
}

void process_labels__refresh(struct process_labels *cache, uint32_t pid)
{
	void *value;

	if (hashmap__find(cache->by_pid, pid, &value) && ((struct entry *)value)->incomplete)
		reread_entry(cache, value);
}

bool process_labels__forget(struct process_labels *cache, uint32_t pid)
{
	struct entry *entry;
	void *value;
	bool dropped;

	if (!hashmap__find(cache->by_pid, pid, &value))
		return false;
	entry = value;
	dropped = !entry->kept;
	remove_entry(cache, entry);
	return dropped;
}

void process_labels__set_rules(struct process_labels *cache, const struct relabel_rules *rules)
{
	struct list_node *node;

	for (node = cache->lru.next; cache->opts.undropped && node != &cache->lru;
	     node = node->next) {
		const struct entry *entry = container_of(node, struct entry, lru);

		if (!entry->kept)
			cache->opts.undropped(cache->opts.ctx, entry->pid);
	}
	cache->opts.rules = rules;
	clear(cache);
}

void process_labels__end_window(struct process_labels *cache)
{
	cache->window++;
}

size_t process_labels__size(const struct process_labels *cache)
{
	return hashmap__size(cache->by_pid);
}

void process_labels__stats(const struct process_labels *cache,
			   struct process_labels_stats *ret_stats)
{
	*ret_stats = cache->stats;
}
