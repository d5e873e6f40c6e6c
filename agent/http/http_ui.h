/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flame graph page on kiln's HTTP endpoint: "/" (kiln's page, which
 * lists windows and filters), "/viewer/" (speedscope, embedded), the
 * windows as pprof ("/profiles/NAME", "/profiles/latest", "/profiles/last"
 * for the last minutes merged; each with filters: pid, tid, comm,
 * container, label) and what the page reads ("/api/windows",
 * "/api/processes"). Read-only: only embedded files and kiln's own
 * windows, every query parameter bounded, answers with a
 * Content-Security-Policy and nosniff.
 */
#ifndef KILN_HTTP_UI_H
#define KILN_HTTP_UI_H

#include <stdbool.h>

#include <microhttpd.h>

#include "agent/http/profile_windows.h"

/* A query parameter's value longer than this is refused (400). */
#define HTTP_UI_MAX_PARAMETER 128
/* "minutes" at most this: a day. */
#define HTTP_UI_MAX_MINUTES 1440
/* At most this many windows merged, and bytes of them read, for one answer. */
#define HTTP_UI_MAX_MERGED_WINDOWS 1440
#define HTTP_UI_MAX_MERGED_BYTES (256ULL << 20)
/* A window inflated to more than this is refused. */
#define HTTP_UI_MAX_PROFILE_BYTES (256 << 20)
/* /api/windows lists at most this many, newest first. */
#define HTTP_UI_MAX_LISTED 500

/* Whether speedscope was embedded at build time. */
bool http_ui_has_viewer(void);

/*
 * Answers url if it is one of the page's; false (nothing queued) when it
 * is not, for the caller's 404. *ret_result: what MHD_queue_response said.
 */
bool http_ui__answer(struct profile_windows *windows, struct MHD_Connection *connection,
		     const char *url, enum MHD_Result *ret_result);

#endif /* KILN_HTTP_UI_H */
