// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the DWARF line and inline reader: opens an ELF file's DWARF and
 * looks up addresses spread over its executable sections, with an index
 * small enough to be dropped and rebuilt, and a frame room small enough
 * for chains to be cut.
 */
#include <gelf.h>
#include <string.h>

#include "symbolizer/dwarf_info.h"
#include "tests/fuzz/fuzz.h"

#define LOOKUPS_PER_SECTION 16
#define MAX_SECTIONS 16

static void lookup(struct dwarf_info *info, uint64_t vaddr)
{
	struct dwarf_info_frame frames[8];
	size_t count = 0;

	for (size_t room = 1; room <= 8; room += 7) {
		if (dwarf_info__lookup(info, vaddr, frames, room, &count) == 0) {
			FUZZ_CHECK(count >= 1 && count <= room);
			for (size_t i = 0; i < count; i++) {
				/* Strings must be readable whole: ASan reports it when not. */
				if (frames[i].name)
					(void)strlen(frames[i].name);
				if (frames[i].file)
					(void)strlen(frames[i].file);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dwarf_info_stats stats;
	struct dwarf_info *info;
	Elf_Scn *scn = NULL;
	int sections = 0;
	Elf *elf;
	int fd;

	elf = fuzz_elf_open(data, size, &fd);
	if (!elf)
		goto cleanup;
	info = dwarf_info__new(elf, 64);
	if (!info)
		goto cleanup;
	while ((scn = elf_nextscn(elf, scn)) && sections < MAX_SECTIONS) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || !(shdr.sh_flags & SHF_EXECINSTR))
			continue;
		sections++;
		for (uint64_t i = 0; i <= LOOKUPS_PER_SECTION; i++)
			lookup(info, shdr.sh_addr + shdr.sh_size / LOOKUPS_PER_SECTION * i);
	}
	/* Past any section too, and the addresses the input ends with. */
	lookup(info, 0);
	lookup(info, UINT64_MAX);
	if (size >= 8) {
		uint64_t vaddr;

		memcpy(&vaddr, data + size - 8, sizeof(vaddr));
		lookup(info, vaddr);
	}
	(void)dwarf_info__memory(info);
	(void)dwarf_info__index_rows(info);
	dwarf_info__stats(info, &stats);
	dwarf_info__free(info);
cleanup:
	elf_end(elf);
	close(fd);
	return 0;
}
