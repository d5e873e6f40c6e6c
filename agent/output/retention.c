// SPDX-License-Identifier: Apache-2.0
/* The output directory's bound: the oldest profiles deleted past --output-max-bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/output/profile_name.h"
#include "agent/output/retention.h"
#include "lib/array.h"
#include "lib/fs.h"

/* Oldest files taken per reading of the directory. */
#define PRUNE_BATCH 256

struct output_retention {
	int dir_fd;
	uint64_t max_bytes; /* 0: no bound */
	struct output_retention_stats stats;
};

struct profile_file {
	char name[PROFILE_NAME_SIZE];
	char stamp[PROFILE_STAMP_SIZE];
	uint64_t size;
};

/* Older first: by stamp, then by name (cpu before offcpu of one window). */
static int compare_age(const struct profile_file *a, const struct profile_file *b)
{
	int order = strcmp(a->stamp, b->stamp);

	return order ? order : strcmp(a->name, b->name);
}

static int compare_age_qsort(const void *a, const void *b)
{
	return compare_age(a, b);
}

/* A max-heap of the batch's files by age: the newest of the oldest on top. */
static void sift_down(struct profile_file *heap, size_t count, size_t i)
{
	for (;;) {
		size_t largest = i, left = 2 * i + 1, right = 2 * i + 2;
		struct profile_file tmp;

		if (left < count && compare_age(&heap[left], &heap[largest]) > 0)
			largest = left;
		if (right < count && compare_age(&heap[right], &heap[largest]) > 0)
			largest = right;
		if (largest == i)
			return;
		tmp = heap[i];
		heap[i] = heap[largest];
		heap[largest] = tmp;
		i = largest;
	}
}

static void sift_up(struct profile_file *heap, size_t i)
{
	while (i > 0 && compare_age(&heap[i], &heap[(i - 1) / 2]) > 0) {
		struct profile_file tmp = heap[i];
		size_t parent = (i - 1) / 2;

		heap[i] = heap[parent];
		heap[parent] = tmp;
		i = parent;
	}
}

/*
 * Reads the directory: the total size and count of kiln's profiles, and,
 * when batch is not NULL, the PRUNE_BATCH oldest of them (skipping keep)
 * sorted oldest first.
 */
static int read_directory(struct output_retention *retention, const char *keep,
			  struct profile_file *batch, size_t *ret_count)
{
	uint64_t bytes = 0, files = 0;
	struct dirent *entry;
	size_t count = 0;
	DIR *dir;

	dir = fs_opendir_at(retention->dir_fd);
	if (!dir)
		return -errno;
	while ((entry = readdir(dir))) {
		struct profile_file file;
		enum profile_kind kind;
		struct stat st;

		if (profile_name_parse(entry->d_name, &kind, file.stamp) ||
		    fstatat(retention->dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		bytes += (uint64_t)st.st_size;
		files++;
		if (!batch || (keep && strcmp(entry->d_name, keep) == 0))
			continue;
		strcpy(file.name, entry->d_name);
		file.size = (uint64_t)st.st_size;
		if (count < PRUNE_BATCH) {
			batch[count] = file;
			sift_up(batch, count++);
		} else if (compare_age(&file, &batch[0]) < 0) {
			batch[0] = file;
			sift_down(batch, count, 0);
		}
	}
	closedir(dir);
	if (batch)
		qsort(batch, count, sizeof(*batch), compare_age_qsort);
	retention->stats.bytes = bytes;
	retention->stats.files = files;
	*ret_count = count;
	return 0;
}

/* Deletes the oldest profiles (never keep) until they take nine tenths of the bound. */
static void prune(struct output_retention *retention, const char *keep)
{
	uint64_t target = retention->max_bytes / 10 * 9;
	struct profile_file *batch = calloc(PRUNE_BATCH, sizeof(*batch));

	if (!batch) {
		retention->stats.last_error = -ENOMEM;
		return;
	}
	retention->stats.prunes++;
	for (;;) {
		size_t count = 0, removed = 0;
		int err = read_directory(retention, keep, batch, &count);

		if (err) {
			retention->stats.last_error = err;
			break;
		}
		for (size_t i = 0; i < count && retention->stats.bytes > target; i++) {
			if (unlinkat(retention->dir_fd, batch[i].name, 0)) {
				if (errno != ENOENT)
					retention->stats.last_error = -errno;
				continue;
			}
			retention->stats.bytes -= batch[i].size;
			retention->stats.files--;
			retention->stats.deleted++;
			retention->stats.deleted_bytes += batch[i].size;
			removed++;
		}
		/* Under the target, nothing left to delete, or nothing deletable. */
		if (retention->stats.bytes <= target || count < PRUNE_BATCH || !removed)
			break;
	}
	free(batch);
}

struct output_retention *output_retention__open(const char *dir, uint64_t max_bytes)
{
	struct output_retention *retention = calloc(1, sizeof(*retention));
	size_t count;
	int err;

	if (!retention)
		return NULL;
	retention->max_bytes = max_bytes;
	retention->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (retention->dir_fd < 0) {
		err = -errno;
		goto fail;
	}
	/* Counting only: a prune reads the directory again for the oldest. */
	err = read_directory(retention, NULL, NULL, &count);
	if (err)
		goto fail;
	if (max_bytes && retention->stats.bytes > max_bytes)
		prune(retention, NULL);
	return retention;
fail:
	output_retention__free(retention);
	errno = -err;
	return NULL;
}

void output_retention__free(struct output_retention *retention)
{
	if (!retention)
		return;
	if (retention->dir_fd >= 0)
		close(retention->dir_fd);
	free(retention);
}

void output_retention__added(struct output_retention *retention, const char *name)
{
	struct stat st;

	if (fstatat(retention->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		retention->stats.bytes += (uint64_t)st.st_size;
		retention->stats.files++;
	}
	if (retention->max_bytes && retention->stats.bytes > retention->max_bytes)
		prune(retention, name);
}

void output_retention__stats(const struct output_retention *retention,
			     struct output_retention_stats *ret_stats)
{
	*ret_stats = retention->stats;
}
