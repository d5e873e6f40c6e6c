// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the symbol cache: keys kept apart, lines and strings copied,
 * growth; and the symbol history: generations, what is used kept, the rest
 * evicted and counted.
 */
#include <stdio.h>
#include <string.h>

#include "agent/profile/symbol_cache.h"
#include "tests/unit/testing.h"

static void test_keys_kept_apart(void)
{
	struct symbol_cache *cache = symbol_cache__new();
	const struct symbol_key user = { .address = 0x1000, .pid = 7 };
	const struct symbol_key keys[] = {
		{ .address = 0x1000, .pid = 8 },
		{ .address = 0x1000, .pid = 7, .is_return = true },
		{ .address = 0x1000, .kernel = true },
		{ .address = 0x1001, .pid = 7 },
		{ .address = 0x1000, .pid = 7, .file = 1 },
	};
	char name[32] = "inner";
	const struct pprof_line lines[] = {
		{ .function_name = name, .filename = "a.c", .start_line = 1, .line = 3 },
		{ .function_name = "outer", .system_name = "_Z5outerv", .line = 9 },
	};
	struct pprof_line found[4];
	size_t count = 0;

	CHECK(cache != NULL);
	if (!cache)
		return;
	CHECK(!symbol_cache__find(cache, &user, found, 4, &count));
	CHECK(symbol_cache__add(cache, &user, lines, 2) == 0);
	/* The caller's strings may change after: the cache kept copies. */
	snprintf(name, sizeof(name), "changed");
	CHECK(symbol_cache__find(cache, &user, found, 4, &count) && count == 2);
	CHECK_STR(found[0].function_name, "inner");
	CHECK_STR(found[0].filename, "a.c");
	CHECK(found[0].system_name == NULL && found[0].start_line == 1 && found[0].line == 3);
	CHECK_STR(found[1].function_name, "outer");
	CHECK_STR(found[1].system_name, "_Z5outerv");
	CHECK(found[1].filename == NULL && found[1].line == 9);
	/*
	 * Another process, a return address, the kernel, another address, a
	 * key by build: other entries.
	 */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(!symbol_cache__find(cache, &keys[i], found, 4, &count));
	/* An address with no symbol is cached too, as no lines. */
	CHECK(symbol_cache__add(cache, &keys[2], NULL, 0) == 0);
	count = 9;
	CHECK(symbol_cache__find(cache, &keys[2], found, 4, &count) && count == 0);
	CHECK(symbol_cache__size(cache) == 2);
	symbol_cache__free(cache);
	symbol_cache__free(NULL);
}

static void test_many_entries_one_copy_of_each_string(void)
{
	struct symbol_cache *cache = symbol_cache__new();
	const struct pprof_line line = { .function_name = "shared_name", .filename = "shared.c" };
	struct pprof_line found[1];
	const char *first_copy = NULL;
	size_t count;

	CHECK(cache != NULL);
	if (!cache)
		return;
	for (uint64_t i = 0; i < 10000; i++) {
		const struct symbol_key key = { .address = 0x400000 + i, .pid = (uint32_t)(i % 3) };

		CHECK(symbol_cache__add(cache, &key, &line, 1) == 0);
	}
	CHECK(symbol_cache__size(cache) == 10000);
	for (uint64_t i = 0; i < 10000; i += 997) {
		const struct symbol_key key = { .address = 0x400000 + i, .pid = (uint32_t)(i % 3) };

		CHECK(symbol_cache__find(cache, &key, found, 1, &count) && count == 1);
		CHECK_STR(found[0].function_name, "shared_name");
		/* Stored once, however many lines name it. */
		if (!first_copy)
			first_copy = found[0].function_name;
		CHECK(found[0].function_name == first_copy);
	}
	CHECK(symbol_cache__bytes(cache) > 10000 * sizeof(line.line));
	symbol_cache__free(cache);
}

/* Entry i of the history tests: a file offset of one build, with a name of its own. */
static int add_numbered(struct symbol_history *history, int i)
{
	const struct symbol_key key = { .address = 0x1000 + (uint64_t)i, .file = 0xb1d };
	char name[64];
	const struct pprof_line line = { .function_name = name, .filename = "numbered.c" };

	snprintf(name, sizeof(name), "numbered_function_%d", i);
	return symbol_history__add(history, &key, &line, 1);
}

static bool find_numbered(struct symbol_history *history, int i)
{
	const struct symbol_key key = { .address = 0x1000 + (uint64_t)i, .file = 0xb1d };
	struct pprof_line found[1];
	char name[64];
	size_t count = 0;

	snprintf(name, sizeof(name), "numbered_function_%d", i);
	return symbol_history__find(history, &key, found, 1, &count) && count == 1 &&
	       !strcmp(found[0].function_name, name);
}

static void test_history_generations(void)
{
	/* One byte a generation: every add after the first starts a new one. */
	struct symbol_history *history = symbol_history__new(1);
	struct symbol_history_stats stats;
	const struct symbol_key other_build = { .address = 0x1000, .file = 0xb1e };
	struct pprof_line found[1];
	size_t count;

	CHECK(history != NULL);
	if (!history)
		return;
	CHECK(add_numbered(history, 0) == 0);
	CHECK(find_numbered(history, 0));
	/* The same offset of another build is another entry. */
	CHECK(!symbol_history__find(history, &other_build, found, 1, &count));
	CHECK(add_numbered(history, 1) == 0);
	/* In the previous generation now, still found. */
	CHECK(find_numbered(history, 0) && find_numbered(history, 1));
	CHECK(add_numbered(history, 2) == 0);
	/* Two generations on, gone, and counted. */
	CHECK(!find_numbered(history, 0));
	CHECK(find_numbered(history, 1) && find_numbered(history, 2));
	symbol_history__stats(history, &stats);
	CHECK(stats.evicted == 1);
	CHECK(stats.hits == 5);
	CHECK(stats.bytes > 0);
	symbol_history__free(history);
	symbol_history__free(NULL);
}

static void test_history_keeps_what_is_used(void)
{
	struct symbol_cache *probe = symbol_cache__new();
	struct symbol_history *history = NULL;
	struct symbol_history_stats stats = {};
	int next = 0;

	CHECK(probe != NULL);
	if (!probe)
		return;
	/* A generation's bound: what 100 entries take, about. */
	for (int i = 0; i < 100; i++) {
		const struct symbol_key key = { .address = (uint64_t)i };
		char name[64];
		const struct pprof_line line = { .function_name = name, .filename = "numbered.c" };

		snprintf(name, sizeof(name), "numbered_function_%d", i);
		CHECK(symbol_cache__add(probe, &key, &line, 1) == 0);
	}
	history = symbol_history__new(symbol_cache__bytes(probe));
	CHECK(history != NULL);
	if (!history)
		goto cleanup;
	for (; next < 100; next++)
		CHECK(add_numbered(history, next) == 0);
	/* A second generation has begun; entry 5 is used in it. */
	CHECK(add_numbered(history, next++) == 0);
	CHECK(find_numbered(history, 5));
	/* Fill the second generation until the first is dropped. */
	while (stats.evicted == 0 && next < 1000) {
		CHECK(add_numbered(history, next++) == 0);
		symbol_history__stats(history, &stats);
	}
	/*
	 * The first generation went (capacities grow in steps: it held 65
	 * entries, at least 0 to 6). Entry 5 was copied forward when used;
	 * entry 6 went with it.
	 */
	CHECK(stats.evicted > 6 && stats.evicted <= 100);
	CHECK(find_numbered(history, 5));
	CHECK(!find_numbered(history, 6));
	CHECK(find_numbered(history, next - 1));
cleanup:
	symbol_history__free(history);
	symbol_cache__free(probe);
}

TEST_MAIN("symbol_cache", TEST(test_keys_kept_apart),
	  TEST(test_many_entries_one_copy_of_each_string), TEST(test_history_generations),
	  TEST(test_history_keeps_what_is_used))
