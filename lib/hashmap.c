// SPDX-License-Identifier: Apache-2.0
/* Chained hash map; buckets double when the load factor passes 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hashmap.h"

struct hashmap_entry {
	uintptr_t key;
	void *value;
	size_t hash;
	struct hashmap_entry *next;
};

struct hashmap {
	hashmap_hash_fn hash_fn;
	hashmap_equal_fn equal_fn;
	void *ctx;
	struct hashmap_entry **buckets;
	size_t bucket_count; /* power of two, or 0 before the first insert */
	size_t size;
};

struct hashmap *hashmap__new(hashmap_hash_fn hash_fn, hashmap_equal_fn equal_fn, void *ctx)
{
	struct hashmap *map = calloc(1, sizeof(*map));

	if (!map)
		return NULL;
	map->hash_fn = hash_fn;
	map->equal_fn = equal_fn;
	map->ctx = ctx;
	return map;
}

void hashmap__clear(struct hashmap *map)
{
	for (size_t i = 0; i < map->bucket_count; i++) {
		struct hashmap_entry *e = map->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
		map->buckets[i] = NULL;
	}
	map->size = 0;
}

void hashmap__free(struct hashmap *map)
{
	if (!map)
		return;
	hashmap__clear(map);
	free(map->buckets);
	free(map);
}

size_t hashmap__size(const struct hashmap *map)
{
	return map->size;
}

static struct hashmap_entry **find_slot(const struct hashmap *map, uintptr_t key, size_t hash)
{
	struct hashmap_entry **slot;

	if (!map->bucket_count)
		return NULL;
	slot = &map->buckets[hash & (map->bucket_count - 1)];
	for (; *slot; slot = &(*slot)->next)
		if ((*slot)->hash == hash && map->equal_fn((*slot)->key, key, map->ctx))
			return slot;
	return NULL;
}

bool hashmap__find(const struct hashmap *map, uintptr_t key, void **ret_value)
{
	struct hashmap_entry **slot = find_slot(map, key, map->hash_fn(key, map->ctx));

	if (!slot)
		return false;
	if (ret_value)
		*ret_value = (*slot)->value;
	return true;
}

static int grow(struct hashmap *map)
{
	size_t new_count = map->bucket_count ? map->bucket_count * 2 : 16;
	struct hashmap_entry **buckets = calloc(new_count, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < map->bucket_count; i++) {
		struct hashmap_entry *e = map->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = buckets[e->hash & (new_count - 1)];
			buckets[e->hash & (new_count - 1)] = e;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->bucket_count = new_count;
	return 0;
}

int hashmap__set(struct hashmap *map, uintptr_t key, void *value, uintptr_t *ret_old_key,
		 void **ret_old_value)
{
	size_t hash = map->hash_fn(key, map->ctx);
	struct hashmap_entry **slot = find_slot(map, key, hash), *e;
	int err;

	if (slot) {
		if (ret_old_key)
			*ret_old_key = (*slot)->key;
		if (ret_old_value)
			*ret_old_value = (*slot)->value;
		(*slot)->key = key;
		(*slot)->value = value;
		return 0;
	}
	if (map->size >= map->bucket_count) {
		err = grow(map);
		if (err)
			return err;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->key = key;
	e->value = value;
	e->hash = hash;
	e->next = map->buckets[hash & (map->bucket_count - 1)];
	map->buckets[hash & (map->bucket_count - 1)] = e;
	map->size++;
	if (ret_old_key)
		*ret_old_key = 0;
	if (ret_old_value)
		*ret_old_value = NULL;
	return 0;
}

bool hashmap__delete(struct hashmap *map, uintptr_t key, uintptr_t *ret_old_key,
		     void **ret_old_value)
{
	struct hashmap_entry **slot = find_slot(map, key, map->hash_fn(key, map->ctx)), *e;

	if (!slot)
		return false;
	e = *slot;
	if (ret_old_key)
		*ret_old_key = e->key;
	if (ret_old_value)
		*ret_old_value = e->value;
	*slot = e->next;
	free(e);
	map->size--;
	return true;
}

bool hashmap__next(const struct hashmap *map, struct hashmap_iter *iter, uintptr_t *ret_key,
		   void **ret_value)
{
	struct hashmap_entry *e = iter->next;

	while (!e && iter->bucket < map->bucket_count)
		e = map->buckets[iter->bucket++];
	if (!e)
		return false;
	/* Saved before returning, so the caller may delete e. */
	iter->next = e->next;
	if (ret_key)
		*ret_key = e->key;
	if (ret_value)
		*ret_value = e->value;
	return true;
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		seed ^= p[i];
		seed *= 0x100000001b3ULL;
	}
	return seed;
}

uint64_t hash_mix(uint64_t seed, uint64_t value)
{
	uint64_t z = seed ^ (value + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

size_t hashmap_hash_int(uintptr_t key, void *ctx)
{
	(void)ctx;
	return hash_mix(0, key);
}

bool hashmap_equal_int(uintptr_t a, uintptr_t b, void *ctx)
{
	(void)ctx;
	return a == b;
}

size_t hashmap_hash_str(uintptr_t key, void *ctx)
{
	const char *s = (const char *)key;

	(void)ctx;
	return hash_bytes(s, strlen(s), HASH_SEED);
}

bool hashmap_equal_str(uintptr_t a, uintptr_t b, void *ctx)
{
	(void)ctx;
	return strcmp((const char *)a, (const char *)b) == 0;
}
