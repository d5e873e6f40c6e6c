// SPDX-License-Identifier: Apache-2.0
/* The HTTP side of pushing profiles: libcurl, authentication, TLS, timeouts, responses. */
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
#include "agent/push/remote_internal.h"

#define CREDENTIAL_MAX 4096

void remote_sanitize(const char *text, const char *reject, char *out, size_t size)
{
	size_t i = 0;

	if (!size)
		return;
	for (; text[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		out[i] = c > 0x20 && c < 0x7f && !strchr(reject, c) ? (char)c : '_';
	}
	out[i] = '\0';
	if (!i)
		snprintf(out, size, "unknown");
}

int remote_profile__format(const struct remote_profile *profile, char *buf, size_t size)
{
	char comm[sizeof(profile->comm)], service[sizeof(profile->service_name)];
	char host[sizeof(profile->hostname)];
	int len;

	/* Values are kept on one line; the protocols sanitize further for their rules. */
	remote_sanitize(profile->comm, "", comm, sizeof(comm));
	remote_sanitize(profile->service_name, "", service, sizeof(service));
	remote_sanitize(profile->hostname, "", host, sizeof(host));
	len = snprintf(buf, size,
		       "kind=%s\npid=%" PRIu32 "\ncomm=%s\nservice_name=%s\nhostname=%s\n"
		       "start_ns=%" PRId64 "\nduration_ns=%" PRId64 "\n",
		       profile->off_cpu ? "off_cpu" : "cpu", profile->pid, comm, service, host,
		       profile->start_ns, profile->duration_ns);
	if (len < 0 || (size_t)len >= size)
		return -ENAMETOOLONG;
	return 0;
}

static bool parse_int64(const char *text, int64_t *ret_value)
{
	char *end;
	long long value;

	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return false;
	*ret_value = value;
	return true;
}

/* Copies a value that must fit whole. */
static bool copy_field(char *out, size_t size, const char *value)
{
	size_t len = strlen(value);

	if (len >= size)
		return false;
	memcpy(out, value, len + 1);
	return true;
}

int remote_profile__parse(const char *text, struct remote_profile *ret_profile)
{
	struct remote_profile profile = {};
	unsigned int seen = 0;
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n'), *equal;
		char key[32], value[256];
		size_t key_len, value_len;
		int64_t number;

		if (!end)
			end = line + strlen(line);
		equal = memchr(line, '=', (size_t)(end - line));
		if (!equal)
			return -EINVAL;
		key_len = (size_t)(equal - line);
		value_len = (size_t)(end - equal - 1);
		if (key_len >= sizeof(key) || value_len >= sizeof(value))
			return -EINVAL;
		memcpy(key, line, key_len);
		key[key_len] = '\0';
		memcpy(value, equal + 1, value_len);
		value[value_len] = '\0';
		line = *end ? end + 1 : end;

		if (!strcmp(key, "kind")) {
			if (strcmp(value, "cpu") && strcmp(value, "off_cpu"))
				return -EINVAL;
			profile.off_cpu = !strcmp(value, "off_cpu");
			seen |= 1;
		} else if (!strcmp(key, "pid")) {
			if (!parse_int64(value, &number) || number <= 0 || number > UINT32_MAX)
				return -EINVAL;
			profile.pid = (uint32_t)number;
			seen |= 2;
		} else if (!strcmp(key, "comm")) {
			if (!copy_field(profile.comm, sizeof(profile.comm), value))
				return -EINVAL;
			seen |= 4;
		} else if (!strcmp(key, "service_name")) {
			if (!copy_field(profile.service_name, sizeof(profile.service_name), value))
				return -EINVAL;
			seen |= 8;
		} else if (!strcmp(key, "hostname")) {
			if (!copy_field(profile.hostname, sizeof(profile.hostname), value))
				return -EINVAL;
			seen |= 16;
		} else if (!strcmp(key, "start_ns")) {
			if (!parse_int64(value, &profile.start_ns))
				return -EINVAL;
			seen |= 32;
		} else if (!strcmp(key, "duration_ns")) {
			if (!parse_int64(value, &profile.duration_ns) || profile.duration_ns < 0)
				return -EINVAL;
			seen |= 64;
		}
		/* Unknown keys are skipped: a newer kiln may add some. */
	}
	if (seen != 127)
		return -EINVAL;
	*ret_profile = profile;
	return 0;
}

static int progress_callback(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			     curl_off_t ulnow)
{
	const struct remote *remote = ctx;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return remote->opts.should_abort && remote->opts.should_abort(remote->opts.abort_ctx);
}

struct remote *remote__new(const struct remote_opts *opts)
{
	struct remote *remote;
	size_t len;

	if (!opts->url || (strncmp(opts->url, "http://", 7) && strncmp(opts->url, "https://", 8))) {
		errno = EINVAL;
		return NULL;
	}
	if (!curl_api_get()) {
		errno = ENOPKG; /* curl_api_load first */
		return NULL;
	}
	remote = calloc(1, sizeof(*remote));
	if (!remote)
		return NULL;
	remote->curl_api = curl_api_get();
	remote->opts = *opts;
	remote->https = !strncmp(opts->url, "https://", 8);
	remote->base_url = strdup(opts->url);
	remote->curl = remote->curl_api->easy_init();
	if (!remote->base_url || !remote->curl) {
		remote__free(remote);
		errno = ENOMEM;
		return NULL;
	}
	len = strlen(remote->base_url);
	while (len > 8 && remote->base_url[len - 1] == '/')
		remote->base_url[--len] = '\0';

	remote->curl_api->easy_setopt(remote->curl, CURLOPT_NOSIGNAL, 1L);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_ERRORBUFFER, remote->curl_error);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_CONNECTTIMEOUT_MS,
				      (long)opts->connect_timeout_ms);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_TIMEOUT_MS, (long)opts->timeout_ms);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_NOPROGRESS, 0L);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_XFERINFOFUNCTION, progress_callback);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_XFERINFODATA, remote);
	/* Only the scheme given: a redirect must not turn https into http. */
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_PROTOCOLS_STR,
				      remote->https ? "https" : "http");
	/*
	 * libcurl before 7.89 fails ("Error in the HTTP2 framing layer") when it
	 * reuses an HTTP/2 prior-knowledge connection (curl issue 10634, fixed by
	 * pull request 10643); Debian 12 ships 7.88.1. h2c gets a fresh
	 * connection per request there: one more TCP handshake per profile.
	 */
	if (opts->protocol == REMOTE_PARCA && !remote->https &&
	    remote->curl_api->version_info(CURLVERSION_NOW)->version_num < 0x075900)
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_FORBID_REUSE, 1L);
	if (opts->tls_ca)
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_CAINFO, opts->tls_ca);
	if (opts->tls_cert) {
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_SSLCERT, opts->tls_cert);
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_SSLKEY, opts->tls_key);
	}
	if (opts->tls_insecure_skip_verify) {
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return remote;
}

void remote__free(struct remote *remote)
{
	if (!remote)
		return;
	if (remote->curl)
		remote->curl_api->easy_cleanup(remote->curl);
	free(remote->base_url);
	free(remote);
}

/* The first line of a small credential file, without trailing whitespace. */
static int read_credential(const char *path, char *buf, size_t size)
{
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	if (len < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	len = (ssize_t)strlen(buf);
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	return len ? 0 : -ENODATA;
}

static size_t body_callback(char *data, size_t size, size_t count, void *ctx)
{
	struct http_response *response = ctx;
	size_t bytes = size * count, room = HTTP_BODY_KEPT - response->body_size;
	size_t kept = bytes < room ? bytes : room;

	memcpy(response->body + response->body_size, data, kept);
	response->body_size += kept;
	response->body[response->body_size] = '\0';
	return bytes;
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

/* Sees headers and, after the body, trailers: grpc-status comes in either. */
static size_t header_callback(char *data, size_t size, size_t count, void *ctx)
{
	struct http_response *response = ctx;
	size_t len = size * count, name_len, value_len;
	const char *colon = memchr(data, ':', len), *value;

	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* A new response (after 100 Continue or a redirect): forget the last one's. */
		response->grpc_status = -1;
		response->grpc_message[0] = '\0';
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
		char digits[8] = {};

		memcpy(digits, value,
		       value_len < sizeof(digits) - 1 ? value_len : sizeof(digits) - 1);
		response->grpc_status = atoi(digits);
	} else if (name_len == 12 && !strncasecmp(data, "grpc-message", 12)) {
		percent_decode(value, value_len, response->grpc_message,
			       sizeof(response->grpc_message));
	} else if (name_len == 11 && !strncasecmp(data, "retry-after", 11)) {
		char digits[16] = {};

		memcpy(digits, value,
		       value_len < sizeof(digits) - 1 ? value_len : sizeof(digits) - 1);
		/* Seconds only; an HTTP date falls back to our own backoff. */
		if (digits[0] >= '0' && digits[0] <= '9')
			response->retry_after_ms = strtoull(digits, NULL, 10) * 1000;
	}
	return len;
}

static int append_header(struct remote *remote, struct curl_slist **headers, const char *text)
{
	struct curl_slist *grown = remote->curl_api->slist_append(*headers, text);

	if (!grown)
		return -ENOMEM;
	*headers = grown;
	return 0;
}

int remote_http_post(struct remote *remote, const char *url, const char *const *extra,
		     size_t extra_count, bool http2, const void *body, size_t size,
		     struct http_response *ret_response)
{
	char credential[CREDENTIAL_MAX], header[CREDENTIAL_MAX + 32];
	struct http_response response = { .grpc_status = -1 };
	struct curl_slist *headers = NULL;
	int err = 0;

	credential[0] = header[0] = '\0';
	snprintf(remote->request_error, sizeof(remote->request_error), "out of memory");

	/* Read on every request, so a rotated token is picked up. */
	if (remote->opts.bearer_token_file) {
		err = read_credential(remote->opts.bearer_token_file, credential,
				      sizeof(credential));
		if (err) {
			snprintf(remote->request_error, sizeof(remote->request_error),
				 "reading --bearer-token-file %s: %s",
				 remote->opts.bearer_token_file, strerror(-err));
			goto cleanup;
		}
		snprintf(header, sizeof(header), "Authorization: Bearer %s", credential);
		err = append_header(remote, &headers, header);
		if (err)
			goto cleanup;
	}
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_USERPWD, NULL);
	if (remote->opts.basic_auth_file) {
		err = read_credential(remote->opts.basic_auth_file, credential, sizeof(credential));
		if (!err && !strchr(credential, ':'))
			err = -EINVAL;
		if (err) {
			snprintf(remote->request_error, sizeof(remote->request_error),
				 "reading --basic-auth-file %s: %s", remote->opts.basic_auth_file,
				 err == -EINVAL ? "not user:password" : strerror(-err));
			goto cleanup;
		}
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		remote->curl_api->easy_setopt(remote->curl, CURLOPT_USERPWD, credential);
	}
	for (size_t i = 0; i < remote->opts.header_count && !err; i++)
		err = append_header(remote, &headers, remote->opts.headers[i]);
	for (size_t i = 0; i < extra_count && !err; i++)
		err = append_header(remote, &headers, extra[i]);
	/* No "Expect: 100-continue" round trip before large bodies. */
	if (!err)
		err = append_header(remote, &headers, "Expect:");
	if (err)
		goto cleanup;

	remote->curl_error[0] = '\0';
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_URL, url);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_HTTPHEADER, headers);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_POST, 1L);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_POSTFIELDS, body);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_HTTP_VERSION,
				      !http2	      ? (long)CURL_HTTP_VERSION_NONE
				      : remote->https ? (long)CURL_HTTP_VERSION_2TLS
						      : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_WRITEFUNCTION, body_callback);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_WRITEDATA, &response);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_HEADERFUNCTION, header_callback);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_HEADERDATA, &response);
	response.code = remote->curl_api->easy_perform(remote->curl);
	remote->curl_api->easy_getinfo(remote->curl, CURLINFO_RESPONSE_CODE, &response.status);
	remote->curl_api->easy_getinfo(remote->curl, CURLINFO_HTTP_VERSION, &response.http_version);
	/* The list is freed below: the handle must not keep pointing at it. */
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_HTTPHEADER, NULL);
	remote->curl_api->easy_setopt(remote->curl, CURLOPT_USERPWD, NULL);
	*ret_response = response;

cleanup:
	explicit_bzero(credential, sizeof(credential));
	explicit_bzero(header, sizeof(header));
	remote->curl_api->slist_free_all(headers);
	return err;
}

enum remote_outcome remote_classify_http(long status)
{
	if (status >= 200 && status < 300)
		return REMOTE_DELIVERED;
	if (status == 408 || status == 429 || status >= 500 || status < 100)
		return REMOTE_RETRY;
	return REMOTE_REJECTED;
}

void remote_describe_failure(const struct remote *remote, const struct http_response *response,
			     struct remote_result *result)
{
	const char *text;
	size_t o = 0;

	if (response->code != CURLE_OK) {
		snprintf(result->message, sizeof(result->message), "%s",
			 remote->curl_error[0] ? remote->curl_error
					       : remote->curl_api->easy_strerror(response->code));
		return;
	}
	text = response->grpc_message[0] ? response->grpc_message : response->body;
	/* One line of printable text, whatever the server sent. */
	for (size_t i = 0; text[i] && o + 1 < sizeof(result->message); i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if (c < 0x20 || c >= 0x7f)
			c = '?';
		if (c == ' ' && (o == 0 || result->message[o - 1] == ' '))
			continue;
		result->message[o++] = (char)c;
	}
	while (o && result->message[o - 1] == ' ')
		o--;
	result->message[o] = '\0';
	if (!o)
		snprintf(result->message, sizeof(result->message), "HTTP %ld with no message",
			 response->status);
}

int remote__send(struct remote *remote, const struct remote_profile *profile, const uint8_t *data,
		 size_t size, struct remote_result *ret_result)
{
	return remote->opts.protocol == REMOTE_PARCA
		       ? remote_parca_send(remote, profile, data, size, ret_result)
		       : remote_pyroscope_send(remote, profile, data, size, ret_result);
}
