/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Debug files from debuginfod servers (internal to the symbolizer), fetched
 * by build id on a background thread with libdebuginfod, so that no lookup
 * ever waits for the network. Everything but the thread itself runs on the
 * caller's thread: requests go into a bounded queue, results come back
 * through a locked queue that the caller drains when it likes.
 *
 * Library code: it never prints, it returns 0 or a negative errno.
 */
#ifndef KILN_DEBUGINFOD_FETCHER_H
#define KILN_DEBUGINFOD_FETCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct debuginfod_fetcher;

struct debuginfod_fetcher_opts {
	/*
	 * Servers, space-separated as in DEBUGINFOD_URLS. libdebuginfod reads
	 * them only from that environment variable, so the constructor sets it
	 * (before its thread starts; call it before other threads read the
	 * environment).
	 */
	const char *urls;
	size_t max_queued; /* build ids waiting or being fetched; 0: 64 */
	size_t max_known; /* build ids remembered (found or failed); 0: 4096 */
	uint64_t timeout_ns; /* one fetch, connecting and downloading; 0: 120 s */
	uint64_t retry_ns; /* a build id that failed is not asked for again before; 0: 10 min */
	/* Larger downloads are stopped and refused; 0: ELF_FILE_DEBUG_MAX_BYTES (4 GiB). */
	uint64_t max_file_bytes;
};

struct debuginfod_fetcher_stats {
	uint64_t requested; /* fetches queued */
	uint64_t succeeded; /* a server sent a usable file */
	uint64_t failed; /* not found, server unreachable, timed out, unusable file */
	uint64_t too_large; /* of those, over max_file_bytes: stopped or refused */
	uint64_t queue_full; /* requests dropped: max_queued fetches outstanding */
	uint64_t forgotten; /* remembered build ids dropped for room (max_known) */
	uint64_t pending; /* now queued or being fetched */
	int last_error; /* negative errno of the latest failure, 0 if none */
};

/* A finished fetch. build_id stays valid until the next call. */
struct debuginfod_result {
	const char *build_id;
	int fd; /* the debug file, the caller's to close; -1 on failure */
	int error; /* 0, or why it failed */
};

/* NULL with errno set (EINVAL: no URLs). opts->urls is required. */
struct debuginfod_fetcher *debuginfod_fetcher__new(const struct debuginfod_fetcher_opts *opts);

/* Stops the thread: a fetch under way is abandoned within about a second. */
void debuginfod_fetcher__free(struct debuginfod_fetcher *fetcher);

/*
 * The debug file for build_id (lowercase hex). Returns 0 with *ret_path
 * when one was fetched before; -EINPROGRESS when a fetch is queued (by this
 * call or an earlier one) or under way; -ENOSPC when the queue is full
 * (counted in queue_full, nothing remembered); the error of a failure less
 * than retry_ns ago; -EINVAL for a malformed build id.
 */
int debuginfod_fetcher__find(struct debuginfod_fetcher *fetcher, const char *build_id,
			     const char **ret_path);

/* True when a request would not be dropped for a full queue. */
bool debuginfod_fetcher__has_room(const struct debuginfod_fetcher *fetcher);

/*
 * Takes the next finished fetch: 0 and *ret_result, or -EAGAIN when none
 * is waiting. Cheap when none is (no lock taken).
 */
int debuginfod_fetcher__take_result(struct debuginfod_fetcher *fetcher,
				    struct debuginfod_result *ret_result);

/*
 * The caller could not use the file fetched for build_id (not ELF, other
 * build id): counted as failed instead of succeeded, and not asked for
 * again before retry_ns.
 */
void debuginfod_fetcher__reject(struct debuginfod_fetcher *fetcher, const char *build_id,
				int error);

/* Forgets a build id, so the next find fetches it again (its cached file vanished). */
void debuginfod_fetcher__forget(struct debuginfod_fetcher *fetcher, const char *build_id);

void debuginfod_fetcher__stats(const struct debuginfod_fetcher *fetcher,
			       struct debuginfod_fetcher_stats *ret_stats);

#endif /* KILN_DEBUGINFOD_FETCHER_H */
