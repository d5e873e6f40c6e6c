/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source lines and inlined frames of one ELF file's DWARF, through libdw
 * (internal to the symbolizer). Units are found through a sorted table of
 * their address ranges; the first time an address falls into a unit, libdw
 * reads it into a compact table of ours (its functions, inlined calls,
 * lines, and the names and paths they show), from which lookups are
 * answered. libdw's reader, which holds far more, can then be closed and
 * is opened again only to read a unit not read yet. Library code: never
 * prints.
 */
#ifndef KILN_DWARF_INFO_H
#define KILN_DWARF_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dwarf_info;
struct Elf;

struct dwarf_info_frame {
	const char *name; /* linkage (mangled) name, else the plain name; NULL when unknown */
	const char *file; /* source file; NULL when unknown */
	uint32_t line; /* 0 when unknown */
	uint32_t start_line; /* the function's declaration line; 0 when unknown */
};

struct dwarf_info_stats {
	uint64_t index_resets; /* indexes dropped to stay under max_index_rows */
	uint64_t units_not_indexed; /* over max_index_rows alone, or unreadable: lines only */
	uint64_t chains_truncated; /* inline chains deeper than the caller's room */
	uint64_t reader_closes; /* dwarf_info__close_reader let go of libdw's reader */
	uint64_t reader_reopens; /* libdw's reader opened again, for a unit not read yet */
};

/*
 * Reads the DWARF of elf, an ELF handle the caller keeps open for the life
 * of the result. When elf maps its file, the file is read through a handle
 * of the result's own, so that what libdw decompresses and parses is freed
 * with the reader. Tables hold at most max_index_rows address ranges in
 * all; past that they are dropped and rebuilt on demand. NULL with errno
 * set: ENOENT when elf has no DWARF, EINVAL when not even its first unit
 * can be read.
 */
struct dwarf_info *dwarf_info__new(struct Elf *elf, size_t max_index_rows);
void dwarf_info__free(struct dwarf_info *info);

/*
 * The frames at vaddr (an ELF virtual address), innermost first: inlined
 * callees, then their callers, ending with the function that contains
 * vaddr. Each frame's line is the line inside that frame: for the innermost
 * the line table's, for a caller its call site. A chain deeper than
 * max_frames keeps its outermost frames. When DWARF has lines but no
 * function for vaddr, one frame with name NULL. Strings stay valid until
 * the next lookup or dwarf_info__free. Returns 0 (*ret_count >= 1) or -ENOENT when no debug
 * information covers vaddr.
 */
int dwarf_info__lookup(struct dwarf_info *info, uint64_t vaddr, struct dwarf_info_frame *ret_frames,
		       size_t max_frames, size_t *ret_count);

/* Whether libdw decompressed sections of the file to read it (they are in its memory). */
bool dwarf_info__decompressed(const struct dwarf_info *info);

/*
 * Writes to fd (empty, open for writing) an ELF file with the sections of
 * the file's DWARF as libdw holds them, decompressed, and the others as
 * they are (sections hidden from libdw as SHT_NOBITS), without program
 * headers: DWARF read from it needs no decompressing and its sections are
 * mapped file pages, not heap. *ret_bytes: the file's size. Returns 0, or
 * -ENOTSUP (no private handle, or GNU .zdebug_ sections), or -errno.
 */
int dwarf_info__write_decompressed(struct dwarf_info *info, int fd, uint64_t *ret_bytes);

/*
 * What the file's DWARF holds in memory now, estimated: the reader's
 * (dwarf_info__reader_memory), the units, and our tables.
 */
uint64_t dwarf_info__memory(const struct dwarf_info *info);

/*
 * What libdw's reader holds, estimated: the sections it decompressed, the
 * line tables it has read, its units. 0 while closed.
 */
uint64_t dwarf_info__reader_memory(const struct dwarf_info *info);

/*
 * Closes libdw's reader; the tables of the units read so far stay, and
 * lookups in them need no reader. Opened again, counted, when a lookup
 * falls into a unit not read yet.
 */
void dwarf_info__close_reader(struct dwarf_info *info);
bool dwarf_info__reader_open(const struct dwarf_info *info);

/*
 * Lets go of the mapped pages the file's DWARF was read from (elf_drop_pages):
 * libdw's data stays valid, and pages read again come from the page cache.
 */
void dwarf_info__drop_pages(struct dwarf_info *info);

/* Address ranges held in unit tables now, at 40 bytes each. */
size_t dwarf_info__index_rows(const struct dwarf_info *info);

/*
 * What was found damaged so far, as elf_file_loss bits: .debug_info (the
 * units after the damage are not read) or .debug_line (a unit's lines).
 */
unsigned int dwarf_info__losses(const struct dwarf_info *info);

void dwarf_info__stats(const struct dwarf_info *info, struct dwarf_info_stats *ret_stats);

#endif /* KILN_DWARF_INFO_H */
