// SPDX-License-Identifier: Apache-2.0
/*
 * The unwind table builder against an independent reader: every row that
 * `readelf --debug-dump=frames-interp` prints must be found in kiln's table
 * with the same CFA and rbp rules, and the tables must have as many rows
 * as readelf's once merged the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/unwind/unwind_table.h"
#include "symbolizer/elf_file.h"
#include "tests/unit/testing.h"

struct expected_row {
	uint64_t pc;
	struct unwind_row row;
	int source;
};

struct expected_fde {
	uint64_t start, end;
	int source; /* 0 .eh_frame, 1 .debug_frame */
	size_t first_row, row_count;
};

struct expected {
	struct expected_row *rows;
	size_t row_count, row_capacity;
	struct expected_fde *fdes;
	size_t fde_count, fde_capacity;
};

/* rbx's rule as kiln fits it beside rbp's (bpf/unwind.h), from readelf's rbx column. */
static uint8_t parse_rbx_rule(const char *rbx, uint8_t rbp_rule, struct unwind_row *row)
{
	int offset;

	if (!rbx || !strcmp(rbx, "u") || !strcmp(rbx, "s"))
		return UNWIND_RBX_SAME;
	if (sscanf(rbx, "c%d", &offset) != 1)
		return UNWIND_RBX_UNKNOWN;
	if (rbp_rule == UNWIND_RBP_OFFSET)
		return offset / 8 == row->rbp_offset - 1 ? UNWIND_RBX_BELOW_RBP
							 : UNWIND_RBX_UNKNOWN;
	row->rbp_offset = offset / 8;
	return UNWIND_RBX_OFFSET;
}

/* Turns readelf's CFA, rbp and rbx columns into a row. exp CFAs are taken as the PLT's. */
static struct unwind_row parse_rule(const char *cfa, const char *rbp, const char *rbx,
				    const char *ra)
{
	struct unwind_row row = {};
	uint8_t cfa_rule, rbp_rule = UNWIND_RBP_SAME;
	int offset;

	if (!strcmp(ra, "u")) {
		row.rules = UNWIND_CFA_END;
		return row;
	}
	/* kiln takes return addresses only from CFA - 8, where x86-64 calls put them. */
	if (strcmp(ra, "c-8")) {
		row.rules = UNWIND_CFA_UNSUPPORTED;
		return row;
	}
	if (sscanf(cfa, "rsp+%d", &offset) == 1) {
		cfa_rule = UNWIND_CFA_RSP;
		row.cfa_offset = offset;
	} else if (sscanf(cfa, "rbp+%d", &offset) == 1) {
		cfa_rule = UNWIND_CFA_RBP;
		row.cfa_offset = offset;
	} else if (sscanf(cfa, "rbx+%d", &offset) == 1) {
		cfa_rule = UNWIND_CFA_RBX;
		row.cfa_offset = offset;
	} else if (!strcmp(cfa, "exp")) {
		cfa_rule = UNWIND_CFA_PLT;
	} else {
		row.rules = UNWIND_CFA_UNSUPPORTED;
		return row;
	}
	if (rbp && sscanf(rbp, "c%d", &offset) == 1) {
		rbp_rule = UNWIND_RBP_OFFSET;
		row.rbp_offset = offset / 8;
	} else if (rbp && strcmp(rbp, "u") && strcmp(rbp, "s")) {
		rbp_rule = UNWIND_RBP_UNSUPPORTED;
	}
	row.rules = UNWIND_RULES(cfa_rule, rbp_rule, parse_rbx_rule(rbx, rbp_rule, &row));
	return row;
}

static void add_expected_row(struct expected *e, uint64_t pc, struct unwind_row row, int source)
{
	/* Doubling: libc has 28k rows, and ASan's realloc always copies. */
	if (ARRAY_RESERVE_ONE(e->rows, e->row_count, e->row_capacity, 1024))
		abort();
	e->rows[e->row_count++] = (struct expected_row){ pc, row, source };
}

/* Parses `readelf --debug-dump=frames-interp` for both CFI sections. */
static bool read_expected(const char *path, struct expected *e)
{
	char command[512], line[512], columns[16][16];
	struct unwind_row cie_rows[4096];
	unsigned long cie_offsets[4096];
	int cie_sources[4096];
	bool cie_signal[4096], fde_signal = false;
	size_t cie_count = 0, column_count = 0;
	int source = -1;
	bool in_cie = false;
	FILE *readelf;

	snprintf(command, sizeof(command), "readelf --debug-dump=frames-interp '%s'", path);
	readelf = popen(command, "r");
	if (!readelf)
		return false;
	*e = (struct expected){};
	while (fgets(line, sizeof(line), readelf)) {
		unsigned long offset, cie;
		unsigned long long start, end, loc;
		char fields[16][32];
		int n;

		if (strstr(line, "Contents of the .eh_frame section"))
			source = 0;
		else if (strstr(line, "Contents of the .debug_frame section"))
			source = 1;
		else if (strstr(line, " CIE ") && sscanf(line, "%lx", &offset) == 1) {
			in_cie = true;
			cie_offsets[cie_count] = offset;
			cie_sources[cie_count] = source;
			/* An 'S' in the augmentation string: a signal trampoline. */
			cie_signal[cie_count] = strstr(line, "S\"") != NULL;
			cie_rows[cie_count++] = (struct unwind_row){};
		} else if (sscanf(line, "%lx %*s %*s FDE cie=%lx pc=%llx..%llx", &offset, &cie,
				  &start, &end) == 4) {
			in_cie = false;
			if (ARRAY_RESERVE_ONE(e->fdes, e->fde_count, e->fde_capacity, 256))
				abort();
			e->fdes[e->fde_count++] =
				(struct expected_fde){ start, end, source, e->row_count, 0 };
			/* An FDE without instructions keeps its CIE's initial row. */
			fde_signal = false;
			for (size_t i = 0; i < cie_count; i++) {
				if (cie_offsets[i] == cie && cie_sources[i] == source) {
					add_expected_row(e, start, cie_rows[i], source);
					fde_signal = cie_signal[i];
				}
			}
			e->fdes[e->fde_count - 1].row_count = 1;
		} else if (strstr(line, "LOC") && strstr(line, "CFA")) {
			char *token = strtok(line, " \n");

			column_count = 0;
			while (token && column_count < 16) {
				snprintf(columns[column_count++], sizeof(columns[0]), "%s", token);
				token = strtok(NULL, " \n");
			}
		} else if (sscanf(line, "%llx", &loc) == 1 && !strstr(line, "ZERO")) {
			const char *rbp = NULL, *rbx = NULL, *ra = NULL, *cfa = NULL;
			char *token = strtok(line, " \n");

			for (n = 0; token && n < 16; n++, token = strtok(NULL, " \n")) {
				/* "r5 (rdi)": the register's name belongs to the field before. */
				if (token[0] == '(') {
					n--;
					continue;
				}
				snprintf(fields[n], sizeof(fields[0]), "%s", token);
				if (n >= (int)column_count)
					continue;
				if (!strcmp(columns[n], "CFA"))
					cfa = fields[n];
				if (!strcmp(columns[n], "rbp"))
					rbp = fields[n];
				if (!strcmp(columns[n], "rbx"))
					rbx = fields[n];
				if (!strcmp(columns[n], "ra"))
					ra = fields[n];
			}
			if (!cfa)
				continue;
			struct unwind_row row = parse_rule(cfa, rbp, rbx, ra ? ra : "u");

			if (!in_cie && fde_signal)
				row = (struct unwind_row){ .rules = UNWIND_CFA_SIGNAL };

			if (in_cie) {
				cie_rows[cie_count - 1] = row;
			} else if (e->fde_count) {
				struct expected_fde *fde = &e->fdes[e->fde_count - 1];

				/* The first printed row replaces the CIE's initial one. */
				if (e->row_count > fde->first_row &&
				    e->rows[e->row_count - 1].pc == loc)
					e->rows[e->row_count - 1].row = row;
				else {
					add_expected_row(e, loc, row, source);
					fde->row_count++;
				}
			}
		}
	}
	pclose(readelf);
	return e->fde_count > 0;
}

/* readelf prints 'u' for a register with no rule and for an undefined one alike. */
static uint8_t rules_of(const struct unwind_row *row)
{
	if (UNWIND_RBP_RULE(row->rules) == UNWIND_RBP_UNDEFINED)
		return UNWIND_RULES(UNWIND_CFA_RULE(row->rules), UNWIND_RBP_SAME,
				    UNWIND_RBX_RULE(row->rules));
	return row->rules;
}

static bool same_rules(const struct unwind_row *a, const struct unwind_row *b)
{
	if ((a->rules & 0xf) == UNWIND_CFA_PLT && (b->rules & 0xf) == UNWIND_CFA_PLT)
		return true; /* readelf prints the PLT expression as "exp" only */
	return rules_of(a) == rules_of(b) && a->cfa_offset == b->cfa_offset &&
	       a->rbp_offset == b->rbp_offset;
}

static int build(const char *path, struct unwind_table *table, struct unwind_table_stats *stats)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;
	Elf *elf;

	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	err = elf ? unwind_table__build(elf, NULL, table, stats) : -1;
	elf_end(elf);
	close(fd);
	return err;
}

static int compare_fdes(const void *a, const void *b)
{
	const struct expected_fde *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->source - y->source;
}

/* Checks every readelf row, and the merged row count. */
/* extra_rows: rows kiln adds of its own, where readelf shows no CFI (ld.so's entry). */
static void check_against_readelf(const char *path, size_t min_fdes, size_t extra_rows)
{
	struct unwind_table table = {};
	struct unwind_table_stats stats = {};
	struct expected e;
	size_t checked = 0, mismatched = 0, merged = 0;
	uint64_t covered_end = 0;
	struct unwind_row last = { .rules = 0xff };
	uint64_t last_end = 0;

	CHECK(read_expected(path, &e));
	CHECK(e.fde_count >= min_fdes);
	CHECK(build(path, &table, &stats) == 0);
	CHECK(table.row_count > 0);
	if (!table.row_count)
		return;
	/* readelf prints FDEs in section order; kiln's rows follow addresses. */
	qsort(e.fdes, e.fde_count, sizeof(*e.fdes), compare_fdes);
	for (size_t f = 0; f < e.fde_count; f++) {
		const struct expected_fde *fde = &e.fdes[f];

		/* kiln keeps .eh_frame where both sections cover a pc, as readelf's order does. */
		if (fde->start < covered_end || fde->start == fde->end)
			continue;
		for (size_t r = fde->first_row; r < fde->first_row + fde->row_count; r++) {
			const struct expected_row *want = &e.rows[r];
			const struct unwind_row *got =
				unwind_table__find(&table, (uint32_t)want->pc);

			checked++;
			if (!got || !same_rules(got, &want->row)) {
				if (mismatched++ < 5)
					fprintf(stderr,
						"%s: pc %#llx: kiln rules %#x cfa %u rbp %d, readelf "
						"%#x cfa %u rbp %d\n",
						path, (unsigned long long)want->pc,
						got ? got->rules : 0, got ? got->cfa_offset : 0,
						got ? got->rbp_offset : 0, want->row.rules,
						want->row.cfa_offset, want->row.rbp_offset);
			}
			/* Merge as kiln does: a gap row where the previous FDE ended early. */
			if (last_end && want->pc > last_end && r == fde->first_row) {
				struct unwind_row gap = { .rules = UNWIND_CFA_NONE };

				if (!same_rules(&gap, &last) || last.rules == UNWIND_CFA_PLT)
					merged++;
				last = gap;
			}
			if (!same_rules(&want->row, &last) || (last.rules & 0xf) == UNWIND_CFA_PLT)
				merged++;
			last = want->row;
		}
		last_end = fde->end;
		covered_end = fde->end;
	}
	/* kiln ends the table with a row that no CFI covers past the last FDE. */
	if (last.rules != UNWIND_CFA_NONE)
		merged++;
	CHECK(checked > 0);
	CHECK(mismatched == 0);
	if (merged + extra_rows != table.row_count)
		fprintf(stderr, "%s: %zu rows, readelf merged gives %zu + %zu\n", path,
			table.row_count, merged, extra_rows);
	CHECK(merged + extra_rows == table.row_count);
	free(e.rows);
	free(e.fdes);
	unwind_table__free(&table);
}

static void test_pie_fixture(void)
{
	check_against_readelf(FIXTURE_DIR "/fixture_pie", 5, 0);
}

static void test_shared_library(void)
{
	check_against_readelf(FIXTURE_DIR "/libfixture.so", 3, 0);
}

static void test_debug_frame_only(void)
{
	struct unwind_table table = {};

	/* Its functions have CFI only in .debug_frame. */
	check_against_readelf(FIXTURE_DIR "/fixture_debug_frame", 5, 0);
	CHECK(build(FIXTURE_DIR "/fixture_debug_frame", &table, NULL) == 0);
	unwind_table__free(&table);
}

/*
 * Compressed .debug_frame and no .eh_frame, as Go binaries are: the same
 * rows, and the caller's handle keeps its sections compressed (decompressed
 * DWARF must not stay with a cached file once the table is built).
 */
/* The sections of elf that are compressed in its handle now. */
static size_t compressed_sections(Elf *elf)
{
	Elf_Scn *scn = NULL;
	size_t count = 0;

	while (elf && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (gelf_getshdr(scn, &shdr) && (shdr.sh_flags & SHF_COMPRESSED))
			count++;
	}
	return count;
}

static void test_compressed_debug_frame(void)
{
	const char *path = FIXTURE_DIR "/fixture_debug_frame_gz";
	struct unwind_table table = {};
	size_t compressed;
	Elf *elf = NULL;
	int fd;

	check_against_readelf(path, 5, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	elf_version(EV_CURRENT);
	elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	compressed = compressed_sections(elf);
	/* .debug_info, .debug_line, .debug_frame and others. */
	CHECK(compressed >= 4);
	CHECK(elf && unwind_table__build(elf, NULL, &table, NULL) == 0 && table.row_count > 0);
	CHECK(compressed_sections(elf) == compressed);
	unwind_table__free(&table);
	elf_end(elf);
	if (fd >= 0)
		close(fd);
}

static void test_libc(void)
{
	/* The real thing: glibc, built without frame pointers, with PLT and signal frames. */
	check_against_readelf("/lib/x86_64-linux-gnu/libc.so.6", 1000, 0);
}

static void test_libc_rules(void)
{
	struct unwind_table table = {};
	struct unwind_table_stats stats = {};
	size_t by_rule[8] = {};

	CHECK(build("/lib/x86_64-linux-gnu/libc.so.6", &table, &stats) == 0);
	for (size_t i = 0; i < table.row_count; i++)
		by_rule[UNWIND_CFA_RULE(table.rows[i].rules)]++;
	/* __restore_rt is glibc's signal trampoline; _start-like ends are in crt files. */
	CHECK(by_rule[UNWIND_CFA_SIGNAL] >= 1);
	CHECK(by_rule[UNWIND_CFA_PLT] >= 1);
	CHECK(by_rule[UNWIND_CFA_RSP] > 10000);
	CHECK(stats.fdes > 1000);
	for (size_t i = 1; i < table.row_count; i++)
		CHECK(table.rows[i - 1].pc < table.rows[i].pc);
	printf("libc: %zu rows from %llu FDEs (%zu rsp, %zu rbp, %zu plt, %zu signal, %zu end, "
	       "%zu unsupported; rbx unknown in %llu)\n",
	       table.row_count, (unsigned long long)stats.fdes, by_rule[UNWIND_CFA_RSP],
	       by_rule[UNWIND_CFA_RBP], by_rule[UNWIND_CFA_PLT], by_rule[UNWIND_CFA_SIGNAL],
	       by_rule[UNWIND_CFA_END], by_rule[UNWIND_CFA_UNSUPPORTED],
	       (unsigned long long)stats.rows_rbx_unknown);
	unwind_table__free(&table);
}

/*
 * ld.so's entry point (_start, then _dl_start_user) is assembly without
 * CFI: its code is the outermost frame, so a stack of a process still in
 * ld.so ends there complete. Code elsewhere keeps its own rows.
 */
static void test_loader_entry(void)
{
	const char *path = "/lib64/ld-linux-x86-64.so.2";
	struct unwind_table table = {};
	const struct unwind_row *row;
	GElf_Ehdr ehdr;
	Elf *elf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	CHECK(elf && gelf_getehdr(elf, &ehdr) && ehdr.e_entry);
	CHECK(elf && unwind_table__build(elf, NULL, &table, NULL) == 0);
	/* The call to _dl_start returns 8 bytes in: that return address, looked up at - 1. */
	row = unwind_table__find(&table, (uint32_t)ehdr.e_entry + 7);
	CHECK(row && (row->rules & 0xf) == UNWIND_CFA_END);
	row = unwind_table__find(&table, (uint32_t)ehdr.e_entry);
	CHECK(row && (row->rules & 0xf) == UNWIND_CFA_END);
	for (size_t i = 1; i < table.row_count; i++)
		CHECK(table.rows[i - 1].pc < table.rows[i].pc);
	unwind_table__free(&table);
	elf_end(elf);
	close(fd);
}

/* Reads size bytes of path's code at virtual address vaddr, through its section headers. */
static bool read_code(Elf *elf, int fd, uint64_t vaddr, uint8_t *code, size_t size)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_PROGBITS ||
		    !(shdr.sh_flags & SHF_EXECINSTR) || vaddr < shdr.sh_addr ||
		    vaddr + size > shdr.sh_addr + shdr.sh_size)
			continue;
		return pread(fd, code, size, (off_t)(shdr.sh_offset + vaddr - shdr.sh_addr)) ==
		       (ssize_t)size;
	}
	return false;
}

/*
 * ld.so's lazy-binding trampolines (_dl_runtime_resolve_xsavec and kin):
 * "push %rbx; mov %rsp, %rbx", then rsp aligned and the frame kept in rbx,
 * CFA = rbx + N. Every row of that rule follows that mov (48 89 e3), and
 * saves rbx where rbx points (CFA - N), as the machine code says; the
 * table agrees with readelf row by row.
 */
static void test_loader_trampolines(void)
{
	const char *path = "/lib64/ld-linux-x86-64.so.2";
	struct unwind_table table = {};
	struct unwind_table_stats stats = {};
	size_t by_rule[8] = {}, rbx_rows = 0, after_mov = 0, rbx_unknown = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *elf;

	check_against_readelf(path, 20, 1);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	CHECK(elf && unwind_table__build(elf, NULL, &table, &stats) == 0);
	for (size_t i = 0; elf && i < table.row_count; i++) {
		const struct unwind_row *row = &table.rows[i];
		uint8_t code[3];

		by_rule[UNWIND_CFA_RULE(row->rules)]++;
		rbx_unknown += UNWIND_RBX_RULE(row->rules) == UNWIND_RBX_UNKNOWN;
		if (UNWIND_CFA_RULE(row->rules) != UNWIND_CFA_RBX)
			continue;
		rbx_rows++;
		/* The first row after the mov; later ones (after a call's return) follow other code. */
		if (i > 0 && UNWIND_CFA_RULE(table.rows[i - 1].rules) != UNWIND_CFA_RBX &&
		    read_code(elf, fd, row->pc - 3, code, 3) && code[0] == 0x48 &&
		    code[1] == 0x89 && code[2] == 0xe3)
			after_mov++;
		CHECK(UNWIND_RBX_RULE(row->rules) == UNWIND_RBX_OFFSET);
		CHECK(row->rbp_offset * -8 == row->cfa_offset);
		CHECK(UNWIND_RBP_RULE(row->rules) == UNWIND_RBP_SAME);
	}
	/* _dl_runtime_resolve_{fxsave,xsave,xsavec} and _dl_runtime_profile_{avx,avx512}. */
	CHECK(rbx_rows >= 3);
	CHECK(after_mov >= 3);
	CHECK(by_rule[UNWIND_CFA_UNSUPPORTED] == stats.rows_unsupported);
	printf("ld.so: %zu rows (%zu rsp, %zu rbp, %zu rbx of which %zu checked against the code, "
	       "%zu unsupported; rbx unknown in %zu)\n",
	       table.row_count, by_rule[UNWIND_CFA_RSP], by_rule[UNWIND_CFA_RBP], rbx_rows,
	       after_mov, by_rule[UNWIND_CFA_UNSUPPORTED], rbx_unknown);
	unwind_table__free(&table);
	elf_end(elf);
	close(fd);
}

/*
 * A streamed build (what the BPF tables are loaded from) gives the rows
 * unwind_table__build holds, a chunk at a time after prepare() has the
 * count and each chunk's first pc; a sink's error ends the build.
 */
struct recording_sink {
	struct unwind_row_sink sink;
	size_t prepared_rows;
	uint32_t first_pc[UNWIND_MAX_CHUNKS];
	size_t prepared_chunks;
	int prepare_calls;
	bool write_before_prepare;
	bool short_chunk_not_last;
	struct unwind_row *rows;
	size_t row_count;
	size_t fail_after; /* writes, when nonzero */
	size_t writes;
};

static int recording_prepare(struct unwind_row_sink *sink, size_t row_count,
			     const uint32_t *first_pc, size_t chunk_count)
{
	struct recording_sink *r = (struct recording_sink *)sink;

	r->prepare_calls++;
	r->prepared_rows = row_count;
	r->prepared_chunks = chunk_count;
	memcpy(r->first_pc, first_pc, chunk_count * sizeof(*first_pc));
	return 0;
}

static int recording_write(struct unwind_row_sink *sink, const struct unwind_row *rows,
			   size_t count)
{
	struct recording_sink *r = (struct recording_sink *)sink;

	if (r->sink.prepare && !r->prepare_calls)
		r->write_before_prepare = true;
	if (r->row_count % UNWIND_CHUNK_ROWS)
		r->short_chunk_not_last = true;
	if (r->fail_after && ++r->writes > r->fail_after)
		return -E2BIG;
	r->rows = reallocarray(r->rows, r->row_count + count, sizeof(*rows));
	if (!r->rows)
		return -ENOMEM;
	memcpy(r->rows + r->row_count, rows, count * sizeof(*rows));
	r->row_count += count;
	return 0;
}

static void check_streamed_rows(const struct recording_sink *r, const struct unwind_table *table)
{
	size_t chunks = (table->row_count + UNWIND_CHUNK_ROWS - 1) / UNWIND_CHUNK_ROWS;

	CHECK(r->prepare_calls == 1);
	CHECK(!r->write_before_prepare && !r->short_chunk_not_last);
	CHECK(r->prepared_rows == table->row_count && r->row_count == table->row_count);
	CHECK(r->prepared_chunks == chunks);
	for (size_t i = 0; i < chunks && i < r->prepared_chunks; i++)
		CHECK(r->first_pc[i] == table->rows[i * UNWIND_CHUNK_ROWS].pc);
	CHECK(r->row_count == table->row_count &&
	      !memcmp(r->rows, table->rows, table->row_count * sizeof(*table->rows)));
}

static void check_streamed(const char *path, size_t min_chunks)
{
	struct unwind_table table = {};
	struct unwind_table_stats stats = {}, streamed_stats = {};
	struct recording_sink r = { .sink = { recording_prepare, recording_write } };
	struct recording_sink replayed = { .sink = { recording_prepare, recording_write } };
	struct recording_sink failing = { .sink = { recording_prepare, recording_write },
					  .fail_after = 1 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *elf;

	CHECK(fd >= 0);
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	CHECK(elf && unwind_table__build(elf, NULL, &table, &stats) == 0);
	CHECK(table.row_count >= min_chunks * UNWIND_CHUNK_ROWS);
	CHECK(unwind_table__stream(elf, NULL, &r.sink, &streamed_stats) == 0);
	check_streamed_rows(&r, &table);
	/* Counted once, though the rows were made twice. */
	CHECK(!memcmp(&stats, &streamed_stats, sizeof(stats)));
	CHECK(unwind_table__replay(&table, &replayed.sink) == 0);
	check_streamed_rows(&replayed, &table);
	if (table.row_count > UNWIND_CHUNK_ROWS) {
		CHECK(unwind_table__stream(elf, NULL, &failing.sink, NULL) == -E2BIG);
		CHECK(failing.row_count == UNWIND_CHUNK_ROWS);
	}
	free(r.rows);
	free(replayed.rows);
	free(failing.rows);
	unwind_table__free(&table);
	elf_end(elf);
	close(fd);
}

static void test_streamed(void)
{
	/* glibc: many chunks; the fixtures: one short chunk, and .debug_frame alone. */
	check_streamed("/lib/x86_64-linux-gnu/libc.so.6", 20);
	check_streamed(FIXTURE_DIR "/fixture_debug_frame", 0);
	check_streamed("/lib64/ld-linux-x86-64.so.2", 1);
}

/*
 * .eh_frame's FDEs come from .eh_frame_hdr's table, not a list of them
 * held, where the table says exactly what .eh_frame has. Copies of glibc
 * with the table damaged (out of order, an entry naming the wrong FDE, one
 * entry short, a count past the section) fall back to the list: the same
 * rows.
 */
enum hdr_damage { HDR_UNSORTED, HDR_WRONG_FDE, HDR_SHORT, HDR_COUNT_HUGE };

static int damaged_copy(const char *from, const char *to, enum hdr_damage damage)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, ok = -1;
	char buf[65536];
	ssize_t n;
	Elf *elf = NULL;
	Elf_Scn *scn;
	GElf_Shdr shdr;
	uint32_t entries[4];

	out = open(to, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || out < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto done;
	elf = elf_begin(in, ELF_C_READ_MMAP, NULL);
	scn = elf ? elf_find_section(elf, ".eh_frame_hdr") : NULL;
	/* version, encodings, eh_frame_ptr (sdata4), fde_count (udata4), then the table. */
	if (!scn || !gelf_getshdr(scn, &shdr) ||
	    pread(out, entries, sizeof(entries), (off_t)shdr.sh_offset + 12) != 16)
		goto done;
	switch (damage) {
	case HDR_UNSORTED: { /* the first two entries swapped */
		uint32_t first[2] = { entries[0], entries[1] };

		memcpy(entries, entries + 2, 8);
		memcpy(entries + 2, first, 8);
		ok = pwrite(out, entries, 16, (off_t)shdr.sh_offset + 12) == 16 ? 0 : -1;
		break;
	}
	case HDR_WRONG_FDE: /* the first entry names the second's FDE */
		entries[1] = entries[3];
		ok = pwrite(out, entries, 16, (off_t)shdr.sh_offset + 12) == 16 ? 0 : -1;
		break;
	case HDR_SHORT:
	case HDR_COUNT_HUGE: {
		uint32_t count;

		if (pread(out, &count, 4, (off_t)shdr.sh_offset + 8) != 4)
			goto done;
		count = damage == HDR_SHORT ? count - 1 : 0x7fffffff;
		ok = pwrite(out, &count, 4, (off_t)shdr.sh_offset + 8) == 4 ? 0 : -1;
		break;
	}
	}
done:
	elf_end(elf);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok;
}

static void test_eh_frame_hdr(void)
{
	static const char libc[] = "/lib/x86_64-linux-gnu/libc.so.6";
	struct unwind_table intact = {}, table;
	struct unwind_table_stats stats = {};
	char dir[] = "/tmp/kiln-test-hdr-XXXXXX";

	CHECK(build(libc, &intact, &stats) == 0);
	CHECK(stats.fdes_indexed > 1000 && stats.fdes_indexed == stats.fdes);
	CHECK(mkdtemp(dir) != NULL);
	for (int damage = HDR_UNSORTED; damage <= HDR_COUNT_HUGE; damage++) {
		char path[128];

		snprintf(path, sizeof(path), "%s/libc-%d.so", dir, damage);
		CHECK(damaged_copy(libc, path, damage) == 0);
		table = (struct unwind_table){};
		stats = (struct unwind_table_stats){};
		CHECK(build(path, &table, &stats) == 0);
		CHECK(stats.fdes_indexed == 0 && stats.fdes > 1000);
		CHECK(table.row_count == intact.row_count &&
		      !memcmp(table.rows, intact.rows, intact.row_count * sizeof(*intact.rows)));
		unwind_table__free(&table);
		unlink(path);
	}
	rmdir(dir);
	unwind_table__free(&intact);
}

static void test_no_cfi(void)
{
	struct unwind_table table = {};
	Elf *elf;
	int fd = open(FIXTURE_DIR "/fixture_garbage_ident", O_RDONLY);

	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	CHECK(!elf || unwind_table__build(elf, NULL, &table, NULL) < 0);
	CHECK(table.rows == NULL);
	elf_end(elf);
	close(fd);
}

TEST_MAIN("unwind_table", TEST(test_pie_fixture), TEST(test_shared_library),
	  TEST(test_debug_frame_only),
	  TEST_ROOT(test_compressed_debug_frame,
		    "reads its own mappings through /proc/self/map_files"),
	  TEST(test_libc), TEST(test_libc_rules), TEST(test_loader_entry),
	  TEST(test_loader_trampolines), TEST(test_streamed), TEST(test_eh_frame_hdr),
	  TEST(test_no_cfi))
