/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One opened ELF file (internal to the symbolizer): its loadable segments,
 * GNU build id and function symbols, optionally taken from a separate debug
 * file or from its MiniDebugInfo. Files are mmapped; the symbol index is 16
 * bytes a symbol, its names offsets into the mapped string tables.
 */
#ifndef KILN_ELF_FILE_H
#define KILN_ELF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;

/*
 * The largest separate debug file read (build id, debuglink, debuginfod):
 * libxul's, the largest a desktop host has, is 1-2 GiB; past this a file is
 * refused before it is mapped.
 */
#define ELF_FILE_DEBUG_MAX_BYTES (4ULL << 30)

/*
 * A file another user than root may write is read into a sealed copy in
 * memory, so that truncating it cannot fault kiln (SIGBUS); such files
 * over this are refused (-EFBIG). The largest user-built binaries with
 * their symbols are a few hundred MiB.
 */
#define ELF_FILE_SNAPSHOT_MAX_BYTES (512ULL << 20)

/*
 * What one part of a file can lose without costing the rest: a section
 * that lies outside the file or fails its checks is hidden (every reader of
 * the handle sees it as empty) and the file serves without it. One bit each
 * in elf_file__losses.
 */
enum elf_file_loss {
	ELF_LOSS_SYMTAB, /* .symtab unreadable: .dynsym names serve */
	ELF_LOSS_STRTAB, /* .symtab's string table unreadable: the same */
	ELF_LOSS_DYNSYM, /* .dynsym or its .dynstr unreadable */
	ELF_LOSS_EH_FRAME, /* no unwinding from .eh_frame (.debug_frame may serve) */
	ELF_LOSS_EH_FRAME_HDR, /* its search table: .eh_frame is read without it */
	ELF_LOSS_DEBUG_FRAME,
	ELF_LOSS_DEBUG_INFO, /* lines and inlined frames (of the units after the damage) */
	ELF_LOSS_DEBUG_LINE, /* lines */
	ELF_LOSS_OTHER_SECTION, /* any other section outside the file */
	ELF_LOSS_DEBUG_FILE_TOO_LARGE, /* a debug file over ELF_FILE_DEBUG_MAX_BYTES, refused */
	ELF_LOSS_MINIDEBUGINFO_TOO_LARGE, /* MiniDebugInfo decompressing past its bound */
	ELF_LOSS_COUNT,
};

/*
 * Opens the ELF file behind fd, which the caller keeps and may close right
 * after, and reads its build id: enough to tell a file already read under
 * another name. Sections outside the file are hidden and counted as
 * losses. Only elf_file__build_id, elf_file__losses and elf_file__free work
 * on the result until elf_file__load. NULL with errno set: EINVAL when its
 * ELF header or section header table is unreadable.
 */
struct elf_file *elf_file__probe(int fd);

/*
 * Reads the rest of a probed file: segments (checked against its size),
 * .gnu_debuglink and its own .symtab (else, or when .symtab or its string
 * table fails its checks, .dynsym), and checks its CFI sections, hiding
 * those that cannot be parsed. Returns 0 or a negative errno (EINVAL when a
 * loadable segment lies outside the file); the file is then only freed.
 */
int elf_file__load(struct elf_file *file);
void elf_file__free(struct elf_file *elf);

/* What a loss is called in a log line: "damaged .symtab", "a debug file over 4 GiB". */
const char *elf_file_loss_name(enum elf_file_loss loss);

/* The elf_file_loss bits of what this file (or its debug file) lost so far. */
unsigned int elf_file__losses(const struct elf_file *elf);

/* True when the file was read into a sealed copy: others may truncate it. */
bool elf_file__is_snapshot(const struct elf_file *elf);

/* Records a loss a later reader found (DWARF); true when the file had not lost it before. */
bool elf_file__add_loss(struct elf_file *elf, enum elf_file_loss loss);

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
 * errno (-EFBIG over ELF_FILE_DEBUG_MAX_BYTES, refused before it is read);
 * the current symbols and debug file stay on failure.
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

/*
 * What the file holds in memory besides its mapping, in bytes: its symbol
 * index and segments, MiniDebugInfo decompressed. Estimated: libelf's own
 * small headers are not counted.
 */
size_t elf_file__memory(const struct elf_file *elf);

/*
 * Lets go of the pages of elf's mapping kiln has read (they stay in the
 * page cache and come back when read again), so that reading a file
 * through once (its symbol table, its CFI, a unit's DWARF) does not stay
 * in kiln's RSS. Nothing happens when elf is not a mapping of a file.
 */
void elf_drop_pages(struct Elf *elf);

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

/*
 * Computes the .gnu_debuglink CRC32 of a whole file, as large as it was
 * when the call began: -EFBIG over ELF_FILE_DEBUG_MAX_BYTES, -EINVAL for
 * anything but a regular file (a FIFO would never end).
 */
int elf_file__crc32(int fd, uint32_t *ret_crc);

#endif /* KILN_ELF_FILE_H */
