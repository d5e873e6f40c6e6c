/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OTLP profiles (OpenTelemetry's profiles signal, opentelemetry-proto
 * v1.11.0): a window's processes as one ExportProfilesServiceRequest, and
 * reading what the server answers. The protocol entries are in protocol.h.
 */
#ifndef KILN_PUSH_OTLP_H
#define KILN_PUSH_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/push/record.h"
#include "agent/push/result.h"

/* One window's request being built: a ResourceProfiles per process. */
struct otlp_window;

/* NULL with errno set. off_cpu: the window's profiles are off-CPU ones. */
struct otlp_window *otlp_window__new(bool off_cpu);
void otlp_window__free(struct otlp_window *window);

/*
 * Adds one process's pprof profile (serialized, not compressed) as a ResourceProfiles,
 * its attributes named by OpenTelemetry's semantic conventions from record
 * (service.name, host.name, process.pid, process.executable.name, the
 * relabeled labels: container.id, k8s.pod.name...) and executable (its
 * path, NULL when unknown: process.executable.path and .build_id.gnu).
 * Returns 0, -EINVAL for a profile that does not read, or -ENOMEM.
 */
int otlp_window__add(struct otlp_window *window, const struct push_record *record,
		     const char *executable, const uint8_t *pprof, size_t size);

/* Processes added. */
size_t otlp_window__count(const struct otlp_window *window);

/* The request, serialized and gzip-compressed, malloc'd. Returns 0 or a negative errno. */
int otlp_window__encode(struct otlp_window *window, uint8_t **ret_data, size_t *ret_size);

/*
 * An ExportProfilesServiceResponse: its partial_success's rejected
 * profiles and message go into result. 0, or -EINVAL when it does not read.
 */
int otlp_read_response(const uint8_t *data, size_t size, struct push_result *result);

/* A google.rpc.Status's message (OTLP/HTTP's error body). 0, -EINVAL, or -ENOENT for none. */
int otlp_read_status(const uint8_t *data, size_t size, char *message, size_t message_size);

#endif /* KILN_PUSH_OTLP_H */
