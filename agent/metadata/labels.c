// SPDX-License-Identifier: Apache-2.0
/* Sorted label sets: the input and output of relabeling. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/labels.h"
#include "lib/array.h"

/* Index of name, or of where it would go (*found false). */
static size_t find(const struct label_set *set, const char *name, bool *found)
{
	size_t low = 0, high = set->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		int cmp = strcmp(set->labels[mid].name, name);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			low = mid + 1;
		else
			high = mid;
	}
	*found = false;
	return low;
}

static void remove_at(struct label_set *set, size_t i)
{
	free(set->labels[i].name);
	free(set->labels[i].value);
	memmove(&set->labels[i], &set->labels[i + 1],
		(set->count - i - 1) * sizeof(set->labels[0]));
	set->count--;
}

int label_set__set(struct label_set *set, const char *name, const char *value)
{
	bool found;
	size_t i = find(set, name, &found);
	char *copy;

	if (!*value) {
		if (found)
			remove_at(set, i);
		return 0;
	}
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	if (found) {
		free(set->labels[i].value);
		set->labels[i].value = copy;
		return 0;
	}
	struct label label = { strdup(name), copy };

	if (!label.name || ARRAY_RESERVE_ONE(set->labels, set->count, set->capacity, 8)) {
		free(label.name);
		free(copy);
		return -ENOMEM;
	}
	memmove(&set->labels[i + 1], &set->labels[i], (set->count - i) * sizeof(set->labels[0]));
	set->labels[i] = label;
	set->count++;
	return 0;
}

const char *label_set__get(const struct label_set *set, const char *name)
{
	bool found;
	size_t i = find(set, name, &found);

	return found ? set->labels[i].value : NULL;
}

void label_set__remove(struct label_set *set, const char *name)
{
	bool found;
	size_t i = find(set, name, &found);

	if (found)
		remove_at(set, i);
}

void label_set__remove_prefix(struct label_set *set, const char *prefix)
{
	size_t length = strlen(prefix);

	for (size_t i = set->count; i-- > 0;) {
		if (!strncmp(set->labels[i].name, prefix, length))
			remove_at(set, i);
	}
}

int label_set__copy(struct label_set *dst, const struct label_set *src)
{
	label_set__clear(dst);
	for (size_t i = 0; i < src->count; i++) {
		if (label_set__set(dst, src->labels[i].name, src->labels[i].value)) {
			label_set__clear(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

void label_set__clear(struct label_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		free(set->labels[i].name);
		free(set->labels[i].value);
	}
	free(set->labels);
	*set = (struct label_set){ 0 };
}

bool label_name_is_valid(const char *name)
{
	if (!*name || (*name >= '0' && *name <= '9'))
		return false;
	for (const char *c = name; *c; c++) {
		if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9')))
			return false;
	}
	return true;
}
