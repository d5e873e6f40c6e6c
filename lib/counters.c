// SPDX-License-Identifier: Apache-2.0
/* Counter tables to text: each counter's value put into its words, joined into a line. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/counters.h"

uint64_t counter__value(const struct counter *counter, const void *const *sources)
{
	uint64_t value;

	memcpy(&value, (const char *)sources[counter->source] + counter->offset, sizeof(value));
	return value;
}

static void format_value(const struct counter *counter, uint64_t value, char *buf, size_t size)
{
	switch (counter->shown) {
	case COUNTER_SHOWN_SECONDS:
		snprintf(buf, size, "%.3f", value / 1e9);
		break;
	case COUNTER_SHOWN_MILLISECONDS:
		snprintf(buf, size, "%" PRIu64, value / 1000000);
		break;
	case COUNTER_SHOWN_MIB:
		snprintf(buf, size, "%" PRIu64, value >> 20);
		break;
	case COUNTER_SHOWN_AS_IS:
	default:
		snprintf(buf, size, "%" PRIu64, value);
		break;
	}
}

int counter_text__format(const char *text, const char *value, char *buf, size_t size)
{
	size_t length = 0, value_length = strlen(value);

	for (const char *c = text; *c; c++) {
		const char *part = *c == '%' ? value : c;
		size_t part_length = *c == '%' ? value_length : 1;

		for (size_t i = 0; i < part_length; i++, length++)
			if (length + 1 < size)
				buf[length] = part[i];
	}
	if (size)
		buf[length < size ? length : size - 1] = '\0';
	return (int)length;
}

/* Appends to buf at *length, which keeps counting past size as snprintf does. */
static void append(char *buf, size_t size, size_t *length, const char *text)
{
	int added = snprintf(*length < size ? buf + *length : NULL,
			     *length < size ? size - *length : 0, "%s", text);

	*length += added > 0 ? (size_t)added : 0;
}

static const char *const joins[] = {
	[COUNTER_JOIN_COMMA] = ", ",
	[COUNTER_JOIN_CLAUSE] = "; ",
	[COUNTER_JOIN_SPACE] = " ",
};

int counter_line__format(const struct counter_line *line, const void *const *sources,
			 const char *prefix, const char *suffix, char *buf, size_t size)
{
	size_t length = 0;

	if (size)
		buf[0] = '\0';
	append(buf, size, &length, line->prefix ? line->prefix : prefix ? prefix : "");
	append(buf, size, &length, ": ");
	for (unsigned int i = 0; i < line->count; i++) {
		const struct counter *counter = &line->counters[i];
		char value[32], text[256];

		format_value(counter, counter__value(counter, sources), value, sizeof(value));
		counter_text__format(counter->text, value, text, sizeof(text));
		if (i)
			append(buf, size, &length, joins[counter->join]);
		append(buf, size, &length, text);
	}
	if (suffix)
		append(buf, size, &length, suffix);
	return (int)length;
}
