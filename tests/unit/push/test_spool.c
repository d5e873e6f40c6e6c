// SPDX-License-Identifier: Apache-2.0
/* The upload spool: order, restarts, its bound, damaged files, the directory lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/push/spool.h"
#include "tests/unit/testing.h"

static char *new_dir(void)
{
	static char path[64];

	snprintf(path, sizeof(path), "/tmp/kiln-spool-test.XXXXXX");
	return mkdtemp(path);
}

static void remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Bytes of every file in dir (the lock file is empty). */
static uint64_t dir_bytes(const char *dir, unsigned int *ret_files)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	uint64_t total = 0;
	unsigned int files = 0;
	char path[512];
	struct stat st;

	while (d && (entry = readdir(d))) {
		if (entry->d_name[0] == '.' && (!entry->d_name[1] || entry->d_name[1] == '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		if (!stat(path, &st) && st.st_size) {
			total += (uint64_t)st.st_size;
			files++;
		}
	}
	if (d)
		closedir(d);
	if (ret_files)
		*ret_files = files;
	return total;
}

static void put_numbered(struct spool *spool, int number, size_t payload_size)
{
	uint8_t payload[4096];
	char meta[32];

	memset(payload, number & 0xff, sizeof(payload));
	snprintf(meta, sizeof(meta), "n=%d\n", number);
	CHECK(payload_size <= sizeof(payload));
	CHECK(spool__put(spool, meta, payload, payload_size) == 0);
}

/* Claims the oldest and returns its number (-1 when empty), removing it when remove. */
static int claim_number(struct spool *spool, bool remove, size_t *ret_size)
{
	struct spool_item item;
	int number = -1;

	if (spool__claim(spool, &item))
		return -1;
	sscanf(item.meta, "n=%d", &number);
	for (size_t i = 0; i < item.payload_size; i++)
		if (item.payload[i] != (number & 0xff)) {
			number = -2;
			break;
		}
	if (ret_size)
		*ret_size = item.payload_size;
	spool__release(spool, &item, remove);
	return number;
}

static void test_fifo_and_roundtrip(void)
{
	char *dir = new_dir();
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 100 };
	struct spool *spool = spool__open(&opts);
	struct spool_stats stats;
	struct spool_item item, other;
	size_t size = 0;

	CHECK(spool);
	if (!spool)
		return;
	for (int i = 1; i <= 5; i++)
		put_numbered(spool, i, 100 * (size_t)i);
	/* One claim at a time; a released, kept record comes back first. */
	CHECK(spool__claim(spool, &item) == 0);
	CHECK(spool__claim(spool, &other) == -EBUSY);
	CHECK_STR(item.meta, "n=1\n");
	CHECK(item.payload_size == 100);
	spool__release(spool, &item, false);
	for (int i = 1; i <= 5; i++) {
		CHECK(claim_number(spool, true, &size) == i);
		CHECK(size == 100 * (size_t)i);
	}
	CHECK(claim_number(spool, true, NULL) == -1);
	spool__stats(spool, &stats);
	CHECK(stats.files == 0 && stats.bytes == 0 && stats.put == 5 && stats.dropped == 0);
	spool__close(spool);
	remove_dir(dir);
}

static void test_survives_restart(void)
{
	char *dir = new_dir(), path[256];
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 100 };
	struct spool *spool = spool__open(&opts);
	struct spool_stats stats;
	int fd;

	CHECK(spool);
	if (!spool)
		return;
	for (int i = 1; i <= 4; i++)
		put_numbered(spool, i, 50);
	CHECK(claim_number(spool, true, NULL) == 1);
	spool__close(spool);
	/* A crash mid-write leaves a temporary file: it goes at the next open. */
	snprintf(path, sizeof(path), "%s/.tmp-0000000000000009.prof", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "KILN", 4) == 4);
	close(fd);

	spool = spool__open(&opts);
	CHECK(spool);
	if (!spool)
		return;
	spool__stats(spool, &stats);
	CHECK(stats.recovered == 3 && stats.files == 3);
	CHECK(access(path, F_OK) != 0);
	put_numbered(spool, 5, 50);
	for (int i = 2; i <= 5; i++)
		CHECK(claim_number(spool, true, NULL) == i);
	spool__close(spool);
	remove_dir(dir);
}

static void test_bound_drops_oldest(void)
{
	char *dir = new_dir();
	/* Each record: 24-byte header + "n=NN\n" + 1000 bytes, about 1030. */
	const struct spool_opts opts = { .dir = dir, .max_bytes = 5000, .max_files = 100 };
	struct spool *spool = spool__open(&opts);
	struct spool_stats stats;
	struct spool_item claimed;
	unsigned int files;

	CHECK(spool);
	if (!spool)
		return;
	put_numbered(spool, 1, 1000);
	CHECK(spool__claim(spool, &claimed) == 0); /* in flight: never dropped */
	for (int i = 2; i <= 20; i++) {
		put_numbered(spool, i, 1000);
		CHECK(dir_bytes(dir, NULL) <= opts.max_bytes);
	}
	spool__stats(spool, &stats);
	CHECK(dir_bytes(dir, &files) == stats.bytes);
	CHECK(files == stats.files && stats.files == 4);
	/* 20 put, 4 kept (the claimed one and the newest three): 16 dropped, oldest first. */
	CHECK(stats.dropped == 16);
	spool__release(spool, &claimed, true);
	for (int i = 18; i <= 20; i++)
		CHECK(claim_number(spool, true, NULL) == i);
	/* Too big on its own: refused and counted, nothing else lost. */
	put_numbered(spool, 21, 100);
	put_numbered(spool, 22, 4096);
	spool__stats(spool, &stats);
	CHECK(stats.files == 2);
	{
		static uint8_t big[8192];

		CHECK(spool__put(spool, "n=23\n", big, sizeof(big)) == -EFBIG);
	}
	spool__stats(spool, &stats);
	CHECK(stats.files == 2 && stats.dropped == 17);
	spool__close(spool);

	/* A smaller bound at the next start drops the oldest right away. */
	const struct spool_opts smaller = { .dir = dir, .max_bytes = 4200, .max_files = 100 };
	spool = spool__open(&smaller);
	CHECK(spool);
	if (!spool)
		return;
	spool__stats(spool, &stats);
	CHECK(stats.files == 1 && stats.dropped == 1);
	CHECK(claim_number(spool, true, NULL) == 22);
	spool__close(spool);
	remove_dir(dir);
}

static void test_file_limit(void)
{
	char *dir = new_dir();
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 3 };
	struct spool *spool = spool__open(&opts);
	struct spool_stats stats;

	CHECK(spool);
	if (!spool)
		return;
	for (int i = 1; i <= 10; i++)
		put_numbered(spool, i, 10);
	spool__stats(spool, &stats);
	CHECK(stats.files == 3 && stats.dropped == 7);
	for (int i = 8; i <= 10; i++)
		CHECK(claim_number(spool, true, NULL) == i);
	spool__close(spool);
	remove_dir(dir);
}

static void test_damaged_file_skipped(void)
{
	char *dir = new_dir(), path[256];
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 100 };
	struct spool *spool = spool__open(&opts);
	struct spool_stats stats;
	int fd;

	CHECK(spool);
	if (!spool)
		return;
	for (int i = 1; i <= 3; i++)
		put_numbered(spool, i, 200);
	spool__close(spool);
	/* As a power loss might leave them: a flipped byte in record 1, record 2 cut short. */
	snprintf(path, sizeof(path), "%s/0000000000000001.prof", dir);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, 100) == 1);
	close(fd);
	snprintf(path, sizeof(path), "%s/0000000000000002.prof", dir);
	CHECK(truncate(path, 60) == 0);
	spool = spool__open(&opts);
	CHECK(spool);
	if (!spool)
		return;
	CHECK(claim_number(spool, true, NULL) == 3);
	spool__stats(spool, &stats);
	CHECK(stats.corrupt == 2 && stats.files == 0 && stats.bytes == 0);
	spool__close(spool);
	remove_dir(dir);
}

static void test_one_kiln_per_directory(void)
{
	char *dir = new_dir();
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 100 };
	struct spool *first = spool__open(&opts), *second;

	CHECK(first);
	errno = 0;
	second = spool__open(&opts);
	CHECK(!second && errno == EBUSY);
	spool__close(second);
	spool__close(first);
	second = spool__open(&opts);
	CHECK(second);
	spool__close(second);
	remove_dir(dir);
}

TEST_MAIN("spool", TEST(test_fifo_and_roundtrip), TEST(test_survives_restart),
	  TEST(test_bound_drops_oldest), TEST(test_file_limit), TEST(test_damaged_file_skipped),
	  TEST(test_one_kiln_per_directory))
