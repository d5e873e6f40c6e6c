// SPDX-License-Identifier: Apache-2.0
/* Unwind tables in BPF maps: built once per file, shared, bounded, evicted LRU. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/process/process_table.h"
#include "agent/unwind/unwind_maps.h"
#include "agent/unwind/unwind_table.h"
#include "lib/array.h"
#include "lib/clock.h"
#include "lib/hashmap.h"
#include "symbolizer/elf_cache.h"

#define TABLE_ELEMENT_BYTES sizeof(struct unwind_chunk)
#define MAX_TABLES 8192 /* the BPF outer map's size */
#define VDSO_KEY "[vdso]"
/* Copies of one build id (in containers, say) the kernel can place its table by. */
#define TABLE_MAX_FILES 16

struct table {
	char *key; /* build id, or "dev:inode" for files without one */
	uint32_t id; /* in the BPF outer map; 0 when not loaded */
	uint32_t users; /* processes mapping the file, whether the table is loaded or not */
	uint64_t bytes; /* BPF memory while loaded */
	uint64_t rows;
	uint64_t last_used; /* a tick: higher is more recent */
	uint64_t needed_bytes; /* from the last build: known before building again */
	bool failed; /* no usable CFI: not tried again */
	bool room_now; /* at the take_waiting call numbered checked_at: room can be made */
	uint64_t checked_at;
	/* The files with this table, for the kernel's fill; in its file map while loaded. */
	struct table_file *files;
	size_t file_count;
	size_t file_capacity;
};

struct table_file {
	struct unwind_file_key key;
	uint64_t vaddr_minus_offset;
};

struct process_tables {
	size_t count;
	struct table *tables[UNWIND_MAX_MAPPINGS];
};

struct unwind_maps {
	int tables_fd;
	int processes_fd;
	int files_fd;
	int exited_fd;
	uint64_t max_bytes;
	struct elf_cache *elf_cache;
	struct hashmap *tables; /* key string -> struct table */
	struct hashmap *processes; /* pid -> struct process_tables */
	uint32_t next_id;
	uint32_t generation; /* of process entries, so BPF's cached rows of old ones miss */
	uint64_t tick;
	struct unwind_table vdso; /* the kernel's vDSO, the same in every process */
	uint64_t vdso_vaddr; /* its first PT_LOAD's address */
	uint32_t *exited; /* pids taken at the last sweep, deleted at the next */
	size_t exited_count;
	bool room_freed; /* a process went since the last unwind_maps__take_waiting */
	uint64_t
		waiting_calls; /* take_waiting's calls that looked, so each table is checked once */
	struct unwind_maps_stats stats;
};

/* The vDSO's CFI, read from kiln's own: every process maps the same image. */
static void load_vdso(struct unwind_maps *maps)
{
	struct proc_maps own = {};
	char *image = NULL;
	Elf *elf = NULL;
	GElf_Phdr phdr;
	int fd = -1;

	if (procmaps__read(getpid(), false, &own))
		return;
	for (size_t i = 0; i < own.count; i++) {
		const struct proc_mapping *m = &own.mappings[i];
		size_t size = m->end - m->start;

		if (strcmp(m->path, VDSO_KEY))
			continue;
		image = malloc(size);
		fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
		if (!image || fd < 0 || pread(fd, image, size, (off_t)m->start) != (ssize_t)size)
			break;
		elf_version(EV_CURRENT);
		elf = elf_memory(image, size);
		if (!elf || !gelf_getphdr(elf, 0, &phdr))
			break;
		for (size_t p = 0; gelf_getphdr(elf, (int)p, &phdr); p++) {
			if (phdr.p_type == PT_LOAD) {
				maps->vdso_vaddr = phdr.p_vaddr;
				break;
			}
		}
		if (unwind_table__build(elf, NULL, &maps->vdso, NULL))
			maps->vdso = (struct unwind_table){};
		break;
	}
	elf_end(elf);
	free(image);
	if (fd >= 0)
		close(fd);
	procmaps__free(&own);
}

struct unwind_maps *unwind_maps__new(const struct unwind_maps_opts *opts)
{
	struct unwind_maps *maps = calloc(1, sizeof(*maps));

	if (!maps)
		return NULL;
	maps->tables_fd = opts->tables_fd;
	maps->processes_fd = opts->processes_fd;
	maps->files_fd = opts->files_fd;
	maps->exited_fd = opts->exited_fd;
	maps->max_bytes = opts->max_bytes;
	maps->elf_cache = opts->elf_cache;
	maps->next_id = 1;
	maps->tables = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	maps->processes = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	maps->exited = calloc(UNWIND_MAX_EXITED, sizeof(*maps->exited));
	if (!maps->tables || !maps->processes || !maps->exited) {
		unwind_maps__free(maps);
		errno = ENOMEM;
		return NULL;
	}
	load_vdso(maps);
	return maps;
}

/* Tells the kernel's fill where file i of a loaded table is. */
static void publish_file(struct unwind_maps *maps, const struct table *table, size_t i)
{
	struct unwind_file value = {
		.vaddr_minus_offset = table->files[i].vaddr_minus_offset,
		.table_id = table->id,
	};

	if (maps->files_fd < 0)
		return;
	if (bpf_map_update_elem(maps->files_fd, &table->files[i].key, &value, BPF_ANY))
		maps->stats.files_map_full++;
	else
		maps->stats.files_placed++;
}

static void unpublish_files(struct unwind_maps *maps, const struct table *table)
{
	for (size_t i = 0; maps->files_fd >= 0 && i < table->file_count; i++)
		if (!bpf_map_delete_elem(maps->files_fd, &table->files[i].key))
			maps->stats.files_placed--;
}

static void unload_table(struct unwind_maps *maps, struct table *table)
{
	if (!table->id)
		return;
	/* Before the table goes, so that no new fill points at it. */
	unpublish_files(maps, table);
	bpf_map_delete_elem(maps->tables_fd, &table->id);
	maps->stats.table_bytes -= table->bytes;
	maps->stats.table_rows -= table->rows;
	maps->stats.tables--;
	table->id = 0;
}

/*
 * A table no process maps and that is not loaded is forgotten, so the
 * bookkeeping is bounded by what runs and by the budget, not by every file
 * ever seen.
 */
static void forget_if_unused(struct unwind_maps *maps, struct table *table)
{
	if (table->users || table->id)
		return;
	hashmap__delete(maps->tables, (uintptr_t)table->key, NULL, NULL);
	free(table->files);
	free(table->key);
	free(table);
}

void unwind_maps__free(struct unwind_maps *maps)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	if (!maps)
		return;
	while (maps->tables && hashmap__next(maps->tables, &iter, NULL, &value)) {
		struct table *table = value;

		unload_table(maps, table);
		free(table->files);
		free(table->key);
		free(table);
	}
	iter = (struct hashmap_iter)HASHMAP_ITER_INIT;
	while (maps->processes && hashmap__next(maps->processes, &iter, NULL, &value))
		free(value);
	hashmap__free(maps->tables);
	hashmap__free(maps->processes);
	unwind_table__free(&maps->vdso);
	free(maps->exited);
	free(maps);
}

/*
 * The table to evict for one used by `users` processes: the least shared
 * loaded table, least recently used among equals, and only one that fewer
 * processes use (or none). So glibc's table is the last to go, and tables
 * used alike never evict each other back and forth. NULL when none may go.
 */
static struct table *pick_victim(struct unwind_maps *maps, uint32_t users)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	struct table *victim = NULL;
	void *value;

	while (hashmap__next(maps->tables, &iter, NULL, &value)) {
		struct table *table = value;

		if (!table->id || (table->users >= users && table->users))
			continue;
		if (!victim || table->users < victim->users ||
		    (table->users == victim->users && table->last_used < victim->last_used))
			victim = table;
	}
	return victim;
}

/* Whether evicting less shared tables could free `bytes` for a table `users` processes use. */
static bool room_possible(struct unwind_maps *maps, uint64_t bytes, uint32_t users)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	uint64_t freeable = 0;
	void *value;

	if (bytes > maps->max_bytes)
		return false;
	while (hashmap__next(maps->tables, &iter, NULL, &value)) {
		struct table *table = value;

		if (table->id && (table->users < users || !table->users))
			freeable += table->bytes;
	}
	return maps->stats.table_bytes - freeable + bytes <= maps->max_bytes;
}

static int make_room(struct unwind_maps *maps, uint64_t bytes, uint32_t users)
{
	if (!room_possible(maps, bytes, users))
		return -ENOSPC;
	while (maps->stats.table_bytes + bytes > maps->max_bytes ||
	       maps->stats.tables >= MAX_TABLES) {
		struct table *victim = pick_victim(maps, users);

		if (!victim)
			return -ENOSPC;
		maps->stats.tables_evicted++;
		if (victim->users)
			maps->stats.tables_evicted_in_use++;
		unload_table(maps, victim);
		forget_if_unused(maps, victim);
	}
	return 0;
}

/*
 * Writes a table's rows into a new BPF array map as they are made: element
 * 0 the first pc of every chunk (padded, so searches run fixed steps), then
 * one chunk per element. Only one chunk is held at a time.
 */
struct bpf_sink {
	struct unwind_row_sink sink;
	struct unwind_maps *maps;
	struct table *table;
	int fd;
	uint32_t key; /* the next element */
	size_t chunks;
	size_t rows;
	struct unwind_chunk element;
};

static int bpf_sink_prepare(struct unwind_row_sink *sink, size_t row_count,
			    const uint32_t *first_pc, size_t chunk_count)
{
	struct bpf_sink *out = (struct bpf_sink *)sink;
	LIBBPF_OPTS(bpf_map_create_opts, create_opts, .map_flags = BPF_F_INNER_MAP);
	struct unwind_index *index = (struct unwind_index *)&out->element;
	uint64_t bytes = (chunk_count + 1) * TABLE_ELEMENT_BYTES;
	int err;

	if (!chunk_count || chunk_count > UNWIND_MAX_CHUNKS)
		return -EFBIG;
	out->table->needed_bytes = bytes;
	err = make_room(out->maps, bytes, out->table->users);
	if (err)
		return err;
	out->fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kiln_unwind", sizeof(uint32_t),
				 sizeof(struct unwind_chunk), chunk_count + 1, &create_opts);
	if (out->fd < 0) {
		out->fd = -1;
		return -errno;
	}
	out->chunks = chunk_count;
	out->rows = row_count;
	for (size_t i = 0; i < UNWIND_MAX_CHUNKS; i++)
		index->first_pc[i] = i < chunk_count ? first_pc[i] : UNWIND_PC_PAD;
	if (bpf_map_update_elem(out->fd, &out->key, &out->element, BPF_ANY))
		return -errno;
	out->key++;
	return 0;
}

static int bpf_sink_write(struct unwind_row_sink *sink, const struct unwind_row *rows, size_t count)
{
	struct bpf_sink *out = (struct bpf_sink *)sink;

	/* More chunks than counted: the file changed under the build. */
	if (out->key > out->chunks || count > UNWIND_CHUNK_ROWS)
		return -EIO;
	memcpy(out->element.rows, rows, count * sizeof(*rows));
	for (size_t i = count; i < UNWIND_CHUNK_ROWS; i++)
		out->element.rows[i] = (struct unwind_row){ .pc = UNWIND_PC_PAD };
	if (bpf_map_update_elem(out->fd, &out->key, &out->element, BPF_ANY))
		return -errno;
	out->key++;
	return 0;
}

/* Builds the file's table (or replays the vDSO's) into a new BPF map and publishes it under an id. */
static int load_table(struct unwind_maps *maps, struct table *table, struct Elf *elf,
		      struct Elf *debug_elf)
{
	struct bpf_sink *out = calloc(1, sizeof(*out));
	uint64_t bytes;
	int err;

	if (!out)
		return -ENOMEM;
	*out = (struct bpf_sink){
		.sink = { .prepare = bpf_sink_prepare, .write = bpf_sink_write },
		.maps = maps,
		.table = table,
		.fd = -1,
	};
	err = elf ? unwind_table__stream(elf, debug_elf, &out->sink, NULL)
		  : unwind_table__replay(&maps->vdso, &out->sink);
	if (!err && out->key != out->chunks + 1)
		err = -EIO;
	if (err)
		goto cleanup;
	table->id = maps->next_id++;
	if (!maps->next_id)
		maps->next_id = 1;
	if (bpf_map_update_elem(maps->tables_fd, &table->id, &out->fd, BPF_ANY)) {
		err = -errno;
		table->id = 0;
		goto cleanup;
	}
	bytes = (out->chunks + 1) * TABLE_ELEMENT_BYTES;
	table->bytes = bytes;
	table->rows = out->rows;
	maps->stats.table_bytes += bytes;
	maps->stats.table_rows += table->rows;
	maps->stats.tables++;
	for (size_t i = 0; i < table->file_count; i++)
		publish_file(maps, table, i);
	err = 0;
cleanup:
	/* The outer map holds its own reference to the table. */
	if (out->fd >= 0)
		close(out->fd);
	free(out);
	return err;
}

static struct table *find_or_add_table(struct unwind_maps *maps, const char *key)
{
	struct table *table;
	void *value;

	if (hashmap__find(maps->tables, (uintptr_t)key, &value))
		return value;
	table = calloc(1, sizeof(*table));
	if (!table)
		return NULL;
	table->key = strdup(key);
	if (!table->key || hashmap__set(maps->tables, (uintptr_t)table->key, table, NULL, NULL)) {
		free(table->key);
		free(table);
		return NULL;
	}
	return table;
}

/*
 * p_vaddr - p_offset of a file's executable segments: one value for all of
 * them in what linkers make. -EINVAL when they disagree (a mapping's bias
 * would depend on which segment it maps), -ENOENT without any.
 */
static int exec_segments_offset(Elf *elf, uint64_t *ret_offset)
{
	uint64_t offset = 0;
	bool found = false;
	GElf_Phdr phdr;
	size_t count;

	if (elf_getphdrnum(elf, &count))
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != PT_LOAD ||
		    !(phdr.p_flags & PF_X))
			continue;
		if (found && phdr.p_vaddr - phdr.p_offset != offset)
			return -EINVAL;
		offset = phdr.p_vaddr - phdr.p_offset;
		found = true;
	}
	if (!found)
		return -ENOENT;
	*ret_offset = offset;
	return 0;
}

/*
 * Remembers that a file (by device and inode) has this table, so the
 * kernel can fill the mappings of new processes of it without the agent.
 * elf is NULL for the vDSO.
 */
static void note_file(struct unwind_maps *maps, struct table *table,
		      const struct proc_mapping *mapping, Elf *elf)
{
	struct unwind_file_key key = {};
	uint64_t offset = maps->vdso_vaddr;

	if (elf) {
		key.inode = mapping->inode;
		key.dev = UNWIND_DEV(mapping->dev_major, mapping->dev_minor);
	}
	for (size_t i = 0; i < table->file_count; i++)
		if (table->files[i].key.inode == key.inode && table->files[i].key.dev == key.dev)
			return;
	if ((elf && exec_segments_offset(elf, &offset)) || table->file_count >= TABLE_MAX_FILES ||
	    ARRAY_RESERVE_ONE(table->files, table->file_count, table->file_capacity, 1)) {
		maps->stats.files_not_placed++;
		return;
	}
	table->files[table->file_count++] = (struct table_file){
		.key = key,
		.vaddr_minus_offset = offset,
	};
	if (table->id)
		publish_file(maps, table, table->file_count - 1);
}

/*
 * The table for one mapping (NULL for files with no table to have), loaded
 * when needed and when the budget allows; sets its load bias. The caller
 * counts the process as a user first, so the budget weighs how shared it is.
 */
static struct table *table_for_mapping(struct unwind_maps *maps, uint32_t pid,
				       const struct proc_mapping *mapping, uint64_t *ret_bias)
{
	struct elf_cache_file file;
	struct table *table;
	char key[160];
	uint64_t start_ns;
	int err;
	bool vdso = !strcmp(mapping->path, VDSO_KEY);

	if (vdso) {
		if (!maps->vdso.row_count)
			return NULL;
		snprintf(key, sizeof(key), "%s", VDSO_KEY);
		*ret_bias = mapping->start - maps->vdso_vaddr;
	} else {
		if (elf_cache__file(maps->elf_cache, (int)pid, mapping, &file))
			return NULL;
		if (file.build_id[0])
			snprintf(key, sizeof(key), "%s", file.build_id);
		else
			snprintf(key, sizeof(key), "%u:%u:%" PRIu64, mapping->dev_major,
				 mapping->dev_minor, mapping->inode);
		*ret_bias = file.load_bias;
	}
	table = find_or_add_table(maps, key);
	if (!table)
		return NULL;
	table->users++;
	if (table->failed)
		return table;
	note_file(maps, table, mapping, vdso ? NULL : file.elf);
	table->last_used = ++maps->tick;
	if (table->id)
		return table;
	/* Known too big for what may be evicted: do not build it again for nothing. */
	if (table->needed_bytes && !room_possible(maps, table->needed_bytes, table->users)) {
		maps->stats.tables_deferred++;
		return table;
	}

	start_ns = now_ns();
	err = load_table(maps, table, vdso ? NULL : file.elf, vdso ? NULL : file.debug_elf);
	maps->stats.build_ns += now_ns() - start_ns;
	if (err == -ENOSPC) {
		maps->stats.tables_deferred++; /* tried again at the next process update */
	} else if (err) {
		/* Remembered while a process maps the file, so it is not rebuilt for each. */
		table->failed = true;
		maps->stats.tables_failed++;
		return table;
	} else {
		maps->stats.tables_built++;
	}
	return table;
}

static void release(struct unwind_maps *maps, struct process_tables *refs)
{
	for (size_t i = 0; i < refs->count; i++) {
		refs->tables[i]->users--;
		forget_if_unused(maps, refs->tables[i]);
	}
	refs->count = 0;
}

int unwind_maps__add_process(struct unwind_maps *maps, uint32_t pid,
			     const struct proc_maps *mappings)
{
	struct process_unwind *entry = calloc(1, sizeof(*entry));
	struct process_tables *refs;
	void *value;
	int err;

	if (!entry)
		return -ENOMEM;
	if (hashmap__find(maps->processes, pid, &value)) {
		refs = value;
		release(maps, refs);
	} else {
		refs = calloc(1, sizeof(*refs));
		if (!refs || hashmap__set(maps->processes, pid, refs, NULL, NULL)) {
			free(refs);
			free(entry);
			return -ENOMEM;
		}
		maps->stats.processes++;
	}
	for (size_t i = 0; i < mappings->count; i++) {
		const struct proc_mapping *mapping = &mappings->mappings[i];
		struct unwind_mapping *out;
		struct table *table;
		uint64_t bias = 0;

		if (!(mapping->perms & PROC_MAP_EXEC))
			continue;
		if (entry->mapping_count == UNWIND_MAX_MAPPINGS) {
			maps->stats.mappings_dropped++;
			continue;
		}
		/* Without a table (JIT, anonymous code) the unwinder uses frame pointers. */
		table = table_for_mapping(maps, pid, mapping, &bias);
		out = &entry->mappings[entry->mapping_count++];
		*out = (struct unwind_mapping){
			.start = mapping->start,
			.end = mapping->end,
			.load_bias = bias,
			.file_offset = mapping->offset,
			.inode = mapping->inode,
			.dev = UNWIND_DEV(mapping->dev_major, mapping->dev_minor),
			/* A file known to have no table is not asked for again. */
			.table_id = !table	? 0
				    : table->id ? table->id
						: UNWIND_TABLE_NONE,
		};
		if (table)
			refs->tables[refs->count++] = table;
	}
	entry->generation = ++maps->generation;
	entry->flags = PROCESS_UNWIND_BY_AGENT;
	err = bpf_map_update_elem(maps->processes_fd, &pid, entry, BPF_ANY) ? -errno : 0;
	if (err)
		maps->stats.process_updates_failed++;
	free(entry);
	return err;
}

void unwind_maps__prepare_files(struct unwind_maps *maps, uint32_t pid,
				const struct proc_maps *mappings)
{
	for (size_t i = 0; i < mappings->count; i++) {
		struct table *table;
		uint64_t bias;

		if (!(mappings->mappings[i].perms & PROC_MAP_EXEC))
			continue;
		table = table_for_mapping(maps, pid, &mappings->mappings[i], &bias);
		if (!table)
			continue;
		/* No process holds it: it stays loaded, first in line for eviction. */
		table->users--;
		forget_if_unused(maps, table);
	}
}

/* Deletes pid's entry if it is still the exited process's (a new one may have the pid). */
static void delete_if_exited(struct unwind_maps *maps, uint32_t pid, struct process_unwind *entry)
{
	if (bpf_map_lookup_elem(maps->processes_fd, &pid, entry) ||
	    !(entry->flags & PROCESS_UNWIND_EXITED))
		return;
	if (!bpf_map_delete_elem(maps->processes_fd, &pid))
		maps->stats.exited_swept++;
}

void unwind_maps__sweep_exited(struct unwind_maps *maps)
{
	struct process_unwind *entry;
	uint32_t key;
	size_t taken = 0;

	if (maps->exited_fd < 0)
		return;
	entry = malloc(sizeof(*entry));
	for (size_t i = 0; entry && i < maps->exited_count; i++)
		delete_if_exited(maps, maps->exited[i], entry);
	free(entry);
	/* Taken first, deleted after: get_next_key from a deleted key starts over. */
	while (taken < UNWIND_MAX_EXITED &&
	       !bpf_map_get_next_key(maps->exited_fd, taken ? &key : NULL, &key))
		maps->exited[taken++] = key;
	for (size_t i = 0; i < taken; i++)
		bpf_map_delete_elem(maps->exited_fd, &maps->exited[i]);
	maps->exited_count = taken;
}

void unwind_maps__remove_process(struct unwind_maps *maps, uint32_t pid)
{
	void *value;

	if (!hashmap__delete(maps->processes, pid, NULL, &value))
		return;
	release(maps, value);
	free(value);
	maps->stats.processes--;
	maps->room_freed = true;
	bpf_map_delete_elem(maps->processes_fd, &pid);
}

/*
 * Whether one of refs' tables waits for room that evicting could now make;
 * each table is checked once a call, however many processes share it.
 */
static bool waits_for_room(struct unwind_maps *maps, const struct process_tables *refs)
{
	for (size_t i = 0; i < refs->count; i++) {
		struct table *table = refs->tables[i];

		if (table->id || table->failed || !table->needed_bytes)
			continue;
		if (table->checked_at != maps->waiting_calls) {
			table->checked_at = maps->waiting_calls;
			table->room_now = room_possible(maps, table->needed_bytes, table->users);
		}
		if (table->room_now)
			return true;
	}
	return false;
}

size_t unwind_maps__take_waiting(struct unwind_maps *maps, uint32_t *ret_pids, size_t max)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	uintptr_t key;
	void *value;
	size_t count = 0;

	if (!maps->room_freed || !maps->stats.tables_deferred)
		return 0;
	maps->room_freed = false;
	maps->waiting_calls++;
	while (count < max && hashmap__next(maps->processes, &iter, &key, &value))
		if (waits_for_room(maps, value))
			ret_pids[count++] = (uint32_t)key;
	maps->stats.processes_retried += count;
	return count;
}

static void on_mappings_changed(void *ctx, const struct process_change *change)
{
	/* A process that exited has no samples left to unwind; failures are counted. */
	if (change->alive)
		unwind_maps__add_process(ctx, change->pid, change->maps);
}

static void on_removed(void *ctx, uint32_t pid)
{
	unwind_maps__remove_process(ctx, pid);
}

void unwind_maps__process_listener(struct unwind_maps *maps, struct process_listener *ret_listener)
{
	*ret_listener = (struct process_listener){
		.on_mappings_changed = on_mappings_changed,
		.on_removed = on_removed,
		.ctx = maps,
	};
}

void unwind_maps__stats(const struct unwind_maps *maps, struct unwind_maps_stats *ret_stats)
{
	*ret_stats = maps->stats;
}
