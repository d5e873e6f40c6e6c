// SPDX-License-Identifier: Apache-2.0
/* Where debug files are looked for: build-id directories, .gnu_debuglink, MiniDebugInfo, debuginfod. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "symbolizer/debug_search.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/process_files.h"

#define DEFAULT_DEBUG_DIR "/usr/lib/debug"
#define DEFAULT_DEBUGINFOD_RETRY_NS (600ULL * 1000 * 1000 * 1000)

struct debug_search {
	char *debug_dir;
	struct debuginfod_fetcher *debuginfod; /* NULL without servers */
	uint64_t debuginfod_retry_ns;
	struct debug_search_stats stats;
};

struct debug_search *debug_search__new(const struct debug_search_opts *opts)
{
	struct debug_search_opts defaults = {};
	struct debug_search *search;
	int err = 0;

	if (!opts)
		opts = &defaults;
	search = calloc(1, sizeof(*search));
	if (!search)
		return NULL;
	search->debug_dir = strdup(opts->debug_dir ? opts->debug_dir : DEFAULT_DEBUG_DIR);
	if (!search->debug_dir) {
		err = -ENOMEM;
		goto cleanup;
	}
	search->debuginfod_retry_ns = opts->debuginfod_retry_ms
					      ? opts->debuginfod_retry_ms * 1000000
					      : DEFAULT_DEBUGINFOD_RETRY_NS;
	if (opts->debuginfod_urls && opts->debuginfod_urls[strspn(opts->debuginfod_urls, " ")]) {
		const struct debuginfod_fetcher_opts fetcher_opts = {
			.urls = opts->debuginfod_urls,
			.max_queued = opts->debuginfod_max_queued,
			.timeout_ns = opts->debuginfod_timeout_ms * 1000000,
			.retry_ns = search->debuginfod_retry_ns,
		};

		search->debuginfod = debuginfod_fetcher__new(&fetcher_opts);
		if (!search->debuginfod)
			err = -errno;
	}
cleanup:
	if (err) {
		debug_search__free(search);
		errno = -err;
		return NULL;
	}
	return search;
}

void debug_search__free(struct debug_search *search)
{
	if (!search)
		return;
	debuginfod_fetcher__free(search->debuginfod);
	free(search->debug_dir);
	free(search);
}

/* Accepts a candidate debug file when its CRC (if one is expected) and build id match. */
static int try_debug_file(struct elf_file *elf, const char *path, bool check_crc,
			  uint32_t expected_crc)
{
	int err = 0, fd;
	uint32_t crc;

	fd = process_files_open_readonly(path);
	if (fd < 0)
		return fd;
	if (check_crc) {
		err = elf_file__crc32(fd, &crc);
		if (!err && crc != expected_crc)
			err = -ESTALE;
	}
	if (!err)
		err = elf_file__use_debug_file(elf, fd);
	close(fd);
	return err;
}

/* By build id under the debug directories, the host's and the process's. */
static int find_by_build_id(const struct debug_search *search, int pid, struct elf_file *elf)
{
	const char *build_id = elf_file__build_id(elf);
	char path[PATH_MAX], root_debug_dir[64];

	if (strlen(build_id) <= 2)
		return -ENOENT;
	process_files_path(pid, DEFAULT_DEBUG_DIR, root_debug_dir, sizeof(root_debug_dir));
	const char *debug_dirs[] = { search->debug_dir, root_debug_dir };

	for (size_t i = 0; i < ARRAY_SIZE(debug_dirs); i++) {
		if (snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", debug_dirs[i],
			     build_id, build_id + 2) < (int)sizeof(path) &&
		    try_debug_file(elf, path, false, 0) == 0)
			return 0;
	}
	return -ENOENT;
}

/*
 * By .gnu_debuglink, as gdb does: next to the file, in .debug/ next to it,
 * and under the debug directories followed by the file's directory. The
 * file's own directory is read through the process's root.
 */
static int find_by_debuglink(const struct debug_search *search, int pid, const char *file_path,
			     struct elf_file *elf)
{
	char path[PATH_MAX], dir[PATH_MAX], root[32], root_debug_dir[64];
	const char *link, *slash;
	uint32_t crc;

	if (elf_file__debuglink(elf, &link, &crc) < 0 || strchr(link, '/'))
		return -ENOENT;
	slash = strrchr(file_path, '/');
	if (!slash || slash - file_path >= (int)sizeof(dir))
		return -ENOENT;
	/* The file's directory, without the trailing slash. */
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file_path), file_path);
	process_files_path(pid, "", root, sizeof(root));
	process_files_path(pid, DEFAULT_DEBUG_DIR, root_debug_dir, sizeof(root_debug_dir));
	/* prefix + dir + subdir + "/" + link */
	const char *candidates[][2] = {
		{ root, "" },
		{ root, "/.debug" },
		{ search->debug_dir, "" },
		{ root_debug_dir, "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		if (snprintf(path, sizeof(path), "%s%s%s/%s", candidates[i][0], dir,
			     candidates[i][1], link) < (int)sizeof(path) &&
		    try_debug_file(elf, path, true, crc) == 0)
			return 0;
	}
	return -ENOENT;
}

void debug_search__find(struct debug_search *search, int pid, const char *path,
			struct elf_file *elf)
{
	if (elf_file__has_debug_info(elf))
		return;
	if (find_by_build_id(search, pid, elf) == 0)
		search->stats.build_id++;
	else if (find_by_debuglink(search, pid, path, elf) == 0)
		search->stats.debuglink++;
	else if (!elf_file__has_symtab(elf) && elf_file__use_minidebuginfo(elf) == 0)
		search->stats.minidebuginfo++;
}

bool debug_search__wants_fetch(const struct debug_search *search, const struct elf_file *elf)
{
	return search->debuginfod && !elf_file__has_debug_info(elf) && elf_file__build_id(elf)[0];
}

int debug_search__request(struct debug_search *search, const char *build_id, int *ret_fd)
{
	const char *path;
	int err, fd;

	err = debuginfod_fetcher__find(search->debuginfod, build_id, &path);
	if (err)
		return err;
	fd = process_files_open_readonly(path);
	if (fd >= 0) {
		*ret_fd = fd;
		return 0;
	}
	/* Cleaned out of libdebuginfod's cache: fetch it again. */
	debuginfod_fetcher__forget(search->debuginfod, build_id);
	err = debuginfod_fetcher__find(search->debuginfod, build_id, &path);
	return err ? err : -ENOENT;
}

uint64_t debug_search__ask_again_at(const struct debug_search *search, int error)
{
	if (error == -EINPROGRESS)
		return DEBUG_SEARCH_WAITING;
	if (error == -ENOSPC)
		return now_ns(); /* as soon as there is room */
	if (error == -EINVAL)
		return DEBUG_SEARCH_NEVER;
	return now_ns() + search->debuginfod_retry_ns;
}

bool debug_search__due(const struct debug_search *search, uint64_t ask_again_at)
{
	return search->debuginfod && ask_again_at != DEBUG_SEARCH_NEVER &&
	       ask_again_at != DEBUG_SEARCH_WAITING && now_ns() >= ask_again_at &&
	       debuginfod_fetcher__has_room(search->debuginfod);
}

int debug_search__take_fetched(struct debug_search *search,
			       struct debug_search_fetched *ret_fetched)
{
	struct debuginfod_result result;
	int err;

	if (!search->debuginfod)
		return -EAGAIN;
	err = debuginfod_fetcher__take_result(search->debuginfod, &result);
	if (err)
		return err;
	*ret_fetched = (struct debug_search_fetched){
		.build_id = result.build_id,
		.fd = result.fd,
		.error = result.error,
		.ask_again_at = now_ns() + search->debuginfod_retry_ns,
	};
	return 0;
}

void debug_search__took(struct debug_search *search, const char *build_id, int error)
{
	if (error)
		debuginfod_fetcher__reject(search->debuginfod, build_id, error);
	else
		search->stats.debuginfod++;
}

void debug_search__stats(const struct debug_search *search, struct debug_search_stats *ret_stats)
{
	*ret_stats = search->stats;
	if (!search->debuginfod)
		return;
	ret_stats->debuginfod_enabled = true;
	debuginfod_fetcher__stats(search->debuginfod, &ret_stats->fetches);
}
