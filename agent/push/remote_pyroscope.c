// SPDX-License-Identifier: Apache-2.0
/* Pyroscope: POST /ingest?name=SERVICE{labels}&from=&until=&format=pprof, the body a pprof. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/push/pyroscope_name.h"
#include "agent/push/remote_internal.h"

/* The service name as Pyroscope takes it: what its rule forbids becomes '_'. */
static void service_name(const char *text, char *out, size_t size)
{
	size_t i = 0;

	for (; text[i] && i + 1 < size; i++)
		out[i] = pyroscope_name_char(text[i]) ? text[i] : '_';
	out[i] = '\0';
	if (!i)
		snprintf(out, size, "unknown");
}

int remote_pyroscope_send(struct remote *remote, const struct remote_profile *profile,
			  const uint8_t *data, size_t size, struct remote_result *ret_result)
{
	/* A label value ends at ',' or '}' in the name's syntax: those may not appear in it. */
	static const char value_reject[] = ",{}=";
	char service[sizeof(profile->service_name)], host[sizeof(profile->hostname)];
	char comm[sizeof(profile->comm)], name[640], url[2048];
	struct remote_result result = { .grpc_status = -1 };
	struct http_response response;
	static const char *const extra[] = { "Content-Type: application/octet-stream" };
	int64_t from = profile->start_ns / 1000000000;
	int64_t until = (profile->start_ns + profile->duration_ns + 999999999) / 1000000000;
	char *escaped = NULL;
	int err;

	service_name(profile->service_name, service, sizeof(service));
	remote_sanitize(profile->hostname, value_reject, host, sizeof(host));
	remote_sanitize(profile->comm, value_reject, comm, sizeof(comm));
	if (until <= from)
		until = from + 1;
	snprintf(name, sizeof(name), "%s{service_name=%s,hostname=%s,pid=%" PRIu32 ",comm=%s}",
		 service, service, host, profile->pid, comm);
	escaped = remote->curl_api->easy_escape(remote->curl, name, 0);
	if (!escaped)
		return -ENOMEM;
	if (snprintf(url, sizeof(url),
		     "%s/ingest?name=%s&from=%" PRId64 "&until=%" PRId64
		     "&format=pprof&spyName=kiln",
		     remote->base_url, escaped, from, until) >= (int)sizeof(url)) {
		err = -ENAMETOOLONG;
		goto cleanup;
	}
	err = remote_http_post(remote, url, extra, 1, false, data, size, &response);
	if (err) {
		/* Credentials unreadable just now: they may be back by the next try. */
		result.outcome = REMOTE_RETRY;
		snprintf(result.message, sizeof(result.message), "%s", remote->request_error);
		err = 0;
		*ret_result = result;
		goto cleanup;
	}
	result.http_status = response.code == CURLE_OK ? response.status : 0;
	result.retry_after_ms = response.retry_after_ms;
	result.outcome =
		response.code != CURLE_OK ? REMOTE_RETRY : remote_classify_http(response.status);
	if (result.outcome != REMOTE_DELIVERED)
		remote_describe_failure(remote, &response, &result);
	*ret_result = result;

cleanup:
	remote->curl_api->free(escaped);
	return err;
}
