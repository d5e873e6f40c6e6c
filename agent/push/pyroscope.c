// SPDX-License-Identifier: Apache-2.0
/* Pyroscope: POST /ingest?name=SERVICE{labels}&from=&until=&format=pprof, the body a pprof. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/push/http.h"
#include "agent/push/protocol.h"
#include "agent/push/pyroscope.h"

/* Pyroscope's service names allow letters, digits and "_.-/". */
static bool service_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("_.-/", c));
}

bool pyroscope_service_name_valid(const char *name)
{
	for (const char *c = name; *c; c++)
		if (!service_name_char(*c))
			return false;
	return true;
}

/* A service name Pyroscope takes: anything else becomes '_'. */
static void service_name(const char *text, char *out, size_t size)
{
	size_t i = 0;

	for (; text[i] && i + 1 < size; i++)
		out[i] = service_name_char(text[i]) ? text[i] : '_';
	out[i] = '\0';
	if (!i)
		snprintf(out, size, "unknown");
}

static int pyroscope_send(struct http_client *http, const struct push_record *record,
			  const uint8_t *data, size_t size, struct push_result *ret_result)
{
	/* A label value ends at ',' or '}' in the name's syntax: those may not appear in it. */
	static const char value_reject[] = ",{}=";
	static const char *const headers[] = { "Content-Type: application/octet-stream" };
	char service[sizeof(record->service_name)], host[sizeof(record->hostname)];
	char comm[sizeof(record->comm)], name[640], escaped[3 * sizeof(name)], path[2048];
	int64_t from = record->start_ns / 1000000000;
	int64_t until = (record->start_ns + record->duration_ns + 999999999) / 1000000000;
	struct http_response response;
	int err;

	service_name(record->service_name, service, sizeof(service));
	push_label_sanitize(record->hostname, value_reject, host, sizeof(host));
	push_label_sanitize(record->comm, value_reject, comm, sizeof(comm));
	if (until <= from)
		until = from + 1;
	snprintf(name, sizeof(name), "%s{service_name=%s,hostname=%s,pid=%" PRIu32 ",comm=%s}",
		 service, service, host, record->pid, comm);
	err = http_escape(name, escaped, sizeof(escaped));
	if (err)
		return err;
	if (snprintf(path, sizeof(path),
		     "/ingest?name=%s&from=%" PRId64 "&until=%" PRId64 "&format=pprof&spyName=kiln",
		     escaped, from, until) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = http_client__post(http, path, headers, 1, false, data, size, &response);
	if (err)
		return err;
	http_response__result(&response, ret_result);
	return 0;
}

const struct push_protocol push_protocol_pyroscope = {
	.name = "pyroscope",
	.title = "Pyroscope",
	.send = pyroscope_send,
};
