/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pushes profiles to a backend from its own thread. Every profile goes into
 * the on-disk spool first and leaves it only once delivered (or rejected for
 * good), so neither a backend outage nor a restart loses one, up to the
 * spool's bound. Failed uploads are retried with exponential backoff.
 */
#ifndef KILN_UPLOADER_H
#define KILN_UPLOADER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/push/http.h"
#include "agent/push/protocol.h"
#include "agent/push/record.h"

struct uploader;

struct uploader_opts {
	const struct http_opts *http; /* copied; should_abort is the uploader's own */
	const struct push_protocol *protocol;
	const char *spool_dir;
	uint64_t spool_max_bytes;
	uint64_t spool_max_files;
};

struct uploader_stats {
	uint64_t sent; /* profiles delivered */
	uint64_t sent_bytes; /* their payload bytes */
	uint64_t failed; /* profiles given up: rejected by the server, or unreadable */
	/* Profiles a server dropped from requests it accepted (OTLP's partial_success). */
	uint64_t partially_rejected;
	uint64_t retried; /* attempts that failed and will be retried */
	uint64_t dropped; /* profiles dropped unsent to keep the spool within its bound */
	uint64_t dropped_bytes;
	uint64_t corrupt; /* spool files that failed their checks */
	uint64_t pending; /* profiles waiting in the spool */
	uint64_t pending_bytes;
	uint64_t recovered; /* found in the spool at start */
	/* Attempts that did not deliver, by why (retried or given up alike). */
	uint64_t failures[PUSH_FAILURE__COUNT];
};

/* Opens the spool and starts the thread. NULL with errno set (EBUSY: spool in use). */
struct uploader *uploader__new(const struct uploader_opts *opts);

/* Spools one profile for upload; never blocks on the network. Returns 0 or a negative errno. */
int uploader__push(struct uploader *uploader, const struct push_record *record, const uint8_t *data,
		   size_t size);

void uploader__stats(struct uploader *uploader, struct uploader_stats *ret_stats);

/*
 * Keeps uploading until the spool is empty or drain_ms have passed, then
 * aborts the upload in flight and stops the thread. What is left stays in
 * the spool for the next start. Counters stay readable.
 */
void uploader__stop(struct uploader *uploader, uint64_t drain_ms);

/* Stops at once if still running, and frees. NULL is accepted. */
void uploader__free(struct uploader *uploader);

#endif /* KILN_UPLOADER_H */
