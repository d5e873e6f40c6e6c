// SPDX-License-Identifier: Apache-2.0
/* lib/string_arena: strings by offset across growth, the 4 GiB bound, shrink, comparison. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/string_arena.h"
#include "tests/unit/testing.h"

static void test_add_and_lookup(void)
{
	struct string_arena arena = {};
	uint32_t first = 99, second = 99, empty = 99;

	CHECK(string_arena__add(&arena, "main", 4, &first) == 0);
	/* len bounds what is copied: the rest of the text stays out. */
	CHECK(string_arena__add(&arena, "printf@plt", 6, &second) == 0);
	CHECK(string_arena__add(&arena, "", 0, &empty) == 0);
	CHECK(first == 0);
	CHECK(second == 5);
	CHECK(empty == 12);
	CHECK_STR(arena.data + first, "main");
	CHECK_STR(arena.data + second, "printf");
	CHECK_STR(arena.data + empty, "");
	/* Each string and its NUL. */
	CHECK(arena.size == 13);
	CHECK(arena.capacity == 4096);
	string_arena__clear(&arena);
	CHECK(!arena.data && arena.size == 0 && arena.capacity == 0);
}

/* Offsets, unlike pointers, stay good when the buffer moves. */
static void test_growth_keeps_offsets(void)
{
	struct string_arena arena = { .first_capacity = 16 };
	uint32_t offsets[5000];
	char name[32];
	size_t wrong = 0;

	for (int i = 0; i < 5000; i++) {
		int len = snprintf(name, sizeof(name), "symbol_%d", i);

		CHECK(string_arena__add(&arena, name, (size_t)len, &offsets[i]) == 0);
		/* first_capacity, then doubling: always a power of two times 16. */
		if (i == 0)
			CHECK(arena.capacity == 16);
	}
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(name, sizeof(name), "symbol_%d", i);

		if (!string_arena__equals(&arena, offsets[i], name, (size_t)len))
			wrong++;
	}
	CHECK(wrong == 0);
	CHECK(arena.size <= arena.capacity);
	CHECK((arena.capacity & (arena.capacity - 1)) == 0);
	CHECK(arena.capacity < 2 * arena.size);
	string_arena__clear(&arena);
	/* first_capacity is kept for the next fill. */
	CHECK(arena.first_capacity == 16);
	CHECK(string_arena__add(&arena, "x", 1, &offsets[0]) == 0);
	CHECK(arena.capacity == 16);
	string_arena__clear(&arena);
}

/* One string larger than a doubling: the capacity doubles until it fits. */
static void test_large_string(void)
{
	struct string_arena arena = { .first_capacity = 16 };
	char big[1000];
	uint32_t offset;

	memset(big, 'a', sizeof(big));
	CHECK(string_arena__add(&arena, big, sizeof(big), &offset) == 0);
	CHECK(arena.capacity == 1024);
	CHECK(string_arena__equals(&arena, offset, big, sizeof(big)));
	string_arena__clear(&arena);
}

/* Offsets are 32-bit: the arena refuses to pass 4 GiB and is left as it was. */
static void test_bound(void)
{
	/* A pretend arena near the bound: the check comes before any allocation or copy. */
	struct string_arena arena = { .size = UINT32_MAX - 3, .capacity = UINT32_MAX };
	uint32_t offset = 7;

	CHECK(string_arena__add(&arena, "abc", 3, &offset) == -E2BIG);
	CHECK(string_arena__add(&arena, "abcdefgh", 8, &offset) == -E2BIG);
	CHECK(offset == 7);
	CHECK(arena.size == UINT32_MAX - 3);
	CHECK(arena.data == NULL);
	/* One string alone past the bound, into an empty arena. */
	arena.size = 0;
	CHECK(string_arena__add(&arena, "", (size_t)UINT32_MAX, &offset) == -E2BIG);
	CHECK(offset == 7);
	arena.capacity = 0;
	string_arena__clear(&arena);
}

static void test_shrink(void)
{
	struct string_arena arena = {};
	uint32_t a, b;

	/* Empty: nothing to give back, and nothing breaks. */
	string_arena__shrink(&arena);
	CHECK(arena.data == NULL && arena.capacity == 0);

	CHECK(string_arena__add(&arena, "alpha", 5, &a) == 0);
	CHECK(string_arena__add(&arena, "beta", 4, &b) == 0);
	CHECK(arena.capacity == 4096);
	string_arena__shrink(&arena);
	CHECK(arena.capacity == arena.size);
	CHECK(arena.size == 11);
	CHECK(string_arena__equals(&arena, a, "alpha", 5));
	CHECK(string_arena__equals(&arena, b, "beta", 4));
	/* Adding after a shrink grows again from the shrunk capacity. */
	CHECK(string_arena__add(&arena, "gamma", 5, &b) == 0);
	CHECK(arena.capacity == 22);
	CHECK(string_arena__equals(&arena, a, "alpha", 5));
	CHECK(string_arena__equals(&arena, b, "gamma", 5));
	string_arena__clear(&arena);
}

/* The stored name equals (str, len) only when it is exactly those bytes. */
static void test_equals(void)
{
	struct string_arena arena = {};
	uint32_t name, empty, next;

	CHECK(string_arena__add(&arena, "memcpy", 6, &name) == 0);
	CHECK(string_arena__add(&arena, "", 0, &empty) == 0);
	CHECK(string_arena__add(&arena, "memcpy_erms", 11, &next) == 0);

	CHECK(string_arena__equals(&arena, name, "memcpy", 6));
	/* str need not be NUL-terminated: len says where it ends. */
	CHECK(string_arena__equals(&arena, name, "memcpy_erms", 6));
	/* Stored longer than str, or shorter. */
	CHECK(!string_arena__equals(&arena, name, "memcp", 5));
	CHECK(!string_arena__equals(&arena, name, "memcpy_erms", 11));
	CHECK(!string_arena__equals(&arena, next, "memcpy", 6));
	/* Same length, other bytes. */
	CHECK(!string_arena__equals(&arena, name, "memcpz", 6));
	CHECK(!string_arena__equals(&arena, name, "Memcpy", 6));
	CHECK(string_arena__equals(&arena, empty, "", 0));
	CHECK(!string_arena__equals(&arena, empty, "m", 1));
	CHECK(!string_arena__equals(&arena, name, "", 0));
	string_arena__clear(&arena);
}

TEST_MAIN("string_arena", TEST(test_add_and_lookup), TEST(test_growth_keeps_offsets),
	  TEST(test_large_string), TEST(test_bound), TEST(test_shrink), TEST(test_equals))
