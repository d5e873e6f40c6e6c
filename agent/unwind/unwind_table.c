// SPDX-License-Identifier: Apache-2.0
/* DWARF CFI (via libdw) to the BPF unwinder's rows. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/unwind/unwind_table.h"
#include "lib/array.h"
#include "symbolizer/elf_file.h"

#define DWARF_REG_RBX 3
#define DWARF_REG_RBP 6
#define DWARF_REG_RSP 7
#define DWARF_REG_RA 16
#define MAX_ROWS ((size_t)UNWIND_CHUNK_ROWS * UNWIND_MAX_CHUNKS)

/* DW_EH_PE_* pointer encodings (LSB core spec), as .eh_frame uses them. */
#define EH_PE_OMIT 0xff
#define EH_PE_FORMAT_MASK 0x0f
#define EH_PE_APPLICATION_MASK 0x70
#define EH_PE_PCREL 0x10

/*
 * One FDE's addresses. Held only for the FDEs no .eh_frame_hdr indexes
 * (.debug_frame's, a file without the index): node's 130k are read from
 * its index instead, 3 MiB not held.
 */
struct fde_range {
	uint64_t start;
	uint64_t end : 63; /* cut at 2^63: far past what a table holds (UNWIND_PC_PAD) */
	uint64_t source : 1; /* 0: .eh_frame, 1: .debug_frame, which loses where both cover a pc */
	uint64_t offset; /* of the FDE in its section, where its instructions are read again */
};

/* One CFI section as collect_fdes found it, for reading its FDEs' instructions. */
struct cfi_section {
	Elf_Data *data; /* NULL: not read */
	uint64_t address; /* sh_addr, for pc-relative pointers */
	bool eh_frame;
	unsigned char ident[EI_NIDENT];
};

/*
 * libdw keeps every FDE and CIE dwarf_cfi_addrframe parsed until the CFI
 * ends (4 MiB for node's): .eh_frame's is begun again after this many FDEs.
 */
#define FDES_PER_CFI 8192

/*
 * .eh_frame_hdr's search table: (initial location, FDE address) pairs,
 * sorted, each a 4-byte offset from the header's address. Checked before
 * use against .eh_frame itself, since the file is the process's.
 */
struct eh_frame_index {
	const uint8_t *table;
	size_t count; /* 0: not used */
	uint64_t address; /* .eh_frame_hdr's sh_addr */
};

struct table_builder {
	/*
	 * The rows go to the sink a chunk at a time; the last row made stays
	 * in the chunk until the next, as a row at the same pc replaces it and
	 * an equal one merges into it.
	 */
	struct unwind_row chunk[UNWIND_CHUNK_ROWS];
	size_t chunk_rows;
	size_t row_count; /* made in this pass */
	size_t chunk_count; /* given to the sink (or counted) in this pass */
	struct unwind_row_sink *sink;
	uint32_t *first_pc; /* the counting pass: each chunk's first pc, else NULL */
	struct fde_range *fdes; /* sorted, the FDEs eh_index does not give */
	size_t fde_count;
	size_t fde_capacity;
	struct eh_frame_index eh_index;
	Dwarf_CFI *cfi[2]; /* by fde_range.source; libdw's reader, for the reference build */
	struct cfi_section sections[2]; /* by fde_range.source */
	struct unwind_table_stats stats;
};

static uint64_t read_uleb128(const uint8_t **p, const uint8_t *end)
{
	uint64_t value = 0;
	unsigned int shift = 0;

	while (*p < end) {
		uint8_t byte = *(*p)++;

		if (shift < 64)
			value |= (uint64_t)(byte & 0x7f) << shift;
		shift += 7;
		if (!(byte & 0x80))
			break;
	}
	return value;
}

static int64_t read_sleb128(const uint8_t **p, const uint8_t *end)
{
	int64_t value = 0;
	unsigned int shift = 0;
	uint8_t byte = 0;

	while (*p < end) {
		byte = *(*p)++;
		if (shift < 64)
			value |= (int64_t)(byte & 0x7f) << shift;
		shift += 7;
		if (!(byte & 0x80))
			break;
	}
	if (shift < 64 && (byte & 0x40))
		value |= -((int64_t)1 << shift);
	return value;
}

/*
 * Decodes one encoded pointer at *p; field_address is where it lives in
 * the process's address space (for pc-relative values). Returns 0 or
 * -ENOTSUP for encodings .eh_frame FDEs do not use on Linux.
 */
static int read_encoded(const uint8_t **p, const uint8_t *end, uint8_t encoding,
			uint64_t field_address, uint64_t *ret_value)
{
	uint64_t value;
	size_t size;

	switch (encoding & EH_PE_FORMAT_MASK) {
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		size = 8;
		break;
	case 0x03: /* udata4 */
	case 0x0b: /* sdata4 */
		size = 4;
		break;
	case 0x02: /* udata2 */
	case 0x0a: /* sdata2 */
		size = 2;
		break;
	case 0x01:
		value = read_uleb128(p, end);
		goto applied;
	case 0x09:
		value = (uint64_t)read_sleb128(p, end);
		goto applied;
	default:
		return -ENOTSUP;
	}
	if ((size_t)(end - *p) < size)
		return -EINVAL;
	if (size == 8) {
		memcpy(&value, *p, 8);
	} else if (size == 4) {
		uint32_t v;

		memcpy(&v, *p, 4);
		value = (encoding & 0x08) ? (uint64_t)(int64_t)(int32_t)v : v;
	} else {
		uint16_t v;

		memcpy(&v, *p, 2);
		value = (encoding & 0x08) ? (uint64_t)(int64_t)(int16_t)v : v;
	}
	*p += size;
applied:
	switch (encoding & EH_PE_APPLICATION_MASK) {
	case 0:
		break;
	case EH_PE_PCREL:
		value += field_address;
		break;
	default:
		return -ENOTSUP;
	}
	*ret_value = value;
	return 0;
}

/* The FDE pointer encoding from a CIE's augmentation ("zR", "zPLR", ...). */
static uint8_t fde_encoding(const Dwarf_CIE *cie)
{
	const uint8_t *data = cie->augmentation_data;
	const uint8_t *end = data ? data + cie->augmentation_data_size : NULL;
	const char *aug = cie->augmentation;

	if (!aug || aug[0] != 'z' || !data)
		return 0x00;
	for (aug++; *aug && data < end; aug++) {
		uint64_t ignored;

		switch (*aug) {
		case 'R':
			return *data;
		case 'P': {
			uint8_t encoding = *data++;

			/* The personality routine's address; its value is not needed. */
			if (read_encoded(&data, end, encoding & ~EH_PE_APPLICATION_MASK, 0,
					 &ignored))
				return 0x00;
			break;
		}
		case 'L':
			data++;
			break;
		default: /* 'S' (signal frame), 'B': no data */
			break;
		}
	}
	return 0x00;
}

static int compare_fdes(const void *a, const void *b)
{
	const struct fde_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->source - y->source;
}

/* Takes one CFI section for reading its FDEs: 0, or 1 when it is absent or unreadable. */
static int open_cfi_section(struct table_builder *builder, Elf *elf, const char *section_name,
			    bool eh_frame)
{
	GElf_Ehdr ehdr;
	GElf_Shdr shdr;
	Elf_Scn *scn = elf_find_section(elf, section_name);
	Elf_Data *data;
	struct cfi_section *section = &builder->sections[eh_frame ? 0 : 1];

	if (!scn || !gelf_getshdr(scn, &shdr) || !gelf_getehdr(elf, &ehdr))
		return 1;
	if ((shdr.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
		return 1;
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf)
		return 1;
	*section = (struct cfi_section){
		.data = data,
		.address = shdr.sh_addr,
		.eh_frame = eh_frame,
	};
	memcpy(section->ident, ehdr.e_ident, EI_NIDENT);
	return 0;
}

/*
 * Decodes the FDE at offset of a section: 0 with *ret_fde, 1 for an FDE
 * covering nothing, 2 for a CIE, -EINVAL for an undecodable entry, -ENOENT
 * past the last. *ret_next is the next entry's offset.
 */
static int decode_fde(const struct cfi_section *section, int source, Dwarf_Off offset,
		      Dwarf_Off *ret_next, struct fde_range *ret_fde)
{
	const uint8_t *p, *end = (const uint8_t *)section->data->d_buf + section->data->d_size;
	Dwarf_CFI_Entry entry, cie_entry;
	Dwarf_Off cie_next;
	uint64_t start, range;
	uint8_t encoding;
	int ret = dwarf_next_cfi(section->ident, section->data, section->eh_frame, offset, ret_next,
				 &entry);

	if (ret > 0)
		return -ENOENT;
	if (ret < 0)
		return -EINVAL;
	if (dwarf_cfi_cie_p(&entry))
		return 2;
	if (dwarf_next_cfi(section->ident, section->data, section->eh_frame, entry.fde.CIE_pointer,
			   &cie_next, &cie_entry) != 0 ||
	    !dwarf_cfi_cie_p(&cie_entry))
		return -EINVAL;
	/* .debug_frame holds absolute addresses; .eh_frame says how in its CIE. */
	encoding = section->eh_frame ? fde_encoding(&cie_entry.cie) : 0x00;
	p = entry.fde.start;
	if (read_encoded(&p, end, encoding,
			 section->address + (uint64_t)(p - (const uint8_t *)section->data->d_buf),
			 &start) ||
	    read_encoded(&p, end, encoding & EH_PE_FORMAT_MASK, 0, &range))
		return -EINVAL;
	if (!range)
		return 1;
	*ret_fde = (struct fde_range){
		.start = start,
		.end = start + range < start || start + range >= 1ULL << 63 ? (1ULL << 63) - 1
									    : start + range,
		.source = source,
		.offset = offset,
	};
	return 0;
}

/*
 * Walks the FDEs of an opened section: with store, into builder->fdes,
 * counted in its stats; else only their number with addresses is
 * returned in *ret_count.
 */
static int walk_fdes(struct table_builder *builder, int source, bool store, size_t *ret_count)
{
	const struct cfi_section *section = &builder->sections[source];
	Dwarf_Off offset = 0, next;
	size_t count = 0;
	int err;

	if (!section->data)
		return 0;
	for (;; offset = next) {
		struct fde_range fde;
		int ret = decode_fde(section, source, offset, &next, &fde);

		if (ret == 2)
			continue;
		if (ret == -ENOENT)
			break;
		if (ret == -EINVAL && (next == (Dwarf_Off)-1 || next <= offset))
			break;
		if (store) {
			builder->stats.fdes++;
			if (ret < 0)
				builder->stats.fdes_skipped++;
		}
		if (ret)
			continue;
		count++;
		if (!store)
			continue;
		err = ARRAY_RESERVE_ONE(builder->fdes, builder->fde_count, builder->fde_capacity,
					256);
		if (err)
			return err;
		builder->fdes[builder->fde_count++] = fde;
	}
	if (ret_count)
		*ret_count = count;
	return 0;
}

/* Entry i of .eh_frame_hdr's table, decoded: as decode_fde, -EINVAL where the two disagree. */
static int indexed_fde(const struct table_builder *builder, size_t i, struct fde_range *ret_fde)
{
	const struct eh_frame_index *index = &builder->eh_index;
	const struct cfi_section *section = &builder->sections[0];
	int32_t location, address;
	uint64_t fde_address, offset;
	Dwarf_Off next;
	int ret;

	memcpy(&location, index->table + 8 * i, 4);
	memcpy(&address, index->table + 8 * i + 4, 4);
	fde_address = index->address + (uint64_t)(int64_t)address;
	offset = fde_address - section->address;
	if (fde_address < section->address || offset >= section->data->d_size)
		return -EINVAL;
	ret = decode_fde(section, 0, offset, &next, ret_fde);
	if (ret == 0 && ret_fde->start != index->address + (uint64_t)(int64_t)location)
		return -EINVAL;
	return ret == -ENOENT || ret == 2 ? -EINVAL : ret;
}

#define EH_FRAME_HDR_TABLE_ENCODING 0x3b /* DW_EH_PE_datarel | DW_EH_PE_sdata4 */

/*
 * Uses .eh_frame_hdr's table for .eh_frame's FDEs when it says exactly what
 * .eh_frame holds: in address order, each entry the FDE it names, as many
 * as .eh_frame has. Returns true when in use.
 */
static bool index_eh_frame(struct table_builder *builder, Elf *elf)
{
	struct eh_frame_index index = {};
	Elf_Scn *scn = elf_find_section(elf, ".eh_frame_hdr");
	const struct cfi_section *section = &builder->sections[0];
	const uint8_t *hdr, *p, *end;
	uint64_t ignored, count, previous = 0;
	size_t usable = 0, in_section;
	GElf_Shdr shdr;
	Elf_Data *data;

	if (!section->data || !scn || !gelf_getshdr(scn, &shdr) ||
	    (shdr.sh_flags & SHF_COMPRESSED) || !(data = elf_getdata(scn, NULL)) || !data->d_buf ||
	    data->d_size < 4)
		return false;
	/* version, eh_frame_ptr's encoding, fde_count's, the table's; then those two values. */
	hdr = data->d_buf;
	end = hdr + data->d_size;
	if (hdr[0] != 1 || hdr[1] == EH_PE_OMIT || hdr[2] == EH_PE_OMIT ||
	    hdr[3] != EH_FRAME_HDR_TABLE_ENCODING)
		return false;
	index.address = shdr.sh_addr;
	p = hdr + 4;
	if (read_encoded(&p, end, hdr[1], index.address + 4, &ignored) ||
	    read_encoded(&p, end, hdr[2], index.address + (uint64_t)(p - hdr), &count) ||
	    count > (uint64_t)(end - p) / 8)
		return false;
	index.table = p;
	index.count = count;
	builder->eh_index = index;
	for (size_t i = 0; i < index.count; i++) {
		struct fde_range fde;
		int ret = indexed_fde(builder, i, &fde);

		if (ret < 0 || (ret == 0 && fde.start < previous))
			goto unusable;
		if (ret == 0) {
			previous = fde.start;
			usable++;
		}
	}
	if (walk_fdes(builder, 0, false, &in_section) || in_section != usable)
		goto unusable;
	builder->stats.fdes += index.count;
	builder->stats.fdes_indexed = index.count;
	return true;
unusable:
	builder->eh_index = (struct eh_frame_index){};
	return false;
}

/* The FDEs in address order, .eh_frame's first where both cover one: from the index and the array. */
struct fde_cursor {
	size_t indexed; /* the next entry of eh_index */
	size_t listed; /* the next of fdes */
	bool peeked;
	struct fde_range next_indexed;
};

static bool next_fde(const struct table_builder *builder, struct fde_cursor *cursor,
		     struct fde_range *ret_fde)
{
	while (!cursor->peeked && cursor->indexed < builder->eh_index.count) {
		if (indexed_fde(builder, cursor->indexed++, &cursor->next_indexed) == 0)
			cursor->peeked = true;
	}
	if (cursor->listed < builder->fde_count &&
	    (!cursor->peeked ||
	     compare_fdes(&builder->fdes[cursor->listed], &cursor->next_indexed) < 0)) {
		*ret_fde = builder->fdes[cursor->listed++];
		return true;
	}
	if (!cursor->peeked)
		return false;
	*ret_fde = cursor->next_indexed;
	cursor->peeked = false;
	return true;
}

static bool is_op_cfa_plus(const Dwarf_Op *ops, size_t nops, int64_t *ret_offset)
{
	if (nops == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
		*ret_offset = 0;
		return true;
	}
	if (nops == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
		*ret_offset = (int64_t)ops[1].number;
		return true;
	}
	return false;
}

/* The PLT's CFA: rsp + 8 + ((rip & 15) >= N) << 3, as binutils emits it. */
static bool is_plt_expression(const Dwarf_Op *ops, size_t nops, uint16_t *ret_threshold)
{
	static const uint8_t shape[] = { DW_OP_breg7, DW_OP_breg16,	  DW_OP_lit15,
					 DW_OP_and,   0 /* DW_OP_litN */, DW_OP_ge,
					 DW_OP_lit3,  DW_OP_shl,	  DW_OP_plus };

	if (nops != sizeof(shape))
		return false;
	for (size_t i = 0; i < nops; i++) {
		if (i == 4) {
			if (ops[i].atom < DW_OP_lit0 || ops[i].atom > DW_OP_lit31)
				return false;
			continue;
		}
		if (ops[i].atom != shape[i])
			return false;
	}
	if (ops[0].number != 8 || ops[1].number != 0)
		return false;
	*ret_threshold = ops[4].atom - DW_OP_lit0;
	return true;
}

/*
 * Where a callee-saved register lives by one row's CFI: same value, or saved
 * at CFA + *ret_slot * 8 (in range of a row's rbp_offset), or neither.
 */
enum saved_register {
	SAVED_SAME,
	SAVED_AT_SLOT,
	SAVED_UNDEFINED,
	SAVED_OTHER,
};

static enum saved_register saved_register(Dwarf_Frame *frame, int reg, int8_t *ret_slot)
{
	Dwarf_Op ops_mem[3], *ops;
	size_t nops;
	int64_t offset;

	if (dwarf_frame_register(frame, reg, ops_mem, &ops, &nops) != 0)
		return SAVED_OTHER;
	if (nops == 0)
		return ops ? SAVED_UNDEFINED : SAVED_SAME;
	if (is_op_cfa_plus(ops, nops, &offset) && offset % 8 == 0 && offset / 8 >= INT8_MIN &&
	    offset / 8 <= INT8_MAX) {
		*ret_slot = (int8_t)(offset / 8);
		return SAVED_AT_SLOT;
	}
	return SAVED_OTHER;
}

/*
 * A row's rbp and rbx rules from where each is saved (rbx fitted into the
 * slot rbp's rule leaves, enum unwind_rbx_rule), after its CFA rule.
 */
static void describe_saved(struct table_builder *builder, uint8_t cfa_rule, enum saved_register rbp,
			   int8_t rbp_slot, enum saved_register rbx, int8_t rbx_slot,
			   struct unwind_row *row)
{
	uint8_t rbp_rule, rbx_rule;

	switch (rbp) {
	case SAVED_SAME:
		rbp_rule = UNWIND_RBP_SAME;
		break;
	case SAVED_AT_SLOT:
		rbp_rule = UNWIND_RBP_OFFSET;
		row->rbp_offset = rbp_slot;
		break;
	case SAVED_UNDEFINED:
		rbp_rule = UNWIND_RBP_UNDEFINED;
		break;
	default:
		rbp_rule = UNWIND_RBP_UNSUPPORTED;
		builder->stats.rows_rbp_unsupported++;
	}
	/*
	 * libdw's x86-64 initial rules call rbx undefined where the CFI does
	 * not mention it (rax same, a slip): the ABI has it callee-saved.
	 */
	if (rbx == SAVED_SAME || rbx == SAVED_UNDEFINED) {
		rbx_rule = UNWIND_RBX_SAME;
	} else if (rbx == SAVED_AT_SLOT && rbp_rule == UNWIND_RBP_OFFSET &&
		   rbx_slot == row->rbp_offset - 1) {
		rbx_rule = UNWIND_RBX_BELOW_RBP;
	} else if (rbx == SAVED_AT_SLOT && rbp_rule != UNWIND_RBP_OFFSET) {
		row->rbp_offset = rbx_slot;
		rbx_rule = UNWIND_RBX_OFFSET;
	} else {
		builder->stats.rows_rbx_unknown++;
		rbx_rule = UNWIND_RBX_UNKNOWN;
	}
	row->rules = UNWIND_RULES(cfa_rule, rbp_rule, rbx_rule);
}

/* Turns libdw's view of one pc range into a row. */
static void describe_frame(struct table_builder *builder, Dwarf_Frame *frame, bool signal_frame,
			   struct unwind_row *row)
{
	Dwarf_Op ops_mem[3], *ops;
	size_t nops;
	int64_t offset;
	uint8_t cfa_rule = UNWIND_CFA_UNSUPPORTED;
	enum saved_register rbp, rbx;
	int8_t rbp_slot = 0, rbx_slot = 0;

	row->cfa_offset = 0;
	row->rbp_offset = 0;
	if (signal_frame) {
		row->rules = UNWIND_CFA_SIGNAL;
		return;
	}
	/* An undefined return address marks the outermost frame (_start, thread start). */
	if (dwarf_frame_register(frame, DWARF_REG_RA, ops_mem, &ops, &nops) == 0 && nops == 0 &&
	    ops == ops_mem) {
		row->rules = UNWIND_CFA_END;
		return;
	}
	/* Everything else must keep the return address at CFA - 8, as x86-64 calls do. */
	if (dwarf_frame_register(frame, DWARF_REG_RA, ops_mem, &ops, &nops) != 0 ||
	    !is_op_cfa_plus(ops, nops, &offset) || offset != -8)
		goto unsupported;

	if (dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops == 0)
		goto unsupported;
	if (nops == 1 && (ops[0].atom == DW_OP_bregx || ops[0].atom == DW_OP_breg3 ||
			  ops[0].atom == DW_OP_breg6 || ops[0].atom == DW_OP_breg7)) {
		uint64_t reg = ops[0].atom == DW_OP_bregx ? ops[0].number
							  : (uint64_t)(ops[0].atom - DW_OP_breg0);
		int64_t cfa_offset =
			(int64_t)(ops[0].atom == DW_OP_bregx ? ops[0].number2 : ops[0].number);

		if (cfa_offset < 0 || cfa_offset > UINT16_MAX ||
		    (reg != DWARF_REG_RSP && reg != DWARF_REG_RBP && reg != DWARF_REG_RBX))
			goto unsupported;
		cfa_rule = reg == DWARF_REG_RSP	  ? UNWIND_CFA_RSP
			   : reg == DWARF_REG_RBP ? UNWIND_CFA_RBP
						  : UNWIND_CFA_RBX;
		row->cfa_offset = (uint16_t)cfa_offset;
	} else if (is_plt_expression(ops, nops, &row->cfa_offset)) {
		cfa_rule = UNWIND_CFA_PLT;
	} else {
		goto unsupported;
	}

	rbp = saved_register(frame, DWARF_REG_RBP, &rbp_slot);
	rbx = saved_register(frame, DWARF_REG_RBX, &rbx_slot);
	describe_saved(builder, cfa_rule, rbp, rbp_slot, rbx, rbx_slot, row);
	return;
unsupported:
	builder->stats.rows_unsupported++;
	row->rules = UNWIND_CFA_UNSUPPORTED;
}

/* Where no CFI covers a pc. */
static const struct unwind_row gap = { .rules = UNWIND_CFA_NONE };

/* The full chunk, to the sink (or, counting, only its first pc). */
static int flush_chunk(struct table_builder *builder)
{
	int err;

	if (!builder->chunk_rows)
		return 0;
	if (builder->chunk_count >= UNWIND_MAX_CHUNKS)
		return -EFBIG;
	if (builder->first_pc)
		builder->first_pc[builder->chunk_count] = builder->chunk[0].pc;
	else if ((err = builder->sink->write(builder->sink, builder->chunk, builder->chunk_rows)))
		return err;
	builder->chunk_count++;
	builder->chunk_rows = 0;
	return 0;
}

static int add_row(struct table_builder *builder, uint64_t pc, const struct unwind_row *row)
{
	struct unwind_row *last =
		builder->chunk_rows ? &builder->chunk[builder->chunk_rows - 1] : NULL;
	int err;

	if (pc >= UNWIND_PC_PAD)
		return -ERANGE;
	/* Consecutive rows with the same rules are one. */
	if (last && last->rules == row->rules && last->cfa_offset == row->cfa_offset &&
	    last->rbp_offset == row->rbp_offset)
		return 0;
	if (last && last->pc == pc) {
		*last = *row;
		last->pc = (uint32_t)pc;
		return 0;
	}
	if (builder->row_count >= MAX_ROWS)
		return -EFBIG;
	/* A new row: the chunk's last is final now. */
	if (builder->chunk_rows == UNWIND_CHUNK_ROWS && (err = flush_chunk(builder)))
		return err;
	builder->chunk[builder->chunk_rows] = *row;
	builder->chunk[builder->chunk_rows].pc = (uint32_t)pc;
	builder->chunk_rows++;
	builder->row_count++;
	return 0;
}

static int add_fde_rows(struct table_builder *builder, const struct fde_range *fde)
{
	uint64_t pc = fde->start;
	int err;

	while (pc < fde->end) {
		struct unwind_row row;
		Dwarf_Frame *frame;
		Dwarf_Addr start, end;
		bool signal_frame;

		if (dwarf_cfi_addrframe(builder->cfi[fde->source], pc, &frame) != 0)
			break;
		if (dwarf_frame_info(frame, &start, &end, &signal_frame) < 0 || end <= pc) {
			free(frame);
			break;
		}
		describe_frame(builder, frame, signal_frame, &row);
		free(frame);
		err = add_row(builder, pc, &row);
		if (err)
			return err;
		pc = end < fde->end ? end : fde->end;
	}
	return 0;
}

/*
 * kiln's own CFI interpreter: each FDE's instructions run once, a row
 * emitted at each advance, where libdw's dwarf_cfi_addrframe runs them
 * again from the start for every row (node's 410k rows: 0.6 s). The rules
 * the rows need are read as describe_frame reads libdw's; the libdw build
 * (unwind_table__build_reference) stays as the tests' reference.
 */
#define CFI_REGS 17 /* rax..r15 and the return address column */
#define CFI_STATE_DEPTH 16 /* DW_CFA_remember_state nesting */

enum cfi_rule_kind {
	CFI_RULE_UNDEFINED,
	CFI_RULE_SAME,
	CFI_RULE_OFFSET, /* saved at CFA + value */
	CFI_RULE_OTHER, /* val_offset, register, expression: no row can say */
};

struct cfi_rule {
	uint8_t kind;
	int64_t value;
};

struct cfi_state {
	bool cfa_expression; /* else register + offset */
	uint64_t cfa_register;
	int64_t cfa_offset;
	const uint8_t *cfa_expr;
	size_t cfa_expr_length;
	struct cfi_rule regs[CFI_REGS];
};

/* Before a CIE's instructions: libdw's x86-64 ABI rules (the CFA at rsp + 8 by the CIEs). */
static void cfi_state_init(struct cfi_state *state)
{
	memset(state, 0, sizeof(*state));
	state->cfa_register = DWARF_REG_RSP;
	for (int reg = 0; reg < CFI_REGS; reg++)
		state->regs[reg].kind = CFI_RULE_UNDEFINED;
	/* Call-saved, as libdw's x86-64 backend has them (rax where rbx belongs). */
	state->regs[0].kind = CFI_RULE_SAME;
	state->regs[DWARF_REG_RBP].kind = CFI_RULE_SAME;
	for (int reg = 12; reg <= 15; reg++)
		state->regs[reg].kind = CFI_RULE_SAME;
}

/* The PLT's CFA expression from its bytes: rsp + 8 + ((rip & 15) >= N) << 3. */
static bool is_plt_bytes(const uint8_t *expr, size_t length, uint16_t *ret_threshold)
{
	static const uint8_t before[] = { DW_OP_breg7, 8, DW_OP_breg16, 0, DW_OP_lit15, DW_OP_and };
	static const uint8_t after[] = { DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus };

	if (length != sizeof(before) + 1 + sizeof(after) || memcmp(expr, before, sizeof(before)) ||
	    memcmp(expr + sizeof(before) + 1, after, sizeof(after)))
		return false;
	if (expr[sizeof(before)] < DW_OP_lit0 || expr[sizeof(before)] > DW_OP_lit31)
		return false;
	*ret_threshold = expr[sizeof(before)] - DW_OP_lit0;
	return true;
}

static enum saved_register state_saved_register(const struct cfi_state *state, int reg,
						int8_t *ret_slot)
{
	const struct cfi_rule *rule = &state->regs[reg];

	switch (rule->kind) {
	case CFI_RULE_SAME:
		return SAVED_SAME;
	case CFI_RULE_UNDEFINED:
		return SAVED_UNDEFINED;
	case CFI_RULE_OFFSET:
		if (rule->value % 8 == 0 && rule->value / 8 >= INT8_MIN &&
		    rule->value / 8 <= INT8_MAX) {
			*ret_slot = (int8_t)(rule->value / 8);
			return SAVED_AT_SLOT;
		}
		return SAVED_OTHER;
	default:
		return SAVED_OTHER;
	}
}

/* describe_frame's reading, of the interpreter's state. */
static void describe_state(struct table_builder *builder, const struct cfi_state *state,
			   bool signal_frame, struct unwind_row *row)
{
	const struct cfi_rule *ra = &state->regs[DWARF_REG_RA];
	enum saved_register rbp, rbx;
	int8_t rbp_slot = 0, rbx_slot = 0;
	uint8_t cfa_rule;

	row->cfa_offset = 0;
	row->rbp_offset = 0;
	if (signal_frame) {
		row->rules = UNWIND_CFA_SIGNAL;
		return;
	}
	if (ra->kind == CFI_RULE_UNDEFINED) {
		row->rules = UNWIND_CFA_END;
		return;
	}
	if (ra->kind != CFI_RULE_OFFSET || ra->value != -8)
		goto unsupported;
	if (!state->cfa_expression) {
		if (state->cfa_offset < 0 || state->cfa_offset > UINT16_MAX ||
		    (state->cfa_register != DWARF_REG_RSP && state->cfa_register != DWARF_REG_RBP &&
		     state->cfa_register != DWARF_REG_RBX))
			goto unsupported;
		cfa_rule = state->cfa_register == DWARF_REG_RSP	  ? UNWIND_CFA_RSP
			   : state->cfa_register == DWARF_REG_RBP ? UNWIND_CFA_RBP
								  : UNWIND_CFA_RBX;
		row->cfa_offset = (uint16_t)state->cfa_offset;
	} else if (is_plt_bytes(state->cfa_expr, state->cfa_expr_length, &row->cfa_offset)) {
		cfa_rule = UNWIND_CFA_PLT;
	} else {
		goto unsupported;
	}
	rbp = state_saved_register(state, DWARF_REG_RBP, &rbp_slot);
	rbx = state_saved_register(state, DWARF_REG_RBX, &rbx_slot);
	describe_saved(builder, cfa_rule, rbp, rbp_slot, rbx, rbx_slot, row);
	return;
unsupported:
	builder->stats.rows_unsupported++;
	row->rules = UNWIND_CFA_UNSUPPORTED;
}

struct cfi_program {
	const uint8_t *p, *end;
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_encoding;
	uint64_t section_address; /* of the section's first byte, for DW_CFA_set_loc */
	const uint8_t *section_start;
};

static struct cfi_rule *rule_of(struct cfi_state *state, uint64_t reg)
{
	return reg < CFI_REGS ? &state->regs[reg] : NULL;
}

static void set_rule(struct cfi_state *state, uint64_t reg, uint8_t kind, int64_t value)
{
	struct cfi_rule *rule = rule_of(state, reg);

	if (rule)
		*rule = (struct cfi_rule){ kind, value };
}

/*
 * Runs instructions until the location advances (returns 1 with *ret_advance,
 * the new location), they end (0), or one cannot be read (-EINVAL).
 * initial is the state after the CIE's instructions (for DW_CFA_restore);
 * NULL while running those.
 */
static int cfi_step(struct cfi_program *program, struct cfi_state *state,
		    const struct cfi_state *initial, struct cfi_state *stack, size_t *depth,
		    uint64_t location, uint64_t *ret_location)
{
	while (program->p < program->end) {
		uint8_t op = *program->p++, low = op & 0x3f;
		const uint8_t **p = &program->p, *end = program->end;
		uint64_t reg, delta, value;
		int64_t offset;

		switch (op & 0xc0) {
		case DW_CFA_advance_loc:
			*ret_location = location + low * program->code_align;
			return 1;
		case DW_CFA_offset:
			offset = (int64_t)read_uleb128(p, end) * program->data_align;
			set_rule(state, low, CFI_RULE_OFFSET, offset);
			continue;
		case DW_CFA_restore:
			if (!initial)
				return -EINVAL;
			if (rule_of(state, low))
				state->regs[low] = initial->regs[low];
			continue;
		}
		switch (op) {
		case DW_CFA_nop:
			break;
		case DW_CFA_set_loc:
			if (read_encoded(p, end, program->fde_encoding,
					 program->section_address +
						 (uint64_t)(*p - program->section_start),
					 &value))
				return -EINVAL;
			*ret_location = value;
			return 1;
		case DW_CFA_advance_loc1:
		case DW_CFA_advance_loc2:
		case DW_CFA_advance_loc4: {
			size_t size = op == DW_CFA_advance_loc1	  ? 1
				      : op == DW_CFA_advance_loc2 ? 2
								  : 4;
			uint32_t bytes = 0;

			if ((size_t)(end - *p) < size)
				return -EINVAL;
			memcpy(&bytes, *p, size); /* little-endian x86-64 */
			*p += size;
			delta = bytes;
			*ret_location = location + delta * program->code_align;
			return 1;
		}
		case DW_CFA_offset_extended:
			reg = read_uleb128(p, end);
			offset = (int64_t)read_uleb128(p, end) * program->data_align;
			set_rule(state, reg, CFI_RULE_OFFSET, offset);
			break;
		case DW_CFA_offset_extended_sf:
			reg = read_uleb128(p, end);
			offset = read_sleb128(p, end) * program->data_align;
			set_rule(state, reg, CFI_RULE_OFFSET, offset);
			break;
		case DW_CFA_GNU_negative_offset_extended:
			reg = read_uleb128(p, end);
			offset = -(int64_t)read_uleb128(p, end) * program->data_align;
			set_rule(state, reg, CFI_RULE_OFFSET, offset);
			break;
		case DW_CFA_restore_extended:
			reg = read_uleb128(p, end);
			if (!initial)
				return -EINVAL;
			if (rule_of(state, reg))
				state->regs[reg] = initial->regs[reg];
			break;
		case DW_CFA_undefined:
			set_rule(state, read_uleb128(p, end), CFI_RULE_UNDEFINED, 0);
			break;
		case DW_CFA_same_value:
			set_rule(state, read_uleb128(p, end), CFI_RULE_SAME, 0);
			break;
		case DW_CFA_register:
			reg = read_uleb128(p, end);
			read_uleb128(p, end);
			set_rule(state, reg, CFI_RULE_OTHER, 0);
			break;
		case DW_CFA_val_offset:
			reg = read_uleb128(p, end);
			read_uleb128(p, end);
			set_rule(state, reg, CFI_RULE_OTHER, 0);
			break;
		case DW_CFA_val_offset_sf:
			reg = read_uleb128(p, end);
			read_sleb128(p, end);
			set_rule(state, reg, CFI_RULE_OTHER, 0);
			break;
		case DW_CFA_expression:
		case DW_CFA_val_expression:
			reg = read_uleb128(p, end);
			value = read_uleb128(p, end);
			if (value > (uint64_t)(end - *p))
				return -EINVAL;
			*p += value;
			set_rule(state, reg, CFI_RULE_OTHER, 0);
			break;
		case DW_CFA_remember_state:
			if (*depth == CFI_STATE_DEPTH)
				return -EINVAL;
			stack[(*depth)++] = *state;
			break;
		case DW_CFA_restore_state:
			if (!*depth)
				return -EINVAL;
			/* Every rule, the CFA's too, as libdw and libgcc restore them. */
			*state = stack[--(*depth)];
			break;
		case DW_CFA_def_cfa:
			state->cfa_expression = false;
			state->cfa_register = read_uleb128(p, end);
			state->cfa_offset = (int64_t)read_uleb128(p, end);
			break;
		case DW_CFA_def_cfa_sf:
			state->cfa_expression = false;
			state->cfa_register = read_uleb128(p, end);
			state->cfa_offset = read_sleb128(p, end) * program->data_align;
			break;
		case DW_CFA_def_cfa_register:
			state->cfa_expression = false;
			state->cfa_register = read_uleb128(p, end);
			break;
		case DW_CFA_def_cfa_offset:
			state->cfa_offset = (int64_t)read_uleb128(p, end);
			break;
		case DW_CFA_def_cfa_offset_sf:
			state->cfa_offset = read_sleb128(p, end) * program->data_align;
			break;
		case DW_CFA_def_cfa_expression:
			value = read_uleb128(p, end);
			if (value > (uint64_t)(end - *p))
				return -EINVAL;
			state->cfa_expression = true;
			state->cfa_expr = *p;
			state->cfa_expr_length = value;
			*p += value;
			break;
		case DW_CFA_GNU_args_size:
			read_uleb128(p, end);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* One FDE's rows by the interpreter; as add_fde_rows, which asks libdw. */
static int interpret_fde_rows(struct table_builder *builder, const struct fde_range *fde)
{
	const struct cfi_section *section = &builder->sections[fde->source];
	struct cfi_state initial, state, stack[CFI_STATE_DEPTH];
	Dwarf_CFI_Entry entry, cie;
	Dwarf_Off next;
	struct cfi_program program;
	const uint8_t *p;
	uint64_t start, range, location, advanced;
	size_t depth = 0;
	bool signal_frame;
	int step, err;

	if (dwarf_next_cfi(section->ident, section->data, section->eh_frame, fde->offset, &next,
			   &entry) != 0 ||
	    dwarf_cfi_cie_p(&entry) ||
	    dwarf_next_cfi(section->ident, section->data, section->eh_frame, entry.fde.CIE_pointer,
			   &next, &cie) != 0 ||
	    !dwarf_cfi_cie_p(&cie))
		return 0;
	program = (struct cfi_program){
		.code_align = cie.cie.code_alignment_factor,
		.data_align = cie.cie.data_alignment_factor,
		.fde_encoding = section->eh_frame ? fde_encoding(&cie.cie) : 0x00,
		.section_address = section->address,
		.section_start = section->data->d_buf,
	};
	signal_frame = cie.cie.augmentation && strchr(cie.cie.augmentation, 'S');
	/* The CIE's instructions: the state every row starts from. */
	cfi_state_init(&initial);
	program.p = cie.cie.initial_instructions;
	program.end = cie.cie.initial_instructions_end;
	do {
		step = cfi_step(&program, &initial, NULL, stack, &depth, 0, &advanced);
	} while (step > 0);
	if (step < 0)
		return 0;
	/* The FDE's: past its addresses and augmentation data. */
	p = entry.fde.start;
	if (read_encoded(&p, entry.fde.end, program.fde_encoding,
			 section->address + (uint64_t)(p - (const uint8_t *)section->data->d_buf),
			 &start) ||
	    read_encoded(&p, entry.fde.end, program.fde_encoding & EH_PE_FORMAT_MASK, 0, &range))
		return 0;
	if (cie.cie.augmentation && cie.cie.augmentation[0] == 'z') {
		uint64_t length = read_uleb128(&p, entry.fde.end);

		if (length > (uint64_t)(entry.fde.end - p))
			return 0;
		p += length;
	}
	program.p = p;
	program.end = entry.fde.end;
	state = initial;
	depth = 0;
	location = fde->start;
	for (;;) {
		struct unwind_row row;

		step = cfi_step(&program, &state, &initial, stack, &depth, location, &advanced);
		if (step < 0)
			break;
		describe_state(builder, &state, signal_frame, &row);
		if (step == 0 || advanced >= fde->end) {
			err = add_row(builder, location, &row);
			if (err)
				return err;
			break;
		}
		if (advanced > location) {
			err = add_row(builder, location, &row);
			if (err)
				return err;
			location = advanced;
		}
	}
	return 0;
}

/* Every DWARF section but the call frame information. */
static bool is_other_debug_section(const char *name)
{
	return (strncmp(name, ".debug_", 7) == 0 || strncmp(name, ".zdebug_", 8) == 0) &&
	       strcmp(name, ".debug_frame") != 0 && strcmp(name, ".zdebug_frame") != 0;
}

/*
 * The ELF entry point when no FDE covers it (ld.so's _start, hand-written
 * without CFI), else 0. The code there is the outermost frame: the kernel
 * jumps to it with rbp 0 and nothing to return to, so a return address into
 * it (ld.so's call to _dl_start) ends the stack as complete.
 */
static uint64_t uncovered_entry(Elf *elf, const struct table_builder *builder)
{
	GElf_Ehdr ehdr;
	struct fde_cursor cursor = {};
	struct fde_range fde;

	if (!gelf_getehdr(elf, &ehdr) || !ehdr.e_entry ||
	    (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN))
		return 0;
	while (next_fde(builder, &cursor, &fde) && fde.start <= ehdr.e_entry)
		if (ehdr.e_entry < fde.end)
			return 0;
	return ehdr.e_entry;
}

/* An entry point past every FDE: marked the outermost for at most this many bytes. */
#define ENTRY_CODE_MAX_BYTES 256

/*
 * One pass over the FDEs in address order, every row to add_row: an FDE's
 * rows, then a gap row where no CFI covers the code up to the next (an
 * FDE that cannot be read is such a gap).
 */
static int make_rows(struct table_builder *builder, Elf *elf, bool reference, uint64_t entry)
{
	static const struct unwind_row outermost = { .rules = UNWIND_CFA_END };
	struct fde_cursor cursor = {};
	struct fde_range fde;
	uint64_t covered_end = 0;
	size_t eh_fdes_read = 0;
	bool any = false;
	int err;

	while (next_fde(builder, &cursor, &fde)) {
		if (fde.start < covered_end) {
			builder->stats.fdes_skipped++;
			continue;
		}
		if (any && fde.start > covered_end && (err = add_row(builder, covered_end, &gap)))
			return err;
		/* The entry point, in the gap before this FDE: outermost up to it. */
		if (entry && entry < fde.start) {
			err = add_row(builder, entry, &outermost);
			if (err)
				return err;
			entry = 0;
		}
		if (reference && fde.source == 0 && ++eh_fdes_read % FDES_PER_CFI == 0) {
			dwarf_cfi_end(builder->cfi[0]);
			builder->cfi[0] = dwarf_getcfi_elf(elf);
			if (!builder->cfi[0])
				return -ENOMEM;
		}
		err = reference ? add_fde_rows(builder, &fde) : interpret_fde_rows(builder, &fde);
		if (err)
			return err;
		covered_end = fde.end;
		any = true;
	}
	if (any && (err = add_row(builder, covered_end, &gap)))
		return err;
	if (entry) {
		err = add_row(builder, entry, &outermost);
		if (!err)
			err = add_row(builder, entry + ENTRY_CODE_MAX_BYTES, &gap);
		if (err)
			return err;
	}
	return flush_chunk(builder);
}

static int build(Elf *elf, Elf *debug_elf, bool reference, struct unwind_row_sink *sink,
		 struct unwind_table_stats *ret_stats)
{
	struct table_builder *builder = calloc(1, sizeof(*builder));
	struct unwind_table_stats collected;
	size_t counted;
	Dwarf *dwarf = NULL;
	Elf *own = NULL;
	uint64_t entry;
	int err;

	if (!builder)
		return -ENOMEM;
	builder->sink = sink;
	/* libdw's CFI readers serve the reference build only: the interpreter reads the sections. */
	if (reference)
		builder->cfi[0] = dwarf_getcfi_elf(elf);
	/* .eh_frame's FDEs from .eh_frame_hdr where it has them all, else listed. */
	if ((!reference || builder->cfi[0]) && !open_cfi_section(builder, elf, ".eh_frame", true) &&
	    !index_eh_frame(builder, elf)) {
		err = walk_fdes(builder, 0, true, NULL);
		if (err)
			goto cleanup;
	}
	/*
	 * .debug_frame, from the file or its debug file, fills what .eh_frame
	 * leaves (Go binaries have no .eh_frame at all). It is read through a
	 * private handle showing only .debug_frame: what is decompressed (by
	 * libdw, or for the interpreter by collect_fdes) goes with the handle,
	 * not staying with the cached file.
	 */
	for (Elf *source = elf; source; source = source == elf ? debug_elf : NULL) {
		if (!elf_find_section(source, ".debug_frame"))
			continue;
		own = elf_reopen_private(source);
		if (own)
			elf_hide_sections(own, is_other_debug_section);
		if (reference) {
			dwarf = dwarf_begin_elf(own ?: source, DWARF_C_READ, NULL);
			builder->cfi[1] = dwarf ? dwarf_getcfi(dwarf) : NULL;
		}
		if ((!reference || builder->cfi[1]) &&
		    !open_cfi_section(builder, own ?: source, ".debug_frame", false)) {
			err = walk_fdes(builder, 1, true, NULL);
			if (err)
				goto cleanup;
			break;
		}
		dwarf_end(dwarf);
		dwarf = NULL;
		elf_end(own);
		own = NULL;
	}
	if (!builder->fde_count && !builder->eh_index.count) {
		err = -ENOENT;
		goto cleanup;
	}
	if (builder->fde_count)
		qsort(builder->fdes, builder->fde_count, sizeof(*builder->fdes), compare_fdes);
	entry = uncovered_entry(elf, builder);
	collected = builder->stats;
	/*
	 * A sink that must know the table's size first gets the rows twice:
	 * counted (with each chunk's first pc), then written. Running the CFI
	 * again costs less than holding node's 410k rows.
	 */
	if (sink->prepare) {
		builder->first_pc = calloc(UNWIND_MAX_CHUNKS, sizeof(*builder->first_pc));
		if (!builder->first_pc) {
			err = -ENOMEM;
			goto cleanup;
		}
		err = make_rows(builder, elf, reference, entry);
		if (err)
			goto cleanup;
		err = sink->prepare(sink, builder->row_count, builder->first_pc,
				    builder->chunk_count);
		if (err)
			goto cleanup;
		free(builder->first_pc);
		builder->first_pc = NULL;
		counted = builder->row_count;
		builder->row_count = builder->chunk_count = 0;
		builder->stats = collected;
		err = make_rows(builder, elf, reference, entry);
		if (!err && builder->row_count != counted)
			err = -EIO;
	} else {
		err = make_rows(builder, elf, reference, entry);
	}
	if (err)
		goto cleanup;
	if (ret_stats)
		*ret_stats = builder->stats;
	err = 0;
cleanup:
	free(builder->first_pc);
	free(builder->fdes);
	if (builder->cfi[0])
		dwarf_cfi_end(builder->cfi[0]);
	free(builder);
	dwarf_end(dwarf);
	elf_end(own);
	/* .eh_frame was read through once: its pages go back to the page cache. */
	elf_drop_pages(elf);
	elf_drop_pages(debug_elf);
	return err;
}

/* The array unwind_table__build fills. */
struct array_sink {
	struct unwind_row_sink sink;
	struct unwind_table table;
	size_t capacity;
};

static int array_write(struct unwind_row_sink *sink, const struct unwind_row *rows, size_t count)
{
	struct array_sink *array = (struct array_sink *)sink;

	if (array->table.row_count + count > array->capacity) {
		size_t capacity = array->capacity ? 2 * array->capacity : 4 * UNWIND_CHUNK_ROWS;
		struct unwind_row *grown;

		while (capacity < array->table.row_count + count)
			capacity *= 2;
		grown = reallocarray(array->table.rows, capacity, sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		array->table.rows = grown;
		array->capacity = capacity;
	}
	memcpy(array->table.rows + array->table.row_count, rows, count * sizeof(*rows));
	array->table.row_count += count;
	return 0;
}

static int build_array(Elf *elf, Elf *debug_elf, bool reference, struct unwind_table *ret_table,
		       struct unwind_table_stats *ret_stats)
{
	struct array_sink array = { .sink = { .write = array_write } };
	struct unwind_row *shrunk;
	int err = build(elf, debug_elf, reference, &array.sink, ret_stats);

	if (err) {
		free(array.table.rows);
		return err;
	}
	shrunk = reallocarray(array.table.rows, array.table.row_count ?: 1, sizeof(*shrunk));
	if (shrunk)
		array.table.rows = shrunk;
	*ret_table = array.table;
	return 0;
}

int unwind_table__build(Elf *elf, Elf *debug_elf, struct unwind_table *ret_table,
			struct unwind_table_stats *ret_stats)
{
	return build_array(elf, debug_elf, false, ret_table, ret_stats);
}

int unwind_table__build_reference(Elf *elf, Elf *debug_elf, struct unwind_table *ret_table,
				  struct unwind_table_stats *ret_stats)
{
	return build_array(elf, debug_elf, true, ret_table, ret_stats);
}

int unwind_table__stream(Elf *elf, Elf *debug_elf, struct unwind_row_sink *sink,
			 struct unwind_table_stats *ret_stats)
{
	return build(elf, debug_elf, false, sink, ret_stats);
}

int unwind_table__replay(const struct unwind_table *table, struct unwind_row_sink *sink)
{
	size_t chunks = (table->row_count + UNWIND_CHUNK_ROWS - 1) / UNWIND_CHUNK_ROWS;
	uint32_t first_pc[UNWIND_MAX_CHUNKS] = {};
	int err;

	if (chunks > UNWIND_MAX_CHUNKS)
		return -EFBIG;
	for (size_t i = 0; i < chunks; i++)
		first_pc[i] = table->rows[i * UNWIND_CHUNK_ROWS].pc;
	if (sink->prepare && (err = sink->prepare(sink, table->row_count, first_pc, chunks)))
		return err;
	for (size_t i = 0; i < chunks; i++) {
		size_t first = i * UNWIND_CHUNK_ROWS;
		size_t count = table->row_count - first < UNWIND_CHUNK_ROWS
				       ? table->row_count - first
				       : UNWIND_CHUNK_ROWS;

		if ((err = sink->write(sink, table->rows + first, count)))
			return err;
	}
	return 0;
}

void unwind_table__free(struct unwind_table *table)
{
	if (!table)
		return;
	free(table->rows);
	*table = (struct unwind_table){};
}

const struct unwind_row *unwind_table__find(const struct unwind_table *table, uint32_t pc)
{
	size_t lo = 0, hi = table->row_count;

	/* The last row whose pc <= pc. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (table->rows[mid].pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &table->rows[lo - 1] : NULL;
}
