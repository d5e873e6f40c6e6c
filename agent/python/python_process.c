// SPDX-License-Identifier: Apache-2.0
/* CPython processes found in their mappings, described to BPF's frame walker. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/process/process_table.h"
#include "agent/python/python_code.h"
#include "agent/python/python_process.h"
#include "bpf/python.h"
#include "lib/hashmap.h"
#include "lib/log.h"

#define NO PYTHON_NO_OFFSET

/*
 * What BPF reads, per minor version, from CPython's headers of 3.6.15,
 * 3.7.16, 3.8.18, 3.9.18, 3.10.13, 3.11.7, 3.12.1 and 3.13.0 (x86-64):
 * Include/internal/pycore_pystate.h / pycore_runtime.h (_PyRuntimeState),
 * pycore_interp.h (PyInterpreterState), cpython/pystate.h (PyThreadState),
 * frameobject.h / pycore_frame.h (the frames), cpython/code.h.
 * runtime_interp_head: offset of interpreters.head in _PyRuntime (3.7+);
 * 3.6 has no _PyRuntime, its list head is the static interp_head.
 */
struct python_layout {
	unsigned int minor;
	uint16_t runtime_interp_head;
	uint8_t frame_kind;
	uint8_t instr_kind;
	struct python_offsets offsets;
};

static const struct python_layout layouts[] = {
	{ 6,
	  NO,
	  PYTHON_FRAMES_OBJECTS,
	  PYTHON_INSTR_LASTI_BYTES,
	  { .interp_next = 0,
	    .interp_threads = 8,
	    .tstate_next = 8,
	    .tstate_thread_id = 152,
	    .tstate_frame = 24,
	    .cframe_current_frame = NO,
	    .frame_previous = 24,
	    .frame_code = 32,
	    .frame_instr = 120,
	    .frame_owner = NO,
	    .frame_is_entry = NO,
	    .code_adaptive = NO } },
	{ 7,
	  24,
	  PYTHON_FRAMES_OBJECTS,
	  PYTHON_INSTR_LASTI_BYTES,
	  { .interp_next = 0,
	    .interp_threads = 8,
	    .tstate_next = 8,
	    .tstate_thread_id = 176,
	    .tstate_frame = 24,
	    .cframe_current_frame = NO,
	    .frame_previous = 24,
	    .frame_code = 32,
	    .frame_instr = 104,
	    .frame_owner = NO,
	    .frame_is_entry = NO,
	    .code_adaptive = NO } },
	{ 8,
	  32,
	  PYTHON_FRAMES_OBJECTS,
	  PYTHON_INSTR_LASTI_BYTES,
	  { .interp_next = 0,
	    .interp_threads = 8,
	    .tstate_next = 8,
	    .tstate_thread_id = 176,
	    .tstate_frame = 24,
	    .cframe_current_frame = NO,
	    .frame_previous = 24,
	    .frame_code = 32,
	    .frame_instr = 104,
	    .frame_owner = NO,
	    .frame_is_entry = NO,
	    .code_adaptive = NO } },
	{ 9,
	  32,
	  PYTHON_FRAMES_OBJECTS,
	  PYTHON_INSTR_LASTI_BYTES,
	  { .interp_next = 0,
	    .interp_threads = 8,
	    .tstate_next = 8,
	    .tstate_thread_id = 176,
	    .tstate_frame = 24,
	    .cframe_current_frame = NO,
	    .frame_previous = 24,
	    .frame_code = 32,
	    .frame_instr = 104,
	    .frame_owner = NO,
	    .frame_is_entry = NO,
	    .code_adaptive = NO } },
	{ 10,
	  32,
	  PYTHON_FRAMES_OBJECTS,
	  PYTHON_INSTR_LASTI_UNITS,
	  { .interp_next = 0,
	    .interp_threads = 8,
	    .tstate_next = 8,
	    .tstate_thread_id = 176,
	    .tstate_frame = 24,
	    .cframe_current_frame = NO,
	    .frame_previous = 24,
	    .frame_code = 32,
	    .frame_instr = 96,
	    .frame_owner = NO,
	    .frame_is_entry = NO,
	    .code_adaptive = NO } },
	{ 11,
	  40,
	  PYTHON_FRAMES_IS_ENTRY,
	  PYTHON_INSTR_POINTER,
	  { .interp_next = 0,
	    .interp_threads = 16,
	    .tstate_next = 8,
	    .tstate_thread_id = 152,
	    .tstate_frame = 56,
	    .cframe_current_frame = 8,
	    .frame_previous = 48,
	    .frame_code = 32,
	    .frame_instr = 56,
	    .frame_owner = 69,
	    .frame_is_entry = 68,
	    .code_adaptive = 184 } },
	{ 12,
	  40,
	  PYTHON_FRAMES_CSTACK,
	  PYTHON_INSTR_POINTER,
	  { .interp_next = 0,
	    .interp_threads = 72,
	    .tstate_next = 8,
	    .tstate_thread_id = 136,
	    .tstate_frame = 56,
	    .cframe_current_frame = 0,
	    .frame_previous = 8,
	    .frame_code = 0,
	    .frame_instr = 56,
	    .frame_owner = 70,
	    .frame_is_entry = NO,
	    .code_adaptive = 192 } },
	{ 13,
	  632,
	  PYTHON_FRAMES_CSTACK,
	  PYTHON_INSTR_POINTER,
	  { .interp_next = 7264,
	    .interp_threads = 7344,
	    .tstate_next = 8,
	    .tstate_thread_id = 152,
	    .tstate_frame = 72,
	    .cframe_current_frame = NO,
	    .frame_previous = 8,
	    .frame_code = 0,
	    .frame_instr = 56,
	    .frame_owner = 70,
	    .frame_is_entry = NO,
	    .code_adaptive = 200 } },
};

/* _Py_DebugOffsets (3.13), at _PyRuntime's start: where its fields are. */
#define DEBUG_COOKIE "xdebugpy"
#define DEBUG_VERSION 8
#define DEBUG_INTERPRETERS_HEAD 40
#define DEBUG_INTERP_NEXT 64
#define DEBUG_INTERP_THREADS 72
#define DEBUG_TSTATE_NEXT 168
#define DEBUG_TSTATE_CURRENT_FRAME 184
#define DEBUG_TSTATE_THREAD_ID 192
#define DEBUG_FRAME_PREVIOUS 232
#define DEBUG_FRAME_EXECUTABLE 240
#define DEBUG_FRAME_INSTR_PTR 248
#define DEBUG_FRAME_OWNER 264
#define DEBUG_CODE_ADAPTIVE 344
#define DEBUG_READ 352

struct python_processes {
	int map_fd;
	struct python_code_cache *code;
	struct hashmap *minors; /* pid -> minor, for the processes in the map */
	struct python_processes_stats stats;
};

/* The symbols a CPython file is read for; value 0: absent. */
struct python_symbols {
	uint64_t runtime; /* _PyRuntime (3.7+) */
	uint64_t interp_head; /* interp_head (3.6, .symtab only) */
	uint64_t eval, eval_size;
	uint64_t cold, cold_size; /* _PyEval_EvalFrameDefault.cold (.symtab only) */
	uint64_t version; /* Py_Version (3.11+) */
};

/* 3.X from a file name: python3.X, python3.Xm, libpython3.X.so..., libpython3.Xm.so...; 0 if none. */
static unsigned int minor_from_name(const char *path)
{
	const char *base = strrchr(path, '/');
	unsigned int minor;
	int end = 0;

	base = base ? base + 1 : path;
	if (!strncmp(base, "lib", 3))
		base += 3;
	if (sscanf(base, "python3.%u%n", &minor, &end) != 1 || !end)
		return 0;
	base += end;
	if (*base == 'm' || *base == 'd')
		base++;
	if (*base && strncmp(base, ".so", 3))
		return 0;
	return minor;
}

static const struct python_layout *find_layout(unsigned int minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

static void note_symbol(struct python_symbols *symbols, const char *name, const GElf_Sym *sym)
{
	if (sym->st_shndx == SHN_UNDEF || !sym->st_value)
		return;
	if (!strcmp(name, "_PyRuntime"))
		symbols->runtime = sym->st_value;
	else if (!strcmp(name, "interp_head"))
		symbols->interp_head = sym->st_value;
	else if (!strcmp(name, "_PyEval_EvalFrameDefault")) {
		symbols->eval = sym->st_value;
		symbols->eval_size = sym->st_size;
	} else if (!strcmp(name, "_PyEval_EvalFrameDefault.cold")) {
		symbols->cold = sym->st_value;
		symbols->cold_size = sym->st_size;
	} else if (!strcmp(name, "Py_Version"))
		symbols->version = sym->st_value;
}

/* Reads the symbols of both tables; the load bias of the mapping at map_start, map_offset. */
static int read_symbols(Elf *elf, uint64_t map_start, uint64_t map_offset,
			struct python_symbols *ret_symbols, uint64_t *ret_bias)
{
	struct python_symbols symbols = {};
	Elf_Scn *scn = NULL;
	size_t phnum;
	bool placed = false;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &shdr) ||
		    (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM) || !shdr.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(data, (int)i, &sym))
				break;
			name = elf_strptr(elf, shdr.sh_link, sym.st_name);
			if (name)
				note_symbol(&symbols, name, &sym);
		}
	}
	if (!symbols.eval || elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != PT_LOAD ||
		    map_offset < phdr.p_offset || map_offset >= phdr.p_offset + phdr.p_filesz)
			continue;
		*ret_bias = map_start - (phdr.p_vaddr + (map_offset - phdr.p_offset));
		placed = true;
		break;
	}
	if (!placed)
		return -ENOENT;
	*ret_symbols = symbols;
	return 0;
}

static int read_memory(uint32_t pid, uint64_t address, void *buffer, size_t size)
{
	struct iovec local = { .iov_base = buffer, .iov_len = size };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)address, .iov_len = size };
	ssize_t got = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);

	if (got < 0)
		return -errno;
	return (size_t)got == size ? 0 : -EIO;
}

static uint64_t debug_field(const uint8_t *debug, size_t offset)
{
	uint64_t value;

	memcpy(&value, debug + offset, sizeof(value));
	return value;
}

/*
 * 3.13+: the offsets CPython publishes for debuggers at _PyRuntime's start
 * replace the table's, where they differ (a patch release moved a field).
 */
static void apply_debug_offsets(struct python_processes *processes, uint32_t pid, uint64_t runtime,
				struct python_process *entry, uint16_t *runtime_interp_head)
{
	struct python_offsets *offsets = &entry->offsets;
	uint8_t debug[DEBUG_READ];
	struct python_offsets seen;
	uint64_t head;

	if (read_memory(pid, runtime, debug, sizeof(debug)) || memcmp(debug, DEBUG_COOKIE, 8) ||
	    ((debug_field(debug, DEBUG_VERSION) >> 16) & 0xff) != entry->minor)
		return;
	seen = *offsets;
	head = debug_field(debug, DEBUG_INTERPRETERS_HEAD);
	seen.interp_next = (uint16_t)debug_field(debug, DEBUG_INTERP_NEXT);
	seen.interp_threads = (uint16_t)debug_field(debug, DEBUG_INTERP_THREADS);
	seen.tstate_next = (uint16_t)debug_field(debug, DEBUG_TSTATE_NEXT);
	seen.tstate_frame = (uint16_t)debug_field(debug, DEBUG_TSTATE_CURRENT_FRAME);
	seen.tstate_thread_id = (uint16_t)debug_field(debug, DEBUG_TSTATE_THREAD_ID);
	seen.frame_previous = (uint16_t)debug_field(debug, DEBUG_FRAME_PREVIOUS);
	seen.frame_code = (uint16_t)debug_field(debug, DEBUG_FRAME_EXECUTABLE);
	seen.frame_instr = (uint16_t)debug_field(debug, DEBUG_FRAME_INSTR_PTR);
	seen.frame_owner = (uint16_t)debug_field(debug, DEBUG_FRAME_OWNER);
	seen.code_adaptive = (uint16_t)debug_field(debug, DEBUG_CODE_ADAPTIVE);
	if (head > UINT16_MAX || seen.frame_previous > PYTHON_FRAME_READ_MAX - 8 ||
	    seen.frame_code > PYTHON_FRAME_READ_MAX - 8 ||
	    seen.frame_instr > PYTHON_FRAME_READ_MAX - 8 ||
	    seen.frame_owner > PYTHON_FRAME_READ_MAX - 1)
		return;
	if (!memcmp(&seen, offsets, sizeof(seen)) && head == *runtime_interp_head)
		return;
	processes->stats.layout_mismatch++;
	log_warn("pid %u: CPython 3.%u's _Py_DebugOffsets differ from kiln's table: using them",
		 pid, entry->minor);
	*offsets = seen;
	*runtime_interp_head = (uint16_t)head;
}

/* Bytes of a frame BPF reads: up to the end of its last field, 8 at a time. */
static uint16_t frame_read_size(const struct python_offsets *offsets)
{
	uint16_t end = 0,
		 fields[] = { offsets->frame_previous, offsets->frame_code, offsets->frame_instr,
			      offsets->frame_owner, offsets->frame_is_entry };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] != NO && fields[i] + 8 > end)
			end = fields[i] + 8;
	return end;
}

/* The entry for pid's CPython in the file at fd, mapped executable at mapping. */
static int describe(struct python_processes *processes, uint32_t pid, int fd,
		    const struct proc_mapping *mapping, unsigned int minor,
		    struct python_process *ret_entry)
{
	struct python_process entry = {};
	const struct python_layout *layout;
	struct python_symbols symbols;
	uint16_t runtime_interp_head;
	uint64_t bias = 0, version = 0;
	Elf *elf;
	int err;

	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -EINVAL;
	err = read_symbols(elf, mapping->start, mapping->offset, &symbols, &bias);
	elf_end(elf);
	if (err)
		return err;
	/* The version the running interpreter says it is, where it says (3.11+). */
	if (symbols.version && !read_memory(pid, symbols.version + bias, &version, 4) &&
	    (version >> 24) == 3)
		minor = (version >> 16) & 0xff;
	layout = find_layout(minor);
	if (!layout)
		return -EPROTONOSUPPORT;
	entry.minor = minor;
	entry.frame_kind = layout->frame_kind;
	entry.instr_kind = layout->instr_kind;
	entry.offsets = layout->offsets;
	runtime_interp_head = layout->runtime_interp_head;
	if (symbols.runtime && minor >= 13)
		apply_debug_offsets(processes, pid, symbols.runtime + bias, &entry,
				    &runtime_interp_head);
	if (runtime_interp_head != NO && symbols.runtime)
		entry.interp_head = symbols.runtime + bias + runtime_interp_head;
	else if (runtime_interp_head == NO && symbols.interp_head)
		entry.interp_head = symbols.interp_head + bias;
	else
		return -ENOENT;
	entry.eval_start = symbols.eval + bias;
	entry.eval_end = entry.eval_start + (symbols.eval_size ? symbols.eval_size : 1);
	if (symbols.cold) {
		entry.cold_start = symbols.cold + bias;
		entry.cold_end = entry.cold_start + (symbols.cold_size ? symbols.cold_size : 1);
	}
	entry.offsets.frame_read = frame_read_size(&entry.offsets);
	*ret_entry = entry;
	return 0;
}

/* The file of mapping i: the descriptor the capture held, else its path in the process's root. */
static int open_mapping(const struct process_change *change, size_t i, bool *ret_owned)
{
	char path[4096];

	*ret_owned = false;
	if (change->fds && change->fds[i] >= 0)
		return change->fds[i];
	if ((size_t)snprintf(path, sizeof(path), "/proc/%u/root%s", change->pid,
			     change->maps->mappings[i].path) >= sizeof(path))
		return -1;
	*ret_owned = true;
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * The mapping CPython's evaluator is in: a libpython3.X.so if mapped (the
 * executable is then a stub), else a python3.X executable. -1 if none.
 */
static ssize_t find_python_mapping(const struct proc_maps *maps, unsigned int *ret_minor)
{
	ssize_t found = -1;

	for (size_t i = 0; i < maps->count; i++) {
		const char *path = maps->mappings[i].path;
		const char *base = strrchr(path, '/');
		unsigned int minor = minor_from_name(path);

		if (!minor || !(maps->mappings[i].perms & PROC_MAP_EXEC))
			continue;
		base = base ? base + 1 : path;
		if (!strncmp(base, "libpython", 9)) {
			*ret_minor = minor;
			return (ssize_t)i;
		}
		if (found < 0) {
			found = (ssize_t)i;
			*ret_minor = minor;
		}
	}
	return found;
}

static void forget(struct python_processes *processes, uint32_t pid)
{
	if (hashmap__delete(processes->minors, pid, NULL, NULL))
		(void)bpf_map_delete_elem(processes->map_fd, &pid);
	if (processes->code)
		python_code_cache__forget_process(processes->code, pid);
}

static void on_mappings_changed(void *ctx, const struct process_change *change)
{
	struct python_processes *processes = ctx;
	struct python_process entry;
	unsigned int minor = 0;
	bool owned;
	ssize_t i;
	int fd, err;

	if (!change->alive)
		return;
	i = find_python_mapping(change->maps, &minor);
	if (i < 0)
		return;
	fd = open_mapping(change, (size_t)i, &owned);
	if (fd < 0) {
		processes->stats.unreadable++;
		return;
	}
	err = describe(processes, change->pid, fd, &change->maps->mappings[i], minor, &entry);
	if (owned)
		close(fd);
	if (err == -EPROTONOSUPPORT) {
		processes->stats.unsupported++;
		log_debug("pid %u: CPython 3.%u: no layout known, no Python frames", change->pid,
			  minor);
		return;
	}
	if (err) {
		processes->stats.unreadable++;
		log_debug("pid %u: reading CPython in %s: %s, no Python frames", change->pid,
			  change->maps->mappings[i].path, strerror(-err));
		return;
	}
	if (bpf_map_update_elem(processes->map_fd, &change->pid, &entry, BPF_ANY)) {
		processes->stats.map_full++;
		log_warn("pid %u: CPython 3.%u: %s, no Python frames", change->pid, entry.minor,
			 strerror(errno));
		return;
	}
	log_debug("pid %u: CPython 3.%u in %s: Python frames read", change->pid, entry.minor,
		  change->maps->mappings[i].path);
	if (!hashmap__find(processes->minors, change->pid, NULL))
		processes->stats.found++;
	if (hashmap__set(processes->minors, change->pid, (void *)(uintptr_t)entry.minor, NULL,
			 NULL)) {
		(void)bpf_map_delete_elem(processes->map_fd, &change->pid);
		processes->stats.map_full++;
	}
}

static void on_removed(void *ctx, uint32_t pid)
{
	forget(ctx, pid);
}

struct python_processes *python_processes__new(int map_fd, struct python_code_cache *code)
{
	struct python_processes *processes = calloc(1, sizeof(*processes));

	if (!processes)
		return NULL;
	elf_version(EV_CURRENT);
	processes->map_fd = map_fd;
	processes->code = code;
	processes->minors = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!processes->minors) {
		free(processes);
		errno = ENOMEM;
		return NULL;
	}
	return processes;
}

void python_processes__free(struct python_processes *processes)
{
	if (!processes)
		return;
	hashmap__free(processes->minors);
	free(processes);
}

void python_processes__process_listener(struct python_processes *processes,
					struct process_listener *ret_listener)
{
	*ret_listener = (struct process_listener){
		.on_mappings_changed = on_mappings_changed,
		.on_removed = on_removed,
		.ctx = processes,
	};
}

bool python_processes__minor(const struct python_processes *processes, uint32_t pid,
			     unsigned int *ret_minor)
{
	void *value;

	if (!processes || !hashmap__find(processes->minors, pid, &value))
		return false;
	*ret_minor = (unsigned int)(uintptr_t)value;
	return true;
}

void python_processes__stats(const struct python_processes *processes,
			     struct python_processes_stats *ret_stats)
{
	*ret_stats = processes->stats;
}
