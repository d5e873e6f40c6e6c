// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the symbol cache: keys kept apart, lines and strings copied, growth. */
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
	/* Another process, a return address, the kernel, another address: other entries. */
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

TEST_MAIN("symbol_cache", TEST(test_keys_kept_apart),
	  TEST(test_many_entries_one_copy_of_each_string))
