// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the spool's record reader and the record labels' parser: the
 * input (after one byte of flags) is a record file found in the spool
 * directory at open. Flags can repair its sizes and CRC, so that mutations
 * reach the labels past the checks. A record that reads back must parse,
 * format and parse again to the same labels (made printable, as format
 * writes them); a record put must claim back byte for byte.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "agent/push/record.h"
#include "agent/push/spool.h"
#include "tests/fuzz/fuzz.h"

#define HEADER_SIZE 24 /* spool.c's record header: magic, sizes, CRC, reserved */
#define FIX_SIZES 1
#define FIX_CRC 2
#define PUT_BACK 4

static char dir[64];
static int dir_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/kiln-fuzz-spool-XXXXXX");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(dir_fd >= 0);
	return 0;
}

static void put_u32(uint8_t *p, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The record file the flags make of the input; malloc'd. */
static uint8_t *make_file(uint8_t flags, const uint8_t *data, size_t size)
{
	uint8_t *file = malloc(size ? size : 1);

	FUZZ_CHECK(file != NULL);
	memcpy(file, data, size);
	if (size < HEADER_SIZE)
		return file;
	if (flags & FIX_SIZES) {
		uint32_t meta_size = get_u32(file + 8) % (uint32_t)(size - HEADER_SIZE + 1);

		put_u32(file + 8, meta_size);
		put_u32(file + 12, (uint32_t)(size - HEADER_SIZE - meta_size));
	}
	if (flags & FIX_CRC)
		put_u32(file + 16, (uint32_t)crc32(0, file + HEADER_SIZE, size - HEADER_SIZE));
	return file;
}

/* The label as format writes it: printable, on one line. */
static bool same_label(const char *formatted, const char *parsed)
{
	char label[256];

	push_label_sanitize(parsed, "", label, sizeof(label));
	return !strcmp(formatted, label);
}

static void check_labels(const char *meta)
{
	struct push_record record, again;
	char text[1024], label[64];

	push_label_sanitize(meta, "/", label, sizeof(label));
	FUZZ_CHECK(strlen(label) < sizeof(label));
	if (push_record_parse(meta, &record))
		return;
	FUZZ_CHECK(push_record__format(&record, text, sizeof(text)) == 0);
	FUZZ_CHECK(push_record_parse(text, &again) == 0);
	FUZZ_CHECK(again.off_cpu == record.off_cpu && again.pid == record.pid &&
		   again.start_ns == record.start_ns && again.duration_ns == record.duration_ns);
	FUZZ_CHECK(same_label(again.comm, record.comm) &&
		   same_label(again.service_name, record.service_name) &&
		   same_label(again.hostname, record.hostname));
}

/* Puts what was read as a new record, which must claim back the same. */
static void put_back(struct spool *spool, const char *meta, const uint8_t *payload,
		     size_t payload_size)
{
	struct spool_item again;

	FUZZ_CHECK(spool__put(spool, meta, payload, payload_size) == 0);
	FUZZ_CHECK(spool__claim(spool, &again) == 0);
	FUZZ_CHECK(!strcmp(again.meta, meta) && again.payload_size == payload_size &&
		   !memcmp(again.payload, payload, payload_size));
	spool__release(spool, &again, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct spool_opts opts = { .dir = dir, .max_bytes = 1 << 20, .max_files = 4 };
	static const char name[] = "0000000000000001.prof";
	struct spool_item item;
	struct spool *spool;
	uint8_t *file;
	int fd;

	if (!size)
		return 0;
	file = make_file(data[0], data + 1, size - 1);
	fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(fuzz_write_all(fd, file, size - 1) == 0);
	close(fd);
	free(file);

	spool = spool__open(&opts);
	FUZZ_CHECK(spool != NULL);
	if (spool__claim(spool, &item) == 0) {
		FUZZ_CHECK(strlen(item.meta) + item.payload_size + HEADER_SIZE == item.file_size);
		check_labels(item.meta);
		if (data[0] & PUT_BACK) {
			char *meta = strdup(item.meta);
			uint8_t *payload = malloc(item.payload_size + 1);
			size_t payload_size = item.payload_size;

			FUZZ_CHECK(meta && payload);
			memcpy(payload, item.payload, payload_size);
			spool__release(spool, &item, true);
			put_back(spool, meta, payload, payload_size);
			free(meta);
			free(payload);
		} else {
			spool__release(spool, &item, true);
		}
	}
	spool__close(spool);
	unlinkat(dir_fd, name, 0);
	return 0;
}
