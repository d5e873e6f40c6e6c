/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP transport every push protocol sends through: libcurl,
 * authentication, TLS, timeouts, extra headers, and reading the answer
 * (status, body, gRPC status from headers or trailers, Retry-After) into an
 * outcome. It knows no protocol: those build a path, headers and a body.
 * One client, used by one thread.
 */
#ifndef KILN_PUSH_HTTP_H
#define KILN_PUSH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/push/result.h"

struct http_client;

struct http_opts {
	const char *url; /* http:// or https://, optionally with a path prefix */
	const char *bearer_token_file; /* NULL: none; read before every request */
	const char *basic_auth_file; /* "user:password"; NULL: none */
	const char *const *headers; /* "Name: value" */
	size_t header_count;
	const char *tls_ca; /* CA bundle file; NULL: the system's */
	const char *tls_cert; /* client certificate and key (PEM); NULL: none */
	const char *tls_key;
	bool tls_insecure_skip_verify;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms; /* a whole request */
	/* Polled during a transfer; true aborts it (the result is then a retry). */
	bool (*should_abort)(void *ctx);
	void *abort_ctx;
};

/* The first bytes of a response's body are kept for messages, the rest is discarded. */
#define HTTP_BODY_KEPT 1024
/*
 * Bounds on what a backend may send back: kiln only reads a status and a
 * short error text, so a longer answer is cut off and the attempt fails.
 * Far above any real error page or header set (a proxy's HTML page is a
 * few KiB, its headers one or two), far below what would cost memory.
 */
#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_HEADERS_MAX (64 * 1024) /* every header and trailer line of a response */
/*
 * A transfer that moves under HTTP_LOW_SPEED_BYTES a second (either way)
 * for HTTP_LOW_SPEED_S is cut before --remote-timeout: a server that
 * trickles its answer. It also bounds how long a server may think in
 * silence after the body, which Pyroscope and Parca do in well under a
 * second.
 */
#define HTTP_LOW_SPEED_BYTES 1024
#define HTTP_LOW_SPEED_S 10
/* A server's Retry-After is honoured up to this. */
#define HTTP_RETRY_AFTER_MAX_MS (5 * 60 * 1000ULL)

struct http_response {
	bool failed; /* no usable response: see failure */
	enum push_failure failure; /* when failed: unreachable, timed out, too large... */
	char error[256]; /* why, when failed */
	long status;
	bool http2; /* the response came over HTTP/2 */
	char body[HTTP_BODY_KEPT + 1];
	size_t body_size;
	int grpc_status; /* from headers or trailers; -1 when absent or malformed */
	char grpc_status_error[128]; /* why grpc-status is unusable (not a number, twice); "" */
	char grpc_message[256]; /* percent-decoded */
	char location[256]; /* a redirect's Location, printable ASCII, cut to fit */
	uint64_t retry_after_ms; /* capped at HTTP_RETRY_AFTER_MAX_MS */
};

/*
 * NULL with errno set: EINVAL for a URL that is neither http:// nor
 * https://, ENOPKG when libcurl is not loaded (curl_api_load).
 */
struct http_client *http_client__new(const struct http_opts *opts);
void http_client__free(struct http_client *client);

/* The whole request's time limit, for protocols that tell the server (gRPC's deadline). */
uint64_t http_client__timeout_ms(const struct http_client *client);

/*
 * POSTs body to the URL followed by path (which starts with '/'), with the
 * common headers (authentication, --header, User-Agent) plus the
 * header_count "Name: value" headers. http2: HTTP/2 only (prior knowledge
 * for http://, ALPN for https://). Returns 0 with ret_response filled,
 * also when nothing came back (ret_response->failed), or a negative errno
 * when the request could not be built.
 */
int http_client__post(struct http_client *client, const char *path, const char *const *headers,
		      size_t header_count, bool http2, const void *body, size_t size,
		      struct http_response *ret_response);

/*
 * 2xx delivered; 408, 429 and 5xx (and no status) worth retrying; any
 * other status rejected, 3xx included: redirects are never followed.
 */
enum push_outcome http_status_outcome(long status);

/*
 * gRPC status codes retried as the OpenTelemetry exporters retry them:
 * CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE,
 * DATA_LOSS. OK is delivered; the rest would fail again the same way.
 */
enum push_outcome grpc_status_outcome(int status);
/* "UNAVAILABLE" for 14; "?" for codes gRPC does not define. */
const char *grpc_status_name(int status);

/*
 * Copies len bytes of a server's text as one printable line: control
 * characters and non-ASCII become '?' (nothing a server sends can forge a
 * log line), whitespace runs one space, trimmed. Returns its length.
 */
size_t http_printable_copy(const char *text, size_t len, char *out, size_t size);

/* The gRPC message prefix: a compressed flag byte, then the length, big-endian. */
#define GRPC_PREFIX_SIZE 5

/* Writes a message's prefix; compressed: by the request's grpc-encoding. */
void grpc_put_prefix(uint8_t *out, bool compressed, uint32_t size);

/* The grpc-timeout header telling the server the client's deadline ("grpc-timeout: 1500m"). */
void grpc_timeout_header(const struct http_client *client, char *out, size_t size);

/* A Retry-After value in ms: delay-seconds only (an HTTP date gives 0), capped. */
uint64_t http_parse_retry_after(const char *value, size_t len);

/*
 * A plain HTTP request's result: by status, the message from the body or
 * the error; a redirect names where it pointed.
 */
void http_response__result(const struct http_response *response, struct push_result *ret_result);
/*
 * A unary gRPC call's result: by grpc-status, or by HTTP status when a
 * proxy answered. A grpc-status missing, malformed or given twice is
 * rejected (gRPC calls that INTERNAL), never read as OK.
 */
void http_response__grpc_result(const struct http_response *response,
				struct push_result *ret_result);

/*
 * Percent-encodes text for a URL's query: everything but letters, digits
 * and "-._~". Returns 0, or -ENAMETOOLONG when out (size bytes) is too small.
 */
int http_escape(const char *text, char *out, size_t size);

#endif /* KILN_PUSH_HTTP_H */
