/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where a file's debug information is looked for: the policy, kept apart
 * from the cache that opens files (elf_cache) and from the readers of what
 * it finds. In this order, stopping once a file with DWARF (.debug_info)
 * is found:
 *   1. the file itself;
 *   2. DEBUG_DIR/.build-id/xx/yyyy.debug, on the host and in the process's
 *      root (/proc/PID/root), DEBUG_DIR being /usr/lib/debug;
 *   3. .gnu_debuglink's name, with its CRC checked: next to the file, in
 *      .debug/ next to it, under DEBUG_DIR followed by the file's directory;
 *   (what is in the process's root is opened confined to it, and only if
 *   the process could read it itself: process_files.h; the host's debug
 *   directory is kiln's own, opened as a regular file)
 *   4. .gnu_debugdata (MiniDebugInfo: symbols only), when no .symtab yet;
 *   5. debuginfod, by build id, when servers are configured: fetched in the
 *      background, so lookups use what 1-4 gave until the file arrives.
 * 1-4 happen when a file is opened (debug_search__find); for 5 the cache
 * asks (debug_search__request) and takes what arrives later
 * (debug_search__take_fetched), attaching it to its file itself.
 *
 * Used from one thread; debuginfod's fetch thread is internal. Library
 * code: it never prints, it returns 0 or a negative errno.
 */
#ifndef KILN_DEBUG_SEARCH_H
#define KILN_DEBUG_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/debuginfod_fetcher.h"
#include "symbolizer/process_files.h"

struct debug_search;
struct elf_file;

struct debug_search_opts {
	const char *debug_dir; /* NULL means /usr/lib/debug */
	/*
	 * debuginfod servers, space-separated as in DEBUGINFOD_URLS (which
	 * debug_search__new then sets: libdebuginfod reads only the
	 * environment); NULL or "": no debuginfod.
	 */
	const char *debuginfod_urls;
	size_t debuginfod_max_queued; /* fetches waiting or under way; 0: 64 */
	uint64_t debuginfod_timeout_ms; /* one whole fetch; 0: 120 s */
	uint64_t debuginfod_retry_ms; /* a failed build id is not asked again before; 0: 10 min */
};

struct debug_search_stats {
	/* Debug files found, by where (see the order above). */
	uint64_t build_id;
	uint64_t debuglink;
	uint64_t minidebuginfo;
	uint64_t debuginfod;
	/* Candidates in the process's root refused by process_files' checks, by reason. */
	struct process_file_refusals refused;
	bool debuginfod_enabled;
	struct debuginfod_fetcher_stats fetches; /* zero without debuginfod */
};

/* When debug_search__ask_again_at says a file is asked for again. */
#define DEBUG_SEARCH_NEVER 0
#define DEBUG_SEARCH_WAITING UINT64_MAX /* a fetch is under way: wait for its result */

/* A fetch debuginfod finished. build_id stays valid until the next call. */
struct debug_search_fetched {
	const char *build_id;
	int fd; /* the debug file, the caller's to close; -1 on failure */
	int error; /* 0, or why it failed */
	uint64_t ask_again_at; /* for the file when it fails (or cannot use fd) */
};

/*
 * NULL with errno set; ENOENT when debuginfod servers are given but
 * libdebuginfod cannot be loaded. opts may be NULL.
 */
struct debug_search *debug_search__new(const struct debug_search_opts *opts);
/* Stops debuginfod's thread first: a fetch under way is abandoned. */
void debug_search__free(struct debug_search *search);

/*
 * Gives a file just opened from path (as process pid maps it) the best
 * debug file found without waiting (places 1-4). Not finding one is normal:
 * .dynsym still names exported functions.
 */
void debug_search__find(struct debug_search *search, int pid, const char *path,
			struct elf_file *elf);

/* Whether debuginfod is worth asking for elf: servers, a build id, and no DWARF yet. */
bool debug_search__wants_fetch(const struct debug_search *search, const struct elf_file *elf);

/*
 * Asks debuginfod for build_id's debug file. Returns 0 with *ret_fd (the
 * caller's to close; then debug_search__took says whether it was used) when
 * it was fetched before; -EINPROGRESS when a fetch is queued or under way,
 * -ENOSPC when the queue is full, -EINVAL for a malformed build id, or the
 * error of a recent failure.
 */
int debug_search__request(struct debug_search *search, const char *build_id, int *ret_fd);

/* When a file is asked for again after a request's (or its use's) error. */
uint64_t debug_search__ask_again_at(const struct debug_search *search, int error);

/* Whether a file to ask for again at ask_again_at is due, with room to queue it. */
bool debug_search__due(const struct debug_search *search, uint64_t ask_again_at);

/* The next finished fetch: 0 and *ret_fetched, or -EAGAIN when none is waiting. */
int debug_search__take_fetched(struct debug_search *search,
			       struct debug_search_fetched *ret_fetched);

/*
 * The caller took build_id's fetched file (error 0: counted as found by
 * debuginfod) or could not use it (not asked for again before the retry
 * interval).
 */
void debug_search__took(struct debug_search *search, const char *build_id, int error);

void debug_search__stats(const struct debug_search *search, struct debug_search_stats *ret_stats);

#endif /* KILN_DEBUG_SEARCH_H */
