// SPDX-License-Identifier: Apache-2.0
/* The spool's record format: a profile's labels as "key=value" lines, and reading them back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/labels.h"
#include "agent/push/record.h"

#define LABEL_KEY_PREFIX "label."

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

int push_record__add_label(struct push_record *record, const char *name, const char *value)
{
	struct push_label *label;
	size_t len = strlen(value);

	if (!label_name_is_valid(name) || strlen(name) >= PUSH_LABEL_NAME_SIZE)
		return -EINVAL;
	if (record->label_count == PUSH_RECORD_MAX_LABELS)
		return -ENOSPC;
	label = &record->labels[record->label_count++];
	snprintf(label->name, sizeof(label->name), "%s", name);
	if (len >= sizeof(label->value)) {
		/* Cut between characters: the protocols send UTF-8. */
		len = sizeof(label->value) - 1;
		while (len && ((unsigned char)value[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(label->value, value, len);
	label->value[len] = '\0';
	return len < strlen(value);
}

const char *push_record__label(const struct push_record *record, const char *name)
{
	for (uint32_t i = 0; i < record->label_count && i < PUSH_RECORD_MAX_LABELS; i++)
		if (!strcmp(record->labels[i].name, name))
			return record->labels[i].value;
	return NULL;
}

/* A value on one line: '%', controls and bytes past ASCII as %XX. */
static size_t escape_value(const char *value, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if (*c >= 0x20 && *c < 0x7f && *c != '%') {
			out[n++] = (char)*c;
			continue;
		}
		out[n++] = '%';
		out[n++] = hex[*c >> 4];
		out[n++] = hex[*c & 15];
	}
	out[n] = '\0';
	return n;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undoes escape_value in place; false for a malformed escape or a NUL. */
static bool unescape_value(char *value)
{
	char *out = value;

	for (const char *c = value; *c; c++) {
		int high, low;

		if (*c != '%') {
			*out++ = *c;
			continue;
		}
		high = hex_digit(c[1]);
		low = high < 0 ? -1 : hex_digit(c[2]);
		if (low < 0 || (high | low) == 0)
			return false;
		*out++ = (char)(high << 4 | low);
		c += 2;
	}
	*out = '\0';
	return true;
}

/* Appends the labels' lines; false when they do not fit. */
static bool format_labels(const struct push_record *record, char *buf, size_t size, size_t len)
{
	char escaped[3 * PUSH_LABEL_VALUE_SIZE];

	for (uint32_t i = 0; i < record->label_count && i < PUSH_RECORD_MAX_LABELS; i++) {
		const struct push_label *label = &record->labels[i];
		int n;

		escape_value(label->value, escaped);
		n = snprintf(buf + len, size - len, LABEL_KEY_PREFIX "%s=%s\n", label->name,
			     escaped);
		if (n < 0 || (size_t)n >= size - len)
			return false;
		len += (size_t)n;
	}
	return true;
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
		       "start_ns=%" PRId64 "\nduration_ns=%" PRId64 "\n%s",
		       record->off_cpu ? "off_cpu" : "cpu", record->pid, comm, service, host,
		       record->start_ns, record->duration_ns,
		       record->window_request ? "payload=otlp_request\n" : "");
	if (len < 0 || (size_t)len >= size || !format_labels(record, buf, size, (size_t)len))
		return -ENAMETOOLONG;
	return 0;
}

/* A "label.NAME" line's label, added to the record; false when malformed. */
static bool parse_label(struct push_record *record, const char *name, char *value)
{
	if (!unescape_value(value) || !value[0] || push_record__label(record, name))
		return false;
	return push_record__add_label(record, name, value) == 0;
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
		char key[sizeof(LABEL_KEY_PREFIX) + PUSH_LABEL_NAME_SIZE];
		char value[3 * PUSH_LABEL_VALUE_SIZE];
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
			/* 0 only for a whole window's request, of many processes (checked below). */
			if (!parse_int64(value, &number) || number < 0 || number > UINT32_MAX)
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
		} else if (!strcmp(key, "payload")) {
			/* Absent: one process's pprof profile. */
			if (strcmp(value, "otlp_request"))
				return -EINVAL;
			record.window_request = true;
		} else if (!strncmp(key, LABEL_KEY_PREFIX, strlen(LABEL_KEY_PREFIX))) {
			if (!parse_label(&record, key + strlen(LABEL_KEY_PREFIX), value))
				return -EINVAL;
		}
		/* Unknown keys are skipped: a newer kiln may add some. */
	}
	if (seen != 127 || (!record.pid && !record.window_request))
		return -EINVAL;
	*ret_record = record;
	return 0;
}
