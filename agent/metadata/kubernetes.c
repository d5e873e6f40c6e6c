// SPDX-License-Identifier: Apache-2.0
/* The Kubernetes API client: list and watch this node's pods over libcurl, on its own thread. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/metadata/kubernetes.h"
#include "agent/options.h"
#include "agent/push/backoff.h"
#include "agent/push/curl_api.h"
#include "lib/fs.h"
#include "lib/log.h"

#define LIST_PAGE_PODS 100
#define LIST_BODY_MAX (64u << 20) /* a page of 100 pods is a few MiB at most */
#define WATCH_LINE_MAX (4u << 20) /* one event: one pod */
#define WATCH_SERVER_TIMEOUT_S 300 /* the server ends the watch then; it is opened again */
#define CONNECT_TIMEOUT_MS 5000
#define TOKEN_MAX 16384
#define CONTINUE_MAX 4096

static const struct backoff_policy retry_policy = { .initial_ms = 500, .max_ms = 30000 };

struct kubernetes {
	struct kubernetes_opts opts;
	const struct curl_api *curl;
	struct kubernetes_pods *pods;
	pthread_t thread;
	pthread_mutex_t lock; /* stats, stop */
	pthread_cond_t wake;
	atomic_bool stop;
	struct kubernetes_stats stats;
	char resource_version[KUBERNETES_RESOURCE_VERSION_MAX];
	uint64_t random;
	bool failing; /* the last request failed: said once, until one succeeds */
};

/* A request's body as the write callback takes it: whole (a list page) or by lines (a watch). */
struct body {
	struct kubernetes *kubernetes;
	char *data;
	size_t size, capacity, limit;
	bool lines; /* each complete line is a watch event, applied at once */
	bool too_large; /* past limit: the transfer was cut off */
	CURL *curl; /* for the response's status, which decides whether lines are events */
	int event_error; /* the event that ended the watch: -ESTALE or -EPROTO */
	char event_message[256];
};

int kubernetes_in_cluster(const char *api_url, const char *service_account_dir,
			  struct kubernetes_opts *opts, char *error, size_t error_size)
{
	const char *dir =
		service_account_dir ? service_account_dir : KUBERNETES_SERVICE_ACCOUNT_DIR;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	if (api_url) {
		snprintf(opts->api_url, sizeof(opts->api_url), "%s", api_url);
	} else if (!host || !*host) {
		snprintf(error, error_size, "KUBERNETES_SERVICE_HOST is not set: not in a pod");
		return -ENOENT;
	} else {
		/* An IPv6 address needs brackets in a URL. */
		bool v6 = strchr(host, ':') != NULL;

		snprintf(opts->api_url, sizeof(opts->api_url), "https://%s%s%s:%s", v6 ? "[" : "",
			 host, v6 ? "]" : "", port && *port ? port : "443");
	}
	while (strlen(opts->api_url) && opts->api_url[strlen(opts->api_url) - 1] == '/')
		opts->api_url[strlen(opts->api_url) - 1] = '\0';
	snprintf(opts->token_file, sizeof(opts->token_file), "%s/token", dir);
	snprintf(opts->ca_file, sizeof(opts->ca_file), "%s/ca.crt", dir);
	if (access(opts->token_file, R_OK)) {
		snprintf(error, error_size, "service account token %s: %s", opts->token_file,
			 strerror(errno));
		return -ENOENT;
	}
	if (access(opts->ca_file, R_OK)) {
		snprintf(error, error_size, "service account CA %s: %s", opts->ca_file,
			 strerror(errno));
		return -ENOENT;
	}
	return 0;
}

static void apply_line(struct body *body, const char *line, size_t length)
{
	struct kubernetes *kubernetes = body->kubernetes;
	int err;

	if (!length)
		return;
	err = kubernetes_pods__apply_event(kubernetes->pods, line, length,
					   kubernetes->resource_version, body->event_message,
					   sizeof(body->event_message));
	if (err == -ESTALE || err == -EPROTO)
		body->event_error = err;
}

static size_t write_callback(char *data, size_t size, size_t count, void *ctx)
{
	struct body *body = ctx;
	size_t bytes = size * count;

	if (body->event_error)
		return 0; /* fewer bytes than given: libcurl ends the transfer */
	if (body->size + bytes > body->limit) {
		body->too_large = true;
		return 0;
	}
	if (body->lines) {
		long status = 0;

		/* An error's body is a Status object, not events. */
		body->kubernetes->curl->easy_getinfo(body->curl, CURLINFO_RESPONSE_CODE, &status);
		body->lines = status == 200;
	}
	if (body->size + bytes + 1 > body->capacity) {
		size_t capacity = body->capacity ? body->capacity : 65536;
		char *grown;

		while (capacity < body->size + bytes + 1)
			capacity *= 2;
		grown = realloc(body->data, capacity);
		if (!grown)
			return 0;
		body->data = grown;
		body->capacity = capacity;
	}
	memcpy(body->data + body->size, data, bytes);
	body->size += bytes;
	body->data[body->size] = '\0';
	if (body->lines) {
		char *start = body->data, *end;

		while ((end = memchr(start, '\n', body->size - (size_t)(start - body->data)))) {
			apply_line(body, start, (size_t)(end - start));
			start = end + 1;
			if (body->event_error)
				return 0;
		}
		body->size -= (size_t)(start - body->data);
		memmove(body->data, start, body->size);
	}
	return bytes;
}

static int progress_callback(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			     curl_off_t ulnow)
{
	struct kubernetes *kubernetes = ctx;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&kubernetes->stop); /* non-zero aborts the transfer */
}

/*
 * GETs url into body. Returns 0 on a 200 response; otherwise a negative
 * errno with what went wrong in error.
 */
static int get(struct kubernetes *kubernetes, CURL *curl, const char *url, long timeout_ms,
	       struct body *body, char *error, size_t error_size)
{
	const struct curl_api *api = kubernetes->curl;
	char token[TOKEN_MAX], authorization[TOKEN_MAX + 32], curl_error[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	long status = 0;
	CURLcode code;
	int err;

	err = fs_read_credential(kubernetes->opts.token_file, token, sizeof(token));
	if (err) {
		snprintf(error, error_size, "reading the token %s: %s", kubernetes->opts.token_file,
			 strerror(-err));
		return err;
	}
	snprintf(authorization, sizeof(authorization), "Authorization: Bearer %s", token);
	headers = api->slist_append(headers, authorization);
	headers = headers ? api->slist_append(headers, "Accept: application/json") : NULL;
	if (!headers) {
		snprintf(error, error_size, "out of memory");
		return -ENOMEM;
	}
	api->easy_setopt(curl, CURLOPT_URL, url);
	api->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_callback);
	api->easy_setopt(curl, CURLOPT_WRITEDATA, body);
	api->easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
	body->curl = curl;
	code = api->easy_perform(curl);
	explicit_bzero(token, sizeof(token));
	explicit_bzero(authorization, sizeof(authorization));
	api->easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	api->easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	api->slist_free_all(headers);
	api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (body->event_error)
		return body->event_error;
	if (code != CURLE_OK) {
		snprintf(error, error_size, "%s",
			 body->too_large ? "response too large"
					 : (curl_error[0] ? curl_error : api->easy_strerror(code)));
		return code == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;
	}
	if (status != 200) {
		/* The API's Status object says why; its message is enough. */
		char message[200];
		bool said = body->data && !kubernetes_status_message(body->data, body->size,
								     message, sizeof(message));

		snprintf(error, error_size, "HTTP %ld%s%s", status, said ? ": " : "",
			 said ? message : "");
		return status == 401 || status == 403 ? -EACCES : -EIO;
	}
	return 0;
}

static char *pods_url(struct kubernetes *kubernetes, CURL *curl, const char *extra)
{
	char selector[600], *escaped, *url;

	snprintf(selector, sizeof(selector), "spec.nodeName=%s", kubernetes->opts.node_name);
	escaped = kubernetes->curl->easy_escape(curl, selector, 0);
	if (!escaped)
		return NULL;
	if (asprintf(&url, "%s/api/v1/pods?fieldSelector=%s&%s", kubernetes->opts.api_url, escaped,
		     extra) < 0)
		url = NULL;
	kubernetes->curl->free(escaped);
	return url;
}

/* Lists the node's pods, page by page; the store then holds exactly those. */
static int list_pods(struct kubernetes *kubernetes, CURL *curl, char *error, size_t error_size)
{
	char continue_token[CONTINUE_MAX] = "", extra[CONTINUE_MAX * 3 + 64];
	int err = 0;

	kubernetes_pods__begin_list(kubernetes->pods);
	do {
		struct body body = { .kubernetes = kubernetes, .limit = LIST_BODY_MAX };
		char *escaped = kubernetes->curl->easy_escape(curl, continue_token, 0), *url;

		snprintf(extra, sizeof(extra), "limit=%d%s%s", LIST_PAGE_PODS,
			 continue_token[0] ? "&continue=" : "", escaped ? escaped : "");
		kubernetes->curl->free(escaped);
		url = pods_url(kubernetes, curl, extra);
		if (!url)
			return -ENOMEM;
		err = get(kubernetes, curl, url, 60000, &body, error, error_size);
		free(url);
		if (!err && kubernetes_pods__add_page(kubernetes->pods, body.data ? body.data : "",
						      body.size, kubernetes->resource_version,
						      continue_token, sizeof(continue_token))) {
			snprintf(error, error_size, "the pods list is not a PodList");
			err = -EINVAL;
		}
		free(body.data);
	} while (!err && continue_token[0]);
	if (!err)
		kubernetes_pods__end_list(kubernetes->pods);
	return err;
}

/* Watches from the version listed or last seen, until the server ends it or it fails. */
static int watch_pods(struct kubernetes *kubernetes, CURL *curl, char *error, size_t error_size)
{
	struct body body = { .kubernetes = kubernetes, .limit = WATCH_LINE_MAX, .lines = true };
	char extra[256], *url;
	int err;

	snprintf(extra, sizeof(extra),
		 "watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
		 WATCH_SERVER_TIMEOUT_S, kubernetes->resource_version);
	url = pods_url(kubernetes, curl, extra);
	if (!url)
		return -ENOMEM;
	pthread_mutex_lock(&kubernetes->lock);
	kubernetes->stats.watching = 1;
	pthread_mutex_unlock(&kubernetes->lock);
	err = get(kubernetes, curl, url, (WATCH_SERVER_TIMEOUT_S + 30) * 1000L, &body, error,
		  error_size);
	pthread_mutex_lock(&kubernetes->lock);
	kubernetes->stats.watching = 0;
	pthread_mutex_unlock(&kubernetes->lock);
	if (body.event_error)
		snprintf(error, error_size, "watch ERROR event: %s", body.event_message);
	free(url);
	free(body.data);
	return err;
}

static struct timespec deadline_in(uint64_t ms)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(ms / 1000);
	deadline.tv_nsec += (long)(ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	return deadline;
}

/* Sleeps ms or until stopped. */
static void wait_ms(struct kubernetes *kubernetes, uint64_t ms)
{
	struct timespec deadline = deadline_in(ms);

	pthread_mutex_lock(&kubernetes->lock);
	while (!atomic_load(&kubernetes->stop) &&
	       pthread_cond_timedwait(&kubernetes->wake, &kubernetes->lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&kubernetes->lock);
}

bool kubernetes__wait_listed(struct kubernetes *kubernetes, uint64_t timeout_ms)
{
	struct timespec deadline = deadline_in(timeout_ms);
	bool listed;

	pthread_mutex_lock(&kubernetes->lock);
	while (!kubernetes->stats.lists &&
	       pthread_cond_timedwait(&kubernetes->wake, &kubernetes->lock, &deadline) != ETIMEDOUT)
		;
	listed = kubernetes->stats.lists > 0;
	pthread_mutex_unlock(&kubernetes->lock);
	return listed;
}

static void count(struct kubernetes *kubernetes, uint64_t *counter)
{
	pthread_mutex_lock(&kubernetes->lock);
	(*counter)++;
	pthread_cond_broadcast(&kubernetes->wake); /* kubernetes__wait_listed */
	pthread_mutex_unlock(&kubernetes->lock);
}

static void *run(void *ctx)
{
	struct kubernetes *kubernetes = ctx;
	const struct curl_api *api = kubernetes->curl;
	unsigned int attempt = 0;
	bool listed = false;
	CURL *curl = api->easy_init();

	if (!curl) {
		log_warn("kubernetes: cannot start a libcurl session: no pod metadata");
		return NULL;
	}
	api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	api->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	api->easy_setopt(curl, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	api->easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	api->easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	api->easy_setopt(curl, CURLOPT_CAINFO, kubernetes->opts.ca_file);
	api->easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	api->easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_callback);
	api->easy_setopt(curl, CURLOPT_XFERINFODATA, kubernetes);
	api->easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	while (!atomic_load(&kubernetes->stop)) {
		char error[PATH_MAX + 512] = "";
		int err;

		if (!listed) {
			err = list_pods(kubernetes, curl, error, sizeof(error));
			count(kubernetes,
			      err ? &kubernetes->stats.list_failures : &kubernetes->stats.lists);
			listed = !err;
		} else {
			err = watch_pods(kubernetes, curl, error, sizeof(error));
			if (err == -ESTALE)
				count(kubernetes, &kubernetes->stats.relists_expired);
			count(kubernetes,
			      err ? &kubernetes->stats.watch_failures : &kubernetes->stats.watches);
			/* A version too old, or a failure: list again, after a while. */
			listed = !err;
		}
		if (atomic_load(&kubernetes->stop))
			break;
		if (!err) {
			if (kubernetes->failing)
				log_info("kubernetes: %s answers again", kubernetes->opts.api_url);
			kubernetes->failing = false;
			attempt = 0;
			continue;
		}
		attempt += attempt < 30;
		uint64_t delay = err == -ESTALE
					 ? 0
					 : backoff_delay_ms(&retry_policy, attempt,
							    backoff_random(&kubernetes->random));
		if (!kubernetes->failing && err != -ESTALE)
			log_warn("kubernetes: %s: %s; pods' labels wait, retrying with backoff",
				 kubernetes->opts.api_url, error);
		else
			log_debug("kubernetes: %s: %s; retrying in %" PRIu64 " ms",
				  kubernetes->opts.api_url, error, delay);
		kubernetes->failing = err != -ESTALE;
		wait_ms(kubernetes, delay);
	}
	api->easy_cleanup(curl);
	return NULL;
}

struct kubernetes *kubernetes__start(const struct kubernetes_opts *opts)
{
	struct kubernetes *kubernetes;
	pthread_condattr_t attr;
	int err;

	if (!curl_api_get() || !opts->node_name || !*opts->node_name) {
		errno = EINVAL;
		return NULL;
	}
	kubernetes = calloc(1, sizeof(*kubernetes));
	if (!kubernetes)
		return NULL;
	kubernetes->opts = *opts;
	kubernetes->opts.node_name = strdup(opts->node_name);
	kubernetes->curl = curl_api_get();
	kubernetes->pods = kubernetes_pods__new(opts->max_pods ?: KUBERNETES_MAX_PODS);
	if (!kubernetes->pods || !kubernetes->opts.node_name) {
		kubernetes_pods__free(kubernetes->pods);
		free((char *)kubernetes->opts.node_name);
		free(kubernetes);
		errno = ENOMEM;
		return NULL;
	}
	backoff_random(&kubernetes->random);
	pthread_mutex_init(&kubernetes->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&kubernetes->wake, &attr);
	pthread_condattr_destroy(&attr);
	err = pthread_create(&kubernetes->thread, NULL, run, kubernetes);
	if (err) {
		pthread_cond_destroy(&kubernetes->wake);
		pthread_mutex_destroy(&kubernetes->lock);
		kubernetes_pods__free(kubernetes->pods);
		free((char *)kubernetes->opts.node_name);
		free(kubernetes);
		errno = err;
		return NULL;
	}
	return kubernetes;
}

void kubernetes__free(struct kubernetes *kubernetes)
{
	if (!kubernetes)
		return;
	pthread_mutex_lock(&kubernetes->lock);
	atomic_store(&kubernetes->stop, true);
	pthread_cond_broadcast(&kubernetes->wake);
	pthread_mutex_unlock(&kubernetes->lock);
	pthread_join(kubernetes->thread, NULL);
	pthread_cond_destroy(&kubernetes->wake);
	pthread_mutex_destroy(&kubernetes->lock);
	kubernetes_pods__free(kubernetes->pods);
	free((char *)kubernetes->opts.node_name);
	free(kubernetes);
}

int kubernetes__annotate(struct kubernetes *kubernetes, struct label_set *labels)
{
	return kubernetes_pods__annotate(kubernetes->pods, labels);
}

void kubernetes__stats(struct kubernetes *kubernetes, struct kubernetes_stats *ret_stats)
{
	pthread_mutex_lock(&kubernetes->lock);
	*ret_stats = kubernetes->stats;
	pthread_mutex_unlock(&kubernetes->lock);
	kubernetes_pods__stats(kubernetes->pods, &ret_stats->pods);
}
