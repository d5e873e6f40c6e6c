/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lines each address of a window resolved to, kept so that a window
 * written both as one file and as one profile per process is symbolized
 * once: the second profile takes its locations from here. And the symbol
 * history: what file offsets of files with a build id resolved to, kept
 * from window to window within a memory bound.
 */
#ifndef KILN_SYMBOL_CACHE_H
#define KILN_SYMBOL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/pprof_builder.h"

struct symbol_cache;

/*
 * What a resolution depends on: a user address is resolved in its process's
 * files. In the symbol history, a file offset (address) in the build whose
 * id hashes to file, with pid 0: the same in every process and window.
 */
struct symbol_key {
	uint64_t address;
	uint64_t file; /* hash of the build id; 0 when keyed by pid */
	uint32_t pid; /* 0 for kernel addresses and for keys by file */
	bool kernel;
	bool is_return; /* looked up at address - 1 */
};

/* NULL with errno set. */
struct symbol_cache *symbol_cache__new(void);
void symbol_cache__free(struct symbol_cache *cache);

/*
 * Whether key was added. If so, ret_lines (room for max_lines) receives its
 * lines, innermost first, whose strings stay valid until the next add.
 */
bool symbol_cache__find(struct symbol_cache *cache, const struct symbol_key *key,
			struct pprof_line *ret_lines, size_t max_lines, size_t *ret_count);

/* Keeps a copy of key's lines and their strings. Returns 0 or -ENOMEM. */
int symbol_cache__add(struct symbol_cache *cache, const struct symbol_key *key,
		      const struct pprof_line *lines, size_t count);

/* Entries held, and bytes of memory they take. */
size_t symbol_cache__size(const struct symbol_cache *cache);
size_t symbol_cache__bytes(const struct symbol_cache *cache);

/*
 * The symbol history: two generations of symbol caches. Entries go into the
 * current one; when it holds max_bytes, the previous generation is dropped
 * (its entries counted as evicted) and the current one takes its place. A
 * hit in the previous generation is copied into the current one, so what
 * every window samples stays and what none has sampled for a generation
 * goes: least recently used first, within 2 * max_bytes.
 */
struct symbol_history;

struct symbol_history_stats {
	uint64_t hits; /* found: the symbolizer was not asked */
	uint64_t evicted; /* entries dropped with their generation */
	size_t bytes; /* held now, both generations */
};

/* NULL with errno set. */
struct symbol_history *symbol_history__new(size_t max_bytes);
void symbol_history__free(struct symbol_history *history);

/* As symbol_cache__find; the strings stay valid until the next add or find. */
bool symbol_history__find(struct symbol_history *history, const struct symbol_key *key,
			  struct pprof_line *ret_lines, size_t max_lines, size_t *ret_count);

/* As symbol_cache__add, into the current generation. Returns 0 or -ENOMEM. */
int symbol_history__add(struct symbol_history *history, const struct symbol_key *key,
			const struct pprof_line *lines, size_t count);

void symbol_history__stats(const struct symbol_history *history,
			   struct symbol_history_stats *ret_stats);

#endif /* KILN_SYMBOL_CACHE_H */
