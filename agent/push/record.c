// SPDX-License-Identifier: Apache-2.0
/* The spool's record format: a profile's labels as "key=value" lines, and reading them back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/push/record.h"

void push_label_sanitize(const char *text, const char *reject, char *out, size_t size)
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

int push_record__format(const struct push_record *record, char *buf, size_t size)
{
	char comm[sizeof(record->comm)], service[sizeof(record->service_name)];
	char host[sizeof(record->hostname)];
	int len;

	/* Values are kept on one line; the protocols sanitize further for their rules. */
	push_label_sanitize(record->comm, "", comm, sizeof(comm));
	push_label_sanitize(record->service_name, "", service, sizeof(service));
	push_label_sanitize(record->hostname, "", host, sizeof(host));
	len = snprintf(buf, size,
		       "kind=%s\npid=%" PRIu32 "\ncomm=%s\nservice_name=%s\nhostname=%s\n"
		       "start_ns=%" PRId64 "\nduration_ns=%" PRId64 "\n",
		       record->off_cpu ? "off_cpu" : "cpu", record->pid, comm, service, host,
		       record->start_ns, record->duration_ns);
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

int push_record_parse(const char *text, struct push_record *ret_record)
{
	struct push_record record = {};
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
			record.off_cpu = !strcmp(value, "off_cpu");
			seen |= 1;
		} else if (!strcmp(key, "pid")) {
			if (!parse_int64(value, &number) || number <= 0 || number > UINT32_MAX)
				return -EINVAL;
			record.pid = (uint32_t)number;
			seen |= 2;
		} else if (!strcmp(key, "comm")) {
			if (!copy_field(record.comm, sizeof(record.comm), value))
				return -EINVAL;
			seen |= 4;
		} else if (!strcmp(key, "service_name")) {
			if (!copy_field(record.service_name, sizeof(record.service_name), value))
				return -EINVAL;
			seen |= 8;
		} else if (!strcmp(key, "hostname")) {
			if (!copy_field(record.hostname, sizeof(record.hostname), value))
				return -EINVAL;
			seen |= 16;
		} else if (!strcmp(key, "start_ns")) {
			if (!parse_int64(value, &record.start_ns))
				return -EINVAL;
			seen |= 32;
		} else if (!strcmp(key, "duration_ns")) {
			if (!parse_int64(value, &record.duration_ns) || record.duration_ns < 0)
				return -EINVAL;
			seen |= 64;
		}
		/* Unknown keys are skipped: a newer kiln may add some. */
	}
	if (seen != 127)
		return -EINVAL;
	*ret_record = record;
	return 0;
}
