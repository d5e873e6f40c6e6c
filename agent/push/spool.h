/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded on-disk queue of records waiting to be uploaded: one file per
 * record, oldest first, kept across restarts. When a new record does not fit
 * under the byte or file limit, the oldest records are dropped (and counted)
 * to make room; the record being uploaded is never dropped.
 *
 * Thread-safe: one thread puts, another claims and completes.
 */
#ifndef KILN_SPOOL_H
#define KILN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

struct spool_opts {
	const char *dir; /* created if missing; one kiln per directory (locked) */
	uint64_t max_bytes; /* files on disk, headers included */
	uint64_t max_files;
};

struct spool_stats {
	uint64_t files; /* records waiting, the claimed one included */
	uint64_t bytes;
	uint64_t put; /* records added since open */
	uint64_t dropped; /* oldest records removed unsent to stay within the limits */
	uint64_t dropped_bytes;
	uint64_t corrupt; /* records that failed their checks on reading, removed */
	uint64_t recovered; /* records found on disk at open */
};

/* A claimed record: meta is a NUL-terminated string, payload opaque bytes. */
struct spool_item {
	uint64_t seq;
	char *meta;
	uint8_t *payload;
	size_t payload_size;
	size_t file_size;
};

/*
 * Opens (creating) the directory, takes its lock, removes half-written
 * files and finds the records left by an earlier run. NULL with errno set:
 * EBUSY when another process holds the directory.
 */
struct spool *spool__open(const struct spool_opts *opts);
void spool__close(struct spool *spool);

/*
 * Adds a record. Drops the oldest unclaimed records while it would not fit.
 * Returns 0; -EFBIG when the record alone is over the limit (it is counted as
 * dropped and not stored); or a negative errno from writing it.
 */
int spool__put(struct spool *spool, const char *meta, const void *payload, size_t payload_size);

/*
 * Reads the oldest record and marks it claimed (one claim at a time).
 * Returns 0, -ENOENT when the spool is empty, -EBUSY when a record is
 * already claimed, or a negative errno. Unreadable or corrupt files on the
 * way are removed and counted.
 */
int spool__claim(struct spool *spool, struct spool_item *ret_item);

/* Ends the claim: removes the record from disk when remove, else keeps it for later. */
void spool__release(struct spool *spool, struct spool_item *item, bool remove);

void spool__stats(struct spool *spool, struct spool_stats *ret_stats);

#endif /* KILN_SPOOL_H */
