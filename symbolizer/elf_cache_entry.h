/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ELF cache's entries, for the symbolizer (internal): the elf_file of
 * a cached file, room for one reader's data per entry, and a listener told
 * before an entry's ELF handles change or go.
 */
#ifndef KILN_ELF_CACHE_ENTRY_H
#define KILN_ELF_CACHE_ENTRY_H

#include "symbolizer/elf_cache.h"

struct elf_cache_entry;
struct elf_file;

/*
 * The entry of the file behind a file-backed mapping, opened on first use:
 * through fd when the caller opened it while the process lived (it stays
 * the caller's; -1 for none), else through /proc. Finished debuginfod
 * fetches are attached first. The entry stays valid until the next call.
 * Returns 0 or a negative errno.
 */
int elf_cache__entry(struct elf_cache *cache, int pid, const struct proc_mapping *mapping, int fd,
		     struct elf_cache_entry **ret_entry);

struct elf_file *elf_cache_entry__elf_file(const struct elf_cache_entry *entry);

/* Records what a reader found damaged in the entry's file; counted once per file. */
void elf_cache__add_loss(struct elf_cache *cache, struct elf_cache_entry *entry,
			 enum elf_file_loss loss);

/* The listener's data for this entry; NULL until it sets some. */
void *elf_cache_entry__data(const struct elf_cache_entry *entry);
void elf_cache_entry__set_data(struct elf_cache_entry *entry, void *data);

struct elf_cache_listener {
	/*
	 * What was read from entry's ELF handles must be let go, with the
	 * entry's data: the entry is evicted, or its debug file replaced.
	 */
	void (*release)(void *ctx, struct elf_cache_entry *entry);
	void *ctx;
};

/* The one reader that keeps data per entry. 0, or -EBUSY when one is set already. */
int elf_cache__set_listener(struct elf_cache *cache, const struct elf_cache_listener *listener);
/* Releases every entry's data through the listener, then forgets it: it is going away. */
void elf_cache__clear_listener(struct elf_cache *cache);

#endif /* KILN_ELF_CACHE_ENTRY_H */
