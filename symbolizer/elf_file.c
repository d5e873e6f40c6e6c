// SPDX-License-Identifier: Apache-2.0
/* One ELF file through libelf: segments, build id, and sorted function symbols. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct elf_symbol {
	uint64_t addr;
	uint64_t end; /* one past the last byte */
	const char *name; /* points into the mmapped string table */
	bool exported; /* global or weak binding */
};

struct elf_file {
	Elf *elf;
	uint64_t file_size;
	Elf *debug_elf; /* separate debug file the symbols come from, or NULL */
	void *debug_image; /* decompressed MiniDebugInfo behind debug_elf, or NULL */
	struct elf_segment *segments; /* executable PT_LOAD segments */
	size_t segment_count;
	struct elf_symbol *symbols; /* sorted by addr, one per address */
	size_t symbol_count;
	bool has_symtab;
	bool has_debug_info; /* the file's own .debug_info */
	bool debug_has_debug_info; /* debug_elf's .debug_info */
	const char *debuglink; /* .gnu_debuglink file name, or NULL */
	uint32_t debuglink_crc;
	char build_id[2 * BUILD_ID_MAX_BYTES + 1];
};

/* Collected before sorting; trimmed into struct elf_symbol afterwards. */
struct raw_symbol {
	uint64_t addr;
	uint64_t size;
	uint64_t section_end; /* bounds a symbol without size; UINT64_MAX when unknown */
	const char *name;
	int rank; /* preferred name among aliases at one address: lower wins */
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

/*
 * Checks that every section lies inside the file's size, so a truncated
 * file fails here instead of faulting later (check_loadable_segments does
 * the segments of files that are executed).
 */
static int check_elf(Elf *elf, uint64_t size)
{
	size_t section_count, segment_count;
	Elf_Scn *scn = NULL;
	GElf_Ehdr ehdr;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr) ||
	    elf_getshdrnum(elf, &section_count) < 0 || elf_getphdrnum(elf, &segment_count) < 0)
		return -EINVAL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr))
			return -EINVAL;
		if (shdr.sh_type != SHT_NOBITS && !within_file(shdr.sh_offset, shdr.sh_size, size))
			return -EINVAL;
	}
	return 0;
}

/* Opens fd with mmap and checks it (check_elf); fd is free again on return. */
static int open_elf(int fd, Elf **ret_elf, uint64_t *ret_size)
{
	struct stat st;
	Elf *elf;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -EINVAL;
	err = check_elf(elf, (uint64_t)st.st_size);
	if (err)
		goto cleanup;
	/* Mapped: nothing more to read. Not mapped: read it all now. Either way fd is free. */
	if (elf_cntl(elf, ELF_C_FDREAD) < 0) {
		err = -EIO;
		goto cleanup;
	}
	*ret_elf = elf;
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	elf = NULL;
cleanup:
	elf_end(elf);
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
		if (name && hide(name)) {
			shdr.sh_type = SHT_NOBITS;
			gelf_update_shdr(scn, &shdr);
		}
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

static int compare_raw_symbols(const void *a, const void *b)
{
	const struct raw_symbol *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	if (!x->size != !y->size)
		return x->size ? -1 : 1;
	/* printf over _IO_printf, malloc over __libc_malloc. */
	if (strspn(x->name, "_") != strspn(y->name, "_"))
		return strspn(x->name, "_") < strspn(y->name, "_") ? -1 : 1;
	return strcmp(x->name, y->name);
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

/* Appends the FUNC symbols of one table to raw, which has room for all of them. */
static int collect_symbols(const struct symbol_table *table, struct raw_symbol *raw, size_t *count)
{
	Elf *elf = table->elf;
	Elf_Data *data;
	GElf_Shdr shdr;
	size_t total;
	int err;

	err = symbol_table_data(table, &shdr, &data, &total);
	if (err)
		return err;
	for (size_t i = 0; i < total; i++) {
		unsigned char type;
		const char *name;
		Elf_Scn *home;
		GElf_Shdr home_shdr;
		GElf_Sym sym;

		if (!gelf_getsym(data, i, &sym))
			return -EINVAL;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !sym.st_value ||
		    sym.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(elf, shdr.sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		raw[*count] = (struct raw_symbol){
			.addr = sym.st_value,
			.size = sym.st_size,
			.section_end = UINT64_MAX,
			.name = name,
			.rank = binding_rank(GELF_ST_BIND(sym.st_info)),
		};
		home = sym.st_shndx < SHN_LORESERVE ? elf_getscn(elf, sym.st_shndx) : NULL;
		if (home && gelf_getshdr(home, &home_shdr) &&
		    home_shdr.sh_addr + home_shdr.sh_size > sym.st_value)
			raw[*count].section_end = home_shdr.sh_addr + home_shdr.sh_size;
		(*count)++;
	}
	return 0;
}

/*
 * Reads the FUNC symbols of the given tables, keeps one name per address
 * and gives symbols without a size the room up to the next symbol.
 */
static int load_symbols(const struct symbol_table *tables, size_t table_count,
			struct elf_symbol **ret_symbols, size_t *ret_count)
{
	struct elf_symbol *symbols = NULL, *shrunk;
	struct raw_symbol *raw = NULL;
	size_t raw_count = 0, capacity = 0, count = 0;
	int err = 0;

	for (size_t i = 0; i < table_count; i++) {
		Elf_Data *data;
		GElf_Shdr shdr;
		size_t total;

		err = symbol_table_data(&tables[i], &shdr, &data, &total);
		if (err)
			return err;
		capacity += total;
	}
	raw = calloc(capacity ? capacity : 1, sizeof(*raw));
	if (!raw)
		return -ENOMEM;
	for (size_t i = 0; i < table_count; i++) {
		err = collect_symbols(&tables[i], raw, &raw_count);
		if (err)
			goto cleanup;
	}
	qsort(raw, raw_count, sizeof(*raw), compare_raw_symbols);
	symbols = calloc(raw_count ? raw_count : 1, sizeof(*symbols));
	if (!symbols) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < raw_count; i++) {
		size_t next = i + 1;
		uint64_t end;

		if (count && symbols[count - 1].addr == raw[i].addr)
			continue;
		while (next < raw_count && raw[next].addr == raw[i].addr)
			next++;
		if (raw[i].size) {
			end = raw[i].addr + raw[i].size;
		} else {
			end = raw[i].section_end;
			if (next < raw_count && raw[next].addr < end)
				end = raw[next].addr;
		}
		symbols[count++] =
			(struct elf_symbol){ raw[i].addr, end, raw[i].name, raw[i].rank == 0 };
	}
	shrunk = reallocarray(symbols, count ? count : 1, sizeof(*symbols));
	if (shrunk)
		symbols = shrunk;
	*ret_symbols = symbols;
	*ret_count = count;
	symbols = NULL;
cleanup:
	free(symbols);
	free(raw);
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

struct elf_file *elf_file__probe(int fd)
{
	struct elf_file *file = calloc(1, sizeof(*file));
	int err;

	if (!file) {
		errno = ENOMEM;
		return NULL;
	}
	/* Segments are checked by elf_file__load: a copy of a file read before needs none. */
	err = open_elf(fd, &file->elf, &file->file_size);
	if (err) {
		elf_file__free(file);
		errno = -err;
		return NULL;
	}
	read_build_id(file->elf, file->build_id);
	return file;
}

int elf_file__load(struct elf_file *file)
{
	Elf_Scn *scn;
	int err;

	err = check_loadable_segments(file->elf, file->file_size);
	if (err)
		return err;
	err = read_segments(file);
	if (err)
		return err;
	read_debuglink(file);
	file->has_debug_info = has_debug_info(file->elf);
	scn = find_section_by_type(file->elf, SHT_SYMTAB);
	file->has_symtab = scn != NULL;
	if (!scn)
		scn = find_section_by_type(file->elf, SHT_DYNSYM);
	/* A file without any symbol table is still usable: a debug file may follow. */
	if (scn) {
		const struct symbol_table table = { file->elf, scn };

		return load_symbols(&table, 1, &file->symbols, &file->symbol_count);
	}
	return 0;
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

const char *elf_file__build_id(const struct elf_file *file)
{
	return file->build_id;
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
	size_t symbol_count = 0, table_count = 0;
	Elf_Scn *scn;
	int err;

	read_build_id(debug_elf, build_id);
	if (build_id[0] && file->build_id[0] && strcmp(build_id, file->build_id) != 0)
		return -ESTALE;
	scn = find_section_by_type(debug_elf, SHT_SYMTAB);
	if (!scn)
		return -ENOENT;
	if (own_table)
		tables[table_count++] = (struct symbol_table){ file->elf, own_table };
	tables[table_count++] = (struct symbol_table){ debug_elf, scn };
	err = load_symbols(tables, table_count, &symbols, &symbol_count);
	if (err)
		return err;
	free(file->symbols);
	elf_end(file->debug_elf);
	free(file->debug_image);
	file->symbols = symbols;
	file->symbol_count = symbol_count;
	file->debug_elf = debug_elf;
	file->debug_image = image;
	file->debug_has_debug_info = has_debug_info(debug_elf);
	file->has_symtab = true;
	return 0;
}

int elf_file__use_debug_file(struct elf_file *file, int fd)
{
	Elf *debug_elf = NULL;
	int err;

	err = open_elf(fd, &debug_elf, NULL);
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
	Elf_Scn *own_table = find_section_by_type(file->elf, SHT_SYMTAB);
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
	if (err)
		return err;
	debug_elf = elf_memory(image, image_size);
	if (!debug_elf) {
		err = -EINVAL;
		goto cleanup;
	}
	err = check_elf(debug_elf, image_size);
	if (err)
		goto cleanup;
	/* Fedora leaves out what .dynsym already names: both tables together name everything. */
	if (!own_table)
		own_table = find_section_by_type(file->elf, SHT_DYNSYM);
	err = adopt_debug_elf(file, debug_elf, image, own_table);
	if (err)
		goto cleanup;
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
	if (vaddr >= symbol->end)
		return -ENOENT;
	*ret_name = symbol->name;
	if (ret_exported)
		*ret_exported = symbol->exported;
	return 0;
}

int elf_file__crc32(int fd, uint32_t *ret_crc)
{
	unsigned char buffer[16384];
	uLong crc = crc32(0, Z_NULL, 0);
	off_t offset = 0;
	ssize_t n;

	while ((n = pread(fd, buffer, sizeof(buffer), offset)) != 0) {
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
