// SPDX-License-Identifier: Apache-2.0
/*
 * Test and bench driver for the unwind table builder: builds each FILE's
 * table twice, with kiln's CFI interpreter and with libdw's reading of the
 * same CFI (unwind_table__build_reference), and prints one line per file:
 *   FILE ROWS same|differ INTERPRETER_S LIBDW_S
 * then, for a file that differs, its first differing rows. Exits 1 when
 * any file differs. With --dump, prints kiln's rows of FILE instead, one a
 * line: PC CFA (rsp+N, rbp+N, rbx+N, plt, signal, end, unsupported, none)
 * RBP (same, c+N with N in bytes, undefined, unsupported). With --stream,
 * builds FILE's table as kiln loads it into BPF (two passes, one chunk
 * held) and prints FILE ROWS CHUNKS SECONDS: run under /usr/bin/time for
 * the memory it takes against --dump's whole table.
 *   unwind_compare FILE...
 *   unwind_compare --dump FILE
 *   unwind_compare --stream FILE
 */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/unwind/unwind_table.h"
#include "lib/clock.h"

static double now_seconds(void)
{
	return (double)now_ns() / 1e9;
}

static void print_row(const char *what, const struct unwind_row *row)
{
	if (row)
		printf("  %s pc %#x rules %#x cfa %u rbp %d\n", what, row->pc, row->rules,
		       row->cfa_offset, row->rbp_offset);
	else
		printf("  %s none\n", what);
}

static bool same_row(const struct unwind_row *a, const struct unwind_row *b)
{
	return a->pc == b->pc && a->rules == b->rules && a->cfa_offset == b->cfa_offset &&
	       a->rbp_offset == b->rbp_offset;
}

static int dump(const char *path)
{
	static const char *const cfa_names[] = {
		[UNWIND_CFA_NONE] = "none",
		[UNWIND_CFA_RSP] = "rsp",
		[UNWIND_CFA_RBP] = "rbp",
		[UNWIND_CFA_PLT] = "plt",
		[UNWIND_CFA_SIGNAL] = "signal",
		[UNWIND_CFA_END] = "end",
		[UNWIND_CFA_UNSUPPORTED] = "unsupported",
		[UNWIND_CFA_RBX] = "rbx",
	};
	struct unwind_table table = {};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;

	if (!elf || unwind_table__build(elf, NULL, &table, NULL))
		return 1;
	for (size_t r = 0; r < table.row_count; r++) {
		const struct unwind_row *row = &table.rows[r];
		unsigned int cfa = UNWIND_CFA_RULE(row->rules), rbp = UNWIND_RBP_RULE(row->rules);
		const char *name = cfa < sizeof(cfa_names) / sizeof(cfa_names[0]) && cfa_names[cfa]
					   ? cfa_names[cfa]
					   : "?";

		printf("%x %s", row->pc, name);
		if (cfa == UNWIND_CFA_RSP || cfa == UNWIND_CFA_RBP || cfa == UNWIND_CFA_RBX)
			printf("+%u", row->cfa_offset);
		if (cfa == UNWIND_CFA_RSP || cfa == UNWIND_CFA_RBP || cfa == UNWIND_CFA_RBX ||
		    cfa == UNWIND_CFA_PLT) {
			if (rbp == UNWIND_RBP_OFFSET)
				printf(" c%+d", row->rbp_offset * 8);
			else
				printf(" %s", rbp == UNWIND_RBP_SAME	    ? "same"
					      : rbp == UNWIND_RBP_UNDEFINED ? "undefined"
									    : "unsupported");
		}
		printf("\n");
	}
	unwind_table__free(&table);
	elf_end(elf);
	close(fd);
	return 0;
}

struct counting_sink {
	struct unwind_row_sink sink;
	size_t rows;
	size_t chunks;
};

static int count_prepare(struct unwind_row_sink *sink, size_t row_count, const uint32_t *first_pc,
			 size_t chunk_count)
{
	(void)sink;
	(void)row_count;
	(void)first_pc;
	(void)chunk_count;
	return 0;
}

static int count_write(struct unwind_row_sink *sink, const struct unwind_row *rows, size_t count)
{
	struct counting_sink *counting = (struct counting_sink *)sink;

	(void)rows;
	counting->rows += count;
	counting->chunks++;
	return 0;
}

static int stream(const char *path)
{
	struct counting_sink counting = { .sink = { count_prepare, count_write } };
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	double start = now_seconds();

	err = elf ? unwind_table__stream(elf, NULL, &counting.sink, NULL) : -1;
	printf("%s %zu %zu %.6f\n", path, counting.rows, counting.chunks, now_seconds() - start);
	elf_end(elf);
	if (fd >= 0)
		close(fd);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	int differ = 0;

	elf_version(EV_CURRENT);
	if (argc == 3 && !strcmp(argv[1], "--dump"))
		return dump(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--stream"))
		return stream(argv[2]);
	for (int i = 1; i < argc; i++) {
		struct unwind_table ours = {}, theirs = {};
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC), err_ours, err_theirs;
		Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
		double start, ours_s, theirs_s;
		size_t shown = 0;
		bool same;

		if (!elf) {
			printf("%s unreadable\n", argv[i]);
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* Once untimed: both builds then read the file from the page cache. */
		if (!unwind_table__build(elf, NULL, &ours, NULL))
			unwind_table__free(&ours);
		start = now_seconds();
		err_ours = unwind_table__build(elf, NULL, &ours, NULL);
		ours_s = now_seconds() - start;
		start = now_seconds();
		err_theirs = unwind_table__build_reference(elf, NULL, &theirs, NULL);
		theirs_s = now_seconds() - start;
		same = err_ours == err_theirs && ours.row_count == theirs.row_count;
		for (size_t r = 0; same && r < ours.row_count; r++)
			same = same_row(&ours.rows[r], &theirs.rows[r]);
		printf("%s %zu %s %.6f %.6f\n", argv[i], theirs.row_count, same ? "same" : "differ",
		       ours_s, theirs_s);
		if (!same) {
			differ = 1;
			printf("  errors %d / %d, rows %zu / %zu\n", err_ours, err_theirs,
			       ours.row_count, theirs.row_count);
			for (size_t r = 0; shown < 4 && r < ours.row_count + theirs.row_count;
			     r++) {
				const struct unwind_row *a =
					r < ours.row_count ? &ours.rows[r] : NULL;
				const struct unwind_row *b =
					r < theirs.row_count ? &theirs.rows[r] : NULL;

				if (a && b && same_row(a, b))
					continue;
				print_row("kiln", a);
				print_row("libdw", b);
				shown++;
			}
		}
		unwind_table__free(&ours);
		unwind_table__free(&theirs);
		elf_end(elf);
		close(fd);
	}
	return differ;
}
