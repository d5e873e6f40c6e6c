// SPDX-License-Identifier: Apache-2.0
/* Unit tests for merging and filtering profiles, read back with protobuf-c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gzip.h"
#include "proto/pprof_builder.h"
#include "proto/pprof_merge.h"
#include "proto/profile.pb-c.h"
#include "tests/unit/testing.h"

typedef Perftools__Profiles__Profile Profile;

static const struct pprof_value_type cpu_types[] = { { "samples", "count" },
						     { "cpu", "nanoseconds" } };
static const struct pprof_value_type offcpu_types[] = { { "off_cpu", "nanoseconds" } };

/*
 * A window of two processes: pid 10 "alpha" (thread 11) with main -> hot
 * at 0x1010 (leaf) and main's call site 0x1010 too, whose lines differ;
 * pid 20 "beta" in container c1 with main -> cold.
 */
static uint8_t *window(int64_t start_ns, int64_t hot, int64_t cold, size_t *ret_size)
{
	struct pprof_builder *b = pprof_builder__new(&(struct pprof_builder_opts){
		.sample_types = cpu_types,
		.sample_type_count = 2,
		.period_type = { "cpu", "nanoseconds" },
		.period = 10000000,
		.time_nanos = start_ns,
		.duration_nanos = 10000000000,
	});
	uint64_t mapping, leaf, caller, cold_leaf, root;
	struct pprof_line hot_line = { .function_name = "hot", .filename = "a.c", .line = 5 };
	struct pprof_line main_line = { .function_name = "main", .filename = "a.c", .line = 20 };
	struct pprof_line cold_line = { .function_name = "cold", .filename = "b.c", .line = 7 };
	struct pprof_label alpha[] = { { .key = "pid", .num = 10 },
				       { .key = "tid", .num = 11 },
				       { .key = "comm", .str = "alpha" } };
	struct pprof_label beta[] = { { .key = "pid", .num = 20 },
				      { .key = "tid", .num = 20 },
				      { .key = "comm", .str = "beta" },
				      { .key = "container_id", .str = "c1" } };
	uint64_t hot_stack[2], cold_stack[2];
	int64_t hot_values[] = { hot, hot * 10000000 }, cold_values[] = { cold, cold * 10000000 };
	uint8_t *gz, *raw;
	size_t gz_size;

	CHECK(b);
	CHECK(!pprof_builder__add_mapping(b, 0x1000, 0x2000, 0, "/bin/a", "abcd", true, &mapping));
	/* The same address as a leaf (hot) and as a return address (main's call). */
	CHECK(!pprof_builder__add_location(b, mapping, 0x1010, false, &hot_line, 1, &leaf));
	CHECK(!pprof_builder__add_location(b, mapping, 0x1010, true, &main_line, 1, &caller));
	CHECK(!pprof_builder__add_location(b, mapping, 0x1100, false, &cold_line, 1, &cold_leaf));
	CHECK(!pprof_builder__add_location(b, mapping, 0x1200, true, &main_line, 1, &root));
	hot_stack[0] = leaf, hot_stack[1] = caller;
	cold_stack[0] = cold_leaf, cold_stack[1] = root;
	CHECK(!pprof_builder__add_sample(b, hot_stack, 2, hot_values, alpha, 3));
	CHECK(!pprof_builder__add_sample(b, cold_stack, 2, cold_values, beta, 4));
	CHECK(!pprof_builder__encode_gzip(b, &gz, &gz_size));
	pprof_builder__free(b);
	CHECK(!gzip_decompress(gz, gz_size, 1 << 20, &raw, ret_size));
	free(gz);
	return raw;
}

static Profile *merged(struct pprof_merge *merge)
{
	uint8_t *gz, *raw;
	size_t gz_size, raw_size;
	Profile *profile;

	CHECK(!pprof_merge__encode_gzip(merge, &gz, &gz_size));
	CHECK(!gzip_decompress(gz, gz_size, 1 << 24, &raw, &raw_size));
	profile = perftools__profiles__profile__unpack(NULL, raw_size, raw);
	CHECK(profile);
	free(gz);
	free(raw);
	return profile;
}

static const Perftools__Profiles__Location *location_of(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++) {
		if (p->location[i]->id == id)
			return p->location[i];
	}
	return NULL;
}

static const char *function_name(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++) {
		if (p->function[i]->id == id)
			return p->string_table[p->function[i]->name];
	}
	return NULL;
}

/* The sum of the first value of the samples whose leaf is function name, and its caller's name. */
static int64_t leaf_total(const Profile *p, const char *name, const char *caller)
{
	int64_t total = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const Perftools__Profiles__Location *leaf, *up;

		if (s->n_location_id != 2)
			continue;
		leaf = location_of(p, s->location_id[0]);
		up = location_of(p, s->location_id[1]);
		if (!leaf || !up || !leaf->n_line || !up->n_line)
			continue;
		if (!strcmp(function_name(p, leaf->line[0]->function_id), name) &&
		    !strcmp(function_name(p, up->line[0]->function_id), caller))
			total += s->value[0];
	}
	return total;
}

static void test_windows_merge_into_one(void)
{
	size_t size_1, size_2;
	uint8_t *first = window(1000000000000, 6, 1, &size_1);
	uint8_t *second = window(1010000000000, 3, 2, &size_2);
	struct pprof_merge *merge = pprof_merge__new();
	struct pprof_merge_stats stats;
	Profile *p;

	CHECK(merge);
	CHECK(!pprof_merge__add(merge, second, size_2, NULL));
	CHECK(!pprof_merge__add(merge, first, size_1, NULL));
	p = merged(merge);
	/* Values of both windows, the leaf's lines kept apart from the call site's. */
	CHECK(leaf_total(p, "hot", "main") == 9);
	CHECK(leaf_total(p, "cold", "main") == 3);
	CHECK(p->n_sample == 4);
	/* Shared functions and mappings written once. */
	CHECK(p->n_function == 3);
	CHECK(p->n_mapping == 1);
	CHECK(p->n_location == 4);
	CHECK(p->n_sample_type == 2);
	CHECK_STR(p->string_table[p->sample_type[1]->type], "cpu");
	CHECK(p->period == 10000000);
	/* The earliest start, to the end of the latest. */
	CHECK(p->time_nanos == 1000000000000);
	CHECK(p->duration_nanos == 20000000000);
	pprof_merge__stats(merge, &stats);
	CHECK(stats.profiles == 2 && stats.samples == 4 && !stats.samples_filtered);
	perftools__profiles__profile__free_unpacked(p, NULL);
	pprof_merge__free(merge);
	free(first);
	free(second);
}

static int64_t value_of_pid(const Profile *p, int64_t pid)
{
	int64_t total = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		for (size_t j = 0; j < p->sample[i]->n_label; j++) {
			const Perftools__Profiles__Label *l = p->sample[i]->label[j];

			if (!strcmp(p->string_table[l->key], "pid") && l->num == pid)
				total += p->sample[i]->value[0];
		}
	}
	return total;
}

static Profile *filtered(const uint8_t *data, size_t size, const struct pprof_filter *filter,
			 uint64_t *ret_filtered)
{
	struct pprof_merge *merge = pprof_merge__new();
	struct pprof_merge_stats stats;
	Profile *p;

	CHECK(!pprof_merge__add(merge, data, size, filter));
	p = merged(merge);
	pprof_merge__stats(merge, &stats);
	*ret_filtered = stats.samples_filtered;
	pprof_merge__free(merge);
	return p;
}

static void test_filters_keep_only_matching_samples(void)
{
	size_t size;
	uint8_t *data = window(1000000000000, 6, 1, &size);
	uint64_t dropped;
	Profile *p;

	p = filtered(data, size, &(struct pprof_filter){ .pid = 20 }, &dropped);
	CHECK(value_of_pid(p, 20) == 1 && value_of_pid(p, 10) == 0 && dropped == 1);
	perftools__profiles__profile__free_unpacked(p, NULL);
	p = filtered(data, size, &(struct pprof_filter){ .tid = 11 }, &dropped);
	CHECK(value_of_pid(p, 10) == 6 && value_of_pid(p, 20) == 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	p = filtered(data, size, &(struct pprof_filter){ .comm = "beta" }, &dropped);
	CHECK(value_of_pid(p, 20) == 1 && value_of_pid(p, 10) == 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	p = filtered(data, size,
		     &(struct pprof_filter){ .label_key = "container_id", .label_value = "c1" },
		     &dropped);
	CHECK(value_of_pid(p, 20) == 1 && value_of_pid(p, 10) == 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	/* Every field set must match: no sample is both. */
	p = filtered(data, size, &(struct pprof_filter){ .pid = 10, .comm = "beta" }, &dropped);
	CHECK(p->n_sample == 0 && dropped == 2);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(data);
}

static int collect(void *ctx, const struct pprof_merge_process *process)
{
	int64_t *values = ctx;

	if (process->pid == 10 && !strcmp(process->comm, "alpha") && !*process->container_id)
		values[0] += process->value;
	if (process->pid == 20 && !strcmp(process->comm, "beta") &&
	    !strcmp(process->container_id, "c1"))
		values[1] += process->value;
	return 0;
}

static void test_processes_listed_with_their_values(void)
{
	size_t size_1, size_2;
	uint8_t *first = window(1000000000000, 6, 1, &size_1);
	uint8_t *second = window(1010000000000, 3, 2, &size_2);
	struct pprof_merge *merge = pprof_merge__new();
	int64_t values[2] = {};

	CHECK(!pprof_merge__add(merge, first, size_1, NULL));
	CHECK(!pprof_merge__add(merge, second, size_2, NULL));
	CHECK(!pprof_merge__for_each_process(merge, collect, values));
	CHECK(values[0] == 9 && values[1] == 3);
	pprof_merge__free(merge);
	free(first);
	free(second);
}

static void test_bad_input_refused_or_dropped(void)
{
	struct pprof_merge *merge = pprof_merge__new();
	struct pprof_builder *other;
	struct pprof_merge_stats stats;
	uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12 };
	uint8_t *data, *gz, *raw, *repacked;
	size_t size, gz_size, raw_size;
	Profile *p;

	CHECK(pprof_merge__encode_gzip(merge, &gz, &gz_size) == -ENOENT);
	CHECK(pprof_merge__add(merge, garbage, sizeof(garbage), NULL) == -EINVAL);
	data = window(1000000000000, 6, 1, &size);
	/* A sample whose location is in no table: dropped, counted; the rest kept. */
	p = perftools__profiles__profile__unpack(NULL, size, data);
	CHECK(p && p->n_sample == 2);
	p->sample[0]->location_id[1] = 999;
	repacked = malloc(perftools__profiles__profile__get_packed_size(p));
	size = perftools__profiles__profile__pack(p, repacked);
	perftools__profiles__profile__free_unpacked(p, NULL);
	CHECK(!pprof_merge__add(merge, repacked, size, NULL));
	pprof_merge__stats(merge, &stats);
	CHECK(stats.samples == 1 && stats.samples_invalid == 1);
	/* An off-CPU window does not merge into CPU ones. */
	other = pprof_builder__new(&(struct pprof_builder_opts){
		.sample_types = offcpu_types,
		.sample_type_count = 1,
		.period_type = { "off_cpu", "nanoseconds" },
		.period = 1,
	});
	CHECK(!pprof_builder__encode_gzip(other, &gz, &gz_size));
	CHECK(!gzip_decompress(gz, gz_size, 1 << 20, &raw, &raw_size));
	CHECK(pprof_merge__add(merge, raw, raw_size, NULL) == -EINVAL);
	pprof_builder__free(other);
	free(gz);
	free(raw);
	free(repacked);
	free(data);
	pprof_merge__free(merge);
}

TEST_MAIN("pprof_merge", TEST(test_windows_merge_into_one),
	  TEST(test_filters_keep_only_matching_samples),
	  TEST(test_processes_listed_with_their_values), TEST(test_bad_input_refused_or_dropped))
