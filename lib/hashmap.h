/* SPDX-License-Identifier: Apache-2.0 */
/* A small chained hash map from uintptr_t keys to void * values. */
#ifndef KILN_HASHMAP_H
#define KILN_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Keys are uintptr_t: either an integer stored in place or a pointer to a
 * caller-owned key (string, struct) that the hash and equality callbacks
 * dereference. The map never copies or frees keys or values.
 */
typedef size_t (*hashmap_hash_fn)(uintptr_t key, void *ctx);
typedef bool (*hashmap_equal_fn)(uintptr_t a, uintptr_t b, void *ctx);

struct hashmap;

struct hashmap *hashmap__new(hashmap_hash_fn hash_fn, hashmap_equal_fn equal_fn, void *ctx);
void hashmap__free(struct hashmap *map);

size_t hashmap__size(const struct hashmap *map);

/* Removes every entry (keys and values are the caller's to free). */
void hashmap__clear(struct hashmap *map);

/* Returns true and sets *ret_value (if not NULL) when the key is present. */
bool hashmap__find(const struct hashmap *map, uintptr_t key, void **ret_value);

/*
 * Inserts or replaces. On replace, the old key and value are returned
 * through ret_old_key/ret_old_value (either may be NULL) so the caller can
 * free them. Returns 0 or -ENOMEM.
 */
int hashmap__set(struct hashmap *map, uintptr_t key, void *value, uintptr_t *ret_old_key,
		 void **ret_old_value);

/* Removes the key; returns true if it was present. */
bool hashmap__delete(struct hashmap *map, uintptr_t key, uintptr_t *ret_old_key,
		     void **ret_old_value);

/*
 * Iteration:
 *	struct hashmap_iter it = HASHMAP_ITER_INIT;
 *	while (hashmap__next(map, &it, &key, &value)) ...
 * The map must not change during iteration, except that the entry just
 * returned may be deleted.
 */
struct hashmap_entry;
struct hashmap_iter {
	size_t bucket;
	struct hashmap_entry *next;
};
#define HASHMAP_ITER_INIT                                                                          \
	{                                                                                          \
		0, NULL                                                                            \
	}
bool hashmap__next(const struct hashmap *map, struct hashmap_iter *iter, uintptr_t *ret_key,
		   void **ret_value);

/* Ready-made callbacks. */
size_t hashmap_hash_int(uintptr_t key, void *ctx);
bool hashmap_equal_int(uintptr_t a, uintptr_t b, void *ctx);
size_t hashmap_hash_str(uintptr_t key, void *ctx);
bool hashmap_equal_str(uintptr_t a, uintptr_t b, void *ctx);

/* 64-bit FNV-1a over bytes, chainable through seed (start with HASH_SEED). */
#define HASH_SEED 0xcbf29ce484222325ULL
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);
/* Mixes an integer into a hash (splitmix64 finaliser). */
uint64_t hash_mix(uint64_t seed, uint64_t value);

#endif /* KILN_HASHMAP_H */
