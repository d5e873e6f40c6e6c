// SPDX-License-Identifier: Apache-2.0
/* Symbolized addresses of one window: entries and lines in arrays, strings in one arena. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/profile/symbol_cache.h"
#include "lib/array.h"
#include "lib/hashmap.h"
#include "lib/string_arena.h"

#define NO_STRING UINT32_MAX

struct cached_line {
	uint32_t function_name; /* offsets in the arena, NO_STRING for NULL */
	uint32_t system_name;
	uint32_t filename;
	int64_t start_line;
	int64_t line;
};

struct cached_symbol {
	struct symbol_key key;
	uint32_t first_line; /* in lines */
	uint32_t line_count;
};

struct symbol_cache {
	/*
	 * Both maps key by index into an array (entries, arena offsets), so no
	 * entry is allocated on its own; a query is placed at the array's end
	 * first, where it is found by the same callbacks.
	 */
	struct hashmap *index; /* entry index -> the same index */
	struct hashmap *string_index; /* arena offset -> the same offset */
	struct cached_symbol *entries;
	size_t entry_count, entry_capacity;
	struct cached_line *lines;
	size_t line_count, line_capacity;
	struct string_arena strings;
};

static size_t hash_entry(uintptr_t index, void *ctx)
{
	const struct symbol_cache *cache = ctx;
	const struct symbol_key *key = &cache->entries[index].key;
	uint64_t hash = hash_mix(HASH_SEED, key->address);

	hash = hash_mix(hash, key->file);
	hash = hash_mix(hash, key->pid);
	return hash_mix(hash, (uint64_t)key->kernel << 1 | key->is_return);
}

static bool equal_entries(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct symbol_cache *cache = ctx;
	const struct symbol_key *x = &cache->entries[a].key, *y = &cache->entries[b].key;

	return x->address == y->address && x->file == y->file && x->pid == y->pid &&
	       x->kernel == y->kernel && x->is_return == y->is_return;
}

static size_t hash_string(uintptr_t offset, void *ctx)
{
	const struct symbol_cache *cache = ctx;
	const char *str = cache->strings.data + offset;

	return hash_bytes(str, strlen(str), HASH_SEED);
}

static bool equal_strings(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct symbol_cache *cache = ctx;

	return !strcmp(cache->strings.data + a, cache->strings.data + b);
}

struct symbol_cache *symbol_cache__new(void)
{
	struct symbol_cache *cache = calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	cache->index = hashmap__new(hash_entry, equal_entries, cache);
	cache->string_index = hashmap__new(hash_string, equal_strings, cache);
	if (!cache->index || !cache->string_index) {
		symbol_cache__free(cache);
		errno = ENOMEM;
		return NULL;
	}
	return cache;
}

void symbol_cache__free(struct symbol_cache *cache)
{
	if (!cache)
		return;
	hashmap__free(cache->index);
	hashmap__free(cache->string_index);
	free(cache->entries);
	free(cache->lines);
	string_arena__clear(&cache->strings);
	free(cache);
}

/* Places key after the last entry, where the index's callbacks can read it. */
static int place_query(struct symbol_cache *cache, const struct symbol_key *key)
{
	int err = ARRAY_RESERVE_ONE(cache->entries, cache->entry_count, cache->entry_capacity, 64);

	if (err)
		return err;
	cache->entries[cache->entry_count] = (struct cached_symbol){ .key = *key };
	return 0;
}

static const char *string_at(const struct symbol_cache *cache, uint32_t offset)
{
	return offset == NO_STRING ? NULL : cache->strings.data + offset;
}

bool symbol_cache__find(struct symbol_cache *cache, const struct symbol_key *key,
			struct pprof_line *ret_lines, size_t max_lines, size_t *ret_count)
{
	const struct cached_symbol *entry;
	void *index;

	if (place_query(cache, key) || !hashmap__find(cache->index, cache->entry_count, &index))
		return false;
	entry = &cache->entries[(uintptr_t)index];
	if (entry->line_count > max_lines)
		return false;
	for (uint32_t i = 0; i < entry->line_count; i++) {
		const struct cached_line *line = &cache->lines[entry->first_line + i];

		ret_lines[i] = (struct pprof_line){
			.function_name = string_at(cache, line->function_name),
			.system_name = string_at(cache, line->system_name),
			.filename = string_at(cache, line->filename),
			.start_line = line->start_line,
			.line = line->line,
		};
	}
	*ret_count = entry->line_count;
	return true;
}

/* The arena offset of str, stored once however many lines name it. */
static int intern(struct symbol_cache *cache, const char *str, uint32_t *ret_offset)
{
	size_t before = cache->strings.size;
	uint32_t offset;
	void *found;
	int err;

	if (!str) {
		*ret_offset = NO_STRING;
		return 0;
	}
	err = string_arena__add(&cache->strings, str, strlen(str), &offset);
	if (err)
		return err;
	if (hashmap__find(cache->string_index, offset, &found)) {
		/* Seen before: give back the copy just appended. */
		cache->strings.size = before;
		*ret_offset = (uint32_t)(uintptr_t)found;
		return 0;
	}
	err = hashmap__set(cache->string_index, offset, (void *)(uintptr_t)offset, NULL, NULL);
	if (err) {
		cache->strings.size = before;
		return err;
	}
	*ret_offset = offset;
	return 0;
}

int symbol_cache__add(struct symbol_cache *cache, const struct symbol_key *key,
		      const struct pprof_line *lines, size_t count)
{
	size_t first_line = cache->line_count;
	struct cached_symbol *entry;
	int err = 0;

	for (size_t i = 0; !err && i < count; i++) {
		struct cached_line *line;

		err = ARRAY_RESERVE_ONE(cache->lines, cache->line_count, cache->line_capacity, 64);
		if (err)
			break;
		line = &cache->lines[cache->line_count];
		line->start_line = lines[i].start_line;
		line->line = lines[i].line;
		err = intern(cache, lines[i].function_name, &line->function_name);
		if (!err)
			err = intern(cache, lines[i].system_name, &line->system_name);
		if (!err)
			err = intern(cache, lines[i].filename, &line->filename);
		if (!err)
			cache->line_count++;
	}
	if (!err)
		err = place_query(cache, key);
	if (err)
		goto fail;
	entry = &cache->entries[cache->entry_count];
	entry->first_line = (uint32_t)first_line;
	entry->line_count = (uint32_t)count;
	err = hashmap__set(cache->index, cache->entry_count, (void *)(uintptr_t)cache->entry_count,
			   NULL, NULL);
	if (err)
		goto fail;
	cache->entry_count++;
	return 0;
fail:
	/* Lines of an entry not added are dropped; their strings stay for later lines. */
	cache->line_count = first_line;
	return err;
}

size_t symbol_cache__size(const struct symbol_cache *cache)
{
	return cache->entry_count;
}

size_t symbol_cache__bytes(const struct symbol_cache *cache)
{
	return cache->entry_capacity * sizeof(*cache->entries) +
	       cache->line_capacity * sizeof(*cache->lines) + cache->strings.capacity;
}

struct symbol_history {
	struct symbol_cache *current;
	struct symbol_cache *previous; /* NULL until the first generation fills */
	size_t max_bytes;
	uint64_t hits;
	uint64_t evicted;
};

struct symbol_history *symbol_history__new(size_t max_bytes)
{
	struct symbol_history *history = calloc(1, sizeof(*history));

	if (!history)
		return NULL;
	history->max_bytes = max_bytes;
	history->current = symbol_cache__new();
	if (!history->current) {
		free(history);
		errno = ENOMEM;
		return NULL;
	}
	return history;
}

void symbol_history__free(struct symbol_history *history)
{
	if (!history)
		return;
	symbol_cache__free(history->current);
	symbol_cache__free(history->previous);
	free(history);
}

/* A new generation when the current one is full; 0 or -ENOMEM (nothing changed). */
static int rotate_if_full(struct symbol_history *history)
{
	struct symbol_cache *fresh;

	if (symbol_cache__bytes(history->current) < history->max_bytes)
		return 0;
	fresh = symbol_cache__new();
	if (!fresh)
		return -ENOMEM;
	if (history->previous) {
		history->evicted += symbol_cache__size(history->previous);
		symbol_cache__free(history->previous);
	}
	history->previous = history->current;
	history->current = fresh;
	return 0;
}

bool symbol_history__find(struct symbol_history *history, const struct symbol_key *key,
			  struct pprof_line *ret_lines, size_t max_lines, size_t *ret_count)
{
	if (symbol_cache__find(history->current, key, ret_lines, max_lines, ret_count)) {
		history->hits++;
		return true;
	}
	if (!history->previous ||
	    !symbol_cache__find(history->previous, key, ret_lines, max_lines, ret_count))
		return false;
	history->hits++;
	/*
	 * Still in use: copied into the current generation, unless that is
	 * full (rotating now would free the lines just found); it then lives
	 * until the next rotation, and is copied if found again before it.
	 */
	if (symbol_cache__bytes(history->current) < history->max_bytes &&
	    symbol_cache__add(history->current, key, ret_lines, *ret_count) == 0)
		symbol_cache__find(history->current, key, ret_lines, max_lines, ret_count);
	return true;
}

int symbol_history__add(struct symbol_history *history, const struct symbol_key *key,
			const struct pprof_line *lines, size_t count)
{
	int err = rotate_if_full(history);

	return err ? err : symbol_cache__add(history->current, key, lines, count);
}

void symbol_history__stats(const struct symbol_history *history,
			   struct symbol_history_stats *ret_stats)
{
	*ret_stats = (struct symbol_history_stats){
		.hits = history->hits,
		.evicted = history->evicted,
		.bytes = symbol_cache__bytes(history->current) +
			 (history->previous ? symbol_cache__bytes(history->previous) : 0),
	};
}
