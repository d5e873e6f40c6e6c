// SPDX-License-Identifier: Apache-2.0
/* The upload spool: a bounded directory of record files, oldest first, surviving restarts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/push/spool.h"
#include "lib/fs.h"

/*
 * A record file, "<seq as 16 hex digits>.prof":
 *   "KILNSPL1", meta size, payload size, CRC-32 of meta and payload,
 *   reserved (all u32 little-endian), then meta and payload.
 * Files are written under a temporary name and renamed, so a crash never
 * leaves a half record under a record name. They are not fsync'd: a record
 * survives kiln's restarts and crashes through the page cache; after a power
 * loss a torn file fails its CRC on reading and is dropped and counted.
 */
#define SPOOL_MAGIC "KILNSPL1"
#define SPOOL_HEADER_SIZE 24
#define SPOOL_SUFFIX ".prof"
#define SPOOL_NAME_SIZE 32

_Static_assert(sizeof(SPOOL_MAGIC) - 1 + 4 * 4 == SPOOL_HEADER_SIZE, "header layout");

struct spool {
	pthread_mutex_t lock;
	int dir_fd;
	int lock_fd;
	uint64_t max_bytes;
	uint64_t max_files;
	uint64_t head; /* lowest sequence number that may still be on disk */
	uint64_t next; /* sequence number of the next record */
	uint64_t claimed; /* 0: none */
	uint64_t claimed_size;
	struct spool_stats stats;
};

static void put_u32(uint8_t *p, uint32_t value)
{
	p[0] = value;
	p[1] = value >> 8;
	p[2] = value >> 16;
	p[3] = value >> 24;
}

static uint32_t get_u32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The CRC-32 a record's header holds: of its meta, then its payload. */
static uint32_t record_crc(const char *meta, uint32_t meta_size, const void *payload,
			   uint32_t payload_size)
{
	uLong crc = crc32(0, Z_NULL, 0);

	crc = crc32(crc, (const Bytef *)meta, meta_size);
	return (uint32_t)crc32(crc, payload, payload_size);
}

static void record_name(uint64_t seq, char name[SPOOL_NAME_SIZE])
{
	snprintf(name, SPOOL_NAME_SIZE, "%016" PRIx64 SPOOL_SUFFIX, seq);
}

/* The sequence number of a record file name; false for other names. */
static bool parse_record_name(const char *name, uint64_t *ret_seq)
{
	uint64_t seq = 0;

	if (strlen(name) != 16 + strlen(SPOOL_SUFFIX) || strcmp(name + 16, SPOOL_SUFFIX))
		return false;
	for (int i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			seq = seq << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			seq = seq << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (!seq)
		return false;
	*ret_seq = seq;
	return true;
}

/* Finds the records of an earlier run; removes temporary files a crash left. */
static int scan(struct spool *spool)
{
	uint64_t min_seq = UINT64_MAX, max_seq = 0;
	struct dirent *entry;
	DIR *dir;

	dir = fs_opendir_at(spool->dir_fd);
	if (!dir)
		return -errno;
	while ((entry = readdir(dir))) {
		struct stat st;
		uint64_t seq;

		if (!strncmp(entry->d_name, FS_TEMP_PREFIX, strlen(FS_TEMP_PREFIX))) {
			unlinkat(spool->dir_fd, entry->d_name, 0);
			continue;
		}
		if (!parse_record_name(entry->d_name, &seq))
			continue;
		if (fstatat(spool->dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		spool->stats.files++;
		spool->stats.bytes += (uint64_t)st.st_size;
		min_seq = seq < min_seq ? seq : min_seq;
		max_seq = seq > max_seq ? seq : max_seq;
	}
	closedir(dir);
	spool->stats.recovered = spool->stats.files;
	spool->head = spool->stats.files ? min_seq : 1;
	spool->next = spool->stats.files ? max_seq + 1 : 1;
	return 0;
}

static void remove_record(struct spool *spool, uint64_t seq, uint64_t size)
{
	char name[SPOOL_NAME_SIZE];

	record_name(seq, name);
	unlinkat(spool->dir_fd, name, 0);
	spool->stats.files--;
	spool->stats.bytes -= size;
	if (spool->head == seq)
		spool->head = seq + 1;
}

/* Removes the oldest unclaimed record. Returns 0, or -ENOENT when there is none. */
static int drop_oldest(struct spool *spool)
{
	for (uint64_t seq = spool->head; seq < spool->next; seq++) {
		char name[SPOOL_NAME_SIZE];
		struct stat st;

		if (seq == spool->claimed)
			continue;
		record_name(seq, name);
		if (fstatat(spool->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) {
			if (spool->head == seq)
				spool->head = seq + 1;
			continue;
		}
		remove_record(spool, seq, (uint64_t)st.st_size);
		spool->stats.dropped++;
		spool->stats.dropped_bytes += (uint64_t)st.st_size;
		return 0;
	}
	return -ENOENT;
}

struct spool *spool__open(const struct spool_opts *opts)
{
	struct spool *spool;
	int err;

	if (!opts->dir || !opts->max_bytes || !opts->max_files) {
		errno = EINVAL;
		return NULL;
	}
	err = fs_make_dirs(opts->dir);
	if (err) {
		errno = -err;
		return NULL;
	}
	spool = calloc(1, sizeof(*spool));
	if (!spool)
		return NULL;
	spool->lock_fd = -1;
	spool->max_bytes = opts->max_bytes;
	spool->max_files = opts->max_files;
	pthread_mutex_init(&spool->lock, NULL);
	spool->dir_fd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (spool->dir_fd < 0) {
		err = -errno;
		goto cleanup;
	}
	spool->lock_fd = openat(spool->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (spool->lock_fd < 0) {
		err = -errno;
		goto cleanup;
	}
	if (flock(spool->lock_fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto cleanup;
	}
	err = scan(spool);
	if (err)
		goto cleanup;
	/* A smaller limit than the last run's: the oldest go now. */
	while ((spool->stats.bytes > spool->max_bytes || spool->stats.files > spool->max_files) &&
	       !drop_oldest(spool))
		;
	return spool;

cleanup:
	spool__close(spool);
	errno = -err;
	return NULL;
}

void spool__close(struct spool *spool)
{
	if (!spool)
		return;
	if (spool->lock_fd >= 0)
		close(spool->lock_fd);
	if (spool->dir_fd >= 0)
		close(spool->dir_fd);
	pthread_mutex_destroy(&spool->lock);
	free(spool);
}

static int write_record(struct spool *spool, uint64_t seq, const char *meta, size_t meta_size,
			const void *payload, size_t payload_size)
{
	char name[SPOOL_NAME_SIZE];
	uint8_t header[SPOOL_HEADER_SIZE];
	const struct iovec parts[] = {
		{ header, sizeof(header) },
		{ (void *)meta, meta_size },
		{ (void *)payload, payload_size },
	};

	memcpy(header, SPOOL_MAGIC, 8);
	put_u32(header + 8, (uint32_t)meta_size);
	put_u32(header + 12, (uint32_t)payload_size);
	put_u32(header + 16,
		record_crc(meta, (uint32_t)meta_size, payload, (uint32_t)payload_size));
	put_u32(header + 20, 0);
	record_name(seq, name);
	/* Not durable, on purpose: see the file format above. */
	return fs_write_file_atomic(spool->dir_fd, name, parts, 3, 0600, 0);
}

int spool__put(struct spool *spool, const char *meta, const void *payload, size_t payload_size)
{
	size_t meta_size = strlen(meta);
	uint64_t size = SPOOL_HEADER_SIZE + meta_size + payload_size;
	int err;

	if (meta_size > UINT32_MAX || payload_size > UINT32_MAX)
		return -EFBIG;
	pthread_mutex_lock(&spool->lock);
	/* Unless it could fit beside the claimed record, dropping others would not help. */
	if (spool->claimed_size + size <= spool->max_bytes && spool->max_files > !!spool->claimed) {
		while (spool->stats.files + 1 > spool->max_files ||
		       spool->stats.bytes + size > spool->max_bytes) {
			if (drop_oldest(spool))
				break;
		}
	}
	if (spool->stats.files + 1 > spool->max_files ||
	    spool->stats.bytes + size > spool->max_bytes) {
		/* Too big for the bound, even with nothing else but the claimed record. */
		spool->stats.dropped++;
		spool->stats.dropped_bytes += size;
		err = -EFBIG;
		goto cleanup;
	}
	err = write_record(spool, spool->next, meta, meta_size, payload, payload_size);
	if (err)
		goto cleanup;
	spool->next++;
	spool->stats.files++;
	spool->stats.bytes += size;
	spool->stats.put++;

cleanup:
	pthread_mutex_unlock(&spool->lock);
	return err;
}

/* Reads and checks one record file. Returns 0, -ENOENT, -EBADMSG (corrupt) or -errno. */
static int read_record(struct spool *spool, uint64_t seq, struct spool_item *ret_item,
		       uint64_t *ret_file_size)
{
	char name[SPOOL_NAME_SIZE];
	uint8_t header[SPOOL_HEADER_SIZE];
	uint32_t meta_size, payload_size;
	char *meta = NULL;
	uint8_t *payload = NULL;
	struct stat st;
	int fd, err;

	record_name(seq, name);
	fd = openat(spool->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto cleanup;
	}
	*ret_file_size = (uint64_t)st.st_size;
	err = -EBADMSG;
	if (st.st_size < SPOOL_HEADER_SIZE ||
	    pread(fd, header, SPOOL_HEADER_SIZE, 0) != SPOOL_HEADER_SIZE ||
	    memcmp(header, SPOOL_MAGIC, 8))
		goto cleanup;
	meta_size = get_u32(header + 8);
	payload_size = get_u32(header + 12);
	if ((uint64_t)SPOOL_HEADER_SIZE + meta_size + payload_size != (uint64_t)st.st_size)
		goto cleanup;
	meta = malloc((size_t)meta_size + 1);
	payload = malloc(payload_size ? payload_size : 1);
	if (!meta || !payload) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (pread(fd, meta, meta_size, SPOOL_HEADER_SIZE) != (ssize_t)meta_size ||
	    pread(fd, payload, payload_size, SPOOL_HEADER_SIZE + meta_size) !=
		    (ssize_t)payload_size)
		goto cleanup;
	if (record_crc(meta, meta_size, payload, payload_size) != get_u32(header + 16) ||
	    memchr(meta, '\0', meta_size))
		goto cleanup;
	meta[meta_size] = '\0';
	*ret_item = (struct spool_item){
		.seq = seq,
		.meta = meta,
		.payload = payload,
		.payload_size = payload_size,
		.file_size = (size_t)st.st_size,
	};
	meta = NULL;
	payload = NULL;
	err = 0;

cleanup:
	free(meta);
	free(payload);
	close(fd);
	return err;
}

int spool__claim(struct spool *spool, struct spool_item *ret_item)
{
	int err = -ENOENT;

	pthread_mutex_lock(&spool->lock);
	if (spool->claimed) {
		err = -EBUSY;
		goto cleanup;
	}
	for (uint64_t seq = spool->head; seq < spool->next; seq++) {
		uint64_t file_size = 0;

		err = read_record(spool, seq, ret_item, &file_size);
		if (!err) {
			spool->claimed = seq;
			spool->claimed_size = file_size;
			break;
		}
		if (err == -ENOENT) {
			if (spool->head == seq)
				spool->head = seq + 1;
			continue;
		}
		if (err == -EBADMSG) {
			remove_record(spool, seq, file_size);
			spool->stats.corrupt++;
			continue;
		}
		goto cleanup; /* ENOMEM, EIO: try again later */
	}
	if (!spool->claimed)
		err = -ENOENT;

cleanup:
	pthread_mutex_unlock(&spool->lock);
	return err;
}

void spool__release(struct spool *spool, struct spool_item *item, bool remove)
{
	pthread_mutex_lock(&spool->lock);
	if (spool->claimed == item->seq) {
		if (remove)
			remove_record(spool, item->seq, item->file_size);
		spool->claimed = 0;
		spool->claimed_size = 0;
	}
	pthread_mutex_unlock(&spool->lock);
	free(item->meta);
	free(item->payload);
	*item = (struct spool_item){};
}

void spool__stats(struct spool *spool, struct spool_stats *ret_stats)
{
	pthread_mutex_lock(&spool->lock);
	*ret_stats = spool->stats;
	pthread_mutex_unlock(&spool->lock);
}
