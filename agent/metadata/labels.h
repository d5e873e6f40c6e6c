/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A set of labels (name, value), kept sorted by name as Prometheus keeps
 * them. A label whose value is empty is no label: setting one to "" removes
 * it, as Prometheus's label builder does.
 */
#ifndef KILN_LABELS_H
#define KILN_LABELS_H

#include <stdbool.h>
#include <stddef.h>

struct label {
	char *name;
	char *value;
};

struct label_set {
	struct label *labels; /* sorted by name, names unique, values not empty */
	size_t count;
	size_t capacity;
};

/* Sets name to value (copies both), or removes name when value is "". 0 or -ENOMEM. */
int label_set__set(struct label_set *set, const char *name, const char *value);

/* The value of name, or NULL when the set has no such label. */
const char *label_set__get(const struct label_set *set, const char *name);

void label_set__remove(struct label_set *set, const char *name);

/* Removes every label whose name starts with prefix ("__meta_"). */
void label_set__remove_prefix(struct label_set *set, const char *prefix);

/* Copies src into dst, which is cleared first. 0 or -ENOMEM (dst then empty). */
int label_set__copy(struct label_set *dst, const struct label_set *src);

/* Frees the labels; the set is empty and can be used again. */
void label_set__clear(struct label_set *set);

/* Prometheus's (legacy) label name rule: [a-zA-Z_][a-zA-Z0-9_]*. */
bool label_name_is_valid(const char *name);

#endif /* KILN_LABELS_H */
