/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The windows the HTTP endpoint serves as pprof: the files of
 * --output-dir, or, without one, the last windows kept in memory within
 * a bound. Only names kiln gives its profiles (profile_name.h) are ever
 * opened, in that directory alone, never through a symbolic link.
 */
#ifndef KILN_HTTP_PROFILE_WINDOWS_H
#define KILN_HTTP_PROFILE_WINDOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/output/profile_name.h"

/* Without --output-dir: the windows kept, at most this many and this many bytes. */
#define PROFILE_WINDOWS_MEMORY_COUNT 30
#define PROFILE_WINDOWS_MEMORY_BYTES (16 << 20)
/* A window file larger than this is not served (kiln writes far smaller ones). */
#define PROFILE_WINDOWS_MAX_FILE_BYTES (64 << 20)

struct profile_window {
	char name[PROFILE_NAME_SIZE];
	enum profile_kind kind;
	int64_t start_ns; /* Unix time, to the second */
	uint64_t bytes; /* gzip-compressed */
};

struct profile_windows_stats {
	uint64_t kept; /* in memory now */
	uint64_t kept_bytes;
	uint64_t dropped; /* left out of memory for the bound, oldest first */
};

struct profile_windows;

/* From output_dir, or in memory when it is NULL. NULL with errno set. */
struct profile_windows *profile_windows__new(const char *output_dir);
void profile_windows__free(struct profile_windows *windows);

/* Whether windows are kept in memory (no output directory). */
bool profile_windows__in_memory(const struct profile_windows *windows);

/*
 * In memory only: keeps a window's gzip-compressed pprof, data taken
 * over (freed on failure too), dropping the oldest past the bounds.
 */
void profile_windows__add(struct profile_windows *windows, enum profile_kind kind, int64_t start_ns,
			  uint8_t *data, size_t size);

/*
 * The windows, newest first, at most max of them, in ret (malloc'd);
 * returns how many, or a negative errno (the directory unreadable).
 */
int profile_windows__list(struct profile_windows *windows, size_t max, struct profile_window **ret);

/*
 * A window's gzip-compressed pprof, malloc'd. -ENOENT for a name that is
 * not one of kiln's windows (or is gone), -EFBIG past the size bound.
 */
int profile_windows__read(struct profile_windows *windows, const char *name, uint8_t **ret_data,
			  size_t *ret_size);

void profile_windows__stats(struct profile_windows *windows,
			    struct profile_windows_stats *ret_stats);

#endif /* KILN_HTTP_PROFILE_WINDOWS_H */
