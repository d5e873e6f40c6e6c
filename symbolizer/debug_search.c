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
static int try_debug_file(struct elf_file *elf, int fd, bool check_crc, uint32_t expected_crc)
{
	int err = 0;
	uint32_t crc;

	if (fd < 0)
		return fd;
	if (check_crc) {
		err = elf_file__crc32(fd, &crc);
		if (!err && crc != expected_crc)
			err = -ESTALE;
		/* Refused before it is read through: counted as elf_file__use_debug_file would. */
		if (err == -EFBIG)
			elf_file__add_loss(elf, ELF_LOSS_DEBUG_FILE_TOO_LARGE);
	}
	if (!err)
		err = elf_file__use_debug_file(elf, fd);
	close(fd);
	return err;
}

/*
 * The process a file is looked for: its root, and who it is, so that a
 * path inside its root is opened as it would be opened there, and only
 * if it could read it itself. root_fd < 0 when it is gone: only the
 * host's debug directory is looked in.
 */
struct search_process {
	int root_fd;
	struct process_identity identity;
	struct process_file_refusals *refused;
};

static void search_process_open(int pid, struct process_file_refusals *refused,
				struct search_process *ret_process)
{
	*ret_process = (struct search_process){ .root_fd = -1, .refused = refused };
	if (process_files_read_identity(pid, &ret_process->identity) == 0)
		ret_process->root_fd = process_files_open_root(pid);
}

/* path inside the process's root, under its rights; refusals counted. */
static int open_in_process(const struct search_process *process, const char *path)
{
	const struct process_file_policy policy = { .identity = &process->identity };
	enum process_file_refusal refusal = PROCESS_FILE_REFUSALS;
	int fd;

	if (process->root_fd < 0)
		return -ESRCH;
	fd = process_files_open(process->root_fd, path, &policy, &refusal);
	process_file_refusals__count(process->refused, fd, refusal);
	return fd;
}

/* By build id under the debug directories, the host's and the process's. */
static int find_by_build_id(const struct debug_search *search, const struct search_process *process,
			    struct elf_file *elf)
{
	const char *build_id = elf_file__build_id(elf);
	char path[PATH_MAX];

	if (strlen(build_id) <= 2)
		return -ENOENT;
	if (snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", search->debug_dir, build_id,
		     build_id + 2) < (int)sizeof(path) &&
	    try_debug_file(elf, process_files_open_regular(path), false, 0) == 0)
		return 0;
	if (snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", DEFAULT_DEBUG_DIR, build_id,
		     build_id + 2) < (int)sizeof(path) &&
	    try_debug_file(elf, open_in_process(process, path), false, 0) == 0)
		return 0;
	return -ENOENT;
}

/*
 * By .gnu_debuglink, as gdb does: next to the file, in .debug/ next to it,
 * and under the debug directories followed by the file's directory. All
 * but the host's debug directory are inside the process's root.
 */
static int find_by_debuglink(const struct debug_search *search,
			     const struct search_process *process, const char *file_path,
			     struct elf_file *elf)
{
	char path[PATH_MAX], dir[PATH_MAX];
	const char *link, *slash;
	uint32_t crc;

	if (elf_file__debuglink(elf, &link, &crc) < 0 || strchr(link, '/'))
		return -ENOENT;
	slash = strrchr(file_path, '/');
	if (!slash || slash - file_path >= (int)sizeof(dir))
		return -ENOENT;
	/* The file's directory, without the trailing slash. */
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file_path), file_path);
	/* prefix + dir + subdir + "/" + link; in the process's root or not */
	const struct {
		const char *prefix;
		const char *subdir;
		bool in_process;
	} candidates[] = {
		{ "", "", true },
		{ "", "/.debug", true },
		{ search->debug_dir, "", false },
		{ DEFAULT_DEBUG_DIR, "", true },
	};

	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		int fd;

		if (snprintf(path, sizeof(path), "%s%s%s/%s", candidates[i].prefix, dir,
			     candidates[i].subdir, link) >= (int)sizeof(path))
			continue;
		fd = candidates[i].in_process ? open_in_process(process, path)
					      : process_files_open_regular(path);
		if (try_debug_file(elf, fd, true, crc) == 0)
			return 0;
	}
	return -ENOENT;
}

void debug_search__find(struct debug_search *search, int pid, const char *path,
			struct elf_file *elf)
{
	struct search_process process;

	if (elf_file__has_debug_info(elf))
		return;
	search_process_open(pid, &search->stats.refused, &process);
	if (find_by_build_id(search, &process, elf) == 0)
		search->stats.build_id++;
	else if (find_by_debuglink(search, &process, path, elf) == 0)
		search->stats.debuglink++;
	else if (!elf_file__has_symtab(elf) && elf_file__use_minidebuginfo(elf) == 0)
		search->stats.minidebuginfo++;
	if (process.root_fd >= 0)
		close(process.root_fd);
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
	fd = process_files_open_regular(path);
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
