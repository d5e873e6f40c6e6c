// SPDX-License-Identifier: Apache-2.0
/* Addresses to names: a bounded LRU cache of ELF files, their debug files, and kallsyms. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/hashmap.h"
#include "symbolizer/demangle.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/debuginfod_fetcher.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/ksyms.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/symbolizer.h"

#define DEFAULT_MAX_ELF_FILES 256
/* libdw keeps what it decompresses and parses until the DWARF is closed. */
#define DEFAULT_MAX_DWARF_FILES 32
#define DEFAULT_MAX_DWARF_MEMORY (64ULL << 20)
/* 256Ki ranges * 32 bytes = 8 MiB of index per file at most. */
#define DEFAULT_MAX_DWARF_INDEX_ROWS (256 * 1024)
#define DEFAULT_DEBUG_DIR "/usr/lib/debug"
#define DEFAULT_KALLSYMS_PATH "/proc/kallsyms"
/* How long a failed file or a kallsyms miss waits before it is tried again. */
#define RETRY_INTERVAL_NS (60ULL * 1000 * 1000 * 1000)
/* Display names of one location: a name gets at most SYMBOLIZER_MAX_NAME of it. */
#define NAME_STORAGE (256 * 1024)
/* (device, inode) pairs per cached file: copies of one build in many container images. */
#define MAX_ALIASES_PER_FILE 64
/* The negative cache holds this many failed files per allowed ELF file. */
#define FAILED_FILES_PER_ELF_FILE 4
#define DEFAULT_DEBUGINFOD_RETRY_NS (600ULL * 1000 * 1000 * 1000)
/* A cached file's debuginfod fetch is under way: wait for its result. */
#define DEBUGINFOD_WAITING UINT64_MAX

struct list_node {
	struct list_node *prev, *next;
};

/* The identity of a mapped file as /proc/PID/maps shows it. */
struct file_key {
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t inode;
};

struct cached_file;

/* One (device, inode) under which a cached file was seen; its entry in by_inode. */
struct file_alias {
	struct file_key key;
	struct cached_file *file;
	struct file_alias *next; /* the file's other aliases, newest first */
};

struct cached_file {
	struct elf_file *elf;
	struct list_node lru; /* in symbolizer->lru, most recently used first */
	struct file_alias *aliases;
	size_t alias_count;
	struct dwarf_info *dwarf; /* opened on first lookup; NULL when none or evicted */
	bool dwarf_tried; /* the file has no readable DWARF: do not look again */
	struct list_node dwarf_lru; /* in symbolizer->dwarf_lru while dwarf is open */
	/*
	 * When to ask debuginfod for this file's debug file: 0 never (it has
	 * DWARF, no build id, or no servers), DEBUGINFOD_WAITING while a fetch
	 * is under way, else a monotonic time (after a failure or a full queue).
	 */
	uint64_t debuginfod_at_ns;
};

/* The negative cache: a file that failed is not retried before RETRY_INTERVAL_NS. */
struct failed_file {
	struct file_key key;
	uint64_t failed_at_ns;
	int error;
	struct list_node age; /* in symbolizer->failures_by_age, newest first */
};

struct symbolizer {
	size_t max_elf_files;
	size_t max_failed_files;
	char *kallsyms_path;
	char *debug_dir;
	struct hashmap *by_build_id; /* build id hex -> struct cached_file */
	struct hashmap *by_inode; /* struct file_key * -> struct file_alias */
	struct hashmap *failures; /* struct file_key * -> struct failed_file */
	struct list_node lru;
	size_t file_count;
	struct list_node failures_by_age;
	struct debuginfod_fetcher *debuginfod; /* NULL without servers */
	uint64_t debuginfod_retry_ns;
	struct ksyms *ksyms;
	struct perf_maps *perf_maps; /* names for JIT code */
	bool ksyms_tried;
	int ksyms_error; /* why the last load failed */
	uint64_t ksyms_loaded_at_ns; /* last load attempt */
	size_t max_dwarf_files;
	size_t max_dwarf_index_rows;
	uint64_t max_dwarf_memory;
	struct list_node dwarf_lru; /* cached files with open DWARF, most recently used first */
	size_t dwarf_count;
	uint64_t dwarf_memory; /* dwarf_info__memory of every open file, summed */
	struct dwarf_info_stats closed_dwarf_stats; /* of DWARF closed so far */
	struct symbolizer_stats stats;
	/* Display names of the last resolved location. */
	char names[NAME_STORAGE];
	size_t names_used;
};

static void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static void list_remove(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

static void list_push_front(struct list_node *head, struct list_node *node)
{
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
}

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

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

/* Regular files only: not anonymous memory, [vdso], [heap] and the like. */
static bool is_file_backed(const struct proc_mapping *mapping)
{
	return mapping->inode != 0 && mapping->path && mapping->path[0] == '/';
}

struct symbolizer *symbolizer__new(const struct symbolizer_opts *opts)
{
	struct symbolizer_opts defaults = {};
	struct symbolizer *symbolizer;
	int err = 0;

	if (!opts)
		opts = &defaults;
	symbolizer = calloc(1, sizeof(*symbolizer));
	if (!symbolizer) {
		err = -ENOMEM;
		goto cleanup;
	}
	list_init(&symbolizer->lru);
	list_init(&symbolizer->failures_by_age);
	list_init(&symbolizer->dwarf_lru);
	symbolizer->max_dwarf_files =
		opts->max_dwarf_files ? opts->max_dwarf_files : DEFAULT_MAX_DWARF_FILES;
	symbolizer->max_dwarf_memory =
		opts->max_dwarf_memory ? opts->max_dwarf_memory : DEFAULT_MAX_DWARF_MEMORY;
	symbolizer->max_dwarf_index_rows = opts->max_dwarf_index_rows
						   ? opts->max_dwarf_index_rows
						   : DEFAULT_MAX_DWARF_INDEX_ROWS;
	symbolizer->max_elf_files =
		opts->max_elf_files ? opts->max_elf_files : DEFAULT_MAX_ELF_FILES;
	symbolizer->max_failed_files = symbolizer->max_elf_files * FAILED_FILES_PER_ELF_FILE;
	symbolizer->kallsyms_path =
		strdup(opts->kallsyms_path ? opts->kallsyms_path : DEFAULT_KALLSYMS_PATH);
	symbolizer->debug_dir = strdup(opts->debug_dir ? opts->debug_dir : DEFAULT_DEBUG_DIR);
	symbolizer->by_build_id = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	symbolizer->by_inode = hashmap__new(hash_file_key, equal_file_key, NULL);
	symbolizer->failures = hashmap__new(hash_file_key, equal_file_key, NULL);
	symbolizer->perf_maps = perf_maps__new(NULL);
	if (!symbolizer->kallsyms_path || !symbolizer->debug_dir || !symbolizer->by_build_id ||
	    !symbolizer->by_inode || !symbolizer->failures || !symbolizer->perf_maps) {
		err = -ENOMEM;
		goto cleanup;
	}
	symbolizer->debuginfod_retry_ns = opts->debuginfod_retry_ms
						  ? opts->debuginfod_retry_ms * 1000000
						  : DEFAULT_DEBUGINFOD_RETRY_NS;
	if (opts->debuginfod_urls && opts->debuginfod_urls[strspn(opts->debuginfod_urls, " ")]) {
		const struct debuginfod_fetcher_opts fetcher_opts = {
			.urls = opts->debuginfod_urls,
			.max_queued = opts->debuginfod_max_queued,
			.timeout_ns = opts->debuginfod_timeout_ms * 1000000,
			.retry_ns = symbolizer->debuginfod_retry_ns,
		};

		symbolizer->debuginfod = debuginfod_fetcher__new(&fetcher_opts);
		if (!symbolizer->debuginfod)
			err = -errno;
	}
cleanup:
	if (err) {
		symbolizer__free(symbolizer);
		errno = -err;
		return NULL;
	}
	return symbolizer;
}

static void drop_alias(struct symbolizer *symbolizer, struct file_alias *alias)
{
	hashmap__delete(symbolizer->by_inode, (uintptr_t)&alias->key, NULL, NULL);
	alias->file->alias_count--;
	free(alias);
}

static void add_dwarf_stats(struct dwarf_info_stats *total, const struct dwarf_info_stats *more)
{
	total->index_resets += more->index_resets;
	total->units_not_indexed += more->units_not_indexed;
	total->chains_truncated += more->chains_truncated;
}

/*
 * Frees what libdw holds for the file; it is read again on its next lookup,
 * from the file's debug file then (one that had none may have been replaced).
 */
static void close_dwarf(struct symbolizer *symbolizer, struct cached_file *file)
{
	struct dwarf_info_stats stats;

	file->dwarf_tried = false;
	if (!file->dwarf)
		return;
	dwarf_info__stats(file->dwarf, &stats);
	add_dwarf_stats(&symbolizer->closed_dwarf_stats, &stats);
	symbolizer->dwarf_memory -= dwarf_info__memory(file->dwarf);
	dwarf_info__free(file->dwarf);
	file->dwarf = NULL;
	list_remove(&file->dwarf_lru);
	symbolizer->dwarf_count--;
}

static void evict_file(struct symbolizer *symbolizer, struct cached_file *file)
{
	const char *build_id = elf_file__build_id(file->elf);

	while (file->aliases) {
		struct file_alias *alias = file->aliases;

		file->aliases = alias->next;
		drop_alias(symbolizer, alias);
	}
	if (build_id[0])
		hashmap__delete(symbolizer->by_build_id, (uintptr_t)build_id, NULL, NULL);
	list_remove(&file->lru);
	symbolizer->file_count--;
	/* libdw reads from the ELF handles: closed before them. */
	close_dwarf(symbolizer, file);
	elf_file__free(file->elf);
	free(file);
}

static void forget_failure(struct symbolizer *symbolizer, struct failed_file *failed)
{
	hashmap__delete(symbolizer->failures, (uintptr_t)&failed->key, NULL, NULL);
	list_remove(&failed->age);
	free(failed);
}

void symbolizer__free(struct symbolizer *symbolizer)
{
	if (!symbolizer)
		return;
	/* First: a fetch under way is abandoned, its thread joined. */
	debuginfod_fetcher__free(symbolizer->debuginfod);
	while (symbolizer->lru.next != &symbolizer->lru)
		evict_file(symbolizer, container_of(symbolizer->lru.next, struct cached_file, lru));
	while (symbolizer->failures_by_age.next != &symbolizer->failures_by_age)
		forget_failure(symbolizer, container_of(symbolizer->failures_by_age.next,
							struct failed_file, age));
	hashmap__free(symbolizer->by_build_id);
	hashmap__free(symbolizer->by_inode);
	hashmap__free(symbolizer->failures);
	ksyms__free(symbolizer->ksyms);
	perf_maps__free(symbolizer->perf_maps);
	free(symbolizer->kallsyms_path);
	free(symbolizer->debug_dir);
	free(symbolizer);
}

static int add_alias(struct symbolizer *symbolizer, struct cached_file *file,
		     const struct file_key *key)
{
	struct file_alias *alias, **oldest;
	int err;

	if (file->alias_count >= MAX_ALIASES_PER_FILE) {
		/* Forgetting an alias only costs a reopen, found again by build id. */
		for (oldest = &file->aliases; (*oldest)->next; oldest = &(*oldest)->next)
			;
		alias = *oldest;
		*oldest = NULL;
		drop_alias(symbolizer, alias);
	}
	alias = calloc(1, sizeof(*alias));
	if (!alias)
		return -ENOMEM;
	alias->key = *key;
	alias->file = file;
	err = hashmap__set(symbolizer->by_inode, (uintptr_t)&alias->key, alias, NULL, NULL);
	if (err) {
		free(alias);
		return err;
	}
	alias->next = file->aliases;
	file->aliases = alias;
	file->alias_count++;
	return 0;
}

static void remember_failure(struct symbolizer *symbolizer, const struct file_key *key, int error)
{
	struct failed_file *failed;

	if (hashmap__size(symbolizer->failures) >= symbolizer->max_failed_files) {
		forget_failure(symbolizer, container_of(symbolizer->failures_by_age.prev,
							struct failed_file, age));
		symbolizer->stats.elf_failures_evicted++;
	}
	failed = calloc(1, sizeof(*failed));
	if (!failed)
		return; /* Not remembering only means trying again sooner. */
	failed->key = *key;
	failed->failed_at_ns = now_ns();
	failed->error = error;
	if (hashmap__set(symbolizer->failures, (uintptr_t)&failed->key, failed, NULL, NULL)) {
		free(failed);
		return;
	}
	list_push_front(&symbolizer->failures_by_age, &failed->age);
}

/* A file descriptor, or a negative errno. */
static int open_readonly(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * A file descriptor for the file behind a mapping, or a negative errno.
 * /proc/PID/map_files works for deleted files and any mount namespace;
 * /proc/PID/root/PATH for readers without the capability map_files wants;
 * PATH when the process is gone, if it is still the same inode.
 */
static int open_mapping_file(int pid, const struct proc_mapping *mapping)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, mapping->start,
		 mapping->end);
	fd = open_readonly(path);
	if (fd >= 0 || mapping->deleted)
		return fd;
	if (snprintf(path, sizeof(path), "/proc/%d/root%s", pid, mapping->path) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open_readonly(path);
	if (fd >= 0)
		return fd;
	fd = open_readonly(mapping->path);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != mapping->inode)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Accepts a candidate debug file when its CRC (if one is expected) and build id match. */
static int try_debug_file(struct elf_file *elf, const char *path, bool check_crc,
			  uint32_t expected_crc)
{
	int err = 0, fd;
	uint32_t crc;

	fd = open_readonly(path);
	if (fd < 0)
		return fd;
	if (check_crc) {
		err = elf_file__crc32(fd, &crc);
		if (!err && crc != expected_crc)
			err = -ESTALE;
	}
	if (!err)
		err = elf_file__use_debug_file(elf, fd);
	close(fd);
	return err;
}

/* By build id under the debug directories, the host's and the process's. */
static int find_debug_by_build_id(const struct symbolizer *symbolizer, int pid,
				  struct elf_file *elf)
{
	const char *build_id = elf_file__build_id(elf);
	char path[PATH_MAX], root_debug_dir[64];

	if (strlen(build_id) <= 2)
		return -ENOENT;
	snprintf(root_debug_dir, sizeof(root_debug_dir), "/proc/%d/root%s", pid, DEFAULT_DEBUG_DIR);
	const char *debug_dirs[] = { symbolizer->debug_dir, root_debug_dir };

	for (size_t i = 0; i < ARRAY_SIZE(debug_dirs); i++) {
		if (snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", debug_dirs[i],
			     build_id, build_id + 2) < (int)sizeof(path) &&
		    try_debug_file(elf, path, false, 0) == 0)
			return 0;
	}
	return -ENOENT;
}

/*
 * By .gnu_debuglink, as gdb does: next to the file, in .debug/ next to it,
 * and under the debug directories followed by the file's directory. The
 * file's own directory is read through the process's root.
 */
static int find_by_debuglink(const struct symbolizer *symbolizer, int pid, const char *file_path,
			     struct elf_file *elf)
{
	char path[PATH_MAX], dir[PATH_MAX], root[32], root_debug_dir[64];
	const char *link, *slash;
	uint32_t crc;

	if (elf_file__debuglink(elf, &link, &crc) < 0 || strchr(link, '/'))
		return -ENOENT;
	slash = strrchr(file_path, '/');
	if (!slash || slash - file_path >= (int)sizeof(dir))
		return -ENOENT;
	/* The file's directory, without the trailing slash. */
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file_path), file_path);
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	snprintf(root_debug_dir, sizeof(root_debug_dir), "%s%s", root, DEFAULT_DEBUG_DIR);
	/* prefix + dir + subdir + "/" + link */
	const char *candidates[][2] = {
		{ root, "" },
		{ root, "/.debug" },
		{ symbolizer->debug_dir, "" },
		{ root_debug_dir, "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		if (snprintf(path, sizeof(path), "%s%s%s/%s", candidates[i][0], dir,
			     candidates[i][1], link) < (int)sizeof(path) &&
		    try_debug_file(elf, path, true, crc) == 0)
			return 0;
	}
	return -ENOENT;
}

/*
 * Gives a newly opened file the best debug file found without waiting (the
 * search order is in symbolizer.h); debuginfod comes later, in the
 * background. Not finding one is normal (.dynsym still names exported
 * functions).
 */
static void find_debug_file(struct symbolizer *symbolizer, int pid, const char *file_path,
			    struct elf_file *elf)
{
	if (elf_file__has_debug_info(elf))
		return;
	if (find_debug_by_build_id(symbolizer, pid, elf) == 0)
		symbolizer->stats.debug_files_build_id++;
	else if (find_by_debuglink(symbolizer, pid, file_path, elf) == 0)
		symbolizer->stats.debug_files_debuglink++;
	else if (!elf_file__has_symtab(elf) && elf_file__use_minidebuginfo(elf) == 0)
		symbolizer->stats.debug_files_minidebuginfo++;
}

/* Takes a debug file debuginfod fetched: 0, or why it cannot be used. */
static int attach_fetched(struct symbolizer *symbolizer, struct cached_file *file, int fd)
{
	int err;

	/* DWARF read from the old debug file may point into it: closed first. */
	close_dwarf(symbolizer, file);
	err = elf_file__use_debug_file(file->elf, fd);
	if (err)
		return err;
	symbolizer->stats.debug_files_debuginfod++;
	file->debuginfod_at_ns = 0;
	return 0;
}

/*
 * Asks debuginfod for a cached file's debug file. One fetched earlier (the
 * file was evicted and opened again) is taken at once; otherwise the file
 * waits for the result, or tries again after a failure or a full queue.
 */
static void request_debug_file(struct symbolizer *symbolizer, struct cached_file *file)
{
	const char *build_id = elf_file__build_id(file->elf), *path;
	int err, fd;

	err = debuginfod_fetcher__find(symbolizer->debuginfod, build_id, &path);
	if (err == 0) {
		fd = open_readonly(path);
		if (fd >= 0) {
			err = attach_fetched(symbolizer, file, fd);
			close(fd);
			if (err)
				debuginfod_fetcher__reject(symbolizer->debuginfod, build_id, err);
			else
				return;
		} else {
			/* Cleaned out of libdebuginfod's cache: fetch it again. */
			debuginfod_fetcher__forget(symbolizer->debuginfod, build_id);
			err = debuginfod_fetcher__find(symbolizer->debuginfod, build_id, &path);
		}
	}
	if (err == -EINPROGRESS)
		file->debuginfod_at_ns = DEBUGINFOD_WAITING;
	else if (err == -ENOSPC)
		file->debuginfod_at_ns = now_ns(); /* as soon as there is room */
	else if (err == -EINVAL)
		file->debuginfod_at_ns = 0;
	else
		file->debuginfod_at_ns = now_ns() + symbolizer->debuginfod_retry_ns;
}

/* Files that still lack DWARF and have a build id are worth asking debuginfod for. */
static void want_debug_file(struct symbolizer *symbolizer, struct cached_file *file)
{
	if (symbolizer->debuginfod && !elf_file__has_debug_info(file->elf) &&
	    elf_file__build_id(file->elf)[0])
		request_debug_file(symbolizer, file);
}

/* Asks again for a file whose last request failed or found the queue full, when due. */
static void retry_debug_file(struct symbolizer *symbolizer, struct cached_file *file)
{
	if (file->debuginfod_at_ns == 0 || file->debuginfod_at_ns == DEBUGINFOD_WAITING ||
	    now_ns() < file->debuginfod_at_ns ||
	    !debuginfod_fetcher__has_room(symbolizer->debuginfod))
		return;
	request_debug_file(symbolizer, file);
}

/* Hands finished fetches to their cached files (a file evicted meanwhile gets it when reopened). */
static void take_fetched_files(struct symbolizer *symbolizer)
{
	struct debuginfod_result result;
	struct cached_file *file;
	int err;

	if (!symbolizer->debuginfod)
		return;
	while (debuginfod_fetcher__take_result(symbolizer->debuginfod, &result) == 0) {
		if (!hashmap__find(symbolizer->by_build_id, (uintptr_t)result.build_id,
				   (void **)&file))
			file = NULL;
		err = result.error;
		if (result.fd >= 0) {
			err = file ? attach_fetched(symbolizer, file, result.fd) : 0;
			close(result.fd);
			if (err)
				debuginfod_fetcher__reject(symbolizer->debuginfod, result.build_id,
							   err);
		}
		if (err && file)
			file->debuginfod_at_ns = now_ns() + symbolizer->debuginfod_retry_ns;
	}
}

static void touch_file(struct symbolizer *symbolizer, struct cached_file *file)
{
	list_remove(&file->lru);
	list_push_front(&symbolizer->lru, &file->lru);
}

static int cache_new_file(struct symbolizer *symbolizer, struct elf_file *elf,
			  const struct file_key *key, struct cached_file **ret_file)
{
	const char *build_id = elf_file__build_id(elf);
	struct cached_file *file;
	int err;

	file = calloc(1, sizeof(*file));
	if (!file)
		return -ENOMEM;
	list_init(&file->lru);
	list_init(&file->dwarf_lru);
	if (build_id[0]) {
		err = hashmap__set(symbolizer->by_build_id, (uintptr_t)build_id, file, NULL, NULL);
		if (err) {
			free(file);
			return err;
		}
	}
	file->elf = elf;
	list_push_front(&symbolizer->lru, &file->lru);
	symbolizer->file_count++;
	err = add_alias(symbolizer, file, key);
	if (err) {
		/* Leaves elf to the caller, as on every failure. */
		file->elf = NULL;
		if (build_id[0])
			hashmap__delete(symbolizer->by_build_id, (uintptr_t)build_id, NULL, NULL);
		list_remove(&file->lru);
		symbolizer->file_count--;
		free(file);
		return err;
	}
	/* The new file is at the front, so the back is never the file just added. */
	while (symbolizer->file_count > symbolizer->max_elf_files) {
		evict_file(symbolizer, container_of(symbolizer->lru.prev, struct cached_file, lru));
		symbolizer->stats.elf_files_evicted++;
	}
	*ret_file = file;
	return 0;
}

/*
 * The same file under another device and inode (a container's copy of a
 * library): found by build id, so its symbols are not read a second time.
 */
static int find_by_build_id(struct symbolizer *symbolizer, const char *build_id,
			    const struct file_key *key, struct cached_file **ret_file)
{
	struct cached_file *file;
	int err;

	if (!build_id[0] ||
	    !hashmap__find(symbolizer->by_build_id, (uintptr_t)build_id, (void **)&file))
		return -ENOENT;
	err = add_alias(symbolizer, file, key);
	if (err)
		return err;
	touch_file(symbolizer, file);
	*ret_file = file;
	return 0;
}

/*
 * The cached file behind a file-backed mapping, opened on first use:
 * through given_fd when the caller opened it while the process lived (it
 * stays the caller's), else through /proc.
 */
static int get_file_from(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
			 int given_fd, struct cached_file **ret_file)
{
	struct file_key key = mapping_key(mapping);
	struct elf_file *elf = NULL;
	struct file_alias *alias;
	struct failed_file *failed;
	int err, fd = -1;

	take_fetched_files(symbolizer);
	if (hashmap__find(symbolizer->by_inode, (uintptr_t)&key, (void **)&alias)) {
		touch_file(symbolizer, alias->file);
		if (alias->file->debuginfod_at_ns)
			retry_debug_file(symbolizer, alias->file);
		*ret_file = alias->file;
		return 0;
	}
	if (hashmap__find(symbolizer->failures, (uintptr_t)&key, (void **)&failed)) {
		/* An open file may succeed where the path failed: try it. */
		if (given_fd < 0 && now_ns() - failed->failed_at_ns < RETRY_INTERVAL_NS)
			return failed->error;
		forget_failure(symbolizer, failed);
	}

	fd = given_fd >= 0 ? given_fd : open_mapping_file(pid, mapping);
	if (fd < 0) {
		err = fd;
	} else {
		elf = elf_file__probe(fd);
		err = elf ? 0 : -errno;
	}
	/* A copy of a file read before (one library in many container images). */
	if (!err && find_by_build_id(symbolizer, elf_file__build_id(elf), &key, ret_file) == 0) {
		symbolizer->stats.elf_files_shared++;
		goto cleanup;
	}
	if (!err)
		err = elf_file__load(elf);
	if (err) {
		symbolizer->stats.elf_open_errors++;
		remember_failure(symbolizer, &key, err);
		goto cleanup;
	}
	symbolizer->stats.elf_files_opened++;

	find_debug_file(symbolizer, pid, mapping->path, elf);
	err = cache_new_file(symbolizer, elf, &key, ret_file);
	if (err)
		goto cleanup;
	elf = NULL;
	want_debug_file(symbolizer, *ret_file);
cleanup:
	elf_file__free(elf);
	if (fd >= 0 && fd != given_fd)
		close(fd);
	return err;
}

static int get_file(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
		    struct cached_file **ret_file)
{
	return get_file_from(symbolizer, pid, mapping, -1, ret_file);
}

int symbolizer__prepare_process_files(struct symbolizer *symbolizer, int pid,
				      const struct proc_maps *maps, const int *fds)
{
	struct cached_file *file;
	bool jit = false;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (!fds && access(path, F_OK) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];

		if (!(mapping->perms & PROC_MAP_EXEC))
			continue;
		jit |= perf_maps__may_name(mapping);
		/* Failures are counted in elf_open_errors and remembered. */
		if (is_file_backed(mapping))
			get_file_from(symbolizer, pid, mapping, fds ? fds[i] : -1, &file);
	}
	/* Where its perf map is can only be asked while it runs; most have none. */
	if (jit)
		perf_maps__prepare(symbolizer->perf_maps, pid);
	return 0;
}

int symbolizer__prepare_process(struct symbolizer *symbolizer, int pid,
				const struct proc_maps *maps)
{
	return symbolizer__prepare_process_files(symbolizer, pid, maps, NULL);
}

/*
 * Room for one display name in the symbolizer's name storage, which the
 * location's strings point into until the next call.
 */
static char *name_slot(struct symbolizer *symbolizer, size_t *ret_size)
{
	size_t room = sizeof(symbolizer->names) - symbolizer->names_used;

	*ret_size = room < SYMBOLIZER_MAX_NAME ? room : SYMBOLIZER_MAX_NAME;
	return symbolizer->names + symbolizer->names_used;
}

/* Copies up to length bytes of name into a slot, cut with "..." when longer than the slot. */
static const char *store_name(struct symbolizer *symbolizer, const char *name, size_t length)
{
	size_t size;
	char *slot = name_slot(symbolizer, &size);

	if (size < 4)
		return NULL;
	if (length >= size) {
		length = size - 4;
		/* Never half a UTF-8 sequence before the ellipsis. */
		while (length > 0 && ((unsigned char)name[length] & 0xc0) == 0x80)
			length--;
		memcpy(slot + length, "...", 4);
		symbolizer->stats.names_truncated++;
	} else {
		slot[length] = '\0';
	}
	memcpy(slot, name, length);
	symbolizer->names_used += strlen(slot) + 1;
	return slot;
}

/*
 * The name people read: demangled (C++, Rust), without a symbol version
 * ("__libc_start_main@@GLIBC_2.34" reads as "__libc_start_main"). Returns
 * raw itself when nothing changes.
 */
static const char *display_name(struct symbolizer *symbolizer, const char *raw)
{
	const char *version = strchr(raw, '@');
	size_t length = version && version > raw ? (size_t)(version - raw) : strlen(raw);
	char unversioned[DEMANGLE_MAX_MANGLED + 1];
	const char *mangled = raw;
	bool truncated = false;
	size_t size;
	char *slot;

	if (length != strlen(raw) && length <= DEMANGLE_MAX_MANGLED) {
		memcpy(unversioned, raw, length);
		unversioned[length] = '\0';
		mangled = unversioned;
	}
	slot = name_slot(symbolizer, &size);
	if (size > 4 && demangle__name(mangled, slot, size, &truncated) == 0) {
		symbolizer->names_used += strlen(slot) + 1;
		if (truncated)
			symbolizer->stats.names_truncated++;
		return slot;
	}
	if (length == strlen(raw))
		return raw;
	return store_name(symbolizer, raw, length) ?: raw;
}

/*
 * The length of name without the suffixes GCC gives the parts it splits off
 * or specializes: "f.cold", "f.isra.0", "f.part.1", "f.constprop.0".
 */
static size_t unsplit_length(const char *name)
{
	static const char *const kinds[] = { "cold", "isra", "part", "constprop", "lto_priv" };
	size_t length = strlen(name);

	for (;;) {
		size_t end = length, dot;
		bool known = false;

		while (end > 0 && name[end - 1] >= '0' && name[end - 1] <= '9')
			end--;
		if (end < length && end > 0 && name[end - 1] == '.')
			end--; /* ".0" of ".isra.0" */
		for (dot = end; dot > 0 && name[dot - 1] != '.'; dot--)
			;
		if (dot == 0)
			return length;
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
			known = known || (end - dot == strlen(kinds[i]) &&
					  strncmp(name + dot, kinds[i], end - dot) == 0);
		if (!known)
			return length;
		length = dot - 1;
	}
}

/* A local C++ symbol named for its function, as DWARF would: "_ZN1f1gEv.isra.0" as f::g(). */
static const char *unsplit_display_name(struct symbolizer *symbolizer, const char *symbol)
{
	size_t length = unsplit_length(symbol);
	char mangled[DEMANGLE_MAX_MANGLED + 1];

	if (length == strlen(symbol) || length > DEMANGLE_MAX_MANGLED)
		return display_name(symbolizer, symbol);
	memcpy(mangled, symbol, length);
	mangled[length] = '\0';
	return display_name(symbolizer, mangled);
}

static struct symbolized_frame symbol_frame(struct symbolizer *symbolizer, const char *name)
{
	return (struct symbolized_frame){
		.function = display_name(symbolizer, name),
		.system_name = name,
	};
}

/* The file's DWARF, read on first use; NULL when it has none. */
static struct dwarf_info *file_dwarf(struct symbolizer *symbolizer, struct cached_file *file)
{
	struct Elf *dwarf_elf;

	if (file->dwarf) {
		list_remove(&file->dwarf_lru);
		list_push_front(&symbolizer->dwarf_lru, &file->dwarf_lru);
		return file->dwarf;
	}
	if (file->dwarf_tried)
		return NULL;
	file->dwarf_tried = true;
	dwarf_elf = elf_file__dwarf_elf(file->elf);
	if (!dwarf_elf)
		return NULL;
	file->dwarf = dwarf_info__new(dwarf_elf, symbolizer->max_dwarf_index_rows);
	if (!file->dwarf) {
		if (errno != ENOENT)
			symbolizer->stats.dwarf_errors++;
		return NULL;
	}
	list_push_front(&symbolizer->dwarf_lru, &file->dwarf_lru);
	symbolizer->dwarf_count++;
	symbolizer->dwarf_memory += dwarf_info__memory(file->dwarf);
	symbolizer->stats.dwarf_files_opened++;
	return file->dwarf;
}

/*
 * The frame of the function containing the address. An exported symbol
 * names it as its callers know it ("malloc", not glibc's "__libc_malloc").
 * Otherwise DWARF does, which names the parts GCC splits off a function
 * ("f.cold", "f.isra.0", "f.constprop.0") after the function itself, so
 * their samples add up in one place; but where DWARF has only a plain name
 * for a local C++ function (GCC gives internal-linkage functions no linkage
 * name: "_M_invoke"), the symbol's demangled name says more, split-off
 * suffix dropped. A local symbol names what DWARF does not cover.
 */
static struct symbolized_frame outer_frame(struct symbolizer *symbolizer, const char *symbol,
					   bool exported, const char *dwarf_name)
{
	struct symbolized_frame frame = {};

	if (symbol && (exported || !dwarf_name))
		return symbol_frame(symbolizer, symbol);
	if (!dwarf_name)
		return frame;
	if (symbol && !demangle__is_mangled(dwarf_name) && demangle__is_mangled(symbol)) {
		frame.function = unsplit_display_name(symbolizer, symbol);
		frame.system_name = symbol;
		return frame;
	}
	return symbol_frame(symbolizer, dwarf_name);
}

/*
 * Closes the least recently used DWARF while more files are open than
 * max_dwarf_files, or while they hold more than max_dwarf_memory (then
 * keeping one at least); never current's, the file being read.
 */
static void trim_open_dwarf(struct symbolizer *symbolizer, const struct cached_file *current)
{
	for (;;) {
		bool too_many = symbolizer->dwarf_count > symbolizer->max_dwarf_files;
		bool too_large = symbolizer->dwarf_memory > symbolizer->max_dwarf_memory &&
				 symbolizer->dwarf_count > 1;
		struct cached_file *oldest;

		if (!too_many && !too_large)
			return;
		oldest = container_of(symbolizer->dwarf_lru.prev, struct cached_file, dwarf_lru);
		if (oldest == current)
			return;
		close_dwarf(symbolizer, oldest);
		if (too_many)
			symbolizer->stats.dwarf_files_evicted++;
		else
			symbolizer->stats.dwarf_memory_evictions++;
	}
}

/* Symbol table and DWARF for an ELF virtual address: lines and inlined frames from DWARF. */
static void symbolize_vaddr(struct symbolizer *symbolizer, struct cached_file *file, uint64_t vaddr,
			    struct symbolized_location *location)
{
	struct dwarf_info_frame frames[SYMBOLIZER_MAX_FRAMES];
	struct dwarf_info *dwarf = file_dwarf(symbolizer, file);
	const char *symbol = NULL;
	bool exported = false;
	size_t count = 0;

	/* After file_dwarf, which made file the most recently used. */
	trim_open_dwarf(symbolizer, file);

	location->frame_count = 0;
	elf_file__find_symbol(file->elf, vaddr, &symbol, &exported);
	if (dwarf) {
		uint64_t memory = dwarf_info__memory(dwarf);

		if (dwarf_info__lookup(dwarf, vaddr, frames, SYMBOLIZER_MAX_FRAMES, &count) == 0)
			symbolizer->stats.dwarf_lookups++;
		/* A unit's line table read, or its index built. */
		symbolizer->dwarf_memory += dwarf_info__memory(dwarf) - memory;
	}
	for (size_t i = 0; i < count; i++) {
		const struct dwarf_info_frame *frame = &frames[i];
		struct symbolized_frame *out = &location->frames[i];
		bool outermost = i + 1 == count;

		if (outermost)
			*out = outer_frame(symbolizer, symbol, exported, frame->name);
		else if (frame->name)
			*out = symbol_frame(symbolizer, frame->name);
		else
			/* An inlined call whose DWARF names no function: llvm-symbolizer's "??". */
			*out = (struct symbolized_frame){ .function = "??" };
		out->file = frame->file;
		out->line = frame->line;
		out->start_line = frame->start_line;
	}
	/* Lines without any name are no frame pprof can show. */
	if (count && location->frames[count - 1].function) {
		location->frame_count = count;
		return;
	}
	if (symbol) {
		location->frames[0] = symbol_frame(symbolizer, symbol);
		location->frame_count = 1;
	}
}

/* Code a JIT wrote into anonymous memory or a memfd, named by the process's perf map. */
static int resolve_jit(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
		       uint64_t target, struct symbolized_location *location)
{
	const char *name;

	if (!perf_maps__may_name(mapping) ||
	    perf_maps__lookup(symbolizer->perf_maps, pid, target, &name) < 0)
		return -ENOENT;
	/* Taken as written: a JIT's names are not versioned ELF symbols. */
	location->frames[0] = (struct symbolized_frame){ .function = name, .system_name = name };
	location->frame_count = 1;
	return 0;
}

int symbolizer__resolve_user(struct symbolizer *symbolizer, int pid,
			     const struct proc_mapping *mapping, uint64_t addr,
			     bool is_return_address, struct symbolized_location *ret_location)
{
	uint64_t target = is_return_address ? addr - 1 : addr, vaddr;
	struct cached_file *file;
	int err;

	symbolizer->stats.user_lookups++;
	symbolizer->names_used = 0;
	if (target >= mapping->start && target < mapping->end &&
	    resolve_jit(symbolizer, pid, mapping, target, ret_location) == 0)
		return 0;
	/* The vdso has no file to open; its frames keep their address. */
	if (!is_file_backed(mapping) || target < mapping->start || target >= mapping->end) {
		symbolizer->stats.user_misses++;
		ret_location->frame_count = 0;
		return 0;
	}
	err = get_file(symbolizer, pid, mapping, &file);
	if (err)
		return err;
	if (elf_file__offset_to_vaddr(file->elf, target - mapping->start + mapping->offset,
				      &vaddr) < 0) {
		ret_location->frame_count = 0;
	} else {
		symbolize_vaddr(symbolizer, file, vaddr, ret_location);
	}
	if (!ret_location->frame_count)
		symbolizer->stats.user_misses++;
	return 0;
}

int symbolizer__build_id(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
			 const char **ret_build_id)
{
	struct cached_file *file;
	int err;

	if (!is_file_backed(mapping)) {
		*ret_build_id = "";
		return 0;
	}
	err = get_file(symbolizer, pid, mapping, &file);
	if (err)
		return err;
	*ret_build_id = elf_file__build_id(file->elf);
	return 0;
}

int symbolizer__file(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
		     struct symbolizer_file *ret_file)
{
	struct cached_file *file;
	uint64_t bias;
	int err;

	if (!is_file_backed(mapping))
		return -ENOENT;
	err = get_file(symbolizer, pid, mapping, &file);
	if (err)
		return err;
	err = elf_file__load_bias(file->elf, mapping->start, mapping->offset,
				  mapping->end - mapping->start, &bias);
	if (err)
		return err;
	*ret_file = (struct symbolizer_file){
		.elf = elf_file__elf(file->elf),
		.debug_elf = elf_file__debug_elf(file->elf),
		.build_id = elf_file__build_id(file->elf),
		.load_bias = bias,
	};
	return 0;
}

/* Loads kallsyms on first use; after a failure, tries again once the retry interval passed. */
static int load_ksyms(struct symbolizer *symbolizer, bool reload)
{
	uint64_t now = now_ns();
	struct ksyms *ksyms;

	if (symbolizer->ksyms_tried && now - symbolizer->ksyms_loaded_at_ns < RETRY_INTERVAL_NS)
		return symbolizer->ksyms ? 0 : symbolizer->ksyms_error;
	if (symbolizer->ksyms && !reload)
		return 0;
	if (symbolizer->ksyms)
		symbolizer->stats.kallsyms_reloads++;
	symbolizer->ksyms_tried = true;
	symbolizer->ksyms_loaded_at_ns = now;
	ksyms = ksyms__load(symbolizer->kallsyms_path);
	if (!ksyms) {
		/* A failed reload keeps the table we have. */
		symbolizer->ksyms_error = -errno;
		return symbolizer->ksyms ? 0 : symbolizer->ksyms_error;
	}
	ksyms__free(symbolizer->ksyms);
	symbolizer->ksyms = ksyms;
	return 0;
}

int symbolizer__resolve_kernel(struct symbolizer *symbolizer, uint64_t addr, bool is_return_address,
			       struct symbolized_location *ret_location)
{
	uint64_t target = is_return_address ? addr - 1 : addr;
	struct ksym sym;
	int err;

	symbolizer->stats.kernel_lookups++;
	symbolizer->names_used = 0;
	if (!symbolizer->ksyms) {
		err = load_ksyms(symbolizer, false);
		if (err)
			return err;
	}
	err = ksyms__lookup(symbolizer->ksyms, target, &sym);
	/* A module loaded since the last read: reread, at most once per interval. */
	if (err == -ENOENT && load_ksyms(symbolizer, true) == 0)
		err = ksyms__lookup(symbolizer->ksyms, target, &sym);
	if (err) {
		symbolizer->stats.kernel_misses++;
		ret_location->frame_count = 0;
		return 0;
	}
	/* Rust code in the kernel has mangled (v0) names too. */
	ret_location->frames[0] = symbol_frame(symbolizer, sym.name);
	ret_location->frame_count = 1;
	return 0;
}

void symbolizer__forget_process(struct symbolizer *symbolizer, int pid)
{
	perf_maps__forget(symbolizer->perf_maps, pid);
}

void symbolizer__stats(const struct symbolizer *symbolizer, struct symbolizer_stats *ret_stats)
{
	struct debuginfod_fetcher_stats fetches;
	struct dwarf_info_stats dwarf = symbolizer->closed_dwarf_stats, open;
	uint64_t index_rows = 0;

	for (const struct list_node *node = symbolizer->dwarf_lru.next;
	     node != &symbolizer->dwarf_lru; node = node->next) {
		const struct dwarf_info *info =
			container_of(node, struct cached_file, dwarf_lru)->dwarf;

		dwarf_info__stats(info, &open);
		add_dwarf_stats(&dwarf, &open);
		index_rows += dwarf_info__index_rows(info);
	}
	*ret_stats = symbolizer->stats;
	perf_maps__stats(symbolizer->perf_maps, &ret_stats->perf_maps);
	ret_stats->dwarf_index_rows = index_rows;
	ret_stats->dwarf_memory = symbolizer->dwarf_memory;
	ret_stats->dwarf_index_resets = dwarf.index_resets;
	ret_stats->dwarf_units_not_indexed = dwarf.units_not_indexed;
	ret_stats->inline_chains_truncated = dwarf.chains_truncated;
	if (!symbolizer->debuginfod)
		return;
	debuginfod_fetcher__stats(symbolizer->debuginfod, &fetches);
	ret_stats->debuginfod_enabled = true;
	ret_stats->debuginfod_requested = fetches.requested;
	ret_stats->debuginfod_succeeded = fetches.succeeded;
	ret_stats->debuginfod_failed = fetches.failed;
	ret_stats->debuginfod_queue_full = fetches.queue_full;
	ret_stats->debuginfod_pending = fetches.pending;
	ret_stats->debuginfod_forgotten = fetches.forgotten;
	ret_stats->debuginfod_last_error = fetches.last_error;
}
