/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pushing one profile to a profiling backend: Pyroscope's /ingest over
 * HTTP, or Parca's WriteRaw over gRPC (HTTP/2), with the transport's
 * authentication, TLS and timeouts. One object, used by one thread.
 */
#ifndef KILN_REMOTE_H
#define KILN_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum remote_protocol {
	REMOTE_PYROSCOPE,
	REMOTE_PARCA,
};

struct remote_opts {
	const char *url; /* http:// or https://, optionally with a path prefix */
	enum remote_protocol protocol;
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

/* One process's profile of one window, as it is spooled and labelled. */
struct remote_profile {
	bool off_cpu;
	uint32_t pid;
	char comm[32]; /* the process name */
	char service_name[128]; /* --service-name, or the process name */
	char hostname[256];
	int64_t start_ns; /* window start, Unix time */
	int64_t duration_ns;
};

enum remote_outcome {
	REMOTE_DELIVERED,
	REMOTE_RETRY, /* unreachable, timed out, 429, 5xx, gRPC UNAVAILABLE...: try again later */
	REMOTE_REJECTED, /* other 4xx, gRPC INVALID_ARGUMENT...: retrying cannot help */
};

struct remote_result {
	enum remote_outcome outcome;
	long http_status; /* 0 when no response came */
	int grpc_status; /* -1 when none (Pyroscope, or no response) */
	uint64_t retry_after_ms; /* the server's Retry-After, 0 when none */
	char message[512]; /* the server's message or the transport's error */
};

/* NULL with errno set: EINVAL for a URL that is neither http:// nor https://. */
struct remote *remote__new(const struct remote_opts *opts);
void remote__free(struct remote *remote);

/*
 * Sends data (a gzip-compressed pprof profile) labelled from profile.
 * Returns 0 with ret_result filled (whatever the outcome), or a negative
 * errno when the request could not even be built.
 */
int remote__send(struct remote *remote, const struct remote_profile *profile, const uint8_t *data,
		 size_t size, struct remote_result *ret_result);

/* The spool's text form of a profile's labels: "key=value" lines. */
int remote_profile__format(const struct remote_profile *profile, char *buf, size_t size);
/* Returns 0, or -EINVAL when a field is missing or malformed. */
int remote_profile__parse(const char *text, struct remote_profile *ret_profile);

/*
 * Copies text into out (size bytes, NUL-terminated) keeping printable ASCII
 * except the characters in reject, which like every other byte become '_'.
 * An empty result becomes "unknown".
 */
void remote_sanitize(const char *text, const char *reject, char *out, size_t size);

#endif /* KILN_REMOTE_H */
