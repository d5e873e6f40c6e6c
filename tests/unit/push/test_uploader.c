// SPDX-License-Identifier: Apache-2.0
/*
 * The uploader against a scripted protocol: delivery oldest first, retries
 * spaced by backoff and Retry-After, rejections not retried, the drain on
 * stop bounded by its timeout, and the counters of each.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/push/curl_api.h"
#include "agent/push/spool.h"
#include "agent/push/uploader.h"
#include "lib/clock.h"
#include "tests/unit/testing.h"

#define MAX_CALLS 64

/* What the fake backend answers, call by call; past the script, the last answer again. */
static struct {
	pthread_mutex_t lock;
	struct push_result script[8];
	size_t script_size;
	size_t calls;
	uint32_t pids[MAX_CALLS];
	uint64_t at_ms[MAX_CALLS]; /* CLOCK_MONOTONIC */
	char payloads[MAX_CALLS][16];
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

static int fake_send(struct http_client *http, const struct push_record *record,
		     const uint8_t *data, size_t size, struct push_result *ret_result)
{
	(void)http;
	pthread_mutex_lock(&fake.lock);
	if (fake.calls < MAX_CALLS) {
		fake.pids[fake.calls] = record->pid;
		fake.at_ms[fake.calls] = now_ms();
		snprintf(fake.payloads[fake.calls], sizeof(fake.payloads[0]), "%.*s", (int)size,
			 (const char *)data);
	}
	*ret_result =
		fake.script[fake.calls < fake.script_size ? fake.calls : fake.script_size - 1];
	fake.calls++;
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static const struct push_protocol fake_protocol = { .name = "fake",
						    .title = "Fake",
						    .send = fake_send };

static void script(size_t count, const struct push_result *results)
{
	pthread_mutex_lock(&fake.lock);
	memcpy(fake.script, results, count * sizeof(*results));
	fake.script_size = count;
	fake.calls = 0;
	pthread_mutex_unlock(&fake.lock);
}

static size_t calls(void)
{
	size_t count;

	pthread_mutex_lock(&fake.lock);
	count = fake.calls;
	pthread_mutex_unlock(&fake.lock);
	return count;
}

static char dir[64];

/* An uploader on dir whose backend answers results (count of them). */
static struct uploader *start(size_t count, const struct push_result *results)
{
	const struct http_opts http = { .url = "http://127.0.0.1:9", .timeout_ms = 1000 };
	const struct uploader_opts opts = {
		.http = &http,
		.protocol = &fake_protocol,
		.spool_dir = dir,
		.spool_max_bytes = 1 << 20,
		.spool_max_files = 100,
	};
	struct uploader *uploader;

	script(count, results);
	uploader = uploader__new(&opts);
	CHECK(uploader != NULL);
	return uploader;
}

static void push(struct uploader *uploader, uint32_t pid)
{
	struct push_record record = { .pid = pid,
				      .comm = "comm",
				      .service_name = "svc",
				      .hostname = "host",
				      .start_ns = 1,
				      .duration_ns = 1 };
	char payload[16];

	snprintf(payload, sizeof(payload), "profile %u", pid);
	CHECK(uploader__push(uploader, &record, (const uint8_t *)payload, strlen(payload)) == 0);
}

/* Waits up to timeout_ms for the uploader's sent + failed to reach done. */
static struct uploader_stats wait_done(struct uploader *uploader, uint64_t done,
				       uint64_t timeout_ms)
{
	uint64_t until = now_ms() + timeout_ms;
	struct uploader_stats stats;

	for (;;) {
		uploader__stats(uploader, &stats);
		if (stats.sent + stats.failed >= done || now_ms() > until)
			return stats;
		usleep(10000);
	}
}

static void new_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kiln-uploader-test.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

static void test_delivers_oldest_first(void)
{
	const struct push_result delivered = { .outcome = PUSH_DELIVERED };
	struct uploader *uploader;
	struct uploader_stats stats;

	new_dir();
	uploader = start(1, &delivered);
	if (!uploader)
		return;
	for (uint32_t pid = 1; pid <= 3; pid++)
		push(uploader, pid);
	stats = wait_done(uploader, 3, 5000);
	CHECK(stats.sent == 3 && stats.failed == 0 && stats.retried == 0);
	CHECK(stats.sent_bytes == 3 * strlen("profile 1"));
	CHECK(stats.pending == 0 && stats.pending_bytes == 0);
	CHECK(calls() == 3);
	CHECK(fake.pids[0] == 1 && fake.pids[1] == 2 && fake.pids[2] == 3);
	CHECK_STR(fake.payloads[2], "profile 3");
	uploader__free(uploader);
	remove_dir();
}

static void test_retries_with_backoff(void)
{
	const struct push_result results[] = {
		{ .outcome = PUSH_RETRY, .http_status = 503 },
		{ .outcome = PUSH_RETRY, .http_status = 429, .retry_after_ms = 1500 },
		{ .outcome = PUSH_RETRY },
		{ .outcome = PUSH_DELIVERED },
	};
	struct uploader *uploader;
	struct uploader_stats stats;

	new_dir();
	uploader = start(4, results);
	if (!uploader)
		return;
	push(uploader, 7);
	stats = wait_done(uploader, 1, 10000);
	CHECK(stats.sent == 1 && stats.retried == 3 && stats.failed == 0 && stats.pending == 0);
	CHECK(calls() == 4);
	/* The same record each time; backoff from 500 ms, never less than half of it. */
	CHECK(fake.pids[0] == 7 && fake.pids[3] == 7);
	CHECK(fake.at_ms[1] - fake.at_ms[0] >= 250);
	/* The server's Retry-After, longer than the backoff (1 s at most), wins. */
	CHECK(fake.at_ms[2] - fake.at_ms[1] >= 1500);
	/* Third failure in a row: 2 s backoff, jittered down to 1 s at least. */
	CHECK(fake.at_ms[3] - fake.at_ms[2] >= 1000);
	uploader__free(uploader);
	remove_dir();
}

static void test_rejection_not_retried(void)
{
	const struct push_result results[] = {
		{ .outcome = PUSH_REJECTED, .http_status = 400, .grpc_status = -1 },
		{ .outcome = PUSH_DELIVERED },
	};
	struct uploader *uploader;
	struct uploader_stats stats;

	new_dir();
	uploader = start(2, results);
	if (!uploader)
		return;
	push(uploader, 1);
	stats = wait_done(uploader, 1, 5000);
	CHECK(stats.failed == 1 && stats.sent == 0 && stats.retried == 0 && stats.pending == 0);
	/* A retry would come within the first backoff (at most 500 ms): none does. */
	usleep(700000);
	CHECK(calls() == 1);
	/* The next record is not held up by the rejected one. */
	push(uploader, 2);
	stats = wait_done(uploader, 2, 5000);
	CHECK(stats.sent == 1 && stats.failed == 1 && calls() == 2);
	CHECK(fake.pids[1] == 2);
	uploader__free(uploader);
	remove_dir();
}

static void test_drain_on_stop(void)
{
	const struct push_result delivered = { .outcome = PUSH_DELIVERED };
	const struct push_result retry = { .outcome = PUSH_RETRY, .http_status = 503 };
	struct uploader *uploader;
	struct uploader_stats stats;
	uint64_t started;

	/* A working backend: stop waits until everything spooled is delivered. */
	new_dir();
	uploader = start(1, &delivered);
	if (!uploader)
		return;
	for (uint32_t pid = 1; pid <= 5; pid++)
		push(uploader, pid);
	uploader__stop(uploader, 5000);
	uploader__stats(uploader, &stats);
	CHECK(stats.sent == 5 && stats.pending == 0);
	uploader__free(uploader);

	/* A backend that keeps failing: stop gives up at the deadline, records stay spooled. */
	uploader = start(1, &retry);
	if (!uploader)
		return;
	for (uint32_t pid = 1; pid <= 3; pid++)
		push(uploader, pid);
	while (calls() == 0)
		usleep(1000);
	started = now_ms();
	uploader__stop(uploader, 300);
	CHECK(now_ms() - started >= 250 && now_ms() - started < 1500);
	uploader__stats(uploader, &stats);
	CHECK(stats.sent == 0 && stats.failed == 0 && stats.pending == 3 && stats.retried >= 1);
	uploader__free(uploader);

	/* The next start finds them, and delivers them. */
	uploader = start(1, &delivered);
	if (!uploader)
		return;
	stats = wait_done(uploader, 3, 5000);
	CHECK(stats.recovered == 3 && stats.sent == 3 && stats.pending == 0);
	uploader__free(uploader);
	remove_dir();
}

static void test_unreadable_labels_dropped(void)
{
	const struct spool_opts spool_opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 10 };
	const struct push_result delivered = { .outcome = PUSH_DELIVERED };
	struct uploader *uploader;
	struct uploader_stats stats;
	struct spool *spool;

	new_dir();
	spool = spool__open(&spool_opts);
	CHECK(spool != NULL);
	if (!spool)
		return;
	CHECK(spool__put(spool, "kind=gpu\n", "x", 1) == 0);
	spool__close(spool);
	uploader = start(1, &delivered);
	if (!uploader)
		return;
	stats = wait_done(uploader, 1, 5000);
	CHECK(stats.recovered == 1 && stats.failed == 1 && stats.sent == 0 && stats.pending == 0);
	CHECK(calls() == 0);
	uploader__free(uploader);
	remove_dir();
}

/* Lines of stderr containing text while fn ran: what the uploader logged. */
static int logged(const char *text, void (*fn)(void))
{
	char path[] = "/tmp/kiln-uploader-log.XXXXXX", line[2048];
	int saved = dup(STDERR_FILENO), fd = mkstemp(path), lines = 0;
	FILE *log;

	CHECK(saved >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log = fdopen(fd, "r");
	rewind(log);
	while (fgets(line, sizeof(line), log)) {
		lines += strstr(line, text) != NULL;
		fputs(line, stderr);
	}
	fclose(log);
	unlink(path);
	return lines;
}

static struct uploader_stats reasons_stats;

/* Six attempts: four profiles redirected, one cut for a huge answer then delivered. */
static void push_failing_ones(void)
{
	const struct push_result redirected = {
		.outcome = PUSH_REJECTED,
		.failure = PUSH_FAILURE_REDIRECTED,
		.http_status = 307,
		.grpc_status = -1,
		.message = "redirect to http://elsewhere/, not followed",
	};
	struct push_result results[6] = { redirected, redirected, redirected, redirected };
	struct uploader *uploader;

	results[4] = (struct push_result){ .outcome = PUSH_RETRY,
					   .failure = PUSH_FAILURE_RESPONSE_TOO_LARGE,
					   .grpc_status = -1,
					   .message = "response body over 64 KiB, cut off" };
	results[5] = (struct push_result){ .outcome = PUSH_DELIVERED };
	new_dir();
	uploader = start(ARRAY_SIZE(results), results);
	if (!uploader)
		return;
	for (uint32_t pid = 1; pid <= 5; pid++)
		push(uploader, pid);
	reasons_stats = wait_done(uploader, 5, 10000);
	uploader__free(uploader);
	remove_dir();
}

/* Every failed attempt is counted by its reason; each reason warned once, not per profile. */
static void test_failures_by_reason(void)
{
	int redirect_warnings = logged("redirect to http://elsewhere/", push_failing_ones);
	const struct uploader_stats *stats = &reasons_stats;

	CHECK(stats->failed == 4 && stats->retried == 1 && stats->sent == 1);
	CHECK(stats->failures[PUSH_FAILURE_REDIRECTED] == 4);
	CHECK(stats->failures[PUSH_FAILURE_RESPONSE_TOO_LARGE] == 1);
	CHECK(stats->failures[PUSH_FAILURE_NONE] == 0 &&
	      stats->failures[PUSH_FAILURE_REFUSED] == 0);
	/* Four redirects in a row: one warning (the rest at debug level, not shown). */
	CHECK(redirect_warnings == 1);
}

static void test_setup(void)
{
	char error[256];

	/* The uploader's HTTP client needs libcurl loaded, even with a fake protocol. */
	CHECK(curl_api_load(error, sizeof(error)) == 0);
}

TEST_MAIN("uploader", TEST(test_setup), TEST(test_delivers_oldest_first),
	  TEST(test_retries_with_backoff), TEST(test_rejection_not_retried),
	  TEST(test_drain_on_stop), TEST(test_unreadable_labels_dropped),
	  TEST(test_failures_by_reason))
