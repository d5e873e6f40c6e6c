/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The names of the profiles kiln writes to its output directory, in one
 * place: "cpu-<stamp>.pb.gz" and "offcpu-<stamp>.pb.gz", the stamp the
 * window's start in UTC to the second, like 20261121T143000Z. Stamps sort
 * as their times do, so a name's age is read from the name alone.
 */
#ifndef KILN_OUTPUT_PROFILE_NAME_H
#define KILN_OUTPUT_PROFILE_NAME_H

#include <stddef.h>
#include <stdint.h>

enum profile_kind {
	PROFILE_KIND_CPU,
	PROFILE_KIND_OFF_CPU,
};

/* "20261121T143000Z": the stamp's length, and a buffer holding one with its NUL. */
#define PROFILE_STAMP_LEN 16
#define PROFILE_STAMP_SIZE (PROFILE_STAMP_LEN + 1)
/* The longest name, "offcpu-20261121T143000Z.pb.gz", with its NUL. */
#define PROFILE_NAME_SIZE 32

/* The stamp of start_ns (Unix time, ns), rounded down to the second. */
void profile_stamp_format(int64_t start_ns, char stamp[PROFILE_STAMP_SIZE]);

/* The file name of a kind's window that started at start_ns (Unix time, ns). */
void profile_name_format(enum profile_kind kind, int64_t start_ns, char name[PROFILE_NAME_SIZE]);

/*
 * Reads a name back: its kind and stamp. Returns 0, or -EINVAL for any
 * name that is not one of kiln's profiles (ret_* untouched then).
 */
int profile_name_parse(const char *name, enum profile_kind *ret_kind,
		       char ret_stamp[PROFILE_STAMP_SIZE]);

#endif /* KILN_OUTPUT_PROFILE_NAME_H */
