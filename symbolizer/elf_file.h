/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One opened ELF file (internal to the symbolizer): its loadable segments,
 * GNU build id and function symbols, optionally taken from a separate debug
 * file or from its MiniDebugInfo. Files are mmapped; symbol names point into
 * the mapping.
 */
#ifndef KILN_ELF_FILE_H
#define KILN_ELF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;

/*
 * Opens the ELF file behind fd, which the caller keeps and may close right
 * after, and reads its build id: enough to tell a file already read under
 * another name. Only elf_file__build_id and elf_file__free work on the
 * result until elf_file__load. NULL with errno set: EINVAL for corrupt or
 * truncated files.
 */
struct elf_file *elf_file__probe(int fd);

/*
 * Reads the rest of a probed file: segments (checked against its size),
 * .gnu_debuglink and its own .symtab (else .dynsym). Returns 0 or a
 * negative errno (EINVAL for corrupt files); the file is then only freed.
 */
int elf_file__load(struct elf_file *file);
void elf_file__free(struct elf_file *elf);

/* Lowercase hex, "" when the file has none. */
const char *elf_file__build_id(const struct elf_file *elf);

/* True once symbols come from a full .symtab (the file's own or a debug file's). */
bool elf_file__has_symtab(const struct elf_file *elf);

/* True when the file or its debug file has DWARF (.debug_info): no better file to look for. */
bool elf_file__has_debug_info(const struct elf_file *elf);

/* The .gnu_debuglink file name and CRC32; -ENOENT when the file has none. */
int elf_file__debuglink(const struct elf_file *elf, const char **ret_name, uint32_t *ret_crc);

/*
 * Takes symbols from a separate debug file (fd kept by the caller), which
 * replaces any debug file taken before. The debug file must have a .symtab
 * and, when both have one, the same build id. Returns 0 or a negative
 * errno; the current symbols and debug file stay on failure.
 */
int elf_file__use_debug_file(struct elf_file *elf, int fd);

/*
 * Takes symbols from the file's .gnu_debugdata (MiniDebugInfo, as Fedora
 * ships: an xz-compressed ELF with a .symtab of what .dynsym leaves out),
 * merged with the file's own table. Like a debug file, it becomes
 * elf_file__debug_elf (without DWARF). -ENOENT when the file has none,
 * -EINVAL when it is corrupt, -EFBIG when it would decompress too large.
 */
int elf_file__use_minidebuginfo(struct elf_file *elf);

/* Maps a file offset inside an executable PT_LOAD segment to its ELF virtual address. */
int elf_file__offset_to_vaddr(const struct elf_file *elf, uint64_t file_offset,
			      uint64_t *ret_vaddr);

/*
 * The function symbol containing vaddr, and whether it is exported (global
 * or weak; ret_exported may be NULL). -ENOENT when none does.
 */
int elf_file__find_symbol(const struct elf_file *elf, uint64_t vaddr, const char **ret_name,
			  bool *ret_exported);

/* The libelf handles: the file itself, and its debug file or NULL. */
struct Elf;
struct Elf_Scn;
struct Elf *elf_file__elf(const struct elf_file *elf);
struct Elf *elf_file__debug_elf(const struct elf_file *elf);

/*
 * The Elf that holds the file's DWARF: the debug file when it has
 * .debug_info, else the file itself when it does, else NULL. It changes
 * when a better debug file arrives (elf_file__use_debug_file).
 */
struct Elf *elf_file__dwarf_elf(const struct elf_file *elf);

/*
 * The load bias of a mapping of this file: process address minus ELF
 * virtual address, from the executable PT_LOAD segment the mapping shows.
 */
int elf_file__load_bias(const struct elf_file *elf, uint64_t map_start, uint64_t map_offset,
			uint64_t map_size, uint64_t *ret_bias);

/* The section called name that has contents in the file (not NOBITS); NULL when none. */
struct Elf_Scn *elf_find_section(struct Elf *elf, const char *name);

/*
 * A handle of our own on the file elf maps, opened again through
 * /proc/self/map_files. libelf keeps the sections libdw decompresses
 * (distributions and Go compress debug sections) with the handle until
 * elf_end: on a private handle they go when it does, not with a cached
 * file. NULL when elf maps no file or map_files is not open to us (it wants
 * CAP_SYS_ADMIN): callers then use elf itself.
 */
struct Elf *elf_reopen_private(struct Elf *elf);

/*
 * Makes the sections whose names hide() accepts look empty (SHT_NOBITS) in
 * own's copy of the section headers, so that libdw neither reads nor
 * decompresses them. Only for a private handle: nothing is written back,
 * but every reader of own sees it.
 */
void elf_hide_sections(struct Elf *own, bool (*hide)(const char *name));

/* Computes the .gnu_debuglink CRC32 of a whole file. */
int elf_file__crc32(int fd, uint32_t *ret_crc);

#endif /* KILN_ELF_FILE_H */
