// SPDX-License-Identifier: Apache-2.0
/* Finds the verifier's reason in its log: it follows the instruction it refused. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agent/sampling/verifier_log.h"

/* "27: (85) call ..." and "; R1=ctx() @ x.c:12" aside: "12: (b7) r0 = 0". */
static bool is_instruction(const char *line, const char *end)
{
	const char *cursor = line;

	while (cursor < end && isdigit((unsigned char)*cursor))
		cursor++;
	return cursor > line && cursor < end && *cursor == ':';
}

void verifier_log__reason(const char *log, char *reason, size_t size)
{
	const char *line = log, *found = NULL, *next;

	if (!size)
		return;
	for (; *line; line = next) {
		const char *newline = strchr(line, '\n');

		next = newline ? newline + 1 : line + strlen(line);
		if (is_instruction(line, next) && *next)
			found = next;
	}
	if (!found)
		found = log;
	snprintf(reason, size, "%.*s", (int)strcspn(found, "\n"), found);
}
