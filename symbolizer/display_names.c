// SPDX-License-Identifier: Apache-2.0
/* Display names: demangled, unversioned, cut at SYMBOLIZER_MAX_NAME. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "symbolizer/demangle.h"
#include "symbolizer/display_names.h"
#include "symbolizer/symbolizer.h"

/* Display names of one location: a name gets at most SYMBOLIZER_MAX_NAME of it. */
#define NAME_STORAGE (256 * 1024)

struct display_names {
	uint64_t truncated;
	size_t used;
	char storage[NAME_STORAGE];
};

struct display_names *display_names__new(void)
{
	return calloc(1, sizeof(struct display_names));
}

void display_names__free(struct display_names *names)
{
	free(names);
}

void display_names__reset(struct display_names *names)
{
	names->used = 0;
}

uint64_t display_names__truncated(const struct display_names *names)
{
	return names->truncated;
}

/* Room for one display name in the storage, which the location's strings point into. */
static char *name_slot(struct display_names *names, size_t *ret_size)
{
	size_t room = sizeof(names->storage) - names->used;

	*ret_size = room < SYMBOLIZER_MAX_NAME ? room : SYMBOLIZER_MAX_NAME;
	return names->storage + names->used;
}

/* Copies up to length bytes of name into a slot, cut with "..." when longer than the slot. */
static const char *store_name(struct display_names *names, const char *name, size_t length)
{
	size_t size;
	char *slot = name_slot(names, &size);

	if (size < 4)
		return NULL;
	if (length >= size) {
		length = size - 4;
		/* Never half a UTF-8 sequence before the ellipsis. */
		while (length > 0 && ((unsigned char)name[length] & 0xc0) == 0x80)
			length--;
		memcpy(slot + length, "...", 4);
		names->truncated++;
	} else {
		slot[length] = '\0';
	}
	memcpy(slot, name, length);
	names->used += strlen(slot) + 1;
	return slot;
}

const char *display_names__name(struct display_names *names, const char *raw)
{
	const char *version = strchr(raw, '@');
	size_t length = version && version > raw ? (size_t)(version - raw) : strlen(raw);
	char unversioned[DEMANGLE_MAX_MANGLED + 1];
	const char *mangled = raw;
	bool truncated = false;
	size_t size;
	char *slot;

	if (length != strlen(raw) && length <= DEMANGLE_MAX_MANGLED) {
		memcpy(unversioned, raw, length);
		unversioned[length] = '\0';
		mangled = unversioned;
	}
	slot = name_slot(names, &size);
	if (size > 4 && demangle__name(mangled, slot, size, &truncated) == 0) {
		names->used += strlen(slot) + 1;
		if (truncated)
			names->truncated++;
		return slot;
	}
	if (length == strlen(raw))
		return raw;
	return store_name(names, raw, length) ?: raw;
}

/*
 * The length of name without the suffixes GCC gives the parts it splits off
 * or specializes: "f.cold", "f.isra.0", "f.part.1", "f.constprop.0".
 */
static size_t unsplit_length(const char *name)
{
	static const char *const kinds[] = { "cold", "isra", "part", "constprop", "lto_priv" };
	size_t length = strlen(name);

	for (;;) {
		size_t end = length, dot;
		bool known = false;

		while (end > 0 && name[end - 1] >= '0' && name[end - 1] <= '9')
			end--;
		if (end < length && end > 0 && name[end - 1] == '.')
			end--; /* ".0" of ".isra.0" */
		for (dot = end; dot > 0 && name[dot - 1] != '.'; dot--)
			;
		if (dot == 0)
			return length;
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
			known = known || (end - dot == strlen(kinds[i]) &&
					  strncmp(name + dot, kinds[i], end - dot) == 0);
		if (!known)
			return length;
		length = dot - 1;
	}
}

const char *display_names__unsplit(struct display_names *names, const char *symbol)
{
	size_t length = unsplit_length(symbol);
	char mangled[DEMANGLE_MAX_MANGLED + 1];

	if (length == strlen(symbol) || length > DEMANGLE_MAX_MANGLED)
		return display_names__name(names, symbol);
	memcpy(mangled, symbol, length);
	mangled[length] = '\0';
	return display_names__name(names, mangled);
}
