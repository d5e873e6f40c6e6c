/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A spooled profile's labels: which process and window it is, what the
 * protocols label it with. The spool stores them beside the profile as
 * text ("key=value" lines, relabeling's labels as "label.NAME=VALUE" with
 * the value %-escaped), so a record outlives the kiln that wrote it.
 */
#ifndef KILN_PUSH_RECORD_H
#define KILN_PUSH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What relabeling gave a process (agent/metadata): at most
 * PUSH_RECORD_MAX_LABELS labels, names as Prometheus allows them, values
 * cut to fit. Backends limit them too (Pyroscope: 2 KiB values, 30 labels
 * by default).
 */
#define PUSH_RECORD_MAX_LABELS 24
#define PUSH_LABEL_NAME_SIZE 64
#define PUSH_LABEL_VALUE_SIZE 256

struct push_label {
	char name[PUSH_LABEL_NAME_SIZE];
	char value[PUSH_LABEL_VALUE_SIZE];
};

/*
 * One process's profile of one window; or, with window_request, a whole
 * window's request of a protocol that sends one (pid 0, comm the number of
 * processes it holds).
 */
struct push_record {
	bool off_cpu;
	bool window_request; /* the payload: an OTLP request, not a pprof profile */
	uint32_t pid;
	char comm[32]; /* the process name */
	char service_name[128]; /* --service-name, or the process name */
	char hostname[256];
	int64_t start_ns; /* window start, Unix time */
	int64_t duration_ns;
	uint32_t label_count;
	struct push_label labels[PUSH_RECORD_MAX_LABELS]; /* sorted by name, as given */
};

/* The longest text push_record__format writes (every label's value escaped whole). */
#define PUSH_RECORD_TEXT_MAX                                                                       \
	(1024 + PUSH_RECORD_MAX_LABELS * (PUSH_LABEL_NAME_SIZE + 3 * PUSH_LABEL_VALUE_SIZE + 8))

/*
 * Adds a label: a value longer than fits is cut (returns 1 then). Returns
 * 0, -EINVAL for a name Prometheus would refuse or one too long, -ENOSPC
 * when the record holds PUSH_RECORD_MAX_LABELS already.
 */
int push_record__add_label(struct push_record *record, const char *name, const char *value);
/* The value of a label the record holds, or NULL. */
const char *push_record__label(const struct push_record *record, const char *name);

/* The text form, NUL-terminated. Returns 0, or -ENAMETOOLONG when size is too small. */
int push_record__format(const struct push_record *record, char *buf, size_t size);
/* Returns 0, or -EINVAL when a field is missing or malformed (ret_record untouched then). */
int push_record_parse(const char *text, struct push_record *ret_record);

/*
 * Copies text into out (size bytes, NUL-terminated) keeping printable ASCII
 * except the characters in reject, which like every other byte become '_'.
 * An empty result becomes "unknown".
 */
void push_label_sanitize(const char *text, const char *reject, char *out, size_t size);

#endif /* KILN_PUSH_RECORD_H */
