// SPDX-License-Identifier: Apache-2.0
/* DWARF lines and inline chains through libdw, with a lazily built index per unit. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/sorted.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_file.h"

/* Nesting deeper than this (namespaces, blocks, inlined calls) is not indexed. */
#define MAX_DIE_NESTING 256
/* Inlined calls deeper than this inside one function are not followed. */
#define MAX_INLINE_DEPTH 256
/* Overlapping ranges (odd producers) are searched this far back from the best match. */
#define MAX_OVERLAP_SCAN 8
#define NO_FUNCTION UINT32_MAX
/* read_units lets the pages it read go after this many units. */
#define UNITS_PER_PAGE_DROP 256

/*
 * One address range of a function (depth 0) or of an inlined call (depth
 * 1: inlined into the function's body, 2: into that inlined body, ...).
 */
struct index_row {
	uint64_t low;
	uint64_t high; /* one past the end */
	Dwarf_Off die; /* the subprogram or inlined_subroutine DIE */
	uint32_t function; /* the function the row belongs to, numbered within its unit */
	uint32_t depth;
};
_Static_assert(sizeof(struct index_row) == 32, "dwarf_info__index_rows documents 32 bytes");

/* Functions sorted by low; inlined calls by (function, depth, low). */
struct unit_index {
	struct index_row *functions;
	size_t function_count;
	struct index_row *inlines;
	size_t inline_count;
};

struct unit {
	Dwarf_Die die; /* the unit's DIE: lines, files and call_file indices are its own */
	struct unit_index *index; /* NULL until an address falls into the unit */
	bool unindexable; /* over max_index_rows alone, or unreadable: lines only */
	bool lines_counted; /* its line table's rows are in line_rows */
	char **paths; /* file names joined to the compilation directory, by file index */
	size_t path_count;
};

/* One address range of a unit, for finding the unit of an address. */
struct unit_row {
	uint64_t low;
	uint64_t high;
	size_t unit;
};

struct dwarf_info {
	Elf *own_elf; /* the file opened again, or NULL: reading through the caller's handle */
	Dwarf *dwarf;
	struct unit *units; /* in .debug_info order */
	size_t unit_count;
	struct unit_row *unit_rows; /* sorted by low */
	size_t unit_row_count;
	bool has_unranged_units; /* some unit names no ranges: .debug_aranges may know it */
	size_t index_rows;
	size_t max_index_rows;
	uint64_t section_bytes; /* decompressed copies of compressed sections libdw holds */
	uint64_t line_rows; /* rows of the line tables libdw has read */
	unsigned int losses; /* elf_file_loss bits: .debug_info or .debug_line found damaged */
	struct dwarf_info_stats stats;
};

struct row_array {
	struct index_row *rows;
	size_t count;
	size_t capacity;
};

/* Linkers leave discarded code at address 0 (or -1, -2): such ranges name nothing. */
static bool is_live_range(Dwarf_Addr low, Dwarf_Addr high)
{
	return low != 0 && low < high;
}

static int row_array__push(struct row_array *array, const struct index_row *row)
{
	int err = ARRAY_RESERVE_ONE(array->rows, array->count, array->capacity, 64);

	if (!err)
		array->rows[array->count++] = *row;
	return err;
}

/* Adds a row per live address range of die; *ret_added says whether there was any. */
static int add_ranges(struct row_array *array, Dwarf_Die *die, uint32_t function, uint32_t depth,
		      bool *ret_added)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t offset = 0;
	bool added = false;
	int err;

	while ((offset = dwarf_ranges(die, offset, &base, &low, &high)) > 0) {
		struct index_row row = { low, high, dwarf_dieoffset(die), function, depth };

		if (!is_live_range(low, high))
			continue;
		err = row_array__push(array, &row);
		if (err)
			return err;
		added = true;
	}
	*ret_added = added;
	return 0;
}

struct index_builder {
	struct row_array functions;
	struct row_array inlines;
	uint32_t function_count;
	size_t max_rows;
};

static int index_children(struct index_builder *builder, Dwarf_Die *parent, uint32_t function,
			  uint32_t depth, unsigned int nesting);

/* Indexes one DIE and what it contains. */
static int index_die(struct index_builder *builder, Dwarf_Die *die, uint32_t function,
		     uint32_t depth, unsigned int nesting)
{
	bool added = false;
	int err;

	if (builder->functions.count + builder->inlines.count > builder->max_rows)
		return -E2BIG;
	switch (dwarf_tag(die)) {
	case DW_TAG_subprogram:
		/* A function of its own wherever it sits (local classes' methods included). */
		if (builder->function_count == NO_FUNCTION)
			return -E2BIG;
		err = add_ranges(&builder->functions, die, builder->function_count, 0, &added);
		if (err)
			return err;
		/* Declarations and abstract instances have no code; what they contain may. */
		if (added)
			return index_children(builder, die, builder->function_count++, 0,
					      nesting + 1);
		return index_children(builder, die, NO_FUNCTION, 0, nesting + 1);
	case DW_TAG_inlined_subroutine:
		if (function == NO_FUNCTION || depth + 1 >= MAX_INLINE_DEPTH)
			return 0;
		err = add_ranges(&builder->inlines, die, function, depth + 1, &added);
		if (err)
			return err;
		/* Calls inside a call without code would miss their caller's frame: skipped. */
		return added ? index_children(builder, die, function, depth + 1, nesting + 1) : 0;
	case DW_TAG_lexical_block:
	case DW_TAG_try_block:
	case DW_TAG_catch_block:
	case DW_TAG_namespace:
	case DW_TAG_module:
	case DW_TAG_class_type:
	case DW_TAG_structure_type:
	case DW_TAG_union_type:
	case DW_TAG_interface_type:
		return index_children(builder, die, function, depth, nesting + 1);
	default:
		return 0;
	}
}

static int index_children(struct index_builder *builder, Dwarf_Die *parent, uint32_t function,
			  uint32_t depth, unsigned int nesting)
{
	Dwarf_Die child;
	int found, err;

	if (nesting > MAX_DIE_NESTING)
		return 0;
	found = dwarf_child(parent, &child);
	while (found == 0) {
		err = index_die(builder, &child, function, depth, nesting);
		if (err)
			return err;
		found = dwarf_siblingof(&child, &child);
	}
	return found < 0 ? -EINVAL : 0;
}

static int compare_function_rows(const void *a, const void *b)
{
	const struct index_row *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	return x->high < y->high ? 1 : x->high > y->high ? -1 : 0;
}

static int compare_inline_rows(const void *a, const void *b)
{
	const struct index_row *x = a, *y = b;

	if (x->function != y->function)
		return x->function < y->function ? -1 : 1;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return compare_function_rows(a, b);
}

static void unit_index__free(struct unit_index *index)
{
	if (!index)
		return;
	free(index->functions);
	free(index->inlines);
	free(index);
}

static size_t unit_index__rows(const struct unit_index *index)
{
	return index ? index->function_count + index->inline_count : 0;
}

/* Walks a unit's DIEs once: its functions and inlined calls, with their ranges. */
static int build_unit_index(Dwarf_Die *unit_die, size_t max_rows, struct unit_index **ret_index)
{
	struct index_builder builder = { .max_rows = max_rows };
	struct unit_index *index = NULL;
	int err;

	err = index_children(&builder, unit_die, NO_FUNCTION, 0, 0);
	if (err)
		goto cleanup;
	index = calloc(1, sizeof(*index));
	if (!index) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* qsort's array must not be NULL, even empty (a unit without functions). */
	if (builder.functions.count)
		qsort(builder.functions.rows, builder.functions.count, sizeof(struct index_row),
		      compare_function_rows);
	if (builder.inlines.count)
		qsort(builder.inlines.rows, builder.inlines.count, sizeof(struct index_row),
		      compare_inline_rows);
	index->functions = builder.functions.rows;
	index->function_count = builder.functions.count;
	index->inlines = builder.inlines.rows;
	index->inline_count = builder.inlines.count;
	builder.functions.rows = builder.inlines.rows = NULL;
	*ret_index = index;
cleanup:
	free(builder.functions.rows);
	free(builder.inlines.rows);
	return err;
}

static void drop_indexes(struct dwarf_info *info)
{
	for (size_t i = 0; i < info->unit_count; i++) {
		unit_index__free(info->units[i].index);
		info->units[i].index = NULL;
	}
	info->index_rows = 0;
}

/* The unit's index, built on first use; NULL when it cannot be (lines still work). */
static struct unit_index *unit_index(struct dwarf_info *info, struct unit *unit)
{
	struct unit_index *index = NULL;
	size_t rows;

	if (unit->index || unit->unindexable)
		return unit->index;
	if (build_unit_index(&unit->die, info->max_index_rows, &index) < 0) {
		/* Too large or unreadable: either way not worth walking again. */
		unit->unindexable = true;
		info->stats.units_not_indexed++;
		return NULL;
	}
	rows = unit_index__rows(index);
	/* The budget is for all units: the others make room, rebuilt when needed again. */
	if (info->index_rows + rows > info->max_index_rows) {
		drop_indexes(info);
		info->stats.index_resets++;
	}
	unit->index = index;
	info->index_rows += rows;
	return index;
}

static int compare_unit_rows(const void *a, const void *b)
{
	const struct unit_row *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	return 0;
}

/* Reads every compile unit's DIE and address ranges (not its children). */
static int read_units(struct dwarf_info *info)
{
	size_t unit_capacity = 0, row_capacity = 0;
	Dwarf_CU *cu = NULL;
	Dwarf_Die unit_die, sub_die;
	Dwarf_Half version;
	uint8_t unit_type;
	int found;

	while ((found = dwarf_get_units(info->dwarf, cu, &cu, &version, &unit_type, &unit_die,
					&sub_die)) == 0) {
		Dwarf_Addr base, low, high;
		ptrdiff_t offset = 0;
		bool ranged = false;
		struct unit *unit;

		/* Type and partial units hold no code of their own. */
		if (unit_type != DW_UT_compile && unit_type != DW_UT_skeleton)
			continue;
		if (ARRAY_RESERVE_ONE(info->units, info->unit_count, unit_capacity, 64))
			return -ENOMEM;
		unit = &info->units[info->unit_count];
		*unit = (struct unit){ .die = unit_die };
		/* Split DWARF: the skeleton has the ranges, the split unit the DIEs and lines. */
		if (unit_type == DW_UT_skeleton && dwarf_tag(&sub_die) == DW_TAG_compile_unit)
			unit->die = sub_die;
		while ((offset = dwarf_ranges(&unit_die, offset, &base, &low, &high)) > 0) {
			if (!is_live_range(low, high))
				continue;
			if (ARRAY_RESERVE_ONE(info->unit_rows, info->unit_row_count, row_capacity,
					      64))
				return -ENOMEM;
			info->unit_rows[info->unit_row_count++] =
				(struct unit_row){ low, high, info->unit_count };
			ranged = true;
		}
		if (!ranged)
			info->has_unranged_units = true;
		/*
		 * The walk reads a page or more of .debug_info per unit: dropped
		 * as it goes, so a file read from a mapped copy (decompressed
		 * DWARF) does not hold all of its sections resident at once.
		 */
		if (++info->unit_count % UNITS_PER_PAGE_DROP == 0)
			dwarf_info__drop_pages(info);
	}
	/* The units before the damage still serve. */
	if (found < 0 && info->unit_count == 0)
		return -EINVAL;
	if (found < 0)
		info->losses |= 1U << ELF_LOSS_DEBUG_INFO;
	if (info->unit_row_count)
		qsort(info->unit_rows, info->unit_row_count, sizeof(*info->unit_rows),
		      compare_unit_rows);
	return 0;
}

/*
 * Sections libdw would decompress at dwarf_begin_elf that lookups never
 * read: variable locations, macros, CFI, name indexes. Locations alone are
 * a seventh of glibc's DWARF. Hidden from libdw in our own handle.
 */
static const char *const unread_sections[] = {
	".debug_loc",	       ".debug_loclists", ".debug_macro",    ".debug_macinfo",
	".debug_frame",	       ".debug_pubnames", ".debug_pubtypes", ".debug_gnu_pubnames",
	".debug_gnu_pubtypes", ".debug_names",	  ".zdebug_loc",     ".zdebug_loclists",
	".zdebug_macro",       ".zdebug_macinfo", ".zdebug_frame",   ".zdebug_pubnames",
	".zdebug_pubtypes",
};

static bool is_unread_section(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(unread_sections); i++) {
		if (strcmp(name, unread_sections[i]) == 0)
			return true;
	}
	return false;
}

static bool is_compressed_section(const GElf_Shdr *shdr, const char *name)
{
	return (shdr->sh_flags & SHF_COMPRESSED) || strncmp(name, ".zdebug_", 8) == 0;
}

/*
 * The file extent of elf's compressed sections, [*ret_start, *ret_end)
 * (empty when none), and what they take decompressed (sections hidden from
 * libdw left out).
 */
static void compressed_extent(Elf *elf, uint64_t *ret_start, uint64_t *ret_end, uint64_t *ret_bytes)
{
	uint64_t start = UINT64_MAX, end = 0, bytes = 0;
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	*ret_start = *ret_end = *ret_bytes = 0;
	if (elf_getshdrstrndx(elf, &shstrndx) < 0)
		return;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Chdr chdr;
		GElf_Shdr shdr;
		const char *name;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!name || !is_compressed_section(&shdr, name))
			continue;
		/* GNU's .zdebug_ sections: as large again as compressed, a guess. */
		bytes += (shdr.sh_flags & SHF_COMPRESSED) && gelf_getchdr(scn, &chdr)
				 ? chdr.ch_size
				 : 2 * shdr.sh_size;
		if (shdr.sh_offset < start)
			start = shdr.sh_offset;
		if (shdr.sh_offset + shdr.sh_size > end)
			end = shdr.sh_offset + shdr.sh_size;
	}
	if (start < end) {
		*ret_start = start;
		*ret_end = end;
	}
	*ret_bytes = bytes;
}

/*
 * Once libdw has decompressed them, the compressed bytes are not read again:
 * their pages are dropped from own's mapping (read-only and private, so a
 * later read would fault them back from the file). For glibc's debug file
 * that is 4 MiB of resident pages.
 */
static void release_compressed_pages(Elf *own, uint64_t start, uint64_t end)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size;
	char *image = elf_rawfile(own, &size);
	uintptr_t first, last;

	if (!image || page <= 0 || start >= end || end > size)
		return;
	first = ((uintptr_t)image + start + page - 1) & ~((uintptr_t)page - 1);
	last = ((uintptr_t)image + end) & ~((uintptr_t)page - 1);
	if (first < last)
		madvise((void *)first, last - first, MADV_DONTNEED);
}

struct dwarf_info *dwarf_info__new(Elf *elf, size_t max_index_rows)
{
	uint64_t compressed_start = 0, compressed_end = 0;
	struct dwarf_info *info;
	int err = 0;

	info = calloc(1, sizeof(*info));
	if (!info) {
		err = -ENOMEM;
		goto cleanup;
	}
	info->max_index_rows = max_index_rows;
	/* A stripped file keeps .debug_info as NOBITS, or not at all. */
	if (!elf_find_section(elf, ".debug_info") && !elf_find_section(elf, ".zdebug_info")) {
		err = -ENOENT;
		goto cleanup;
	}
	info->own_elf = elf_reopen_private(elf);
	if (info->own_elf)
		elf_hide_sections(info->own_elf, is_unread_section);
	compressed_extent(info->own_elf ?: elf, &compressed_start, &compressed_end,
			  &info->section_bytes);
	info->dwarf = dwarf_begin_elf(info->own_elf ?: elf, DWARF_C_READ, NULL);
	if (!info->dwarf) {
		err = -EINVAL;
		goto cleanup;
	}
	if (info->own_elf)
		release_compressed_pages(info->own_elf, compressed_start, compressed_end);
	err = read_units(info);
	if (!err && info->unit_count == 0)
		err = -ENOENT;
cleanup:
	if (err) {
		dwarf_info__free(info);
		errno = -err;
		return NULL;
	}
	return info;
}

void dwarf_info__free(struct dwarf_info *info)
{
	if (!info)
		return;
	if (info->units)
		drop_indexes(info);
	for (size_t i = 0; i < info->unit_count; i++) {
		for (size_t j = 0; j < info->units[i].path_count; j++)
			free(info->units[i].paths[j]);
		free(info->units[i].paths);
	}
	free(info->units);
	free(info->unit_rows);
	dwarf_end(info->dwarf);
	elf_end(info->own_elf);
	free(info);
}

static struct unit *find_unit_by_range(struct dwarf_info *info, uint64_t vaddr)
{
	size_t end = SORTED_UPPER_BOUND(info->unit_rows, info->unit_row_count, low, vaddr);

	for (size_t i = end; i > 0 && end - i < MAX_OVERLAP_SCAN; i--) {
		const struct unit_row *row = &info->unit_rows[i - 1];

		if (vaddr < row->high)
			return &info->units[row->unit];
	}
	return NULL;
}

/* Units without ranges in their DIE: the producer's .debug_aranges, if any. */
static struct unit *find_unit_by_aranges(struct dwarf_info *info, uint64_t vaddr)
{
	Dwarf_Die unit_die;
	Dwarf_Off offset;
	size_t low = 0, high = info->unit_count;

	if (!dwarf_addrdie(info->dwarf, vaddr, &unit_die))
		return NULL;
	offset = dwarf_dieoffset(&unit_die);
	/* Units are in .debug_info order. */
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		Dwarf_Off mid_offset = dwarf_dieoffset(&info->units[mid].die);

		if (mid_offset == offset)
			return &info->units[mid];
		if (mid_offset < offset)
			low = mid + 1;
		else
			high = mid;
	}
	return NULL;
}

static const struct index_row *find_function(const struct unit_index *index, uint64_t vaddr)
{
	size_t end = SORTED_UPPER_BOUND(index->functions, index->function_count, low, vaddr);

	for (size_t i = end; i > 0 && end - i < MAX_OVERLAP_SCAN; i--) {
		const struct index_row *row = &index->functions[i - 1];

		if (vaddr < row->high)
			return row;
	}
	return NULL;
}

/* The inlined call at depth in function that contains vaddr; calls at one depth are disjoint. */
static const struct index_row *find_inline(const struct unit_index *index, uint32_t function,
					   uint32_t depth, uint64_t vaddr)
{
	size_t low = 0, high = index->inline_count;
	const struct index_row *row;

	/* The last row not after (function, depth, vaddr). */
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct index_row *probe = &index->inlines[mid];
		bool before = probe->function != function ? probe->function < function
			      : probe->depth != depth	  ? probe->depth < depth
							  : probe->low <= vaddr;

		if (before)
			low = mid + 1;
		else
			high = mid;
	}
	if (low == 0)
		return NULL;
	row = &index->inlines[low - 1];
	if (row->function != function || row->depth != depth || vaddr >= row->high)
		return NULL;
	return row;
}

/* The DIE's linkage name (mangled), else its plain name, through abstract origins. */
static const char *die_name(Dwarf_Die *die)
{
	static const unsigned int attributes[] = { DW_AT_linkage_name, DW_AT_MIPS_linkage_name,
						   DW_AT_name };
	Dwarf_Attribute attr;

	for (size_t i = 0; i < ARRAY_SIZE(attributes); i++) {
		const char *name =
			dwarf_formstring(dwarf_attr_integrate(die, attributes[i], &attr));

		if (name && *name)
			return name;
	}
	return NULL;
}

static uint32_t decl_line(Dwarf_Die *die)
{
	int line;

	return dwarf_decl_line(die, &line) == 0 && line > 0 ? (uint32_t)line : 0;
}

/*
 * The path of a file in the unit's line table. A relative include directory
 * is relative to the compilation directory (DWARF 5, 6.2.4), which libdw
 * does not prepend: "../sysdeps/x.h" in glibc's "./stdlib" reads as
 * "./stdlib/../sysdeps/x.h", as llvm-symbolizer prints it. Joined paths are
 * kept with the unit.
 */
static const char *unit_file(struct unit *unit, Dwarf_Files *files, size_t file_index)
{
	const char *name = dwarf_filesrc(files, file_index, NULL, NULL), *directory;
	Dwarf_Attribute attr;
	size_t file_count, length;

	if (!name || name[0] == '/')
		return name;
	directory = dwarf_formstring(dwarf_attr(&unit->die, DW_AT_comp_dir, &attr));
	if (!directory || !directory[0])
		return name;
	/* In the compilation directory itself (DWARF 5's directory 0): joined already. */
	length = strlen(directory);
	if (strncmp(name, directory, length) == 0 && name[length] == '/')
		return name;
	if (!unit->paths) {
		if (dwarf_getsrcfiles(&unit->die, &files, &file_count) != 0 || !file_count)
			return name;
		unit->paths = calloc(file_count, sizeof(*unit->paths));
		if (!unit->paths)
			return name;
		unit->path_count = file_count;
	}
	if (file_index >= unit->path_count)
		return name;
	if (!unit->paths[file_index] &&
	    asprintf(&unit->paths[file_index], "%s/%s", directory, name) < 0)
		unit->paths[file_index] = NULL;
	return unit->paths[file_index] ?: name;
}

/* Where the inlined call die was made from: file and line in its caller. */
static void call_site(struct unit *unit, Dwarf_Die *die, struct dwarf_info_frame *frame)
{
	Dwarf_Attribute attr;
	Dwarf_Files *files;
	Dwarf_Word value;
	size_t file_count;

	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0 &&
	    value <= UINT32_MAX)
		frame->line = (uint32_t)value;
	/* DWARF 5 numbers files from 0, earlier versions from 1: libdw's table does both. */
	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0 &&
	    dwarf_getsrcfiles(&unit->die, &files, &file_count) == 0 && value < file_count)
		frame->file = unit_file(unit, files, value);
}

int dwarf_info__lookup(struct dwarf_info *info, uint64_t vaddr, struct dwarf_info_frame *ret_frames,
		       size_t max_frames, size_t *ret_count)
{
	Dwarf_Off chain[MAX_INLINE_DEPTH]; /* outermost (the function) first */
	const struct unit_index *index;
	const struct index_row *row;
	size_t chain_length = 0, skip, count;
	struct unit *unit;
	Dwarf_Line *line;
	Dwarf *dwarf;
	const char *file = NULL;
	int line_number = 0;

	if (max_frames == 0)
		return -EINVAL;
	unit = find_unit_by_range(info, vaddr);
	if (!unit && info->has_unranged_units)
		unit = find_unit_by_aranges(info, vaddr);
	if (!unit)
		return -ENOENT;
	index = unit_index(info, unit);
	row = index ? find_function(index, vaddr) : NULL;
	if (row) {
		uint32_t function = row->function;

		chain[chain_length++] = row->die;
		while (chain_length < MAX_INLINE_DEPTH &&
		       (row = find_inline(index, function, chain_length, vaddr)))
			chain[chain_length++] = row->die;
	}
	if (!unit->lines_counted) {
		Dwarf_Lines *lines;
		size_t line_count;

		if (dwarf_getsrclines(&unit->die, &lines, &line_count) == 0)
			info->line_rows += line_count;
		else if (dwarf_hasattr(&unit->die, DW_AT_stmt_list))
			/* It has a line table that libdw cannot read: functions only. */
			info->losses |= 1U << ELF_LOSS_DEBUG_LINE;
		unit->lines_counted = true;
	}
	line = dwarf_getsrc_die(&unit->die, vaddr);
	if (line) {
		Dwarf_Files *files;
		size_t file_index;

		if (dwarf_line_file(line, &files, &file_index) == 0)
			file = unit_file(unit, files, file_index);
		if (dwarf_lineno(line, &line_number) != 0 || line_number < 0)
			line_number = 0;
	}
	if (chain_length == 0) {
		if (!line)
			return -ENOENT;
		ret_frames[0] = (struct dwarf_info_frame){ .file = file, .line = line_number };
		*ret_count = 1;
		return 0;
	}

	/* A split unit's DIEs live in its own Dwarf (the .dwo file). */
	dwarf = dwarf_cu_getdwarf(unit->die.cu);
	/* Too deep: the innermost calls go, so the frames kept still reach the function. */
	skip = chain_length > max_frames ? chain_length - max_frames : 0;
	if (skip)
		info->stats.chains_truncated++;
	count = chain_length - skip;
	for (size_t i = 0; i < count; i++) {
		struct dwarf_info_frame frame = {};
		size_t position = count - 1 - i; /* in chain */
		Dwarf_Die die, callee;

		if (dwarf_offdie(dwarf, chain[position], &die)) {
			frame.name = die_name(&die);
			frame.start_line = decl_line(&die);
		}
		if (position + 1 == chain_length) {
			frame.file = file;
			frame.line = line_number;
		} else if (dwarf_offdie(dwarf, chain[position + 1], &callee)) {
			call_site(unit, &callee, &frame);
		}
		ret_frames[i] = frame;
	}
	*ret_count = count;
	return 0;
}

/* What libdw keeps per line row and per unit (its unit, abbreviations), measured on glibc. */
#define LINE_ROW_BYTES 64
#define UNIT_BYTES 1536

uint64_t dwarf_info__memory(const struct dwarf_info *info)
{
	return info->section_bytes + info->line_rows * LINE_ROW_BYTES +
	       info->unit_count * (UNIT_BYTES + sizeof(struct unit)) +
	       info->unit_row_count * sizeof(struct unit_row) +
	       info->index_rows * sizeof(struct index_row);
}

void dwarf_info__drop_pages(struct dwarf_info *info)
{
	elf_drop_pages(info->own_elf ?: dwarf_getelf(info->dwarf));
}

size_t dwarf_info__index_rows(const struct dwarf_info *info)
{
	return info->index_rows;
}

unsigned int dwarf_info__losses(const struct dwarf_info *info)
{
	return info->losses;
}

void dwarf_info__stats(const struct dwarf_info *info, struct dwarf_info_stats *ret_stats)
{
	*ret_stats = info->stats;
}

bool dwarf_info__decompressed(const struct dwarf_info *info)
{
	return info->section_bytes > 0;
}

/* The copy of one section: its header, and its data as libelf holds it now. */
static int copy_section(Elf_Scn *from, Elf *to)
{
	Elf_Scn *scn = elf_newscn(to);
	Elf_Data *data, *copy;
	GElf_Shdr shdr;

	if (!scn || !gelf_getshdr(from, &shdr))
		return -EINVAL;
	/* Hidden ones are NOBITS: no data, nothing compressed. */
	if (shdr.sh_type == SHT_NOBITS)
		shdr.sh_flags &= ~(GElf_Xword)SHF_COMPRESSED;
	/* One libdw does not read (relocations): decompressed here. */
	if ((shdr.sh_flags & SHF_COMPRESSED) &&
	    (elf_compress(from, 0, 0) < 0 || !gelf_getshdr(from, &shdr)))
		return -EINVAL;
	if (!gelf_update_shdr(scn, &shdr))
		return -EINVAL;
	if (shdr.sh_type == SHT_NOBITS || shdr.sh_size == 0)
		return 0;
	data = elf_getdata(from, NULL);
	copy = elf_newdata(scn);
	if (!data || !copy)
		return -EINVAL;
	*copy = (Elf_Data){ .d_buf = data->d_buf,
			    .d_type = data->d_type,
			    .d_version = data->d_version,
			    .d_size = data->d_size,
			    .d_align = data->d_align };
	return 0;
}

static bool has_gnu_compressed(Elf *elf)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) < 0)
		return true;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		const char *name;

		if (!gelf_getshdr(scn, &shdr))
			return true;
		name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (name && strncmp(name, ".zdebug_", 8) == 0)
			return true;
	}
	return false;
}

int dwarf_info__write_decompressed(struct dwarf_info *info, int fd, uint64_t *ret_bytes)
{
	Elf *from = info->own_elf, *to = NULL;
	GElf_Ehdr ehdr, out;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int64_t size;
	int err = 0;

	/* Without our own handle the sections are the caller's; GNU's would need renaming. */
	if (!from || has_gnu_compressed(from))
		return -ENOTSUP;
	if (!gelf_getehdr(from, &ehdr) || elf_getshdrstrndx(from, &shstrndx) < 0 ||
	    shstrndx >= SHN_LORESERVE)
		return -EINVAL;
	to = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!to || !gelf_newehdr(to, gelf_getclass(from))) {
		err = -EINVAL;
		goto cleanup;
	}
	/* Sections keep their indexes: they are made in order, after index 0. */
	while (!err && (scn = elf_nextscn(from, scn)))
		err = copy_section(scn, to);
	if (err)
		goto cleanup;
	if (!gelf_getehdr(to, &out)) {
		err = -EINVAL;
		goto cleanup;
	}
	memcpy(out.e_ident, ehdr.e_ident, EI_NIDENT);
	out.e_type = ehdr.e_type;
	out.e_machine = ehdr.e_machine;
	out.e_version = ehdr.e_version;
	out.e_entry = ehdr.e_entry;
	out.e_flags = ehdr.e_flags;
	out.e_shstrndx = (GElf_Half)shstrndx;
	size = gelf_update_ehdr(to, &out) ? elf_update(to, ELF_C_WRITE) : -1;
	if (size < 0) {
		err = errno ? -errno : -EIO;
		goto cleanup;
	}
	*ret_bytes = (uint64_t)size;
cleanup:
	elf_end(to);
	return err;
}
