// SPDX-License-Identifier: Apache-2.0
/* Kernel text symbols from a kallsyms file, sorted, with names in one string arena. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/sorted.h"
#include "lib/string_arena.h"
#include "symbolizer/ksyms.h"

#define NO_MODULE UINT32_MAX
/* A boundary marks where a run of text symbols gives way to data: lookups stop there. */
#define BOUNDARY UINT32_MAX

/* While loading: every line, sorted and compacted before it is packed. */
struct ksyms_entry {
	uint64_t addr;
	uint32_t name; /* arena offset, or BOUNDARY */
	uint32_t module; /* arena offset, or NO_MODULE */
};

/*
 * What lookups search, 8 bytes a symbol (a kernel has over 100,000):
 * addresses as 32-bit offsets from their segment's base, modules as runs.
 */
struct ksyms_slot {
	uint32_t offset; /* from the segment's base */
	uint32_t name; /* arena offset, or BOUNDARY */
};

/* Slots whose addresses lie within 4 GiB of base: the kernel's text is one. */
struct ksyms_segment {
	uint64_t base;
	size_t first; /* slot index */
	size_t count;
};

/* Slots from first on belong to module (arena offset, or NO_MODULE), up to the next run. */
struct ksyms_module_run {
	size_t first;
	uint32_t module;
};

struct ksyms {
	struct ksyms_entry *entries; /* loading only: sorted by addr, preferred names first */
	size_t count;
	size_t capacity;
	struct ksyms_slot *slots;
	struct ksyms_segment *segments;
	size_t segment_count, segment_capacity;
	struct ksyms_module_run *runs;
	size_t run_count, run_capacity;
	unsigned long symbol_count; /* slots that are not boundaries */
	struct string_arena arena;
	uint32_t last_name; /* arena offset of the last symbol name added, or BOUNDARY */
};

static int add_entry(struct ksyms *ksyms, uint64_t addr, uint32_t name, uint32_t module)
{
	if (ARRAY_RESERVE_ONE(ksyms->entries, ksyms->count, ksyms->capacity, 16384))
		return -ENOMEM;
	ksyms->entries[ksyms->count++] = (struct ksyms_entry){ addr, name, module };
	return 0;
}

static bool is_text_type(char type)
{
	return type == 't' || type == 'T' || type == 'w' || type == 'W';
}

/* Among symbols at one address: real names, then __pfx_ padding, then boundaries. */
static int entry_rank(const struct ksyms *ksyms, const struct ksyms_entry *entry)
{
	if (entry->name == BOUNDARY)
		return 3;
	return strncmp(ksyms->arena.data + entry->name, "__pfx_", 6) == 0 ? 2 : 0;
}

static int compare_entries(const void *a, const void *b, void *ctx)
{
	const struct ksyms_entry *x = a, *y = b;
	const struct ksyms *ksyms = ctx;
	int rank_x, rank_y;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	rank_x = entry_rank(ksyms, x);
	rank_y = entry_rank(ksyms, y);
	if (rank_x != rank_y)
		return rank_x - rank_y;
	if (x->name == BOUNDARY)
		return 0;
	return strcmp(ksyms->arena.data + x->name, ksyms->arena.data + y->name);
}

/* "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[mod]" */
static int parse_line(struct ksyms *ksyms, char *line, uint32_t *last_module, bool *ret_nonzero)
{
	char *cursor = line, *end, *name, *module;
	size_t name_len;
	uint32_t name_offset, module_offset = NO_MODULE;
	uint64_t addr;
	char type;
	int err;

	errno = 0;
	addr = strtoull(cursor, &end, 16);
	if (errno || end == cursor || *end != ' ')
		return -EINVAL;
	type = end[1];
	if (!type || end[2] != ' ' || !end[3])
		return -EINVAL;
	name = end + 3;
	name_len = strcspn(name, "\t \n");
	if (addr)
		*ret_nonzero = true;
	if (!is_text_type(type))
		return add_entry(ksyms, addr, BOUNDARY, NO_MODULE);

	module = name + name_len + strspn(name + name_len, "\t ");
	if (*module == '[') {
		size_t module_len = strcspn(module + 1, "]\n");

		if (module[1 + module_len] != ']')
			return -EINVAL;
		/* kallsyms lists a module's symbols together: reuse its name. */
		if (*last_module != NO_MODULE &&
		    string_arena__equals(&ksyms->arena, *last_module, module + 1, module_len)) {
			module_offset = *last_module;
		} else {
			err = string_arena__add(&ksyms->arena, module + 1, module_len,
						&module_offset);
			if (err)
				return err;
			*last_module = module_offset;
		}
	}
	/*
	 * Every function has its padding named __pfx_<function> just before it
	 * (kernels with call depth tracking or FineIBT): the function's name is
	 * the tail of that one. 1.2 MiB of names not stored twice.
	 */
	if (ksyms->last_name != BOUNDARY &&
	    strncmp(ksyms->arena.data + ksyms->last_name, "__pfx_", 6) == 0 &&
	    string_arena__equals(&ksyms->arena, ksyms->last_name + 6, name, name_len)) {
		name_offset = ksyms->last_name + 6;
	} else {
		err = string_arena__add(&ksyms->arena, name, name_len, &name_offset);
		if (err)
			return err;
	}
	ksyms->last_name = name_offset;
	return add_entry(ksyms, addr, name_offset, module_offset);
}

/* Drops boundaries that bound nothing: only the first after a text symbol matters. */
static void compact_boundaries(struct ksyms *ksyms)
{
	size_t kept = 0;

	for (size_t i = 0; i < ksyms->count; i++) {
		struct ksyms_entry *entry = &ksyms->entries[i];

		if (entry->name == BOUNDARY &&
		    (kept == 0 || ksyms->entries[kept - 1].name == BOUNDARY ||
		     ksyms->entries[kept - 1].addr == entry->addr))
			continue;
		if (entry->name != BOUNDARY)
			ksyms->symbol_count++;
		ksyms->entries[kept++] = *entry;
	}
	ksyms->count = kept;
}

/* Packs the sorted entries into slots, segments and module runs, and frees them. */
static int pack_entries(struct ksyms *ksyms)
{
	ksyms->slots = reallocarray(NULL, ksyms->count, sizeof(*ksyms->slots));
	if (!ksyms->slots)
		return -ENOMEM;
	for (size_t i = 0; i < ksyms->count; i++) {
		const struct ksyms_entry *entry = &ksyms->entries[i];
		struct ksyms_segment *segment =
			ksyms->segment_count ? &ksyms->segments[ksyms->segment_count - 1] : NULL;

		if (!segment || entry->addr - segment->base > UINT32_MAX) {
			if (ARRAY_RESERVE_ONE(ksyms->segments, ksyms->segment_count,
					      ksyms->segment_capacity, 4))
				return -ENOMEM;
			segment = &ksyms->segments[ksyms->segment_count++];
			*segment = (struct ksyms_segment){ entry->addr, i, 0 };
		}
		if (!ksyms->run_count ||
		    ksyms->runs[ksyms->run_count - 1].module != entry->module) {
			if (ARRAY_RESERVE_ONE(ksyms->runs, ksyms->run_count, ksyms->run_capacity,
					      16))
				return -ENOMEM;
			ksyms->runs[ksyms->run_count++] =
				(struct ksyms_module_run){ i, entry->module };
		}
		segment->count++;
		ksyms->slots[i] = (struct ksyms_slot){ entry->addr - segment->base, entry->name };
	}
	free(ksyms->entries);
	ksyms->entries = NULL;
	ksyms->count = ksyms->capacity = 0;
	string_arena__shrink(&ksyms->arena);
	return 0;
}

struct ksyms *ksyms__load(const char *path)
{
	uint32_t last_module = NO_MODULE;
	struct ksyms *ksyms = NULL;
	bool nonzero = false;
	size_t line_size = 0;
	char *line = NULL;
	FILE *file = NULL;
	int err = 0;

	file = fopen(path, "re");
	if (!file) {
		err = -errno;
		goto cleanup;
	}
	ksyms = calloc(1, sizeof(*ksyms));
	if (!ksyms) {
		err = -ENOMEM;
		goto cleanup;
	}
	ksyms->last_name = BOUNDARY;
	ksyms->arena.first_capacity = 1 << 20;
	errno = 0;
	while (getline(&line, &line_size, file) >= 0) {
		if (line[0] == '\n' || line[0] == '\0')
			continue;
		err = parse_line(ksyms, line, &last_module, &nonzero);
		if (err)
			goto cleanup;
	}
	if (ferror(file)) {
		err = errno ? -errno : -EIO;
		goto cleanup;
	}
	/* kptr_restrict hides every address as 0 from readers without CAP_SYSLOG. */
	if (ksyms->count && !nonzero) {
		err = -EPERM;
		goto cleanup;
	}
	/* No lines leave entries NULL, which qsort_r refuses even for 0 of them. */
	if (ksyms->count)
		qsort_r(ksyms->entries, ksyms->count, sizeof(*ksyms->entries), compare_entries,
			ksyms);
	compact_boundaries(ksyms);
	if (!ksyms->symbol_count) {
		err = -ENODATA;
		goto cleanup;
	}
	err = pack_entries(ksyms);
cleanup:
	free(line);
	if (file)
		fclose(file);
	if (err) {
		ksyms__free(ksyms);
		errno = -err;
		return NULL;
	}
	return ksyms;
}

void ksyms__free(struct ksyms *ksyms)
{
	if (!ksyms)
		return;
	free(ksyms->entries);
	free(ksyms->slots);
	free(ksyms->segments);
	free(ksyms->runs);
	string_arena__clear(&ksyms->arena);
	free(ksyms);
}

int ksyms__lookup(const struct ksyms *ksyms, uint64_t addr, struct ksym *ret_sym)
{
	const struct ksyms_segment *segment = NULL;
	const struct ksyms_slot *slots;
	size_t index, run;
	uint64_t offset;

	/* The last segment starting at or below addr; there are one or a few. */
	for (size_t i = 0; i < ksyms->segment_count && ksyms->segments[i].base <= addr; i++)
		segment = &ksyms->segments[i];
	if (!segment)
		return -ENOENT;
	/* Beyond its 4 GiB but before the next segment: its last symbol, which has no end. */
	offset = addr - segment->base;
	slots = ksyms->slots + segment->first;
	if (offset > UINT32_MAX)
		index = segment->count;
	else
		/* First slot with a greater address; the one before it is the candidate. */
		index = SORTED_UPPER_BOUND(slots, segment->count, offset, offset);
	if (index == 0)
		return -ENOENT;
	index--;
	/* Among equal addresses the preferred name sorts first. */
	while (index > 0 && slots[index - 1].offset == slots[index].offset)
		index--;
	if (slots[index].name == BOUNDARY)
		return -ENOENT;
	index += segment->first;
	run = SORTED_UPPER_BOUND(ksyms->runs, ksyms->run_count, first, index) - 1;
	ret_sym->addr = segment->base + ksyms->slots[index].offset;
	ret_sym->name = ksyms->arena.data + ksyms->slots[index].name;
	ret_sym->module = ksyms->runs[run].module == NO_MODULE
				  ? NULL
				  : ksyms->arena.data + ksyms->runs[run].module;
	return 0;
}

unsigned long ksyms__count(const struct ksyms *ksyms)
{
	return ksyms->symbol_count;
}
