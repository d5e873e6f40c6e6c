// SPDX-License-Identifier: Apache-2.0
/* One ELF file through libelf: segments, build id, and sorted function symbols. */
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/array.h"
#include "lib/sorted.h"
#include "symbolizer/elf_file.h"

/* GNU build ids are 20 bytes (sha1) in practice; allow up to 64. */
#define BUILD_ID_MAX_BYTES 64
/*
 * MiniDebugInfo is a symbol table only, a few MiB for the largest libraries;
 * past these the section is refused rather than decompressed.
 */
#define MINIDEBUGINFO_MAX_BYTES (64ULL << 20)
#define MINIDEBUGINFO_DECODER_MEMORY (128ULL << 20)

struct elf_segment {
	uint64_t offset;
	uint64_t filesz;
	uint64_t vaddr;
};

/*
 * One function symbol in 16 bytes: an index over the mapped file rather
 * than a copy of it. node's 100k symbols take 1.6 MiB, their names stay in
 * the file's string table (read from the mapping, paged in when named).
 */
struct elf_symbol {
	uint64_t addr;
	uint32_t size; /* bytes covered; larger symbols are cut at 4 GiB */
	uint32_t name; /* SYMBOL_NAME_OFFSET into string table SYMBOL_NAME_TABLE, and flags */
};

/* The bits of elf_symbol.name: an offset into one of two string tables (MiniDebugInfo's merge). */
#define SYMBOL_EXPORTED (1U << 31) /* global or weak binding */
#define SYMBOL_SECOND_TABLE (1U << 30)
#define SYMBOL_SIZELESS (1U << 29) /* while loading: size is the room to its section's end */
#define SYMBOL_NAME_OFFSET(name) ((name) & (SYMBOL_SIZELESS - 1))
#define SYMBOL_NAME_TABLE(name) (((name)&SYMBOL_SECOND_TABLE) ? 1 : 0)
/* Symbol tables whose names lie past 512 MiB of strings serve the symbols before. */
#define SYMBOL_NAME_MAX_OFFSET (SYMBOL_SIZELESS - 1)

struct elf_file {
	Elf *elf;
	uint64_t file_size;
	Elf *debug_elf; /* separate debug file the symbols come from, or NULL */
	void *debug_image; /* decompressed MiniDebugInfo behind debug_elf, or NULL */
	struct elf_segment *segments; /* executable PT_LOAD segments */
	size_t segment_count;
	struct elf_symbol *symbols; /* sorted by addr, one per address */
	size_t symbol_count;
	const char *symbol_names[2]; /* the string tables elf_symbol.name indexes */
	size_t debug_image_size;
	bool has_symtab;
	bool snapshot; /* read from a sealed copy (others_may_truncate) */
	unsigned int losses; /* elf_file_loss bits */
	bool has_debug_info; /* the file's own .debug_info */
	bool debug_has_debug_info; /* debug_elf's .debug_info */
	const char *debuglink; /* .gnu_debuglink file name, or NULL */
	uint32_t debuglink_crc;
	char build_id[2 * BUILD_ID_MAX_BYTES + 1];
};

static bool within_file(uint64_t offset, uint64_t size, uint64_t file_size)
{
	return offset <= file_size && size <= file_size - offset;
}

/* Every loadable segment lies inside the file's size (files that are executed). */
static int check_loadable_segments(Elf *elf, uint64_t size)
{
	size_t segment_count;

	if (elf_getphdrnum(elf, &segment_count) < 0)
		return -EINVAL;
	for (size_t i = 0; i < segment_count; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, i, &phdr))
			return -EINVAL;
		if (phdr.p_type == PT_LOAD && !within_file(phdr.p_offset, phdr.p_filesz, size))
			return -EINVAL;
	}
	return 0;
}

/* What losing the section called name (of type type) costs. */
static enum elf_file_loss section_loss(const char *name, Elf64_Word type)
{
	static const struct {
		const char *name;
		enum elf_file_loss loss;
	} known[] = {
		{ ".symtab", ELF_LOSS_SYMTAB },
		{ ".strtab", ELF_LOSS_STRTAB },
		{ ".dynsym", ELF_LOSS_DYNSYM },
		{ ".dynstr", ELF_LOSS_DYNSYM },
		{ ".eh_frame", ELF_LOSS_EH_FRAME },
		{ ".eh_frame_hdr", ELF_LOSS_EH_FRAME_HDR },
		{ ".debug_frame", ELF_LOSS_DEBUG_FRAME },
		{ ".zdebug_frame", ELF_LOSS_DEBUG_FRAME },
		{ ".debug_info", ELF_LOSS_DEBUG_INFO },
		{ ".zdebug_info", ELF_LOSS_DEBUG_INFO },
		{ ".debug_abbrev", ELF_LOSS_DEBUG_INFO },
		{ ".debug_line", ELF_LOSS_DEBUG_LINE },
		{ ".zdebug_line", ELF_LOSS_DEBUG_LINE },
		{ ".debug_line_str", ELF_LOSS_DEBUG_LINE },
	};

	if (type == SHT_SYMTAB)
		return ELF_LOSS_SYMTAB;
	if (type == SHT_DYNSYM)
		return ELF_LOSS_DYNSYM;
	for (size_t i = 0; name && i < ARRAY_SIZE(known); i++)
		if (strcmp(name, known[i].name) == 0)
			return known[i].loss;
	return ELF_LOSS_OTHER_SECTION;
}

/*
 * Hides a section in elf's copy of the section headers (nothing is written
 * back): elf_find_section, libdw and every other reader of elf then pass it
 * over, so a damaged section costs only itself.
 */
static void hide_section(Elf_Scn *scn, GElf_Shdr *shdr)
{
	shdr->sh_type = SHT_NOBITS;
	gelf_update_shdr(scn, shdr);
}

/* Hides a damaged section and records what it costs. */
static void lose_section(Elf *elf, Elf_Scn *scn, unsigned int *losses)
{
	const char *name = NULL;
	size_t names_index;
	GElf_Shdr shdr;

	if (!gelf_getshdr(scn, &shdr))
		return;
	if (elf_getshdrstrndx(elf, &names_index) == 0)
		name = elf_strptr(elf, names_index, shdr.sh_name);
	*losses |= 1U << section_loss(name, shdr.sh_type);
	hide_section(scn, &shdr);
}

/*
 * Reads the ELF header and section headers and hides every section that
 * does not lie inside the file's size, so a truncated or damaged section
 * costs only itself instead of faulting later or failing the whole file
 * (check_loadable_segments does the segments of files that are executed).
 * -EINVAL only when the headers themselves are unreadable.
 */
static int check_elf(Elf *elf, uint64_t size, unsigned int *losses)
{
	size_t section_count, segment_count;
	Elf_Scn *scn = NULL;
	GElf_Ehdr ehdr;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr) ||
	    elf_getshdrnum(elf, &section_count) < 0 || elf_getphdrnum(elf, &segment_count) < 0)
		return -EINVAL;
	/* libelf read the headers from the file: there cannot be more than fit in it. */
	if (section_count > size / sizeof(Elf32_Shdr) || segment_count > size / sizeof(Elf32_Phdr))
		return -EINVAL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr))
			return -EINVAL;
		if (shdr.sh_type != SHT_NOBITS && !within_file(shdr.sh_offset, shdr.sh_size, size))
			lose_section(elf, scn, losses);
	}
	return 0;
}

/* The size of the regular file behind fd: -EINVAL for any other, -EFBIG over max_size. */
static int regular_file_size(int fd, uint64_t max_size, uint64_t *ret_size, struct stat *ret_st)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max_size)
		return -EFBIG;
	*ret_size = (uint64_t)st.st_size;
	if (ret_st)
		*ret_st = st;
	return 0;
}

/*
 * A file that a user other than root may write can be truncated under
 * kiln's mapping of it, and kiln's next read of a page past the new end
 * dies of SIGBUS. Only root-owned files no group or other may write are
 * mapped as they are.
 */
static bool others_may_truncate(const struct stat *st)
{
	return st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * Copies fd into a memfd sealed against every change: a snapshot no process
 * can shrink. A file that shrinks while it is copied leaves a shorter copy,
 * which check_elf then judges. The new fd, or a negative errno.
 */
static int snapshot_file(int fd, uint64_t *size)
{
	const unsigned int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	int copy = memfd_create("kiln-elf-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	off_t offset = 0;
	int err = 0;

	if (copy < 0)
		return -errno;
	while ((uint64_t)offset < *size) {
		ssize_t sent = sendfile(copy, fd, &offset, *size - (uint64_t)offset);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0) {
			err = -errno;
			goto cleanup;
		}
		if (sent == 0)
			break;
	}
	*size = (uint64_t)offset;
	if (fcntl(copy, F_ADD_SEALS, seals) < 0)
		err = -errno;
cleanup:
	if (err) {
		close(copy);
		return err;
	}
	return copy;
}

/*
 * Opens fd with mmap (a sealed snapshot of it when others_may_truncate) and
 * checks it (check_elf), refusing files over max_size before reading them;
 * fd is free again on return.
 */
static int open_elf(int fd, uint64_t max_size, Elf **ret_elf, uint64_t *ret_size,
		    unsigned int *losses, bool *ret_snapshot)
{
	uint64_t size = 0;
	int err, copy = -1;
	struct stat st;
	Elf *elf;

	err = regular_file_size(fd, max_size, &size, &st);
	if (err)
		return err;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	if (others_may_truncate(&st)) {
		if (size > ELF_FILE_SNAPSHOT_MAX_BYTES)
			return -EFBIG;
		copy = snapshot_file(fd, &size);
		if (copy < 0)
			return copy;
		fd = copy;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		err = -EINVAL;
		goto cleanup;
	}
	err = check_elf(elf, size, losses);
	if (err)
		goto cleanup;
	/* Mapped: nothing more to read. Not mapped: read it all now. Either way fd is free. */
	if (elf_cntl(elf, ELF_C_FDREAD) < 0) {
		err = -EIO;
		goto cleanup;
	}
	*ret_elf = elf;
	if (ret_size)
		*ret_size = size;
	if (ret_snapshot)
		*ret_snapshot = copy >= 0;
	elf = NULL;
cleanup:
	elf_end(elf);
	if (copy >= 0)
		close(copy);
	return err;
}

static Elf_Scn *find_section_by_type(Elf *elf, Elf64_Word type)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == type)
			return scn;
	return NULL;
}

/* Hides in own, a new handle on elf's file, what is hidden in elf: its damaged sections. */
static void hide_as_in(Elf *own, Elf *elf)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(own, scn))) {
		Elf_Scn *theirs = elf_getscn(elf, elf_ndxscn(scn));
		GElf_Shdr shdr, their_shdr;

		if (gelf_getshdr(scn, &shdr) && shdr.sh_type != SHT_NOBITS &&
		    (!theirs || !gelf_getshdr(theirs, &their_shdr) ||
		     their_shdr.sh_type == SHT_NOBITS))
			hide_section(scn, &shdr);
	}
}

Elf *elf_reopen_private(Elf *elf)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[64];
	size_t size;
	char *image = elf_rawfile(elf, &size);
	Elf *own;
	int fd;

	if (!image || !size || page <= 0)
		return NULL;
	/* libelf maps the whole file from offset 0: one mapping, image to the page after size. */
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)image,
		 ((unsigned long)image + size + page - 1) & ~((unsigned long)page - 1));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	own = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (own && (elf_kind(own) != ELF_K_ELF || elf_cntl(own, ELF_C_FDREAD) < 0)) {
		elf_end(own);
		own = NULL;
	}
	close(fd);
	if (own)
		hide_as_in(own, elf);
	return own;
}

void elf_hide_sections(Elf *own, bool (*hide)(const char *name))
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(own, &shstrndx) < 0)
		return;
	/* libelf copies the headers for ELF_C_READ_MMAP so that they can be changed. */
	while ((scn = elf_nextscn(own, scn))) {
		GElf_Shdr shdr;
		const char *name;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(own, shstrndx, shdr.sh_name);
		if (name && hide(name))
			hide_section(scn, &shdr);
	}
}

Elf_Scn *elf_find_section(Elf *elf, const char *name)
{
	Elf_Scn *scn = NULL;
	size_t names_index;
	GElf_Shdr shdr;

	if (elf_getshdrstrndx(elf, &names_index) < 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *scn_name;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
			continue;
		scn_name = elf_strptr(elf, names_index, shdr.sh_name);
		if (scn_name && strcmp(scn_name, name) == 0)
			return scn;
	}
	return NULL;
}

/* Scans one block of notes; true when it held the GNU build id. */
static bool read_build_id_note(Elf_Data *data, char *build_id)
{
	size_t offset = 0, next, name_offset, desc_offset;
	GElf_Nhdr nhdr;

	while ((next = gelf_getnote(data, offset, &nhdr, &name_offset, &desc_offset)) > 0) {
		const unsigned char *desc = (const unsigned char *)data->d_buf + desc_offset;

		offset = next;
		if (nhdr.n_type != NT_GNU_BUILD_ID || nhdr.n_namesz != 4 ||
		    memcmp((const char *)data->d_buf + name_offset, "GNU", 4) != 0 ||
		    nhdr.n_descsz == 0 || nhdr.n_descsz > BUILD_ID_MAX_BYTES)
			continue;
		for (size_t i = 0; i < nhdr.n_descsz; i++) {
			build_id[2 * i] = "0123456789abcdef"[desc[i] >> 4];
			build_id[2 * i + 1] = "0123456789abcdef"[desc[i] & 0xf];
		}
		build_id[2 * nhdr.n_descsz] = '\0';
		return true;
	}
	return false;
}

/* Sections first: a debug-only file keeps its notes there but not its segments' contents. */
static void read_build_id(Elf *elf, char *build_id)
{
	size_t segment_count;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	build_id[0] = '\0';
	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		if (data && read_build_id_note(data, build_id))
			return;
	}
	if (elf_getphdrnum(elf, &segment_count) < 0)
		return;
	for (size_t i = 0; i < segment_count; i++) {
		GElf_Phdr phdr;
		Elf_Data *data;

		if (!gelf_getphdr(elf, i, &phdr) || phdr.p_type != PT_NOTE)
			continue;
		data = elf_getdata_rawchunk(elf, phdr.p_offset, phdr.p_filesz,
					    phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (data && read_build_id_note(data, build_id))
			return;
	}
}

static int read_segments(struct elf_file *file)
{
	size_t segment_count;

	if (elf_getphdrnum(file->elf, &segment_count) < 0)
		return -EINVAL;
	file->segments = calloc(segment_count ? segment_count : 1, sizeof(*file->segments));
	if (!file->segments)
		return -ENOMEM;
	for (size_t i = 0; i < segment_count; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(file->elf, i, &phdr))
			return -EINVAL;
		if (phdr.p_type != PT_LOAD || !(phdr.p_flags & PF_X))
			continue;
		file->segments[file->segment_count++] = (struct elf_segment){
			.offset = phdr.p_offset,
			.filesz = phdr.p_filesz,
			.vaddr = phdr.p_vaddr,
		};
	}
	return 0;
}

static void read_debuglink(struct elf_file *file)
{
	Elf_Scn *scn = elf_find_section(file->elf, ".gnu_debuglink");
	Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
	size_t name_len, crc_offset;
	uint32_t crc;

	if (!data || !data->d_buf)
		return;
	/* The name, NUL, padding to 4 bytes, then the CRC in the file's byte order. */
	name_len = strnlen(data->d_buf, data->d_size);
	crc_offset = (name_len + 4) & ~(size_t)3;
	if (name_len == 0 || name_len == data->d_size || crc_offset + 4 > data->d_size)
		return;
	memcpy(&crc, (const char *)data->d_buf + crc_offset, sizeof(crc));
	if (elf_getident(file->elf, NULL)[EI_DATA] !=
	    (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB))
		crc = __builtin_bswap32(crc);
	file->debuglink = data->d_buf;
	file->debuglink_crc = crc;
}

/* Exported names first; weak ones count as exported (glibc's fflush is weak, _IO_fflush not). */
static int binding_rank(unsigned char binding)
{
	return binding == STB_GLOBAL || binding == STB_WEAK ? 0 : 1;
}

static const char *symbol_name(const char *const names[2], uint32_t name)
{
	return names[SYMBOL_NAME_TABLE(name)] + SYMBOL_NAME_OFFSET(name);
}

/* By address, then the name to keep among aliases first. */
static int compare_symbols(const void *a, const void *b, void *names)
{
	const struct elf_symbol *x = a, *y = b;
	const char *x_name, *y_name;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* Exported first, then those with a size. */
	if ((x->name & SYMBOL_EXPORTED) != (y->name & SYMBOL_EXPORTED))
		return x->name & SYMBOL_EXPORTED ? -1 : 1;
	if ((x->name & SYMBOL_SIZELESS) != (y->name & SYMBOL_SIZELESS))
		return x->name & SYMBOL_SIZELESS ? 1 : -1;
	x_name = symbol_name(names, x->name);
	y_name = symbol_name(names, y->name);
	/* printf over _IO_printf, malloc over __libc_malloc. */
	if (strspn(x_name, "_") != strspn(y_name, "_"))
		return strspn(x_name, "_") < strspn(y_name, "_") ? -1 : 1;
	return strcmp(x_name, y_name);
}

/*
 * The string table a symbol table names, when it can serve: a string table
 * inside the file (check_elf hid it otherwise) whose last byte ends a
 * string, so every name elf_strptr hands out ends inside it.
 */
static bool usable_string_table(Elf *elf, size_t index)
{
	Elf_Scn *scn = index ? elf_getscn(elf, index) : NULL;
	GElf_Shdr shdr;
	Elf_Data *data;

	if (!scn || !gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_STRTAB || !shdr.sh_size)
		return false;
	data = elf_getdata(scn, NULL);
	return data && data->d_buf && data->d_size == shdr.sh_size &&
	       ((const char *)data->d_buf)[data->d_size - 1] == '\0';
}

/*
 * elf's first section of type (SHT_SYMTAB or SHT_DYNSYM) when it can be
 * read: entries of the class's symbol size, a whole number of them, and a
 * usable string table. A table that fails is hidden and its loss recorded
 * (the string table's when only that failed), so the other table serves.
 */
static Elf_Scn *usable_symbol_table(Elf *elf, Elf64_Word type, unsigned int *losses)
{
	size_t sym_size = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	Elf_Scn *scn = find_section_by_type(elf, type);
	GElf_Shdr shdr;
	Elf_Data *data;

	if (!scn)
		return NULL;
	if (!gelf_getshdr(scn, &shdr) || !sym_size || shdr.sh_entsize != sym_size ||
	    shdr.sh_size % sym_size != 0 || !(data = elf_getdata(scn, NULL)) ||
	    data->d_size != shdr.sh_size) {
		lose_section(elf, scn, losses);
		return NULL;
	}
	if (!usable_string_table(elf, shdr.sh_link)) {
		*losses |= 1U << (type == SHT_SYMTAB ? ELF_LOSS_STRTAB : ELF_LOSS_DYNSYM);
		hide_section(scn, &shdr);
		return NULL;
	}
	return scn;
}

/* One symbol table to read; MiniDebugInfo pairs the file's .dynsym with its own .symtab. */
struct symbol_table {
	Elf *elf;
	Elf_Scn *scn;
};

static int symbol_table_data(const struct symbol_table *table, GElf_Shdr *ret_shdr,
			     Elf_Data **ret_data, size_t *ret_total)
{
	size_t sym_size = gelf_fsize(table->elf, ELF_T_SYM, 1, EV_CURRENT);
	Elf_Data *data;

	if (!gelf_getshdr(table->scn, ret_shdr) || !sym_size)
		return -EINVAL;
	data = elf_getdata(table->scn, NULL);
	if (!data)
		return -EINVAL;
	*ret_data = data;
	*ret_total = data->d_size / sym_size;
	return 0;
}

static uint32_t sym_name_bits(unsigned int table_index)
{
	return table_index ? SYMBOL_SECOND_TABLE : 0;
}

static uint32_t clamp_size(uint64_t size)
{
	return size < UINT32_MAX ? (uint32_t)size : UINT32_MAX;
}

/*
 * Appends the FUNC symbols of one table to symbols (NULL: only counts
 * them), their names as offsets into the table's strings, which become
 * names[table_index]. A symbol without a size gets the room to the end of
 * its section (SYMBOL_SIZELESS), cut to the next symbol once sorted.
 */
static int collect_symbols(const struct symbol_table *table, unsigned int table_index,
			   const char **names, struct elf_symbol *symbols, size_t *count)
{
	Elf *elf = table->elf;
	Elf_Data *data, *strings;
	GElf_Shdr shdr;
	size_t total;
	int err;

	err = symbol_table_data(table, &shdr, &data, &total);
	if (err)
		return err;
	/* usable_symbol_table checked it: one buffer of sh_size bytes ending in a NUL. */
	strings = elf_getdata(elf_getscn(elf, shdr.sh_link), NULL);
	if (!strings || !strings->d_buf)
		return -EINVAL;
	names[table_index] = strings->d_buf;
	/*
	 * The names are not read here: node's are 7 MiB of pages. A name
	 * found empty when looked up names nothing (elf_file__find_symbol).
	 */
	for (size_t i = 0; i < total; i++) {
		uint32_t name = sym_name_bits(table_index);
		unsigned char type;
		Elf_Scn *home;
		GElf_Shdr home_shdr;
		GElf_Sym sym;
		uint64_t room = UINT64_MAX;

		if (!gelf_getsym(data, i, &sym))
			return -EINVAL;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !sym.st_value ||
		    sym.st_shndx == SHN_UNDEF || !sym.st_name || sym.st_name >= strings->d_size ||
		    sym.st_name > SYMBOL_NAME_MAX_OFFSET)
			continue;
		if (!symbols) {
			(*count)++;
			continue;
		}
		if (binding_rank(GELF_ST_BIND(sym.st_info)) == 0)
			name |= SYMBOL_EXPORTED;
		if (!sym.st_size) {
			name |= SYMBOL_SIZELESS;
			home = sym.st_shndx < SHN_LORESERVE ? elf_getscn(elf, sym.st_shndx) : NULL;
			if (home && gelf_getshdr(home, &home_shdr) &&
			    home_shdr.sh_addr + home_shdr.sh_size > sym.st_value)
				room = home_shdr.sh_addr + home_shdr.sh_size - sym.st_value;
		}
		symbols[(*count)++] = (struct elf_symbol){
			.addr = sym.st_value,
			.size = clamp_size(sym.st_size ? sym.st_size : room),
			.name = name | (uint32_t)sym.st_name,
		};
	}
	return 0;
}

/*
 * Reads the FUNC symbols of the given tables (two at most), keeps one name
 * per address and gives symbols without a size the room up to the next
 * symbol. Counted first, so the array is built in place at its final size:
 * no larger copy of the table exists on the way.
 */
static int load_symbols(const struct symbol_table *tables, size_t table_count,
			struct elf_symbol **ret_symbols, size_t *ret_count, const char **ret_names)
{
	const char *names[2] = { "", "" };
	struct elf_symbol *symbols = NULL, *shrunk;
	size_t total = 0, count = 0, kept = 0;
	int err = 0;

	if (table_count > ARRAY_SIZE(names))
		return -EINVAL;
	for (size_t i = 0; i < table_count; i++) {
		err = collect_symbols(&tables[i], i, names, NULL, &total);
		if (err)
			return err;
	}
	symbols = calloc(total ? total : 1, sizeof(*symbols));
	if (!symbols)
		return -ENOMEM;
	for (size_t i = 0; i < table_count; i++) {
		err = collect_symbols(&tables[i], i, names, symbols, &count);
		if (err)
			goto cleanup;
	}
	qsort_r(symbols, count, sizeof(*symbols), compare_symbols, names);
	/* In place: kept <= i, and only entries past i are read ahead. */
	for (size_t i = 0; i < count; i++) {
		struct elf_symbol symbol = symbols[i];
		size_t next = i + 1;

		if (kept && symbols[kept - 1].addr == symbol.addr)
			continue;
		while (next < count && symbols[next].addr == symbol.addr)
			next++;
		if ((symbol.name & SYMBOL_SIZELESS) && next < count &&
		    symbols[next].addr - symbol.addr < symbol.size)
			symbol.size = clamp_size(symbols[next].addr - symbol.addr);
		symbol.name &= ~SYMBOL_SIZELESS;
		symbols[kept++] = symbol;
	}
	shrunk = reallocarray(symbols, kept ? kept : 1, sizeof(*symbols));
	if (shrunk)
		symbols = shrunk;
	*ret_symbols = symbols;
	*ret_count = kept;
	memcpy(ret_names, names, sizeof(names));
	symbols = NULL;
cleanup:
	free(symbols);
	return err;
}

/* A .debug_info with contents (compressed or not): the file carries DWARF. */
static bool has_debug_info(Elf *elf)
{
	static const char *const names[] = { ".debug_info", ".zdebug_info" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		Elf_Scn *scn = elf_find_section(elf, names[i]);
		GElf_Shdr shdr;

		/* elf_find_section passes over NOBITS sections already. */
		if (scn && gelf_getshdr(scn, &shdr) && shdr.sh_size)
			return true;
	}
	return false;
}

/*
 * A section's bytes straight from the file's image: libelf keeps the data
 * elf_getdata reads, and a section hidden afterwards would still hand it to
 * libdw (which takes .eh_frame_hdr's contents whatever its type says).
 */
static int raw_section(Elf *elf, Elf_Scn *scn, Elf_Data *ret_data)
{
	size_t image_size;
	char *image = elf_rawfile(elf, &image_size);
	GElf_Shdr shdr;

	/* check_elf hid every section outside the image already. */
	if (!image || !gelf_getshdr(scn, &shdr) ||
	    !within_file(shdr.sh_offset, shdr.sh_size, image_size))
		return -EINVAL;
	*ret_data = (Elf_Data){
		.d_buf = image + shdr.sh_offset,
		.d_type = ELF_T_BYTE,
		.d_size = shdr.sh_size,
		.d_version = EV_CURRENT,
	};
	return 0;
}

/*
 * Walks the entries of a CFI section (.eh_frame, .debug_frame) without
 * running their instructions: false when it stops on one that cannot be
 * parsed, so libdw is never handed it. An entry skipped with a way past it
 * (unknown augmentation) is the unwind table's to count.
 */
static bool cfi_section_parses(Elf *elf, Elf_Scn *scn, bool eh_frame)
{
	Dwarf_Off offset = 0, next;
	Elf_Data data;
	GElf_Ehdr ehdr;

	if (raw_section(elf, scn, &data) < 0 || !gelf_getehdr(elf, &ehdr))
		return false;
	while (offset < data.d_size) {
		Dwarf_CFI_Entry entry;
		int ret = dwarf_next_cfi(ehdr.e_ident, &data, eh_frame, offset, &next, &entry);

		if (ret > 0)
			return true;
		if (ret < 0 && (next == (Dwarf_Off)-1 || next <= offset || next > data.d_size))
			return false;
		offset = next;
	}
	return true;
}

/* Bytes of the fixed-size pointer encodings .eh_frame_hdr uses (DW_EH_PE_*); 0 for others. */
static size_t encoded_size(uint8_t encoding)
{
	switch (encoding & 0x0f) {
	case 0x02: /* udata2 */
	case 0x0a: /* sdata2 */
		return 2;
	case 0x03: /* udata4 */
	case 0x0b: /* sdata4 */
		return 4;
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		return 8;
	default:
		return 0;
	}
}

/*
 * What libdw needs of .eh_frame_hdr, or it drops the file's whole CFI:
 * version 1, a pointer to .eh_frame, and a search table that fits. Hidden
 * when it fails, libdw reads .eh_frame without it.
 */
static bool eh_frame_hdr_parses(Elf *elf, Elf_Scn *scn)
{
	const uint8_t *hdr;
	size_t entry_size;
	uint32_t count;
	Elf_Data raw;

	if (raw_section(elf, scn, &raw) < 0 || raw.d_size < 4)
		return false;
	hdr = raw.d_buf;
	/* Version 1, with a pointer to .eh_frame (0xff: DW_EH_PE_omit). */
	if (hdr[0] != 1 || hdr[1] == 0xff)
		return false;
	/* The table is checked for the encodings linkers write: 4-byte pointer and count. */
	entry_size = encoded_size(hdr[3]);
	if (encoded_size(hdr[1]) != 4 || encoded_size(hdr[2]) != 4 || !entry_size ||
	    raw.d_size < 12)
		return true;
	memcpy(&count, hdr + 8, sizeof(count));
	return count <= (raw.d_size - 12) / (2 * entry_size);
}

/*
 * Hides the CFI sections of elf that libdw could not parse, so unwinding
 * loses that file's table (or, for .eh_frame_hdr, its search table) and
 * nothing else. Compressed sections are left to the unwind table builder.
 */
static void check_cfi_sections(Elf *elf, unsigned int *losses)
{
	static const char *const names[] = { ".eh_frame", ".debug_frame" };
	Elf_Scn *scn;
	GElf_Shdr shdr;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		scn = elf_find_section(elf, names[i]);
		if (scn && gelf_getshdr(scn, &shdr) && !(shdr.sh_flags & SHF_COMPRESSED) &&
		    shdr.sh_size && !cfi_section_parses(elf, scn, i == 0))
			lose_section(elf, scn, losses);
	}
	scn = elf_find_section(elf, ".eh_frame_hdr");
	if (!scn || !gelf_getshdr(scn, &shdr))
		return;
	/* A search table into a section that is gone would only mislead libdw: no loss of its own. */
	if (!elf_find_section(elf, ".eh_frame"))
		hide_section(scn, &shdr);
	else if (!eh_frame_hdr_parses(elf, scn))
		lose_section(elf, scn, losses);
}

struct elf_file *elf_file__probe(int fd)
{
	struct elf_file *file = calloc(1, sizeof(*file));
	int err;

	if (!file) {
		errno = ENOMEM;
		return NULL;
	}
	/* Segments are checked by elf_file__load: a copy of a file read before needs none. */
	err = open_elf(fd, UINT64_MAX, &file->elf, &file->file_size, &file->losses,
		       &file->snapshot);
	if (err) {
		elf_file__free(file);
		errno = -err;
		return NULL;
	}
	read_build_id(file->elf, file->build_id);
	return file;
}

static const Elf64_Word symbol_table_types[] = { SHT_SYMTAB, SHT_DYNSYM };

int elf_file__load(struct elf_file *file)
{
	struct symbol_table table = { .elf = file->elf };
	int err;

	err = check_loadable_segments(file->elf, file->file_size);
	if (err)
		return err;
	err = read_segments(file);
	if (err)
		return err;
	read_debuglink(file);
	check_cfi_sections(file->elf, &file->losses);
	file->has_debug_info = has_debug_info(file->elf);
	/* A file without any symbol table is still usable: a debug file may follow. */
	for (size_t i = 0; i < ARRAY_SIZE(symbol_table_types); i++) {
		table.scn = usable_symbol_table(file->elf, symbol_table_types[i], &file->losses);
		if (!table.scn)
			continue;
		err = load_symbols(&table, 1, &file->symbols, &file->symbol_count,
				   file->symbol_names);
		if (err != -EINVAL) {
			file->has_symtab = !err && symbol_table_types[i] == SHT_SYMTAB;
			/* The whole table and its names were read: node's are 10 MiB of pages. */
			elf_drop_pages(file->elf);
			return err;
		}
		/* A symbol libelf cannot convert: the table goes, the next one serves. */
		lose_section(file->elf, table.scn, &file->losses);
	}
	return 0;
}

/* The file's own symbol table: .symtab, else (or when it is damaged) .dynsym. */
static Elf_Scn *own_symbol_table(struct elf_file *file)
{
	Elf_Scn *scn = usable_symbol_table(file->elf, SHT_SYMTAB, &file->losses);

	return scn ?: usable_symbol_table(file->elf, SHT_DYNSYM, &file->losses);
}

void elf_file__free(struct elf_file *file)
{
	if (!file)
		return;
	free(file->symbols);
	free(file->segments);
	elf_end(file->debug_elf);
	free(file->debug_image);
	elf_end(file->elf);
	free(file);
}

size_t elf_file__memory(const struct elf_file *file)
{
	return sizeof(*file) + file->symbol_count * sizeof(*file->symbols) +
	       file->segment_count * sizeof(*file->segments) + file->debug_image_size;
}

void elf_drop_pages(Elf *elf)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size;
	char *image = elf ? elf_rawfile(elf, &size) : NULL;
	uintptr_t start = (uintptr_t)image, end;
	char path[64];
	struct stat st;

	if (!image || !size || page <= 0 || (start & (page - 1)))
		return;
	end = (start + size + page - 1) & ~((uintptr_t)page - 1);
	/*
	 * Only a mapping of the file itself, which map_files lists: memory
	 * libelf read the file into (or MiniDebugInfo's image) would be zeroed.
	 * libelf maps ELF_C_READ_MMAP read-only, so no page differs from the file.
	 */
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)start,
		 (unsigned long)end);
	if (lstat(path, &st) < 0)
		return;
	madvise(image, end - start, MADV_DONTNEED);
}

const char *elf_file__build_id(const struct elf_file *file)
{
	return file->build_id;
}

const char *elf_file_loss_name(enum elf_file_loss loss)
{
	static const char *const names[ELF_LOSS_COUNT] = {
		[ELF_LOSS_SYMTAB] = "damaged .symtab",
		[ELF_LOSS_STRTAB] = "damaged .strtab",
		[ELF_LOSS_DYNSYM] = "damaged .dynsym",
		[ELF_LOSS_EH_FRAME] = "damaged .eh_frame",
		[ELF_LOSS_EH_FRAME_HDR] = "damaged .eh_frame_hdr",
		[ELF_LOSS_DEBUG_FRAME] = "damaged .debug_frame",
		[ELF_LOSS_DEBUG_INFO] = "damaged .debug_info",
		[ELF_LOSS_DEBUG_LINE] = "damaged .debug_line",
		[ELF_LOSS_OTHER_SECTION] = "sections outside the file",
		[ELF_LOSS_DEBUG_FILE_TOO_LARGE] = "a debug file over 4 GiB",
		[ELF_LOSS_MINIDEBUGINFO_TOO_LARGE] = "MiniDebugInfo over 64 MiB",
	};

	return (unsigned int)loss < ELF_LOSS_COUNT ? names[loss] : "?";
}

unsigned int elf_file__losses(const struct elf_file *file)
{
	return file->losses;
}

bool elf_file__is_snapshot(const struct elf_file *file)
{
	return file->snapshot;
}

bool elf_file__add_loss(struct elf_file *file, enum elf_file_loss loss)
{
	bool new = !(file->losses & 1U << loss);

	file->losses |= 1U << loss;
	return new;
}

bool elf_file__has_symtab(const struct elf_file *file)
{
	return file->has_symtab;
}

bool elf_file__has_debug_info(const struct elf_file *file)
{
	return file->has_debug_info || file->debug_has_debug_info;
}

int elf_file__debuglink(const struct elf_file *file, const char **ret_name, uint32_t *ret_crc)
{
	if (!file->debuglink)
		return -ENOENT;
	*ret_name = file->debuglink;
	*ret_crc = file->debuglink_crc;
	return 0;
}

/*
 * Makes debug_elf (and image, the memory behind it, if any) the file's debug
 * file: symbols from its .symtab, plus those of own_table when given.
 * Takes both on success only.
 */
static int adopt_debug_elf(struct elf_file *file, Elf *debug_elf, void *image, Elf_Scn *own_table)
{
	char build_id[sizeof(file->build_id)];
	struct symbol_table tables[2];
	struct elf_symbol *symbols = NULL;
	const char *names[2];
	size_t symbol_count = 0, table_count = 0;
	Elf_Scn *scn;
	int err;

	read_build_id(debug_elf, build_id);
	if (build_id[0] && file->build_id[0] && strcmp(build_id, file->build_id) != 0)
		return -ESTALE;
	scn = usable_symbol_table(debug_elf, SHT_SYMTAB, &file->losses);
	if (!scn)
		return -ENOENT;
	check_cfi_sections(debug_elf, &file->losses);
	if (own_table)
		tables[table_count++] = (struct symbol_table){ file->elf, own_table };
	tables[table_count++] = (struct symbol_table){ debug_elf, scn };
	err = load_symbols(tables, table_count, &symbols, &symbol_count, names);
	if (err)
		return err;
	free(file->symbols);
	elf_end(file->debug_elf);
	free(file->debug_image);
	file->symbols = symbols;
	file->symbol_count = symbol_count;
	memcpy(file->symbol_names, names, sizeof(names));
	file->debug_elf = debug_elf;
	file->debug_image = image;
	file->debug_image_size = 0;
	/* Its pages were read through once: they come back from the page cache when named. */
	elf_drop_pages(debug_elf);
	file->debug_has_debug_info = has_debug_info(debug_elf);
	file->has_symtab = true;
	return 0;
}

int elf_file__use_debug_file(struct elf_file *file, int fd)
{
	Elf *debug_elf = NULL;
	int err;

	err = open_elf(fd, ELF_FILE_DEBUG_MAX_BYTES, &debug_elf, NULL, &file->losses, NULL);
	if (err == -EFBIG)
		file->losses |= 1U << ELF_LOSS_DEBUG_FILE_TOO_LARGE;
	if (err)
		return err;
	err = adopt_debug_elf(file, debug_elf, NULL, NULL);
	if (err)
		elf_end(debug_elf);
	return err;
}

/* Decompresses an .xz stream into a new buffer of at most MINIDEBUGINFO_MAX_BYTES. */
static int xz_decompress(const void *in, size_t in_size, void **ret_out, size_t *ret_size)
{
	lzma_stream stream = LZMA_STREAM_INIT;
	unsigned char *out = NULL, *grown;
	size_t capacity = 0;
	lzma_ret ret;
	int err = 0;

	if (lzma_stream_decoder(&stream, MINIDEBUGINFO_DECODER_MEMORY, 0) != LZMA_OK)
		return -ENOMEM;
	stream.next_in = in;
	stream.avail_in = in_size;
	for (;;) {
		if (stream.avail_out == 0) {
			if (capacity >= MINIDEBUGINFO_MAX_BYTES) {
				err = -EFBIG;
				goto cleanup;
			}
			capacity = capacity ? capacity * 2 : 4 * in_size + 4096;
			if (capacity > MINIDEBUGINFO_MAX_BYTES)
				capacity = MINIDEBUGINFO_MAX_BYTES;
			grown = realloc(out, capacity);
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			out = grown;
			stream.next_out = out + stream.total_out;
			stream.avail_out = capacity - stream.total_out;
		}
		ret = lzma_code(&stream, LZMA_FINISH);
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			err = ret == LZMA_MEM_ERROR || ret == LZMA_MEMLIMIT_ERROR ? -ENOMEM
										  : -EINVAL;
			goto cleanup;
		}
	}
	*ret_out = out;
	*ret_size = stream.total_out;
	out = NULL;
cleanup:
	lzma_end(&stream);
	free(out);
	return err;
}

int elf_file__use_minidebuginfo(struct elf_file *file)
{
	Elf_Scn *scn = elf_find_section(file->elf, ".gnu_debugdata");
	Elf_Scn *own_table;
	Elf *debug_elf = NULL;
	void *image = NULL;
	size_t image_size;
	Elf_Data *data;
	int err;

	if (!scn)
		return -ENOENT;
	data = elf_rawdata(scn, NULL);
	if (!data || !data->d_buf || !data->d_size)
		return -EINVAL;
	err = xz_decompress(data->d_buf, data->d_size, &image, &image_size);
	if (err == -EFBIG)
		file->losses |= 1U << ELF_LOSS_MINIDEBUGINFO_TOO_LARGE;
	if (err)
		return err;
	debug_elf = elf_memory(image, image_size);
	if (!debug_elf) {
		err = -EINVAL;
		goto cleanup;
	}
	err = check_elf(debug_elf, image_size, &file->losses);
	if (err)
		goto cleanup;
	/* Fedora leaves out what .dynsym already names: both tables together name everything. */
	own_table = own_symbol_table(file);
	err = adopt_debug_elf(file, debug_elf, image, own_table);
	if (err)
		goto cleanup;
	file->debug_image_size = image_size;
	debug_elf = NULL;
	image = NULL;
cleanup:
	elf_end(debug_elf);
	free(image);
	return err;
}

int elf_file__offset_to_vaddr(const struct elf_file *file, uint64_t file_offset,
			      uint64_t *ret_vaddr)
{
	for (size_t i = 0; i < file->segment_count; i++) {
		const struct elf_segment *segment = &file->segments[i];

		if (file_offset >= segment->offset &&
		    file_offset - segment->offset < segment->filesz) {
			*ret_vaddr = file_offset - segment->offset + segment->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

int elf_file__find_symbol(const struct elf_file *file, uint64_t vaddr, const char **ret_name,
			  bool *ret_exported)
{
	/* First symbol starting after vaddr; the one before it may contain vaddr. */
	size_t next = SORTED_UPPER_BOUND(file->symbols, file->symbol_count, addr, vaddr);
	const struct elf_symbol *symbol;

	if (next == 0)
		return -ENOENT;
	symbol = &file->symbols[next - 1];
	if (vaddr - symbol->addr >= symbol->size)
		return -ENOENT;
	*ret_name = symbol_name(file->symbol_names, symbol->name);
	if (!**ret_name)
		return -ENOENT;
	if (ret_exported)
		*ret_exported = symbol->name & SYMBOL_EXPORTED;
	return 0;
}

int elf_file__crc32(int fd, uint32_t *ret_crc)
{
	unsigned char buffer[16384];
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t offset = 0, size = 0;
	ssize_t n;
	int err;

	/* A debug file too large to be read is not read through for its CRC either. */
	err = regular_file_size(fd, ELF_FILE_DEBUG_MAX_BYTES, &size, NULL);
	if (err)
		return err;
	/* A file that grows while it is read is read up to its size then. */
	while (offset < size) {
		size_t want =
			size - offset < sizeof(buffer) ? (size_t)(size - offset) : sizeof(buffer);

		n = pread(fd, buffer, want, offset);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		crc = crc32(crc, buffer, n);
		offset += n;
	}
	*ret_crc = crc;
	return 0;
}

Elf *elf_file__elf(const struct elf_file *elf)
{
	return elf->elf;
}

Elf *elf_file__debug_elf(const struct elf_file *elf)
{
	return elf->debug_elf;
}

Elf *elf_file__dwarf_elf(const struct elf_file *elf)
{
	if (elf->debug_has_debug_info)
		return elf->debug_elf;
	return elf->has_debug_info ? elf->elf : NULL;
}

int elf_file__load_bias(const struct elf_file *elf, uint64_t map_start, uint64_t map_offset,
			uint64_t map_size, uint64_t *ret_bias)
{
	for (size_t i = 0; i < elf->segment_count; i++) {
		const struct elf_segment *segment = &elf->segments[i];

		/* The mapping starts at a page boundary, possibly before the segment does. */
		if (map_offset < segment->offset + segment->filesz &&
		    segment->offset < map_offset + map_size) {
			*ret_bias = map_start - map_offset + segment->offset - segment->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}
