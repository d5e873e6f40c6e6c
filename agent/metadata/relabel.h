/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus's relabel_configs, with its semantics: actions replace, keep,
 * drop, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase,
 * keepequal and dropequal; regexes fully anchored; replacements with $1,
 * ${1}, $name and ${name} as Go's regexp.Expand reads them. kiln runs the
 * rules once per process, on its __meta_* labels, never per sample.
 *
 * Regexes are PCRE2's (Prometheus's are RE2, whose syntax PCRE2 reads
 * alike for everything relabeling uses). PCRE2 backtracks where RE2 does
 * not, and label values come from processes (command lines): every match
 * runs under a match limit, and a value that hits it counts as not
 * matching (relabel_counters.match_limit).
 */
#ifndef KILN_RELABEL_H
#define KILN_RELABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/metadata/labels.h"

/* One rule as a config file writes it; NULL (or 0) fields take Prometheus's defaults. */
struct relabel_spec {
	const char *action; /* "replace" when NULL; any case, as Prometheus reads it */
	const char *const *source_labels;
	size_t source_count;
	const char *separator; /* ";" */
	const char *regex; /* "(.*)" */
	const char *target_label;
	const char *replacement; /* "$1" */
	uint64_t modulus; /* hashmod's, required there */
};

/* The fields a spec's error can be about, as a config file names them. */
#define RELABEL_FIELDS(X)                                                                          \
	X(ACTION, "action")                                                                        \
	X(SOURCE_LABELS, "source_labels")                                                          \
	X(SEPARATOR, "separator")                                                                  \
	X(REGEX, "regex")                                                                          \
	X(TARGET_LABEL, "target_label")                                                            \
	X(REPLACEMENT, "replacement")                                                              \
	X(MODULUS, "modulus")

#define RELABEL_FIELD_ENUM(id, text) RELABEL_FIELD_##id,
enum relabel_field { RELABEL_FIELDS(RELABEL_FIELD_ENUM) RELABEL_FIELD__COUNT };
#undef RELABEL_FIELD_ENUM

/* The config file's name of a field: "target_label". */
const char *relabel_field_name(enum relabel_field field);

struct relabel_counters {
	uint64_t match_limit; /* values a regex gave up on: taken as not matching */
};

struct relabel_rules;

struct relabel_rules *relabel_rules__new(void);
void relabel_rules__free(struct relabel_rules *rules);

/*
 * Checks spec as Prometheus checks a rule and appends it. On a bad rule
 * returns -EINVAL, with the field at fault in *field and the reason in
 * error ("hashmod requires a non-zero modulus"); -ENOMEM.
 */
int relabel_rules__add(struct relabel_rules *rules, const struct relabel_spec *spec,
		       enum relabel_field *field, char *error, size_t error_size);

size_t relabel_rules__count(const struct relabel_rules *rules);

/*
 * Runs the rules in order on labels, in place. Returns 0 when a keep, drop,
 * keepequal or dropequal rule dropped them (labels are then as they were at
 * that rule), 1 when they are kept, -ENOMEM. counters may be NULL.
 */
int relabel_rules__apply(const struct relabel_rules *rules, struct label_set *labels,
			 struct relabel_counters *counters);

#endif /* KILN_RELABEL_H */
