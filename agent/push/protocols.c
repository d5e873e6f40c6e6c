// SPDX-License-Identifier: Apache-2.0
/* The push protocols kiln speaks: one row per protocol file. */
#include <string.h>

#include "agent/push/protocol.h"

const struct push_protocol *const push_protocols[] = {
	&push_protocol_pyroscope,
	&push_protocol_parca,
	&push_protocol_otlp,
	NULL,
};

const struct push_protocol *push_protocol_find(const char *name)
{
	for (size_t i = 0; push_protocols[i]; i++)
		if (!strcmp(push_protocols[i]->name, name))
			return push_protocols[i];
	return NULL;
}
