// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for window profiles: a window built by hand (drained samples
 * and stacks of two fixture processes) goes through the profile build, and
 * the pprof is decoded with protobuf-c: samples, locations, function names
 * and markers; per-process profiles agree with the whole one; and a window
 * built both ways is symbolized once, with the same bytes as built alone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/process/process_table.h"
#include "agent/profile/symbol_cache.h"
#include "agent/profile/window_profile.h"
#include "agent/sampling/window.h"
#include "lib/hashmap.h"
#include "proto/profile.pb-c.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/testing.h"

typedef Perftools__Profiles__Profile Profile;

#define PERIOD_NS 10000000ULL
#define MAX_OUTPUTS 4
/* A stack id the window does not hold: the sample says so with a marker. */
#define UNDRAINED_STACK_ID 999
#define KERNEL_ADDRESS 0xffffffff81000000ULL

struct outputs {
	size_t count;
	uint32_t pids[MAX_OUTPUTS];
	uint8_t *raw[MAX_OUTPUTS]; /* decompressed */
	size_t sizes[MAX_OUTPUTS];
};

struct fixture {
	struct fixture_process processes[2];
	struct symbolizer *symbolizer;
	struct process_table *table;
	struct sample_window window;
	char dir[64];
};

/* The decompressed bytes of a gzip stream; NULL on error. */
static uint8_t *gunzip(const uint8_t *data, size_t size, size_t *ret_size)
{
	z_stream stream = { .next_in = (Bytef *)data, .avail_in = (uInt)size };
	size_t capacity = 4 * size + 4096;
	uint8_t *out = malloc(capacity);
	int zerr;

	if (!out || inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		return NULL;
	}
	stream.next_out = out;
	stream.avail_out = (uInt)capacity;
	while ((zerr = inflate(&stream, Z_NO_FLUSH)) == Z_OK && !stream.avail_out) {
		uint8_t *grown = realloc(out, 2 * capacity);

		if (!grown)
			break;
		out = grown;
		stream.next_out = out + capacity;
		stream.avail_out = (uInt)capacity;
		capacity *= 2;
	}
	*ret_size = stream.total_out;
	inflateEnd(&stream);
	if (zerr != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static uint8_t *read_gzip_file(const char *path, size_t *ret_size)
{
	FILE *file = fopen(path, "re");
	uint8_t buffer[1 << 16], *raw;
	size_t size;

	CHECK(file != NULL);
	if (!file)
		return NULL;
	size = fread(buffer, 1, sizeof(buffer), file);
	fclose(file);
	CHECK(size > 0 && size < sizeof(buffer));
	raw = gunzip(buffer, size, ret_size);
	CHECK(raw != NULL);
	return raw;
}

static int collect(void *ctx, uint32_t pid, const char *comm, const uint8_t *data, size_t size)
{
	struct outputs *outputs = ctx;

	CHECK(comm[0] != '\0');
	if (outputs->count == MAX_OUTPUTS)
		return -E2BIG;
	outputs->pids[outputs->count] = pid;
	outputs->raw[outputs->count] = gunzip(data, size, &outputs->sizes[outputs->count]);
	CHECK(outputs->raw[outputs->count] != NULL);
	outputs->count++;
	return 0;
}

static void free_outputs(struct outputs *outputs)
{
	for (size_t i = 0; i < outputs->count; i++)
		free(outputs->raw[i]);
	*outputs = (struct outputs){};
}

static void on_mappings_changed(void *ctx, const struct process_change *change)
{
	symbolizer__prepare_process_files(ctx, (int)change->pid, change->maps, change->fds);
}

static uint64_t function_address(const struct fixture_process *process, const char *name)
{
	for (size_t i = 0; i < process->function_count; i++)
		if (!strcmp(process->functions[i].name, name))
			return process->functions[i].addr;
	CHECK(!"fixture function printed");
	return 0;
}

static void add_stack(struct sample_window *window, uint64_t id, const uint64_t *addresses,
		      uint32_t count)
{
	struct drained_stack *stack = malloc(sizeof(*stack) + count * sizeof(uint64_t));

	CHECK(stack != NULL);
	*stack = (struct drained_stack){ .frame_count = count };
	memcpy(stack->addresses, addresses, count * sizeof(uint64_t));
	CHECK(hashmap__set(window->stacks, id, stack, NULL, NULL) == 0);
}

static void add_sample(struct sample_window *window, uint32_t pid, uint64_t user_stack_id,
		       uint64_t kernel_stack_id, uint64_t count)
{
	struct drained_sample *sample = &window->samples[window->sample_count++];

	*sample = (struct drained_sample){
		.key = { .pid = pid,
			 .tid = pid,
			 .user_stack_id = user_stack_id,
			 .kernel_stack_id = kernel_stack_id },
		.value = { .count = count },
	};
	snprintf(sample->value.process_comm, sizeof(sample->value.process_comm), "fixture%u",
		 pid % 10);
	memcpy(sample->value.thread_comm, sample->value.process_comm, TASK_COMM_LEN);
}

/*
 * Two fixture processes; process 0: alpha <- beta (3 samples) and gamma under
 * a lost kernel stack (2); process 1: alpha <- beta (1), an undrained stack (1).
 * Kernel frames: the same address as leaf and as return address.
 */
static bool fixture_start(struct fixture *fixture)
{
	char path[512];

	memset(fixture, 0, sizeof(*fixture));
	snprintf(path, sizeof(path), "%s/fixture_pie", FIXTURE_DIR);
	for (int i = 0; i < 2; i++)
		if (start_fixture(path, &fixture->processes[i])) {
			CHECK(!"fixture started");
			return false;
		}
	fixture->symbolizer = symbolizer__new(NULL);
	fixture->table = process_table__new(8);
	CHECK(fixture->symbolizer && fixture->table);
	CHECK(process_table__add_listener(fixture->table,
					  &(struct process_listener){
						  .on_mappings_changed = on_mappings_changed,
						  .ctx = fixture->symbolizer,
					  }) == 0);
	fixture->window.stacks = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	fixture->window.samples = calloc(8, sizeof(*fixture->window.samples));
	CHECK(fixture->window.stacks && fixture->window.samples);
	for (int i = 0; i < 2; i++) {
		const struct fixture_process *process = &fixture->processes[i];
		const uint64_t stack[] = { function_address(process, "fixture_alpha"),
					   function_address(process, "fixture_beta") + 1 };

		add_stack(&fixture->window, STACK_ID_FIRST_VALID + 10 * i, stack, 2);
	}
	add_stack(&fixture->window, STACK_ID_FIRST_VALID + 1,
		  (uint64_t[]){ function_address(&fixture->processes[0], "fixture_gamma") }, 1);
	add_stack(&fixture->window, STACK_ID_FIRST_VALID + 2,
		  (uint64_t[]){ KERNEL_ADDRESS, KERNEL_ADDRESS }, 2);

	uint32_t first = (uint32_t)fixture->processes[0].pid;
	uint32_t second = (uint32_t)fixture->processes[1].pid;

	add_sample(&fixture->window, first, STACK_ID_FIRST_VALID, STACK_ID_NONE, 3);
	add_sample(&fixture->window, second, STACK_ID_FIRST_VALID + 10, STACK_ID_FIRST_VALID + 2,
		   1);
	add_sample(&fixture->window, first, STACK_ID_FIRST_VALID + 1, STACK_ID_MAP_FULL, 2);
	add_sample(&fixture->window, second, UNDRAINED_STACK_ID, STACK_ID_NONE, 1);
	/* The process stage captures the sampled processes before the profile is built. */
	process_table__sync_window(fixture->table, &fixture->window);
	CHECK(process_table__size(fixture->table) == 2);
	snprintf(fixture->dir, sizeof(fixture->dir), "/tmp/kiln-window-profile-XXXXXX");
	CHECK(mkdtemp(fixture->dir) != NULL);
	return true;
}

static void fixture_stop(struct fixture *fixture)
{
	char path[128];

	for (int i = 0; i < 2; i++)
		stop_fixture(&fixture->processes[i]);
	sample_window__free(&fixture->window);
	process_table__free(fixture->table);
	symbolizer__free(fixture->symbolizer);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%d.pb.gz", fixture->dir, i);
		unlink(path);
	}
	rmdir(fixture->dir);
}

static const struct window_profile_meta meta = {
	.start_ns = 1700000000000000000LL,
	.duration_ns = 10000000000LL,
	.period_ns = PERIOD_NS,
	.comment = "test",
};

/* Builds the window: the file (path not NULL) and/or per-process profiles (outputs). */
static void build(struct fixture *fixture, bool built_twice, const char *path,
		  struct outputs *outputs, uint64_t *ret_dwarf_lookups)
{
	struct window_profile *profile = window_profile__new(
		&fixture->window, fixture->table, fixture->symbolizer, NULL, &meta, built_twice);
	struct window_profile_result result = {};
	struct symbolizer_stats before, after;

	CHECK(profile != NULL);
	if (!profile)
		return;
	if (path) {
		CHECK(window_profile__write(profile, path, &result) == 0);
		CHECK(result.samples == 7 && result.stacks_missing == 1);
	}
	symbolizer__stats(fixture->symbolizer, &before);
	if (outputs) {
		CHECK(window_profile__for_each_process(profile, true, collect, outputs, &result) ==
		      0);
		CHECK(result.samples == 7 && result.stacks_missing == 1);
	}
	symbolizer__stats(fixture->symbolizer, &after);
	*ret_dwarf_lookups = after.dwarf_lookups - before.dwarf_lookups;
	window_profile__free(profile);
}

static const char *string_at(const Profile *profile, int64_t index)
{
	return index >= 0 && (size_t)index < profile->n_string_table ? profile->string_table[index]
								     : NULL;
}

/* A sample as "pid count ns: leaf <- ... <- root", each location's innermost function. */
static void describe(const Profile *profile, const Perftools__Profiles__Sample *sample, char *out,
		     size_t size)
{
	int64_t pid = -1;
	size_t used;

	for (size_t i = 0; i < sample->n_label; i++)
		if (!strcmp(string_at(profile, sample->label[i]->key), "pid"))
			pid = sample->label[i]->num;
	used = (size_t)snprintf(out, size, "%" PRId64 " %" PRId64 " %" PRId64 ":", pid,
				sample->value[0], sample->value[1]);
	for (size_t i = 0; i < sample->n_location_id && used < size; i++) {
		const char *name = "?";

		for (size_t l = 0; l < profile->n_location; l++) {
			const Perftools__Profiles__Location *location = profile->location[l];

			if (location->id != sample->location_id[i])
				continue;
			/* A kernel symbol's name depends on access to kallsyms; markers are in no mapping. */
			if (location->address >= KERNEL_ADDRESS && location->mapping_id) {
				name = "[kernel]";
				break;
			}
			for (size_t f = 0; location->n_line && f < profile->n_function; f++)
				if (profile->function[f]->id == location->line[0]->function_id)
					name = string_at(profile, profile->function[f]->name);
		}
		used += (size_t)snprintf(out + used, size - used, " %s", name);
	}
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every sample of the profiles described, sorted: what a reader sees, whatever the order. */
static size_t describe_all(uint8_t *const *raw, const size_t *sizes, size_t count,
			   char lines[][256], size_t max_lines)
{
	char *sorted[16];
	char copy[16][256];
	size_t n = 0;

	for (size_t p = 0; p < count; p++) {
		Profile *profile = perftools__profiles__profile__unpack(NULL, sizes[p], raw[p]);

		CHECK(profile != NULL);
		for (size_t s = 0; profile && s < profile->n_sample && n < max_lines; s++)
			describe(profile, profile->sample[s], copy[n++], sizeof(copy[0]));
		if (profile)
			perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = copy[i];
	qsort(sorted, n, sizeof(sorted[0]), compare_strings);
	for (size_t i = 0; i < n; i++)
		snprintf(lines[i], sizeof(lines[0]), "%s", sorted[i]);
	return n;
}

static void test_samples_locations_and_names(void)
{
	struct fixture fixture;
	char path[128], lines[8][256], expected[8][256];
	uint64_t lookups;
	uint8_t *raw;
	size_t size, count;

	if (!fixture_start(&fixture))
		goto cleanup;
	snprintf(path, sizeof(path), "%s/0.pb.gz", fixture.dir);
	build(&fixture, false, path, NULL, &lookups);
	raw = read_gzip_file(path, &size);
	if (!raw)
		goto cleanup;
	count = describe_all(&raw, &size, 1, lines, 8);
	free(raw);
	uint32_t first = (uint32_t)fixture.processes[0].pid;
	uint32_t second = (uint32_t)fixture.processes[1].pid;

	/* Kernel frames first (leaf to root), then user frames; values: count, count * period. */
	snprintf(expected[0], 256, "%u 1 %llu: [kernel] [kernel] fixture_alpha fixture_beta",
		 second, PERIOD_NS);
	snprintf(expected[1], 256, "%u 1 %llu: [stack lost: not drained]", second, PERIOD_NS);
	snprintf(expected[2], 256, "%u 2 %llu: [stack lost: stacks map full] fixture_gamma", first,
		 2 * PERIOD_NS);
	snprintf(expected[3], 256, "%u 3 %llu: fixture_alpha fixture_beta", first, 3 * PERIOD_NS);
	char *order[4] = { expected[0], expected[1], expected[2], expected[3] };

	qsort(order, 4, sizeof(order[0]), compare_strings);
	CHECK(count == 4);
	for (size_t i = 0; i < count && i < 4; i++)
		CHECK_STR(lines[i], order[i]);
cleanup:
	fixture_stop(&fixture);
}

static void test_per_process_agree_with_whole(void)
{
	struct fixture fixture;
	struct outputs outputs = {};
	char path[128], whole[8][256], split[8][256];
	uint64_t lookups;
	uint8_t *raw;
	size_t size, whole_count, split_count;

	if (!fixture_start(&fixture))
		goto cleanup;
	snprintf(path, sizeof(path), "%s/0.pb.gz", fixture.dir);
	build(&fixture, true, path, &outputs, &lookups);
	CHECK(outputs.count == 2);
	/* Sorted by pid, one each. */
	CHECK(outputs.count == 2 && outputs.pids[0] < outputs.pids[1]);
	raw = read_gzip_file(path, &size);
	if (!raw)
		goto cleanup;
	whole_count = describe_all(&raw, &size, 1, whole, 8);
	split_count = describe_all(outputs.raw, outputs.sizes, outputs.count, split, 8);
	free(raw);
	CHECK(whole_count == 4 && split_count == whole_count);
	for (size_t i = 0; i < whole_count && i < split_count; i++)
		CHECK_STR(split[i], whole[i]);
cleanup:
	free_outputs(&outputs);
	fixture_stop(&fixture);
}

static void test_symbolized_once_same_bytes(void)
{
	struct fixture fixture;
	struct outputs once = {}, alone = {};
	char once_path[128], alone_path[128];
	uint64_t lookups_once, lookups_alone, lookups_file;
	uint8_t *once_raw = NULL, *alone_raw = NULL;
	size_t once_size = 0, alone_size = 0;

	if (!fixture_start(&fixture))
		goto cleanup;
	snprintf(once_path, sizeof(once_path), "%s/0.pb.gz", fixture.dir);
	snprintf(alone_path, sizeof(alone_path), "%s/1.pb.gz", fixture.dir);
	/* Built alone, as before: the file, then the per-process profiles each by itself. */
	build(&fixture, false, alone_path, NULL, &lookups_file);
	build(&fixture, false, NULL, &alone, &lookups_alone);
	/* Both from one window profile: the second pass asks the symbolizer nothing. */
	build(&fixture, true, once_path, &once, &lookups_once);
	CHECK(lookups_alone > 0);
	CHECK(lookups_once == 0);
	once_raw = read_gzip_file(once_path, &once_size);
	alone_raw = read_gzip_file(alone_path, &alone_size);
	CHECK(once_raw && alone_raw && once_size == alone_size &&
	      !memcmp(once_raw, alone_raw, once_size));
	CHECK(once.count == 2 && alone.count == 2);
	for (size_t i = 0; i < once.count && i < alone.count; i++)
		CHECK(once.pids[i] == alone.pids[i] && once.sizes[i] == alone.sizes[i] &&
		      !memcmp(once.raw[i], alone.raw[i], once.sizes[i]));
cleanup:
	free(once_raw);
	free(alone_raw);
	free_outputs(&once);
	free_outputs(&alone);
	fixture_stop(&fixture);
}

/* The window written to path with history; its result and the DWARF lookups it made. */
static void build_with_history(struct fixture *fixture, struct symbol_history *history,
			       const char *path, struct window_profile_result *ret_result,
			       uint64_t *ret_dwarf_lookups)
{
	struct window_profile *profile = window_profile__new(
		&fixture->window, fixture->table, fixture->symbolizer, history, &meta, false);
	struct symbolizer_stats before, after;

	*ret_result = (struct window_profile_result){};
	CHECK(profile != NULL);
	if (!profile)
		return;
	symbolizer__stats(fixture->symbolizer, &before);
	CHECK(window_profile__write(profile, path, ret_result) == 0);
	symbolizer__stats(fixture->symbolizer, &after);
	*ret_dwarf_lookups = after.dwarf_lookups - before.dwarf_lookups;
	window_profile__free(profile);
}

static void test_history_names_later_windows(void)
{
	struct fixture fixture;
	struct symbol_history *history = symbol_history__new(1 << 20);
	struct window_profile_result plain_result, first, second;
	char plain_path[128], first_path[128], second_path[128];
	uint64_t lookups_plain, lookups_first, lookups_second;
	uint8_t *plain = NULL, *first_raw = NULL, *second_raw = NULL;
	size_t plain_size = 0, first_size = 0, second_size = 0;

	CHECK(history != NULL);
	if (!fixture_start(&fixture) || !history)
		goto cleanup;
	snprintf(plain_path, sizeof(plain_path), "%s/0.pb.gz", fixture.dir);
	snprintf(first_path, sizeof(first_path), "%s/1.pb.gz", fixture.dir);
	snprintf(second_path, sizeof(second_path), "%s/2.pb.gz", fixture.dir);
	build_with_history(&fixture, NULL, plain_path, &plain_result, &lookups_plain);
	CHECK(plain_result.frames_remembered == 0);
	build_with_history(&fixture, history, first_path, &first, &lookups_first);
	/*
	 * Both processes run one build: the second's alpha and beta are the
	 * first's file offsets, named without the symbolizer. gamma is not.
	 */
	CHECK(first.frames_remembered == 2);
	CHECK(lookups_first > 0 && lookups_first < lookups_plain);
	/* The next window: every user frame from the history, no DWARF read. */
	build_with_history(&fixture, history, second_path, &second, &lookups_second);
	CHECK(second.frames_remembered == 5);
	CHECK(lookups_second == 0);
	CHECK(first.symbols_evicted == 0 && second.symbols_evicted == 0);
	/* What readers see does not change: the same bytes as without a history. */
	plain = read_gzip_file(plain_path, &plain_size);
	first_raw = read_gzip_file(first_path, &first_size);
	second_raw = read_gzip_file(second_path, &second_size);
	CHECK(plain && first_raw && second_raw && plain_size == first_size &&
	      plain_size == second_size && !memcmp(plain, first_raw, plain_size) &&
	      !memcmp(plain, second_raw, plain_size));
cleanup:
	free(plain);
	free(first_raw);
	free(second_raw);
	unlink(first_path);
	unlink(second_path);
	symbol_history__free(history);
	fixture_stop(&fixture);
}

TEST_MAIN("window_profile", TEST(test_samples_locations_and_names),
	  TEST(test_per_process_agree_with_whole), TEST(test_symbolized_once_same_bytes),
	  TEST(test_history_names_later_windows))
