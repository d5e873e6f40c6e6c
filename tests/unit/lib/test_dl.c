// SPDX-License-Identifier: Apache-2.0
/* lib/dl: a library and its table of functions resolved all or nothing. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/dl.h"
#include "tests/unit/testing.h"

/* libz: linked into kiln anyway, with functions whose results are easy to check. */
#define LIBZ_SONAME "libz.so.1"

static struct {
	__typeof__(zlibVersion) *version;
	__typeof__(crc32) *crc32;
} libz;

static void test_resolves_table(void)
{
	const struct dl_symbol symbols[] = {
		{ "zlibVersion", (void **)&libz.version },
		{ "crc32", (void **)&libz.crc32 },
	};
	char error[256] = "untouched";
	void *handle = NULL;

	CHECK(dl_open(LIBZ_SONAME, symbols, ARRAY_SIZE(symbols), &handle, error, sizeof(error)) ==
	      0);
	CHECK(handle != NULL);
	CHECK_STR(error, "untouched");
	CHECK(libz.version && libz.crc32);
	/* The functions are the library's own: they answer as the linked ones do. */
	if (libz.version && libz.crc32) {
		CHECK_STR(libz.version(), zlibVersion());
		CHECK(libz.crc32(0, (const Bytef *)"kiln", 4) ==
		      crc32(0, (const Bytef *)"kiln", 4));
	}
	if (handle)
		dlclose(handle);
	memset(&libz, 0, sizeof(libz));
}

static void test_missing_library(void)
{
	const struct dl_symbol symbols[] = { { "zlibVersion", (void **)&libz.version } };
	char error[256] = "";
	void *handle = (void *)1;

	CHECK(dl_open("libkiln-no-such-library.so.9", symbols, ARRAY_SIZE(symbols), &handle, error,
		      sizeof(error)) == -ENOENT);
	/* The loader's own words, naming the file. */
	CHECK(strstr(error, "libkiln-no-such-library.so.9") != NULL);
	CHECK(handle == (void *)1);
	CHECK(libz.version == NULL);
}

/* One missing function: none is left set, so nothing calls into a closed library. */
static void test_missing_symbol(void)
{
	void *stray = (void *)1;
	const struct dl_symbol symbols[] = {
		{ "zlibVersion", (void **)&libz.version },
		{ "crc32", (void **)&libz.crc32 },
		{ "kiln_no_such_function", &stray },
	};
	char error[256] = "";
	void *handle = (void *)1;

	CHECK(dl_open(LIBZ_SONAME, symbols, ARRAY_SIZE(symbols), &handle, error, sizeof(error)) ==
	      -ENOENT);
	CHECK_STR(error, "libz.so.1: no kiln_no_such_function");
	CHECK(handle == (void *)1);
	CHECK(libz.version == NULL && libz.crc32 == NULL && stray == NULL);
}

/* A short error buffer is cut, not overrun. */
static void test_short_error(void)
{
	void *address;
	const struct dl_symbol symbols[] = { { "kiln_no_such_function", &address } };
	char error[8];

	memset(error, 'x', sizeof(error));
	CHECK(dl_open(LIBZ_SONAME, symbols, ARRAY_SIZE(symbols), NULL, error, 5) == -ENOENT);
	CHECK_STR(error, "libz");
	CHECK(error[5] == 'x');
}

TEST_MAIN("dl", TEST(test_resolves_table), TEST(test_missing_library), TEST(test_missing_symbol),
	  TEST(test_short_error))
