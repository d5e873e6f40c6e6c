/* SPDX-License-Identifier: Apache-2.0 */
/* Parca's request, apart from sending it: what the tests decode. */
#ifndef KILN_PUSH_PARCA_H
#define KILN_PUSH_PARCA_H

#include <stddef.h>
#include <stdint.h>

#include "agent/push/http.h"
#include "agent/push/record.h"

/*
 * The gRPC message (prefix, then a WriteRawRequest) of one series holding
 * the profile data, labelled __name__, node, pid and comm from record;
 * malloc'd. Returns 0 or a negative errno.
 */
int parca_encode_write_raw(const struct push_record *record, const uint8_t *data, size_t size,
			   uint8_t **ret_body, size_t *ret_size);

#endif /* KILN_PUSH_PARCA_H */
