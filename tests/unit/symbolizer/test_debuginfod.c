// SPDX-License-Identifier: Apache-2.0
/*
 * debuginfod: a real elfutils debuginfod server on loopback serves the debug
 * files of stripped fixtures. Lookups never wait for it: they give what the
 * symbol tables have until the fetched file arrives, and later lookups use
 * it. A server that is down, or that never answers, costs failures that are
 * counted and remembered, never a lookup's time.
 */
#include <arpa/inet.h>
#include <gelf.h>
#include <libelf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/clock.h"
#include "symbolizer/debuginfod_fetcher.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/testing.h"

#define NO_DEBUG_DIR FIXTURE_DIR "/no-such-debug-dir"
/* How long the tests wait for something that takes milliseconds when all is well. */
#define PATIENCE_NS (60ULL * 1000 * 1000 * 1000)

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A loopback TCP socket on a port the kernel picked; listening if asked to. */
static int loopback_socket(bool listening, int *ret_port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0 ||
	    (listening && listen(fd, 16) < 0)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*ret_port = ntohs(addr.sin_port);
	return fd;
}

/* A port nothing listens on: bound, then released. */
static int closed_port(void)
{
	int port = 0, fd = loopback_socket(false, &port);

	if (fd >= 0)
		close(fd);
	return port;
}

/* The HTTP status of GET path on the loopback port, or -1. */
static int http_status(int port, const char *path)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	char request[512], response[64] = "";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
	ssize_t n;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\n\r\n", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    write(fd, request, strlen(request)) == (ssize_t)strlen(request)) {
		n = read(fd, response, sizeof(response) - 1);
		if (n > 0) {
			response[n] = '\0';
			sscanf(response, "HTTP/%*s %d", &status);
		}
	}
	if (fd >= 0)
		close(fd);
	return status;
}

struct server {
	pid_t pid;
	int port;
	char dir[64]; /* what it serves */
};

/*
 * Starts `debuginfod -F` on the given files' copies and waits until it has
 * scanned them: until it answers 200 for the first one's build id.
 */
static int start_server(struct server *server, const char *const *debug_files, size_t count)
{
	char port[16], path[512], build_id[128], url[256];
	uint64_t deadline;

	memset(server, 0, sizeof(*server));
	snprintf(server->dir, sizeof(server->dir), "/tmp/kiln-test-debuginfod-XXXXXX");
	if (!mkdtemp(server->dir))
		return -errno;
	for (size_t i = 0; i < count; i++) {
		const char *name = strrchr(debug_files[i], '/');

		snprintf(path, sizeof(path), "%s%s", server->dir, name);
		if (copy_file(debug_files[i], path, 0644))
			return -EIO;
	}
	if (readelf_build_id(debug_files[0], build_id, sizeof(build_id)))
		return -ENOENT;
	server->port = closed_port();
	snprintf(port, sizeof(port), "%d", server->port);
	server->pid = fork();
	if (server->pid < 0)
		return -errno;
	if (server->pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp("debuginfod", "debuginfod", "-F", "-p", port, "-d", ":memory:", server->dir,
		       (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "/buildid/%s/debuginfo", build_id);
	deadline = now_ns() + PATIENCE_NS;
	while (http_status(server->port, url) != 200) {
		if (now_ns() > deadline || waitpid(server->pid, NULL, WNOHANG) == server->pid) {
			fprintf(stderr, "debuginfod did not come up (installed? "
					"scripts/install-deps.sh)\n");
			return -ETIMEDOUT;
		}
		sleep_ms(50);
	}
	return 0;
}

static void stop_server(struct server *server)
{
	char command[256];

	if (server->pid > 0) {
		kill(server->pid, SIGTERM);
		waitpid(server->pid, NULL, 0);
	}
	if (server->dir[0]) {
		snprintf(command, sizeof(command), "rm -rf '%s'", server->dir);
		CHECK(system(command) == 0);
	}
}

/* libdebuginfod's on-disk cache, fresh for each test. */
static void fresh_client_cache(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/kiln-test-debuginfod-cache-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	setenv("DEBUGINFOD_CACHE_PATH", dir, 1);
}

static void remove_dir(const char *dir)
{
	char command[256];

	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	CHECK(system(command) == 0);
}

/* The name addr resolves to, "" when none; -errno on error. */
static int resolve_name(struct symbolizer *symbolizer, const struct fixture_process *process,
			uint64_t addr, char *ret_name, size_t size)
{
	const struct proc_mapping *mapping = procmaps__find(&process->maps, addr);
	struct symbolized_location location = {};
	int err;

	if (!mapping)
		return -ENOENT;
	err = symbolizer__resolve_user(symbolizer, process->pid, mapping, addr, false, &location);
	if (err)
		return err;
	snprintf(ret_name, size, "%s", location.frame_count ? location.frames[0].function : "");
	return 0;
}

/* Resolves every printed function (at +3) until all have their own names, or patience ends. */
static bool resolve_all_eventually(struct symbolizer *symbolizer,
				   const struct fixture_process *process, size_t *ret_lookups)
{
	uint64_t deadline = now_ns() + PATIENCE_NS;
	char name[64];

	for (;;) {
		size_t named = 0;

		for (size_t i = 0; i < process->function_count; i++) {
			(*ret_lookups)++;
			if (resolve_name(symbolizer, process, process->functions[i].addr + 3, name,
					 sizeof(name)) == 0 &&
			    strcmp(name, process->functions[i].name) == 0)
				named++;
		}
		if (named == process->function_count)
			return true;
		if (now_ns() > deadline)
			return false;
		sleep_ms(20);
	}
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/*
 * Whether libdebuginfod's cache holds an entry for the program's build id:
 * a file, or the empty file that makes it answer "not found" for ten minutes.
 */
static bool client_cache_has_entry(const char *cache, const char *program)
{
	char build_id[128], path[512];

	if (readelf_build_id(program, build_id, sizeof(build_id)))
		return false;
	snprintf(path, sizeof(path), "%s/%s/debuginfo", cache, build_id);
	return access(path, F_OK) == 0;
}

/* True when elf has a section of this name with contents. */
static bool has_section(Elf *elf, const char *name)
{
	size_t names_index;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	if (!elf || elf_getshdrstrndx(elf, &names_index) < 0)
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *scn_name = gelf_getshdr(scn, &shdr)
					       ? elf_strptr(elf, names_index, shdr.sh_name)
					       : NULL;

		if (scn_name && !strcmp(scn_name, name) && shdr.sh_type != SHT_NOBITS)
			return true;
	}
	return false;
}

/*
 * The stripped fixture_buildid names nothing of its own; debuginfod has its
 * debug file. The first lookup answers at once, without names, and queues
 * one fetch; later lookups get the names, and no lookup asks again.
 */
static void test_fetch_in_background(void)
{
	const char *const served[] = { FIXTURE_DIR "/buildid-debug/fixture_buildid.debug" };
	char cache[64], urls[64], name[64], build_id[128], cached_file[256], other[512];
	struct debug_search_opts opts = { .debug_dir = NO_DEBUG_DIR };
	struct symbolizer_stack stack = {};
	struct symbolizer *symbolizer = NULL;
	struct fixture_process process = {};
	struct symbolizer_stats stats;
	struct elf_cache_file file;
	struct proc_mapping mapping;
	struct server server;
	size_t lookups = 0;
	const char *id;

	fresh_client_cache(cache, sizeof(cache));
	CHECK(start_server(&server, served, 1) == 0);
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", server.port);
	opts.debuginfod_urls = urls;
	symbolizer = symbolizer_stack__new(&stack, &opts, 1, NULL);
	CHECK(symbolizer != NULL);
	CHECK(start_fixture(FIXTURE_DIR "/fixture_buildid", &process) == 0);
	CHECK(process.function_count == 3);
	if (!symbolizer || process.function_count != 3)
		goto cleanup;

	/* The fetch is queued by this lookup: it cannot have finished before it. */
	CHECK(resolve_name(symbolizer, &process, process.functions[0].addr + 3, name,
			   sizeof(name)) == 0);
	CHECK_STR(name, "");
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.debuginfod_enabled && stats.debuginfod_requested == 1);

	CHECK(resolve_all_eventually(symbolizer, &process, &lookups));
	symbolizer__stats(symbolizer, &stats);
	/*
	 * How many lookups that took depends on the fetch thread's timing, not on
	 * kiln: a check on it failed when the fetch won the race. The first lookup
	 * answering without names (above) is what shows that lookups never wait.
	 */
	(void)lookups;
	CHECK(stats.debuginfod_requested == 1);
	CHECK(stats.debuginfod_succeeded == 1 && stats.debuginfod_failed == 0);
	CHECK(stats.debuginfod_pending == 0 && stats.debuginfod_queue_full == 0);
	CHECK(stats.debug_files_debuginfod == 1);
	/* It came through libdebuginfod's cache, where its users' tools find it too. */
	CHECK(readelf_build_id(served[0], build_id, sizeof(build_id)) == 0);
	snprintf(cached_file, sizeof(cached_file), "%s/%s/debuginfo", cache, build_id);
	CHECK(file_exists(cached_file));
	/* The file the DWARF readers get now has DWARF. */
	CHECK(elf_cache__file(stack.files, process.pid,
			      procmaps__find(&process.maps, process.functions[0].addr),
			      &file) == 0);
	CHECK(has_section(file.debug_elf, ".debug_info"));

	/* Evicted (one file at most) and opened again: the fetched file is taken at once. */
	snprintf(other, sizeof(other), "%s/fixture_pie", FIXTURE_DIR);
	CHECK(fake_mapping(other, &mapping) == 0);
	CHECK(symbolizer__build_id(symbolizer, getpid(), &mapping, &id) == 0);
	CHECK(resolve_name(symbolizer, &process, process.functions[1].addr + 3, name,
			   sizeof(name)) == 0);
	CHECK_STR(name, process.functions[1].name);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.elf_files_evicted == 2);
	CHECK(stats.debuginfod_requested == 1 && stats.debug_files_debuginfod == 2);
cleanup:
	stop_fixture(&process);
	symbolizer_stack__free(&stack);
	stop_server(&server);
	remove_dir(cache);
}

/*
 * Fedora's binaries carry MiniDebugInfo (symbols, no DWARF): it names
 * functions at once, and the debug file debuginfod sends replaces it.
 */
static void test_fetch_replaces_minidebuginfo(void)
{
	const char *const served[] = {
		FIXTURE_DIR "/minidebuginfo-debug/fixture_minidebuginfo.debug",
	};
	struct debug_search_opts opts = { .debug_dir = NO_DEBUG_DIR };
	struct symbolizer_stack stack = {};
	struct symbolizer *symbolizer = NULL;
	struct fixture_process process = {};
	struct symbolizer_stats stats;
	struct elf_cache_file file = {};
	char cache[64], urls[64], name[64];
	uint64_t deadline;
	struct server server;

	fresh_client_cache(cache, sizeof(cache));
	CHECK(start_server(&server, served, 1) == 0);
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", server.port);
	opts.debuginfod_urls = urls;
	symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	CHECK(start_fixture(FIXTURE_DIR "/fixture_minidebuginfo", &process) == 0);
	CHECK(process.function_count == 3);
	if (!symbolizer || process.function_count != 3)
		goto cleanup;
	/* fixture_gamma is only in the MiniDebugInfo: named before anything is fetched. */
	CHECK(resolve_name(symbolizer, &process, process.functions[2].addr + 3, name,
			   sizeof(name)) == 0);
	CHECK_STR(name, "fixture_gamma");
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.debug_files_minidebuginfo == 1 && stats.debuginfod_requested == 1);

	deadline = now_ns() + PATIENCE_NS;
	do {
		sleep_ms(20);
		CHECK(elf_cache__file(stack.files, process.pid,
				      procmaps__find(&process.maps, process.functions[2].addr),
				      &file) == 0);
		symbolizer__stats(symbolizer, &stats);
	} while (!stats.debug_files_debuginfod && now_ns() < deadline);
	CHECK(stats.debug_files_debuginfod == 1 && stats.debuginfod_succeeded == 1);
	CHECK(has_section(file.debug_elf, ".debug_info"));
	for (size_t i = 0; i < 3; i++) {
		CHECK(resolve_name(symbolizer, &process, process.functions[i].addr + 3, name,
				   sizeof(name)) == 0);
		CHECK_STR(name, process.functions[i].name);
	}
cleanup:
	stop_fixture(&process);
	symbolizer_stack__free(&stack);
	stop_server(&server);
	remove_dir(cache);
}

/* Waits until the symbolizer has counted this many failed fetches. */
static bool wait_for_failures(struct symbolizer *symbolizer, const struct proc_mapping *mapping,
			      uint64_t failures, struct symbolizer_stats *ret_stats)
{
	uint64_t deadline = now_ns() + PATIENCE_NS;
	const char *build_id;

	for (;;) {
		/* Any call takes finished fetches in. */
		CHECK(symbolizer__build_id(symbolizer, getpid(), mapping, &build_id) == 0);
		symbolizer__stats(symbolizer, ret_stats);
		if (ret_stats->debuginfod_failed >= failures)
			return true;
		if (now_ns() > deadline)
			return false;
		sleep_ms(20);
	}
}

/*
 * Nothing listens: lookups still answer (without names), the failure is
 * counted with its reason and not retried before the retry interval.
 */
static void test_server_down(void)
{
	struct debug_search_opts opts = { .debug_dir = NO_DEBUG_DIR, .debuginfod_retry_ms = 2000 };
	struct symbolizer_stack stack = {};
	char cache[64], urls[64], name[64];
	struct fixture_process process = {};
	struct symbolizer *symbolizer;
	struct symbolizer_stats stats;
	struct proc_mapping mapping;

	fresh_client_cache(cache, sizeof(cache));
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", closed_port());
	opts.debuginfod_urls = urls;
	symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	CHECK(symbolizer != NULL);
	CHECK(start_fixture(FIXTURE_DIR "/fixture_buildid", &process) == 0);
	if (!symbolizer || process.function_count != 3)
		goto cleanup;
	mapping = *procmaps__find(&process.maps, process.functions[0].addr);
	CHECK(wait_for_failures(symbolizer, &mapping, 1, &stats));
	CHECK(stats.debuginfod_requested == 1 && stats.debuginfod_succeeded == 0);
	CHECK(stats.debuginfod_last_error == -ECONNREFUSED);
	/* Remembered: lookups go on without names and without asking again. */
	for (size_t i = 0; i < 3; i++) {
		CHECK(resolve_name(symbolizer, &process, process.functions[i].addr + 3, name,
				   sizeof(name)) == 0);
		CHECK_STR(name, "");
	}
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.debuginfod_requested == 1);
	/* After the retry interval, the next lookup asks again. (The interval is
	 * long enough that a loaded machine does not reach it during the checks
	 * above: with 300 ms it once did, under the whole test suite.) */
	sleep_ms(2100);
	CHECK(resolve_name(symbolizer, &process, process.functions[0].addr + 3, name,
			   sizeof(name)) == 0);
	CHECK(wait_for_failures(symbolizer, &mapping, 2, &stats));
	CHECK(stats.debuginfod_requested == 2);
cleanup:
	stop_fixture(&process);
	symbolizer_stack__free(&stack);
	remove_dir(cache);
}

/*
 * A server that accepts connections and never answers. With room for one
 * fetch, a second file's request is dropped and counted; the hung fetch
 * ends at its timeout, and the dropped file is asked for once there is room.
 */
static void test_hung_server_timeout_and_full_queue(void)
{
	struct debug_search_opts opts = {
		.debug_dir = NO_DEBUG_DIR,
		.debuginfod_max_queued = 1,
		.debuginfod_timeout_ms = 1500,
	};
	struct symbolizer_stack stack = {};
	char cache[64], urls[64], first_path[512], second_path[512];
	struct proc_mapping first, second;
	struct symbolizer *symbolizer;
	struct symbolizer_stats stats;
	int port = 0, listener = loopback_socket(true, &port);
	const char *id;

	CHECK(listener >= 0);
	fresh_client_cache(cache, sizeof(cache));
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", port);
	opts.debuginfod_urls = urls;
	snprintf(first_path, sizeof(first_path), "%s/fixture_buildid", FIXTURE_DIR);
	snprintf(second_path, sizeof(second_path), "%s/fixture_minidebuginfo", FIXTURE_DIR);
	CHECK(fake_mapping(first_path, &first) == 0 && fake_mapping(second_path, &second) == 0);
	symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	CHECK(symbolizer != NULL);
	if (!symbolizer)
		goto cleanup;
	CHECK(symbolizer__build_id(symbolizer, getpid(), &first, &id) == 0);
	CHECK(symbolizer__build_id(symbolizer, getpid(), &second, &id) == 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.debuginfod_requested == 1 && stats.debuginfod_queue_full == 1);
	CHECK(stats.debuginfod_pending == 1);

	CHECK(wait_for_failures(symbolizer, &first, 1, &stats));
	CHECK(stats.debuginfod_last_error == -ETIMEDOUT);
	/* A timeout is not "not found": nothing in the client's cache stops the next try. */
	CHECK(!client_cache_has_entry(cache, first_path));
	/* Room again: the dropped file's next lookup queues it, without counting a drop. */
	CHECK(symbolizer__build_id(symbolizer, getpid(), &second, &id) == 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.debuginfod_requested == 2 && stats.debuginfod_queue_full == 1);
cleanup:
	symbolizer_stack__free(&stack);
	if (listener >= 0)
		close(listener);
	remove_dir(cache);
}

/* Freeing the debug search abandons a fetch that would otherwise hang for ten minutes. */
static void test_shutdown_abandons_fetch(void)
{
	struct debug_search_opts opts = {
		.debug_dir = NO_DEBUG_DIR,
		.debuginfod_timeout_ms = 600 * 1000,
	};
	struct symbolizer_stack stack = {};
	char cache[64], urls[64], path[512];
	struct symbolizer *symbolizer;
	struct symbolizer_stats stats;
	struct proc_mapping mapping;
	int port = 0, listener = loopback_socket(true, &port);
	uint64_t started;
	const char *id;

	CHECK(listener >= 0);
	fresh_client_cache(cache, sizeof(cache));
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", port);
	opts.debuginfod_urls = urls;
	snprintf(path, sizeof(path), "%s/fixture_buildid", FIXTURE_DIR);
	CHECK(fake_mapping(path, &mapping) == 0);
	symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	CHECK(symbolizer && symbolizer__build_id(symbolizer, getpid(), &mapping, &id) == 0);
	if (symbolizer) {
		symbolizer__stats(symbolizer, &stats);
		CHECK(stats.debuginfod_pending == 1);
	}
	/* Let the fetch get under way: connected, its request sent, no answer coming. */
	sleep_ms(500);
	started = now_ns();
	/* The debug search, freed last, stops the fetch. */
	symbolizer_stack__free(&stack);
	/* Not a measurement: returning long before the fetch's own timeout is the point. */
	CHECK(now_ns() - started < 300ULL * 1000 * 1000 * 1000);
	CHECK(!client_cache_has_entry(cache, path));
	if (listener >= 0)
		close(listener);
	remove_dir(cache);
}

/* Takes finished fetches until `count` have come back. */
static bool take_results(struct debuginfod_fetcher *fetcher, size_t count)
{
	uint64_t deadline = now_ns() + PATIENCE_NS;
	struct debuginfod_result result;

	while (count) {
		if (debuginfod_fetcher__take_result(fetcher, &result) == 0) {
			CHECK(result.fd < 0 && result.error == -ECONNREFUSED);
			count--;
		} else if (now_ns() > deadline) {
			return false;
		} else {
			sleep_ms(10);
		}
	}
	return true;
}

/*
 * The fetcher's own bounds: malformed build ids refused, one fetch per build
 * id, failures remembered, and past max_known the build id that finished
 * longest ago forgotten (counted), so it is fetched again when asked for.
 */
static void test_fetcher_limits(void)
{
	static const char *const ids[] = {
		"aa00000000000000000000000000000000000001",
		"aa00000000000000000000000000000000000002",
		"aa00000000000000000000000000000000000003",
	};
	struct debuginfod_fetcher_opts opts = { .max_queued = 1, .max_known = 2 };
	struct debuginfod_fetcher_stats stats;
	struct debuginfod_fetcher *fetcher;
	char cache[64], urls[64];
	const char *path = NULL;

	fresh_client_cache(cache, sizeof(cache));
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", closed_port());
	opts.urls = urls;
	CHECK(debuginfod_fetcher__new(&(struct debuginfod_fetcher_opts){ .urls = " " }) == NULL &&
	      errno == EINVAL);
	fetcher = debuginfod_fetcher__new(&opts);
	CHECK(fetcher != NULL);
	if (!fetcher)
		goto cleanup;
	CHECK(debuginfod_fetcher__find(fetcher, "xyz", &path) == -EINVAL);
	CHECK(debuginfod_fetcher__find(fetcher, "ABCD", &path) == -EINVAL);
	for (size_t i = 0; i < 3; i++) {
		CHECK(debuginfod_fetcher__find(fetcher, ids[i], &path) == -EINPROGRESS);
		/* Asked again while under way: no second fetch, and the queue of one is full. */
		CHECK(debuginfod_fetcher__find(fetcher, ids[i], &path) == -EINPROGRESS);
		CHECK(!debuginfod_fetcher__has_room(fetcher));
		CHECK(debuginfod_fetcher__find(fetcher, "bb", &path) == -ENOSPC);
		CHECK(take_results(fetcher, 1));
		/* Remembered: not fetched again. */
		CHECK(debuginfod_fetcher__find(fetcher, ids[i], &path) == -ECONNREFUSED);
	}
	debuginfod_fetcher__stats(fetcher, &stats);
	CHECK(stats.requested == 3 && stats.failed == 3 && stats.succeeded == 0);
	CHECK(stats.queue_full == 3 && stats.pending == 0);
	/* Two remembered at most: the first was forgotten for the third. */
	CHECK(stats.forgotten == 1);
	CHECK(debuginfod_fetcher__find(fetcher, ids[0], &path) == -EINPROGRESS);
	/* That forgot the second; the third is still remembered, queue full or not. */
	CHECK(debuginfod_fetcher__find(fetcher, ids[2], &path) == -ECONNREFUSED);
	CHECK(debuginfod_fetcher__find(fetcher, ids[1], &path) == -ENOSPC);
	CHECK(take_results(fetcher, 1));
	debuginfod_fetcher__stats(fetcher, &stats);
	CHECK(stats.requested == 4 && stats.forgotten == 2 && stats.queue_full == 4);
	CHECK(path == NULL);
cleanup:
	debuginfod_fetcher__free(fetcher);
	remove_dir(cache);
}

/* Takes the one finished fetch, waiting for it; -ETIMEDOUT when none comes. */
static int take_one_result(struct debuginfod_fetcher *fetcher, struct debuginfod_result *result)
{
	uint64_t deadline = now_ns() + PATIENCE_NS;

	while (debuginfod_fetcher__take_result(fetcher, result) != 0) {
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return 0;
}

/*
 * One fetch of build_id from urls with the given bound, DEBUGINFOD_MAXSIZE
 * set to user_bound (NULL: unset) before: checks what the fetcher set it to
 * and returns the fetch's error (0 when a file came), with its counters.
 */
static int fetch_bounded(const char *urls, const char *build_id, uint64_t max_file_bytes,
			 const char *user_bound, const char *expected_bound,
			 struct debuginfod_fetcher_stats *ret_stats)
{
	struct debuginfod_fetcher_opts opts = { .urls = urls, .max_file_bytes = max_file_bytes };
	struct debuginfod_fetcher *fetcher;
	struct debuginfod_result result = { .fd = -1, .error = -ETIMEDOUT };
	const char *path;

	if (user_bound)
		setenv("DEBUGINFOD_MAXSIZE", user_bound, 1);
	else
		unsetenv("DEBUGINFOD_MAXSIZE");
	fetcher = debuginfod_fetcher__new(&opts);
	CHECK(fetcher != NULL);
	if (!fetcher)
		return -ENOMEM;
	CHECK_STR(getenv("DEBUGINFOD_MAXSIZE"), expected_bound);
	CHECK(debuginfod_fetcher__find(fetcher, build_id, &path) == -EINPROGRESS);
	CHECK(take_one_result(fetcher, &result) == 0);
	CHECK((result.fd >= 0) == (result.error == 0));
	if (result.fd >= 0)
		close(result.fd);
	debuginfod_fetcher__stats(fetcher, ret_stats);
	debuginfod_fetcher__free(fetcher);
	return result.error;
}

/*
 * A debug file larger than the bound is refused (the server is told the
 * bound through libdebuginfod's DEBUGINFOD_MAXSIZE), counted as too large,
 * and leaves nothing in the client cache; under kiln's own 4 GiB bound the
 * same file is fetched, so the refusal was the size's. A bound the user set
 * stays when it is smaller than kiln's, and only then.
 */
static void test_download_size_bounded(void)
{
	const char *const served[] = { FIXTURE_DIR "/buildid-debug/fixture_buildid.debug" };
	struct debuginfod_fetcher_stats stats;
	char cache[64], urls[64], build_id[128];
	struct server server;

	fresh_client_cache(cache, sizeof(cache));
	CHECK(readelf_build_id(served[0], build_id, sizeof(build_id)) == 0);
	CHECK(start_server(&server, served, 1) == 0);
	snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", server.port);

	CHECK(fetch_bounded(urls, build_id, 1024, NULL, "1024", &stats) == -EFBIG);
	CHECK(stats.failed == 1 && stats.too_large == 1 && stats.succeeded == 0);
	CHECK(!client_cache_has_entry(cache, served[0]));
	CHECK(fetch_bounded(urls, build_id, 0, "1024", "1024", &stats) == -EFBIG);
	CHECK(stats.too_large == 1);
	CHECK(fetch_bounded(urls, build_id, 0, "100000000000", "4294967296", &stats) == 0);
	CHECK(stats.succeeded == 1 && stats.too_large == 0);

	unsetenv("DEBUGINFOD_MAXSIZE");
	stop_server(&server);
	remove_dir(cache);
}

TEST_MAIN("debuginfod", TEST(test_fetcher_limits), TEST(test_fetch_in_background),
	  TEST(test_fetch_replaces_minidebuginfo), TEST(test_server_down),
	  TEST(test_hung_server_timeout_and_full_queue), TEST(test_shutdown_abandons_fetch),
	  TEST(test_download_size_bounded))
