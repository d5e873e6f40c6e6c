/* SPDX-License-Identifier: Apache-2.0 */
/* Pyroscope's rule for service names, for --service-name's check as well as for sending. */
#ifndef KILN_PUSH_PYROSCOPE_H
#define KILN_PUSH_PYROSCOPE_H

#include <stdbool.h>

/* Letters, digits and "_.-/" only (an empty name is sent as "unknown"). */
bool pyroscope_service_name_valid(const char *name);

#endif /* KILN_PUSH_PYROSCOPE_H */
