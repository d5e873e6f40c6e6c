/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds the compact unwind table of one ELF file from its DWARF CFI
 * (.eh_frame, and .debug_frame for code .eh_frame does not cover): rows of
 * (pc, CFA rule, rbp rule) for the BPF unwinder, sorted, with consecutive
 * duplicates merged.
 */
#ifndef KILN_UNWIND_TABLE_H
#define KILN_UNWIND_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "bpf/unwind.h"

struct Elf;

struct unwind_table {
	struct unwind_row *rows; /* sorted by pc */
	size_t row_count;
};

struct unwind_table_stats {
	uint64_t fdes; /* FDEs read */
	uint64_t fdes_indexed; /* of them, found through .eh_frame_hdr, not listed */
	uint64_t fdes_skipped; /* overlapping another, or undecodable */
	uint64_t rows_unsupported; /* CFA from another register or an expression */
	uint64_t rows_rbp_unsupported;
	uint64_t rows_rbx_unknown; /* rbx saved where a row cannot say: no trampoline above it */
};

/*
 * Reads elf's CFI (and .debug_frame from debug_elf, which may be NULL).
 * Returns 0, -ENOENT when neither has CFI, -ERANGE when addresses do not
 * fit 32 bits, -EFBIG past the table size limit, or another negative errno.
 */
int unwind_table__build(struct Elf *elf, struct Elf *debug_elf, struct unwind_table *ret_table,
			struct unwind_table_stats *ret_stats);
/*
 * Where a streamed build's rows go, a chunk at a time (UNWIND_CHUNK_ROWS
 * rows, the last chunk shorter), so no table is held whole.
 */
struct unwind_row_sink {
	/*
	 * When set, the rows are made twice: first counted, then prepare() is
	 * told how many there are and the first pc of each chunk (what a BPF
	 * table's index holds, written before its rows), then they go to
	 * write(). A nonzero return from either ends the build with it.
	 */
	int (*prepare)(struct unwind_row_sink *sink, size_t row_count, const uint32_t *first_pc,
		       size_t chunk_count);
	int (*write)(struct unwind_row_sink *sink, const struct unwind_row *rows, size_t count);
};

/* unwind_table__build's rows, given to sink instead of held; returns as it does. */
int unwind_table__stream(struct Elf *elf, struct Elf *debug_elf, struct unwind_row_sink *sink,
			 struct unwind_table_stats *ret_stats);
/* A table built before (the vDSO's), given to sink as unwind_table__stream would. */
int unwind_table__replay(const struct unwind_table *table, struct unwind_row_sink *sink);

/*
 * The same rows from libdw's reading of the CFI (dwarf_cfi_addrframe at
 * each row), which unwind_table__build's own interpreter must equal:
 * slower (it runs an FDE's instructions again for each of its rows), kept
 * for the tests.
 */
int unwind_table__build_reference(struct Elf *elf, struct Elf *debug_elf,
				  struct unwind_table *ret_table,
				  struct unwind_table_stats *ret_stats);
void unwind_table__free(struct unwind_table *table);

/* The row that applies at pc (the last with row.pc <= pc), or NULL. */
const struct unwind_row *unwind_table__find(const struct unwind_table *table, uint32_t pc);

#endif /* KILN_UNWIND_TABLE_H */
