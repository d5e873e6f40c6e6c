/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln's config file (--config FILE), YAML read with libyaml: every flag's
 * setting under its long name, and Prometheus's relabel_configs.
 *
 *   frequency: 99
 *   off-cpu: true
 *   pid: [1234, 5678]          # repeatable flags take a list
 *   remote-store: https://pyroscope.example:4040
 *   relabel_configs:
 *     - source_labels: [__meta_systemd_unit]
 *       regex: (.*)\.service
 *       target_label: service_name
 *
 * The file is only read and checked here, each value kept with its line;
 * options.c applies the settings (flags on the command line win) and
 * relabel.c holds the rules.
 */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stddef.h>

#include "agent/metadata/relabel.h"

/* A bound on the file: a config is a page or two, not megabytes. */
#define CONFIG_MAX_BYTES (1 << 20)

/* One setting: a flag's long name and its value as a flag would take it. */
struct config_setting {
	const char *name; /* "frequency" */
	const char *value; /* "99"; a true flag is "true" */
	unsigned line; /* 1-based */
};

struct kiln_config {
	char *path;
	struct config_setting *settings; /* in file order; a list gives one per item */
	size_t setting_count;
	struct relabel_rules *rules; /* never NULL once loaded; empty without relabel_configs */
	void *document; /* libyaml's, which settings point into */
};

/* Bounds on what a file may hold (an alias repeats a list without making it longer). */
#define CONFIG_MAX_SETTINGS 4096
#define CONFIG_MAX_RULES 1024
#define CONFIG_MAX_SOURCE_LABELS 64

/*
 * Reads and checks path. On success returns 0 and *ret_config (free with
 * config_free). Otherwise a negative errno and error holds
 * "FILE:LINE: what: why", e.g.
 * "kiln.yaml:7: relabel_configs[1].regex: '(' is not a valid regex ...".
 */
int config_load(const char *path, struct kiln_config **ret_config, char *error, size_t size);

void config_free(struct kiln_config *config);

#endif /* KILN_CONFIG_H */
