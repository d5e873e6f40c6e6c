// SPDX-License-Identifier: Apache-2.0
/* Strings in one growing buffer, named by offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/string_arena.h"

int string_arena__add(struct string_arena *arena, const char *str, size_t len, uint32_t *ret_offset)
{
	size_t needed = arena->size + len + 1;

	if (needed > UINT32_MAX)
		return -E2BIG;
	if (needed > arena->capacity) {
		size_t capacity = arena->capacity	  ? arena->capacity
				  : arena->first_capacity ? arena->first_capacity
							  : 4096;
		char *grown;

		while (capacity < needed)
			capacity *= 2;
		grown = realloc(arena->data, capacity);
		if (!grown)
			return -ENOMEM;
		arena->data = grown;
		arena->capacity = capacity;
	}
	memcpy(arena->data + arena->size, str, len);
	arena->data[arena->size + len] = '\0';
	*ret_offset = (uint32_t)arena->size;
	arena->size = needed;
	return 0;
}

bool string_arena__equals(const struct string_arena *arena, uint32_t offset, const char *str,
			  size_t len)
{
	const char *stored = arena->data + offset;

	return strnlen(stored, len + 1) == len && memcmp(stored, str, len) == 0;
}

void string_arena__shrink(struct string_arena *arena)
{
	char *data = arena->size ? realloc(arena->data, arena->size) : NULL;

	if (data) {
		arena->data = data;
		arena->capacity = arena->size;
	}
}

void string_arena__clear(struct string_arena *arena)
{
	free(arena->data);
	arena->data = NULL;
	arena->size = arena->capacity = 0;
}
