// SPDX-License-Identifier: Apache-2.0
/* The output directory's file-name grammar: written and read back here only. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/array.h"
#include "agent/output/profile_name.h"

#define PROFILE_SUFFIX ".pb.gz"

/* By enum profile_kind. */
static const char *const prefixes[] = { "cpu-", "offcpu-" };

_Static_assert(sizeof("offcpu-") - 1 + PROFILE_STAMP_LEN + sizeof(PROFILE_SUFFIX) <=
		       PROFILE_NAME_SIZE,
	       "the longest name fits PROFILE_NAME_SIZE");

void profile_stamp_format(int64_t start_ns, char stamp[PROFILE_STAMP_SIZE])
{
	time_t start_s = (time_t)(start_ns / 1000000000);
	struct tm tm;

	if (!gmtime_r(&start_s, &tm) ||
	    strftime(stamp, PROFILE_STAMP_SIZE, "%Y%m%dT%H%M%SZ", &tm) != PROFILE_STAMP_LEN)
		snprintf(stamp, PROFILE_STAMP_SIZE, "00000000T000000Z"); /* no 4-digit year */
}

void profile_name_format(enum profile_kind kind, int64_t start_ns, char name[PROFILE_NAME_SIZE])
{
	char stamp[PROFILE_STAMP_SIZE];

	profile_stamp_format(start_ns, stamp);
	snprintf(name, PROFILE_NAME_SIZE, "%s%s" PROFILE_SUFFIX, prefixes[kind], stamp);
}

/* Eight digits, 'T', six digits, 'Z'. */
static bool is_stamp(const char *text)
{
	for (size_t i = 0; i < PROFILE_STAMP_LEN; i++) {
		char c = text[i];
		bool ok = i == 8 ? c == 'T' : i == 15 ? c == 'Z' : c >= '0' && c <= '9';

		if (!ok)
			return false;
	}
	return true;
}

int profile_name_parse(const char *name, enum profile_kind *ret_kind,
		       char ret_stamp[PROFILE_STAMP_SIZE])
{
	for (size_t kind = 0; kind < ARRAY_SIZE(prefixes); kind++) {
		size_t len = strlen(prefixes[kind]);
		const char *stamp = name + len;

		if (strncmp(name, prefixes[kind], len) ||
		    strlen(stamp) != PROFILE_STAMP_LEN + strlen(PROFILE_SUFFIX) ||
		    strcmp(stamp + PROFILE_STAMP_LEN, PROFILE_SUFFIX) || !is_stamp(stamp))
			continue;
		*ret_kind = (enum profile_kind)kind;
		memcpy(ret_stamp, stamp, PROFILE_STAMP_LEN);
		ret_stamp[PROFILE_STAMP_LEN] = '\0';
		return 0;
	}
	return -EINVAL;
}
