// SPDX-License-Identifier: Apache-2.0
/* Parca: unary gRPC ProfileStoreService/WriteRaw over HTTP/2, status from the trailers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/push/remote_internal.h"
#include "lib/array.h"
#include "proto/profilestore.pb-c.h"

#define WRITE_RAW_PATH "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw"
/* The gRPC message prefix: a compressed flag byte, then the length, big-endian. */
#define GRPC_PREFIX_SIZE 5

typedef Parca__Profilestore__V1alpha1__WriteRawRequest WriteRawRequest;
typedef Parca__Profilestore__V1alpha1__RawProfileSeries RawProfileSeries;
typedef Parca__Profilestore__V1alpha1__RawSample RawSample;
typedef Parca__Profilestore__V1alpha1__LabelSet LabelSet;
typedef Parca__Profilestore__V1alpha1__Label Label;

static const char *const grpc_status_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

/*
 * Retried as the OpenTelemetry exporters retry gRPC: CANCELLED,
 * DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE, DATA_LOSS.
 * The rest (INVALID_ARGUMENT, UNAUTHENTICATED, UNIMPLEMENTED, INTERNAL...)
 * would fail again the same way.
 */
static bool grpc_retryable(int status)
{
	return status == 1 || status == 4 || status == 8 || status == 10 || status == 14 ||
	       status == 15;
}

/* The length-prefixed WriteRawRequest for one series holding one profile; malloc'd. */
static int encode_request(const struct remote_profile *profile, const uint8_t *data, size_t size,
			  uint8_t **ret_body, size_t *ret_size)
{
	char host[sizeof(profile->hostname)], comm[sizeof(profile->comm)], pid[16];
	Label labels[4], *label_ptrs[4];
	const char *names[4] = { "__name__", "node", "pid", "comm" };
	const char *values[4] = { profile->off_cpu ? "parca_agent_off_cpu" : "parca_agent_cpu",
				  host, pid, comm };
	LabelSet label_set;
	RawSample sample, *sample_ptr = &sample;
	RawProfileSeries series, *series_ptr = &series;
	WriteRawRequest request;
	size_t packed_size;
	uint8_t *body;

	remote_sanitize(profile->hostname, "", host, sizeof(host));
	remote_sanitize(profile->comm, "", comm, sizeof(comm));
	snprintf(pid, sizeof(pid), "%" PRIu32, profile->pid);
	for (int i = 0; i < 4; i++) {
		parca__profilestore__v1alpha1__label__init(&labels[i]);
		labels[i].name = (char *)names[i];
		labels[i].value = (char *)values[i];
		label_ptrs[i] = &labels[i];
	}
	parca__profilestore__v1alpha1__label_set__init(&label_set);
	label_set.n_labels = 4;
	label_set.labels = label_ptrs;
	parca__profilestore__v1alpha1__raw_sample__init(&sample);
	sample.raw_profile.data = (uint8_t *)data;
	sample.raw_profile.len = size;
	parca__profilestore__v1alpha1__raw_profile_series__init(&series);
	series.labels = &label_set;
	series.n_samples = 1;
	series.samples = &sample_ptr;
	parca__profilestore__v1alpha1__write_raw_request__init(&request);
	request.n_series = 1;
	request.series = &series_ptr;
	request.normalized = false; /* virtual addresses, with their mappings */

	packed_size = parca__profilestore__v1alpha1__write_raw_request__get_packed_size(&request);
	if (packed_size > UINT32_MAX)
		return -EFBIG;
	body = malloc(GRPC_PREFIX_SIZE + packed_size);
	if (!body)
		return -ENOMEM;
	body[0] = 0;
	body[1] = (uint8_t)(packed_size >> 24);
	body[2] = (uint8_t)(packed_size >> 16);
	body[3] = (uint8_t)(packed_size >> 8);
	body[4] = (uint8_t)packed_size;
	parca__profilestore__v1alpha1__write_raw_request__pack(&request, body + GRPC_PREFIX_SIZE);
	*ret_body = body;
	*ret_size = GRPC_PREFIX_SIZE + packed_size;
	return 0;
}

static void classify(const struct remote *remote, const struct http_response *response,
		     struct remote_result *result)
{
	const char *name;
	char message[sizeof(result->message)];

	result->http_status = response->code == CURLE_OK ? response->status : 0;
	result->grpc_status = response->grpc_status;
	result->retry_after_ms = response->retry_after_ms;
	if (response->code != CURLE_OK) {
		result->outcome = REMOTE_RETRY;
		remote_describe_failure(remote, response, result);
		return;
	}
	if (response->http_version != CURL_HTTP_VERSION_2_0) {
		result->outcome = REMOTE_REJECTED;
		snprintf(result->message, sizeof(result->message),
			 "the server answered HTTP %ld over HTTP/1, not gRPC over HTTP/2",
			 response->status);
		return;
	}
	if (response->status != 200 && response->grpc_status < 0) {
		/* A proxy's answer; gRPC maps 429 and 502-504 to UNAVAILABLE, so retry those. */
		result->outcome = remote_classify_http(response->status);
		if (result->outcome == REMOTE_DELIVERED)
			result->outcome = REMOTE_REJECTED;
		remote_describe_failure(remote, response, result);
		return;
	}
	if (response->grpc_status < 0) {
		result->outcome = REMOTE_REJECTED;
		snprintf(result->message, sizeof(result->message),
			 "no grpc-status in the response: not a gRPC server?");
		return;
	}
	if (response->grpc_status == 0) {
		result->outcome = REMOTE_DELIVERED;
		return;
	}
	result->outcome = grpc_retryable(response->grpc_status) ? REMOTE_RETRY : REMOTE_REJECTED;
	name = response->grpc_status < (int)ARRAY_SIZE(grpc_status_names)
		       ? grpc_status_names[response->grpc_status]
		       : "?";
	remote_describe_failure(remote, response, result);
	snprintf(message, sizeof(message), "%s", result->message);
	snprintf(result->message, sizeof(result->message), "gRPC %s (%d): %.400s", name,
		 response->grpc_status, response->grpc_message[0] ? message : "no message");
}

int remote_parca_send(struct remote *remote, const struct remote_profile *profile,
		      const uint8_t *data, size_t size, struct remote_result *ret_result)
{
	struct remote_result result = { .grpc_status = -1 };
	struct http_response response;
	char url[1024], timeout[48];
	uint8_t *body = NULL;
	size_t body_size;
	int err;

	if (snprintf(url, sizeof(url), "%s" WRITE_RAW_PATH, remote->base_url) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	err = encode_request(profile, data, size, &body, &body_size);
	if (err)
		return err;
	/* gRPC allows at most 8 digits: the deadline in milliseconds, or seconds past that. */
	if (remote->opts.timeout_ms <= 99999999)
		snprintf(timeout, sizeof(timeout), "grpc-timeout: %" PRIu64 "m",
			 remote->opts.timeout_ms);
	else
		snprintf(timeout, sizeof(timeout), "grpc-timeout: %" PRIu64 "S",
			 remote->opts.timeout_ms / 1000);
	const char *const headers[] = { "Content-Type: application/grpc", "TE: trailers", timeout };

	err = remote_http_post(remote, url, headers, ARRAY_SIZE(headers), true, body, body_size,
			       &response);
	if (err) {
		result.outcome = REMOTE_RETRY;
		snprintf(result.message, sizeof(result.message), "%s", remote->request_error);
	} else {
		classify(remote, &response, &result);
	}
	*ret_result = result;
	free(body);
	return 0;
}
