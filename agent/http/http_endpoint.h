/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln's HTTP endpoint (--http-address): /metrics, /healthz and the flame
 * graph page with its profiles (agent/http/http_ui.h), served by
 * libmicrohttpd on a thread of its own, never the sampling path. The main
 * thread hands it a window's rendered metrics and how the window went;
 * the server thread only reads those, under the endpoint's lock.
 */
#ifndef KILN_HTTP_ENDPOINT_H
#define KILN_HTTP_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/http/http_address.h"
#include "agent/http/profile_windows.h"
#include "lib/counters.h"

/* The bounds on what a client may hold or send. */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_MAX_CONNECTIONS_PER_IP 8
#define HTTP_CONNECTION_TIMEOUT_S 5
/* A request's line and headers; anything larger is refused (431). */
#define HTTP_MAX_REQUEST_BYTES (16 << 10)
/* /healthz: a window is late past two windows and this. */
#define HTTP_HEALTH_SLACK_NS (5ULL * 1000 * 1000 * 1000)

struct http_endpoint;

/* How the windows went, as /healthz and the kiln_window* metrics say. */
struct http_health {
	bool attached;
	uint64_t attached_ns; /* CLOCK_MONOTONIC */
	uint64_t windows_written;
	uint64_t windows_failed;
	int last_error; /* of the last window: 0 when written */
	uint64_t last_window_ns; /* CLOCK_MONOTONIC, when it ended */
	uint64_t last_window_unix_ns; /* CLOCK_REALTIME, the same moment */
};

/*
 * What /healthz answers at now_ns (CLOCK_MONOTONIC) with windows of
 * window_ns: "ok\n", or why not. Returns the HTTP status, 200 or 503.
 */
unsigned int http_health_describe(const struct http_health *health, uint64_t now_ns,
				  uint64_t window_ns, char *text, size_t size);

/* kiln's own metrics, read at each request: CPU, memory, BPF attached, windows. */
extern const struct counter_line http_process_counter_line;

struct http_endpoint_opts {
	const struct http_address *address;
	const char *address_text; /* as given, for messages */
	uint64_t window_ns; /* --duration: how often a window is due */
	/* What the flame graph page and /profiles/ serve; NULL: neither (not owned). */
	struct profile_windows *windows;
};

/*
 * Binds and starts serving: /healthz says "BPF programs not attached"
 * until http_endpoint__set_attached. NULL with errno set (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL from binding).
 */
struct http_endpoint *http_endpoint__new(const struct http_endpoint_opts *opts);
/* Stops the server thread and closes the socket. Accepts NULL. */
void http_endpoint__free(struct http_endpoint *endpoint);

/* The samplers are attached: windows are due from now on. */
void http_endpoint__set_attached(struct http_endpoint *endpoint);

/*
 * A window ended: err 0 when written, else the negative errno it failed
 * with. metrics (malloc'd, may be NULL to keep the last) is taken over:
 * what /metrics serves from now on, with the window counted in the same
 * step, so a scrape sees both or neither.
 */
void http_endpoint__window_ended(struct http_endpoint *endpoint, int err, char *metrics,
				 size_t metrics_length);

#endif /* KILN_HTTP_ENDPOINT_H */
