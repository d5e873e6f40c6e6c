// SPDX-License-Identifier: Apache-2.0
/* CPython code objects read from a process: names, file and line of a Python frame. */
#include "agent/python/python_code.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/hashmap.h"
#include "lib/list.h"

#define DEFAULT_MAX_BYTES (8u << 20)
/* Code points of a name or file name: identifiers are short, paths under PATH_MAX. */
#define MAX_STRING_CHARS 1024u
/* A line table's bytes: a function of thousands of lines takes a few KiB. */
#define MAX_LINE_TABLE_BYTES (64u << 10)
/* What a table entry costs beyond its own struct: the hash map's node and bucket. */
#define HASHMAP_OVERHEAD 48u

/*
 * Facts from CPython's headers, the same in 3.6 to 3.13 on 64-bit builds
 * (not the free-threaded 3.13t nor Py_TRACE_REFS builds): PyObject's
 * ob_type, PyVarObject's ob_size, PyTypeObject's tp_name and tp_flags,
 * PyBytesObject's ob_sval, PyASCIIObject's length and state.
 */
#define OBJECT_TYPE 8u
#define VAR_OBJECT_SIZE 16u
#define TYPE_NAME 24u
#define TYPE_FLAGS 168u
#define BYTES_DATA 32u
#define STR_LENGTH 16u
#define STR_STATE 32u
/* tp_flags of str and bytes and their subclasses (Include/object.h). */
#define TPFLAGS_BYTES_SUBCLASS (1ul << 27)
#define TPFLAGS_UNICODE_SUBCLASS (1ul << 28)
/* PyASCIIObject.state bit fields, as gcc lays them out on x86-64: interned:2, kind:3, compact:1, ascii:1. */
#define STR_STATE_KIND(state) (((state) >> 2) & 7u)
#define STR_STATE_COMPACT 0x20u
#define STR_STATE_ASCII 0x40u

enum line_format {
	LINE_FORMAT_LNOTAB, /* 3.6-3.9 co_lnotab: (byte offset delta, signed line delta) pairs */
	LINE_FORMAT_PEP626, /* 3.10 co_linetable: (byte range length, signed line delta or -128) */
	LINE_FORMAT_LOCATIONS, /* 3.11+ co_linetable: Objects/locations.md, in code units */
};

/*
 * Offsets in PyCodeObject (Include/code.h to 3.10, Include/cpython/code.h
 * from 3.11) and the sizes of PyASCIIObject and PyCompactUnicodeObject
 * (3.12 dropped their wstr pointers), per minor version.
 */
struct code_layout {
	uint16_t first_line; /* int co_firstlineno */
	uint16_t filename;
	uint16_t name;
	uint16_t qualname; /* 0: none before 3.11 */
	uint16_t line_table; /* co_lnotab, else co_linetable */
	uint16_t str_ascii_size; /* data of a compact ASCII str follows */
	uint16_t str_compact_size; /* data of another compact str follows */
	enum line_format line_format;
};

static const struct code_layout layouts[] = {
	[6] = { 36, 96, 104, 0, 112, 48, 72, LINE_FORMAT_LNOTAB },
	[7] = { 36, 96, 104, 0, 112, 48, 72, LINE_FORMAT_LNOTAB },
	[8] = { 40, 104, 112, 0, 120, 48, 72, LINE_FORMAT_LNOTAB },
	[9] = { 40, 104, 112, 0, 120, 48, 72, LINE_FORMAT_LNOTAB },
	[10] = { 40, 104, 112, 0, 120, 48, 72, LINE_FORMAT_PEP626 },
	[11] = { 72, 112, 120, 128, 136, 48, 72, LINE_FORMAT_LOCATIONS },
	[12] = { 68, 112, 120, 128, 136, 40, 56, LINE_FORMAT_LOCATIONS },
	[13] = { 68, 112, 120, 128, 136, 40, 56, LINE_FORMAT_LOCATIONS },
};
/* The code object's bytes read on each resolution: ob_type to co_linetable. */
#define CODE_HEADER_MAX 144u
_Static_assert(136 + 8 <= CODE_HEADER_MAX, "co_linetable of 3.11+ fits the header read");

static const struct code_layout *layout_of(unsigned minor)
{
	if (minor >= sizeof(layouts) / sizeof(layouts[0]) || !layouts[minor].name)
		return NULL;
	return &layouts[minor];
}

/* What identifies the code object at an address: when any changes, it is another one. */
struct code_fields {
	uint64_t type, filename, name, qualname, line_table;
	int32_t first_line;
};

enum python_type {
	PYTHON_TYPE_CODE,
	PYTHON_TYPE_STR,
	PYTHON_TYPE_BYTES,
	PYTHON_TYPE__COUNT,
};

/* A process's type objects, learned from the first object of each type read and checked. */
struct python_process {
	pid_t pid;
	uint64_t types[PYTHON_TYPE__COUNT];
	struct list_node entries; /* its code_entry.process_node */
};

struct code_key {
	uint64_t address;
	pid_t pid;
};

struct code_entry {
	struct code_key key;
	struct list_node lru; /* in cache->lru, most recently used first */
	struct list_node process_node;
	struct python_process *process;
	unsigned minor;
	struct code_fields fields;
	char *function;
	char *file;
	uint8_t *line_table;
	uint32_t line_table_len;
	size_t bytes;
	uint64_t checked_window; /* the window it was last checked in (0: none) */
};

struct python_code_cache {
	struct hashmap *entries; /* struct code_key * -> struct code_entry * */
	struct hashmap *processes; /* pid -> struct python_process * */
	struct list_node lru;
	size_t max_bytes;
	uint64_t window; /* 0: check every hit; else entries are checked once per window */
	struct python_code_stats stats;
};

static size_t code_key_hash(uintptr_t key, void *ctx)
{
	const struct code_key *k = (const struct code_key *)key;

	(void)ctx;
	return hash_mix(hash_mix(HASH_SEED, k->address), (uint64_t)k->pid);
}

static bool code_key_equal(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct code_key *x = (const struct code_key *)a, *y = (const struct code_key *)b;

	(void)ctx;
	return x->address == y->address && x->pid == y->pid;
}

struct python_code_cache *python_code_cache__new(size_t max_bytes)
{
	struct python_code_cache *cache = calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	cache->entries = hashmap__new(code_key_hash, code_key_equal, NULL);
	cache->processes = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!cache->entries || !cache->processes) {
		python_code_cache__free(cache);
		errno = ENOMEM;
		return NULL;
	}
	list_init(&cache->lru);
	cache->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
	return cache;
}

static void entry_free(struct code_entry *entry)
{
	if (!entry)
		return;
	free(entry->function);
	free(entry->file);
	free(entry->line_table);
	free(entry);
}

/* Unlinks entry from the cache's tables and frees it. */
static void entry_drop(struct python_code_cache *cache, struct code_entry *entry)
{
	hashmap__delete(cache->entries, (uintptr_t)&entry->key, NULL, NULL);
	list_remove(&entry->lru);
	list_remove(&entry->process_node);
	cache->stats.bytes -= entry->bytes;
	cache->stats.entries--;
	entry_free(entry);
}

static void process_drop(struct python_code_cache *cache, struct python_process *process)
{
	while (!list_empty(&process->entries))
		entry_drop(cache,
			   container_of(process->entries.next, struct code_entry, process_node));
	hashmap__delete(cache->processes, (uintptr_t)process->pid, NULL, NULL);
	cache->stats.bytes -= sizeof(*process) + HASHMAP_OVERHEAD;
	cache->stats.processes--;
	free(process);
}

void python_code_cache__free(struct python_code_cache *cache)
{
	struct hashmap_iter it = HASHMAP_ITER_INIT;
	uintptr_t key;
	void *value;

	if (!cache)
		return;
	if (cache->processes)
		while (hashmap__next(cache->processes, &it, &key, &value))
			process_drop(cache, value);
	hashmap__free(cache->entries);
	hashmap__free(cache->processes);
	free(cache);
}

void python_code_cache__begin_window(struct python_code_cache *cache)
{
	cache->window++;
}

void python_code_cache__forget_process(struct python_code_cache *cache, pid_t pid)
{
	void *process;

	if (hashmap__find(cache->processes, (uintptr_t)pid, &process))
		process_drop(cache, process);
}

static int process_get(struct python_code_cache *cache, pid_t pid,
		       struct python_process **ret_process)
{
	struct python_process *process;
	void *found;

	if (hashmap__find(cache->processes, (uintptr_t)pid, &found)) {
		*ret_process = found;
		return 0;
	}
	process = calloc(1, sizeof(*process));
	if (!process)
		return -ENOMEM;
	process->pid = pid;
	list_init(&process->entries);
	if (hashmap__set(cache->processes, (uintptr_t)pid, process, NULL, NULL) < 0) {
		free(process);
		return -ENOMEM;
	}
	cache->stats.bytes += sizeof(*process) + HASHMAP_OVERHEAD;
	cache->stats.processes++;
	*ret_process = process;
	return 0;
}

/* Reads len bytes at addr in pid: 0, -ESRCH (gone), -EFAULT (unmapped, or a short read), -EPERM. */
static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (!addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return errno == ESRCH || errno == EPERM ? -errno : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

static uint64_t load_u64(const uint8_t *buf, size_t offset)
{
	uint64_t value;

	memcpy(&value, buf + offset, sizeof(value));
	return value;
}

/*
 * Whether type_addr is pid's type object of the kind asked: the one seen
 * before, or, the first time, a type named so (with the flag str and bytes
 * types carry), then remembered. -EINVAL if not, or a read's error.
 */
static int check_type(struct python_process *process, enum python_type kind, uint64_t type_addr)
{
	static const char *const names[] = { "code", "str", "bytes" };
	static const uint64_t flags[] = { 0, TPFLAGS_UNICODE_SUBCLASS, TPFLAGS_BYTES_SUBCLASS };
	uint8_t type[TYPE_FLAGS + 8];
	char name[8] = { 0 };
	int err;

	if (process->types[kind])
		return process->types[kind] == type_addr ? 0 : -EINVAL;
	err = read_remote(process->pid, type_addr, type, sizeof(type));
	if (!err)
		err = read_remote(process->pid, load_u64(type, TYPE_NAME), name, sizeof(name) - 1);
	if (err)
		return err == -EFAULT ? -EINVAL : err;
	if (strcmp(name, names[kind]) != 0 ||
	    (load_u64(type, TYPE_FLAGS) & flags[kind]) != flags[kind])
		return -EINVAL;
	process->types[kind] = type_addr;
	return 0;
}

/* Reads the code object's identifying fields: ob_type to co_linetable. */
static int read_code_fields(pid_t pid, const struct code_layout *layout, uint64_t addr,
			    struct code_fields *ret_fields)
{
	uint8_t header[CODE_HEADER_MAX];
	size_t len = layout->line_table + 8u;
	int32_t first_line;
	int err;

	err = read_remote(pid, addr, header, len);
	if (err)
		return err;
	memcpy(&first_line, header + layout->first_line, sizeof(first_line));
	*ret_fields = (struct code_fields){
		.type = load_u64(header, OBJECT_TYPE),
		.filename = load_u64(header, layout->filename),
		.name = load_u64(header, layout->name),
		.qualname = layout->qualname ? load_u64(header, layout->qualname) : 0,
		.line_table = load_u64(header, layout->line_table),
		.first_line = first_line,
	};
	return 0;
}

/* Appends code point c as UTF-8; surrogates (file names' undecodable bytes) as U+FFFD. */
static size_t put_utf8(char *out, uint32_t c)
{
	if (c >= 0xd800 && c <= 0xdfff)
		c = 0xfffd;
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Code points of kind bytes each (1: latin-1, 2: UCS-2, 4: UCS-4) to UTF-8. -EBADMSG if invalid. */
static int decode_str(const uint8_t *data, size_t length, unsigned kind, bool ascii,
		      char **ret_text)
{
	char *text = malloc(length * 4 + 1), *out = text;

	if (!text)
		return -ENOMEM;
	for (size_t i = 0; i < length; i++) {
		uint32_t c = 0;

		memcpy(&c, data + i * kind, kind); /* little-endian */
		if ((ascii && c >= 0x80) || c > 0x10ffff) {
			free(text);
			return -EBADMSG;
		}
		out += put_utf8(out, c);
	}
	*out = '\0';
	*ret_text = text;
	return 0;
}

/* Reads the str at addr as UTF-8: a compact str of at most MAX_STRING_CHARS. */
static int read_str(struct python_process *process, const struct code_layout *layout, uint64_t addr,
		    char **ret_text)
{
	uint8_t header[64], data[MAX_STRING_CHARS * 4];
	uint64_t length;
	unsigned state, kind;
	bool ascii;
	int err;

	err = read_remote(process->pid, addr, header, layout->str_ascii_size);
	if (err)
		return err == -EFAULT ? -EBADMSG : err;
	err = check_type(process, PYTHON_TYPE_STR, load_u64(header, OBJECT_TYPE));
	if (err)
		return err == -EINVAL ? -EBADMSG : err;
	length = load_u64(header, STR_LENGTH);
	state = header[STR_STATE];
	kind = STR_STATE_KIND(state);
	ascii = state & STR_STATE_ASCII;
	if (!(state & STR_STATE_COMPACT) || length > MAX_STRING_CHARS ||
	    (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1))
		return -EBADMSG;
	err = read_remote(process->pid,
			  addr + (ascii ? layout->str_ascii_size : layout->str_compact_size), data,
			  length * kind);
	if (err)
		return err == -EFAULT ? -EBADMSG : err;
	return decode_str(data, length, kind, ascii, ret_text);
}

/* Reads the bytes object at addr: at most MAX_LINE_TABLE_BYTES. */
static int read_bytes(struct python_process *process, uint64_t addr, uint8_t **ret_data,
		      uint32_t *ret_len)
{
	uint8_t header[BYTES_DATA];
	uint8_t *data;
	int64_t size;
	int err;

	err = read_remote(process->pid, addr, header, sizeof(header));
	if (err)
		return err == -EFAULT ? -EILSEQ : err;
	err = check_type(process, PYTHON_TYPE_BYTES, load_u64(header, OBJECT_TYPE));
	if (err)
		return err == -EINVAL ? -EILSEQ : err;
	size = (int64_t)load_u64(header, VAR_OBJECT_SIZE);
	if (size < 0 || size > MAX_LINE_TABLE_BYTES)
		return -EILSEQ;
	data = malloc(size ? (size_t)size : 1);
	if (!data)
		return -ENOMEM;
	err = read_remote(process->pid, addr + BYTES_DATA, data, (size_t)size);
	if (err && size) {
		free(data);
		return err == -EFAULT ? -EILSEQ : err;
	}
	*ret_data = data;
	*ret_len = (uint32_t)size;
	return 0;
}

/*
 * 3.6-3.9 (Objects/lnotab_notes.txt): pairs of an unsigned byte-offset
 * increment and a signed line increment; the line of byte offset addr is
 * the first line plus the line increments of every pair whose offset is at
 * most addr. Returns the line; 0 for none.
 */
static int64_t lnotab_line(const uint8_t *table, uint32_t len, int64_t line, uint64_t addr)
{
	uint64_t offset = 0;

	for (uint32_t i = 0; i + 1 < len; i += 2) {
		offset += table[i];
		if (offset > addr)
			break;
		line += (int8_t)table[i + 1];
	}
	return line;
}

/*
 * 3.10 (PEP 626, Objects/lnotab_notes.txt of 3.10): pairs of an unsigned
 * range length in bytes and a signed line delta, -128 for a range with no
 * line; the line is the one of the first non-empty range holding addr.
 */
static int64_t pep626_line(const uint8_t *table, uint32_t len, int64_t line, uint64_t addr)
{
	uint64_t end = 0;

	for (uint32_t i = 0; i + 1 < len; i += 2) {
		int8_t delta = (int8_t)table[i + 1];
		bool no_line = delta == -128;

		end += table[i];
		if (!no_line)
			line += delta;
		if (end > addr)
			return no_line ? 0 : line;
	}
	return 0;
}

/* A varint of 6-bit chunks, least significant first, bit 6 set while more follow. */
static int read_varint(const uint8_t *table, uint32_t len, uint32_t *pos, uint64_t *ret_value)
{
	uint64_t value = 0;

	for (unsigned shift = 0; *pos < len && shift < 36; shift += 6) {
		uint8_t byte = table[(*pos)++];

		value |= (uint64_t)(byte & 0x3f) << shift;
		if (!(byte & 0x40)) {
			*ret_value = value;
			return 0;
		}
	}
	return -EILSEQ;
}

static int read_signed_varint(const uint8_t *table, uint32_t len, uint32_t *pos, int64_t *ret_value)
{
	uint64_t value;
	int err = read_varint(table, len, pos, &value);

	if (err)
		return err;
	*ret_value = value & 1 ? -(int64_t)(value >> 1) : (int64_t)(value >> 1);
	return 0;
}

/*
 * 3.11+ (Objects/locations.md): entries whose first byte has bit 7 set,
 * a 4-bit code in bits 3-6 and the entry's length in code units minus one
 * in bits 0-2. Codes: 15 no location; 14 long form (signed varint line
 * delta, then end line, column, end column as varints); 13 no columns
 * (signed varint line delta); 10-12 one-line form, line delta code - 10,
 * then two column bytes; 0-9 short form, same line, one column byte.
 * Returns 0 with the line of code unit index (0 for none), or -EILSEQ.
 */
static int locations_line(const uint8_t *table, uint32_t len, int64_t line, uint64_t index,
			  int64_t *ret_line)
{
	uint64_t end = 0;
	uint32_t pos = 0;

	while (pos < len) {
		uint8_t first = table[pos++];
		unsigned code = first >> 3 & 15;
		int64_t delta = 0;
		uint64_t skip;
		int err = 0;

		if (!(first & 0x80))
			return -EILSEQ;
		end += (first & 7u) + 1;
		if (code == 14 || code == 13)
			err = read_signed_varint(table, len, &pos, &delta);
		else if (code >= 10 && code <= 12)
			delta = code - 10;
		if (err)
			return err;
		line += delta;
		if (end > index) {
			*ret_line = code == 15 ? 0 : line;
			return 0;
		}
		/* Skip the columns: whatever follows up to the next entry's first byte. */
		if (code == 14)
			for (int i = 0; i < 3 && !err; i++)
				err = read_varint(table, len, &pos, &skip);
		else if (code != 15 && code != 13)
			pos += code >= 10 ? 2 : 1;
		if (err)
			return err;
	}
	*ret_line = 0;
	return 0;
}

/* The line of instruction instr_index in entry's code object: 0 if none, -EILSEQ if malformed. */
static int entry_line(const struct code_entry *entry, uint32_t instr_index, uint32_t *ret_line)
{
	const struct code_layout *layout = layout_of(entry->minor);
	int64_t line = entry->fields.first_line;
	int err = 0;

	switch (layout->line_format) {
	case LINE_FORMAT_LNOTAB:
		line = lnotab_line(entry->line_table, entry->line_table_len, line,
				   (uint64_t)instr_index * 2);
		break;
	case LINE_FORMAT_PEP626:
		line = pep626_line(entry->line_table, entry->line_table_len, line,
				   (uint64_t)instr_index * 2);
		break;
	case LINE_FORMAT_LOCATIONS:
		err = locations_line(entry->line_table, entry->line_table_len, line, instr_index,
				     &line);
		break;
	}
	if (err)
		return err;
	*ret_line = line > 0 && line <= INT32_MAX ? (uint32_t)line : 0;
	return 0;
}

/* Reads the code object's names and line table into a new entry. */
static int entry_read(struct python_process *process, unsigned minor, uint64_t addr,
		      const struct code_fields *fields, struct code_entry **ret_entry)
{
	const struct code_layout *layout = layout_of(minor);
	struct code_entry *entry = calloc(1, sizeof(*entry));
	int err;

	if (!entry)
		return -ENOMEM;
	entry->key = (struct code_key){ .address = addr, .pid = process->pid };
	entry->process = process;
	entry->minor = minor;
	entry->fields = *fields;
	list_init(&entry->lru);
	list_init(&entry->process_node);
	err = read_str(process, layout, fields->qualname ? fields->qualname : fields->name,
		       &entry->function);
	if (!err)
		err = read_str(process, layout, fields->filename, &entry->file);
	if (!err)
		err = read_bytes(process, fields->line_table, &entry->line_table,
				 &entry->line_table_len);
	if (err) {
		entry_free(entry);
		return err;
	}
	entry->bytes = sizeof(*entry) + HASHMAP_OVERHEAD + strlen(entry->function) + 1 +
		       strlen(entry->file) + 1 + entry->line_table_len;
	*ret_entry = entry;
	return 0;
}

/* Drops the least recently used entries, but keep, until the cache holds max_bytes. */
static void evict(struct python_code_cache *cache, const struct code_entry *keep)
{
	while (cache->stats.bytes > cache->max_bytes && cache->lru.prev != &cache->lru) {
		struct code_entry *victim = container_of(cache->lru.prev, struct code_entry, lru);
		struct python_process *process = victim->process;

		if (victim == keep)
			break;
		entry_drop(cache, victim);
		cache->stats.evicted++;
		/* A process without entries goes too: its types are learned again. */
		if (list_empty(&process->entries) && process != keep->process)
			process_drop(cache, process);
	}
}

static int entry_insert(struct python_code_cache *cache, struct code_entry *entry)
{
	if (hashmap__set(cache->entries, (uintptr_t)&entry->key, entry, NULL, NULL) < 0)
		return -ENOMEM;
	list_push_front(&cache->lru, &entry->lru);
	list_push_front(&entry->process->entries, &entry->process_node);
	cache->stats.bytes += entry->bytes;
	cache->stats.entries++;
	evict(cache, entry);
	return 0;
}

static bool fields_equal(const struct code_fields *a, const struct code_fields *b)
{
	return a->type == b->type && a->filename == b->filename && a->name == b->name &&
	       a->qualname == b->qualname && a->line_table == b->line_table &&
	       a->first_line == b->first_line;
}

/* The entry for the code object at addr as it is now: the cached one if unchanged, else read. */
static int entry_get(struct python_code_cache *cache, pid_t pid, unsigned minor, uint64_t addr,
		     struct code_entry **ret_entry)
{
	const struct code_key key = { .address = addr, .pid = pid };
	struct python_process *process;
	struct code_entry *entry = NULL;
	struct code_fields fields;
	void *found;
	int err;

	if (hashmap__find(cache->entries, (uintptr_t)&key, &found))
		entry = found;
	if (entry && entry->minor == minor && cache->window &&
	    entry->checked_window == cache->window) {
		cache->stats.hits_unchecked++;
		goto hit;
	}
	err = read_code_fields(pid, layout_of(minor), addr, &fields);
	if (err)
		return err;
	if (entry && entry->minor == minor && fields_equal(&entry->fields, &fields)) {
		entry->checked_window = cache->window;
		goto hit;
	}
	if (entry) {
		cache->stats.reread++;
		entry_drop(cache, entry);
	}
	err = process_get(cache, pid, &process);
	if (err)
		return err;
	err = check_type(process, PYTHON_TYPE_CODE, fields.type);
	if (!err)
		err = entry_read(process, minor, addr, &fields, &entry);
	if (!err) {
		err = entry_insert(cache, entry);
		if (err)
			entry_free(entry);
	}
	if (err) {
		/* Bounded by entries: a process of failures only does not stay. */
		if (list_empty(&process->entries))
			process_drop(cache, process);
		return err;
	}
	entry->checked_window = cache->window;
	*ret_entry = entry;
	return 0;

hit:
	cache->stats.hits++;
	list_move_front(&cache->lru, &entry->lru);
	*ret_entry = entry;
	return 0;
}

static int count_failure(struct python_code_cache *cache, int err)
{
	struct python_code_stats *stats = &cache->stats;

	switch (err) {
	case -ENOTSUP:
		stats->failed_version++;
		break;
	case -EINVAL:
		stats->failed_not_code++;
		break;
	case -EBADMSG:
		stats->failed_string++;
		break;
	case -EILSEQ:
		stats->failed_line_table++;
		break;
	case -ENOMEM:
		stats->failed_memory++;
		break;
	default: /* -ESRCH, -EFAULT, -EPERM */
		stats->failed_read++;
		break;
	}
	return err;
}

int python_code_cache__resolve(struct python_code_cache *cache, pid_t pid, unsigned minor,
			       uint64_t code_addr, uint32_t instr_index,
			       struct python_frame_info *out)
{
	struct code_entry *entry;
	uint32_t line;
	int err;

	cache->stats.resolutions++;
	if (!layout_of(minor))
		return count_failure(cache, -ENOTSUP);
	err = entry_get(cache, pid, minor, code_addr, &entry);
	if (!err)
		err = entry_line(entry, instr_index, &line);
	if (err)
		return count_failure(cache, err);
	if (!line)
		cache->stats.lines_unknown++;
	*out = (struct python_frame_info){
		.function = entry->function,
		.file = entry->file,
		.line = line,
		.first_line = entry->fields.first_line > 0 ? (uint32_t)entry->fields.first_line : 0,
	};
	return 0;
}

void python_code_cache__stats(const struct python_code_cache *cache,
			      struct python_code_stats *ret_stats)
{
	*ret_stats = cache->stats;
}

#define STATS(field) COUNTER_FIELD(0, struct python_code_stats, field)

static const struct counter python_code_counters[] = {
	{ .name = "kiln_python_code_resolutions_total",
	  .help = "Python frames resolved to function, file and line",
	  STATS(resolutions),
	  .text = "% frames resolved" },
	{ .name = "kiln_python_code_hits_total",
	  .help = "Python frames answered from the code object cache",
	  STATS(hits),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "(% from the cache," },
	{ .name = "kiln_python_code_hits_unchecked_total",
	  .help = "Cache hits trusted as checked against the object earlier in the window",
	  STATS(hits_unchecked),
	  .join = COUNTER_JOIN_SPACE,
	  .text = "% unchecked)" },
	{ .name = "kiln_python_code_reread_total",
	  .help = "Cached code objects found changed at their address, read again",
	  STATS(reread),
	  .text = "% read again (address reused)" },
	{ .name = "kiln_python_code_lines_unknown_total",
	  .help = "Python frames whose instruction has no line",
	  STATS(lines_unknown),
	  .text = "% without a line" },
	{ .name = "kiln_python_code_evicted_total",
	  .help = "Code objects evicted from the cache past its memory bound",
	  STATS(evicted),
	  .text = "% evicted",
	  .alarm = true },
	{ .name = "kiln_python_code_entries",
	  .help = "Code objects cached now",
	  STATS(entries),
	  .kind = COUNTER_GAUGE,
	  .text = "% cached" },
	{ .name = "kiln_python_code_memory_bytes",
	  .help = "What the code object cache holds now",
	  STATS(bytes),
	  .kind = COUNTER_GAUGE,
	  .unit = COUNTER_UNIT_BYTES,
	  .shown = COUNTER_SHOWN_MIB,
	  .join = COUNTER_JOIN_SPACE,
	  .text = "in % MiB" },
	{ .name = "kiln_python_code_read_failures_total",
	  .help = "Python frames unresolved: process gone or memory unreadable",
	  STATS(failed_read),
	  .join = COUNTER_JOIN_CLAUSE,
	  .text = "unresolved: % unreadable" },
	{ .name = "kiln_python_code_version_failures_total",
	  .help = "Python frames unresolved: a CPython version not handled",
	  STATS(failed_version),
	  .text = "% of an unknown version",
	  .alarm = true },
	{ .name = "kiln_python_code_not_code_total",
	  .help = "Python frames unresolved: no code object at the address",
	  STATS(failed_not_code),
	  .text = "% not a code object",
	  .alarm = true },
	{ .name = "kiln_python_code_bad_strings_total",
	  .help = "Python frames unresolved: name or file not a str or too long",
	  STATS(failed_string),
	  .text = "% bad names",
	  .alarm = true },
	{ .name = "kiln_python_code_bad_line_tables_total",
	  .help = "Python frames unresolved: line table not bytes, too long or malformed",
	  STATS(failed_line_table),
	  .text = "% bad line tables",
	  .alarm = true },
	{ .name = "kiln_python_code_memory_failures_total",
	  .help = "Python frames unresolved: out of memory",
	  STATS(failed_memory),
	  .text = "% out of memory",
	  .alarm = true },
};

const struct counter_line python_code_counter_line = {
	.prefix = "python code objects",
	.counters = python_code_counters,
	.count = COUNTER_COUNT_OF(python_code_counters),
	.level = LOG_DEBUG,
};
