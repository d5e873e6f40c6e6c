// SPDX-License-Identifier: Apache-2.0
/*
 * elf_cache: files cached by device+inode and by build id, the bound on
 * cached files with least-recently-used eviction, the negative cache of
 * files that failed, and the listener told before an entry goes. Build ids
 * are checked against readelf's.
 */
#include <errno.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/array.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/elf_cache_entry.h"
#include "symbolizer/elf_file.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/testing.h"

/* The build id of the cached file behind a fake mapping of path, or NULL on failure. */
static const char *cached_build_id(struct elf_cache *cache, const char *path,
				   struct elf_cache_entry **ret_entry)
{
	struct elf_cache_entry *entry;
	struct proc_mapping mapping;

	if (fake_mapping(path, &mapping) < 0 ||
	    elf_cache__entry(cache, getpid(), &mapping, -1, &entry) < 0)
		return NULL;
	if (ret_entry)
		*ret_entry = entry;
	return elf_file__build_id(elf_cache_entry__elf_file(entry));
}

/* Two copies of one binary (two inodes, one build id) are read once. */
static void test_copies_shared_by_build_id(void)
{
	char source[512],
		copies[2][32] = { "/tmp/kiln-test-copy-XXXXXX", "/tmp/kiln-test-copy-XXXXXX" };
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_entry *entries[2] = {}, *again = NULL;
	struct elf_cache_stats stats;
	char expected[256];

	snprintf(source, sizeof(source), "%s/fixture_pie", FIXTURE_DIR);
	CHECK(cache && readelf_build_id(source, expected, sizeof(expected)) == 0);
	for (size_t i = 0; i < 2; i++) {
		int fd = mkstemp(copies[i]);

		CHECK(fd >= 0);
		close(fd);
		CHECK(copy_file(source, copies[i], 0755) == 0);
	}
	for (size_t i = 0; cache && i < 2; i++)
		CHECK_STR(cached_build_id(cache, copies[i], &entries[i]), expected);
	if (cache) {
		CHECK(entries[0] && entries[0] == entries[1]);
		elf_cache__stats(cache, &stats);
		CHECK(stats.files_opened == 1 && stats.files_shared == 1);
		/* Known by its inode now: not even its build id is read again. */
		CHECK_STR(cached_build_id(cache, copies[1], &again), expected);
		CHECK(again == entries[0]);
		elf_cache__stats(cache, &stats);
		CHECK(stats.files_opened == 1 && stats.files_shared == 1);
	}
	unlink(copies[0]);
	unlink(copies[1]);
	elf_cache__free(cache);
}

/* Three distinct files, a, b and c, for a cache that holds two. */
static const char *const lru_files[] = { "fixture_pie", "fixture_nopie", "libfixture.so" };

/* Opens lru_files[order[i]] in turn, checking each build id; then checks the counts. */
static void open_in_order(struct elf_cache *cache, const size_t *order, size_t count,
			  uint64_t opened, uint64_t evicted)
{
	struct elf_cache_stats stats;

	for (size_t i = 0; i < count; i++) {
		char path[512], expected[256];

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, lru_files[order[i]]);
		CHECK(readelf_build_id(path, expected, sizeof(expected)) == 0);
		CHECK_STR(cached_build_id(cache, path, NULL), expected);
	}
	elf_cache__stats(cache, &stats);
	CHECK(stats.files_opened == opened);
	CHECK(stats.files_evicted == evicted);
	CHECK(stats.open_errors == 0);
}

static void test_lru_bound(void)
{
	const struct elf_cache_opts opts = { .max_files = 2 };
	struct elf_cache *cache = elf_cache__new(&opts);

	CHECK(cache != NULL);
	if (!cache)
		return;
	/* a, b, c, then a again: c evicts a, a evicts b. */
	open_in_order(cache, (const size_t[]){ 0, 1, 2, 0 }, 4, 4, 2);
	/* c and a are cached: no file read. */
	open_in_order(cache, (const size_t[]){ 2, 0 }, 2, 4, 2);
	elf_cache__free(cache);
}

/* A file used again is the most recent: the least recently used one goes instead. */
static void test_lru_order(void)
{
	const struct elf_cache_opts opts = { .max_files = 2 };
	struct elf_cache *cache = elf_cache__new(&opts);

	CHECK(cache != NULL);
	if (!cache)
		return;
	/* a, b, a, c: c evicts b, not a, which is still cached. */
	open_in_order(cache, (const size_t[]){ 0, 1, 0, 2, 0 }, 5, 3, 1);
	/* b is read again, and evicts c (a was used since). */
	open_in_order(cache, (const size_t[]){ 1, 0 }, 2, 4, 2);
	elf_cache__free(cache);
}

/*
 * Pages of the entry's mapped file in our page tables now (/proc/self/pagemap's
 * present bit; mincore would tell the page cache's), after reading them all if told.
 */
static size_t resident_pages(struct elf_cache_entry *entry, bool read_all)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = 0, count = 0, pages;
	char *image = elf_rawfile(elf_file__elf(elf_cache_entry__elf_file(entry)), &size);
	uint64_t present[512];
	volatile char sink = 0;
	FILE *pagemap;

	if (!image || !size)
		return 0;
	pages = (size + (size_t)page - 1) / (size_t)page;
	if (pages > ARRAY_SIZE(present))
		pages = ARRAY_SIZE(present);
	for (size_t i = 0; read_all && i < pages; i++)
		sink += image[i * (size_t)page];
	(void)sink;
	pagemap = fopen("/proc/self/pagemap", "rb");
	if (!pagemap)
		return 0;
	if (fseeko(pagemap, (off_t)((uintptr_t)image / (size_t)page * sizeof(uint64_t)),
		   SEEK_SET) == 0 &&
	    fread(present, sizeof(uint64_t), pages, pagemap) == pages) {
		for (size_t i = 0; i < pages; i++)
			count += present[i] >> 63;
	}
	fclose(pagemap);
	return count;
}

/*
 * Pages are dropped from the files used since the last drop, and only from
 * those: a file read behind the cache's back keeps its pages.
 */
static void test_drop_pages_of_used_files(void)
{
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_entry *used = NULL, *unused = NULL;
	char used_path[512], unused_path[512];

	snprintf(used_path, sizeof(used_path), "%s/%s", FIXTURE_DIR, lru_files[0]);
	snprintf(unused_path, sizeof(unused_path), "%s/%s", FIXTURE_DIR, lru_files[1]);
	CHECK(cache && cached_build_id(cache, used_path, &used) &&
	      cached_build_id(cache, unused_path, &unused));
	if (!used || !unused) {
		elf_cache__free(cache);
		return;
	}
	/* Both new since the last drop: both dropped. */
	CHECK(resident_pages(used, true) > 0 && resident_pages(unused, true) > 0);
	elf_cache__drop_pages(cache);
	CHECK(resident_pages(used, false) == 0 && resident_pages(unused, false) == 0);
	/* Both read again, only one through the cache. */
	CHECK(resident_pages(used, true) > 0 && resident_pages(unused, true) > 0);
	CHECK(cached_build_id(cache, used_path, NULL) != NULL);
	elf_cache__drop_pages(cache);
	CHECK(resident_pages(used, false) == 0);
	CHECK(resident_pages(unused, false) > 0);
	elf_cache__free(cache);
}

/* A cached file is found by device and inode, without opening anything; others are not. */
static void test_find_path_by_inode(void)
{
	const char *path = FIXTURE_DIR "/fixture_pie", *found = NULL;
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_stats stats;
	struct proc_mapping mapping = {};

	CHECK(cache != NULL);
	if (!cache || fake_mapping(path, &mapping) < 0) {
		CHECK(!"the fixture is there");
		elf_cache__free(cache);
		return;
	}
	CHECK(elf_cache__find_path(cache, mapping.dev_major, mapping.dev_minor, mapping.inode,
				   &found) == -ENOENT);
	CHECK(cached_build_id(cache, path, NULL) != NULL);
	CHECK(elf_cache__find_path(cache, mapping.dev_major, mapping.dev_minor, mapping.inode,
				   &found) == 0);
	CHECK_STR(found, path);
	CHECK(elf_cache__find_path(cache, mapping.dev_major, mapping.dev_minor + 1, mapping.inode,
				   &found) == -ENOENT);
	elf_cache__stats(cache, &stats);
	CHECK(stats.files_opened == 1);
	elf_cache__free(cache);
}

/* What lru_files[which] holds in a cache of its own: its symbol index. */
static uint64_t file_bytes(size_t which)
{
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_stats stats = {};
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, lru_files[which]);
	if (cache && cached_build_id(cache, path, NULL))
		elf_cache__stats(cache, &stats);
	elf_cache__free(cache);
	return stats.bytes;
}

/*
 * Past max_bytes the least recently used file goes, counted apart from the
 * file limit, and the cache holds no more than its bound; one file alone
 * over it stays.
 */
static void test_memory_bound(void)
{
	uint64_t a = file_bytes(0), b = file_bytes(1), c = file_bytes(2);
	struct elf_cache_opts opts = { .max_bytes = a + b + c - 1 };
	struct elf_cache *cache;
	struct elf_cache_stats stats;

	/* Each holds its symbols, at 16 bytes a symbol, and more than the struct. */
	CHECK(a > 64 && b > 64 && c > 64);
	cache = elf_cache__new(&opts);
	CHECK(cache != NULL);
	if (!cache)
		return;
	/* a, b, a, c: the three do not fit, so b (least recently used) goes. */
	open_in_order(cache, (const size_t[]){ 0, 1, 0, 2 }, 4, 3, 0);
	elf_cache__stats(cache, &stats);
	CHECK(stats.files_evicted_memory == 1);
	CHECK(stats.bytes == a + c && stats.bytes <= opts.max_bytes);
	/* a and c are still cached: nothing read. */
	open_in_order(cache, (const size_t[]){ 0, 2 }, 2, 3, 0);
	elf_cache__free(cache);

	/* A bound smaller than any file: the newest stays, alone. */
	opts.max_bytes = 1;
	cache = elf_cache__new(&opts);
	CHECK(cache != NULL);
	if (!cache)
		return;
	open_in_order(cache, (const size_t[]){ 0, 1 }, 2, 2, 0);
	elf_cache__stats(cache, &stats);
	CHECK(stats.files_evicted_memory == 1 && stats.bytes == b);
	elf_cache__free(cache);
}

/* A corrupt file fails once: remembered, it is not read (or counted) again. */
static void test_failures_remembered(void)
{
	static const char *const names[] = { "fixture_truncated", "fixture_garbage",
					     "fixture_garbage_ident" };
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_stats stats;

	CHECK(cache != NULL);
	for (size_t i = 0; cache && i < ARRAY_SIZE(names); i++) {
		struct elf_cache_entry *entry = NULL;
		struct proc_mapping mapping;
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, names[i]);
		CHECK(fake_mapping(path, &mapping) == 0);
		CHECK(elf_cache__entry(cache, getpid(), &mapping, -1, &entry) == -EINVAL);
		CHECK(elf_cache__entry(cache, getpid(), &mapping, -1, &entry) == -EINVAL);
		CHECK(entry == NULL);
		elf_cache__stats(cache, &stats);
		CHECK(stats.open_errors == i + 1 && stats.files_opened == 0);
	}
	elf_cache__free(cache);
}

/* Anonymous memory has no file: -ENOENT, nothing opened, nothing counted as an error. */
static void test_no_file(void)
{
	const struct proc_mapping anonymous = {
		.start = 0x10000,
		.end = 0x11000,
		.perms = PROC_MAP_READ | PROC_MAP_EXEC,
		.path = "",
	};
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_stats stats;
	struct elf_cache_file file;

	CHECK(cache != NULL);
	if (!cache)
		return;
	CHECK(elf_cache__file(cache, getpid(), &anonymous, &file) == -ENOENT);
	elf_cache__stats(cache, &stats);
	CHECK(stats.files_opened == 0 && stats.open_errors == 0);
	elf_cache__free(cache);
}

/* The file behind a live process's mapping, as the unwind tables read it. */
static void test_file_of_process(void)
{
	struct elf_cache *cache = elf_cache__new(NULL);
	struct fixture_process process;
	char path[512], expected[256];
	size_t found = 0;

	snprintf(path, sizeof(path), "%s/fixture_pie", FIXTURE_DIR);
	CHECK(cache && readelf_build_id(path, expected, sizeof(expected)) == 0);
	CHECK(start_fixture(path, &process) == 0);
	for (size_t i = 0; cache && i < process.function_count; i++) {
		const struct proc_mapping *mapping =
			procmaps__find(&process.maps, process.functions[i].addr);
		struct elf_cache_file file;
		uint64_t symbol_value;

		CHECK(mapping != NULL);
		if (!mapping || elf_cache__file(cache, process.pid, mapping, &file) < 0)
			continue;
		CHECK(file.elf != NULL);
		CHECK_STR(file.build_id, expected);
		/* The load bias takes nm's symbol value to the printed address. */
		if (nm_address(path, process.functions[i].name, &symbol_value) == 0) {
			CHECK(symbol_value + file.load_bias == process.functions[i].addr);
			found++;
		}
	}
	CHECK(found == process.function_count && found > 0);
	stop_fixture(&process);
	elf_cache__free(cache);
}

struct released {
	struct elf_cache_entry *entries[8];
	size_t count;
};

static void record_release(void *ctx, struct elf_cache_entry *entry)
{
	struct released *released = ctx;

	if (released->count < 8)
		released->entries[released->count++] = entry;
	elf_cache_entry__set_data(entry, NULL);
}

/* The listener hears of an entry with data before it goes; entries without data are not its. */
static void test_listener(void)
{
	const struct elf_cache_opts opts = { .max_files = 2 };
	struct elf_cache *cache = elf_cache__new(&opts);
	struct released released = {};
	const struct elf_cache_listener listener = { .release = record_release, .ctx = &released };
	struct elf_cache_entry *first = NULL, *second = NULL;
	char path[512];
	int data;

	CHECK(cache != NULL);
	if (!cache)
		return;
	CHECK(elf_cache__set_listener(cache, &listener) == 0);
	CHECK(elf_cache__set_listener(cache, &listener) == -EBUSY);
	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, lru_files[0]);
	CHECK(cached_build_id(cache, path, &first) != NULL);
	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, lru_files[1]);
	CHECK(cached_build_id(cache, path, &second) != NULL);
	if (!first || !second)
		goto cleanup;
	CHECK(elf_cache_entry__data(first) == NULL);
	elf_cache_entry__set_data(first, &data);
	CHECK(elf_cache_entry__data(first) == &data);
	/* The third file evicts the first: released while its ELF is still open. */
	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, lru_files[2]);
	CHECK(cached_build_id(cache, path, NULL) != NULL);
	CHECK(released.count == 1 && released.entries[0] == first);
	/* Clearing releases what is left with data: the second file's, then nothing more. */
	elf_cache_entry__set_data(second, &data);
	elf_cache__clear_listener(cache);
	CHECK(released.count == 2 && released.entries[1] == second);
	CHECK(elf_cache__set_listener(cache, &listener) == 0);
cleanup:
	elf_cache__free(cache);
	CHECK(released.count == 2);
}

TEST_MAIN("elf_cache", TEST(test_copies_shared_by_build_id), TEST(test_lru_bound),
	  TEST(test_memory_bound), TEST(test_lru_order), TEST(test_find_path_by_inode),
	  TEST(test_failures_remembered), TEST(test_no_file), TEST(test_file_of_process),
	  TEST(test_listener), TEST(test_drop_pages_of_used_files))
