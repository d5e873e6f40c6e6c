// SPDX-License-Identifier: Apache-2.0
/* Pyroscope: POST /ingest?name=SERVICE{labels}&from=&until=&format=pprof, the body a pprof. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Labels kiln sets itself; a relabeling label of the same name is not sent twice. */
static bool builtin_label(const char *name)
{
	return !strcmp(name, "service_name") || !strcmp(name, "hostname") || !strcmp(name, "pid") ||
	       !strcmp(name, "comm");
}

/* The longest name: the built-in labels, then every relabeling label whole. */
#define NAME_MAX_BYTES                                                                             \
	(1024 + PUSH_RECORD_MAX_LABELS * (PUSH_LABEL_NAME_SIZE + PUSH_LABEL_VALUE_SIZE + 2))

/*
 * The ingest name, "SERVICE{service_name=SERVICE,hostname=H,pid=P,comm=C,...}",
 * with the relabeling labels after kiln's own. A label value ends at ',' or
 * '}' in that syntax: those may not appear in one.
 */
static void ingest_name(const struct push_record *record, char *name)
{
	static const char value_reject[] = ",{}=";
	char service[sizeof(record->service_name)], host[sizeof(record->hostname)];
	char comm[sizeof(record->comm)], value[PUSH_LABEL_VALUE_SIZE];
	size_t len;

	service_name(record->service_name, service, sizeof(service));
	push_label_sanitize(record->hostname, value_reject, host, sizeof(host));
	push_label_sanitize(record->comm, value_reject, comm, sizeof(comm));
	len = (size_t)snprintf(name, NAME_MAX_BYTES,
			       "%s{service_name=%s,hostname=%s,pid=%" PRIu32 ",comm=%s", service,
			       service, host, record->pid, comm);
	for (uint32_t i = 0; i < record->label_count && i < PUSH_RECORD_MAX_LABELS; i++) {
		const struct push_label *label = &record->labels[i];

		if (builtin_label(label->name))
			continue;
		push_label_sanitize(label->value, value_reject, value, sizeof(value));
		len += (size_t)snprintf(name + len, NAME_MAX_BYTES - len, ",%s=%s", label->name,
					value);
	}
	snprintf(name + len, NAME_MAX_BYTES - len, "}");
}

static int pyroscope_send(struct http_client *http, const struct push_record *record,
			  const uint8_t *data, size_t size, struct push_result *ret_result)
{
	static const char *const headers[] = { "Content-Type: application/octet-stream" };
	size_t escaped_size = 3 * NAME_MAX_BYTES, path_size = escaped_size + 256;
	char *name = malloc(NAME_MAX_BYTES), *escaped = malloc(escaped_size);
	char *path = malloc(path_size);
	int64_t from = record->start_ns / 1000000000;
	int64_t until = (record->start_ns + record->duration_ns + 999999999) / 1000000000;
	struct http_response response;
	int err = -ENOMEM;

	if (!name || !escaped || !path)
		goto cleanup;
	if (until <= from)
		until = from + 1;
	ingest_name(record, name);
	err = http_escape(name, escaped, escaped_size);
	if (err)
		goto cleanup;
	if (snprintf(path, path_size,
		     "/ingest?name=%s&from=%" PRId64 "&until=%" PRId64 "&format=pprof&spyName=kiln",
		     escaped, from, until) >= (int)path_size) {
		err = -ENAMETOOLONG;
		goto cleanup;
	}
	err = http_client__post(http, path, headers, 1, false, data, size, &response);
	if (!err)
		http_response__result(&response, ret_result);
cleanup:
	free(name);
	free(escaped);
	free(path);
	return err;
}

const struct push_protocol push_protocol_pyroscope = {
	.name = "pyroscope",
	.title = "Pyroscope",
	.send = pyroscope_send,
};
