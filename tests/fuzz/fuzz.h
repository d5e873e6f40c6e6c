/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the libFuzzer targets: the input as a file for parsers that read
 * files, and a check that aborts (libFuzzer then keeps the input) when an
 * invariant the parser promises does not hold.
 */
#ifndef KILN_TESTS_FUZZ_H
#define KILN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <libelf.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Writes all of data to fd from its current offset; 0 or -1. */
static inline int fuzz_write_all(int fd, const uint8_t *data, size_t size)
{
	while (size) {
		ssize_t done = write(fd, data, size);

		if (done <= 0)
			return -1;
		data += done;
		size -= (size_t)done;
	}
	return 0;
}

/*
 * The input as an anonymous file (a memfd), as kiln would open it from
 * disk: parsers that mmap or pread their file get the same bytes. Aborts
 * when the machine cannot make one: a fuzz run that tests nothing must not
 * look like a clean one.
 */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("kiln-fuzz", MFD_CLOEXEC);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(fuzz_write_all(fd, data, size) == 0);
	return fd;
}

/*
 * The input as libelf sees a file kiln opened: mmapped from an fd (which
 * elf_reopen_private can open again through /proc/self/map_files). NULL
 * when libelf does not take it as an ELF file; *ret_fd is closed by the
 * caller after elf_end either way.
 */
static inline Elf *fuzz_elf_open(const uint8_t *data, size_t size, int *ret_fd)
{
	Elf *elf;

	FUZZ_CHECK(elf_version(EV_CURRENT) != EV_NONE);
	*ret_fd = fuzz_memfd(data, size);
	elf = elf_begin(*ret_fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) != ELF_K_ELF) {
		elf_end(elf);
		return NULL;
	}
	return elf;
}

#endif /* KILN_TESTS_FUZZ_H */
