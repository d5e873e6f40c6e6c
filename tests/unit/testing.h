/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal test harness: CHECK records failures, TEST_MAIN prints the tally. */
#ifndef KILN_TESTING_H
#define KILN_TESTING_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/array.h"

static int testing_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			testing_failures++;                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\" (%s vs %s)\n", __FILE__,          \
				__LINE__, _a ? _a : "(null)", _b ? _b : "(null)", #a, #b);         \
			testing_failures++;                                                        \
		}                                                                                  \
	} while (0)

struct test_case {
	const char *name;
	void (*fn)(void);
	/* Why it needs root (map_files, kallsyms addresses), or NULL: skipped, not failed, without. */
	const char *needs_root;
};

/* Runs every test; a test passes when it records no failed check. */
static inline int testing_run(const char *suite, const struct test_case *tests, size_t count)
{
	int passed = 0, failed = 0, skipped = 0;

	for (size_t i = 0; i < count; i++) {
		int before = testing_failures;

		if (tests[i].needs_root && geteuid() != 0) {
			printf("skip %s.%s: needs root (%s)\n", suite, tests[i].name,
			       tests[i].needs_root);
			skipped++;
			continue;
		}
		tests[i].fn();
		if (testing_failures == before) {
			printf("ok   %s.%s\n", suite, tests[i].name);
			passed++;
		} else {
			printf("FAIL %s.%s\n", suite, tests[i].name);
			failed++;
		}
	}
	printf("%s: %d passed, %d failed", suite, passed, failed);
	printf(skipped ? ", %d skipped\n" : "\n", skipped);
	return failed ? 1 : 0;
}

#define TEST(name)                                                                                 \
	{                                                                                          \
#name, name                                                                        \
	}
/* A test that needs root for the reason given (printed when it is skipped). */
#define TEST_ROOT(name, reason)                                                                    \
	{                                                                                          \
#name, name, reason                                                                \
	}
#define TEST_MAIN(suite, ...)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		static const struct test_case tests[] = { __VA_ARGS__ };                           \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		return testing_run(suite, tests, ARRAY_SIZE(tests));                               \
	}

#endif /* KILN_TESTING_H */
