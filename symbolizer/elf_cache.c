// SPDX-License-Identifier: Apache-2.0
/* The agent's ELF files: a bounded LRU cache keyed by build id and by device+inode. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/hashmap.h"
#include "lib/list.h"
#include "symbolizer/debug_search.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/elf_cache_entry.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/process_files.h"

#define DEFAULT_MAX_FILES 256
/* How long a failed file waits before it is tried again. */
#define RETRY_INTERVAL_NS (60ULL * 1000 * 1000 * 1000)
/* (device, inode) pairs per cached file: copies of one build in many container images. */
#define MAX_ALIASES_PER_FILE 64
/* The negative cache holds this many failed files per allowed ELF file. */
#define FAILED_FILES_PER_FILE 4
/* Damaged files waiting to be named in a warning (elf_cache__take_damaged). */
#define MAX_DAMAGE_NOTES 16

/* The identity of a mapped file as /proc/PID/maps shows it. */
struct file_key {
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t inode;
};

/* One (device, inode) under which a cached file was seen; its entry in by_inode. */
struct file_alias {
	struct file_key key;
	struct elf_cache_entry *entry;
	struct file_alias *next; /* the entry's other aliases, newest first */
};

struct elf_cache_entry {
	struct elf_file *elf;
	struct list_node lru; /* in cache->lru, most recently used first */
	struct file_alias *aliases;
	size_t alias_count;
	char *path; /* the first mapping's, for warnings; NULL when out of memory */
	size_t bytes; /* elf_file__memory when last counted into cache->bytes */
	void *data; /* the listener's */
	/* When to ask debuginfod for this file's debug file (debug_search__ask_again_at). */
	uint64_t debuginfod_at;
	/* Used since elf_cache__drop_pages: pages of its mappings may be resident. */
	bool pages_used;
};

/* The negative cache: a file that failed is not retried before RETRY_INTERVAL_NS. */
struct failed_file {
	struct file_key key;
	uint64_t failed_at_ns;
	int error;
	struct list_node age; /* in cache->failures_by_age, newest first */
};

struct elf_cache {
	size_t max_files;
	uint64_t max_bytes; /* 0: no bound but max_files */
	uint64_t bytes; /* every entry's bytes */
	size_t max_failed_files;
	struct debug_search *debug_search; /* NULL: files' own sections only */
	struct hashmap *by_build_id; /* build id hex -> struct elf_cache_entry */
	struct hashmap *by_inode; /* struct file_key * -> struct file_alias */
	struct hashmap *failures; /* struct file_key * -> struct failed_file */
	struct list_node lru;
	size_t file_count;
	struct list_node failures_by_age;
	struct elf_cache_listener listener; /* release NULL when none */
	struct elf_cache_stats stats;
	struct elf_cache_damage damage[MAX_DAMAGE_NOTES]; /* ring; paths are the cache's copies */
	size_t damage_head, damage_count;
	char *taken_path; /* the path last handed out by elf_cache__take_damaged */
};

static size_t hash_file_key(uintptr_t key, void *ctx)
{
	const struct file_key *file_key = (const struct file_key *)key;

	(void)ctx;
	return hash_mix(hash_mix(hash_mix(HASH_SEED, file_key->dev_major), file_key->dev_minor),
			file_key->inode);
}

static bool equal_file_key(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct file_key *x = (const struct file_key *)a, *y = (const struct file_key *)b;

	(void)ctx;
	return x->dev_major == y->dev_major && x->dev_minor == y->dev_minor && x->inode == y->inode;
}

static struct file_key mapping_key(const struct proc_mapping *mapping)
{
	return (struct file_key){ mapping->dev_major, mapping->dev_minor, mapping->inode };
}

struct elf_cache *elf_cache__new(const struct elf_cache_opts *opts)
{
	struct elf_cache_opts defaults = {};
	struct elf_cache *cache;

	if (!opts)
		opts = &defaults;
	cache = calloc(1, sizeof(*cache));
	if (!cache)
		return NULL;
	list_init(&cache->lru);
	list_init(&cache->failures_by_age);
	cache->max_files = opts->max_files ? opts->max_files : DEFAULT_MAX_FILES;
	cache->max_failed_files = cache->max_files * FAILED_FILES_PER_FILE;
	cache->max_bytes = opts->max_bytes;
	cache->debug_search = opts->debug_search;
	cache->by_build_id = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	cache->by_inode = hashmap__new(hash_file_key, equal_file_key, NULL);
	cache->failures = hashmap__new(hash_file_key, equal_file_key, NULL);
	if (!cache->by_build_id || !cache->by_inode || !cache->failures) {
		elf_cache__free(cache);
		errno = ENOMEM;
		return NULL;
	}
	return cache;
}

/* The listener lets go of what it read from the entry's handles. */
static void release_entry(struct elf_cache *cache, struct elf_cache_entry *entry)
{
	if (cache->listener.release && entry->data)
		cache->listener.release(cache->listener.ctx, entry);
}

static void drop_alias(struct elf_cache *cache, struct file_alias *alias)
{
	hashmap__delete(cache->by_inode, (uintptr_t)&alias->key, NULL, NULL);
	alias->entry->alias_count--;
	free(alias);
}

static void evict_entry(struct elf_cache *cache, struct elf_cache_entry *entry)
{
	const char *build_id = elf_file__build_id(entry->elf);

	while (entry->aliases) {
		struct file_alias *alias = entry->aliases;

		entry->aliases = alias->next;
		drop_alias(cache, alias);
	}
	if (build_id[0])
		hashmap__delete(cache->by_build_id, (uintptr_t)build_id, NULL, NULL);
	list_remove(&entry->lru);
	cache->file_count--;
	cache->bytes -= entry->bytes;
	/* Readers (libdw) read from the ELF handles: they let go before the handles close. */
	release_entry(cache, entry);
	elf_file__free(entry->elf);
	free(entry->path);
	free(entry);
}

static void forget_failure(struct elf_cache *cache, struct failed_file *failed)
{
	hashmap__delete(cache->failures, (uintptr_t)&failed->key, NULL, NULL);
	list_remove(&failed->age);
	free(failed);
}

void elf_cache__free(struct elf_cache *cache)
{
	if (!cache)
		return;
	while (!list_empty(&cache->lru))
		evict_entry(cache, container_of(cache->lru.next, struct elf_cache_entry, lru));
	while (!list_empty(&cache->failures_by_age))
		forget_failure(cache,
			       container_of(cache->failures_by_age.next, struct failed_file, age));
	hashmap__free(cache->by_build_id);
	hashmap__free(cache->by_inode);
	hashmap__free(cache->failures);
	for (size_t i = 0; i < cache->damage_count; i++)
		free((char *)cache->damage[(cache->damage_head + i) % MAX_DAMAGE_NOTES].path);
	free(cache->taken_path);
	free(cache);
}

int elf_cache__set_listener(struct elf_cache *cache, const struct elf_cache_listener *listener)
{
	if (cache->listener.release)
		return -EBUSY;
	cache->listener = *listener;
	return 0;
}

void elf_cache__clear_listener(struct elf_cache *cache)
{
	for (struct list_node *node = cache->lru.next; node != &cache->lru; node = node->next)
		release_entry(cache, container_of(node, struct elf_cache_entry, lru));
	cache->listener = (struct elf_cache_listener){};
}

struct elf_file *elf_cache_entry__elf_file(const struct elf_cache_entry *entry)
{
	return entry->elf;
}

void *elf_cache_entry__data(const struct elf_cache_entry *entry)
{
	return entry->data;
}

void elf_cache_entry__set_data(struct elf_cache_entry *entry, void *data)
{
	entry->data = data;
}

static int add_alias(struct elf_cache *cache, struct elf_cache_entry *entry,
		     const struct file_key *key)
{
	struct file_alias *alias, **oldest;
	int err;

	if (entry->alias_count >= MAX_ALIASES_PER_FILE) {
		/* Forgetting an alias only costs a reopen, found again by build id. */
		for (oldest = &entry->aliases; (*oldest)->next; oldest = &(*oldest)->next)
			;
		alias = *oldest;
		*oldest = NULL;
		drop_alias(cache, alias);
	}
	alias = calloc(1, sizeof(*alias));
	if (!alias)
		return -ENOMEM;
	alias->key = *key;
	alias->entry = entry;
	err = hashmap__set(cache->by_inode, (uintptr_t)&alias->key, alias, NULL, NULL);
	if (err) {
		free(alias);
		return err;
	}
	alias->next = entry->aliases;
	entry->aliases = alias;
	entry->alias_count++;
	return 0;
}

static void remember_failure(struct elf_cache *cache, const struct file_key *key, int error)
{
	struct failed_file *failed;

	if (hashmap__size(cache->failures) >= cache->max_failed_files) {
		forget_failure(cache,
			       container_of(cache->failures_by_age.prev, struct failed_file, age));
		cache->stats.failures_evicted++;
	}
	failed = calloc(1, sizeof(*failed));
	if (!failed)
		return; /* Not remembering only means trying again sooner. */
	failed->key = *key;
	failed->failed_at_ns = now_ns();
	failed->error = error;
	if (hashmap__set(cache->failures, (uintptr_t)&failed->key, failed, NULL, NULL)) {
		free(failed);
		return;
	}
	list_push_front(&cache->failures_by_age, &failed->age);
}

/* Keeps a damaged file's name for a warning; past MAX_DAMAGE_NOTES the oldest goes. */
static void note_damage(struct elf_cache *cache, const char *path, unsigned int losses)
{
	struct elf_cache_damage *note;

	if (cache->damage_count == MAX_DAMAGE_NOTES) {
		free((char *)cache->damage[cache->damage_head].path);
		cache->damage_head = (cache->damage_head + 1) % MAX_DAMAGE_NOTES;
		cache->damage_count--;
		cache->stats.damaged_unnamed++;
	}
	note = &cache->damage[(cache->damage_head + cache->damage_count) % MAX_DAMAGE_NOTES];
	note->path = strdup(path ?: "(unknown file)");
	note->losses = losses;
	if (note->path)
		cache->damage_count++;
	else
		cache->stats.damaged_unnamed++;
}

/* Counts the losses elf has now and had not in before (each once per file) and notes them. */
static void count_losses(struct elf_cache *cache, const struct elf_file *elf, const char *path,
			 unsigned int before)
{
	unsigned int new = elf_file__losses(elf) & ~before;

	if (!new)
		return;
	for (unsigned int loss = 0; loss < ELF_LOSS_COUNT; loss++)
		if (new & 1U << loss)
			cache->stats.losses[loss]++;
	note_damage(cache, path, new);
}

void elf_cache__add_loss(struct elf_cache *cache, struct elf_cache_entry *entry,
			 enum elf_file_loss loss)
{
	if (elf_file__add_loss(entry->elf, loss)) {
		cache->stats.losses[loss]++;
		note_damage(cache, entry->path, 1U << loss);
	}
}

int elf_cache__take_damaged(struct elf_cache *cache, struct elf_cache_damage *ret_damage)
{
	if (!cache->damage_count)
		return -EAGAIN;
	*ret_damage = cache->damage[cache->damage_head];
	free(cache->taken_path);
	cache->taken_path = (char *)ret_damage->path;
	cache->damage_head = (cache->damage_head + 1) % MAX_DAMAGE_NOTES;
	cache->damage_count--;
	return 0;
}

/* An entry's symbols changed (a debug file came): the cache's total follows. */
static void count_bytes(struct elf_cache *cache, struct elf_cache_entry *entry)
{
	cache->bytes -= entry->bytes;
	entry->bytes = elf_file__memory(entry->elf);
	cache->bytes += entry->bytes;
}

/*
 * Evicts the least recently used files past max_files, and past max_bytes
 * while more than one is open; never keep, the entry just added (the front).
 */
static void trim_entries(struct elf_cache *cache, const struct elf_cache_entry *keep)
{
	for (;;) {
		bool too_many = cache->file_count > cache->max_files;
		bool too_large = cache->max_bytes && cache->bytes > cache->max_bytes;
		struct elf_cache_entry *oldest;

		if (!too_many && !too_large)
			return;
		oldest = container_of(cache->lru.prev, struct elf_cache_entry, lru);
		if (oldest == keep)
			return;
		evict_entry(cache, oldest);
		if (too_many)
			cache->stats.files_evicted++;
		else
			cache->stats.files_evicted_memory++;
	}
}

/* Gives an entry the debug file debuginfod fetched: 0, or why it cannot be used. */
static int attach_fetched(struct elf_cache *cache, struct elf_cache_entry *entry, int fd)
{
	unsigned int losses = elf_file__losses(entry->elf);
	int err;

	/* What was read from the old debug file may point into it: let go first. */
	release_entry(cache, entry);
	err = elf_file__use_debug_file(entry->elf, fd);
	count_bytes(cache, entry);
	count_losses(cache, entry->elf, entry->path, losses);
	if (err)
		return err;
	entry->debuginfod_at = DEBUG_SEARCH_NEVER;
	return 0;
}

/*
 * Asks debuginfod for an entry's debug file. One fetched earlier (the file
 * was evicted and opened again) is taken at once; otherwise the entry waits
 * for the result, or asks again after a failure or a full queue.
 */
static void request_debug_file(struct elf_cache *cache, struct elf_cache_entry *entry)
{
	const char *build_id = elf_file__build_id(entry->elf);
	int err, fd;

	err = debug_search__request(cache->debug_search, build_id, &fd);
	if (!err) {
		err = attach_fetched(cache, entry, fd);
		close(fd);
		debug_search__took(cache->debug_search, build_id, err);
		if (!err)
			return;
	}
	entry->debuginfod_at = debug_search__ask_again_at(cache->debug_search, err);
}

/* Hands finished fetches to their entries (one evicted meanwhile gets it when reopened). */
static void take_fetched_files(struct elf_cache *cache)
{
	struct debug_search_fetched fetched;
	struct elf_cache_entry *entry;
	int err;

	if (!cache->debug_search)
		return;
	while (debug_search__take_fetched(cache->debug_search, &fetched) == 0) {
		if (!hashmap__find(cache->by_build_id, (uintptr_t)fetched.build_id,
				   (void **)&entry))
			entry = NULL;
		err = fetched.error;
		if (fetched.fd >= 0) {
			err = entry ? attach_fetched(cache, entry, fetched.fd) : 0;
			close(fetched.fd);
			/* Its debug file was read: to the front, where drop_pages looks. */
			if (entry) {
				list_move_front(&cache->lru, &entry->lru);
				entry->pages_used = true;
			}
			if (entry)
				debug_search__took(cache->debug_search, fetched.build_id, err);
		}
		if (err && entry)
			entry->debuginfod_at = fetched.ask_again_at;
	}
}

static int cache_new_entry(struct elf_cache *cache, struct elf_file *elf,
			   const struct file_key *key, const char *path,
			   struct elf_cache_entry **ret_entry)
{
	const char *build_id = elf_file__build_id(elf);
	struct elf_cache_entry *entry;
	int err;

	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	list_init(&entry->lru);
	/* Only warnings need it: without it they name no file. */
	entry->path = path ? strdup(path) : NULL;
	if (build_id[0]) {
		err = hashmap__set(cache->by_build_id, (uintptr_t)build_id, entry, NULL, NULL);
		if (err) {
			free(entry->path);
			free(entry);
			return err;
		}
	}
	entry->elf = elf;
	entry->pages_used = true;
	list_push_front(&cache->lru, &entry->lru);
	cache->file_count++;
	err = add_alias(cache, entry, key);
	if (err) {
		/* Leaves elf to the caller, as on every failure. */
		if (build_id[0])
			hashmap__delete(cache->by_build_id, (uintptr_t)build_id, NULL, NULL);
		list_remove(&entry->lru);
		cache->file_count--;
		free(entry->path);
		free(entry);
		return err;
	}
	count_bytes(cache, entry);
	trim_entries(cache, entry);
	*ret_entry = entry;
	return 0;
}

/*
 * The same file under another device and inode (a container's copy of a
 * library): found by build id, so its symbols are not read a second time.
 */
static int find_by_build_id(struct elf_cache *cache, const char *build_id,
			    const struct file_key *key, struct elf_cache_entry **ret_entry)
{
	struct elf_cache_entry *entry;
	int err;

	if (!build_id[0] ||
	    !hashmap__find(cache->by_build_id, (uintptr_t)build_id, (void **)&entry))
		return -ENOENT;
	err = add_alias(cache, entry, key);
	if (err)
		return err;
	list_move_front(&cache->lru, &entry->lru);
	entry->pages_used = true;
	*ret_entry = entry;
	return 0;
}

/* A file seen before: the most recently used now, and asked for again when due. */
static struct elf_cache_entry *touch_entry(struct elf_cache *cache, struct elf_cache_entry *entry)
{
	list_move_front(&cache->lru, &entry->lru);
	entry->pages_used = true;
	if (entry->debuginfod_at && debug_search__due(cache->debug_search, entry->debuginfod_at))
		request_debug_file(cache, entry);
	return entry;
}

int elf_cache__entry(struct elf_cache *cache, int pid, const struct proc_mapping *mapping,
		     int given_fd, struct elf_cache_entry **ret_entry)
{
	struct file_key key = mapping_key(mapping);
	struct elf_file *elf = NULL;
	struct file_alias *alias;
	struct failed_file *failed;
	int err, fd = -1;

	take_fetched_files(cache);
	if (hashmap__find(cache->by_inode, (uintptr_t)&key, (void **)&alias)) {
		*ret_entry = touch_entry(cache, alias->entry);
		return 0;
	}
	if (hashmap__find(cache->failures, (uintptr_t)&key, (void **)&failed)) {
		/* An open file may succeed where the path failed: try it. */
		if (given_fd < 0 && now_ns() - failed->failed_at_ns < RETRY_INTERVAL_NS)
			return failed->error;
		forget_failure(cache, failed);
	}

	fd = given_fd >= 0 ? given_fd : process_files_open_mapping(pid, mapping);
	if (fd < 0) {
		err = fd;
	} else {
		elf = elf_file__probe(fd);
		err = elf ? 0 : -errno;
	}
	/* A copy of a file read before (one library in many container images). */
	if (!err && find_by_build_id(cache, elf_file__build_id(elf), &key, ret_entry) == 0) {
		cache->stats.files_shared++;
		goto cleanup;
	}
	if (!err)
		err = elf_file__load(elf);
	if (err) {
		cache->stats.open_errors++;
		remember_failure(cache, &key, err);
		goto cleanup;
	}
	cache->stats.files_opened++;
	if (elf_file__is_snapshot(elf))
		cache->stats.files_snapshotted++;

	if (cache->debug_search)
		debug_search__find(cache->debug_search, pid, mapping->path, elf);
	count_losses(cache, elf, mapping->path, 0);
	err = cache_new_entry(cache, elf, &key, mapping->path, ret_entry);
	if (err)
		goto cleanup;
	elf = NULL;
	if (cache->debug_search &&
	    debug_search__wants_fetch(cache->debug_search, (*ret_entry)->elf))
		request_debug_file(cache, *ret_entry);
cleanup:
	elf_file__free(elf);
	if (fd >= 0 && fd != given_fd)
		close(fd);
	return err;
}

int elf_cache__file(struct elf_cache *cache, int pid, const struct proc_mapping *mapping,
		    struct elf_cache_file *ret_file)
{
	struct elf_cache_entry *entry;
	uint64_t bias;
	int err;

	if (!process_files_is_file_backed(mapping))
		return -ENOENT;
	err = elf_cache__entry(cache, pid, mapping, -1, &entry);
	if (err)
		return err;
	err = elf_file__load_bias(entry->elf, mapping->start, mapping->offset,
				  mapping->end - mapping->start, &bias);
	if (err)
		return err;
	*ret_file = (struct elf_cache_file){
		.elf = elf_file__elf(entry->elf),
		.debug_elf = elf_file__debug_elf(entry->elf),
		.build_id = elf_file__build_id(entry->elf),
		.load_bias = bias,
	};
	return 0;
}

int elf_cache__find_path(const struct elf_cache *cache, uint32_t dev_major, uint32_t dev_minor,
			 uint64_t inode, const char **ret_path)
{
	struct file_key key = { dev_major, dev_minor, inode };
	struct file_alias *alias;

	if (!hashmap__find(cache->by_inode, (uintptr_t)&key, (void **)&alias) ||
	    !alias->entry->path)
		return -ENOENT;
	*ret_path = alias->entry->path;
	return 0;
}

/*
 * Only the files used since the last drop: their pages are the only ones
 * that may be back. Every use moves an entry to the front, so they are the
 * first in the list; the others cost no madvise (and no TLB shootdown on
 * every CPU) and no lookup in /proc each window.
 */
void elf_cache__drop_pages(struct elf_cache *cache)
{
	for (struct list_node *node = cache->lru.next; node != &cache->lru; node = node->next) {
		struct elf_cache_entry *entry = container_of(node, struct elf_cache_entry, lru);

		if (!entry->pages_used)
			break;
		entry->pages_used = false;
		elf_drop_pages(elf_file__elf(entry->elf));
		elf_drop_pages(elf_file__debug_elf(entry->elf));
	}
}

void elf_cache__stats(const struct elf_cache *cache, struct elf_cache_stats *ret_stats)
{
	*ret_stats = cache->stats;
	ret_stats->bytes = cache->bytes;
	if (cache->debug_search)
		debug_search__stats(cache->debug_search, &ret_stats->debug_files);
}
