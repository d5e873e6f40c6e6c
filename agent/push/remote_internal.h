/* SPDX-License-Identifier: Apache-2.0 */
/* What remote.c shares with the protocol files remote_pyroscope.c and remote_parca.c. */
#ifndef KILN_REMOTE_INTERNAL_H
#define KILN_REMOTE_INTERNAL_H

#include "agent/push/curl_api.h"

#include "agent/push/remote.h"

struct remote {
	const struct curl_api *curl_api; /* libcurl, loaded at run time */
	struct remote_opts opts;
	char *base_url; /* without a trailing '/' */
	bool https;
	CURL *curl;
	char curl_error[CURL_ERROR_SIZE];
	char request_error[256]; /* why remote_http_post could not send, when it fails */
};

/* The first bytes of the body are kept for error messages, the rest is discarded. */
#define HTTP_BODY_KEPT 1024

struct http_response {
	long status;
	long http_version; /* CURL_HTTP_VERSION_* */
	CURLcode code;
	char body[HTTP_BODY_KEPT + 1];
	size_t body_size;
	int grpc_status; /* from headers or trailers; -1 when absent */
	char grpc_message[256]; /* percent-decoded */
	uint64_t retry_after_ms;
};

/*
 * POSTs body to url with the common headers (authentication, --header,
 * User-Agent) plus the extra_count headers of extra. http2: HTTP/2 only (prior knowledge for http://,
 * ALPN for https://). Returns 0 with ret_response filled, including
 * transport failures (ret_response->code), or a negative errno.
 */
int remote_http_post(struct remote *remote, const char *url, const char *const *extra,
		     size_t extra_count, bool http2, const void *body, size_t size,
		     struct http_response *ret_response);

/* 2xx delivered; 408, 429 and 5xx worth retrying; any other status rejected. */
enum remote_outcome remote_classify_http(long status);

/* Fills result->message with the response's body, or the transport error. */
void remote_describe_failure(const struct remote *remote, const struct http_response *response,
			     struct remote_result *result);

int remote_pyroscope_send(struct remote *remote, const struct remote_profile *profile,
			  const uint8_t *data, size_t size, struct remote_result *ret_result);
int remote_parca_send(struct remote *remote, const struct remote_profile *profile,
		      const uint8_t *data, size_t size, struct remote_result *ret_result);

#endif /* KILN_REMOTE_INTERNAL_H */
