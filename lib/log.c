// SPDX-License-Identifier: Apache-2.0
/* The agent's log: "kiln: level: message" lines on stderr. */
#include <stdarg.h>
#include <stdio.h>

#include "lib/log.h"

static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	current_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

void log_message(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so concurrent writers cannot interleave within a line. */
	fprintf(stderr, "kiln: %s: %s\n", names[level], line);
}
