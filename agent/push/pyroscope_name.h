/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pyroscope's rule for service names, in one place: --service-name is checked
 * against it, and process names pushed as service names are made to fit it.
 */
#ifndef KILN_PYROSCOPE_NAME_H
#define KILN_PYROSCOPE_NAME_H

#include <stdbool.h>
#include <string.h>

/* Letters, digits and "_.-/": what Pyroscope allows in a service name. */
static inline bool pyroscope_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("_.-/", c));
}

/* Whether every character of name is allowed. */
static inline bool pyroscope_name_valid(const char *name)
{
	for (; *name; name++)
		if (!pyroscope_name_char(*name))
			return false;
	return true;
}

#endif /* KILN_PYROSCOPE_NAME_H */
