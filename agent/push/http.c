// SPDX-License-Identifier: Apache-2.0
/* The HTTP transport of pushing profiles: libcurl, authentication, TLS, timeouts, responses. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/options.h"
#include "agent/push/curl_api.h"
#include "agent/push/http.h"
#include "lib/fs.h"

#define CREDENTIAL_MAX 4096

struct http_client {
	const struct curl_api *curl_api; /* libcurl, loaded at run time */
	struct http_opts opts;
	char *base_url; /* without a trailing '/' */
	bool https;
	bool old_h2c_reuse; /* libcurl cannot reuse HTTP/2 prior-knowledge connections */
	CURL *curl;
	char curl_error[CURL_ERROR_SIZE];
};

static int progress_callback(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			     curl_off_t ulnow)
{
	const struct http_client *client = ctx;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return client->opts.should_abort && client->opts.should_abort(client->opts.abort_ctx);
}

struct http_client *http_client__new(const struct http_opts *opts)
{
	struct http_client *client;
	const struct curl_api *curl;
	size_t len;

	if (!opts->url || (strncmp(opts->url, "http://", 7) && strncmp(opts->url, "https://", 8))) {
		errno = EINVAL;
		return NULL;
	}
	curl = curl_api_get();
	if (!curl) {
		errno = ENOPKG; /* curl_api_load first */
		return NULL;
	}
	client = calloc(1, sizeof(*client));
	if (!client)
		return NULL;
	client->curl_api = curl;
	client->opts = *opts;
	client->https = !strncmp(opts->url, "https://", 8);
	client->base_url = strdup(opts->url);
	client->curl = curl->easy_init();
	if (!client->base_url || !client->curl) {
		http_client__free(client);
		errno = ENOMEM;
		return NULL;
	}
	len = strlen(client->base_url);
	while (len > 8 && client->base_url[len - 1] == '/')
		client->base_url[--len] = '\0';

	curl->easy_setopt(client->curl, CURLOPT_NOSIGNAL, 1L);
	curl->easy_setopt(client->curl, CURLOPT_ERRORBUFFER, client->curl_error);
	curl->easy_setopt(client->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)opts->connect_timeout_ms);
	curl->easy_setopt(client->curl, CURLOPT_TIMEOUT_MS, (long)opts->timeout_ms);
	curl->easy_setopt(client->curl, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	curl->easy_setopt(client->curl, CURLOPT_NOPROGRESS, 0L);
	curl->easy_setopt(client->curl, CURLOPT_XFERINFOFUNCTION, progress_callback);
	curl->easy_setopt(client->curl, CURLOPT_XFERINFODATA, client);
	/* Only the scheme given: a redirect must not turn https into http. */
	curl->easy_setopt(client->curl, CURLOPT_PROTOCOLS_STR, client->https ? "https" : "http");
	/*
	 * Never follow a redirect (libcurl's default, made explicit): it would
	 * send the profile, and the credentials, wherever the backend says.
	 * Where the redirect pointed is reported, the attempt rejected.
	 */
	curl->easy_setopt(client->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl->easy_setopt(client->curl, CURLOPT_MAXREDIRS, 0L);
	curl->easy_setopt(client->curl, CURLOPT_REDIR_PROTOCOLS_STR,
			  client->https ? "https" : "http");
	/* An announced body over the bound fails at once; body_callback cuts the rest. */
	curl->easy_setopt(client->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_BODY_MAX);
	curl->easy_setopt(client->curl, CURLOPT_LOW_SPEED_LIMIT, (long)HTTP_LOW_SPEED_BYTES);
	curl->easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, (long)HTTP_LOW_SPEED_S);
	/*
	 * libcurl before 7.89 fails ("Error in the HTTP2 framing layer") when it
	 * reuses an HTTP/2 prior-knowledge connection (curl issue 10634, fixed by
	 * pull request 10643); Debian 12 ships 7.88.1. h2c gets a fresh
	 * connection per request there: one more TCP handshake per profile.
	 */
	client->old_h2c_reuse =
		!client->https && curl->version_info(CURLVERSION_NOW)->version_num < 0x075900;
	if (opts->tls_ca)
		curl->easy_setopt(client->curl, CURLOPT_CAINFO, opts->tls_ca);
	if (opts->tls_cert) {
		curl->easy_setopt(client->curl, CURLOPT_SSLCERT, opts->tls_cert);
		curl->easy_setopt(client->curl, CURLOPT_SSLKEY, opts->tls_key);
	}
	if (opts->tls_insecure_skip_verify) {
		curl->easy_setopt(client->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl->easy_setopt(client->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return client;
}

void http_client__free(struct http_client *client)
{
	if (!client)
		return;
	if (client->curl)
		client->curl_api->easy_cleanup(client->curl);
	free(client->base_url);
	free(client);
}

uint64_t http_client__timeout_ms(const struct http_client *client)
{
	return client->opts.timeout_ms;
}

/* One request's response as the callbacks read it, with what bounds it. */
struct transfer {
	struct http_response *response;
	size_t body_bytes;
	size_t header_bytes; /* every header and trailer line, of every response (100, 3xx) */
	enum push_failure refused; /* set by a callback that cut the transfer off */
};

static size_t body_callback(char *data, size_t size, size_t count, void *ctx)
{
	struct transfer *transfer = ctx;
	struct http_response *response = transfer->response;
	size_t bytes = size * count, room = HTTP_BODY_KEPT - response->body_size;
	size_t kept = bytes < room ? bytes : room;

	transfer->body_bytes += bytes;
	if (transfer->body_bytes > HTTP_BODY_MAX) {
		/* Fewer bytes taken than given: libcurl ends the transfer. */
		transfer->refused = PUSH_FAILURE_RESPONSE_TOO_LARGE;
		return 0;
	}
	memcpy(response->body + response->body_size, data, kept);
	response->body_size += kept;
	response->body[response->body_size] = '\0';
	return bytes;
}

size_t http_printable_copy(const char *text, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && text[i] && o + 1 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if (c < 0x20 || c >= 0x7f)
			c = '?';
		if (c == ' ' && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = (char)c;
	}
	while (o && out[o - 1] == ' ')
		o--;
	if (size)
		out[o] = '\0';
	return o;
}

/* gRPC percent-encodes grpc-message. */
static void percent_decode(const char *text, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned int byte;

		if (text[i] == '%' && i + 2 < len && sscanf(text + i + 1, "%2x", &byte) == 1) {
			out[o++] = (char)byte;
			i += 2;
		} else {
			out[o++] = text[i];
		}
	}
	out[o] = '\0';
}

/*
 * A grpc-status value: 1*DIGIT in gRPC's grammar. Anything else, or a
 * second grpc-status in one response (headers and trailers both), leaves
 * the status unusable with the reason, never a guess: atoi("OK") is 0.
 */
static void read_grpc_status(struct http_response *response, const char *value, size_t len)
{
	char shown[24];
	int status = 0;

	http_printable_copy(value, len, shown, sizeof(shown));
	if (response->grpc_status >= 0 || response->grpc_status_error[0]) {
		if (!response->grpc_status_error[0])
			snprintf(response->grpc_status_error, sizeof(response->grpc_status_error),
				 "grpc-status given twice (%d, then \"%s\")", response->grpc_status,
				 shown);
		response->grpc_status = -1;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9' || i >= 3) {
			status = -1;
			break;
		}
		status = status * 10 + (value[i] - '0');
	}
	if (!len || status < 0) {
		snprintf(response->grpc_status_error, sizeof(response->grpc_status_error),
			 "grpc-status \"%s\" is not a status code", shown);
		return;
	}
	response->grpc_status = status;
}

/* Sees headers and, after the body, trailers: grpc-status comes in either. */
static size_t header_callback(char *data, size_t size, size_t count, void *ctx)
{
	struct transfer *transfer = ctx;
	struct http_response *response = transfer->response;
	size_t len = size * count, name_len, value_len;
	const char *colon = memchr(data, ':', len), *value;

	transfer->header_bytes += len;
	if (transfer->header_bytes > HTTP_HEADERS_MAX) {
		transfer->refused = PUSH_FAILURE_HEADERS_TOO_LARGE;
		return 0;
	}
	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* A new response (after 100 Continue or a redirect): forget the last one's. */
		response->grpc_status = -1;
		response->grpc_status_error[0] = '\0';
		response->grpc_message[0] = '\0';
		response->location[0] = '\0';
		response->retry_after_ms = 0;
		return len;
	}
	if (!colon)
		return len;
	name_len = (size_t)(colon - data);
	value = colon + 1;
	value_len = len - name_len - 1;
	while (value_len && (*value == ' ' || *value == '\t'))
		value++, value_len--;
	while (value_len && isspace((unsigned char)value[value_len - 1]))
		value_len--;
	if (name_len == 11 && !strncasecmp(data, "grpc-status", 11)) {
		read_grpc_status(response, value, value_len);
	} else if (name_len == 8 && !strncasecmp(data, "location", 8)) {
		http_printable_copy(value, value_len, response->location,
				    sizeof(response->location));
	} else if (name_len == 12 && !strncasecmp(data, "grpc-message", 12)) {
		percent_decode(value, value_len, response->grpc_message,
			       sizeof(response->grpc_message));
	} else if (name_len == 11 && !strncasecmp(data, "retry-after", 11)) {
		response->retry_after_ms = http_parse_retry_after(value, value_len);
	}
	return len;
}

uint64_t http_parse_retry_after(const char *value, size_t len)
{
	uint64_t seconds = 0;

	/* Seconds only; an HTTP date falls back to our own backoff. */
	for (size_t i = 0; i < len && value[i] >= '0' && value[i] <= '9'; i++) {
		seconds = seconds * 10 + (uint64_t)(value[i] - '0');
		if (seconds * 1000 >= HTTP_RETRY_AFTER_MAX_MS)
			return HTTP_RETRY_AFTER_MAX_MS;
	}
	return seconds * 1000;
}

static int append_header(struct http_client *client, struct curl_slist **headers, const char *text)
{
	struct curl_slist *grown = client->curl_api->slist_append(*headers, text);

	if (!grown)
		return -ENOMEM;
	*headers = grown;
	return 0;
}

/*
 * The headers of one request: authentication (credentials read now, so a
 * rotated token is picked up), --header, then the protocol's. Returns 0;
 * -EACCES with response->error set when a credential cannot be read; or
 * -ENOMEM.
 */
static int build_headers(struct http_client *client, const char *const *extra, size_t extra_count,
			 struct curl_slist **ret_headers, struct http_response *response)
{
	char credential[CREDENTIAL_MAX], header[CREDENTIAL_MAX + 32];
	struct curl_slist *headers = NULL;
	int err = 0;

	if (client->opts.bearer_token_file) {
		err = fs_read_credential(client->opts.bearer_token_file, credential,
					 sizeof(credential));
		if (err) {
			snprintf(response->error, sizeof(response->error),
				 "reading --bearer-token-file %s: %s",
				 client->opts.bearer_token_file, strerror(-err));
			err = -EACCES;
			goto cleanup;
		}
		snprintf(header, sizeof(header), "Authorization: Bearer %s", credential);
		err = append_header(client, &headers, header);
		if (err)
			goto cleanup;
	}
	client->curl_api->easy_setopt(client->curl, CURLOPT_USERPWD, NULL);
	if (client->opts.basic_auth_file) {
		err = fs_read_credential(client->opts.basic_auth_file, credential,
					 sizeof(credential));
		if (!err && !strchr(credential, ':'))
			err = -EINVAL;
		if (err) {
			snprintf(response->error, sizeof(response->error),
				 "reading --basic-auth-file %s: %s", client->opts.basic_auth_file,
				 err == -EINVAL ? "not user:password" : strerror(-err));
			err = -EACCES;
			goto cleanup;
		}
		client->curl_api->easy_setopt(client->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		client->curl_api->easy_setopt(client->curl, CURLOPT_USERPWD, credential);
	}
	for (size_t i = 0; i < client->opts.header_count && !err; i++)
		err = append_header(client, &headers, client->opts.headers[i]);
	for (size_t i = 0; i < extra_count && !err; i++)
		err = append_header(client, &headers, extra[i]);
	/* No "Expect: 100-continue" round trip before large bodies. */
	if (!err)
		err = append_header(client, &headers, "Expect:");

cleanup:
	explicit_bzero(credential, sizeof(credential));
	explicit_bzero(header, sizeof(header));
	if (err) {
		client->curl_api->slist_free_all(headers);
		return err;
	}
	*ret_headers = headers;
	return 0;
}

/* Why libcurl ended a transfer early, as the uploader counts it. */
static enum push_failure transfer_failure(struct http_client *client,
					  const struct transfer *transfer, CURLcode code)
{
	const struct curl_api *curl = client->curl_api;
	curl_off_t total_us = 0, connect_us = 0;

	if (transfer->refused)
		return transfer->refused;
	switch (code) {
	case CURLE_FILESIZE_EXCEEDED:
		return PUSH_FAILURE_RESPONSE_TOO_LARGE;
	case CURLE_ABORTED_BY_CALLBACK:
		return PUSH_FAILURE_ABORTED;
	case CURLE_TOO_MANY_REDIRECTS:
		return PUSH_FAILURE_REDIRECTED;
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return PUSH_FAILURE_PROTOCOL;
	case CURLE_OPERATION_TIMEDOUT:
		/*
		 * The same code for the connect timeout, the whole request's and
		 * the low-speed limit: connected, and cut before the request's
		 * time was up, it was the low-speed limit.
		 */
		curl->easy_getinfo(client->curl, CURLINFO_TOTAL_TIME_T, &total_us);
		curl->easy_getinfo(client->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
		if (connect_us > 0 && (uint64_t)total_us / 1000 + 500 < client->opts.timeout_ms)
			return PUSH_FAILURE_TOO_SLOW;
		return PUSH_FAILURE_TIMED_OUT;
	default:
		return PUSH_FAILURE_CONNECTION;
	}
}

/* The error text of a transfer libcurl ended early: ours when a bound cut it. */
static void describe_transfer_error(struct http_client *client, CURLcode code,
				    enum push_failure failure, char *out, size_t size)
{
	if (failure == PUSH_FAILURE_RESPONSE_TOO_LARGE)
		snprintf(out, size, "response body over %d KiB, cut off", HTTP_BODY_MAX / 1024);
	else if (failure == PUSH_FAILURE_HEADERS_TOO_LARGE)
		snprintf(out, size, "response headers over %d KiB, cut off",
			 HTTP_HEADERS_MAX / 1024);
	else
		snprintf(out, size, "%s",
			 client->curl_error[0] ? client->curl_error
					       : client->curl_api->easy_strerror(code));
}

int http_client__post(struct http_client *client, const char *path, const char *const *extra,
		      size_t extra_count, bool http2, const void *body, size_t size,
		      struct http_response *ret_response)
{
	const struct curl_api *curl = client->curl_api;
	struct http_response response = { .grpc_status = -1 };
	struct transfer transfer = { .response = &response };
	struct curl_slist *headers = NULL;
	long http_version = CURL_HTTP_VERSION_NONE;
	char url[2048];
	CURLcode code;
	int err;

	if (snprintf(url, sizeof(url), "%s%s", client->base_url, path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	err = build_headers(client, extra, extra_count, &headers, &response);
	if (err == -EACCES) {
		/* Credentials unreadable just now: they may be back by the next try. */
		response.failed = true;
		response.failure = PUSH_FAILURE_LOCAL;
		*ret_response = response;
		return 0;
	}
	if (err)
		return err;

	client->curl_error[0] = '\0';
	curl->easy_setopt(client->curl, CURLOPT_URL, url);
	curl->easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
	curl->easy_setopt(client->curl, CURLOPT_POST, 1L);
	curl->easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
	curl->easy_setopt(client->curl, CURLOPT_POSTFIELDS, body);
	curl->easy_setopt(client->curl, CURLOPT_HTTP_VERSION,
			  !http2	  ? (long)CURL_HTTP_VERSION_NONE
			  : client->https ? (long)CURL_HTTP_VERSION_2TLS
					  : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl->easy_setopt(client->curl, CURLOPT_FORBID_REUSE,
			  http2 && client->old_h2c_reuse ? 1L : 0L);
	curl->easy_setopt(client->curl, CURLOPT_WRITEFUNCTION, body_callback);
	curl->easy_setopt(client->curl, CURLOPT_WRITEDATA, &transfer);
	curl->easy_setopt(client->curl, CURLOPT_HEADERFUNCTION, header_callback);
	curl->easy_setopt(client->curl, CURLOPT_HEADERDATA, &transfer);
	code = curl->easy_perform(client->curl);
	curl->easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &response.status);
	curl->easy_getinfo(client->curl, CURLINFO_HTTP_VERSION, &http_version);
	response.http2 = http_version == CURL_HTTP_VERSION_2_0;
	if (code != CURLE_OK) {
		response.failed = true;
		response.status = 0;
		response.failure = transfer_failure(client, &transfer, code);
		describe_transfer_error(client, code, response.failure, response.error,
					sizeof(response.error));
	}
	/* The list is freed below: the handle must not keep pointing at it. */
	curl->easy_setopt(client->curl, CURLOPT_HTTPHEADER, NULL);
	curl->easy_setopt(client->curl, CURLOPT_USERPWD, NULL);
	curl->slist_free_all(headers);
	*ret_response = response;
	return 0;
}

enum push_outcome http_status_outcome(long status)
{
	if (status >= 200 && status < 300)
		return PUSH_DELIVERED;
	if (status == 408 || status == 429 || status >= 500 || status < 100)
		return PUSH_RETRY;
	return PUSH_REJECTED;
}

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

const char *grpc_status_name(int status)
{
	return status >= 0 && status < (int)(sizeof(grpc_status_names) /
					     sizeof(grpc_status_names[0]))
		       ? grpc_status_names[status]
		       : "?";
}

enum push_outcome grpc_status_outcome(int status)
{
	switch (status) {
	case 0:
		return PUSH_DELIVERED;
	case 1: /* CANCELLED */
	case 4: /* DEADLINE_EXCEEDED */
	case 8: /* RESOURCE_EXHAUSTED */
	case 10: /* ABORTED */
	case 14: /* UNAVAILABLE */
	case 15: /* DATA_LOSS */
		return PUSH_RETRY;
	default:
		return PUSH_REJECTED;
	}
}

/*
 * One line of printable text for messages: the transport's error, where a
 * redirect pointed, or what the server said.
 */
static void describe_failure(const struct http_response *response, char *out, size_t size)
{
	const char *text;

	if (response->failed) {
		snprintf(out, size, "%s", response->error);
		return;
	}
	if (response->status >= 300 && response->status < 400) {
		/* The caller's line has the status already. */
		snprintf(out, size, "redirect to %s, not followed",
			 response->location[0] ? response->location : "nowhere (no Location)");
		return;
	}
	text = response->grpc_message[0] ? response->grpc_message : response->body;
	if (!http_printable_copy(text, strlen(text), out, size))
		snprintf(out, size, "HTTP %ld with no message", response->status);
}

/* Why a response that came whole did not deliver, by its HTTP status. */
static enum push_failure status_failure(long status)
{
	return status >= 300 && status < 400 ? PUSH_FAILURE_REDIRECTED : PUSH_FAILURE_REFUSED;
}

void http_response__result(const struct http_response *response, struct push_result *ret_result)
{
	struct push_result result = {
		.outcome = response->failed ? PUSH_RETRY : http_status_outcome(response->status),
		.http_status = response->status,
		.grpc_status = -1,
		.retry_after_ms = response->retry_after_ms,
	};

	if (result.outcome != PUSH_DELIVERED) {
		result.failure =
			response->failed ? response->failure : status_failure(response->status);
		describe_failure(response, result.message, sizeof(result.message));
	}
	*ret_result = result;
}

void http_response__grpc_result(const struct http_response *response,
				struct push_result *ret_result)
{
	struct push_result result = {
		.http_status = response->status,
		.grpc_status = response->grpc_status,
		.retry_after_ms = response->retry_after_ms,
	};
	char message[sizeof(result.message)];

	if (response->failed) {
		result.outcome = PUSH_RETRY;
		result.failure = response->failure;
		describe_failure(response, result.message, sizeof(result.message));
	} else if (!response->http2) {
		result.outcome = PUSH_REJECTED;
		result.failure = PUSH_FAILURE_PROTOCOL;
		snprintf(result.message, sizeof(result.message),
			 "the server answered HTTP %ld over HTTP/1, not gRPC over HTTP/2",
			 response->status);
	} else if (response->grpc_status_error[0]) {
		/* gRPC's own clients call this INTERNAL, which is not retried. */
		result.outcome = PUSH_REJECTED;
		result.failure = PUSH_FAILURE_BAD_GRPC_STATUS;
		result.grpc_status = -1;
		snprintf(result.message, sizeof(result.message), "%s (HTTP %ld)",
			 response->grpc_status_error, response->status);
	} else if (response->status != 200 && response->grpc_status < 0) {
		/* A proxy's answer; gRPC maps 429 and 502-504 to UNAVAILABLE, so retry those. */
		result.outcome = http_status_outcome(response->status);
		if (result.outcome == PUSH_DELIVERED)
			result.outcome = PUSH_REJECTED;
		result.failure = status_failure(response->status);
		describe_failure(response, result.message, sizeof(result.message));
	} else if (response->grpc_status < 0) {
		result.outcome = PUSH_REJECTED;
		result.failure = PUSH_FAILURE_BAD_GRPC_STATUS;
		snprintf(result.message, sizeof(result.message),
			 "no grpc-status in the response: not a gRPC server?");
	} else if (response->grpc_status == 0) {
		result.outcome = PUSH_DELIVERED;
	} else {
		result.outcome = grpc_status_outcome(response->grpc_status);
		result.failure = PUSH_FAILURE_REFUSED;
		describe_failure(response, message, sizeof(message));
		snprintf(result.message, sizeof(result.message), "gRPC %s (%d): %.400s",
			 grpc_status_name(response->grpc_status), response->grpc_status,
			 response->grpc_message[0] ? message : "no message");
	}
	*ret_result = result;
}

int http_escape(const char *text, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *text; text++) {
		unsigned char c = (unsigned char)*text;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (o + (plain ? 1 : 3) >= size)
			return -ENAMETOOLONG;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (!size)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}

void grpc_put_prefix(uint8_t *out, bool compressed, uint32_t size)
{
	out[0] = compressed;
	out[1] = (uint8_t)(size >> 24);
	out[2] = (uint8_t)(size >> 16);
	out[3] = (uint8_t)(size >> 8);
	out[4] = (uint8_t)size;
}

void grpc_timeout_header(const struct http_client *client, char *out, size_t size)
{
	uint64_t timeout_ms = http_client__timeout_ms(client);

	/* gRPC allows at most 8 digits: the deadline in milliseconds, or seconds past that. */
	if (timeout_ms <= 99999999)
		snprintf(out, size, "grpc-timeout: %" PRIu64 "m", timeout_ms);
	else
		snprintf(out, size, "grpc-timeout: %" PRIu64 "S", timeout_ms / 1000);
}
