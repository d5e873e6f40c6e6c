/* SPDX-License-Identifier: Apache-2.0 */
/* What became of one attempt to push a profile: what the uploader acts on. */
#ifndef KILN_PUSH_RESULT_H
#define KILN_PUSH_RESULT_H

#include <stdint.h>

enum push_outcome {
	PUSH_DELIVERED,
	PUSH_RETRY, /* unreachable, timed out, 429, 5xx, gRPC UNAVAILABLE...: try again later */
	PUSH_REJECTED, /* other 4xx, gRPC INVALID_ARGUMENT...: retrying cannot help */
};

struct push_result {
	enum push_outcome outcome;
	long http_status; /* 0 when no response came */
	int grpc_status; /* -1 when none (not gRPC, or no response) */
	uint64_t retry_after_ms; /* the server's Retry-After, capped; 0 when none */
	char message[512]; /* the server's message or the transport's error */
};

#endif /* KILN_PUSH_RESULT_H */
