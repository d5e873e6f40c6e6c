// SPDX-License-Identifier: Apache-2.0
/*
 * A damaged section costs only that section. Each fixture is a copy of one
 * program (tests/fixtures/build.sh: fixture_sections, its exported
 * functions in .dynsym too, .debug_frame beside .eh_frame) with one section
 * damaged by tests/fixtures/corrupt_section.py. Against the intact program
 * as ground truth (nm for addresses, its own unwind table and lines), every
 * other section must still serve, and the loss be recorded for that section
 * alone, once per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/unwind/unwind_table.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/elf_cache_entry.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/testing.h"

#define INTACT FIXTURE_DIR "/fixture_sections"
#define INTACT_EH_ONLY FIXTURE_DIR "/fixture_sections_eh_only"

/* The program's functions: alpha and beta exported (in .dynsym), gamma static (.symtab only). */
static const char *const function_names[] = { "fixture_alpha", "fixture_beta", "fixture_gamma" };

/* A damaged copy of the program and the one loss it must cost. */
struct damage {
	const char *fixture;
	enum elf_file_loss loss; /* ELF_LOSS_COUNT: none */
};

static struct elf_file *open_loaded(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct elf_file *file = fd >= 0 ? elf_file__probe(fd) : NULL;

	if (fd >= 0)
		close(fd);
	if (file && elf_file__load(file) < 0) {
		elf_file__free(file);
		return NULL;
	}
	return file;
}

/* The name at a function's address + 3 in file, "" when none. */
static const char *name_at(const struct elf_file *file, const char *intact, const char *function)
{
	const char *name = NULL;
	uint64_t addr = 0;

	if (nm_address(intact, function, &addr) < 0)
		return "(nm failed)";
	return elf_file__find_symbol(file, addr + 3, &name, NULL) == 0 ? name : "";
}

/* Its unwind table, from the handle the cache would hand out; -errno when none. */
static int unwind_rows(const struct elf_file *file, struct unwind_table *table)
{
	*table = (struct unwind_table){};
	return unwind_table__build(elf_file__elf(file), elf_file__debug_elf(file), table, NULL);
}

static bool same_table(const struct unwind_table *a, const struct unwind_table *b)
{
	return a->row_count && a->row_count == b->row_count &&
	       memcmp(a->rows, b->rows, a->row_count * sizeof(*a->rows)) == 0;
}

/* The intact program's unwind table, the ground truth for unwinding. */
static void intact_table(const char *path, struct unwind_table *table)
{
	struct elf_file *file = open_loaded(path);

	*table = (struct unwind_table){};
	CHECK(file && elf_file__losses(file) == 0);
	CHECK(file && unwind_rows(file, table) == 0 && table->row_count > 0);
	elf_file__free(file);
}

/*
 * .symtab outside the file, too large, with the wrong entry size, or naming
 * a string table that does not exist: the exported names come from .dynsym
 * (gamma, static, has none left), and the unwind table is the intact one's.
 */
static void test_damaged_symtab(void)
{
	static const struct damage cases[] = {
		{ "fixture_symtab_offset", ELF_LOSS_SYMTAB },
		{ "fixture_symtab_size", ELF_LOSS_SYMTAB },
		{ "fixture_symtab_entsize", ELF_LOSS_SYMTAB },
		{ "fixture_symtab_link", ELF_LOSS_STRTAB },
		{ "fixture_strtab_offset", ELF_LOSS_STRTAB },
	};
	struct unwind_table intact, table;

	intact_table(INTACT, &intact);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char path[512];
		struct elf_file *file;

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, cases[i].fixture);
		file = open_loaded(path);
		CHECK(file != NULL);
		if (!file)
			continue;
		if (elf_file__losses(file) != 1U << cases[i].loss)
			fprintf(stderr, "%s: losses %#x\n", cases[i].fixture,
				elf_file__losses(file));
		CHECK(elf_file__losses(file) == 1U << cases[i].loss);
		CHECK(!elf_file__has_symtab(file));
		CHECK_STR(name_at(file, INTACT, "fixture_alpha"), "fixture_alpha");
		CHECK_STR(name_at(file, INTACT, "fixture_beta"), "fixture_beta");
		CHECK_STR(name_at(file, INTACT, "fixture_gamma"), "");
		CHECK(unwind_rows(file, &table) == 0 && same_table(&table, &intact));
		unwind_table__free(&table);
		elf_file__free(file);
	}
	unwind_table__free(&intact);
}

/* Every name, the static one included: .symtab served. */
static void check_all_names(const struct elf_file *file)
{
	CHECK(elf_file__has_symtab(file));
	for (size_t i = 0; i < ARRAY_SIZE(function_names); i++)
		CHECK_STR(name_at(file, INTACT, function_names[i]), function_names[i]);
}

/*
 * .eh_frame overwritten or outside the file: the program's functions still
 * unwind from .debug_frame, every name still serves; without .debug_frame
 * there is no table at all (no rows from garbage), and names still serve.
 */
static void test_damaged_eh_frame(void)
{
	static const char *const with_debug_frame[] = { "fixture_eh_frame_garbage",
							"fixture_eh_frame_offset" };
	struct unwind_table table;
	struct elf_file *file;
	uint64_t addr = 0;

	for (size_t i = 0; i < ARRAY_SIZE(with_debug_frame); i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, with_debug_frame[i]);
		file = open_loaded(path);
		CHECK(file != NULL);
		if (!file)
			continue;
		CHECK(elf_file__losses(file) == 1U << ELF_LOSS_EH_FRAME);
		check_all_names(file);
		CHECK(unwind_rows(file, &table) == 0);
		for (size_t f = 0; f < ARRAY_SIZE(function_names); f++) {
			const struct unwind_row *row;

			CHECK(nm_address(INTACT, function_names[f], &addr) == 0);
			row = unwind_table__find(&table, (uint32_t)addr + 3);
			CHECK(row && (row->rules & 0xf) == UNWIND_CFA_RSP);
		}
		unwind_table__free(&table);
		elf_file__free(file);
	}

	file = open_loaded(FIXTURE_DIR "/fixture_eh_frame_garbage_only");
	CHECK(file && elf_file__losses(file) == 1U << ELF_LOSS_EH_FRAME);
	if (file) {
		CHECK(elf_file__has_symtab(file));
		CHECK_STR(name_at(file, INTACT_EH_ONLY, "fixture_gamma"), "fixture_gamma");
		CHECK(unwind_rows(file, &table) == -ENOENT && table.rows == NULL);
	}
	elf_file__free(file);
}

/*
 * .eh_frame_hdr unreadable would make libdw drop the file's whole CFI: it
 * is hidden instead, and .eh_frame alone gives the intact table, row for row.
 */
static void test_damaged_eh_frame_hdr(void)
{
	struct elf_file *file = open_loaded(FIXTURE_DIR "/fixture_eh_frame_hdr_garbage");
	struct unwind_table intact, table = {};

	intact_table(INTACT_EH_ONLY, &intact);
	CHECK(file && elf_file__losses(file) == 1U << ELF_LOSS_EH_FRAME_HDR);
	CHECK(file && unwind_rows(file, &table) == 0 && same_table(&table, &intact));
	unwind_table__free(&table);
	unwind_table__free(&intact);
	elf_file__free(file);
}

/* .debug_frame unreadable: .eh_frame gives the table, covering the program's functions. */
static void test_damaged_debug_frame(void)
{
	struct elf_file *file = open_loaded(FIXTURE_DIR "/fixture_debug_frame_garbage");
	struct unwind_table table = {};
	uint64_t addr = 0;

	CHECK(file && elf_file__losses(file) == 1U << ELF_LOSS_DEBUG_FRAME);
	if (!file)
		return;
	check_all_names(file);
	CHECK(unwind_rows(file, &table) == 0);
	CHECK(nm_address(INTACT, "fixture_gamma", &addr) == 0);
	CHECK(unwind_table__find(&table, (uint32_t)addr + 3) != NULL);
	unwind_table__free(&table);
	elf_file__free(file);
}

/* The first frame at each function of a running copy of path, with its line. */
static void resolve_functions(const char *path, struct symbolizer_stack *stack,
			      struct symbolized_frame *frames, size_t *ret_count)
{
	struct debug_search_opts opts = { .debug_dir = FIXTURE_DIR "/no-such-debug-dir" };
	struct fixture_process process;
	struct symbolizer *symbolizer = symbolizer_stack__new(stack, &opts, 0, NULL);

	*ret_count = 0;
	CHECK(symbolizer && start_fixture(path, &process) == 0);
	if (!symbolizer || process.pid <= 0)
		return;
	CHECK(process.function_count == ARRAY_SIZE(function_names));
	for (size_t i = 0; i < process.function_count; i++) {
		const struct proc_mapping *mapping =
			procmaps__find(&process.maps, process.functions[i].addr);
		struct symbolized_location location = {};

		CHECK(mapping && symbolizer__resolve_user(symbolizer, process.pid, mapping,
							  process.functions[i].addr + 3, false,
							  &location) == 0);
		CHECK(location.frame_count >= 1);
		frames[i] = location.frame_count ? location.frames[location.frame_count - 1]
						 : (struct symbolized_frame){};
		(*ret_count)++;
	}
	stop_fixture(&process);
}

/*
 * DWARF damaged: .debug_info garbage (no unit readable: symbols only),
 * .debug_line garbage (functions without lines) or outside the file. The
 * ELF names serve all three; lines go only where .debug_line did (and with
 * .debug_info, which names the line tables); each loss is counted once
 * though every function was looked up.
 */
static void test_damaged_dwarf(void)
{
	static const struct damage cases[] = {
		{ "fixture_sections", ELF_LOSS_COUNT },
		{ "fixture_debug_info_garbage", ELF_LOSS_DEBUG_INFO },
		{ "fixture_debug_line_garbage", ELF_LOSS_DEBUG_LINE },
		{ "fixture_debug_line_offset", ELF_LOSS_DEBUG_LINE },
	};

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct symbolized_frame frames[ARRAY_SIZE(function_names)];
		struct symbolizer_stack stack = {};
		struct symbolizer_stats stats;
		char path[512];
		size_t count;

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, cases[c].fixture);
		resolve_functions(path, &stack, frames, &count);
		CHECK(count == ARRAY_SIZE(function_names));
		for (size_t i = 0; i < count; i++) {
			CHECK_STR(frames[i].function, function_names[i]);
			/* Lines are the intact DWARF's, or none at all. */
			if (cases[c].loss == ELF_LOSS_COUNT)
				CHECK(frames[i].line > 0 && frames[i].file &&
				      strstr(frames[i].file, "fixture.c"));
			else
				CHECK(frames[i].line == 0 && frames[i].file == NULL);
		}
		if (stack.symbolizer) {
			symbolizer__stats(stack.symbolizer, &stats);
			for (unsigned int loss = 0; loss < ELF_LOSS_COUNT; loss++)
				CHECK(stats.elf_losses[loss] == (loss == cases[c].loss));
		}
		symbolizer_stack__free(&stack);
	}
}

/*
 * A unit damaged after a whole one (inline_c_gcc's second, inline_c_extra.c):
 * the first unit's functions keep their lines, the second's have none, and
 * .debug_info's loss is recorded.
 */
static void test_units_before_damage_serve(void)
{
	const char *intact = FIXTURE_DIR "/inline_c_gcc";
	struct elf_file *file = open_loaded(FIXTURE_DIR "/inline_c_gcc_second_unit_damaged");
	struct dwarf_info *dwarf = NULL;
	struct dwarf_info_frame frames[8];
	uint64_t compute = 0, extra = 0;
	size_t count = 0;

	CHECK(file && elf_file__dwarf_elf(file));
	if (file && elf_file__dwarf_elf(file))
		dwarf = dwarf_info__new(elf_file__dwarf_elf(file), 1 << 16);
	CHECK(dwarf != NULL);
	CHECK(nm_address(intact, "compute", &compute) == 0 &&
	      nm_address(intact, "extra", &extra) == 0);
	if (dwarf) {
		CHECK(dwarf_info__losses(dwarf) == 1U << ELF_LOSS_DEBUG_INFO);
		CHECK(dwarf_info__lookup(dwarf, compute + 3, frames, ARRAY_SIZE(frames), &count) ==
		      0);
		CHECK(count >= 1 && frames[count - 1].line > 0 && frames[count - 1].file &&
		      strstr(frames[count - 1].file, "inline_c.c"));
		CHECK(dwarf_info__lookup(dwarf, extra + 3, frames, ARRAY_SIZE(frames), &count) ==
		      -ENOENT);
	}
	dwarf_info__free(dwarf);
	elf_file__free(file);
}

/*
 * A debug file over ELF_FILE_DEBUG_MAX_BYTES (a sparse copy, 4 GiB and a
 * page) is refused before it is read; the file's own symbols stay. A FIFO
 * is no debug file: its CRC is refused rather than waited for.
 */
static void test_debug_file_too_large(void)
{
	char debug_path[] = "/tmp/kiln-test-huge-debug-XXXXXX";
	uint32_t crc;
	struct elf_file *file = open_loaded(FIXTURE_DIR "/fixture_buildid");
	int fd = mkstemp(debug_path);

	CHECK(file && fd >= 0);
	if (!file || fd < 0)
		goto cleanup;
	CHECK(copy_file(FIXTURE_DIR "/buildid-debug/fixture_buildid.debug", debug_path, 0644) == 0);
	CHECK(truncate(debug_path, ELF_FILE_DEBUG_MAX_BYTES + 4096) == 0);
	/* Nor read through for a debuglink CRC: 4 GiB would stall a window for seconds. */
	CHECK(elf_file__crc32(fd, &crc) == -EFBIG);
	CHECK(elf_file__use_debug_file(file, fd) == -EFBIG);
	CHECK(elf_file__losses(file) == 1U << ELF_LOSS_DEBUG_FILE_TOO_LARGE);
	CHECK(elf_file__debug_elf(file) == NULL && !elf_file__has_symtab(file));
	/* The same file at its own size is taken: the size was the reason. */
	CHECK(truncate(debug_path, 0) == 0);
	CHECK(copy_file(FIXTURE_DIR "/buildid-debug/fixture_buildid.debug", debug_path, 0644) == 0);
	CHECK(elf_file__use_debug_file(file, fd) == 0 && elf_file__has_symtab(file));
	close(fd);
	unlink(debug_path);
	CHECK(mkfifo(debug_path, 0600) == 0);
	fd = open(debug_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	CHECK(fd >= 0 && elf_file__crc32(fd, &crc) == -EINVAL);
cleanup:
	if (fd >= 0)
		close(fd);
	unlink(debug_path);
	elf_file__free(file);
}

/*
 * MiniDebugInfo that would decompress past its bound (80 MiB of zeros) is
 * refused, counted, and the file keeps its .dynsym names.
 */
static void test_minidebuginfo_bomb(void)
{
	struct elf_file *file = open_loaded(FIXTURE_DIR "/fixture_debugdata_bomb");
	const char *name = NULL;
	char value[64] = "";

	CHECK(file != NULL);
	if (!file)
		return;
	CHECK(elf_file__use_minidebuginfo(file) == -EFBIG);
	CHECK(elf_file__losses(file) == 1U << ELF_LOSS_MINIDEBUGINFO_TOO_LARGE);
	CHECK(elf_file__debug_elf(file) == NULL);
	/* Stripped: the address is .dynsym's, as nm -D prints it. */
	CHECK(command_line_with("nm -D " FIXTURE_DIR "/fixture_debugdata_bomb | "
				"awk '$3 == \"fixture_alpha\" { print \"value \" $1 }'",
				"value ", value, sizeof(value)) == 0);
	CHECK(elf_file__find_symbol(file, strtoull(value, NULL, 16) + 3, &name, NULL) == 0);
	CHECK_STR(name, "fixture_alpha");
	elf_file__free(file);
}

/*
 * The ELF cache names each damaged file once, with what it lost, for the
 * agent's warning, and counts it once however often it is looked up; an
 * intact file is never named.
 */
static void test_cache_names_damaged_files(void)
{
	/* Another program: damaged copies share the intact one's build id, and so its entry. */
	const char *const paths[] = { FIXTURE_DIR "/fixture_pie",
				      FIXTURE_DIR "/fixture_strtab_offset" };
	struct elf_cache *cache = elf_cache__new(NULL);
	struct elf_cache_damage damage;
	struct elf_cache_entry *entry;
	struct elf_cache_stats stats;
	struct proc_mapping mapping;

	CHECK(cache != NULL);
	if (!cache)
		return;
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
			CHECK(fake_mapping(paths[i], &mapping) == 0);
			CHECK(elf_cache__entry(cache, getpid(), &mapping, -1, &entry) == 0);
		}
		if (round == 0) {
			CHECK(elf_cache__take_damaged(cache, &damage) == 0);
			CHECK_STR(damage.path, paths[1]);
			CHECK(damage.losses == 1U << ELF_LOSS_STRTAB);
		}
		CHECK(elf_cache__take_damaged(cache, &damage) == -EAGAIN);
	}
	elf_cache__stats(cache, &stats);
	for (unsigned int loss = 0; loss < ELF_LOSS_COUNT; loss++)
		CHECK(stats.losses[loss] == (loss == ELF_LOSS_STRTAB));
	CHECK(stats.damaged_unnamed == 0);
	elf_cache__free(cache);
}

TEST_MAIN("corrupt_sections", TEST(test_damaged_symtab), TEST(test_damaged_eh_frame),
	  TEST(test_damaged_eh_frame_hdr), TEST(test_damaged_debug_frame), TEST(test_damaged_dwarf),
	  TEST(test_debug_file_too_large), TEST(test_minidebuginfo_bomb),
	  TEST(test_cache_names_damaged_files), TEST(test_units_before_damage_serve))
