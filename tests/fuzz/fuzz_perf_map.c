// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the perf-map reader through its file: the input, split in two at
 * a point its first byte picks, becomes this process's /tmp/perf-PID.map,
 * read once, then again after the second part was appended (the map of a
 * JIT that keeps writing). Every lookup must name what the last complete
 * line covering the address names, as the header promises.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "symbolizer/perf_map.h"
#include "tests/fuzz/fuzz.h"

#define MAX_NAME_BYTES 256 /* perf_map.c's cut */
#define MAX_LINES 256
#define RECHECK_NS (1000 * 1000)

struct line {
	uint64_t start, end;
	const char *name;
	size_t name_len;
};

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
	return 0;
}

/* Hex, an optional 0x, 1 to 16 digits; returns where it stopped or NULL. */
static const char *parse_hex(const char *p, const char *end, uint64_t *ret_value)
{
	const char *digits;
	char text[17];
	size_t count;

	if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (digits = p; p < end && isxdigit((unsigned char)*p); p++)
		;
	count = (size_t)(p - digits);
	if (!count || count > 16)
		return NULL;
	memcpy(text, digits, count);
	text[count] = '\0';
	*ret_value = strtoull(text, NULL, 16);
	return p;
}

/* The reference reading of "START SIZE name" lines, complete ones only. */
static size_t reference_lines(const char *text, size_t size, struct line *lines)
{
	const char *line = text, *end = text + size, *newline;
	size_t count = 0;

	while (count < MAX_LINES && (newline = memchr(line, '\n', (size_t)(end - line)))) {
		const char *stop = newline, *p;
		uint64_t start, length;

		if (stop > line && stop[-1] == '\r')
			stop--;
		p = parse_hex(line, stop, &start);
		if (p && p < stop && *p == ' ' && (p = parse_hex(p + 1, stop, &length)) &&
		    p < stop && *p == ' ' && length && start + length >= start && p + 1 < stop) {
			p++;
			lines[count++] = (struct line){ start, start + length, p,
							(size_t)(stop - p) < MAX_NAME_BYTES
								? (size_t)(stop - p)
								: MAX_NAME_BYTES };
		}
		line = newline + 1;
	}
	return count;
}

static void check_lookup(struct perf_maps *maps, const struct line *lines, size_t count,
			 uint64_t addr)
{
	const struct line *expected = NULL;
	const char *name;
	int err;

	for (size_t i = 0; i < count; i++) {
		if (lines[i].start <= addr && addr < lines[i].end)
			expected = &lines[i];
	}
	err = perf_maps__lookup(maps, getpid(), addr, &name);
	if (!expected) {
		FUZZ_CHECK(err == -ENOENT);
		return;
	}
	if (err || strlen(name) != strnlen(expected->name, expected->name_len))
		fprintf(stderr, "addr %#llx: err %d, got \"%s\", expected line %zu \"%.*s\"\n",
			(unsigned long long)addr, err, err ? "" : name, (size_t)(expected - lines),
			(int)expected->name_len, expected->name);
	FUZZ_CHECK(err == 0);
	/* A NUL inside a name ends it early. */
	FUZZ_CHECK(strlen(name) == strnlen(expected->name, expected->name_len));
	FUZZ_CHECK(memcmp(name, expected->name, strlen(name)) == 0);
}

static void check_all(struct perf_maps *maps, const uint8_t *text, size_t size)
{
	static struct line lines[MAX_LINES];
	size_t count = reference_lines((const char *)text, size, lines);

	for (size_t i = 0; i < count; i++) {
		check_lookup(maps, lines, count, lines[i].start);
		check_lookup(maps, lines, count, lines[i].start - 1);
		check_lookup(maps, lines, count, lines[i].end - 1);
		check_lookup(maps, lines, count, lines[i].end);
	}
}

/*
 * Past the recheck interval, by the clock: libFuzzer's SIGALRM (its hang
 * timer) can cut a sleep short, and a reader not yet due for a check would
 * miss the appended lines.
 */
static void wait_past_recheck(void)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		usleep(RECHECK_NS / 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((uint64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (uint64_t)now.tv_nsec -
			 (uint64_t)start.tv_nsec <=
		 RECHECK_NS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Once a process's map has been read, it is checked again after this. */
	const struct perf_maps_opts opts = { .recheck_interval_ns = RECHECK_NS };
	struct perf_maps_stats stats;
	struct perf_maps *maps;
	size_t split, newlines = 0;
	int fd;

	for (size_t i = 0; i < size; i++)
		newlines += data[i] == '\n';
	/*
	 * More lines than the reference keeps, or lines longer than the
	 * reader's 64 KiB chunk (skipped), would make the reference wrong.
	 */
	if (!newlines || newlines > MAX_LINES || size > 60000)
		return 0;
	split = 1 + (size - 1) * data[0] / 255;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(fuzz_write_all(fd, data + 1, split - 1) == 0);
	maps = perf_maps__new(&opts);
	FUZZ_CHECK(maps != NULL);
	perf_maps__prepare(maps, getpid());
	check_all(maps, data + 1, split - 1);
	FUZZ_CHECK(fuzz_write_all(fd, data + split, size - split) == 0);
	wait_past_recheck();
	check_all(maps, data + 1, size - 1);
	perf_maps__stats(maps, &stats);
	perf_maps__forget(maps, getpid());
	perf_maps__free(maps);
	close(fd);
	return 0;
}
