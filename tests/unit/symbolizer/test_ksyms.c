// SPDX-License-Identifier: Apache-2.0
/* ksyms: a kallsyms text with modules and edge cases, then the running kernel's own. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/array.h"
#include "symbolizer/ksyms.h"
#include "tests/unit/testing.h"

/* Out of order on purpose; data symbols end the text before them. */
static const char kallsyms_text[] = "0000000000000000 A fixed_percpu_data\n"
				    "ffffffff81000000 T _text\n"
				    "ffffffff81000000 T _stext\n"
				    "ffffffff81000010 t __pfx_alpha\n"
				    "ffffffff81000020 T alpha\n"
				    "ffffffff81000100 t beta_local\n"
				    "ffffffff81000200 W weak_gamma\n"
				    "ffffffff81000300 D some_data\n"
				    "ffffffff81000308 D more_data\n"
				    "ffffffff81000400 T delta\n"
				    "ffffffff82000000 R rodata_thing\n"
				    "ffffffffc0a01000 t mod_fn1\t[mod_a]\n"
				    "ffffffffc0a01100 T mod_fn2\t[mod_a]\n"
				    "ffffffffc0a02000 d mod_data\t[mod_a]\n"
				    "ffffffffc0b00000 t other_fn\t[mod_b]\n"
				    "ffffffff81000080 t __pfx_beta_local\n";

/* Writes text into a new temporary file; the caller unlinks path. */
static int write_temp(const char *text, char *path, size_t path_size)
{
	int fd;

	snprintf(path, path_size, "/tmp/kiln-test-ksyms-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	close(fd);
	return 0;
}

static struct ksyms *load_text(const char *text, int *ret_errno)
{
	char path[64];
	struct ksyms *ksyms;

	if (write_temp(text, path, sizeof(path)) < 0)
		return NULL;
	ksyms = ksyms__load(path);
	*ret_errno = ksyms ? 0 : errno;
	unlink(path);
	return ksyms;
}

static void check_lookup(const struct ksyms *ksyms, uint64_t addr, const char *name,
			 const char *module, uint64_t sym_addr)
{
	struct ksym sym = {};

	if (!name) {
		CHECK(ksyms__lookup(ksyms, addr, &sym) == -ENOENT);
		return;
	}
	CHECK(ksyms__lookup(ksyms, addr, &sym) == 0);
	CHECK_STR(sym.name, name);
	CHECK(sym.addr == sym_addr);
	if (module)
		CHECK_STR(sym.module, module);
	else
		CHECK(sym.module == NULL);
}

static void test_fixture_lookups(void)
{
	int load_errno;
	struct ksyms *ksyms = load_text(kallsyms_text, &load_errno);

	CHECK(ksyms != NULL);
	if (!ksyms)
		return;
	/* Text symbols only: _text _stext __pfx_alpha alpha __pfx_beta_local beta_local
	 * weak_gamma delta mod_fn1 mod_fn2 other_fn. */
	CHECK(ksyms__count(ksyms) == 11);

	check_lookup(ksyms, 0xffffffff80000000, NULL, NULL, 0);
	check_lookup(ksyms, 0, NULL, NULL, 0);
	/* Aliases at one address: a stable choice. */
	check_lookup(ksyms, 0xffffffff81000000, "_stext", NULL, 0xffffffff81000000);
	check_lookup(ksyms, 0xffffffff8100000f, "_stext", NULL, 0xffffffff81000000);
	check_lookup(ksyms, 0xffffffff81000010, "__pfx_alpha", NULL, 0xffffffff81000010);
	check_lookup(ksyms, 0xffffffff81000020, "alpha", NULL, 0xffffffff81000020);
	check_lookup(ksyms, 0xffffffff8100007f, "alpha", NULL, 0xffffffff81000020);
	check_lookup(ksyms, 0xffffffff81000080, "__pfx_beta_local", NULL, 0xffffffff81000080);
	check_lookup(ksyms, 0xffffffff81000100, "beta_local", NULL, 0xffffffff81000100);
	check_lookup(ksyms, 0xffffffff810000ff, "__pfx_beta_local", NULL, 0xffffffff81000080);
	check_lookup(ksyms, 0xffffffff81000200, "weak_gamma", NULL, 0xffffffff81000200);
	check_lookup(ksyms, 0xffffffff810002ff, "weak_gamma", NULL, 0xffffffff81000200);
	/* Data ends the text run before it. */
	check_lookup(ksyms, 0xffffffff81000300, NULL, NULL, 0);
	check_lookup(ksyms, 0xffffffff810003ff, NULL, NULL, 0);
	check_lookup(ksyms, 0xffffffff81000400, "delta", NULL, 0xffffffff81000400);
	check_lookup(ksyms, 0xffffffff81ffffff, "delta", NULL, 0xffffffff81000400);
	check_lookup(ksyms, 0xffffffff82000000, NULL, NULL, 0);
	check_lookup(ksyms, 0xffffffffc0a00fff, NULL, NULL, 0);
	check_lookup(ksyms, 0xffffffffc0a01000, "mod_fn1", "mod_a", 0xffffffffc0a01000);
	check_lookup(ksyms, 0xffffffffc0a01234, "mod_fn2", "mod_a", 0xffffffffc0a01100);
	check_lookup(ksyms, 0xffffffffc0a02001, NULL, NULL, 0);
	check_lookup(ksyms, 0xffffffffc0b00000, "other_fn", "mod_b", 0xffffffffc0b00000);
	/* The last symbol has no end in kallsyms: it takes everything above it. */
	check_lookup(ksyms, UINT64_MAX, "other_fn", "mod_b", 0xffffffffc0b00000);
	ksyms__free(ksyms);
	ksyms__free(NULL);
}

static void test_load_errors(void)
{
	int load_errno = 0;

	/* kptr_restrict: every address reads as zero. */
	CHECK(load_text("0000000000000000 T _text\n0000000000000000 t foo\t[mod]\n", &load_errno) ==
	      NULL);
	CHECK(load_errno == EPERM);
	CHECK(load_text("ffffffff81000000 T\n", &load_errno) == NULL);
	CHECK(load_errno == EINVAL);
	CHECK(load_text("ffffffff81000000 T ok\nnot an address T foo\n", &load_errno) == NULL);
	CHECK(load_errno == EINVAL);
	CHECK(load_text("ffffffffc0a01000 t foo\t[mod\n", &load_errno) == NULL);
	CHECK(load_errno == EINVAL);
	CHECK(load_text("", &load_errno) == NULL);
	CHECK(load_errno == ENODATA);
	CHECK(load_text("ffffffff81000000 D only_data\n", &load_errno) == NULL);
	CHECK(load_errno == ENODATA);
	errno = 0;
	CHECK(ksyms__load("/nonexistent/kallsyms") == NULL);
	CHECK(errno == ENOENT);
}

/*
 * Addresses more than 4 GiB apart (stored as offsets per segment), modules
 * that alternate, and a __pfx_ name whose tail is not the next name.
 */
static void test_segments_and_modules(void)
{
	static const char text[] = "0000000000001000 T low_fn\n"
				   "ffffffff81000000 T core_fn\n"
				   "ffffffffc0000000 t __pfx_mod_fn\t[mod_a]\n"
				   "ffffffffc0000010 t mod_fn_other\t[mod_a]\n"
				   "ffffffffc0001000 t bpf_prog_1\t[bpf]\n"
				   "ffffffffc0002000 t mod_fn2\t[mod_a]\n"
				   "ffffffffc0003000 T core_after\n";
	int load_errno;
	struct ksyms *ksyms = load_text(text, &load_errno);

	CHECK(ksyms != NULL);
	if (!ksyms)
		return;
	CHECK(ksyms__count(ksyms) == 7);
	check_lookup(ksyms, 0xfff, NULL, NULL, 0);
	check_lookup(ksyms, 0x1000, "low_fn", NULL, 0x1000);
	/* Far above it, in no segment of its own: still the symbol below, as kallsyms has no ends. */
	check_lookup(ksyms, 0x1000 + (5ULL << 30), "low_fn", NULL, 0x1000);
	check_lookup(ksyms, 0xffffffff80ffffff, "low_fn", NULL, 0x1000);
	check_lookup(ksyms, 0xffffffff81000001, "core_fn", NULL, 0xffffffff81000000);
	check_lookup(ksyms, 0xffffffffc0000008, "__pfx_mod_fn", "mod_a", 0xffffffffc0000000);
	check_lookup(ksyms, 0xffffffffc0000010, "mod_fn_other", "mod_a", 0xffffffffc0000010);
	check_lookup(ksyms, 0xffffffffc0001fff, "bpf_prog_1", "bpf", 0xffffffffc0001000);
	check_lookup(ksyms, 0xffffffffc0002000, "mod_fn2", "mod_a", 0xffffffffc0002000);
	check_lookup(ksyms, 0xffffffffc0003000, "core_after", NULL, 0xffffffffc0003000);
	check_lookup(ksyms, UINT64_MAX, "core_after", NULL, 0xffffffffc0003000);
	ksyms__free(ksyms);
}

/* The address kallsyms lists for a text symbol, read independently of ksyms. */
static int kallsyms_address(const char *name, uint64_t *ret_addr)
{
	char line[512], sym_name[256], type;
	unsigned long long addr;
	FILE *file = fopen("/proc/kallsyms", "r");
	int err = -ENOENT;

	if (!file)
		return -errno;
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym_name) == 3 &&
		    (type == 'T' || type == 't') && strcmp(sym_name, name) == 0 &&
		    !strchr(line, '[')) {
			*ret_addr = addr;
			err = 0;
			break;
		}
	}
	fclose(file);
	return err;
}

static void test_real_kallsyms(void)
{
	const char *names[] = { "schedule", "do_sys_open", "vfs_read" };
	struct ksyms *ksyms = ksyms__load("/proc/kallsyms");
	size_t found = 0;

	CHECK(ksyms != NULL);
	if (!ksyms)
		return;
	CHECK(ksyms__count(ksyms) > 10000);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct ksym sym = {};
		uint64_t addr;

		if (kallsyms_address(names[i], &addr) < 0)
			continue;
		found++;
		CHECK(addr != 0);
		CHECK(ksyms__lookup(ksyms, addr, &sym) == 0);
		CHECK_STR(sym.name, names[i]);
		CHECK(sym.addr == addr && sym.module == NULL);
		CHECK(ksyms__lookup(ksyms, addr + 1, &sym) == 0);
		CHECK_STR(sym.name, names[i]);
	}
	/* schedule exists in every kernel. */
	CHECK(found >= 1);
	/* A padding name shares the function's stored name (schedule, checked above). */
	{
		struct ksym sym = {};
		uint64_t addr;

		if (kallsyms_address("__pfx_schedule", &addr) == 0) {
			CHECK(ksyms__lookup(ksyms, addr, &sym) == 0);
			CHECK_STR(sym.name, "__pfx_schedule");
		}
	}
	ksyms__free(ksyms);
}

TEST_MAIN("ksyms", TEST(test_fixture_lookups), TEST(test_load_errors),
	  TEST(test_segments_and_modules),
	  TEST_ROOT(test_real_kallsyms, "kallsyms shows addresses only with CAP_SYSLOG"))
