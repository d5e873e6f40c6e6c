// SPDX-License-Identifier: Apache-2.0
/* /metrics, /healthz and the page over libmicrohttpd, on its own polling thread. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/http/http_endpoint.h"
#include "agent/http/http_ui.h"
#include "agent/http/metrics.h"
#include "lib/clock.h"
#include "lib/log.h"

struct http_endpoint {
	struct MHD_Daemon *daemon;
	uint64_t window_ns;
	struct profile_windows *windows; /* the page's; NULL: no page */
	/* Only the server thread (one: MHD's polling thread) touches these. */
	struct metrics *process_metrics;
	pthread_mutex_t lock; /* over what follows: the main thread writes it */
	struct http_health health;
	char *metrics; /* the last window's rendered counters; NULL before the first */
	size_t metrics_length;
};

/* Read per request, by the server thread: kiln's own cost and state. */
struct process_usage {
	uint64_t cpu_ns; /* user and system, all threads */
	uint64_t resident_bytes;
	uint64_t anonymous_bytes;
	uint64_t bpf_map_bytes; /* what the kernel charges for kiln's BPF maps */
	uint64_t bpf_maps;
	uint64_t bpf_attached;
	uint64_t windows_written;
	uint64_t windows_failed;
	uint64_t last_window_unix_ns;
};

#define USAGE(field) COUNTER_FIELD(0, struct process_usage, field)

static const struct counter process_counters[] = {
	{ .name = "kiln_process_cpu_seconds_total",
	  .help = "CPU time kiln used, user and system, all its threads",
	  USAGE(cpu_ns),
	  .kind = COUNTER_TOTAL,
	  .unit = COUNTER_UNIT_NS,
	  .text = "% ns of CPU" },
	{ .name = "kiln_process_resident_memory_bytes",
	  .help = "kiln's resident memory (VmRSS)",
	  USAGE(resident_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .text = "% bytes resident" },
	{ .name = "kiln_process_resident_anonymous_memory_bytes",
	  .help = "Of that, memory backed by no file: kiln's heap and stacks",
	  USAGE(anonymous_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .text = "% anonymous" },
	{ .name = "kiln_bpf_map_memory_bytes",
	  .help = "Kernel memory of kiln's BPF maps (their fdinfo's memlock), each map once",
	  USAGE(bpf_map_bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .text = "% bytes of BPF maps" },
	{ .name = "kiln_bpf_maps",
	  .help = "BPF maps kiln holds open",
	  USAGE(bpf_maps),
	  .kind = COUNTER_GAUGE,
	  .text = "% maps" },
	{ .name = "kiln_bpf_attached",
	  .help = "1 once the BPF programs are attached and sampling",
	  USAGE(bpf_attached),
	  .kind = COUNTER_GAUGE,
	  .text = "attached %" },
	{ .name = "kiln_windows_written_total",
	  .help = "Windows whose profiles were written (or spooled)",
	  USAGE(windows_written),
	  .kind = COUNTER_TOTAL,
	  .text = "% windows written" },
	{ .name = "kiln_windows_failed_total",
	  .help = "Windows that failed to drain or to write",
	  USAGE(windows_failed),
	  .kind = COUNTER_TOTAL,
	  .text = "% failed" },
	{ .name = "kiln_last_window_timestamp_seconds",
	  .help = "When the last window ended, written or not (Unix time; 0: none yet)",
	  USAGE(last_window_unix_ns),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_NS,
	  .text = "last at %" },
};

const struct counter_line http_process_counter_line = {
	.prefix = "process",
	.counters = process_counters,
	.count = COUNTER_COUNT_OF(process_counters),
	.level = LOG_DEBUG,
};

/* statm's resident and shared pages: shared are file-backed, the rest anonymous. */
static void read_memory(struct process_usage *usage)
{
	unsigned long long size, resident, shared;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	FILE *statm = fopen("/proc/self/statm", "re");

	if (!statm)
		return;
	if (fscanf(statm, "%llu %llu %llu", &size, &resident, &shared) == 3) {
		usage->resident_bytes = resident * page;
		usage->anonymous_bytes = resident > shared ? (resident - shared) * page : 0;
	}
	fclose(statm);
}

/*
 * Every BPF map kiln holds a descriptor of, from /proc/self/fdinfo: its
 * memlock, what the kernel charges for it. Maps shared between programs
 * are held more than once (libbpf's reuse): counted once, by map_id.
 */
static void read_bpf_maps(struct process_usage *usage)
{
	uint32_t seen[256];
	size_t seen_count = 0;
	struct dirent *entry;
	DIR *fds = opendir("/proc/self/fd");

	if (!fds)
		return;
	while ((entry = readdir(fds))) {
		char path[300], target[64], line[128];
		unsigned long long memlock = 0;
		unsigned int map_id = 0;
		bool known = false;
		ssize_t length;
		FILE *info;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", entry->d_name);
		length = readlink(path, target, sizeof(target) - 1);
		if (length <= 0)
			continue;
		target[length] = '\0';
		if (strcmp(target, "anon_inode:bpf-map"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", entry->d_name);
		info = fopen(path, "re");
		if (!info)
			continue;
		while (fgets(line, sizeof(line), info)) {
			sscanf(line, "memlock: %llu", &memlock);
			sscanf(line, "map_id: %u", &map_id);
		}
		fclose(info);
		for (size_t i = 0; i < seen_count && !known; i++)
			known = seen[i] == map_id;
		if (known || !map_id)
			continue;
		if (seen_count < sizeof(seen) / sizeof(seen[0]))
			seen[seen_count++] = map_id;
		usage->bpf_map_bytes += memlock;
		usage->bpf_maps++;
	}
	closedir(fds);
}

static void read_usage(struct http_endpoint *endpoint, struct process_usage *usage)
{
	struct rusage rusage;

	*usage = (struct process_usage){};
	if (!getrusage(RUSAGE_SELF, &rusage))
		usage->cpu_ns =
			((uint64_t)rusage.ru_utime.tv_sec + rusage.ru_stime.tv_sec) * 1000000000 +
			((uint64_t)rusage.ru_utime.tv_usec + rusage.ru_stime.tv_usec) * 1000;
	read_memory(usage);
	read_bpf_maps(usage);
	pthread_mutex_lock(&endpoint->lock);
	usage->bpf_attached = endpoint->health.attached;
	usage->windows_written = endpoint->health.windows_written;
	usage->windows_failed = endpoint->health.windows_failed;
	usage->last_window_unix_ns = endpoint->health.last_window_unix_ns;
	pthread_mutex_unlock(&endpoint->lock);
}

/* The process's metrics, then the last window's. NULL: no memory. */
static char *render_metrics(struct http_endpoint *endpoint, size_t *ret_length)
{
	struct process_usage usage;
	const void *sources[] = { &usage };
	size_t process_length;
	char *process_text, *text;

	read_usage(endpoint, &usage);
	if (metrics__record(endpoint->process_metrics, &http_process_counter_line, sources))
		return NULL;
	process_text = metrics__render(endpoint->process_metrics, &process_length);
	if (!process_text)
		return NULL;
	pthread_mutex_lock(&endpoint->lock);
	text = malloc(process_length + endpoint->metrics_length + 1);
	if (text) {
		memcpy(text, process_text, process_length);
		if (endpoint->metrics)
			memcpy(text + process_length, endpoint->metrics, endpoint->metrics_length);
		*ret_length = process_length + endpoint->metrics_length;
		text[*ret_length] = '\0';
	}
	pthread_mutex_unlock(&endpoint->lock);
	free(process_text);
	return text;
}

unsigned int http_health_describe(const struct http_health *health, uint64_t now_ns,
				  uint64_t window_ns, char *text, size_t size)
{
	/* Two windows and the slack: writing one takes time from the next. */
	uint64_t due = 2 * window_ns + HTTP_HEALTH_SLACK_NS;

	if (!health->attached) {
		snprintf(text, size, "BPF programs not attached\n");
	} else if (health->last_error) {
		snprintf(text, size, "last window failed: %s\n", strerror(-health->last_error));
	} else if (!health->windows_written) {
		snprintf(text, size, "no window written yet (attached %" PRIu64 " s ago)\n",
			 (now_ns - health->attached_ns) / 1000000000);
	} else if (now_ns - health->last_window_ns > due) {
		snprintf(text, size, "last window is %" PRIu64 " s late\n",
			 (now_ns - health->last_window_ns - window_ns) / 1000000000);
	} else {
		snprintf(text, size, "ok\n");
		return MHD_HTTP_OK;
	}
	return MHD_HTTP_SERVICE_UNAVAILABLE;
}

static unsigned int health_text(struct http_endpoint *endpoint, char *text, size_t size)
{
	struct http_health health;

	pthread_mutex_lock(&endpoint->lock);
	health = endpoint->health;
	pthread_mutex_unlock(&endpoint->lock);
	return http_health_describe(&health, clock_ns(CLOCK_MONOTONIC), endpoint->window_ns, text,
				    size);
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status, char *body,
			       size_t length, enum MHD_ResponseMemoryMode mode,
			       const char *content_type)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(length, body, mode);
	enum MHD_Result result;

	if (!response) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned int status,
				    const char *text)
{
	return respond(connection, status, (char *)text, strlen(text), MHD_RESPMEM_MUST_COPY,
		       "text/plain; charset=utf-8");
}

/* A request with a body, which no path here takes. */
static bool has_body(struct MHD_Connection *connection)
{
	const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (length && strcmp(length, "0")) ||
	       MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * Answered at the first call, with the headers only: a body is never
 * read (MHD closes the connection after the answer instead).
 */
static enum MHD_Result on_request(void *ctx, struct MHD_Connection *connection, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **request_ctx)
{
	struct http_endpoint *endpoint = ctx;
	enum MHD_Result result;
	char health[128];
	unsigned int status;
	size_t length;
	char *text;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)request_ctx;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (has_body(connection))
		return respond_text(connection, MHD_HTTP_CONTENT_TOO_LARGE,
				    "no request body accepted\n");
	if (!strcmp(url, "/healthz")) {
		status = health_text(endpoint, health, sizeof(health));
		return respond_text(connection, status, health);
	}
	if (http_ui__answer(endpoint->windows, connection, url, &result))
		return result;
	if (strcmp(url, "/metrics"))
		return respond_text(
			connection, MHD_HTTP_NOT_FOUND,
			"not found: kiln serves /, /profiles/, /metrics and /healthz\n");
	text = render_metrics(endpoint, &length);
	if (!text)
		return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return respond(connection, MHD_HTTP_OK, text, length, MHD_RESPMEM_MUST_FREE,
		       METRICS_CONTENT_TYPE);
}

/* libmicrohttpd's own messages (a client's bad request, a full table): detail for -v. */
static void on_server_log(void *ctx, const char *format, va_list args)
{
	char message[512];
	size_t length;

	(void)ctx;
	vsnprintf(message, sizeof(message), format, args);
	length = strlen(message);
	while (length && message[length - 1] == '\n')
		message[--length] = '\0';
	log_debug("http: %s", message);
}

/* The listening socket, bound here so that a failure says why (errno). -1 with errno set. */
static int open_listener(const struct http_address *address)
{
	int fd = socket(address->storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1, err;

	if (fd < 0)
		return -1;
	/* A restarted kiln binds at once, past its predecessor's TIME_WAIT connections. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, (const struct sockaddr *)&address->storage, address->length) ||
	    listen(fd, HTTP_MAX_CONNECTIONS)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

struct http_endpoint *http_endpoint__new(const struct http_endpoint_opts *opts)
{
	struct http_endpoint *endpoint = calloc(1, sizeof(*endpoint));
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	sigset_t all, old;
	int fd = -1, err;

	if (!endpoint)
		return NULL;
	pthread_mutex_init(&endpoint->lock, NULL);
	endpoint->window_ns = opts->window_ns;
	endpoint->windows = opts->windows;
	endpoint->process_metrics = metrics__new();
	if (!endpoint->process_metrics) {
		err = -ENOMEM;
		goto cleanup;
	}
	fd = open_listener(opts->address);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	if (opts->address->storage.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Signals stay with the main thread, which stops kiln on them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	endpoint->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, endpoint, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MAX_REQUEST_BYTES,
		MHD_OPTION_EXTERNAL_LOGGER, on_server_log, NULL, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!endpoint->daemon) {
		/*
		 * libmicrohttpd says why only in its log. Whether it closed the
		 * socket it was given is its business: a second close could
		 * close another thread's new descriptor, a leak costs one fd.
		 */
		fd = -1;
		err = -EIO;
		goto cleanup;
	}
	return endpoint;
cleanup:
	if (fd >= 0)
		close(fd);
	http_endpoint__free(endpoint);
	errno = -err;
	return NULL;
}

void http_endpoint__free(struct http_endpoint *endpoint)
{
	if (!endpoint)
		return;
	/* Closes the listening socket too. */
	if (endpoint->daemon)
		MHD_stop_daemon(endpoint->daemon);
	metrics__free(endpoint->process_metrics);
	free(endpoint->metrics);
	pthread_mutex_destroy(&endpoint->lock);
	free(endpoint);
}

void http_endpoint__set_attached(struct http_endpoint *endpoint)
{
	pthread_mutex_lock(&endpoint->lock);
	endpoint->health.attached = true;
	endpoint->health.attached_ns = clock_ns(CLOCK_MONOTONIC);
	pthread_mutex_unlock(&endpoint->lock);
}

void http_endpoint__window_ended(struct http_endpoint *endpoint, int err, char *metrics,
				 size_t metrics_length)
{
	char *old = NULL;

	pthread_mutex_lock(&endpoint->lock);
	if (err)
		endpoint->health.windows_failed++;
	else
		endpoint->health.windows_written++;
	endpoint->health.last_error = err;
	endpoint->health.last_window_ns = clock_ns(CLOCK_MONOTONIC);
	endpoint->health.last_window_unix_ns = clock_ns(CLOCK_REALTIME);
	if (metrics) {
		old = endpoint->metrics;
		endpoint->metrics = metrics;
		endpoint->metrics_length = metrics_length;
	}
	pthread_mutex_unlock(&endpoint->lock);
	/* Freed outside the lock: the server thread waits on it for nothing. */
	free(old);
}
