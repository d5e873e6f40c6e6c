// SPDX-License-Identifier: Apache-2.0
/* Perf maps: per process, sorted non-overlapping JIT code ranges and names, read as they grow. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/hashmap.h"
#include "lib/sorted.h"
#include "lib/string_arena.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/process_files.h"

#define DEFAULT_MAX_ENTRIES_PER_MAP (256 * 1024)
#define DEFAULT_MAX_ENTRIES (512 * 1024)
#define DEFAULT_MAX_PROCESSES 4096
/*
 * Longer names are cut, which bounds what a line costs: its name and at
 * most two 24-byte ranges. The default 512Ki lines, with names of a
 * typical 60 bytes, take about 40 MiB, and 160 MiB at the very most.
 */
#define MAX_NAME_BYTES 256
/* Symbolizing a window is one burst of lookups: this means once per window. */
#define DEFAULT_RECHECK_INTERVAL_NS (1000ULL * 1000 * 1000)
#define READ_CHUNK_BYTES 65536
/*
 * A JIT's map grows with the code it compiles: a JVM after days writes a
 * few MiB. Past this, the file is a stalling attempt rather than a map.
 */
#define DEFAULT_MAX_BYTES (64ULL * 1024 * 1024)
/* One refresh's reading; the window is symbolized on the main thread. */
#define DEFAULT_MAX_READ_NS (100ULL * 1000 * 1000)
_Static_assert(READ_CHUNK_BYTES > 2 * 17 + 2 + MAX_NAME_BYTES, "a whole line fits in a chunk");

struct perf_range {
	uint64_t start;
	uint64_t end; /* one past the last byte */
	uint32_t name; /* offset in the map's names */
};

struct process_map {
	int pid;
	char path[32]; /* the file as the process sees it */
	bool path_known;
	bool host_tmp; /* its /tmp is ours: read from our root, after it exited too */
	/* Its uids and gids while it ran, against which the file is checked. */
	struct process_identity identity;
	bool identity_known;
	/* The last refusal, counted once until the file passes again. */
	enum process_file_refusal refusal;
	bool refused;
	bool truncated; /* counted as cut at max_bytes */
	bool checked; /* checked_at_ns is set */
	struct perf_range *ranges; /* sorted by start, not overlapping */
	size_t range_count;
	struct string_arena names; /* perf_range.name is an offset in it */
	uint64_t lines; /* entries taken from the file, for max_entries_per_map */
	uint64_t bytes; /* map_bytes when last counted into perf_maps.bytes */
	/* The file as last read: another file, or a shorter one, is read from its start. */
	uint64_t dev;
	uint64_t inode;
	struct timespec mtime;
	uint64_t size; /* when read: unchanged since, it is not read again */
	uint64_t consumed; /* bytes up to the end of the last complete line */
	uint64_t checked_at_ns;
	uint64_t used; /* a tick: higher is more recent */
};

struct perf_maps {
	size_t max_entries_per_map;
	size_t max_entries;
	size_t max_processes;
	uint64_t recheck_interval_ns;
	uint64_t max_bytes;
	uint64_t max_read_ns;
	struct hashmap *processes; /* pid -> struct process_map */
	size_t total_lines; /* against max_entries */
	uint64_t max_memory; /* what all maps' ranges and names may take; 0: no bound */
	uint64_t bytes; /* every map's bytes, against max_memory */
	uint64_t tick;
	struct perf_maps_stats stats;
};

/* One line read, or one range already known, while the two are merged. */
struct sweep_item {
	uint64_t start;
	uint64_t end;
	uint32_t name;
	uint32_t priority; /* later lines win: higher wins */
};

struct perf_maps *perf_maps__new(const struct perf_maps_opts *opts)
{
	struct perf_maps_opts defaults = {};
	struct perf_maps *maps;

	if (!opts)
		opts = &defaults;
	maps = calloc(1, sizeof(*maps));
	if (!maps)
		goto fail;
	maps->max_entries_per_map =
		opts->max_entries_per_map ? opts->max_entries_per_map : DEFAULT_MAX_ENTRIES_PER_MAP;
	maps->max_entries = opts->max_entries ? opts->max_entries : DEFAULT_MAX_ENTRIES;
	maps->max_processes = opts->max_processes ? opts->max_processes : DEFAULT_MAX_PROCESSES;
	maps->recheck_interval_ns =
		opts->recheck_interval_ns ? opts->recheck_interval_ns : DEFAULT_RECHECK_INTERVAL_NS;
	maps->max_bytes = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
	maps->max_read_ns = opts->max_read_ns ? opts->max_read_ns : DEFAULT_MAX_READ_NS;
	maps->max_memory = opts->max_memory;
	/* One map may take all there is, not more. */
	if (maps->max_entries_per_map > maps->max_entries)
		maps->max_entries_per_map = maps->max_entries;
	maps->processes = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!maps->processes)
		goto fail;
	return maps;
fail:
	perf_maps__free(maps);
	errno = ENOMEM;
	return NULL;
}

/* What a map holds: its ranges and the arena of their names. */
static uint64_t map_bytes(const struct process_map *map)
{
	return map->range_count * sizeof(*map->ranges) + map->names.capacity;
}

static void count_bytes(struct perf_maps *maps, struct process_map *map)
{
	maps->bytes -= map->bytes;
	map->bytes = map_bytes(map);
	maps->bytes += map->bytes;
}

static void clear_map(struct perf_maps *maps, struct process_map *map)
{
	maps->total_lines -= map->lines;
	maps->bytes -= map->bytes;
	map->bytes = 0;
	free(map->ranges);
	string_arena__clear(&map->names);
	map->ranges = NULL;
	map->range_count = 0;
	map->lines = map->consumed = map->size = 0;
	map->truncated = false;
}

static void free_map(struct perf_maps *maps, struct process_map *map)
{
	clear_map(maps, map);
	free(map);
}

void perf_maps__free(struct perf_maps *maps)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *map;

	if (!maps)
		return;
	while (maps->processes && hashmap__next(maps->processes, &iter, NULL, &map))
		free_map(maps, map);
	hashmap__free(maps->processes);
	free(maps);
}

bool perf_maps__may_name(const struct proc_mapping *mapping)
{
	return mapping->path[0] == '\0' || strncmp(mapping->path, "[anon:", 6) == 0 ||
	       strncmp(mapping->path, "/memfd:", 7) == 0;
}

/* Drops the map unused for longest, other than keep. */
static void evict_least_recent(struct perf_maps *maps, const struct process_map *keep)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	struct process_map *oldest = NULL;
	void *value;

	while (hashmap__next(maps->processes, &iter, NULL, &value)) {
		struct process_map *map = value;

		if (map != keep && (!oldest || map->used < oldest->used))
			oldest = map;
	}
	if (!oldest)
		return;
	/* Only a map with lines is a loss; most processes have none. */
	if (oldest->lines)
		maps->stats.maps_evicted++;
	hashmap__delete(maps->processes, oldest->pid, NULL, NULL);
	free_map(maps, oldest);
}

static struct process_map *get_map(struct perf_maps *maps, int pid)
{
	struct process_map *map;

	if (hashmap__find(maps->processes, pid, (void **)&map))
		return map;
	if (hashmap__size(maps->processes) >= maps->max_processes)
		evict_least_recent(maps, NULL);
	map = calloc(1, sizeof(*map));
	if (!map)
		return NULL;
	map->pid = pid;
	if (hashmap__set(maps->processes, pid, map, NULL, NULL)) {
		free(map);
		return NULL;
	}
	return map;
}

/* Whether the process's /tmp, resolved inside its root, is ours. */
static bool shares_our_tmp(int root_fd)
{
	int theirs_fd = process_files_open_directory(root_fd, "/tmp");
	struct stat theirs, ours;
	bool same;

	if (theirs_fd < 0)
		return false;
	same = fstat(theirs_fd, &theirs) == 0 && stat("/tmp", &ours) == 0 &&
	       theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
	close(theirs_fd);
	return same;
}

/*
 * Where the process's map is, and who the process is: its /tmp, under the
 * pid its own pid namespace gives it (the last NSpid). A /tmp that is ours
 * is read from our root, so the file can still be read once the process is
 * gone, against the identity it had while it ran.
 */
static void find_path(struct process_map *map)
{
	struct process_identity identity;
	int root_fd;

	/* Gone before it was seen: no identity to hold its file to, so none is read. */
	if (process_files_read_identity(map->pid, &identity) < 0)
		return;
	root_fd = process_files_open_root(map->pid);
	if (root_fd < 0)
		return;
	map->identity = identity;
	map->identity_known = true;
	snprintf(map->path, sizeof(map->path), "/tmp/perf-%d.map", identity.namespace_pid);
	map->host_tmp = shares_our_tmp(root_fd);
	map->path_known = true;
	close(root_fd);
}

/* Hex with an optional 0x, 1 to 16 digits, up to end. */
static const char *parse_hex(const char *text, const char *end, uint64_t *ret_value)
{
	uint64_t value = 0;
	int digits = 0;

	if (end - text > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		text += 2;
	for (; text < end; text++, digits++) {
		char c = *text;
		int digit = c >= '0' && c <= '9'   ? c - '0'
			    : c >= 'a' && c <= 'f' ? c - 'a' + 10
			    : c >= 'A' && c <= 'F' ? c - 'A' + 10
						   : -1;

		if (digit < 0)
			break;
		if (digits == 16)
			return NULL;
		value = value << 4 | (uint64_t)digit;
	}
	if (!digits)
		return NULL;
	*ret_value = value;
	return text;
}

/* "START SIZE name": false for a malformed or empty line. */
static bool parse_line(const char *line, const char *end, uint64_t *ret_start, uint64_t *ret_end,
		       const char **ret_name, size_t *ret_name_len)
{
	uint64_t start, size;
	const char *p;

	if (end > line && end[-1] == '\r')
		end--;
	p = parse_hex(line, end, &start);
	if (!p || p == end || *p != ' ')
		return false;
	p = parse_hex(p + 1, end, &size);
	if (!p || p == end || *p != ' ' || !size || start + size < start)
		return false;
	p++;
	if (p == end)
		return false;
	*ret_start = start;
	*ret_end = start + size;
	*ret_name = p;
	*ret_name_len = (size_t)(end - p) < MAX_NAME_BYTES ? (size_t)(end - p) : MAX_NAME_BYTES;
	return true;
}

struct new_lines {
	struct sweep_item *items;
	size_t count;
	size_t capacity;
};

static int take_line(struct perf_maps *maps, struct process_map *map, struct new_lines *lines,
		     const char *line, const char *end)
{
	const char *name;
	size_t name_len;
	uint64_t start, stop;
	uint32_t offset;
	int err;

	/* One map may take all of max_memory (its names, a range a line at least), not more. */
	if (map->lines >= maps->max_entries_per_map ||
	    !parse_line(line, end, &start, &stop, &name, &name_len) ||
	    (maps->max_memory &&
	     map->names.size + name_len + 1 +
			     (map->range_count + lines->count + 1) * sizeof(struct perf_range) >
		     maps->max_memory)) {
		maps->stats.entries_dropped++;
		return 0;
	}
	err = ARRAY_RESERVE_ONE(lines->items, lines->count, lines->capacity, 256);
	if (err)
		return err;
	err = string_arena__add(&map->names, name, name_len, &offset);
	if (err)
		return err;
	lines->items[lines->count] = (struct sweep_item){ start, stop, offset, 0 };
	lines->count++;
	map->lines++;
	maps->total_lines++;
	maps->stats.entries_read++;
	return 0;
}

/*
 * How much to read at offset: a chunk's room, up to max_bytes. At the
 * bound, a file with more is counted as cut, once.
 */
static size_t read_room(struct perf_maps *maps, struct process_map *map, int fd, uint64_t offset,
			size_t room)
{
	char byte;

	if (offset < maps->max_bytes)
		return maps->max_bytes - offset < room ? (size_t)(maps->max_bytes - offset) : room;
	if (!map->truncated && pread(fd, &byte, 1, (off_t)offset) == 1) {
		map->truncated = true;
		maps->stats.maps_truncated++;
	}
	return 0;
}

/*
 * Reads the complete lines after map->consumed, up to max_bytes and for
 * max_read_ns at most. A line longer than a chunk is skipped (counted); a
 * line still being written is left for next time, as is what a read
 * stopped in time did not reach.
 */
static int read_new_lines(struct perf_maps *maps, struct process_map *map, int fd,
			  struct new_lines *lines)
{
	uint64_t position = map->consumed; /* file offset of buffer[0] */
	char *buffer = malloc(READ_CHUNK_BYTES);
	uint64_t deadline = now_ns() + maps->max_read_ns;
	size_t filled = 0;
	bool skipping = false;
	int err = 0;

	if (!buffer)
		return -ENOMEM;
	for (;;) {
		size_t room =
			read_room(maps, map, fd, position + filled, READ_CHUNK_BYTES - filled);
		ssize_t n = room ? pread(fd, buffer + filled, room, (off_t)(position + filled)) : 0;
		char *line = buffer, *newline;
		size_t used;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		filled += (size_t)n;
		while ((newline = memchr(line, '\n', buffer + filled - line))) {
			if (!skipping)
				err = take_line(maps, map, lines, line, newline);
			if (err)
				goto cleanup;
			skipping = false;
			line = newline + 1;
		}
		used = (size_t)(line - buffer);
		if (!used && filled == READ_CHUNK_BYTES) {
			/* No newline in a whole chunk: drop the line, read on to its end. */
			if (!skipping)
				maps->stats.entries_dropped++;
			skipping = true;
			used = filled;
		}
		memmove(buffer, line, filled - used);
		filled -= used;
		position += used;
		/* An overlong line still being written is read again, from a chunk's end. */
		if (!skipping)
			map->consumed = position;
		/* After a chunk at least, so every refresh gets further; the rest next time. */
		if (now_ns() > deadline) {
			maps->stats.reads_stopped++;
			break;
		}
	}
cleanup:
	free(buffer);
	return err;
}

static int compare_by_start(const void *a, const void *b)
{
	const struct sweep_item *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A max-heap of item indices by priority. */
static void heap_push(uint32_t *heap, size_t *count, const struct sweep_item *items, uint32_t index)
{
	size_t child = (*count)++;

	while (child) {
		size_t parent = (child - 1) / 2;

		if (items[heap[parent]].priority >= items[index].priority)
			break;
		heap[child] = heap[parent];
		child = parent;
	}
	heap[child] = index;
}

static void heap_pop(uint32_t *heap, size_t *count, const struct sweep_item *items)
{
	uint32_t last = heap[--(*count)];
	size_t parent = 0;

	for (;;) {
		size_t child = 2 * parent + 1;

		if (child >= *count)
			break;
		if (child + 1 < *count &&
		    items[heap[child + 1]].priority > items[heap[child]].priority)
			child++;
		if (items[heap[child]].priority <= items[last].priority)
			break;
		heap[parent] = heap[child];
		parent = child;
	}
	if (*count)
		heap[parent] = last;
}

/*
 * Merges new lines into the known ranges, later lines winning where they
 * overlap: a sweep over every boundary, where the covering item with the
 * highest priority names each piece. O(n log n).
 */
static int merge_lines(struct perf_maps *maps, struct process_map *map, struct new_lines *lines)
{
	size_t count = map->range_count + lines->count, boundary_count = 0, active = 0;
	size_t next = 0, out_count = 0;
	struct sweep_item *items = NULL;
	struct perf_range *out = NULL, *shrunk;
	uint64_t *boundaries = NULL;
	uint32_t *heap = NULL;
	int err = 0;

	if (!lines->count)
		return 0;
	if (count > UINT32_MAX / 2)
		return -E2BIG;
	items = calloc(count, sizeof(*items));
	boundaries = calloc(2 * count, sizeof(*boundaries));
	heap = calloc(count, sizeof(*heap));
	out = calloc(2 * count, sizeof(*out));
	if (!items || !boundaries || !heap || !out) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* Known ranges never overlap each other: they share the lowest priority. */
	for (size_t i = 0; i < map->range_count; i++)
		items[i] = (struct sweep_item){ map->ranges[i].start, map->ranges[i].end,
						map->ranges[i].name, 0 };
	for (size_t i = 0; i < lines->count; i++) {
		items[map->range_count + i] = lines->items[i];
		items[map->range_count + i].priority = (uint32_t)(i + 1);
	}
	qsort(items, count, sizeof(*items), compare_by_start);
	for (size_t i = 0; i < count; i++) {
		boundaries[boundary_count++] = items[i].start;
		boundaries[boundary_count++] = items[i].end;
	}
	qsort(boundaries, boundary_count, sizeof(*boundaries), compare_u64);
	for (size_t i = 0; i + 1 < boundary_count; i++) {
		uint64_t from = boundaries[i], to = boundaries[i + 1];
		const struct sweep_item *winner;

		if (from == to)
			continue;
		while (next < count && items[next].start <= from)
			heap_push(heap, &active, items, (uint32_t)next++);
		/* Ended items leave only when they come to the top. */
		while (active && items[heap[0]].end <= from)
			heap_pop(heap, &active, items);
		if (!active)
			continue;
		winner = &items[heap[0]];
		if (out_count && out[out_count - 1].end == from &&
		    out[out_count - 1].name == winner->name)
			out[out_count - 1].end = to;
		else
			out[out_count++] = (struct perf_range){ from, to, winner->name };
	}
	if (out_count > maps->max_entries_per_map) {
		maps->stats.entries_dropped += out_count - maps->max_entries_per_map;
		out_count = maps->max_entries_per_map;
	}
	/* Made for the most pieces there could be: held at the size there are. */
	shrunk = reallocarray(out, out_count ? out_count : 1, sizeof(*out));
	if (shrunk)
		out = shrunk;
	free(map->ranges);
	map->ranges = out;
	map->range_count = out_count;
	out = NULL;
cleanup:
	free(items);
	free(boundaries);
	free(heap);
	free(out);
	return err;
}

/* Counts a refusal once, until the file passes again or is refused for another reason. */
static void note_refusal(struct perf_maps *maps, struct process_map *map, int err,
			 enum process_file_refusal refusal)
{
	if (err != -EPERM) {
		if (err >= 0)
			map->refused = false;
		return;
	}
	if (!map->refused || map->refusal != refusal)
		process_file_refusals__count(&maps->stats.refused, err, refusal);
	map->refused = true;
	map->refusal = refusal;
}

/* The map opened under its checks, inside the process's root or ours. */
static int open_map(struct perf_maps *maps, struct process_map *map)
{
	const struct process_file_policy policy = {
		.identity = &map->identity,
		.owned_by_process = true,
		.max_bytes = maps->max_bytes,
	};
	enum process_file_refusal refusal = PROCESS_FILE_REFUSALS;
	int root_fd, fd;

	if (!map->identity_known)
		return -ESRCH;
	root_fd = map->host_tmp ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
				: process_files_open_root(map->pid);
	if (root_fd < 0)
		return map->host_tmp ? -errno : root_fd;
	fd = process_files_open(root_fd, map->path, &policy, &refusal);
	close(root_fd);
	note_refusal(maps, map, fd, refusal);
	return fd;
}

/* Reads what the file gained since last time, at most once per interval. */
static int refresh(struct perf_maps *maps, struct process_map *map)
{
	struct new_lines lines = {};
	uint64_t now = now_ns(), stopped;
	struct stat st;
	int err = 0, fd;

	if (map->checked && now - map->checked_at_ns < maps->recheck_interval_ns)
		return 0;
	map->checked = true;
	map->checked_at_ns = now;
	if (!map->path_known)
		find_path(map);
	fd = open_map(maps, map);
	if (fd < 0)
		return fd; /* What was read before stays. */
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto cleanup;
	}
	if ((uint64_t)st.st_dev != map->dev || (uint64_t)st.st_ino != map->inode ||
	    (uint64_t)st.st_size < map->consumed ||
	    ((uint64_t)st.st_size == map->consumed &&
	     (st.st_mtim.tv_sec != map->mtime.tv_sec || st.st_mtim.tv_nsec != map->mtime.tv_nsec)))
		clear_map(maps, map); /* Another file, or rewritten: from the start. */
	else if ((uint64_t)st.st_size == map->size && st.st_mtim.tv_sec == map->mtime.tv_sec &&
		 st.st_mtim.tv_nsec == map->mtime.tv_nsec)
		goto cleanup; /* Unchanged since read: a line without its end is not read again. */
	map->dev = st.st_dev;
	map->inode = st.st_ino;
	map->mtime = st.st_mtim;
	map->size = 0;
	if ((uint64_t)st.st_size <= map->consumed)
		goto cleanup;
	maps->stats.reads++;
	stopped = maps->stats.reads_stopped;
	err = read_new_lines(maps, map, fd, &lines);
	/* Read to its end: not again until it changes. */
	if (!err && maps->stats.reads_stopped == stopped)
		map->size = st.st_size;
	if (!err)
		err = merge_lines(maps, map, &lines);
	if (!err)
		string_arena__shrink(&map->names);
	count_bytes(maps, map);
	while (!err && hashmap__size(maps->processes) > 1 &&
	       (maps->total_lines > maps->max_entries ||
		(maps->max_memory && maps->bytes > maps->max_memory)))
		evict_least_recent(maps, map);
cleanup:
	free(lines.items);
	close(fd);
	return err;
}

int perf_maps__prepare(struct perf_maps *maps, int pid)
{
	struct process_map *map = get_map(maps, pid);

	if (!map)
		return -ENOMEM;
	map->used = ++maps->tick;
	/* Again while it runs: after an exec, it may see another /tmp. */
	find_path(map);
	return refresh(maps, map);
}

int perf_maps__lookup(struct perf_maps *maps, int pid, uint64_t addr, const char **ret_name)
{
	struct process_map *map = get_map(maps, pid);
	size_t next;
	int err;

	maps->stats.lookups++;
	if (!map)
		return -ENOMEM;
	map->used = ++maps->tick;
	err = refresh(maps, map);
	if (err && !map->range_count) {
		maps->stats.misses++;
		return err;
	}
	/* The first range that starts after addr; the one before may hold it. */
	next = SORTED_UPPER_BOUND(map->ranges, map->range_count, start, addr);
	if (!next || addr >= map->ranges[next - 1].end) {
		maps->stats.misses++;
		return -ENOENT;
	}
	*ret_name = map->names.data + map->ranges[next - 1].name;
	return 0;
}

void perf_maps__forget(struct perf_maps *maps, int pid)
{
	struct process_map *map;

	if (hashmap__delete(maps->processes, pid, NULL, (void **)&map))
		free_map(maps, map);
}

void perf_maps__stats(const struct perf_maps *maps, struct perf_maps_stats *ret_stats)
{
	*ret_stats = maps->stats;
	ret_stats->bytes = maps->bytes;
}
