/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A spooled profile's labels: which process and window it is, what the
 * protocols label it with. The spool stores them beside the profile as
 * text ("key=value" lines), so a record outlives the kiln that wrote it.
 */
#ifndef KILN_PUSH_RECORD_H
#define KILN_PUSH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One process's profile of one window. */
struct push_record {
	bool off_cpu;
	uint32_t pid;
	char comm[32]; /* the process name */
	char service_name[128]; /* --service-name, or the process name */
	char hostname[256];
	int64_t start_ns; /* window start, Unix time */
	int64_t duration_ns;
};

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
