// SPDX-License-Identifier: Apache-2.0
/*
 * display_names: the names people read. Demangled (C++, Rust), without
 * symbol versions, GCC's split-off suffixes dropped on request, cut at
 * SYMBOLIZER_MAX_NAME on a UTF-8 boundary and counted; the room is taken
 * again after a reset.
 */
#include <stdlib.h>
#include <string.h>

#include "symbolizer/display_names.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/testing.h"

/* Plain C names come back as they are: the same string, nothing copied. */
static void test_plain_names_untouched(void)
{
	struct display_names *names = display_names__new();
	const char *raw = "compute";

	CHECK(names != NULL);
	if (!names)
		return;
	CHECK(display_names__name(names, raw) == raw);
	CHECK(display_names__unsplit(names, raw) == raw);
	CHECK(display_names__truncated(names) == 0);
	display_names__free(names);
}

static void test_demangled(void)
{
	struct display_names *names = display_names__new();

	CHECK(names != NULL);
	if (!names)
		return;
	CHECK_STR(display_names__name(names, "_ZN2ns4TypeIdE6methodEi"),
		  "ns::Type<double>::method(int)");
	CHECK_STR(display_names__name(names, "_RNvCs15kBYyAo9fc_7mycrate7example"),
		  "mycrate::example");
	/* Each name has its own room: the first is intact after the second. */
	const char *first = display_names__name(names, "_ZN1f1gEv");
	const char *second = display_names__name(names, "_ZN1h1iEv");

	CHECK_STR(first, "f::g()");
	CHECK_STR(second, "h::i()");
	display_names__free(names);
}

/* "name@@VERSION" and "name@VERSION" read as name, demangled or not. */
static void test_versions_dropped(void)
{
	struct display_names *names = display_names__new();

	CHECK(names != NULL);
	if (!names)
		return;
	CHECK_STR(display_names__name(names, "__libc_start_main@@GLIBC_2.34"), "__libc_start_main");
	CHECK_STR(display_names__name(names, "memcpy@GLIBC_2.2.5"), "memcpy");
	CHECK_STR(
		display_names__name(names, "_ZNSt6chrono3_V212system_clock3nowEv@@GLIBCXX_3.4.19"),
		"std::chrono::_V2::system_clock::now()");
	/* A leading '@' is no version. */
	CHECK_STR(display_names__name(names, "@odd"), "@odd");
	display_names__free(names);
}

/* GCC's split-off parts named for their function; unknown suffixes kept. */
static void test_unsplit(void)
{
	struct display_names *names = display_names__new();

	CHECK(names != NULL);
	if (!names)
		return;
	CHECK_STR(display_names__unsplit(names, "_ZN1f1gEv.isra.0"), "f::g()");
	CHECK_STR(display_names__unsplit(names, "_ZN1f1gEv.cold"), "f::g()");
	CHECK_STR(display_names__unsplit(names, "_ZN1f1gEv.constprop.0.isra.0"), "f::g()");
	CHECK_STR(display_names__unsplit(names, "_ZN1f1gEv.part.1"), "f::g()");
	/* Not a suffix GCC gives: demangled whole, the clone named as libiberty does. */
	CHECK_STR(display_names__unsplit(names, "_ZN1f1gEv.other.1"), "f::g() [clone .other.1]");
	CHECK_STR(display_names__name(names, "_ZN1f1gEv.isra.0"), "f::g() [clone .isra.0]");
	/* The plain name keeps its suffix: only the unsplit form drops it. */
	CHECK_STR(display_names__name(names, "compute.cold"), "compute.cold");
	display_names__free(names);
}

/*
 * A versioned name longer than SYMBOLIZER_MAX_NAME is cut with "...",
 * never inside a UTF-8 sequence, and counted; a reset gives the room back.
 */
static void test_cut_and_counted(void)
{
	const size_t length = SYMBOLIZER_MAX_NAME + 100;
	struct display_names *names = display_names__new();
	char *raw = malloc(length + 8);
	const char *name;

	CHECK(names && raw);
	if (!names || !raw)
		goto cleanup;
	/* 'k' then 3-byte characters up to the cut, "@@V1" after. */
	memset(raw, 'k', 1);
	for (size_t i = 1; i + 3 <= length; i += 3)
		memcpy(raw + i, "\xe2\x82\xac", 3);
	strcpy(raw + 1 + (length - 1) / 3 * 3, "@@V1");
	name = display_names__name(names, raw);
	CHECK(strlen(name) < SYMBOLIZER_MAX_NAME);
	CHECK(strcmp(name + strlen(name) - 3, "...") == 0);
	/* What is left before the "..." is whole characters: 1 + 3n bytes. */
	CHECK((strlen(name) - 3 - 1) % 3 == 0);
	CHECK(display_names__truncated(names) == 1);
	/* Many names fill the storage; after a reset there is room again. */
	for (size_t i = 0; i < 64; i++)
		display_names__name(names, raw);
	display_names__reset(names);
	name = display_names__name(names, raw);
	CHECK(name != raw && strcmp(name + strlen(name) - 3, "...") == 0);
cleanup:
	free(raw);
	display_names__free(names);
}

TEST_MAIN("display_names", TEST(test_plain_names_untouched), TEST(test_demangled),
	  TEST(test_versions_dropped), TEST(test_unsplit), TEST(test_cut_and_counted))
