/* SPDX-License-Identifier: Apache-2.0 */
/* What became of one attempt to push a profile: what the uploader acts on. */
#ifndef KILN_PUSH_RESULT_H
#define KILN_PUSH_RESULT_H

#include <stdint.h>

enum push_outcome {
	PUSH_DELIVERED,
	PUSH_RETRY, /* unreachable, timed out, 429, 5xx, gRPC UNAVAILABLE...: try again later */
	PUSH_REJECTED, /* 3xx, other 4xx, gRPC INVALID_ARGUMENT...: retrying cannot help */
};

/*
 * Why an attempt did not deliver, one reason per way a backend (or the way
 * to it) can fail or misbehave: each is counted apart.
 */
enum push_failure {
	PUSH_FAILURE_NONE, /* delivered, or no reason given */
	PUSH_FAILURE_REFUSED, /* an HTTP or gRPC error status */
	PUSH_FAILURE_CONNECTION, /* no connection, TLS refused, connection lost */
	PUSH_FAILURE_TIMED_OUT, /* --remote-connect-timeout or --remote-timeout passed */
	PUSH_FAILURE_TOO_SLOW, /* under HTTP_LOW_SPEED_BYTES a second for HTTP_LOW_SPEED_S */
	PUSH_FAILURE_RESPONSE_TOO_LARGE, /* a body over HTTP_BODY_MAX */
	PUSH_FAILURE_HEADERS_TOO_LARGE, /* headers and trailers over HTTP_HEADERS_MAX */
	PUSH_FAILURE_REDIRECTED, /* a 3xx: never followed */
	PUSH_FAILURE_BAD_GRPC_STATUS, /* grpc-status missing, not a number, or given twice */
	PUSH_FAILURE_PROTOCOL, /* broken HTTP/2 framing or header block, HTTP/1 for gRPC */
	PUSH_FAILURE_LOCAL, /* on kiln's side: credentials unreadable, request not built */
	PUSH_FAILURE_ABORTED, /* the drain deadline passed: not the backend's doing */
	PUSH_FAILURE__COUNT,
};

struct push_result {
	enum push_outcome outcome;
	enum push_failure failure; /* why, when not delivered */
	long http_status; /* 0 when no response came */
	int grpc_status; /* -1 when none (not gRPC, or no response) */
	uint64_t retry_after_ms; /* the server's Retry-After, capped; 0 when none */
	char message[512]; /* the server's message or the transport's error */
	/* Delivered, but the server dropped this many of its profiles (OTLP's partial_success). */
	int64_t rejected_profiles;
};

#endif /* KILN_PUSH_RESULT_H */
