// SPDX-License-Identifier: Apache-2.0
/* One CPU window -> pprof: stacks to locations, symbolized, with per-thread labels. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/process_labels.h"
#include "agent/profile/symbol_cache.h"
#include "agent/profile/window_profile.h"
#include "agent/process/process_table.h"
#include "agent/python/python_code.h"
#include "agent/python/python_process.h"
#include "agent/sampling/offcpu_state.h"
#include "lib/array.h"
#include "lib/hashmap.h"
#include "bpf/python.h"
#include "proto/pprof_builder.h"
#include "symbolizer/symbolizer.h"

#define KERNEL_MAPPING_START 0xffff800000000000ULL
#define KERNEL_MAPPING_NAME "[kernel.kallsyms]"
/* Python frames (bpf/python.h) live above every user address, below the kernel's. */
#define PYTHON_MAPPING_NAME "[python]"
/* Leaf-to-root frames of one sample: both stacks plus a marker frame each. */
#define MAX_SAMPLE_FRAMES (MAX_USER_STACK_DEPTH + MAX_STACK_DEPTH + 2)

/*
 * Frames that stand for missing data, so a lost or cut stack is never
 * passed off as complete. They live at small addresses in no mapping.
 */
enum marker_frame {
	MARKER_CAPTURE_FAILED = 1,
	MARKER_MAP_FULL,
	MARKER_COLLISION,
	MARKER_MISSING,
	MARKER_WINDOW_ENDED,
	/* One per way a stack can end early: MARKER_END_FIRST + enum stack_end. */
	MARKER_END_FIRST = 16,
};

static const char *const marker_names[] = {
	[MARKER_CAPTURE_FAILED] = "[stack unreadable]",
	[MARKER_MAP_FULL] = "[stack lost: stacks map full]",
	[MARKER_COLLISION] = "[stack lost: hash collision]",
	[MARKER_MISSING] = "[stack lost: not drained]",
	[MARKER_WINDOW_ENDED] = "[stack lost: taken in the previous window]",
	[MARKER_END_FIRST + STACK_END_DEPTH] = "[truncated: too deep]",
	[MARKER_END_FIRST + STACK_END_NO_MAPPING] = "[truncated: address in no mapping]",
	[MARKER_END_FIRST + STACK_END_NO_CFI] = "[truncated: no unwind info]",
	[MARKER_END_FIRST + STACK_END_UNSUPPORTED] = "[truncated: unsupported unwind info]",
	[MARKER_END_FIRST + STACK_END_BAD_READ] = "[truncated: stack unreadable]",
	[MARKER_END_FIRST + STACK_END_NO_RBP] = "[truncated: frame pointer lost]",
	[MARKER_END_FIRST + STACK_END_FRAME_POINTERS] = "[frame pointers: no unwind tables yet]",
};

struct window_profile {
	const struct sample_window *window;
	const struct process_table *processes;
	struct symbolizer *symbolizer;
	struct symbol_history *history; /* NULL: none kept across windows */
	struct window_profile_meta meta;
	struct symbol_cache *symbols; /* NULL: built once, nothing to keep */
	const struct python_processes *python; /* NULL: Python frames are not named */
	struct python_code_cache *python_code;
	struct process_labels *labels; /* NULL: the built-in labels only */
};

/* One profile being built from the window. */
struct profile_context {
	struct pprof_builder *builder;
	struct window_profile *profile;
	uint64_t kernel_mapping_id;
	uint64_t python_mapping_id; /* 0 until a Python frame needs it */
	struct window_profile_result result;
};

/* The kernel's GNU build id from /sys/kernel/notes, as hex; "" when unknown. */
static void read_kernel_build_id(char *hex, size_t size)
{
	unsigned char notes[4096];
	FILE *file;
	size_t len, pos = 0;

	hex[0] = '\0';
	file = fopen("/sys/kernel/notes", "re");
	if (!file)
		return;
	len = fread(notes, 1, sizeof(notes), file);
	fclose(file);
	while (pos + 12 <= len) {
		uint32_t name_size, desc_size, type;

		memcpy(&name_size, notes + pos, 4);
		memcpy(&desc_size, notes + pos + 4, 4);
		memcpy(&type, notes + pos + 8, 4);
		pos += 12;
		size_t name_pos = pos, desc_pos = pos + ((name_size + 3) & ~3u);

		pos = desc_pos + ((desc_size + 3) & ~3u);
		if (pos > len)
			return;
		if (type == 3 /* NT_GNU_BUILD_ID */ && name_size == 4 &&
		    !memcmp(notes + name_pos, "GNU", 4) && desc_size * 2 < size) {
			for (uint32_t i = 0; i < desc_size; i++)
				sprintf(hex + 2 * i, "%02x", notes[desc_pos + i]);
			return;
		}
	}
}

/*
 * A marker's location is in no mapping, as a user address no mapping holds
 * is: its address is in the kernel's half, where no user address can be
 * (kernel addresses go into the kernel's mapping), so a broken walk's 0x1
 * is never taken for "[stack unreadable]".
 */
#define MARKER_ADDRESS(marker) (0xffffffffffff0000ULL | (uint64_t)(marker))

static int add_marker(struct profile_context *ctx, enum marker_frame marker, uint64_t *ret_id)
{
	struct pprof_line line = { .function_name = marker_names[marker] };
	uint64_t id = pprof_builder__find_location(ctx->builder, 0, MARKER_ADDRESS(marker), false);

	if (id) {
		*ret_id = id;
		return 0;
	}
	return pprof_builder__add_location(ctx->builder, 0, MARKER_ADDRESS(marker), false, &line, 1,
					   ret_id);
}

/*
 * The lines of key's address: from the symbol cache when an earlier profile
 * of this window resolved it, from the symbol history when an earlier
 * window (or another process) resolved the same offset of the same build,
 * else from the symbolizer (mapping: the user address's, NULL for kernel
 * ones). Returns 0 or -ENOMEM.
 */
static int resolve(struct profile_context *ctx, const struct symbol_key *key,
		   const struct proc_mapping *mapping, struct pprof_line *lines, size_t *ret_count)
{
	struct symbol_cache *symbols = ctx->profile->symbols;
	struct symbol_history *history = ctx->profile->history;
	struct symbolized_location symbolized = {};
	struct symbol_key by_file = {};
	/*
	 * Only files with a build id: a path or an inode can name other bytes
	 * later, JIT code in anonymous memory changes, and kernel addresses
	 * are cheap to look up.
	 */
	bool remembered = history && key->file && mapping;

	if (symbols && symbol_cache__find(symbols, key, lines, SYMBOLIZER_MAX_FRAMES, ret_count))
		return 0;
	if (remembered) {
		by_file = (struct symbol_key){ .address = key->address - mapping->start +
							  mapping->offset,
					       .file = key->file,
					       .is_return = key->is_return };
		if (symbol_history__find(history, &by_file, lines, SYMBOLIZER_MAX_FRAMES,
					 ret_count)) {
			ctx->result.frames_remembered++;
			return symbols ? symbol_cache__add(symbols, key, lines, *ret_count) : 0;
		}
	}
	/* On failure frame_count stays 0: the address is kept unsymbolized. */
	if (key->kernel)
		symbolizer__resolve_kernel(ctx->profile->symbolizer, key->address, key->is_return,
					   &symbolized);
	else
		symbolizer__resolve_user(ctx->profile->symbolizer, (int)key->pid, mapping,
					 key->address, key->is_return, &symbolized);
	for (size_t i = 0; i < symbolized.frame_count; i++) {
		const struct symbolized_frame *frame = &symbolized.frames[i];

		lines[i] = (struct pprof_line){
			.function_name = frame->function,
			.system_name = frame->system_name,
			.filename = frame->file,
			.start_line = frame->start_line,
			.line = frame->line,
		};
	}
	*ret_count = symbolized.frame_count;
	/*
	 * Unnamed addresses are not remembered: a debug file may arrive later.
	 * Nor is an address the history has no memory for: it only saves work.
	 * Nor one named without its lines because its DWARF was closed for
	 * memory: a later window gives them.
	 */
	if (remembered && *ret_count && !symbolized.deferred)
		(void)symbol_history__add(history, &by_file, lines, *ret_count);
	return symbols ? symbol_cache__add(symbols, key, lines, *ret_count) : 0;
}

static int add_symbolized(struct profile_context *ctx, uint64_t mapping_id,
			  const struct symbol_key *key, const struct proc_mapping *mapping,
			  uint64_t *ret_id)
{
	struct pprof_line lines[SYMBOLIZER_MAX_FRAMES];
	size_t count;
	int err;

	err = resolve(ctx, key, mapping, lines, &count);
	if (err)
		return err;
	if (!count)
		ctx->result.frames_without_symbol++;
	ctx->result.frames++;
	return pprof_builder__add_location(ctx->builder, mapping_id, key->address, key->is_return,
					   lines, count, ret_id);
}

static int add_kernel_frame(struct profile_context *ctx, uint64_t address, bool is_return,
			    uint64_t *ret_id)
{
	const struct symbol_key key = { .address = address,
					.kernel = true,
					.is_return = is_return };
	uint64_t id = pprof_builder__find_location(ctx->builder, ctx->kernel_mapping_id, address,
						   is_return);

	if (id) {
		*ret_id = id;
		return 0;
	}
	return add_symbolized(ctx, ctx->kernel_mapping_id, &key, NULL, ret_id);
}

static int add_user_frame(struct profile_context *ctx, uint32_t pid, uint64_t address,
			  bool is_return, uint64_t *ret_id)
{
	struct symbol_key key = { .address = address, .pid = pid, .is_return = is_return };
	struct symbolizer *symbolizer = ctx->profile->symbolizer;
	const struct proc_mapping *mapping;
	const char *build_id = "", *filename;
	uint64_t mapping_id, id;
	int err;

	mapping = process_table__find_mapping(ctx->profile->processes, pid, address);
	if (!mapping) {
		ctx->result.frames_without_mapping++;
		id = pprof_builder__find_location(ctx->builder, 0, address, false);
		if (id) {
			*ret_id = id;
			return 0;
		}
		return pprof_builder__add_location(ctx->builder, 0, address, false, NULL, 0,
						   ret_id);
	}
	filename = mapping->path[0] ? mapping->path : "[anon]";
	if (mapping->path[0] && mapping->path[0] != '[')
		symbolizer__build_id(symbolizer, (int)pid, mapping, &build_id);
	if (build_id[0])
		key.file = hash_bytes(build_id, strlen(build_id), HASH_SEED);
	err = pprof_builder__add_mapping(ctx->builder, mapping->start, mapping->end,
					 mapping->offset, filename, build_id, true, &mapping_id);
	if (err)
		return err;
	/* Its lines depend on is_return: a leaf at a return address has its own. */
	id = pprof_builder__find_location(ctx->builder, mapping_id, address, is_return);
	if (id) {
		*ret_id = id;
		return 0;
	}
	return add_symbolized(ctx, mapping_id, &key, mapping, ret_id);
}

static const char *const python_unreadable_names[] = {
	[0] = "[python: unreadable]",
	[PYTHON_UNREADABLE_THREAD] = "[python: unreadable: thread state not found]",
	[PYTHON_UNREADABLE_READ] = "[python: unreadable: frame memory]",
	[PYTHON_UNREADABLE_CODE] = "[python: unreadable: no code object]",
};

/*
 * A frame CPython's walker tagged (bpf/python.h): its function, file and
 * line from the code object, read from the process (python_code.h), under
 * the [python] mapping; a marker when BPF or the agent could not read it.
 */
static int add_python_frame(struct profile_context *ctx, uint32_t pid, uint64_t address,
			    uint64_t *ret_id)
{
	struct window_profile *profile = ctx->profile;
	uint64_t code = PYTHON_FRAME_CODE(address), index = PYTHON_FRAME_INDEX(address);
	struct python_frame_info info = {};
	struct pprof_line line = {};
	unsigned int minor = 0;
	uint64_t id;
	int err;

	if (!ctx->python_mapping_id) {
		err = pprof_builder__add_mapping(ctx->builder, PYTHON_FRAME_TAG,
						 KERNEL_MAPPING_START, 0, PYTHON_MAPPING_NAME, "",
						 true, &ctx->python_mapping_id);
		if (err)
			return err;
	}
	id = pprof_builder__find_location(ctx->builder, ctx->python_mapping_id, address, false);
	if (id) {
		*ret_id = id;
		return 0;
	}
	ctx->result.python_frames++;
	if (!code) {
		ctx->result.python_unreadable++;
		line.function_name =
			python_unreadable_names[index < PYTHON_UNREADABLE__COUNT ? index : 0];
	} else if (profile->python_code && python_processes__minor(profile->python, pid, &minor) &&
		   !python_code_cache__resolve(profile->python_code, pid, minor, code,
					       (uint32_t)index, &info)) {
		line = (struct pprof_line){ .function_name = info.function,
					    .filename = info.file,
					    .start_line = info.first_line,
					    .line = info.line };
	} else {
		ctx->result.python_unresolved++;
		line.function_name = "[python: unreadable: code object]";
	}
	return pprof_builder__add_location(ctx->builder, ctx->python_mapping_id, address, false,
					   &line, 1, ret_id);
}

/* Appends one stack's frames (leaf first) to ids; returns the new count or -errno. */
static int add_stack(struct profile_context *ctx, uint32_t pid, uint64_t stack_id, bool kernel,
		     uint64_t *ids, int count)
{
	static const enum marker_frame lost_reason[] = {
		[STACK_ID_CAPTURE_FAILED] = MARKER_CAPTURE_FAILED,
		[STACK_ID_MAP_FULL] = MARKER_MAP_FULL,
		[STACK_ID_COLLISION] = MARKER_COLLISION,
		[STACK_ID_WINDOW_ENDED] = MARKER_WINDOW_ENDED,
	};
	const struct drained_stack *stack;
	int err;

	if (stack_id == STACK_ID_NONE)
		return count;
	if (stack_id < STACK_ID_FIRST_VALID) {
		enum marker_frame marker =
			stack_id <= STACK_ID_WINDOW_ENDED ? lost_reason[stack_id] : MARKER_MISSING;

		err = add_marker(ctx, marker, &ids[count]);
		return err ? err : count + 1;
	}
	stack = sample_window__stack(ctx->profile->window, stack_id);
	if (!stack) {
		ctx->result.stacks_missing++;
		err = add_marker(ctx, MARKER_MISSING, &ids[count]);
		return err ? err : count + 1;
	}
	for (uint32_t i = 0; i < stack->frame_count; i++) {
		/* Every frame but the sampled leaf is a return address. */
		if (kernel)
			err = add_kernel_frame(ctx, stack->addresses[i], i > 0, &ids[count]);
		else if (PYTHON_FRAME_IS(stack->addresses[i]))
			err = add_python_frame(ctx, pid, stack->addresses[i], &ids[count]);
		else
			err = add_user_frame(ctx, pid, stack->addresses[i], i > 0, &ids[count]);
		if (err)
			return err;
		count++;
	}
	/* A stack that did not reach its outermost frame says why. */
	if (stack->end > STACK_END_COMPLETE && stack->end < STACK_END__COUNT) {
		err = add_marker(ctx, MARKER_END_FIRST + stack->end, &ids[count]);
		if (err)
			return err;
		count++;
	}
	return count;
}

/* A process's own labels beside the built-in ones: those kiln sets itself win. */
#define MAX_PROCESS_LABELS 32
#define BUILTIN_LABELS 5

static bool is_builtin_label(const struct pprof_label *labels, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (!strcmp(labels[i].key, name))
			return true;
	return false;
}

/*
 * Whether pid's samples go in (1) or a relabel rule dropped it (0), with
 * its labels in *ret_labels (NULL: none); -ENOMEM. A process gone before
 * its labels could be read is kept without them.
 */
static int process_kept(const struct window_profile *profile, uint32_t pid,
			const struct label_set **ret_labels)
{
	int kept;

	*ret_labels = NULL;
	if (!profile->labels)
		return 1;
	kept = process_labels__get(profile->labels, pid, ret_labels);
	if (kept == -ENOMEM)
		return kept;
	if (kept < 0) {
		*ret_labels = NULL;
		return 1;
	}
	return kept;
}

static int add_sample(struct profile_context *ctx, const struct drained_sample *sample)
{
	const struct window_profile_meta *meta = &ctx->profile->meta;
	const struct sample_key *key = &sample->key;
	char thread_name[TASK_COMM_LEN + 1] = {}, process_name[TASK_COMM_LEN + 1] = {};
	uint64_t ids[MAX_SAMPLE_FRAMES];
	int64_t values[2] = { (int64_t)sample->value.count,
			      meta->off_cpu ? (int64_t)sample->value.blocked_ns
					    : (int64_t)(sample->value.count * meta->period_ns) };
	struct pprof_label labels[BUILTIN_LABELS + MAX_PROCESS_LABELS];
	const struct label_set *own;
	size_t label_count = 0, builtin;
	int count, kept;

	_Static_assert(MAX_SAMPLE_FRAMES >= MAX_USER_STACK_DEPTH + 1 + MAX_STACK_DEPTH + 1,
		       "room for both stacks and their markers");
	kept = process_kept(ctx->profile, key->pid, &own);
	if (kept <= 0) {
		if (!kept)
			ctx->result.samples_dropped += sample->value.count;
		return kept;
	}
	memcpy(thread_name, sample->value.thread_comm, TASK_COMM_LEN);
	memcpy(process_name, sample->value.process_comm, TASK_COMM_LEN);
	labels[label_count++] = (struct pprof_label){ .key = "pid", .num = key->pid };
	labels[label_count++] = (struct pprof_label){ .key = "tid", .num = key->tid };
	labels[label_count++] = (struct pprof_label){ .key = "comm", .str = process_name };
	labels[label_count++] = (struct pprof_label){ .key = "thread_name", .str = thread_name };
	if (meta->off_cpu)
		labels[label_count++] =
			(struct pprof_label){ .key = "state",
					      .str = offcpu_state_name(key->state) };
	builtin = label_count;
	for (size_t i = 0; own && i < own->count && i < MAX_PROCESS_LABELS; i++)
		if (!is_builtin_label(labels, builtin, own->labels[i].name))
			labels[label_count++] = (struct pprof_label){ .key = own->labels[i].name,
								      .str = own->labels[i].value };

	count = add_stack(ctx, key->pid, key->kernel_stack_id, true, ids, 0);
	if (count >= 0)
		count = add_stack(ctx, key->pid, key->user_stack_id, false, ids, count);
	if (count < 0)
		return count;
	ctx->result.samples += sample->value.count;
	return pprof_builder__add_sample(ctx->builder, ids, count, values, labels, label_count);
}

/* A new builder with the window's sample types, comment and kernel mapping. */
static int start_profile(struct profile_context *ctx)
{
	const struct window_profile_meta *meta = &ctx->profile->meta;
	static const struct pprof_value_type cpu_types[] = {
		{ "samples", "count" },
		{ "cpu", "nanoseconds" },
	};
	/* As Pyroscope names it and the OpenTelemetry profiler emits it. */
	static const struct pprof_value_type off_cpu_types[] = {
		{ "samples", "count" },
		{ "off_cpu", "nanoseconds" },
	};
	const struct pprof_builder_opts builder_opts = {
		.sample_types = meta->off_cpu ? off_cpu_types : cpu_types,
		.sample_type_count = 2,
		.period_type = meta->off_cpu ? off_cpu_types[1] : cpu_types[1],
		.period = meta->off_cpu ? 1 : (int64_t)meta->period_ns,
		.time_nanos = meta->start_ns,
		.duration_nanos = meta->duration_ns,
	};
	/* The running kernel does not change: its build id is read once. */
	static char kernel_build_id[128];
	static bool kernel_build_id_read;
	int err;

	ctx->builder = pprof_builder__new(&builder_opts);
	if (!ctx->builder)
		return -errno;
	if (meta->comment) {
		err = pprof_builder__add_comment(ctx->builder, meta->comment);
		if (err)
			return err;
	}
	if (!kernel_build_id_read) {
		read_kernel_build_id(kernel_build_id, sizeof(kernel_build_id));
		kernel_build_id_read = true;
	}
	return pprof_builder__add_mapping(ctx->builder, KERNEL_MAPPING_START, UINT64_MAX, 0,
					  KERNEL_MAPPING_NAME, kernel_build_id, true,
					  &ctx->kernel_mapping_id);
}

struct window_profile *window_profile__new(const struct sample_window *window,
					   const struct process_table *processes,
					   struct symbolizer *symbolizer,
					   struct symbol_history *history,
					   const struct window_profile_meta *meta, bool built_twice)
{
	struct window_profile *profile = calloc(1, sizeof(*profile));

	if (!profile)
		return NULL;
	profile->window = window;
	profile->processes = processes;
	profile->symbolizer = symbolizer;
	profile->history = history;
	profile->meta = *meta;
	if (built_twice) {
		profile->symbols = symbol_cache__new();
		if (!profile->symbols) {
			free(profile);
			return NULL;
		}
	}
	return profile;
}

void window_profile__set_python(struct window_profile *profile,
				const struct python_processes *processes,
				struct python_code_cache *code)
{
	profile->python = processes;
	profile->python_code = code;
}

void window_profile__set_labels(struct window_profile *profile, struct process_labels *labels)
{
	profile->labels = labels;
}

void window_profile__free(struct window_profile *profile)
{
	if (!profile)
		return;
	symbol_cache__free(profile->symbols);
	free(profile);
}

/* Entries the symbol history has evicted so far; 0 without one. */
static uint64_t history_evicted(const struct window_profile *profile)
{
	struct symbol_history_stats stats = {};

	if (profile->history)
		symbol_history__stats(profile->history, &stats);
	return stats.evicted;
}

/* The whole window's profile, then written to path, or encoded into *ret_data when path is NULL. */
static int whole_window(struct window_profile *profile, const char *path, uint8_t **ret_data,
			size_t *ret_size, struct window_profile_result *ret_result)
{
	struct profile_context ctx = { .profile = profile };
	const struct sample_window *window = profile->window;
	uint64_t evicted = history_evicted(profile);
	int err;

	err = start_profile(&ctx);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < window->sample_count; i++) {
		err = add_sample(&ctx, &window->samples[i]);
		if (err)
			goto cleanup;
	}
	err = path ? pprof_builder__write_file(ctx.builder, path)
		   : pprof_builder__encode_gzip(ctx.builder, ret_data, ret_size);
	if (err)
		goto cleanup;
	ctx.result.symbols_evicted = history_evicted(profile) - evicted;
	*ret_result = ctx.result;
cleanup:
	pprof_builder__free(ctx.builder);
	return err;
}

int window_profile__write(struct window_profile *profile, const char *path,
			  struct window_profile_result *ret_result)
{
	return whole_window(profile, path, NULL, NULL, ret_result);
}

int window_profile__encode_gzip(struct window_profile *profile, uint8_t **ret_data,
				size_t *ret_size, struct window_profile_result *ret_result)
{
	return whole_window(profile, NULL, ret_data, ret_size, ret_result);
}

static int compare_by_pid(const void *a, const void *b)
{
	const struct drained_sample *x = *(const struct drained_sample *const *)a;
	const struct drained_sample *y = *(const struct drained_sample *const *)b;

	if (x->key.pid != y->key.pid)
		return x->key.pid < y->key.pid ? -1 : 1;
	/* Keep the window's order within a process, so profiles come out the same every time. */
	return x < y ? -1 : x > y;
}

int window_profile__for_each_process(struct window_profile *profile, bool gzip,
				     window_profile_process_fn fn, void *fn_ctx,
				     struct window_profile_result *ret_result)
{
	const struct sample_window *window = profile->window;
	struct window_profile_result result = {};
	const struct drained_sample **order;
	uint64_t evicted = history_evicted(profile);
	int err = 0;

	if (!window->sample_count) {
		*ret_result = result;
		return 0;
	}
	order = malloc(window->sample_count * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < window->sample_count; i++)
		order[i] = &window->samples[i];
	qsort(order, window->sample_count, sizeof(*order), compare_by_pid);

	for (size_t first = 0, end; first < window->sample_count; first = end) {
		struct profile_context ctx = { .profile = profile };
		char comm[TASK_COMM_LEN + 1] = {};
		const struct label_set *own;
		uint8_t *data = NULL;
		size_t size;

		for (end = first;
		     end < window->sample_count && order[end]->key.pid == order[first]->key.pid;
		     end++)
			;
		err = process_kept(profile, order[first]->key.pid, &own);
		if (err < 0)
			goto cleanup;
		if (!err) {
			/* Dropped by a rule: no profile to push at all. */
			for (size_t i = first; i < end; i++)
				result.samples_dropped += order[i]->value.count;
			continue;
		}
		err = start_profile(&ctx);
		for (size_t i = first; !err && i < end; i++)
			err = add_sample(&ctx, order[i]);
		if (!err)
			err = gzip ? pprof_builder__encode_gzip(ctx.builder, &data, &size)
				   : pprof_builder__encode(ctx.builder, &data, &size);
		pprof_builder__free(ctx.builder);
		if (err)
			goto cleanup;
		memcpy(comm, order[first]->value.process_comm, TASK_COMM_LEN);
		err = fn(fn_ctx, order[first]->key.pid, comm, data, size);
		free(data);
		if (err)
			goto cleanup;
		result.samples += ctx.result.samples;
		result.samples_dropped += ctx.result.samples_dropped;
		result.stacks_missing += ctx.result.stacks_missing;
		result.frames += ctx.result.frames;
		result.frames_without_mapping += ctx.result.frames_without_mapping;
		result.frames_without_symbol += ctx.result.frames_without_symbol;
		result.frames_remembered += ctx.result.frames_remembered;
		result.python_frames += ctx.result.python_frames;
		result.python_unreadable += ctx.result.python_unreadable;
		result.python_unresolved += ctx.result.python_unresolved;
	}
	result.symbols_evicted = history_evicted(profile) - evicted;
	*ret_result = result;
cleanup:
	free(order);
	return err;
}
