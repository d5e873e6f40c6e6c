// SPDX-License-Identifier: Apache-2.0
/*
 * Test and bench driver for kiln's symbolizer alone: resolves addresses read
 * from stdin (hex, one per line) and prints one JSON object per address:
 *   {"address":"0x...","frames":[{"function":..,"system_name":..,"file":..,
 *    "line":N,"start_line":N}, ...]}   (innermost frame first)
 *
 *   symbolize FILE      addresses are ELF virtual addresses of FILE
 *   symbolize --kernel  addresses are kernel addresses (kallsyms)
 *   --passes N          resolve the whole list N times in one symbolizer,
 *                       printing the last pass
 *   --end-window-every N
 *                       end a window (DWARF readers closed) after every N
 *                       addresses, as the daemon does after each window
 *   --quiet             print no locations
 *   --time              print each pass's time on stderr
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "symbolizer/symbolizer.h"

#define MAX_SEGMENTS 16

/* Pretends each executable segment of the file is mapped at its own virtual address. */
static int read_mappings(const char *path, struct proc_mapping *mappings, size_t *ret_count)
{
	size_t segment_count, count = 0;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	Elf *elf = NULL;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_getphdrnum(elf, &segment_count) < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	for (size_t i = 0; i < segment_count && count < MAX_SEGMENTS; i++) {
		GElf_Phdr phdr;
		uint64_t start;

		if (!gelf_getphdr(elf, i, &phdr) || phdr.p_type != PT_LOAD ||
		    !(phdr.p_flags & PF_X))
			continue;
		start = phdr.p_vaddr & ~(uint64_t)(page - 1);
		mappings[count++] = (struct proc_mapping){
			.start = start,
			.end = (phdr.p_vaddr + phdr.p_memsz + page - 1) & ~(uint64_t)(page - 1),
			.offset = phdr.p_offset - (phdr.p_vaddr - start),
			.perms = PROC_MAP_READ | PROC_MAP_EXEC,
			.dev_major = major(st.st_dev),
			.dev_minor = minor(st.st_dev),
			.inode = st.st_ino,
			.path = (char *)path,
		};
	}
	*ret_count = count;
cleanup:
	elf_end(elf);
	close(fd);
	return err;
}

static void print_json_string(const char *text)
{
	if (!text) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

static void print_location(uint64_t address, const struct symbolized_location *location)
{
	printf("{\"address\":\"0x%" PRIx64 "\",\"frames\":[", address);
	for (size_t i = 0; i < location->frame_count; i++) {
		const struct symbolized_frame *frame = &location->frames[i];

		printf("%s{\"function\":", i ? "," : "");
		print_json_string(frame->function);
		fputs(",\"system_name\":", stdout);
		print_json_string(frame->system_name);
		fputs(",\"file\":", stdout);
		print_json_string(frame->file);
		printf(",\"line\":%" PRIu32 ",\"start_line\":%" PRIu32 "}", frame->line,
		       frame->start_line);
	}
	fputs("]}\n", stdout);
}

static double now_seconds(void)
{
	return now_ns() / 1e9;
}

int main(int argc, char **argv)
{
	struct proc_mapping mappings[MAX_SEGMENTS];
	size_t mapping_count = 0, address_count = 0, capacity = 0;
	const char *path = NULL;
	struct symbolizer *symbolizer;
	bool kernel = false, quiet = false, timed = false;
	uint64_t *addresses = NULL;
	char line[128];
	int passes = 1, err;
	size_t window_every = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kernel") == 0)
			kernel = true;
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else if (strcmp(argv[i], "--time") == 0)
			timed = true;
		else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
			passes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--end-window-every") == 0 && i + 1 < argc)
			window_every = strtoul(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "symbolize: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if ((!path && !kernel) || passes < 1) {
		fprintf(stderr, "usage: symbolize [--passes N] [--quiet] [--time] FILE|--kernel "
				"<addresses\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		if (address_count == capacity) {
			capacity = capacity ? 2 * capacity : 1024;
			addresses = realloc(addresses, capacity * sizeof(*addresses));
			if (!addresses)
				return 1;
		}
		addresses[address_count++] = strtoull(line, NULL, 16);
	}
	if (!kernel) {
		/* Mappings name absolute paths, as /proc/PID/maps does. */
		path = realpath(path, NULL);
		err = path ? read_mappings(path, mappings, &mapping_count) : -errno;
		if (err) {
			fprintf(stderr, "symbolize: %s: %s\n", path, strerror(-err));
			return 1;
		}
	}
	symbolizer = symbolizer__new(NULL);
	if (!symbolizer)
		return 1;
	for (int pass = 0; pass < passes; pass++) {
		double start = now_seconds();
		bool print = !quiet && pass == passes - 1;

		for (size_t i = 0; i < address_count; i++) {
			struct symbolized_location location = { .frame_count = 0 };
			const struct proc_mapping *mapping = NULL;

			for (size_t m = 0; m < mapping_count && !mapping; m++)
				if (addresses[i] >= mappings[m].start &&
				    addresses[i] < mappings[m].end)
					mapping = &mappings[m];
			if (kernel)
				err = symbolizer__resolve_kernel(symbolizer, addresses[i], false,
								 &location);
			else if (mapping)
				err = symbolizer__resolve_user(symbolizer, getpid(), mapping,
							       addresses[i], false, &location);
			else
				err = 0;
			if (err)
				location.frame_count = 0;
			if (print)
				print_location(addresses[i], &location);
			if (window_every && (i + 1) % window_every == 0)
				symbolizer__end_window(symbolizer);
		}
		if (timed)
			fprintf(stderr, "pass %d: %zu addresses in %.6f s\n", pass + 1,
				address_count, now_seconds() - start);
	}
	symbolizer__free(symbolizer);
	free(addresses);
	free((char *)path);
	return 0;
}
