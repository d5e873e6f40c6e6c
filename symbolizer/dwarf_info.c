// SPDX-License-Identifier: Apache-2.0
/*
 * DWARF lines and inline chains through libdw. The first address that falls
 * into a unit has libdw read the unit once into a compact table of our own
 * (its functions, inlined calls, line rows and the names and paths they
 * use); lookups are answered from the tables alone, so libdw's reader,
 * which keeps every line table it has read at 64 bytes a row, can be
 * closed between windows and opened again only for a unit not read yet.
 */
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
#include "lib/hashmap.h"
#include "lib/sorted.h"
#include "lib/string_arena.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_file.h"

/* Nesting deeper than this (namespaces, blocks, inlined calls) is not indexed. */
#define MAX_DIE_NESTING 256
/* Inlined calls deeper than this inside one function are not followed. */
#define MAX_INLINE_DEPTH 256
/* Overlapping ranges (odd producers) are searched this far back from the best match. */
#define MAX_OVERLAP_SCAN 8
#define NO_FUNCTION UINT32_MAX
#define NO_STRING UINT32_MAX
/* A line row that ends a sequence: addresses from it on have no line. */
#define END_OF_SEQUENCE UINT32_MAX
/* read_units lets the pages it read go after this many units. */
#define UNITS_PER_PAGE_DROP 256

/*
 * One address range of a function (depth 0) or of an inlined call (depth
 * 1: inlined into the function's body, 2: into that inlined body, ...),
 * with what its frame shows: strings are offsets in the unit table's
 * strings, files indexes in its files.
 */
struct index_row {
	uint64_t low;
	uint64_t high; /* one past the end */
	uint32_t function; /* the function the row belongs to, numbered within its unit */
	uint32_t depth;
	uint32_t name; /* linkage name, else plain name; NO_STRING */
	uint32_t start_line; /* declaration line; 0 when unknown */
	uint32_t call_file; /* an inlined call's call site in its caller; NO_STRING */
	uint32_t call_line;
};
_Static_assert(sizeof(struct index_row) == 40, "dwarf_info__index_rows documents 40 bytes");

/* One row of a unit's line table: from address base + offset on, file and line. */
struct line_row {
	uint32_t offset;
	uint32_t file; /* index in the table's files; END_OF_SEQUENCE */
	uint32_t line;
};

/*
 * What lookups in one unit need, read from libdw once. Functions sorted by
 * low; inlined calls by (function, depth, low); lines by address, only the
 * rows that change what an address reads (libdw's own has a row per
 * statement, view and column).
 */
struct unit_table {
	struct index_row *functions;
	size_t function_count;
	struct index_row *inlines;
	size_t inline_count;
	uint64_t line_base;
	struct line_row *lines;
	size_t line_count;
	uint32_t *files; /* by the line table's file index: a path in strings, or NO_STRING */
	size_t file_count;
	struct string_arena strings;
};

struct unit {
	Dwarf_Die die; /* valid while the reader is open and the unit is bound */
	Dwarf_Off offset; /* of the unit's DIE in .debug_info */
	uint32_t bound_reader; /* the reader die was found by (dwarf_info's readers) */
	struct unit_table *table; /* NULL until an address falls into the unit */
	bool unreadable; /* its table could not be made: no frames */
};

/* One address range of a unit, for finding the unit of an address. */
struct unit_row {
	uint64_t low;
	uint64_t high;
	size_t unit;
};

struct dwarf_info {
	Elf *elf; /* the caller's handle: the reader is opened from it */
	/* The reader: libdw's handle and what it holds; NULL while closed. */
	Elf *own_elf; /* the file opened again, or NULL: reading through the caller's handle */
	Dwarf *dwarf;
	uint64_t section_bytes; /* decompressed copies of compressed sections libdw holds */
	uint64_t line_rows; /* rows of the line tables libdw has read */
	bool compressed; /* the file has compressed sections: the reader decompresses them */
	struct unit *units; /* in .debug_info order */
	size_t unit_count;
	uint32_t readers; /* readers opened so far: a unit's DIE is found again in each */
	struct unit_row *unit_rows; /* sorted by low */
	size_t unit_row_count;
	bool has_unranged_units; /* some unit names no ranges: .debug_aranges may know it */
	size_t index_rows;
	size_t max_index_rows;
	uint64_t table_bytes; /* what the unit tables hold */
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

/* An array given back what it holds beyond bytes; as it was when that fails. */
static void *shrunk(void *array, size_t bytes)
{
	void *smaller = bytes ? realloc(array, bytes) : NULL;

	return smaller ?: array;
}

/* A unit's table as it is made. */
struct table_builder {
	struct unit_table *table;
	Dwarf_Die *unit_die;
	Dwarf_Files *files; /* the unit's, or NULL */
	size_t file_count;
	uint32_t *paths; /* by file index: 0 not joined yet, else its string + 1 */
	struct hashmap *names; /* libdw's string (its address) -> its string + 1; NULL: none */
	struct row_array functions;
	struct row_array inlines;
	uint32_t function_count;
	size_t max_rows;
};

/* A copy of str in the table's strings, once per distinct libdw string; NO_STRING for none. */
static uint32_t add_string(struct table_builder *builder, const char *str)
{
	void *value;
	uint32_t offset;

	if (!str)
		return NO_STRING;
	if (builder->names && hashmap__find(builder->names, (uintptr_t)str, &value))
		return (uint32_t)((uintptr_t)value - 1);
	if (string_arena__add(&builder->table->strings, str, strlen(str), &offset) < 0)
		return NO_STRING;
	/* Not remembered: only copied again the next time. */
	if (builder->names)
		(void)hashmap__set(builder->names, (uintptr_t)str, (void *)((uintptr_t)offset + 1),
				   NULL, NULL);
	return offset;
}

/*
 * The path of a file in the unit's line table, as a string of the table. A
 * relative include directory is relative to the compilation directory
 * (DWARF 5, 6.2.4), which libdw does not prepend: "../sysdeps/x.h" in
 * glibc's "./stdlib" reads as "./stdlib/../sysdeps/x.h", as llvm-symbolizer
 * prints it.
 */
static uint32_t file_path(struct table_builder *builder, size_t file_index)
{
	const char *name, *directory;
	Dwarf_Attribute attr;
	char *joined = NULL;
	uint32_t path;
	size_t length;

	if (file_index >= builder->file_count)
		return NO_STRING;
	if (builder->paths[file_index])
		return builder->paths[file_index] - 1;
	name = dwarf_filesrc(builder->files, file_index, NULL, NULL);
	directory = dwarf_formstring(dwarf_attr(builder->unit_die, DW_AT_comp_dir, &attr));
	length = directory ? strlen(directory) : 0;
	/* Absolute, or in the compilation directory itself (DWARF 5's directory 0). */
	if (!name || name[0] == '/' || !length ||
	    (strncmp(name, directory, length) == 0 && name[length] == '/'))
		path = add_string(builder, name);
	else if (asprintf(&joined, "%s/%s", directory, name) >= 0)
		path = string_arena__add(&builder->table->strings, joined, strlen(joined), &path) <
				       0
			       ? NO_STRING
			       : path;
	else
		path = NO_STRING;
	free(joined);
	builder->paths[file_index] = path == NO_STRING ? NO_STRING : path + 1;
	return path;
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

/* What a frame of die shows: its name and declaration line; an inlined call's call site. */
static void describe_die(struct table_builder *builder, Dwarf_Die *die, struct index_row *row)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;

	row->name = add_string(builder, die_name(die));
	row->start_line = decl_line(die);
	row->call_file = NO_STRING;
	row->call_line = 0;
	if (dwarf_tag(die) != DW_TAG_inlined_subroutine)
		return;
	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0 &&
	    value <= UINT32_MAX)
		row->call_line = (uint32_t)value;
	/* DWARF 5 numbers files from 0, earlier versions from 1: libdw's table does both. */
	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0)
		row->call_file = file_path(builder, value);
}

/* Adds a row per live address range of die; *ret_added says whether there was any. */
static int add_ranges(struct table_builder *builder, struct row_array *array, Dwarf_Die *die,
		      uint32_t function, uint32_t depth, bool *ret_added)
{
	struct index_row row = { .function = function, .depth = depth };
	Dwarf_Addr base, low, high;
	ptrdiff_t offset = 0;
	bool added = false;
	int err;

	while ((offset = dwarf_ranges(die, offset, &base, &low, &high)) > 0) {
		if (!is_live_range(low, high))
			continue;
		if (!added)
			describe_die(builder, die, &row);
		row.low = low;
		row.high = high;
		err = row_array__push(array, &row);
		if (err)
			return err;
		added = true;
	}
	*ret_added = added;
	return 0;
}

static int index_children(struct table_builder *builder, Dwarf_Die *parent, uint32_t function,
			  uint32_t depth, unsigned int nesting);

/* Indexes one DIE and what it contains. */
static int index_die(struct table_builder *builder, Dwarf_Die *die, uint32_t function,
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
		err = add_ranges(builder, &builder->functions, die, builder->function_count, 0,
				 &added);
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
		err = add_ranges(builder, &builder->inlines, die, function, depth + 1, &added);
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

static int index_children(struct table_builder *builder, Dwarf_Die *parent, uint32_t function,
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

static void unit_table__free(struct unit_table *table)
{
	if (!table)
		return;
	free(table->functions);
	free(table->inlines);
	free(table->lines);
	string_arena__clear(&table->strings);
	free(table);
}

static size_t unit_table__rows(const struct unit_table *table)
{
	return table ? table->function_count + table->inline_count : 0;
}

static uint64_t unit_table__bytes(const struct unit_table *table)
{
	return sizeof(*table) + unit_table__rows(table) * sizeof(struct index_row) +
	       table->line_count * sizeof(struct line_row) + table->strings.capacity;
}

/*
 * The unit's line rows, as libdw reads them, kept where they change what an
 * address reads: of rows at one address the last (libdw's lookup takes
 * it), and not a row with its predecessor's file and line.
 */
static int read_lines(struct dwarf_info *info, struct table_builder *builder)
{
	struct unit_table *table = builder->table;
	Dwarf_Lines *lines;
	size_t count;

	if (dwarf_getsrclines(builder->unit_die, &lines, &count) != 0) {
		/* It has a line table that libdw cannot read: functions only. */
		if (dwarf_hasattr(builder->unit_die, DW_AT_stmt_list))
			info->losses |= 1U << ELF_LOSS_DEBUG_LINE;
		return 0;
	}
	info->line_rows += count;
	if (!count)
		return 0;
	table->lines = calloc(count, sizeof(*table->lines));
	if (!table->lines)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		Dwarf_Line *line = dwarf_onesrcline(lines, i);
		struct line_row row = { .file = NO_STRING };
		struct line_row *last =
			table->line_count ? &table->lines[table->line_count - 1] : NULL;
		Dwarf_Files *files;
		size_t file_index;
		Dwarf_Addr addr;
		bool end = false;
		int number;

		if (!line || dwarf_lineaddr(line, &addr) != 0)
			continue;
		if (i == 0)
			table->line_base = addr;
		/* libdw sorts by address; a table spanning 4 GiB is not a real one. */
		if (addr < table->line_base || addr - table->line_base > UINT32_MAX) {
			info->losses |= 1U << ELF_LOSS_DEBUG_LINE;
			continue;
		}
		row.offset = (uint32_t)(addr - table->line_base);
		(void)dwarf_lineendsequence(line, &end);
		if (end) {
			row.file = END_OF_SEQUENCE;
		} else {
			if (dwarf_line_file(line, &files, &file_index) == 0 &&
			    files == builder->files)
				row.file = file_path(builder, file_index);
			if (dwarf_lineno(line, &number) == 0 && number > 0)
				row.line = (uint32_t)number;
		}
		if (last && last->offset == row.offset)
			*last = row;
		else if (!last || last->file != row.file || last->line != row.line ||
			 row.file == END_OF_SEQUENCE)
			table->lines[table->line_count++] = row;
	}
	table->lines = shrunk(table->lines, table->line_count * sizeof(*table->lines));
	return 0;
}

/*
 * Reads a unit into a table: its DIEs once (functions and inlined calls,
 * with their ranges, names and call sites), then its line table. A unit
 * with more than max_rows ranges, or one whose DIEs are damaged, gets lines
 * only.
 */
static int build_unit_table(struct dwarf_info *info, struct unit *unit,
			    struct unit_table **ret_table)
{
	struct table_builder builder = { .unit_die = &unit->die, .max_rows = info->max_index_rows };
	struct unit_table *table;
	int err;

	table = calloc(1, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table->strings.first_capacity = 1024;
	builder.table = table;
	builder.names = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (dwarf_getsrcfiles(&unit->die, &builder.files, &builder.file_count) != 0)
		builder.file_count = 0;
	if (builder.file_count) {
		builder.paths = calloc(builder.file_count, sizeof(*builder.paths));
		if (!builder.paths)
			builder.file_count = 0;
	}
	err = index_children(&builder, &unit->die, NO_FUNCTION, 0, 0);
	if (err == -E2BIG || err == -EINVAL) {
		/* Too large or unreadable: either way not worth walking again. */
		builder.functions.count = builder.inlines.count = 0;
		info->stats.units_not_indexed++;
		err = 0;
	}
	if (!err)
		err = read_lines(info, &builder);
	if (err)
		goto cleanup;
	/* qsort's array must not be NULL, even empty (a unit without functions). */
	if (builder.functions.count)
		qsort(builder.functions.rows, builder.functions.count, sizeof(struct index_row),
		      compare_function_rows);
	if (builder.inlines.count)
		qsort(builder.inlines.rows, builder.inlines.count, sizeof(struct index_row),
		      compare_inline_rows);
	builder.functions.rows =
		shrunk(builder.functions.rows, builder.functions.count * sizeof(struct index_row));
	builder.inlines.rows =
		shrunk(builder.inlines.rows, builder.inlines.count * sizeof(struct index_row));
	table->functions = builder.functions.rows;
	table->function_count = builder.functions.count;
	table->inlines = builder.inlines.rows;
	table->inline_count = builder.inlines.count;
	builder.functions.rows = builder.inlines.rows = NULL;
	string_arena__shrink(&table->strings);
	*ret_table = table;
	table = NULL;
cleanup:
	unit_table__free(table);
	free(builder.functions.rows);
	free(builder.inlines.rows);
	free(builder.paths);
	hashmap__free(builder.names);
	return err;
}

static void drop_tables(struct dwarf_info *info)
{
	for (size_t i = 0; i < info->unit_count; i++) {
		unit_table__free(info->units[i].table);
		info->units[i].table = NULL;
	}
	info->index_rows = 0;
	info->table_bytes = 0;
}

static int compare_unit_rows(const void *a, const void *b)
{
	const struct unit_row *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	return 0;
}

/* Units of interest: type and partial units hold no code of their own. */
static bool is_code_unit(uint8_t unit_type)
{
	return unit_type == DW_UT_compile || unit_type == DW_UT_skeleton;
}

/* Split DWARF: the skeleton has the ranges, the split unit the DIEs and lines. */
static Dwarf_Die code_die(uint8_t unit_type, Dwarf_Die *unit_die, Dwarf_Die *sub_die)
{
	if (unit_type == DW_UT_skeleton && dwarf_tag(sub_die) == DW_TAG_compile_unit)
		return *sub_die;
	return *unit_die;
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

		if (!is_code_unit(unit_type))
			continue;
		if (ARRAY_RESERVE_ONE(info->units, info->unit_count, unit_capacity, 64))
			return -ENOMEM;
		unit = &info->units[info->unit_count];
		*unit = (struct unit){ .die = code_die(unit_type, &unit_die, &sub_die),
				       .offset = dwarf_dieoffset(&unit_die),
				       .bound_reader = info->readers };
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
	info->units = shrunk(info->units, info->unit_count * sizeof(*info->units));
	info->unit_rows = shrunk(info->unit_rows, info->unit_row_count * sizeof(*info->unit_rows));
	if (info->unit_row_count)
		qsort(info->unit_rows, info->unit_row_count, sizeof(*info->unit_rows),
		      compare_unit_rows);
	return 0;
}

/*
 * The reader opened again: a unit's DIE found anew when the unit is next
 * read, straight at its offset (no walk of the units before it). A unit no
 * longer there (the file changed under its mapping) is not read.
 */
static bool bind_unit(struct dwarf_info *info, struct unit *unit)
{
	Dwarf_Die unit_die, sub_die;
	Dwarf_Half version;
	uint8_t unit_type;

	if (unit->bound_reader == info->readers)
		return true;
	if (!dwarf_offdie(info->dwarf, unit->offset, &unit_die) ||
	    dwarf_dieoffset(&unit_die) != unit->offset ||
	    dwarf_cu_info(unit_die.cu, &version, &unit_type, NULL, &sub_die, NULL, NULL, NULL) ||
	    !is_code_unit(unit_type))
		return false;
	unit->die = code_die(unit_type, &unit_die, &sub_die);
	unit->bound_reader = info->readers;
	return true;
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

/* Lets go of libdw's handle and all it read; the unit tables stay. */
static void reader_close(struct dwarf_info *info)
{
	dwarf_end(info->dwarf);
	elf_end(info->own_elf);
	info->dwarf = NULL;
	info->own_elf = NULL;
	info->section_bytes = 0;
	info->line_rows = 0;
}

/*
 * Opens libdw's reader on the file, through a handle of our own when the
 * caller's maps it (what libdw decompresses and parses is then freed with
 * it); the units' DIEs are found again when they were read before.
 */
static int reader_open(struct dwarf_info *info)
{
	uint64_t compressed_start = 0, compressed_end = 0;

	if (info->dwarf)
		return 0;
	info->own_elf = elf_reopen_private(info->elf);
	if (info->own_elf)
		elf_hide_sections(info->own_elf, is_unread_section);
	compressed_extent(info->own_elf ?: info->elf, &compressed_start, &compressed_end,
			  &info->section_bytes);
	info->dwarf = dwarf_begin_elf(info->own_elf ?: info->elf, DWARF_C_READ, NULL);
	if (!info->dwarf) {
		reader_close(info);
		return -EINVAL;
	}
	if (info->section_bytes)
		info->compressed = true;
	if (info->own_elf)
		release_compressed_pages(info->own_elf, compressed_start, compressed_end);
	info->readers++;
	if (info->unit_count)
		info->stats.reader_reopens++;
	return 0;
}

struct dwarf_info *dwarf_info__new(Elf *elf, size_t max_index_rows)
{
	struct dwarf_info *info;
	int err = 0;

	info = calloc(1, sizeof(*info));
	if (!info) {
		err = -ENOMEM;
		goto cleanup;
	}
	info->elf = elf;
	info->max_index_rows = max_index_rows;
	/* A stripped file keeps .debug_info as NOBITS, or not at all. */
	if (!elf_find_section(elf, ".debug_info") && !elf_find_section(elf, ".zdebug_info")) {
		err = -ENOENT;
		goto cleanup;
	}
	err = reader_open(info);
	if (!err)
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
		drop_tables(info);
	free(info->units);
	free(info->unit_rows);
	reader_close(info);
	free(info);
}

void dwarf_info__close_reader(struct dwarf_info *info)
{
	if (info->dwarf && info->unit_count) {
		reader_close(info);
		info->stats.reader_closes++;
	}
}

bool dwarf_info__reader_open(const struct dwarf_info *info)
{
	return info->dwarf != NULL;
}

/* The unit's table, read on first use; NULL when it cannot be now. */
static struct unit_table *unit_table(struct dwarf_info *info, struct unit *unit)
{
	struct unit_table *table = NULL;
	size_t rows;

	if (unit->table || unit->unreadable)
		return unit->table;
	if (reader_open(info) < 0)
		return NULL;
	if (!bind_unit(info, unit)) {
		unit->unreadable = true;
		return NULL;
	}
	if (build_unit_table(info, unit, &table) < 0) {
		unit->unreadable = true;
		return NULL;
	}
	rows = unit_table__rows(table);
	/* The budget is for all units: the others make room, read again when needed. */
	if (info->index_rows + rows > info->max_index_rows) {
		drop_tables(info);
		info->stats.index_resets++;
	}
	unit->table = table;
	info->index_rows += rows;
	info->table_bytes += unit_table__bytes(table);
	return table;
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

	if (reader_open(info) < 0 || !dwarf_addrdie(info->dwarf, vaddr, &unit_die))
		return NULL;
	offset = dwarf_dieoffset(&unit_die);
	/* Units are in .debug_info order. */
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		Dwarf_Off mid_offset = info->units[mid].offset;

		if (mid_offset == offset)
			return &info->units[mid];
		if (mid_offset < offset)
			low = mid + 1;
		else
			high = mid;
	}
	return NULL;
}

static const struct index_row *find_function(const struct unit_table *table, uint64_t vaddr)
{
	size_t end = SORTED_UPPER_BOUND(table->functions, table->function_count, low, vaddr);

	for (size_t i = end; i > 0 && end - i < MAX_OVERLAP_SCAN; i--) {
		const struct index_row *row = &table->functions[i - 1];

		if (vaddr < row->high)
			return row;
	}
	return NULL;
}

/* The inlined call at depth in function that contains vaddr; calls at one depth are disjoint. */
static const struct index_row *find_inline(const struct unit_table *table, uint32_t function,
					   uint32_t depth, uint64_t vaddr)
{
	size_t low = 0, high = table->inline_count;
	const struct index_row *row;

	/* The last row not after (function, depth, vaddr). */
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct index_row *probe = &table->inlines[mid];
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
	row = &table->inlines[low - 1];
	if (row->function != function || row->depth != depth || vaddr >= row->high)
		return NULL;
	return row;
}

/* The line row vaddr reads, as libdw's dwarf_getsrc_die finds it; NULL for none. */
static const struct line_row *find_line(const struct unit_table *table, uint64_t vaddr)
{
	const struct line_row *row;
	uint64_t offset;
	size_t end;

	if (!table->line_count || vaddr < table->line_base)
		return NULL;
	offset = vaddr - table->line_base;
	end = SORTED_UPPER_BOUND(table->lines, table->line_count, offset, offset);
	if (end == 0)
		return NULL;
	row = &table->lines[end - 1];
	return row->file == END_OF_SEQUENCE ? NULL : row;
}

static const char *table_string(const struct unit_table *table, uint32_t offset)
{
	return offset == NO_STRING ? NULL : table->strings.data + offset;
}

int dwarf_info__lookup(struct dwarf_info *info, uint64_t vaddr, struct dwarf_info_frame *ret_frames,
		       size_t max_frames, size_t *ret_count)
{
	const struct index_row *chain[MAX_INLINE_DEPTH]; /* outermost (the function) first */
	const struct unit_table *table;
	const struct index_row *row;
	const struct line_row *line;
	size_t chain_length = 0, skip, count;
	struct unit *unit;
	const char *file = NULL;
	uint32_t line_number = 0;

	if (max_frames == 0)
		return -EINVAL;
	unit = find_unit_by_range(info, vaddr);
	if (!unit && info->has_unranged_units)
		unit = find_unit_by_aranges(info, vaddr);
	table = unit ? unit_table(info, unit) : NULL;
	if (!table)
		return -ENOENT;
	row = find_function(table, vaddr);
	if (row) {
		uint32_t function = row->function;

		chain[chain_length++] = row;
		while (chain_length < MAX_INLINE_DEPTH &&
		       (row = find_inline(table, function, chain_length, vaddr)))
			chain[chain_length++] = row;
	}
	line = find_line(table, vaddr);
	if (line) {
		file = table_string(table, line->file);
		line_number = line->line;
	}
	if (chain_length == 0) {
		if (!line)
			return -ENOENT;
		ret_frames[0] = (struct dwarf_info_frame){ .file = file, .line = line_number };
		*ret_count = 1;
		return 0;
	}

	/* Too deep: the innermost calls go, so the frames kept still reach the function. */
	skip = chain_length > max_frames ? chain_length - max_frames : 0;
	if (skip)
		info->stats.chains_truncated++;
	count = chain_length - skip;
	for (size_t i = 0; i < count; i++) {
		size_t position = count - 1 - i; /* in chain */
		const struct index_row *callee =
			position + 1 < chain_length ? chain[position + 1] : NULL;
		struct dwarf_info_frame frame = {
			.name = table_string(table, chain[position]->name),
			.start_line = chain[position]->start_line,
			/* A caller's line is where it made the call. */
			.file = callee ? table_string(table, callee->call_file) : file,
			.line = callee ? callee->call_line : line_number,
		};

		ret_frames[i] = frame;
	}
	*ret_count = count;
	return 0;
}

/* What libdw keeps per line row and per unit (its unit, abbreviations), measured on glibc. */
#define LINE_ROW_BYTES 64
#define UNIT_BYTES 1536

uint64_t dwarf_info__reader_memory(const struct dwarf_info *info)
{
	if (!info->dwarf)
		return 0;
	return info->section_bytes + info->line_rows * LINE_ROW_BYTES +
	       info->unit_count * UNIT_BYTES;
}

uint64_t dwarf_info__memory(const struct dwarf_info *info)
{
	return dwarf_info__reader_memory(info) + info->unit_count * sizeof(struct unit) +
	       info->unit_row_count * sizeof(struct unit_row) + info->table_bytes;
}

void dwarf_info__drop_pages(struct dwarf_info *info)
{
	if (info->dwarf)
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
	return info->compressed;
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
