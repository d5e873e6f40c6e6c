// SPDX-License-Identifier: Apache-2.0
/* output_retention: the oldest of many profiles deleted in batches, other files kept. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/output/retention.h"
#include "tests/unit/testing.h"

static void write_file(const char *dir, const char *name, size_t size)
{
	char path[512];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = fopen(path, "we");
	CHECK(file != NULL);
	if (!file)
		return;
	for (size_t i = 0; i < size; i++)
		fputc('x', file);
	fclose(file);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* The stamp of window i: one a minute from 2020-01-01T00:00:00Z, in stamp order. */
static void profile_name(size_t i, const char *kind, char *name, size_t size)
{
	snprintf(name, size, "%s-202001%02zuT%02zu%02zu00Z.pb.gz", kind, 1 + i / 1440, i / 60 % 24,
		 i % 60);
}

static void remove_all(const char *dir)
{
	char command[600];

	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	CHECK(system(command) == 0);
}

/* 600 windows of 1 KiB, more than one batch: pruned to the 90 newest in one go. */
static void test_prune_in_batches(void)
{
	char dir[] = "/tmp/kiln-test-retention-XXXXXX", name[64];
	struct output_retention_stats stats;
	struct output_retention *retention;
	size_t kept = 0;

	CHECK(mkdtemp(dir) != NULL);
	/* Created newest first, so that directory order is no help. */
	for (size_t i = 600; i-- > 0;) {
		profile_name(i, "cpu", name, sizeof(name));
		write_file(dir, name, 1024);
	}
	write_file(dir, "cpu-19990101T000000Z.pb.gz.tmp", 4096);
	write_file(dir, "README", 4096);
	retention = output_retention__open(dir, 100 << 10);
	CHECK(retention != NULL);
	if (!retention)
		goto cleanup;
	output_retention__stats(retention, &stats);
	CHECK(stats.deleted == 510 && stats.deleted_bytes == 510 * 1024);
	CHECK(stats.files == 90 && stats.bytes == 90 * 1024);
	CHECK(stats.prunes == 1 && stats.last_error == 0);
	for (size_t i = 0; i < 600; i++) {
		profile_name(i, "cpu", name, sizeof(name));
		kept += exists(dir, name);
		if (exists(dir, name) != (i >= 510)) {
			CHECK(!"the 510 oldest deleted, the rest kept");
			break;
		}
	}
	CHECK(kept == 90);
	CHECK(exists(dir, "README") && exists(dir, "cpu-19990101T000000Z.pb.gz.tmp"));

	/* New windows: within the bound nothing goes; past it, the oldest, never the new one. */
	profile_name(600, "cpu", name, sizeof(name));
	write_file(dir, name, 5 * 1024);
	output_retention__added(retention, name);
	output_retention__stats(retention, &stats);
	CHECK(stats.deleted == 510 && stats.bytes == 95 * 1024);
	profile_name(601, "offcpu", name, sizeof(name));
	write_file(dir, name, 60 * 1024);
	output_retention__added(retention, name);
	output_retention__stats(retention, &stats);
	/* 155 KiB: down to 90 KiB, the 65 oldest 1 KiB files. */
	CHECK(stats.deleted == 575 && stats.bytes == 90 * 1024 && stats.prunes == 2);
	CHECK(exists(dir, name));
	profile_name(575, "cpu", name, sizeof(name));
	CHECK(exists(dir, name));
	profile_name(574, "cpu", name, sizeof(name));
	CHECK(!exists(dir, name));
	output_retention__free(retention);
cleanup:
	remove_all(dir);
}

/* No bound: nothing is ever deleted. A missing directory is an error. */
static void test_unbounded_and_missing(void)
{
	char dir[] = "/tmp/kiln-test-retention-XXXXXX", name[64];
	struct output_retention_stats stats;
	struct output_retention *retention;

	CHECK(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < 10; i++) {
		profile_name(i, "offcpu", name, sizeof(name));
		write_file(dir, name, 1024);
	}
	retention = output_retention__open(dir, 0);
	CHECK(retention != NULL);
	if (retention) {
		profile_name(10, "offcpu", name, sizeof(name));
		write_file(dir, name, 1 << 20);
		output_retention__added(retention, name);
		output_retention__stats(retention, &stats);
		CHECK(stats.deleted == 0 && stats.files == 11);
		output_retention__free(retention);
	}
	remove_all(dir);
	CHECK(output_retention__open(dir, 1024) == NULL);
}

TEST_MAIN("output_retention", TEST(test_prune_in_batches), TEST(test_unbounded_and_missing))
