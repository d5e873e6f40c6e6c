// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the CFI table builder on an ELF file's .eh_frame and .debug_frame,
 * the file also standing in as its own debug file (a second handle, as a
 * debug file always is): a table it returns must be sorted, and every
 * lookup must land on one of its rows.
 */
#include "agent/unwind/unwind_table.h"
#include "tests/fuzz/fuzz.h"

static void check_table(const struct unwind_table *table)
{
	for (size_t i = 1; i < table->row_count; i++)
		FUZZ_CHECK(table->rows[i - 1].pc < table->rows[i].pc);
	for (size_t i = 0; i < table->row_count; i++) {
		const struct unwind_row *row = &table->rows[i];

		FUZZ_CHECK(unwind_table__find(table, row->pc) == row);
		if (row->pc > 0)
			FUZZ_CHECK(unwind_table__find(table, row->pc - 1) == (i ? row - 1 : NULL));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unwind_table_stats stats;
	struct unwind_table table = {};
	Elf *elf, *debug_elf;
	int fd;

	elf = fuzz_elf_open(data, size, &fd);
	if (elf) {
		debug_elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		for (int with_debug = 0; with_debug <= 1; with_debug++) {
			if (unwind_table__build(elf, with_debug ? debug_elf : NULL, &table,
						&stats) == 0) {
				check_table(&table);
				unwind_table__free(&table);
			}
		}
		elf_end(debug_elf);
		elf_end(elf);
	}
	close(fd);
	return 0;
}
