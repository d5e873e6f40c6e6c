/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A backend's push protocol: how one spooled profile becomes one request
 * on the HTTP transport, and how its answer becomes an outcome. One file
 * per protocol defines an entry; the table below lists them by the name
 * --remote-protocol takes.
 */
#ifndef KILN_PUSH_PROTOCOL_H
#define KILN_PUSH_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/push/record.h"
#include "agent/push/result.h"

struct http_client;

struct push_protocol {
	const char *name; /* --remote-protocol's word */
	const char *title; /* for messages: "Pyroscope" */
	/*
	 * Sends data (a gzip-compressed pprof profile) labelled from record.
	 * Returns 0 with ret_result filled (whatever the outcome), or a
	 * negative errno when the request could not even be built.
	 */
	int (*send)(struct http_client *http, const struct push_record *record, const uint8_t *data,
		    size_t size, struct push_result *ret_result);
	/*
	 * One request a window for all its processes (data: the encoded
	 * request, gzip-compressed), not one profile a process.
	 */
	bool per_window;
	/* The same protocol over gRPC (--otlp-transport grpc), or NULL. */
	const struct push_protocol *grpc;
};

/* Pyroscope: POST /ingest, the pprof as the body, labels in the name. */
extern const struct push_protocol push_protocol_pyroscope;
/* Parca: unary gRPC ProfileStoreService/WriteRaw over HTTP/2. */
extern const struct push_protocol push_protocol_parca;

/*
 * OpenTelemetry's: the window's ExportProfilesServiceRequest, OTLP/HTTP
 * (POST /v1development/profiles) or OTLP/gRPC (ProfilesService/Export).
 */
extern const struct push_protocol push_protocol_otlp;
extern const struct push_protocol push_protocol_otlp_grpc;

/* Every protocol, the default first; NULL-terminated. */
extern const struct push_protocol *const push_protocols[];

/* The protocol called name, or NULL. */
const struct push_protocol *push_protocol_find(const char *name);

#endif /* KILN_PUSH_PROTOCOL_H */
