// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the ELF reader as the symbolizer drives it: probe (build id),
 * load (segments, .gnu_debuglink, .symtab or .dynsym), then symbols from
 * its MiniDebugInfo and from the file as its own debug file, looking up
 * the addresses its executable segments and symbols name.
 */
#include <gelf.h>
#include <string.h>

#include "symbolizer/elf_file.h"
#include "tests/fuzz/fuzz.h"

#define MAX_SYMBOL_LOOKUPS 64
#define STEPS_PER_SEGMENT 8
#define MAP_START 0x7f0000000000ULL

static void find_symbol(const struct elf_file *elf, uint64_t vaddr)
{
	const char *name;
	bool exported;

	/* The name must be readable whole: ASan reports it when not. */
	if (elf_file__find_symbol(elf, vaddr, &name, &exported) == 0)
		(void)strlen(name);
}

/* Mappings of each executable segment, as /proc/PID/maps would show them. */
static void lookup_segments(const struct elf_file *elf)
{
	Elf *handle = elf_file__elf(elf);
	size_t count;

	if (!handle || elf_getphdrnum(handle, &count))
		return;
	for (size_t i = 0; i < count && i < 16; i++) {
		uint64_t page_offset, bias, vaddr;
		GElf_Phdr phdr;

		if (!gelf_getphdr(handle, (int)i, &phdr) || phdr.p_type != PT_LOAD ||
		    !(phdr.p_flags & PF_X))
			continue;
		page_offset = phdr.p_offset & ~0xfffULL;
		(void)elf_file__load_bias(elf, MAP_START, page_offset, phdr.p_filesz + 0x1000,
					  &bias);
		for (uint64_t step = 0; step <= STEPS_PER_SEGMENT; step++) {
			uint64_t offset = phdr.p_offset + phdr.p_filesz / STEPS_PER_SEGMENT * step;

			if (elf_file__offset_to_vaddr(elf, offset, &vaddr) == 0)
				find_symbol(elf, vaddr);
		}
	}
}

/* The addresses of the symbols in handle's tables, and just past them. */
static void lookup_symbols(const struct elf_file *elf, Elf *handle)
{
	Elf_Scn *scn = NULL;
	int lookups = 0;

	while (handle && (scn = elf_nextscn(handle, scn)) && lookups < MAX_SYMBOL_LOOKUPS) {
		Elf_Data *data;
		GElf_Shdr shdr;
		GElf_Sym sym;

		if (!gelf_getshdr(scn, &shdr) ||
		    (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM) ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		for (int i = 0; lookups < MAX_SYMBOL_LOOKUPS && gelf_getsym(data, i, &sym); i++) {
			if (GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			find_symbol(elf, sym.st_value);
			find_symbol(elf, sym.st_value + sym.st_size);
			lookups++;
		}
	}
}

static void lookup_all(const struct elf_file *elf)
{
	lookup_segments(elf);
	lookup_symbols(elf, elf_file__elf(elf));
	lookup_symbols(elf, elf_file__debug_elf(elf));
	(void)elf_file__has_symtab(elf);
	(void)elf_file__has_debug_info(elf);
	(void)elf_file__dwarf_elf(elf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = fuzz_memfd(data, size);
	struct elf_file *elf;
	const char *link;
	uint32_t crc;

	elf = elf_file__probe(fd);
	if (!elf)
		goto cleanup;
	FUZZ_CHECK(strlen(elf_file__build_id(elf)) % 2 == 0);
	if (elf_file__load(elf))
		goto cleanup;
	if (elf_file__debuglink(elf, &link, &crc) == 0)
		(void)strlen(link);
	lookup_all(elf);
	if (elf_file__use_minidebuginfo(elf) == 0)
		lookup_all(elf);
	/* The file as its own debug file, as when a debug file is a full copy. */
	if (elf_file__use_debug_file(elf, fd) == 0)
		lookup_all(elf);
cleanup:
	elf_file__free(elf);
	(void)elf_file__crc32(fd, &crc);
	close(fd);
	return 0;
}
