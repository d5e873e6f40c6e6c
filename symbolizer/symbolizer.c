// SPDX-License-Identifier: Apache-2.0
/* Addresses to names: frames through an ELF cache's files and their DWARF, perf maps, kallsyms. */
#include <errno.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/list.h"
#include "symbolizer/debug_search.h"
#include "symbolizer/demangle.h"
#include "symbolizer/display_names.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/elf_cache_entry.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/ksyms.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/process_files.h"
#include "symbolizer/symbolizer.h"

/* libdw keeps what it decompresses and parses until the DWARF is closed. */
#define DEFAULT_MAX_DWARF_FILES 32
#define DEFAULT_MAX_DWARF_MEMORY (64ULL << 20)
/* 256Ki ranges * 32 bytes = 8 MiB of index per file at most. */
#define DEFAULT_MAX_DWARF_INDEX_ROWS (256 * 1024)
#define DEFAULT_KALLSYMS_PATH "/proc/kallsyms"
/* How long a kallsyms miss waits before the table is read again. */
#define KALLSYMS_RETRY_INTERVAL_NS (60ULL * 1000 * 1000 * 1000)
/*
 * Where decompressed copies of compressed DWARF go (unnamed O_TMPFILE
 * files, gone when closed), and what they may take on disk in all.
 */
#define DEFAULT_DECOMPRESSED_DIR "/var/tmp"
#define DEFAULT_MAX_DECOMPRESSED_BYTES (1ULL << 30)

/* A cached file's DWARF: the symbolizer's data on its elf_cache entry. */
struct file_dwarf {
	struct elf_cache_entry *entry;
	struct dwarf_info *dwarf; /* opened on first lookup; NULL when none or evicted */
	bool tried; /* the file has no readable DWARF: do not look again */
	struct list_node lru; /* in symbolizer->dwarf_lru while dwarf is open */
	uint64_t closed_in_window; /* symbolizer->window when last closed for memory */
	unsigned int closes_in_window; /* closed for memory in that window, so many times */
	/*
	 * The DWARF file decompressed into a file of our own, kept with the
	 * entry: the DWARF is read from it when opened again. NULL until then.
	 */
	struct Elf *decompressed;
	uint64_t decompressed_bytes;
};

struct symbolizer {
	struct elf_cache *files;
	/* Made by symbolizer__new when opts gave no cache: freed with the symbolizer. */
	struct elf_cache *own_files;
	struct debug_search *own_debug_search;
	char *kallsyms_path;
	struct ksyms *ksyms;
	struct perf_maps *perf_maps; /* names for JIT code */
	bool ksyms_tried;
	int ksyms_error; /* why the last load failed */
	uint64_t ksyms_loaded_at_ns; /* last load attempt */
	size_t max_dwarf_files;
	size_t max_dwarf_index_rows;
	uint64_t max_dwarf_memory;
	struct list_node dwarf_lru; /* open DWARF, most recently used first */
	size_t dwarf_count;
	uint64_t dwarf_memory; /* dwarf_info__memory of every open file, summed */
	uint64_t window; /* symbolizer__end_window calls so far */
	char *decompressed_dir; /* NULL: no decompressed copies (tmpfs, or unusable) */
	uint64_t max_decompressed_bytes;
	struct dwarf_info_stats closed_dwarf_stats; /* of DWARF closed so far */
	struct symbolizer_stats stats;
	/* Display names of the last resolved location. */
	struct display_names *names;
};

static void add_dwarf_stats(struct dwarf_info_stats *total, const struct dwarf_info_stats *more)
{
	total->index_resets += more->index_resets;
	total->units_not_indexed += more->units_not_indexed;
	total->chains_truncated += more->chains_truncated;
	total->reader_closes += more->reader_closes;
	total->reader_reopens += more->reader_reopens;
}

/*
 * Frees what libdw holds for the file; it is read again on its next lookup,
 * from the file's debug file then (one that had none may have been replaced).
 */
static void close_dwarf(struct symbolizer *symbolizer, struct file_dwarf *file)
{
	struct dwarf_info_stats stats;

	file->tried = false;
	if (!file->dwarf)
		return;
	dwarf_info__stats(file->dwarf, &stats);
	add_dwarf_stats(&symbolizer->closed_dwarf_stats, &stats);
	symbolizer->dwarf_memory -= dwarf_info__memory(file->dwarf);
	dwarf_info__free(file->dwarf);
	file->dwarf = NULL;
	list_remove(&file->lru);
	symbolizer->dwarf_count--;
}

/* The cache evicts an entry or replaces its debug file: its DWARF goes first. */
static void release_entry(void *ctx, struct elf_cache_entry *entry)
{
	struct file_dwarf *file = elf_cache_entry__data(entry);

	struct symbolizer *symbolizer = ctx;

	close_dwarf(symbolizer, file);
	if (file->decompressed) {
		elf_end(file->decompressed);
		symbolizer->stats.dwarf_decompressed_bytes -= file->decompressed_bytes;
	}
	elf_cache_entry__set_data(entry, NULL);
	free(file);
}

/*
 * The directory for decompressed DWARF, or NULL when none is usable: one on
 * tmpfs or ramfs would hold the copies in memory, which is what they are
 * to save.
 */
static char *decompressed_dir(const char *dir)
{
	struct statfs fs;

	if (!dir)
		dir = DEFAULT_DECOMPRESSED_DIR;
	if (!dir[0] || statfs(dir, &fs) < 0 || fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)
		return NULL;
	return strdup(dir);
}

/* The cache symbolizer__new makes when it is given none. */
static int make_own_files(struct symbolizer *symbolizer)
{
	struct elf_cache_opts opts = {};

	symbolizer->own_debug_search = debug_search__new(NULL);
	if (!symbolizer->own_debug_search)
		return -errno;
	opts.debug_search = symbolizer->own_debug_search;
	symbolizer->own_files = elf_cache__new(&opts);
	if (!symbolizer->own_files)
		return -errno;
	symbolizer->files = symbolizer->own_files;
	return 0;
}

struct symbolizer *symbolizer__new(const struct symbolizer_opts *opts)
{
	struct symbolizer_opts defaults = {};
	struct elf_cache_listener listener = { .release = release_entry };
	struct symbolizer *symbolizer;
	int err = 0;

	if (!opts)
		opts = &defaults;
	symbolizer = calloc(1, sizeof(*symbolizer));
	if (!symbolizer)
		return NULL;
	list_init(&symbolizer->dwarf_lru);
	symbolizer->window = 1; /* not the 0 of a file never closed */
	symbolizer->max_dwarf_files =
		opts->max_dwarf_files ? opts->max_dwarf_files : DEFAULT_MAX_DWARF_FILES;
	symbolizer->max_dwarf_memory =
		opts->max_dwarf_memory ? opts->max_dwarf_memory : DEFAULT_MAX_DWARF_MEMORY;
	symbolizer->max_dwarf_index_rows = opts->max_dwarf_index_rows
						   ? opts->max_dwarf_index_rows
						   : DEFAULT_MAX_DWARF_INDEX_ROWS;
	symbolizer->max_decompressed_bytes = opts->max_decompressed_bytes
						     ? opts->max_decompressed_bytes
						     : DEFAULT_MAX_DECOMPRESSED_BYTES;
	symbolizer->decompressed_dir = decompressed_dir(opts->decompressed_dir);
	symbolizer->files = opts->elf_cache;
	if (!symbolizer->files) {
		err = make_own_files(symbolizer);
		if (err)
			goto cleanup;
	}
	symbolizer->kallsyms_path =
		strdup(opts->kallsyms_path ? opts->kallsyms_path : DEFAULT_KALLSYMS_PATH);
	symbolizer->perf_maps = perf_maps__new(&(struct perf_maps_opts){
		.max_memory = opts->max_perf_map_memory,
	});
	symbolizer->names = display_names__new();
	if (!symbolizer->kallsyms_path || !symbolizer->perf_maps || !symbolizer->names) {
		err = -ENOMEM;
		goto cleanup;
	}
	listener.ctx = symbolizer;
	err = elf_cache__set_listener(symbolizer->files, &listener);
	if (err)
		symbolizer->files = NULL; /* another symbolizer's: not to be cleared */
cleanup:
	if (err) {
		symbolizer__free(symbolizer);
		errno = -err;
		return NULL;
	}
	return symbolizer;
}

void symbolizer__free(struct symbolizer *symbolizer)
{
	if (!symbolizer)
		return;
	/* Every DWARF closed, while the cache's ELF handles are still open. */
	if (symbolizer->files)
		elf_cache__clear_listener(symbolizer->files);
	elf_cache__free(symbolizer->own_files);
	debug_search__free(symbolizer->own_debug_search);
	ksyms__free(symbolizer->ksyms);
	perf_maps__free(symbolizer->perf_maps);
	display_names__free(symbolizer->names);
	free(symbolizer->kallsyms_path);
	free(symbolizer->decompressed_dir);
	free(symbolizer);
}

int symbolizer__prepare_process_files(struct symbolizer *symbolizer, int pid,
				      const struct proc_maps *maps, const int *fds)
{
	struct elf_cache_entry *entry;
	bool jit = false;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (!fds && access(path, F_OK) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];

		if (!(mapping->perms & PROC_MAP_EXEC))
			continue;
		jit |= perf_maps__may_name(mapping);
		/* Failures are counted in elf_open_errors and remembered. */
		if (process_files_is_file_backed(mapping))
			elf_cache__entry(symbolizer->files, pid, mapping, fds ? fds[i] : -1,
					 &entry);
	}
	/* Where its perf map is can only be asked while it runs; most have none. */
	if (jit)
		perf_maps__prepare(symbolizer->perf_maps, pid);
	return 0;
}

int symbolizer__prepare_process(struct symbolizer *symbolizer, int pid,
				const struct proc_maps *maps)
{
	return symbolizer__prepare_process_files(symbolizer, pid, maps, NULL);
}

static struct symbolized_frame symbol_frame(struct symbolizer *symbolizer, const char *name)
{
	return (struct symbolized_frame){
		.function = display_names__name(symbolizer->names, name),
		.system_name = name,
	};
}

/* The symbolizer's data on an entry, made on first use; NULL when out of memory. */
static struct file_dwarf *entry_dwarf_state(struct elf_cache_entry *entry)
{
	struct file_dwarf *file = elf_cache_entry__data(entry);

	if (file)
		return file;
	file = calloc(1, sizeof(*file));
	if (!file)
		return NULL;
	file->entry = entry;
	list_init(&file->lru);
	elf_cache_entry__set_data(entry, file);
	return file;
}

/*
 * Compressed DWARF (as distributions ship debug files) is decompressed by
 * libdw into the heap every time it is opened: 100 ms and 8 MiB for
 * glibc's, which the memory share cannot keep open beside other files, so
 * it was read again window after window. Written once decompressed into a
 * file of our own, it is read from there: its sections are file pages,
 * dropped after each window like the ELF files', and opening it again costs
 * a quarter. Failures keep the heap copy, counted.
 */
static void decompress_once(struct symbolizer *symbolizer, struct file_dwarf *file,
			    struct Elf *dwarf_elf)
{
	struct dwarf_info *reread = NULL;
	uint64_t bytes = 0;
	Elf *copy = NULL;
	int fd = -1, err;

	if (!symbolizer->decompressed_dir)
		return;
	/* What libdw decompressed is about what the copy takes. */
	if (symbolizer->stats.dwarf_decompressed_bytes + dwarf_info__memory(file->dwarf) >
	    symbolizer->max_decompressed_bytes) {
		symbolizer->stats.dwarf_decompress_failed++;
		return;
	}
	fd = open(symbolizer->decompressed_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	err = fd < 0 ? -errno : dwarf_info__write_decompressed(file->dwarf, fd, &bytes);
	if (!err) {
		copy = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		/* Mapped whole: the descriptor is not needed any more. */
		if (!copy || elf_kind(copy) != ELF_K_ELF || elf_cntl(copy, ELF_C_FDREAD) < 0)
			err = -EINVAL;
	}
	if (fd >= 0)
		close(fd);
	if (err) {
		elf_end(copy);
		symbolizer->stats.dwarf_decompress_failed++;
		return;
	}
	/* The heap copy goes first, so that both are not held at once. */
	dwarf_info__free(file->dwarf);
	reread = dwarf_info__new(copy, symbolizer->max_dwarf_index_rows);
	if (!reread) {
		/* Unreadable as written: from the compressed file, as before. */
		elf_end(copy);
		symbolizer->stats.dwarf_decompress_failed++;
		file->dwarf = dwarf_info__new(dwarf_elf, symbolizer->max_dwarf_index_rows);
		return;
	}
	file->dwarf = reread;
	file->decompressed = copy;
	file->decompressed_bytes = bytes;
	symbolizer->stats.dwarf_decompressed++;
	symbolizer->stats.dwarf_decompressed_bytes += bytes;
	/* read_units went through all of .debug_info: not to stay resident. */
	dwarf_info__drop_pages(reread);
}

/* The file's DWARF, read on first use; NULL when it has none. */
static struct dwarf_info *file_dwarf(struct symbolizer *symbolizer, struct file_dwarf *file)
{
	struct Elf *dwarf_elf;

	if (file->dwarf) {
		list_move_front(&symbolizer->dwarf_lru, &file->lru);
		return file->dwarf;
	}
	if (file->tried)
		return NULL;
	file->tried = true;
	dwarf_elf = elf_file__dwarf_elf(elf_cache_entry__elf_file(file->entry));
	if (!dwarf_elf)
		return NULL;
	file->dwarf =
		dwarf_info__new(file->decompressed ?: dwarf_elf, symbolizer->max_dwarf_index_rows);
	if (file->dwarf && dwarf_info__decompressed(file->dwarf) && !file->decompressed)
		decompress_once(symbolizer, file, dwarf_elf);
	else if (file->dwarf && file->decompressed)
		/* Reading its units went through all of the copy's .debug_info. */
		dwarf_info__drop_pages(file->dwarf);
	if (!file->dwarf) {
		if (errno != ENOENT)
			symbolizer->stats.dwarf_errors++;
		if (errno == EINVAL)
			elf_cache__add_loss(symbolizer->files, file->entry, ELF_LOSS_DEBUG_INFO);
		return NULL;
	}
	list_push_front(&symbolizer->dwarf_lru, &file->lru);
	symbolizer->dwarf_count++;
	symbolizer->dwarf_memory += dwarf_info__memory(file->dwarf);
	symbolizer->stats.dwarf_files_opened++;
	return file->dwarf;
}

/*
 * The frame of the function containing the address. An exported symbol
 * names it as its callers know it ("malloc", not glibc's "__libc_malloc").
 * Otherwise DWARF does, which names the parts GCC splits off a function
 * ("f.cold", "f.isra.0", "f.constprop.0") after the function itself, so
 * their samples add up in one place; but where DWARF has only a plain name
 * for a local C++ function (GCC gives internal-linkage functions no linkage
 * name: "_M_invoke"), the symbol's demangled name says more, split-off
 * suffix dropped. A local symbol names what DWARF does not cover.
 */
static struct symbolized_frame outer_frame(struct symbolizer *symbolizer, const char *symbol,
					   bool exported, const char *dwarf_name)
{
	struct symbolized_frame frame = {};

	if (symbol && (exported || !dwarf_name))
		return symbol_frame(symbolizer, symbol);
	if (!dwarf_name)
		return frame;
	if (symbol && !demangle__is_mangled(dwarf_name) && demangle__is_mangled(symbol)) {
		frame.function = display_names__unsplit(symbolizer->names, symbol);
		frame.system_name = symbol;
		return frame;
	}
	return symbol_frame(symbolizer, dwarf_name);
}

static void count_close(const struct symbolizer *symbolizer, struct file_dwarf *file)
{
	if (file->closed_in_window != symbolizer->window) {
		file->closed_in_window = symbolizer->window;
		file->closes_in_window = 0;
	}
	file->closes_in_window++;
}

/* Closed for memory too often this window: not to be read again before the next. */
static bool closed_for_window(const struct symbolizer *symbolizer, const struct file_dwarf *file)
{
	return file->closed_in_window == symbolizer->window &&
	       file->closes_in_window >= SYMBOLIZER_DWARF_READS_AFTER_CLOSE;
}

/* Lets go of file's libdw reader: the tables of the units it read stay. */
static void close_reader(struct symbolizer *symbolizer, struct file_dwarf *file)
{
	uint64_t memory = dwarf_info__memory(file->dwarf);

	dwarf_info__close_reader(file->dwarf);
	symbolizer->dwarf_memory -= memory - dwarf_info__memory(file->dwarf);
}

/* Closes the least recently used reader but current's; false when none is open. */
static bool close_oldest_reader(struct symbolizer *symbolizer, const struct file_dwarf *current)
{
	for (struct list_node *node = symbolizer->dwarf_lru.prev; node != &symbolizer->dwarf_lru;
	     node = node->prev) {
		struct file_dwarf *file = container_of(node, struct file_dwarf, lru);

		if (file != current && dwarf_info__reader_open(file->dwarf)) {
			close_reader(symbolizer, file);
			return true;
		}
	}
	return false;
}

/*
 * Closes the least recently used DWARF while more files are open than
 * max_dwarf_files, or while they hold more than max_dwarf_memory (then
 * keeping one at least); never current's, the file being read. For memory,
 * libdw's readers go first: the tables they filled stay, and a reader is
 * opened again only for a unit not read yet. A file closed for memory is
 * not read again before the next window: two files that do not fit
 * together would otherwise be read again in turn, for every address they
 * alternate on.
 */
static void trim_open_dwarf(struct symbolizer *symbolizer, const struct file_dwarf *current)
{
	for (;;) {
		bool too_many = symbolizer->dwarf_count > symbolizer->max_dwarf_files;
		bool too_large = symbolizer->dwarf_memory > symbolizer->max_dwarf_memory &&
				 symbolizer->dwarf_count > 1;
		struct file_dwarf *oldest;

		if (!too_many && !too_large)
			return;
		if (!too_many && close_oldest_reader(symbolizer, current))
			continue;
		oldest = container_of(symbolizer->dwarf_lru.prev, struct file_dwarf, lru);
		if (oldest == current)
			return;
		close_dwarf(symbolizer, oldest);
		if (too_many) {
			symbolizer->stats.dwarf_files_evicted++;
		} else {
			symbolizer->stats.dwarf_memory_evictions++;
			count_close(symbolizer, oldest);
		}
	}
}

/*
 * The window is written: every reader is closed (what the next windows
 * need is in the tables), and DWARF still over the bound goes too, one
 * file alone over it included.
 */
void symbolizer__end_window(struct symbolizer *symbolizer)
{
	for (struct list_node *node = symbolizer->dwarf_lru.next; node != &symbolizer->dwarf_lru;
	     node = node->next)
		close_reader(symbolizer, container_of(node, struct file_dwarf, lru));
	while (symbolizer->dwarf_memory > symbolizer->max_dwarf_memory &&
	       !list_empty(&symbolizer->dwarf_lru)) {
		close_dwarf(symbolizer,
			    container_of(symbolizer->dwarf_lru.prev, struct file_dwarf, lru));
		symbolizer->stats.dwarf_memory_evictions++;
	}
	elf_cache__drop_pages(symbolizer->files);
	symbolizer->window++;
}

/* The DWARF frames at vaddr, within the DWARF budget; 0 when there are none. */
static size_t dwarf_frames(struct symbolizer *symbolizer, struct elf_cache_entry *entry,
			   uint64_t vaddr, struct dwarf_info_frame *frames, bool *ret_deferred)
{
	struct file_dwarf *file = entry_dwarf_state(entry);
	struct dwarf_info *dwarf;
	uint64_t memory;
	size_t count = 0;
	bool was_open;

	if (!file)
		return 0;
	if (closed_for_window(symbolizer, file)) {
		symbolizer->stats.dwarf_lookups_deferred++;
		*ret_deferred = true;
		return 0;
	}
	was_open = file->dwarf != NULL;
	dwarf = file_dwarf(symbolizer, file);
	/* After file_dwarf, which made file the most recently used. */
	trim_open_dwarf(symbolizer, file);
	if (!dwarf)
		return 0;
	/*
	 * Alone over the bound after earlier lookups grew it (line tables and
	 * indexes of the units they read: CPython's, glibc's): closed before
	 * it grows further, and read again at once, small again, unless that
	 * happened too often this window. The strings of those lookups were
	 * the caller's until now. Its reader goes first, its tables kept.
	 */
	if (was_open && symbolizer->dwarf_memory > symbolizer->max_dwarf_memory &&
	    dwarf_info__reader_open(dwarf))
		close_reader(symbolizer, file);
	if (was_open && symbolizer->dwarf_memory > symbolizer->max_dwarf_memory) {
		close_dwarf(symbolizer, file);
		count_close(symbolizer, file);
		symbolizer->stats.dwarf_memory_evictions++;
		if (closed_for_window(symbolizer, file)) {
			symbolizer->stats.dwarf_lookups_deferred++;
			*ret_deferred = true;
			return 0;
		}
		dwarf = file_dwarf(symbolizer, file);
		if (!dwarf)
			return 0;
	}
	memory = dwarf_info__memory(dwarf);
	if (dwarf_info__lookup(dwarf, vaddr, frames, SYMBOLIZER_MAX_FRAMES, &count) == 0)
		symbolizer->stats.dwarf_lookups++;
	/* Damage a lookup came upon (a unit's line table): the cache counts it once per file. */
	for (unsigned int loss = 0; dwarf_info__losses(dwarf) && loss < ELF_LOSS_COUNT; loss++)
		if (dwarf_info__losses(dwarf) & 1U << loss)
			elf_cache__add_loss(symbolizer->files, entry, loss);
	/* A unit read, or the reader opened again: its pages were read through. */
	if (dwarf_info__memory(dwarf) != memory)
		dwarf_info__drop_pages(dwarf);
	symbolizer->dwarf_memory += dwarf_info__memory(dwarf) - memory;
	return count;
}

/* How far past the ELF entry point an address without CFI is taken to be in its code. */
#define ENTRY_CODE_MAX_BYTES 256

/*
 * Whether vaddr is in the code at the file's ELF entry point, which its
 * symbols do not name (a stripped executable, ld.so). By the ABI that code
 * is the program's _start: the outermost frame of every stack, which the
 * unwinder ends there. Its extent is its FDE (crt1's _start has one); with
 * none (ld.so's), the code after it up to the first that CFI covers, so
 * no function of a stripped file is taken for it.
 */
static bool at_entry_point(struct elf_cache_entry *entry, uint64_t vaddr)
{
	Elf *elf = elf_file__elf(elf_cache_entry__elf_file(entry));
	Dwarf_Frame *frame = NULL;
	Dwarf_Addr start, end;
	Dwarf_CFI *cfi;
	GElf_Ehdr ehdr;
	bool at;

	if (!elf || !gelf_getehdr(elf, &ehdr) || !ehdr.e_entry || vaddr < ehdr.e_entry ||
	    vaddr - ehdr.e_entry >= ENTRY_CODE_MAX_BYTES)
		return false;
	cfi = dwarf_getcfi_elf(elf);
	if (!cfi)
		return false;
	if (dwarf_cfi_addrframe(cfi, ehdr.e_entry, &frame) == 0) {
		at = dwarf_frame_info(frame, &start, &end, NULL) >= 0 && vaddr >= start &&
		     vaddr < end;
	} else {
		at = dwarf_cfi_addrframe(cfi, vaddr, &frame) != 0;
	}
	free(frame);
	dwarf_cfi_end(cfi);
	return at;
}

/* Symbol table and DWARF for an ELF virtual address: lines and inlined frames from DWARF. */
static void symbolize_vaddr(struct symbolizer *symbolizer, struct elf_cache_entry *entry,
			    uint64_t vaddr, struct symbolized_location *location)
{
	struct dwarf_info_frame frames[SYMBOLIZER_MAX_FRAMES];
	const char *symbol = NULL;
	bool exported = false;
	size_t count;

	location->frame_count = 0;
	location->deferred = false;
	count = dwarf_frames(symbolizer, entry, vaddr, frames, &location->deferred);
	elf_file__find_symbol(elf_cache_entry__elf_file(entry), vaddr, &symbol, &exported);
	for (size_t i = 0; i < count; i++) {
		const struct dwarf_info_frame *frame = &frames[i];
		struct symbolized_frame *out = &location->frames[i];
		bool outermost = i + 1 == count;

		if (outermost)
			*out = outer_frame(symbolizer, symbol, exported, frame->name);
		else if (frame->name)
			*out = symbol_frame(symbolizer, frame->name);
		else
			/* An inlined call whose DWARF names no function: llvm-symbolizer's "??". */
			*out = (struct symbolized_frame){ .function = "??" };
		out->file = frame->file;
		out->line = frame->line;
		out->start_line = frame->start_line;
	}
	/* Lines without any name are no frame pprof can show. */
	if (count && location->frames[count - 1].function) {
		location->frame_count = count;
		return;
	}
	if (!symbol && at_entry_point(entry, vaddr))
		symbol = "_start";
	if (symbol) {
		location->frames[0] = symbol_frame(symbolizer, symbol);
		location->frame_count = 1;
	}
}

/* Code a JIT wrote into anonymous memory or a memfd, named by the process's perf map. */
static int resolve_jit(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
		       uint64_t target, struct symbolized_location *location)
{
	const char *name;

	if (!perf_maps__may_name(mapping) ||
	    perf_maps__lookup(symbolizer->perf_maps, pid, target, &name) < 0)
		return -ENOENT;
	/* Taken as written: a JIT's names are not versioned ELF symbols. */
	location->frames[0] = (struct symbolized_frame){ .function = name, .system_name = name };
	location->frame_count = 1;
	return 0;
}

int symbolizer__resolve_user(struct symbolizer *symbolizer, int pid,
			     const struct proc_mapping *mapping, uint64_t addr,
			     bool is_return_address, struct symbolized_location *ret_location)
{
	uint64_t target = is_return_address ? addr - 1 : addr, vaddr;
	struct elf_cache_entry *entry;
	int err;

	symbolizer->stats.user_lookups++;
	display_names__reset(symbolizer->names);
	if (target >= mapping->start && target < mapping->end &&
	    resolve_jit(symbolizer, pid, mapping, target, ret_location) == 0)
		return 0;
	/* The vdso has no file to open; its frames keep their address. */
	if (!process_files_is_file_backed(mapping) || target < mapping->start ||
	    target >= mapping->end) {
		symbolizer->stats.user_misses++;
		ret_location->frame_count = 0;
		return 0;
	}
	err = elf_cache__entry(symbolizer->files, pid, mapping, -1, &entry);
	if (err)
		return err;
	if (elf_file__offset_to_vaddr(elf_cache_entry__elf_file(entry),
				      target - mapping->start + mapping->offset, &vaddr) < 0) {
		ret_location->frame_count = 0;
	} else {
		symbolize_vaddr(symbolizer, entry, vaddr, ret_location);
	}
	if (!ret_location->frame_count)
		symbolizer->stats.user_misses++;
	return 0;
}

int symbolizer__build_id(struct symbolizer *symbolizer, int pid, const struct proc_mapping *mapping,
			 const char **ret_build_id)
{
	struct elf_cache_entry *entry;
	int err;

	if (!process_files_is_file_backed(mapping)) {
		*ret_build_id = "";
		return 0;
	}
	err = elf_cache__entry(symbolizer->files, pid, mapping, -1, &entry);
	if (err)
		return err;
	*ret_build_id = elf_file__build_id(elf_cache_entry__elf_file(entry));
	return 0;
}

/* Loads kallsyms on first use; after a failure, tries again once the retry interval passed. */
static int load_ksyms(struct symbolizer *symbolizer, bool reload)
{
	uint64_t now = now_ns();
	struct ksyms *ksyms;

	if (symbolizer->ksyms_tried &&
	    now - symbolizer->ksyms_loaded_at_ns < KALLSYMS_RETRY_INTERVAL_NS)
		return symbolizer->ksyms ? 0 : symbolizer->ksyms_error;
	if (symbolizer->ksyms && !reload)
		return 0;
	if (symbolizer->ksyms)
		symbolizer->stats.kallsyms_reloads++;
	symbolizer->ksyms_tried = true;
	symbolizer->ksyms_loaded_at_ns = now;
	ksyms = ksyms__load(symbolizer->kallsyms_path);
	if (!ksyms) {
		/* A failed reload keeps the table we have. */
		symbolizer->ksyms_error = -errno;
		return symbolizer->ksyms ? 0 : symbolizer->ksyms_error;
	}
	ksyms__free(symbolizer->ksyms);
	symbolizer->ksyms = ksyms;
	return 0;
}

int symbolizer__resolve_kernel(struct symbolizer *symbolizer, uint64_t addr, bool is_return_address,
			       struct symbolized_location *ret_location)
{
	uint64_t target = is_return_address ? addr - 1 : addr;
	struct ksym sym;
	int err;

	symbolizer->stats.kernel_lookups++;
	display_names__reset(symbolizer->names);
	if (!symbolizer->ksyms) {
		err = load_ksyms(symbolizer, false);
		if (err)
			return err;
	}
	err = ksyms__lookup(symbolizer->ksyms, target, &sym);
	/* A module loaded since the last read: reread, at most once per interval. */
	if (err == -ENOENT && load_ksyms(symbolizer, true) == 0)
		err = ksyms__lookup(symbolizer->ksyms, target, &sym);
	if (err) {
		symbolizer->stats.kernel_misses++;
		ret_location->frame_count = 0;
		return 0;
	}
	/* Rust code in the kernel has mangled (v0) names too. */
	ret_location->frames[0] = symbol_frame(symbolizer, sym.name);
	ret_location->frame_count = 1;
	return 0;
}

void symbolizer__forget_process(struct symbolizer *symbolizer, int pid)
{
	perf_maps__forget(symbolizer->perf_maps, pid);
}

/* The cache's counters and its debug search's, under the names the agent reports. */
static void add_file_stats(const struct elf_cache *files, struct symbolizer_stats *stats)
{
	struct elf_cache_stats cache;
	const struct debug_search_stats *search = &cache.debug_files;
	const struct debuginfod_fetcher_stats *fetches = &search->fetches;

	elf_cache__stats(files, &cache);
	stats->elf_files_opened = cache.files_opened;
	stats->elf_files_snapshotted = cache.files_snapshotted;
	stats->elf_files_shared = cache.files_shared;
	stats->elf_files_evicted = cache.files_evicted;
	stats->elf_files_evicted_memory = cache.files_evicted_memory;
	stats->elf_memory = cache.bytes;
	stats->elf_open_errors = cache.open_errors;
	stats->elf_failures_evicted = cache.failures_evicted;
	memcpy(stats->elf_losses, cache.losses, sizeof(stats->elf_losses));
	stats->elf_damaged_unnamed = cache.damaged_unnamed;
	stats->debug_files_build_id = search->build_id;
	stats->debug_files_debuglink = search->debuglink;
	stats->debug_files_minidebuginfo = search->minidebuginfo;
	stats->debug_files_debuginfod = search->debuginfod;
	process_file_refusals__add(&stats->refused_files, &search->refused);
	if (!search->debuginfod_enabled)
		return;
	stats->debuginfod_enabled = true;
	stats->debuginfod_requested = fetches->requested;
	stats->debuginfod_succeeded = fetches->succeeded;
	stats->debuginfod_failed = fetches->failed;
	stats->debuginfod_too_large = fetches->too_large;
	stats->debuginfod_queue_full = fetches->queue_full;
	stats->debuginfod_pending = fetches->pending;
	stats->debuginfod_forgotten = fetches->forgotten;
	stats->debuginfod_last_error = fetches->last_error;
}

void symbolizer__stats(const struct symbolizer *symbolizer, struct symbolizer_stats *ret_stats)
{
	struct dwarf_info_stats dwarf = symbolizer->closed_dwarf_stats, open;
	uint64_t index_rows = 0;

	for (const struct list_node *node = symbolizer->dwarf_lru.next;
	     node != &symbolizer->dwarf_lru; node = node->next) {
		const struct dwarf_info *info = container_of(node, struct file_dwarf, lru)->dwarf;

		dwarf_info__stats(info, &open);
		add_dwarf_stats(&dwarf, &open);
		index_rows += dwarf_info__index_rows(info);
	}
	*ret_stats = symbolizer->stats;
	add_file_stats(symbolizer->files, ret_stats);
	perf_maps__stats(symbolizer->perf_maps, &ret_stats->perf_maps);
	process_file_refusals__add(&ret_stats->refused_files, &ret_stats->perf_maps.refused);
	ret_stats->names_truncated = display_names__truncated(symbolizer->names);
	ret_stats->dwarf_index_rows = index_rows;
	ret_stats->dwarf_memory = symbolizer->dwarf_memory;
	ret_stats->dwarf_index_resets = dwarf.index_resets;
	ret_stats->dwarf_units_not_indexed = dwarf.units_not_indexed;
	ret_stats->inline_chains_truncated = dwarf.chains_truncated;
	ret_stats->dwarf_reader_closes = dwarf.reader_closes;
	ret_stats->dwarf_reader_reopens = dwarf.reader_reopens;
}
