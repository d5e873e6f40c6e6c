/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lines each address of a window resolved to, kept so that a window
 * written both as one file and as one profile per process is symbolized
 * once: the second profile takes its locations from here.
 */
#ifndef KILN_SYMBOL_CACHE_H
#define KILN_SYMBOL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/pprof_builder.h"

struct symbol_cache;

/* What a resolution depends on: a user address is resolved in its process's files. */
struct symbol_key {
	uint64_t address;
	uint32_t pid; /* 0 for kernel addresses */
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

#endif /* KILN_SYMBOL_CACHE_H */
