// SPDX-License-Identifier: Apache-2.0
/* Debug files from debuginfod, fetched on one background thread; lookups never wait. */
#include <elfutils/debuginfod.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/dl.h"
#include "lib/hashmap.h"
#include "symbolizer/debuginfod_fetcher.h"
#include "symbolizer/elf_file.h"

/*
 * libdebuginfod through dlopen(), as libdw itself loads it: linked, it
 * would bring libcurl and some thirty libraries (about 6 MiB resident)
 * into every kiln, fetching or not.
 */
#define LIBDEBUGINFOD_SONAME "libdebuginfod.so.1"

static struct {
	__typeof__(debuginfod_begin) *begin;
	__typeof__(debuginfod_end) *end;
	__typeof__(debuginfod_find_debuginfo) *find_debuginfo;
	__typeof__(debuginfod_set_user_data) *set_user_data;
	__typeof__(debuginfod_get_user_data) *get_user_data;
	__typeof__(debuginfod_set_progressfn) *set_progressfn;
} lib;

static int lib_status = -ENOENT; /* 0 once every function is there */

static void load_once(void)
{
	static const struct dl_symbol symbols[] = {
		{ "debuginfod_begin", (void **)&lib.begin },
		{ "debuginfod_end", (void **)&lib.end },
		{ "debuginfod_find_debuginfo", (void **)&lib.find_debuginfo },
		{ "debuginfod_set_user_data", (void **)&lib.set_user_data },
		{ "debuginfod_get_user_data", (void **)&lib.get_user_data },
		{ "debuginfod_set_progressfn", (void **)&lib.set_progressfn },
	};
	char error[256]; /* the caller says what is missing: the library */

	/* Loaded for the process's life, as libdw keeps it. */
	lib_status = dl_open(LIBDEBUGINFOD_SONAME, symbols, ARRAY_SIZE(symbols), NULL, error,
			     sizeof(error));
}

/* Loads the library once; 0, or -ENOENT when it or one of its functions is missing. */
static int load_libdebuginfod(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, load_once);
	return lib_status;
}

#define DEFAULT_MAX_QUEUED 64
#define DEFAULT_MAX_KNOWN 4096
#define DEFAULT_TIMEOUT_NS (120ULL * 1000 * 1000 * 1000)
#define DEFAULT_RETRY_NS (600ULL * 1000 * 1000 * 1000)
/* 64-byte build ids at most, as libdebuginfod accepts. */
#define BUILD_ID_HEX_MAX 128

enum fetch_state {
	FETCH_PENDING, /* queued or being fetched */
	FETCH_FOUND,
	FETCH_FAILED,
};

/* What the caller's thread knows about one build id. */
struct known_build_id {
	enum fetch_state state;
	char *path; /* FETCH_FOUND: the file in libdebuginfod's cache */
	int error; /* FETCH_FAILED */
	uint64_t finished_ns;
	char build_id[];
};

/* A finished fetch, handed from the fetch thread to the caller's. */
struct fetch_result {
	char build_id[BUILD_ID_HEX_MAX + 1];
	int fd;
	char *path;
	int error;
};

struct debuginfod_fetcher {
	size_t max_queued;
	size_t max_known;
	uint64_t timeout_ns;
	uint64_t retry_ns;
	uint64_t max_file_bytes;

	/* The caller's thread only. */
	struct hashmap *known; /* build id -> struct known_build_id */
	struct debuginfod_fetcher_stats stats;
	struct fetch_result taken; /* the result last returned: its build id stays the caller's */

	/* Shared with the fetch thread, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char (*requests)[BUILD_ID_HEX_MAX + 1]; /* ring of max_queued */
	size_t request_head, request_count;
	struct fetch_result *results; /* ring of max_queued */
	size_t result_head, result_count;
	size_t results_ready; /* result_count, also read without the lock */
	int stop; /* also read without the lock, by the progress callback */

	/* The fetch thread only. */
	debuginfod_client *client;
	uint64_t deadline_ns; /* of the fetch under way */
	bool abandoned; /* by on_progress: timed out, too large or stopping */
	bool timed_out;
	bool too_large;

	pthread_t thread;
	bool thread_started;
};

/* Called by libdebuginfod about once a second while it waits: nonzero abandons the fetch. */
static int on_progress(debuginfod_client *client, long done, long total)
{
	struct debuginfod_fetcher *fetcher = lib.get_user_data(client);

	(void)total;
	/*
	 * libdebuginfod stops at DEBUGINFOD_MAXSIZE only when the server sends
	 * a Content-Length; done counts what has arrived, sent with one or not.
	 */
	if (done > 0 && (uint64_t)done > fetcher->max_file_bytes) {
		fetcher->abandoned = fetcher->too_large = true;
		return 1;
	}
	if (__atomic_load_n(&fetcher->stop, __ATOMIC_ACQUIRE)) {
		fetcher->abandoned = true;
		return 1;
	}
	if (now_ns() >= fetcher->deadline_ns) {
		fetcher->abandoned = fetcher->timed_out = true;
		return 1;
	}
	return 0;
}

/* libdebuginfod's cache directory, found as it finds it; -ENOENT when there is none yet. */
static int client_cache_dir(char *dir, size_t size)
{
	const char *cache = getenv(DEBUGINFOD_CACHE_PATH_ENV_VAR);
	const char *home = getenv("HOME"), *xdg = getenv("XDG_CACHE_HOME");
	struct stat st;

	if (!home)
		home = "/";
	if (cache && *cache)
		snprintf(dir, size, "%s", cache);
	else if (snprintf(dir, size, "%s/.debuginfod_client_cache", home) > 0 &&
		 stat(dir, &st) == 0)
		;
	else if (xdg && *xdg)
		snprintf(dir, size, "%s/debuginfod_client", xdg);
	else
		snprintf(dir, size, "%s/.cache/debuginfod_client", home);
	return stat(dir, &st) == 0 ? 0 : -ENOENT;
}

/*
 * libdebuginfod 0.188 records an abandoned fetch as a miss (an empty file
 * it trusts for ten minutes), as if the server had said "not found". A fetch
 * abandoned for shutdown or a timeout said nothing of the sort: remove the
 * empty file it made, so the next kiln (or gdb) asks again.
 */
static void forget_abandoned_miss(const char *build_id, time_t started)
{
	char dir[PATH_MAX], path[PATH_MAX + 200];
	struct stat st;

	if (client_cache_dir(dir, sizeof(dir)) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s/debuginfo", dir, build_id);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
	    st.st_mtime >= started)
		unlink(path);
}

static void fetch_one(struct debuginfod_fetcher *fetcher, struct fetch_result *result)
{
	time_t started = time(NULL);
	struct stat st;
	char *path = NULL;
	int fd;

	fetcher->deadline_ns = now_ns() + fetcher->timeout_ns;
	fetcher->abandoned = fetcher->timed_out = fetcher->too_large = false;
	/* Length 0: the build id is given as hex. */
	fd = lib.find_debuginfo(fetcher->client, (const unsigned char *)result->build_id, 0, &path);
	if (fd >= 0 && !path) {
		close(fd);
		fd = -ENOMEM;
	}
	if (fd < 0) {
		free(path);
		if (fetcher->abandoned)
			forget_abandoned_miss(result->build_id, started);
		/* An abandoned fetch reports whatever libdebuginfod made of it; say why. */
		result->error = fetcher->timed_out ? -ETIMEDOUT : fetcher->too_large ? -EFBIG : fd;
		result->fd = -1;
		result->path = NULL;
		return;
	}
	/* Arrived faster than the progress callback looked: not kept in the cache either. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > fetcher->max_file_bytes) {
		unlink(path);
		free(path);
		close(fd);
		result->error = -EFBIG;
		result->fd = -1;
		result->path = NULL;
		return;
	}
	result->error = 0;
	result->fd = fd;
	result->path = path;
}

static void *fetch_thread(void *arg)
{
	struct debuginfod_fetcher *fetcher = arg;
	struct fetch_result result;

	pthread_mutex_lock(&fetcher->lock);
	for (;;) {
		while (!fetcher->stop && !fetcher->request_count)
			pthread_cond_wait(&fetcher->wake, &fetcher->lock);
		if (fetcher->stop)
			break;
		memcpy(result.build_id, fetcher->requests[fetcher->request_head],
		       sizeof(result.build_id));
		fetcher->request_head = (fetcher->request_head + 1) % fetcher->max_queued;
		fetcher->request_count--;
		pthread_mutex_unlock(&fetcher->lock);

		fetch_one(fetcher, &result);

		pthread_mutex_lock(&fetcher->lock);
		/* Room is certain: at most max_queued fetches are outstanding. */
		fetcher->results[(fetcher->result_head + fetcher->result_count) %
				 fetcher->max_queued] = result;
		fetcher->result_count++;
		__atomic_store_n(&fetcher->results_ready, fetcher->result_count, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&fetcher->lock);
	return NULL;
}

/* Starts the fetch thread with every signal blocked: signals are the main thread's. */
static int start_thread(struct debuginfod_fetcher *fetcher)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&fetcher->thread, NULL, fetch_thread, fetcher);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		fetcher->thread_started = true;
	return err;
}

/*
 * libdebuginfod reads DEBUGINFOD_MAXSIZE at each query: it asks the server
 * for no larger file (a 406 answer) and stops when Content-Length says more.
 * A smaller bound the user set stays.
 */
static int bound_download_size(uint64_t max_bytes)
{
	const char *current = getenv(DEBUGINFOD_MAXSIZE_ENV_VAR);
	char value[24];
	long long set = current ? atoll(current) : 0;

	if (set > 0 && (uint64_t)set <= max_bytes)
		return 0;
	snprintf(value, sizeof(value), "%llu", (unsigned long long)max_bytes);
	return setenv(DEBUGINFOD_MAXSIZE_ENV_VAR, value, 1) < 0 ? -errno : 0;
}

struct debuginfod_fetcher *debuginfod_fetcher__new(const struct debuginfod_fetcher_opts *opts)
{
	struct debuginfod_fetcher *fetcher = NULL;
	const char *current;
	int err = 0;

	if (!opts || !opts->urls || !opts->urls[strspn(opts->urls, " ")]) {
		err = -EINVAL;
		goto cleanup;
	}
	fetcher = calloc(1, sizeof(*fetcher));
	if (!fetcher) {
		err = -ENOMEM;
		goto cleanup;
	}
	pthread_mutex_init(&fetcher->lock, NULL);
	pthread_cond_init(&fetcher->wake, NULL);
	fetcher->taken.fd = -1;
	fetcher->max_queued = opts->max_queued ? opts->max_queued : DEFAULT_MAX_QUEUED;
	fetcher->max_known = opts->max_known ? opts->max_known : DEFAULT_MAX_KNOWN;
	/* Pending build ids are never forgotten: leave room for finished ones. */
	if (fetcher->max_known < 2 * fetcher->max_queued)
		fetcher->max_known = 2 * fetcher->max_queued;
	fetcher->timeout_ns = opts->timeout_ns ? opts->timeout_ns : DEFAULT_TIMEOUT_NS;
	fetcher->retry_ns = opts->retry_ns ? opts->retry_ns : DEFAULT_RETRY_NS;
	fetcher->max_file_bytes = opts->max_file_bytes ?: ELF_FILE_DEBUG_MAX_BYTES;
	fetcher->known = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	fetcher->requests = calloc(fetcher->max_queued, sizeof(*fetcher->requests));
	fetcher->results = calloc(fetcher->max_queued, sizeof(*fetcher->results));
	if (!fetcher->known || !fetcher->requests || !fetcher->results) {
		err = -ENOMEM;
		goto cleanup;
	}
	current = getenv(DEBUGINFOD_URLS_ENV_VAR);
	if ((!current || strcmp(current, opts->urls)) &&
	    setenv(DEBUGINFOD_URLS_ENV_VAR, opts->urls, 1) < 0) {
		err = -errno;
		goto cleanup;
	}
	err = bound_download_size(fetcher->max_file_bytes);
	if (err)
		goto cleanup;
	err = load_libdebuginfod();
	if (err)
		goto cleanup;
	fetcher->client = lib.begin();
	if (!fetcher->client) {
		err = errno ? -errno : -ENOMEM;
		goto cleanup;
	}
	lib.set_user_data(fetcher->client, fetcher);
	lib.set_progressfn(fetcher->client, on_progress);
	err = start_thread(fetcher);
cleanup:
	if (err) {
		debuginfod_fetcher__free(fetcher);
		errno = -err;
		return NULL;
	}
	return fetcher;
}

static void free_known(struct known_build_id *known)
{
	if (known) {
		free(known->path);
		free(known);
	}
}

void debuginfod_fetcher__free(struct debuginfod_fetcher *fetcher)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	uintptr_t key;
	void *value;

	if (!fetcher)
		return;
	if (fetcher->thread_started) {
		pthread_mutex_lock(&fetcher->lock);
		__atomic_store_n(&fetcher->stop, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&fetcher->wake);
		pthread_mutex_unlock(&fetcher->lock);
		pthread_join(fetcher->thread, NULL);
	}
	for (size_t i = 0; i < fetcher->result_count && fetcher->results; i++) {
		struct fetch_result *result =
			&fetcher->results[(fetcher->result_head + i) % fetcher->max_queued];

		if (result->fd >= 0)
			close(result->fd);
		free(result->path);
	}
	while (fetcher->known && hashmap__next(fetcher->known, &iter, &key, &value)) {
		hashmap__delete(fetcher->known, key, NULL, NULL);
		free_known(value);
	}
	hashmap__free(fetcher->known);
	if (fetcher->client)
		lib.end(fetcher->client);
	free(fetcher->requests);
	free(fetcher->results);
	pthread_cond_destroy(&fetcher->wake);
	pthread_mutex_destroy(&fetcher->lock);
	free(fetcher);
}

static bool valid_build_id(const char *build_id)
{
	size_t len = strlen(build_id);

	return len >= 2 && len <= BUILD_ID_HEX_MAX && len % 2 == 0 &&
	       strspn(build_id, "0123456789abcdef") == len;
}

/* Makes room for one more known build id: forgets the one that finished longest ago. */
static void forget_oldest(struct debuginfod_fetcher *fetcher)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	struct known_build_id *oldest = NULL;
	uintptr_t key;
	void *value;

	while (hashmap__next(fetcher->known, &iter, &key, &value)) {
		struct known_build_id *known = value;

		if (known->state != FETCH_PENDING &&
		    (!oldest || known->finished_ns < oldest->finished_ns))
			oldest = known;
	}
	if (!oldest)
		return;
	hashmap__delete(fetcher->known, (uintptr_t)oldest->build_id, NULL, NULL);
	free_known(oldest);
	fetcher->stats.forgotten++;
}

bool debuginfod_fetcher__has_room(const struct debuginfod_fetcher *fetcher)
{
	return fetcher->stats.pending < fetcher->max_queued;
}

int debuginfod_fetcher__find(struct debuginfod_fetcher *fetcher, const char *build_id,
			     const char **ret_path)
{
	struct known_build_id *known = NULL;
	size_t len = strlen(build_id);

	if (!valid_build_id(build_id))
		return -EINVAL;
	if (hashmap__find(fetcher->known, (uintptr_t)build_id, (void **)&known)) {
		if (known->state == FETCH_FOUND) {
			*ret_path = known->path;
			return 0;
		}
		if (known->state == FETCH_PENDING)
			return -EINPROGRESS;
		if (now_ns() - known->finished_ns < fetcher->retry_ns)
			return known->error;
	}
	if (!debuginfod_fetcher__has_room(fetcher)) {
		fetcher->stats.queue_full++;
		return -ENOSPC;
	}
	if (!known) {
		if (hashmap__size(fetcher->known) >= fetcher->max_known)
			forget_oldest(fetcher);
		known = calloc(1, sizeof(*known) + len + 1);
		if (!known)
			return -ENOMEM;
		memcpy(known->build_id, build_id, len + 1);
		if (hashmap__set(fetcher->known, (uintptr_t)known->build_id, known, NULL, NULL)) {
			free(known);
			return -ENOMEM;
		}
	}
	known->state = FETCH_PENDING;
	fetcher->stats.pending++;
	fetcher->stats.requested++;

	pthread_mutex_lock(&fetcher->lock);
	memcpy(fetcher->requests[(fetcher->request_head + fetcher->request_count) %
				 fetcher->max_queued],
	       build_id, len + 1);
	fetcher->request_count++;
	pthread_cond_signal(&fetcher->wake);
	pthread_mutex_unlock(&fetcher->lock);
	return -EINPROGRESS;
}

static void mark_failed(struct debuginfod_fetcher *fetcher, struct known_build_id *known, int error)
{
	free(known->path);
	known->path = NULL;
	known->state = FETCH_FAILED;
	known->error = error;
	known->finished_ns = now_ns();
	fetcher->stats.failed++;
	if (error == -EFBIG)
		fetcher->stats.too_large++;
	fetcher->stats.last_error = error;
}

int debuginfod_fetcher__take_result(struct debuginfod_fetcher *fetcher,
				    struct debuginfod_result *ret_result)
{
	struct known_build_id *known;
	struct fetch_result *result = &fetcher->taken;

	if (!__atomic_load_n(&fetcher->results_ready, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	pthread_mutex_lock(&fetcher->lock);
	*result = fetcher->results[fetcher->result_head];
	fetcher->result_head = (fetcher->result_head + 1) % fetcher->max_queued;
	fetcher->result_count--;
	__atomic_store_n(&fetcher->results_ready, fetcher->result_count, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fetcher->lock);

	fetcher->stats.pending--;
	/* Pending build ids are never forgotten, so this one is known. */
	if (hashmap__find(fetcher->known, (uintptr_t)result->build_id, (void **)&known)) {
		if (result->fd >= 0) {
			/* The path is the known build id's from now on. */
			free(known->path);
			known->path = result->path;
			result->path = NULL;
			known->state = FETCH_FOUND;
			known->error = 0;
			known->finished_ns = now_ns();
			fetcher->stats.succeeded++;
		} else {
			mark_failed(fetcher, known, result->error);
		}
	}
	free(result->path);
	result->path = NULL;
	*ret_result = (struct debuginfod_result){
		.build_id = result->build_id,
		.fd = result->fd,
		.error = result->error,
	};
	/* The descriptor is the caller's now. */
	result->fd = -1;
	return 0;
}

void debuginfod_fetcher__reject(struct debuginfod_fetcher *fetcher, const char *build_id, int error)
{
	struct known_build_id *known;

	if (!hashmap__find(fetcher->known, (uintptr_t)build_id, (void **)&known) ||
	    known->state != FETCH_FOUND)
		return;
	fetcher->stats.succeeded--;
	mark_failed(fetcher, known, error);
}

void debuginfod_fetcher__forget(struct debuginfod_fetcher *fetcher, const char *build_id)
{
	struct known_build_id *known;

	if (!hashmap__find(fetcher->known, (uintptr_t)build_id, (void **)&known) ||
	    known->state == FETCH_PENDING)
		return;
	hashmap__delete(fetcher->known, (uintptr_t)known->build_id, NULL, NULL);
	free_known(known);
}

void debuginfod_fetcher__stats(const struct debuginfod_fetcher *fetcher,
			       struct debuginfod_fetcher_stats *ret_stats)
{
	*ret_stats = fetcher->stats;
}
