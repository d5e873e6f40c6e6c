/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files of the flame graph page, embedded in kiln at build time
 * (scripts/embed-assets.sh): kiln's own page under "ui/", and
 * speedscope's static build under "viewer/" when `npm ci` installed it
 * in agent/http/ui/ before the build.
 */
#ifndef KILN_HTTP_UI_ASSETS_H
#define KILN_HTTP_UI_ASSETS_H

#include <stdint.h>

struct ui_asset {
	const char *path; /* "ui/index.html", "viewer/speedscope-XXXX.js" */
	const unsigned char *data;
	uint64_t size;
};

/* ui_asset_count entries, then one of zeros. */
extern const struct ui_asset ui_assets[];
extern const uint64_t ui_asset_count;

#endif /* KILN_HTTP_UI_ASSETS_H */
