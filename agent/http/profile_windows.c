// SPDX-License-Identifier: Apache-2.0
/* Windows from the output directory, read on demand, or from a bounded ring in memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/http/profile_windows.h"

struct kept_window {
	struct profile_window window;
	uint8_t *data;
};

struct profile_windows {
	char *output_dir; /* NULL: in memory */
	pthread_mutex_t lock; /* over the ring: the main thread adds, the server reads */
	struct kept_window ring[PROFILE_WINDOWS_MEMORY_COUNT]; /* oldest at first */
	size_t first, count;
	uint64_t bytes, dropped;
};

struct profile_windows *profile_windows__new(const char *output_dir)
{
	struct profile_windows *windows = calloc(1, sizeof(*windows));

	if (!windows)
		return NULL;
	if (output_dir) {
		windows->output_dir = strdup(output_dir);
		if (!windows->output_dir) {
			free(windows);
			return NULL;
		}
	}
	pthread_mutex_init(&windows->lock, NULL);
	return windows;
}

void profile_windows__free(struct profile_windows *windows)
{
	if (!windows)
		return;
	for (size_t i = 0; i < windows->count; i++)
		free(windows->ring[(windows->first + i) % PROFILE_WINDOWS_MEMORY_COUNT].data);
	pthread_mutex_destroy(&windows->lock);
	free(windows->output_dir);
	free(windows);
}

bool profile_windows__in_memory(const struct profile_windows *windows)
{
	return !windows->output_dir;
}

static void drop_oldest(struct profile_windows *windows)
{
	struct kept_window *oldest = &windows->ring[windows->first];

	windows->bytes -= oldest->window.bytes;
	free(oldest->data);
	*oldest = (struct kept_window){};
	windows->first = (windows->first + 1) % PROFILE_WINDOWS_MEMORY_COUNT;
	windows->count--;
	windows->dropped++;
}

void profile_windows__add(struct profile_windows *windows, enum profile_kind kind, int64_t start_ns,
			  uint8_t *data, size_t size)
{
	struct kept_window *slot;

	pthread_mutex_lock(&windows->lock);
	if (windows->output_dir || size > PROFILE_WINDOWS_MEMORY_BYTES) {
		windows->dropped++;
		pthread_mutex_unlock(&windows->lock);
		free(data);
		return;
	}
	while (windows->count && (windows->count == PROFILE_WINDOWS_MEMORY_COUNT ||
				  windows->bytes + size > PROFILE_WINDOWS_MEMORY_BYTES))
		drop_oldest(windows);
	slot = &windows->ring[(windows->first + windows->count) % PROFILE_WINDOWS_MEMORY_COUNT];
	*slot = (struct kept_window){
		.window = { .kind = kind, .start_ns = start_ns, .bytes = size }, .data = data
	};
	profile_name_format(kind, start_ns, slot->window.name);
	windows->count++;
	windows->bytes += size;
	pthread_mutex_unlock(&windows->lock);
}

/* A stamp's time: 20261121T143000Z, UTC. */
static int64_t stamp_ns(const char *stamp)
{
	struct tm tm = {};

	if (sscanf(stamp, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000000000;
}

/* Newest first; of one start, CPU first. */
static int compare_newest_first(const void *a, const void *b)
{
	const struct profile_window *x = a, *y = b;

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? 1 : -1;
	return (int)x->kind - (int)y->kind;
}

static int list_directory(struct profile_windows *windows, struct profile_window **ret,
			  size_t *ret_count)
{
	struct profile_window *list = NULL;
	size_t count = 0, capacity = 0;
	struct dirent *entry;
	DIR *dir;
	int err = 0;

	dir = opendir(windows->output_dir);
	if (!dir)
		return -errno;
	while ((entry = readdir(dir))) {
		char stamp[PROFILE_STAMP_SIZE];
		enum profile_kind kind;
		struct stat st;

		if (profile_name_parse(entry->d_name, &kind, stamp) ||
		    fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (count == capacity) {
			size_t grown = capacity ? 2 * capacity : 64;
			struct profile_window *bigger = realloc(list, grown * sizeof(*list));

			if (!bigger) {
				err = -ENOMEM;
				break;
			}
			list = bigger;
			capacity = grown;
		}
		list[count] = (struct profile_window){ .kind = kind,
						       .start_ns = stamp_ns(stamp),
						       .bytes = (uint64_t)st.st_size };
		/* The same name again: the parse took only names of this form. */
		profile_name_format(kind, list[count].start_ns, list[count].name);
		if (!strcmp(list[count].name, entry->d_name))
			count++;
	}
	closedir(dir);
	if (err) {
		free(list);
		return err;
	}
	*ret = list;
	*ret_count = count;
	return 0;
}

static int list_memory(struct profile_windows *windows, struct profile_window **ret,
		       size_t *ret_count)
{
	struct profile_window *list;

	pthread_mutex_lock(&windows->lock);
	list = calloc(windows->count + 1, sizeof(*list));
	if (list) {
		for (size_t i = 0; i < windows->count; i++)
			list[i] = windows->ring[(windows->first + i) % PROFILE_WINDOWS_MEMORY_COUNT]
					  .window;
		*ret_count = windows->count;
	}
	pthread_mutex_unlock(&windows->lock);
	if (!list)
		return -ENOMEM;
	*ret = list;
	return 0;
}

int profile_windows__list(struct profile_windows *windows, size_t max, struct profile_window **ret)
{
	struct profile_window *list = NULL;
	size_t count = 0;
	int err;

	err = windows->output_dir ? list_directory(windows, &list, &count)
				  : list_memory(windows, &list, &count);
	if (err)
		return err;
	qsort(list, count, sizeof(*list), compare_newest_first);
	*ret = list;
	return (int)(count < max ? count : max);
}

static int read_memory(struct profile_windows *windows, const char *name, uint8_t **ret_data,
		       size_t *ret_size)
{
	int err = -ENOENT;

	pthread_mutex_lock(&windows->lock);
	for (size_t i = 0; i < windows->count; i++) {
		const struct kept_window *kept =
			&windows->ring[(windows->first + i) % PROFILE_WINDOWS_MEMORY_COUNT];

		if (strcmp(kept->window.name, name))
			continue;
		*ret_data = malloc(kept->window.bytes ? kept->window.bytes : 1);
		err = *ret_data ? 0 : -ENOMEM;
		if (!err) {
			memcpy(*ret_data, kept->data, kept->window.bytes);
			*ret_size = kept->window.bytes;
		}
		break;
	}
	pthread_mutex_unlock(&windows->lock);
	return err;
}

static int read_file(struct profile_windows *windows, const char *name, uint8_t **ret_data,
		     size_t *ret_size)
{
	uint8_t *data = NULL;
	size_t done = 0;
	struct stat st;
	int dir, fd, err = 0;

	dir = open(windows->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		err = -ENOENT;
		goto out;
	}
	if (st.st_size > PROFILE_WINDOWS_MAX_FILE_BYTES) {
		err = -EFBIG;
		goto out;
	}
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		err = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto out;
		}
		done += (size_t)n;
	}
	*ret_data = data;
	*ret_size = done;
	data = NULL;
out:
	free(data);
	close(fd);
	return err;
}

int profile_windows__read(struct profile_windows *windows, const char *name, uint8_t **ret_data,
			  size_t *ret_size)
{
	char stamp[PROFILE_STAMP_SIZE];
	enum profile_kind kind;

	/* Only kiln's names: nothing with a slash, a dot-dot, or another file's name. */
	if (profile_name_parse(name, &kind, stamp))
		return -ENOENT;
	return windows->output_dir ? read_file(windows, name, ret_data, ret_size)
				   : read_memory(windows, name, ret_data, ret_size);
}

void profile_windows__stats(struct profile_windows *windows,
			    struct profile_windows_stats *ret_stats)
{
	pthread_mutex_lock(&windows->lock);
	*ret_stats = (struct profile_windows_stats){ .kept = windows->count,
						     .kept_bytes = windows->bytes,
						     .dropped = windows->dropped };
	pthread_mutex_unlock(&windows->lock);
}
