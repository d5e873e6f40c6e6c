/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NUL-terminated strings appended to one growing buffer and named by 32-bit
 * offsets: the symbolizer's tables of names (kallsyms, perf maps) hold an
 * offset per entry instead of a pointer and an allocation per name.
 */
#ifndef KILN_STRING_ARENA_H
#define KILN_STRING_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct string_arena {
	char *data; /* string at offset o: data + o */
	size_t size; /* bytes used */
	size_t capacity;
	size_t first_capacity; /* the first allocation's size; 0: 4 KiB */
};

/* Appends len bytes of str and a NUL. Returns 0, -E2BIG past 4 GiB, or -ENOMEM. */
int string_arena__add(struct string_arena *arena, const char *str, size_t len,
		      uint32_t *ret_offset);

/* Whether the string at offset is exactly the len bytes of str. */
bool string_arena__equals(const struct string_arena *arena, uint32_t offset, const char *str,
			  size_t len);

/* Gives back what doubling over-allocated; failing to is harmless. */
void string_arena__shrink(struct string_arena *arena);

/* Frees the strings; the arena is empty again (first_capacity kept). */
void string_arena__clear(struct string_arena *arena);

#endif /* KILN_STRING_ARENA_H */
