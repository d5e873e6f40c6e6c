// SPDX-License-Identifier: Apache-2.0
/*
 * OTLP profiles: a window's ExportProfilesServiceRequest (built by
 * agent/push/otlp_window.c, spooled gzip-compressed) sent as OTLP/HTTP or
 * OTLP/gRPC, and the answer's partial_success or error read back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "agent/push/http.h"
#include "agent/push/otlp.h"
#include "agent/push/protocol.h"
#include "proto/otlp_profiles_service.pb-c.h"
#include "proto/rpc_status.pb-c.h"

#define OTLP_HTTP_PATH "/v1development/profiles"
#define OTLP_GRPC_PATH                                                                             \
	"/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse
	ExportResponse;

int otlp_read_response(const uint8_t *data, size_t size, struct push_result *result)
{
	ExportResponse *response;

	/* An empty body is an empty message: everything accepted. */
	if (!size)
		return 0;
	response =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__unpack(
			NULL, size, data);
	if (!response)
		return -EINVAL;
	if (response->partial_success && response->partial_success->rejected_profiles > 0) {
		result->rejected_profiles = response->partial_success->rejected_profiles;
		const char *text = response->partial_success->error_message;

		http_printable_copy(text ? text : "", text ? strlen(text) : 0, result->message,
				    sizeof(result->message));
	}
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__free_unpacked(
		response, NULL);
	return 0;
}

int otlp_read_status(const uint8_t *data, size_t size, char *message, size_t message_size)
{
	Google__Rpc__Status *status = google__rpc__status__unpack(NULL, size, data);

	if (!status)
		return -EINVAL;
	if (!status->message || !status->message[0]) {
		google__rpc__status__free_unpacked(status, NULL);
		return -ENOENT;
	}
	http_printable_copy(status->message, strlen(status->message), message, message_size);
	google__rpc__status__free_unpacked(status, NULL);
	return 0;
}

static int otlp_http_send(struct http_client *http, const struct push_record *record,
			  const uint8_t *data, size_t size, struct push_result *ret_result)
{
	static const char *const headers[] = { "Content-Type: application/x-protobuf",
					       "Content-Encoding: gzip" };
	struct http_response response;
	char message[256];
	int err;

	(void)record;
	err = http_client__post(http, OTLP_HTTP_PATH, headers, ARRAY_SIZE(headers), false, data,
				size, &response);
	if (err)
		return err;
	http_response__result(&response, ret_result);
	if (response.failed)
		return 0;
	/* A whole body only: a cut one would misread. */
	if (ret_result->outcome == PUSH_DELIVERED) {
		if (response.body_size <= HTTP_BODY_KEPT &&
		    otlp_read_response((const uint8_t *)response.body, response.body_size,
				       ret_result))
			snprintf(ret_result->message, sizeof(ret_result->message),
				 "the answer is no ExportProfilesServiceResponse");
	} else if (response.body_size && response.body_size <= HTTP_BODY_KEPT &&
		   !otlp_read_status((const uint8_t *)response.body, response.body_size, message,
				     sizeof(message))) {
		/* OTLP/HTTP's errors are a google.rpc.Status: its message, not its bytes. */
		snprintf(ret_result->message, sizeof(ret_result->message), "HTTP %ld: %s",
			 response.status, message);
	}
	return 0;
}

static int otlp_grpc_send(struct http_client *http, const struct push_record *record,
			  const uint8_t *data, size_t size, struct push_result *ret_result)
{
	struct http_response response;
	char timeout[48];
	uint8_t *body;
	int err;

	(void)record;
	if (size > UINT32_MAX - GRPC_PREFIX_SIZE)
		return -EFBIG;
	body = malloc(GRPC_PREFIX_SIZE + size);
	if (!body)
		return -ENOMEM;
	/* The spooled request is gzip already: one gRPC message compressed so. */
	grpc_put_prefix(body, true, (uint32_t)size);
	memcpy(body + GRPC_PREFIX_SIZE, data, size);
	grpc_timeout_header(http, timeout, sizeof(timeout));
	const char *const headers[] = { "Content-Type: application/grpc", "TE: trailers",
					"grpc-encoding: gzip", "grpc-accept-encoding: identity",
					timeout };

	err = http_client__post(http, OTLP_GRPC_PATH, headers, ARRAY_SIZE(headers), true, body,
				GRPC_PREFIX_SIZE + size, &response);
	free(body);
	if (err)
		return err;
	http_response__grpc_result(&response, ret_result);
	/* The answer: one uncompressed message, whose partial_success may count rejections. */
	if (ret_result->outcome == PUSH_DELIVERED && response.body_size >= GRPC_PREFIX_SIZE &&
	    response.body_size <= HTTP_BODY_KEPT && !response.body[0] &&
	    otlp_read_response((const uint8_t *)response.body + GRPC_PREFIX_SIZE,
			       response.body_size - GRPC_PREFIX_SIZE, ret_result))
		snprintf(ret_result->message, sizeof(ret_result->message),
			 "the answer is no ExportProfilesServiceResponse");
	return 0;
}

const struct push_protocol push_protocol_otlp_grpc = {
	.name = "otlp",
	.title = "OTLP/gRPC",
	.send = otlp_grpc_send,
	.per_window = true,
};

const struct push_protocol push_protocol_otlp = {
	.name = "otlp",
	.title = "OTLP/HTTP",
	.send = otlp_http_send,
	.per_window = true,
	.grpc = &push_protocol_otlp_grpc,
};
