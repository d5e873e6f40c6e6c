// SPDX-License-Identifier: Apache-2.0
/* Parses /proc/PID/maps into a sorted array of mappings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/procmaps.h"

#define DELETED_SUFFIX " (deleted)"

static int parse_hex(const char **cursor, char terminator, uint64_t *ret_value)
{
	const char *start = *cursor;
	char *end;
	uint64_t value;

	if (!((*start >= '0' && *start <= '9') || (*start >= 'a' && *start <= 'f') ||
	      (*start >= 'A' && *start <= 'F')))
		return -EINVAL;
	errno = 0;
	value = strtoull(start, &end, 16);
	if (errno || *end != terminator)
		return -EINVAL;
	*cursor = end + 1;
	*ret_value = value;
	return 0;
}

/* "r-xp": each column is its letter or a dash, except the last: 's'hared or 'p'rivate. */
static int parse_perms(const char **cursor, uint32_t *ret_perms)
{
	static const struct {
		char set, unset;
		uint32_t flag;
	} columns[] = {
		{ 'r', '-', PROC_MAP_READ },
		{ 'w', '-', PROC_MAP_WRITE },
		{ 'x', '-', PROC_MAP_EXEC },
		{ 's', 'p', PROC_MAP_SHARED },
	};
	const char *p = *cursor;
	uint32_t perms = 0;

	if (strnlen(p, 5) < 5 || p[4] != ' ')
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		if (p[i] == columns[i].set)
			perms |= columns[i].flag;
		else if (p[i] != columns[i].unset)
			return -EINVAL;
	}
	*cursor = p + 5;
	*ret_perms = perms;
	return 0;
}

/* One line without its newline: "start-end perms offset major:minor inode   path". */
static int parse_line(const char *line, struct proc_mapping *ret_mapping)
{
	struct proc_mapping mapping = {};
	const char *cursor = line;
	uint64_t major, minor;
	char *end;
	size_t len;
	int err;

	if ((err = parse_hex(&cursor, '-', &mapping.start)) ||
	    (err = parse_hex(&cursor, ' ', &mapping.end)) ||
	    (err = parse_perms(&cursor, &mapping.perms)) ||
	    (err = parse_hex(&cursor, ' ', &mapping.offset)) ||
	    (err = parse_hex(&cursor, ':', &major)) || (err = parse_hex(&cursor, ' ', &minor)))
		return err;
	if (mapping.start >= mapping.end || major > UINT32_MAX || minor > UINT32_MAX)
		return -EINVAL;
	mapping.dev_major = major;
	mapping.dev_minor = minor;
	if (*cursor < '0' || *cursor > '9')
		return -EINVAL;
	errno = 0;
	mapping.inode = strtoull(cursor, &end, 10);
	if (errno || (*end != ' ' && *end != '\0'))
		return -EINVAL;
	/* The kernel pads the path to a column; the path itself may contain spaces. */
	cursor = end + strspn(end, " ");
	len = strlen(cursor);
	if (len > strlen(DELETED_SUFFIX) &&
	    strcmp(cursor + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX) == 0) {
		mapping.deleted = true;
		len -= strlen(DELETED_SUFFIX);
	}
	mapping.path = strndup(cursor, len);
	if (!mapping.path)
		return -ENOMEM;
	*ret_mapping = mapping;
	return 0;
}

static int compare_mappings(const void *a, const void *b)
{
	const struct proc_mapping *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int procmaps__parse(FILE *file, bool exec_only, struct proc_maps *ret_maps)
{
	struct proc_maps maps = {};
	size_t capacity = 0, line_size = 0;
	char *line = NULL;
	ssize_t len;
	int err = 0;

	errno = 0;
	while ((len = getline(&line, &line_size, file)) >= 0) {
		struct proc_mapping mapping;

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		err = parse_line(line, &mapping);
		if (err)
			goto cleanup;
		if (exec_only && !(mapping.perms & PROC_MAP_EXEC)) {
			free(mapping.path);
			continue;
		}
		if (maps.count == capacity) {
			size_t new_capacity = capacity ? capacity * 2 : 64;
			struct proc_mapping *grown;

			grown = reallocarray(maps.mappings, new_capacity, sizeof(*grown));
			if (!grown) {
				err = -ENOMEM;
				free(mapping.path);
				goto cleanup;
			}
			maps.mappings = grown;
			capacity = new_capacity;
		}
		maps.mappings[maps.count++] = mapping;
	}
	if (ferror(file)) {
		/* /proc read errors (ESRCH when the process exits mid-read) land here. */
		err = errno ? -errno : -EIO;
		goto cleanup;
	}
	/* The kernel prints in order; sorting only matters for hand-written input. */
	/* An empty file (a kernel thread's, a zombie's) leaves mappings NULL, which qsort refuses. */
	if (maps.count)
		qsort(maps.mappings, maps.count, sizeof(*maps.mappings), compare_mappings);
	for (size_t i = 1; i < maps.count; i++) {
		if (maps.mappings[i].start < maps.mappings[i - 1].end) {
			err = -EINVAL;
			goto cleanup;
		}
	}
	*ret_maps = maps;
	maps = (struct proc_maps){};
cleanup:
	procmaps__free(&maps);
	free(line);
	return err;
}

int procmaps__read(int pid, bool exec_only, struct proc_maps *ret_maps)
{
	char path[64];
	FILE *file;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	file = fopen(path, "re");
	if (!file)
		return -errno;
	err = procmaps__parse(file, exec_only, ret_maps);
	fclose(file);
	return err;
}

void procmaps__free(struct proc_maps *maps)
{
	if (!maps)
		return;
	for (size_t i = 0; i < maps->count; i++)
		free(maps->mappings[i].path);
	free(maps->mappings);
	maps->mappings = NULL;
	maps->count = 0;
}

const struct proc_mapping *procmaps__find(const struct proc_maps *maps, uint64_t addr)
{
	size_t low = 0, high = maps->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct proc_mapping *mapping = &maps->mappings[mid];

		if (addr < mapping->start)
			high = mid;
		else if (addr >= mapping->end)
			low = mid + 1;
		else
			return mapping;
	}
	return NULL;
}
