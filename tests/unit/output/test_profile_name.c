// SPDX-License-Identifier: Apache-2.0
/* The output file-name grammar: names formatted from kind and time, read back, others refused. */
#include <errno.h>
#include <stdint.h>

#include "lib/array.h"
#include "agent/output/profile_name.h"
#include "tests/unit/testing.h"

/* 2026-11-21 14:30:00 UTC, and a fraction of a second more. */
#define START_NS (1795271400LL * 1000000000 + 999999999)

static void test_format(void)
{
	char name[PROFILE_NAME_SIZE], stamp[PROFILE_STAMP_SIZE];

	profile_stamp_format(START_NS, stamp);
	CHECK_STR(stamp, "20261121T143000Z");
	profile_name_format(PROFILE_KIND_CPU, START_NS, name);
	CHECK_STR(name, "cpu-20261121T143000Z.pb.gz");
	profile_name_format(PROFILE_KIND_OFF_CPU, START_NS, name);
	CHECK_STR(name, "offcpu-20261121T143000Z.pb.gz");
	profile_name_format(PROFILE_KIND_CPU, 0, name);
	CHECK_STR(name, "cpu-19700101T000000Z.pb.gz");
}

static void test_round_trip(void)
{
	const int64_t times[] = { 0, START_NS, 951782400LL * 1000000000 /* 2000-02-29 */,
				  4102444799LL * 1000000000 /* 2099-12-31 23:59:59 */ };

	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		for (int kind = PROFILE_KIND_CPU; kind <= PROFILE_KIND_OFF_CPU; kind++) {
			char name[PROFILE_NAME_SIZE], stamp[PROFILE_STAMP_SIZE];
			char parsed_stamp[PROFILE_STAMP_SIZE];
			enum profile_kind parsed_kind = -1;

			profile_name_format(kind, times[i], name);
			profile_stamp_format(times[i], stamp);
			CHECK(profile_name_parse(name, &parsed_kind, parsed_stamp) == 0);
			CHECK((int)parsed_kind == kind);
			CHECK_STR(parsed_stamp, stamp);
		}
	}
}

static void test_rejects(void)
{
	static const char *const names[] = {
		"",
		"cpu-",
		"cpu-20261121T143000Z.pb",
		"cpu-20261121T143000Z.pb.gz.tmp",
		".tmp-cpu-20261121T143000Z.pb.gz.12.0",
		"cpu-20261121T143000Z.pb.gzx",
		"cpu-20261121T14300Z.pb.gz", /* a digit short */
		"cpu-202611211T43000Z.pb.gz", /* T misplaced */
		"cpu-20261121X143000Z.pb.gz",
		"cpu-20261121T143000X.pb.gz",
		"cpu-2026112aT143000Z.pb.gz",
		"offcpu20261121T143000Z.pb.gz",
		"gpu-20261121T143000Z.pb.gz",
		"CPU-20261121T143000Z.pb.gz",
		"off-cpu-20261121T143000Z.pb.gz",
		"offcpu-20261121T143000Z.pb.gz/",
		"README",
	};
	enum profile_kind kind = PROFILE_KIND_OFF_CPU;
	char stamp[PROFILE_STAMP_SIZE] = "untouched";

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (profile_name_parse(names[i], &kind, stamp) != -EINVAL)
			fprintf(stderr, "accepted: '%s'\n", names[i]);
		CHECK(profile_name_parse(names[i], &kind, stamp) == -EINVAL);
	}
	CHECK(kind == PROFILE_KIND_OFF_CPU);
	CHECK_STR(stamp, "untouched");
	CHECK(profile_name_parse("offcpu-20261121T143000Z.pb.gz", &kind, stamp) == 0);
}

TEST_MAIN("profile_name", TEST(test_format), TEST(test_round_trip), TEST(test_rejects))
