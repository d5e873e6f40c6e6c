// SPDX-License-Identifier: Apache-2.0
/* Mangled C++ and Rust names to display names, written into a bounded buffer. */
#include <errno.h>
#include <string.h>

#include <libiberty/demangle.h>

#include "symbolizer/demangle.h"

#define ELLIPSIS "..."

/* The demangler's output, appended piece by piece and cut at the buffer's end. */
struct demangle_output {
	char *buffer;
	size_t size;
	size_t length;
	bool truncated;
};

static void append(const char *piece, size_t length, void *opaque)
{
	struct demangle_output *out = opaque;
	size_t room = out->size - 1 - out->length;

	if (out->truncated)
		return;
	if (length > room) {
		length = room;
		out->truncated = true;
	}
	memcpy(out->buffer + out->length, piece, length);
	out->length += length;
	out->buffer[out->length] = '\0';
}

/* Ends a cut name in "...", without splitting a UTF-8 sequence (Rust v0 keeps Unicode). */
static void mark_truncated(struct demangle_output *out)
{
	size_t end = out->size - 1 - strlen(ELLIPSIS);

	while (end > 0 && ((unsigned char)out->buffer[end] & 0xc0) == 0x80)
		end--;
	memcpy(out->buffer + end, ELLIPSIS, sizeof(ELLIPSIS));
}

/*
 * Legacy Rust names are C++ names whose last component is a hash,
 * "17h" and 16 hex digits: a cheap test that spares most C++ names a full
 * parse as Rust.
 */
static bool has_rust_hash(const char *name)
{
	for (const char *hash = strstr(name, "17h"); hash; hash = strstr(hash + 1, "17h")) {
		size_t digits = strspn(hash + 3, "0123456789abcdef");

		if (digits == 16 && hash[19] == 'E')
			return true;
	}
	return false;
}

bool demangle__is_mangled(const char *name)
{
	/* "_Z..." (C++, legacy Rust) and "_R..." (Rust v0). */
	return name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

int demangle__name(const char *name, char *buffer, size_t size, bool *ret_truncated)
{
	struct demangle_output out = { .buffer = buffer, .size = size };
	int demangled = 0;

	buffer[0] = '\0';
	if (!demangle__is_mangled(name))
		return -EINVAL;
	if (strnlen(name, DEMANGLE_MAX_MANGLED + 1) > DEMANGLE_MAX_MANGLED)
		return -E2BIG;
	/* Legacy Rust names are valid C++ names too: Rust first, as libiberty's own dispatch. */
	if (name[1] == 'R' || (name[2] == 'N' && has_rust_hash(name)))
		demangled = rust_demangle_callback(name, DMGL_PARAMS | DMGL_ANSI, append, &out);
	if (!demangled && name[1] == 'Z') {
		out.length = 0;
		out.truncated = false;
		buffer[0] = '\0';
		demangled = cplus_demangle_v3_callback(
			name, DMGL_PARAMS | DMGL_ANSI | DMGL_NO_RECURSE_LIMIT, append, &out);
	}
	if (!demangled || out.length == 0) {
		buffer[0] = '\0';
		return -EINVAL;
	}
	if (out.truncated)
		mark_truncated(&out);
	if (ret_truncated)
		*ret_truncated = out.truncated;
	return 0;
}
