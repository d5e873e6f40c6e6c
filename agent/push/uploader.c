// SPDX-License-Identifier: Apache-2.0
/* The upload thread: spool -> backend, oldest first, retried with backoff, drained on exit. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agent/output/profile_name.h"
#include "agent/push/backoff.h"
#include "agent/push/spool.h"
#include "agent/push/uploader.h"
#include "lib/clock.h"
#include "lib/log.h"

/*
 * A failing backend is warned about at most this often for each reason
 * (the rest at debug level): one profile per process per window may fail
 * the same way, and a hostile backend must not flood the log.
 */
#define WARN_INTERVAL_NS (60 * 1000000000ULL)

struct uploader {
	struct spool *spool;
	struct http_client *http;
	const struct push_protocol *protocol;
	struct backoff_policy backoff;
	char *url; /* for messages */
	char *spool_dir;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool pushed; /* a profile arrived since the thread last looked */
	bool stopping; /* written under lock, read by the transfer's abort check too */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; meaningful once stopping */
	uint64_t random_state;
	bool failing; /* in an outage: "works again" is logged when it ends */
	uint64_t warned_ns[PUSH_FAILURE__COUNT]; /* when each reason was last warned of; 0 never */
	uint64_t unwarned[PUSH_FAILURE__COUNT]; /* failures since, logged at debug level */
	struct uploader_stats counts; /* sent, sent_bytes, failed, retried, failures; under lock */
};

static bool deadline_passed(struct uploader *uploader)
{
	bool passed;

	pthread_mutex_lock(&uploader->lock);
	passed = uploader->stopping && now_ns() >= uploader->deadline_ns;
	pthread_mutex_unlock(&uploader->lock);
	return passed;
}

static bool should_abort(void *ctx)
{
	return deadline_passed(ctx);
}

/*
 * Sleeps up to ms, or until the drain deadline, a stop request, or (when
 * on_push) a new profile: whichever comes first.
 */
static void wait_for(struct uploader *uploader, uint64_t ms, bool on_push)
{
	uint64_t now = now_ns();
	uint64_t until = ms > UINT64_MAX / 2000000 ? UINT64_MAX / 2 : now + ms * 1000000;
	bool was_stopping;

	pthread_mutex_lock(&uploader->lock);
	was_stopping = uploader->stopping;
	if (uploader->stopping && uploader->deadline_ns < until)
		until = uploader->deadline_ns;
	while (!(on_push && uploader->pushed) && uploader->stopping == was_stopping &&
	       now_ns() < until) {
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000000),
				       .tv_nsec = (long)(until % 1000000000) };

		pthread_cond_timedwait(&uploader->wake, &uploader->lock, &ts);
	}
	if (on_push)
		uploader->pushed = false;
	pthread_mutex_unlock(&uploader->lock);
}

static void count(struct uploader *uploader, uint64_t *counter, uint64_t value)
{
	pthread_mutex_lock(&uploader->lock);
	*counter += value;
	pthread_mutex_unlock(&uploader->lock);
}

static void describe(const struct push_record *record, char *out, size_t size)
{
	char stamp[PROFILE_STAMP_SIZE];

	profile_stamp_format(record->start_ns, stamp);
	if (record->window_request)
		snprintf(out, size, "%s window of %s processes for %s",
			 record->off_cpu ? "off-CPU" : "CPU", record->comm, stamp);
	else
		snprintf(out, size, "%s profile of pid %" PRIu32 " (%s) for %s",
			 record->off_cpu ? "off-CPU" : "CPU", record->pid, record->comm, stamp);
}

/*
 * The level to log a failure for this reason at: a warning when none was
 * logged for it in WARN_INTERVAL_NS, with how many went unwarned since.
 */
static enum log_level failure_level(struct uploader *uploader, enum push_failure failure,
				    char *ret_note, size_t size)
{
	uint64_t now = now_ns();

	ret_note[0] = '\0';
	if (uploader->warned_ns[failure] && now - uploader->warned_ns[failure] < WARN_INTERVAL_NS) {
		uploader->unwarned[failure]++;
		return LOG_DEBUG;
	}
	if (uploader->unwarned[failure])
		snprintf(ret_note, size, " (%" PRIu64 " more like it since the last warning)",
			 uploader->unwarned[failure]);
	uploader->warned_ns[failure] = now;
	uploader->unwarned[failure] = 0;
	return LOG_WARN;
}

/*
 * Sends one claimed record once and releases it: removed when delivered or
 * rejected, kept for later otherwise. Returns true when it should be retried.
 */
static bool upload(struct uploader *uploader, struct spool_item *item, uint64_t *ret_retry_after_ms)
{
	struct push_result result = {};
	struct push_record record;
	enum log_level level;
	char what[128], note[64] = "";
	int err;

	if (push_record_parse(item->meta, &record)) {
		log_warn("spool record %" PRIu64 ": unreadable labels, dropping it", item->seq);
		count(uploader, &uploader->counts.failed, 1);
		spool__release(uploader->spool, item, true);
		return false;
	}
	describe(&record, what, sizeof(what));
	/* Spooled by a kiln that pushed with another protocol: this one cannot send it. */
	if (record.window_request != uploader->protocol->per_window) {
		log_warn("spool record %" PRIu64 ": the %s is %s, which %s does not take "
			 "(--remote-protocol changed since), dropping it",
			 item->seq, what,
			 record.window_request ? "an OTLP request" : "a pprof profile",
			 uploader->protocol->title);
		count(uploader, &uploader->counts.failed, 1);
		spool__release(uploader->spool, item, true);
		return false;
	}
	err = uploader->protocol->send(uploader->http, &record, item->payload, item->payload_size,
				       &result);
	if (err) {
		result = (struct push_result){ .outcome = PUSH_RETRY,
					       .failure = PUSH_FAILURE_LOCAL,
					       .grpc_status = -1 };
		snprintf(result.message, sizeof(result.message), "building the request: %s",
			 strerror(-err));
	}
	/* An upload cut at the drain deadline is no failure of the backend's. */
	if (result.outcome != PUSH_DELIVERED && result.failure != PUSH_FAILURE_ABORTED)
		count(uploader, &uploader->counts.failures[result.failure], 1);
	switch (result.outcome) {
	case PUSH_DELIVERED:
		if (result.rejected_profiles > 0) {
			count(uploader, &uploader->counts.partially_rejected,
			      (uint64_t)result.rejected_profiles);
			log_warn("%s accepted the %s but dropped %" PRId64 " of its profiles: %s",
				 uploader->url, what, result.rejected_profiles,
				 result.message[0] ? result.message : "(no message)");
		}
		pthread_mutex_lock(&uploader->lock);
		uploader->counts.sent++;
		uploader->counts.sent_bytes += item->payload_size;
		pthread_mutex_unlock(&uploader->lock);
		if (uploader->failing)
			log_info("pushing to %s works again", uploader->url);
		uploader->failing = false;
		spool__release(uploader->spool, item, true);
		return false;
	case PUSH_REJECTED:
		count(uploader, &uploader->counts.failed, 1);
		level = failure_level(uploader, result.failure, note, sizeof(note));
		if (result.grpc_status >= 0)
			log_message(level, "%s rejected the %s, not retrying: %s%s", uploader->url,
				    what, result.message, note);
		else
			log_message(level, "%s rejected the %s (HTTP %ld), not retrying: %s%s",
				    uploader->url, what, result.http_status, result.message, note);
		spool__release(uploader->spool, item, true);
		return false;
	case PUSH_RETRY:
		break;
	}
	/* Unclaimed while waiting: if the spool fills up meanwhile, this one may go first. */
	spool__release(uploader->spool, item, false);
	level = result.failure == PUSH_FAILURE_ABORTED
			? LOG_DEBUG
			: failure_level(uploader, result.failure, note, sizeof(note));
	log_message(level,
		    "pushing the %s to %s failed: %s; retrying with backoff, profiles wait in the "
		    "spool%s",
		    what, uploader->url, result.message, level == LOG_WARN ? note : "");
	uploader->failing = true;
	*ret_retry_after_ms = result.retry_after_ms;
	return true;
}

static void *run(void *ctx)
{
	struct uploader *uploader = ctx;
	unsigned int attempt = 0; /* failed attempts in a row, whichever the record */

	while (!deadline_passed(uploader)) {
		struct spool_item item = {};
		uint64_t retry_after_ms = 0, delay;
		bool stopping;
		int err = spool__claim(uploader->spool, &item);

		if (!err) {
			if (!upload(uploader, &item, &retry_after_ms)) {
				attempt = 0;
				continue;
			}
			if (deadline_passed(uploader))
				break; /* aborted at the deadline: it stays spooled, not a retry */
			count(uploader, &uploader->counts.retried, 1);
			delay = backoff_delay_ms(&uploader->backoff, ++attempt,
						 backoff_random(&uploader->random_state));
			/* The server's wish, when longer; the transport capped it. */
			if (retry_after_ms > delay)
				delay = retry_after_ms;
			log_debug("next upload attempt in %" PRIu64 " ms", delay);
			wait_for(uploader, delay, false);
			continue;
		}
		pthread_mutex_lock(&uploader->lock);
		stopping = uploader->stopping;
		pthread_mutex_unlock(&uploader->lock);
		if (err == -ENOENT && stopping)
			break; /* drained */
		if (err != -ENOENT)
			log_warn("reading the spool %s: %s, trying again", uploader->spool_dir,
				 strerror(-err));
		wait_for(uploader, err == -ENOENT ? UINT64_MAX : 1000, true);
	}
	return NULL;
}

struct uploader *uploader__new(const struct uploader_opts *opts)
{
	const struct spool_opts spool_opts = {
		.dir = opts->spool_dir,
		.max_bytes = opts->spool_max_bytes,
		.max_files = opts->spool_max_files,
	};
	struct http_opts http_opts = *opts->http;
	struct uploader *uploader;
	pthread_condattr_t attr;
	int err;

	uploader = calloc(1, sizeof(*uploader));
	if (!uploader)
		return NULL;
	pthread_mutex_init(&uploader->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&uploader->wake, &attr);
	pthread_condattr_destroy(&attr);
	uploader->backoff = (struct backoff_policy){
		.initial_ms = 500,
		.max_ms = 30000,
	};
	if (getrandom(&uploader->random_state, sizeof(uploader->random_state), GRND_NONBLOCK) !=
	    sizeof(uploader->random_state))
		uploader->random_state = clock_ns(CLOCK_REALTIME) ^ (uint64_t)getpid() << 32;
	uploader->protocol = opts->protocol;
	uploader->url = strdup(opts->http->url);
	uploader->spool_dir = strdup(opts->spool_dir);
	if (!uploader->url || !uploader->spool_dir) {
		err = -ENOMEM;
		goto cleanup;
	}
	http_opts.should_abort = should_abort;
	http_opts.abort_ctx = uploader;
	uploader->http = http_client__new(&http_opts);
	if (!uploader->http) {
		err = -errno;
		goto cleanup;
	}
	uploader->spool = spool__open(&spool_opts);
	if (!uploader->spool) {
		err = -errno;
		goto cleanup;
	}
	err = -pthread_create(&uploader->thread, NULL, run, uploader);
	if (err)
		goto cleanup;
	uploader->thread_started = true;
	return uploader;

cleanup:
	uploader__free(uploader);
	errno = -err;
	return NULL;
}

int uploader__push(struct uploader *uploader, const struct push_record *record, const uint8_t *data,
		   size_t size)
{
	char *meta = malloc(PUSH_RECORD_TEXT_MAX);
	int err;

	if (!meta)
		return -ENOMEM;
	err = push_record__format(record, meta, PUSH_RECORD_TEXT_MAX);
	if (!err)
		err = spool__put(uploader->spool, meta, data, size);
	free(meta);
	if (err)
		return err;
	pthread_mutex_lock(&uploader->lock);
	uploader->pushed = true;
	pthread_cond_signal(&uploader->wake);
	pthread_mutex_unlock(&uploader->lock);
	return 0;
}

void uploader__stats(struct uploader *uploader, struct uploader_stats *ret_stats)
{
	struct uploader_stats stats;
	struct spool_stats spool;

	spool__stats(uploader->spool, &spool);
	pthread_mutex_lock(&uploader->lock);
	stats = uploader->counts;
	pthread_mutex_unlock(&uploader->lock);
	stats.dropped = spool.dropped;
	stats.dropped_bytes = spool.dropped_bytes;
	stats.corrupt = spool.corrupt;
	stats.pending = spool.files;
	stats.pending_bytes = spool.bytes;
	stats.recovered = spool.recovered;
	*ret_stats = stats;
}

void uploader__stop(struct uploader *uploader, uint64_t drain_ms)
{
	struct uploader_stats stats;

	if (uploader->thread_started) {
		uploader__stats(uploader, &stats);
		if (stats.pending)
			log_info("pushing %" PRIu64
				 " spooled profiles before exiting (for at most %" PRIu64 " s)",
				 stats.pending, drain_ms / 1000);
		pthread_mutex_lock(&uploader->lock);
		uploader->stopping = true;
		uploader->deadline_ns = now_ns() + drain_ms * 1000000;
		pthread_cond_signal(&uploader->wake);
		pthread_mutex_unlock(&uploader->lock);
		pthread_join(uploader->thread, NULL);
		uploader__stats(uploader, &stats);
		if (stats.pending)
			log_info("%" PRIu64 " profiles (%" PRIu64
				 " bytes) stay in the spool %s for "
				 "the next start",
				 stats.pending, stats.pending_bytes, uploader->spool_dir);
		uploader->thread_started = false;
	}
}

void uploader__free(struct uploader *uploader)
{
	if (!uploader)
		return;
	uploader__stop(uploader, 0);
	spool__close(uploader->spool);
	http_client__free(uploader->http);
	pthread_cond_destroy(&uploader->wake);
	pthread_mutex_destroy(&uploader->lock);
	free(uploader->url);
	free(uploader->spool_dir);
	free(uploader);
}
