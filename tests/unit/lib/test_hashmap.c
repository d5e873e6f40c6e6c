// SPDX-License-Identifier: Apache-2.0
/* lib/hashmap: set, find, replace, delete, growth, iteration and colliding hashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hashmap.h"
#include "tests/unit/testing.h"

/* Values are the keys scrambled, so a value found under the wrong key shows. */
#define VALUE_OF(key) ((void *)(uintptr_t)((key)*7 + 1))

static struct hashmap *int_map(void)
{
	return hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
}

static void test_empty(void)
{
	struct hashmap *map = int_map();
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value = (void *)1;

	CHECK(map);
	CHECK(hashmap__size(map) == 0);
	/* An empty map has no buckets yet: lookups, deletes and iteration must cope. */
	CHECK(!hashmap__find(map, 5, &value));
	CHECK(value == (void *)1);
	CHECK(!hashmap__delete(map, 5, NULL, NULL));
	CHECK(!hashmap__next(map, &iter, NULL, NULL));
	hashmap__clear(map);
	hashmap__free(map);
	hashmap__free(NULL);
}

static void test_set_find_replace(void)
{
	struct hashmap *map = int_map();
	uintptr_t old_key = 99;
	void *old_value = (void *)99, *value = NULL;

	CHECK(hashmap__set(map, 1, VALUE_OF(1), &old_key, &old_value) == 0);
	/* A new key reports no old entry. */
	CHECK(old_key == 0 && old_value == NULL);
	CHECK(hashmap__set(map, 2, VALUE_OF(2), NULL, NULL) == 0);
	CHECK(hashmap__size(map) == 2);
	CHECK(hashmap__find(map, 1, &value) && value == VALUE_OF(1));
	CHECK(hashmap__find(map, 2, &value) && value == VALUE_OF(2));
	CHECK(hashmap__find(map, 2, NULL));
	CHECK(!hashmap__find(map, 3, &value));

	/* Replacing hands back the old value and keeps the size. */
	CHECK(hashmap__set(map, 1, (void *)0x1234, &old_key, &old_value) == 0);
	CHECK(old_key == 1 && old_value == VALUE_OF(1));
	CHECK(hashmap__size(map) == 2);
	CHECK(hashmap__find(map, 1, &value) && value == (void *)0x1234);
	hashmap__free(map);
}

static void test_delete(void)
{
	struct hashmap *map = int_map();
	uintptr_t old_key = 0;
	void *old_value = NULL;

	for (uintptr_t key = 1; key <= 3; key++)
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
	CHECK(hashmap__delete(map, 2, &old_key, &old_value));
	CHECK(old_key == 2 && old_value == VALUE_OF(2));
	CHECK(hashmap__size(map) == 2);
	CHECK(!hashmap__find(map, 2, NULL));
	CHECK(hashmap__find(map, 1, NULL) && hashmap__find(map, 3, NULL));
	/* Twice: the second finds nothing and changes nothing. */
	CHECK(!hashmap__delete(map, 2, NULL, NULL));
	CHECK(hashmap__size(map) == 2);
	/* A deleted key can come back. */
	CHECK(hashmap__set(map, 2, VALUE_OF(2), NULL, NULL) == 0);
	CHECK(hashmap__find(map, 2, &old_value) && old_value == VALUE_OF(2));
	CHECK(hashmap__size(map) == 3);
	hashmap__free(map);
}

/* Every key of [0, count) present with its value, the rest absent. */
static void check_keys(struct hashmap *map, uintptr_t count, uintptr_t absent_from)
{
	size_t wrong = 0;

	for (uintptr_t key = 0; key < count; key++) {
		void *value = NULL;

		if (!hashmap__find(map, key, &value) || value != VALUE_OF(key))
			wrong++;
	}
	for (uintptr_t key = absent_from; key < absent_from + 1000; key++)
		if (hashmap__find(map, key, NULL))
			wrong++;
	CHECK(wrong == 0);
}

/* Growth doubles the buckets at 16, 32, ...: entries must survive every rehash. */
static void test_grow(void)
{
	struct hashmap *map = int_map();

	for (uintptr_t key = 0; key < 200; key++) {
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
		if (key == 15 || key == 16 || key == 17 || key == 33 || key == 129)
			check_keys(map, key + 1, 1000);
	}
	CHECK(hashmap__size(map) == 200);
	check_keys(map, 200, 200);
	hashmap__free(map);
}

static void test_many_keys(void)
{
	const uintptr_t count = 200000;
	struct hashmap *map = int_map();
	size_t wrong = 0;

	for (uintptr_t key = 0; key < count; key++)
		if (hashmap__set(map, key, VALUE_OF(key), NULL, NULL))
			wrong++;
	CHECK(wrong == 0);
	CHECK(hashmap__size(map) == count);
	check_keys(map, count, count);
	/* Delete the even keys: the odd ones stay findable. */
	for (uintptr_t key = 0; key < count; key += 2)
		if (!hashmap__delete(map, key, NULL, NULL))
			wrong++;
	CHECK(wrong == 0);
	CHECK(hashmap__size(map) == count / 2);
	for (uintptr_t key = 0; key < count; key++)
		if (hashmap__find(map, key, NULL) != (key % 2 == 1))
			wrong++;
	CHECK(wrong == 0);
	hashmap__free(map);
}

static void test_iteration(void)
{
	struct hashmap *map = int_map();
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	unsigned char seen[100] = {};
	uintptr_t key;
	void *value;
	size_t visits = 0, wrong = 0;

	for (key = 0; key < 100; key++)
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
	while (hashmap__next(map, &iter, &key, &value)) {
		if (key >= 100 || value != VALUE_OF(key))
			wrong++;
		else
			seen[key]++;
		visits++;
	}
	CHECK(wrong == 0);
	CHECK(visits == 100);
	for (key = 0; key < 100; key++)
		CHECK(seen[key] == 1);
	hashmap__free(map);
}

/* The entry just returned may be deleted: iteration goes on over the others. */
static void test_delete_while_iterating(void)
{
	struct hashmap *map = int_map();
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	uintptr_t key;
	size_t visits = 0;

	for (key = 0; key < 300; key++)
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
	while (hashmap__next(map, &iter, &key, NULL)) {
		visits++;
		if (key % 3 == 0)
			CHECK(hashmap__delete(map, key, NULL, NULL));
	}
	CHECK(visits == 300);
	CHECK(hashmap__size(map) == 200);
	for (key = 0; key < 300; key++)
		CHECK(hashmap__find(map, key, NULL) == (key % 3 != 0));
	hashmap__free(map);
}

/* Every key hashes alike: one chain, told apart by the equality callback alone. */
static size_t same_hash(uintptr_t key, void *ctx)
{
	(void)key;
	(*(size_t *)ctx)++;
	return 42;
}

static void test_collisions(void)
{
	size_t hash_calls = 0;
	struct hashmap *map = hashmap__new(same_hash, hashmap_equal_int, &hash_calls);
	void *value = NULL;

	for (uintptr_t key = 1; key <= 50; key++)
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
	/* ctx reaches the callbacks. */
	CHECK(hash_calls == 50);
	CHECK(hashmap__size(map) == 50);
	check_keys(map, 0, 51);
	for (uintptr_t key = 1; key <= 50; key++)
		CHECK(hashmap__find(map, key, &value) && value == VALUE_OF(key));
	/* Out of the middle, the head and the tail of the chain. */
	CHECK(hashmap__delete(map, 25, NULL, NULL));
	CHECK(hashmap__delete(map, 1, NULL, NULL));
	CHECK(hashmap__delete(map, 50, NULL, NULL));
	CHECK(hashmap__size(map) == 47);
	for (uintptr_t key = 1; key <= 50; key++)
		CHECK(hashmap__find(map, key, NULL) == (key != 1 && key != 25 && key != 50));
	/* Replacing inside the chain adds nothing. */
	CHECK(hashmap__set(map, 10, (void *)7, NULL, &value) == 0);
	CHECK(value == VALUE_OF(10));
	CHECK(hashmap__size(map) == 47);
	hashmap__free(map);
}

/* String keys: equal contents at different addresses are one key. */
static void test_string_keys(void)
{
	struct hashmap *map = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	char first[] = "libc.so.6", second[] = "libc.so.6", other[] = "libm.so.6";
	uintptr_t old_key = 0;
	void *value = NULL;

	CHECK(hashmap__set(map, (uintptr_t)first, (void *)1, NULL, NULL) == 0);
	CHECK(hashmap__find(map, (uintptr_t)second, &value) && value == (void *)1);
	CHECK(!hashmap__find(map, (uintptr_t)other, NULL));
	/* Replacing returns the old key, which the caller may own and free. */
	CHECK(hashmap__set(map, (uintptr_t)second, (void *)2, &old_key, NULL) == 0);
	CHECK(old_key == (uintptr_t)first);
	CHECK(hashmap__size(map) == 1);
	hashmap__free(map);
}

static void test_clear(void)
{
	struct hashmap *map = int_map();

	for (uintptr_t key = 0; key < 40; key++)
		CHECK(hashmap__set(map, key, VALUE_OF(key), NULL, NULL) == 0);
	hashmap__clear(map);
	CHECK(hashmap__size(map) == 0);
	CHECK(!hashmap__find(map, 3, NULL));
	/* Usable again afterwards. */
	CHECK(hashmap__set(map, 3, VALUE_OF(3), NULL, NULL) == 0);
	CHECK(hashmap__size(map) == 1);
	CHECK(hashmap__find(map, 3, NULL));
	hashmap__free(map);
}

static void test_hash_functions(void)
{
	/* FNV-1a's published 64-bit values. */
	CHECK(hash_bytes("", 0, HASH_SEED) == 0xcbf29ce484222325ULL);
	CHECK(hash_bytes("a", 1, HASH_SEED) == 0xaf63dc4c8601ec8cULL);
	CHECK(hash_bytes("foobar", 6, HASH_SEED) == 0x85944171f73967e8ULL);
	/* Chaining through the seed is hashing the concatenation. */
	CHECK(hash_bytes("bar", 3, hash_bytes("foo", 3, HASH_SEED)) ==
	      hash_bytes("foobar", 6, HASH_SEED));
	CHECK(hashmap_hash_str((uintptr_t) "foobar", NULL) == hash_bytes("foobar", 6, HASH_SEED));
	/* Mixing spreads neighbouring integers and depends on the seed. */
	CHECK(hash_mix(0, 1) != hash_mix(0, 2));
	CHECK(hash_mix(1, 1) != hash_mix(2, 1));
	CHECK((hash_mix(0, 1) ^ hash_mix(0, 2)) > 0xffff);
}

TEST_MAIN("hashmap", TEST(test_empty), TEST(test_set_find_replace), TEST(test_delete),
	  TEST(test_grow), TEST(test_many_keys), TEST(test_iteration),
	  TEST(test_delete_while_iterating), TEST(test_collisions), TEST(test_string_keys),
	  TEST(test_clear), TEST(test_hash_functions))
