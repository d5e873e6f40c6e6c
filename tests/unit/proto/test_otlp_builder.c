// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the OTLP builder: pprof profiles made with the pprof
 * builder go in, the request comes out and is read back with protobuf-c
 * from kiln's own schema; the integration test reads it with Python's
 * protobuf against the release's field numbers.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lib/gzip.h"
#include "proto/otlp_builder.h"
#include "proto/otlp_profiles_service.pb-c.h"
#include "proto/pprof_builder.h"
#include "proto/profile.pb-c.h"
#include "tests/unit/testing.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
	Request;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dictionary;
typedef Opentelemetry__Proto__Profiles__V1development__Profile Profile;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles ResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Sample Sample;
typedef Opentelemetry__Proto__Profiles__V1development__Stack Stack;
typedef Opentelemetry__Proto__Profiles__V1development__Location Location;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping Mapping;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit KeyValueAndUnit;

static const struct pprof_value_type cpu_types[] = { { "samples", "count" },
						     { "cpu", "nanoseconds" } };
static const char *const exported_types[] = { "samples", "off_cpu" };
static const struct otlp_label_rename renames[] = {
	{ "tid", "thread.id" },
	{ "thread_name", "thread.name" },
};
static const struct otlp_builder_opts opts = {
	.scope_name = "kiln",
	.scope_version = "test",
	.sample_types = exported_types,
	.sample_type_count = 2,
	.labels = renames,
	.label_count = 2,
	.build_id_attribute = "process.executable.build_id.gnu",
	.executable_build_id_attribute = "process.executable.build_id.gnu",
};

/*
 * One process's CPU profile: main -> shared (in libc, at the same address
 * in both processes) -> own_PID, 3 samples, and one with 0 samples.
 */
static uint8_t *process_pprof(int pid, size_t *ret_size)
{
	struct pprof_builder *b = pprof_builder__new(&(struct pprof_builder_opts){
		.sample_types = cpu_types,
		.sample_type_count = 2,
		.period_type = { "cpu", "nanoseconds" },
		.period = 1000,
		.time_nanos = 1700000000000000000,
		.duration_nanos = 10000000000,
	});
	uint64_t exe, libc, loc[3], ids[3];
	char own[32], exe_path[32];
	uint8_t *gz = NULL, *raw = NULL;
	size_t gz_size = 0;

	snprintf(own, sizeof(own), "own_%d", pid);
	snprintf(exe_path, sizeof(exe_path), "/usr/bin/prog%d", pid);
	CHECK(!pprof_builder__add_mapping(b, 0x400000, 0x500000, 0, exe_path, "ab12", true, &exe));
	CHECK(!pprof_builder__add_mapping(b, 0x7f0000000000, 0x7f0000100000, 0x1000,
					  "/usr/lib/libc.so.6", "cd34", true, &libc));
	CHECK(!pprof_builder__add_location(b, exe, 0x401000, true,
					   &(struct pprof_line){ "main", NULL, "main.c", 1, 10 }, 1,
					   &loc[0]));
	CHECK(!pprof_builder__add_location(
		b, libc, 0x7f0000001234, true,
		&(struct pprof_line){ "shared", NULL, "shared.c", 5, 50 }, 1, &loc[1]));
	/* Two lines: own inlined into its caller. */
	const struct pprof_line lines[] = { { own, NULL, "own.c", 20, 22 },
					    { "outer", NULL, "own.c", 30, 33 } };
	CHECK(!pprof_builder__add_location(b, exe, 0x402000, false, lines, 2, &loc[2]));
	ids[0] = loc[2];
	ids[1] = loc[1];
	ids[2] = loc[0];
	const struct pprof_label labels[] = { { .key = "pid", .num = pid },
					      { .key = "tid", .num = pid + 1 },
					      { .key = "thread_name", .str = "worker" } };
	CHECK(!pprof_builder__add_sample(b, ids, 3, (int64_t[]){ 3, 3000 }, labels, 3));
	CHECK(!pprof_builder__add_sample(b, ids + 1, 2, (int64_t[]){ 0, 0 }, labels, 3));
	CHECK(!pprof_builder__encode_gzip(b, &gz, &gz_size));
	CHECK(!gzip_decompress(gz, gz_size, 1 << 20, &raw, ret_size));
	free(gz);
	pprof_builder__free(b);
	return raw;
}

static Request *build_two(size_t *ret_size)
{
	struct otlp_builder *builder = otlp_builder__new(&opts);
	uint8_t *pprof, *data = NULL;
	size_t size, data_size = 0;
	Request *request;

	for (int pid = 100; pid <= 200; pid += 100) {
		const struct otlp_attribute resource[] = { { "process.pid", NULL, pid },
							   { "service.name", "prog", 0 } };
		char exe[32];

		snprintf(exe, sizeof(exe), "/usr/bin/prog%d", pid);

		pprof = process_pprof(pid, &size);
		CHECK(!otlp_builder__add_pprof(builder, resource, 2, exe, pprof, size));
		free(pprof);
	}
	CHECK(otlp_builder__resource_count(builder) == 2);
	CHECK(!otlp_builder__encode(builder, &data, &data_size));
	otlp_builder__free(builder);
	request =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
			NULL, data_size, data);
	free(data);
	if (ret_size)
		*ret_size = data_size;
	return request;
}

static void free_request(Request *request)
{
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(
		request, NULL);
}

static const char *string_at(const Dictionary *d, int32_t index)
{
	return index >= 0 && (size_t)index < d->n_string_table ? d->string_table[index] : NULL;
}

static void test_tables_start_with_zero_values(void)
{
	Request *request = build_two(NULL);
	const Dictionary *d;

	CHECK(request);
	if (!request)
		return;
	d = request->dictionary;
	CHECK(d && d->n_string_table > 1 && !strcmp(d->string_table[0], ""));
	CHECK(d->n_mapping_table == 4); /* zero, two exes, libc at one address in both */
	CHECK(!d->mapping_table[0]->memory_start && !d->mapping_table[0]->filename_strindex &&
	      !d->mapping_table[0]->n_attribute_indices);
	CHECK(!d->location_table[0]->mapping_index && !d->location_table[0]->address &&
	      !d->location_table[0]->n_lines);
	CHECK(!d->function_table[0]->name_strindex);
	/* The zero-valued samples' stacks are not sent. */
	CHECK(d->n_stack_table == 3 && !d->stack_table[0]->n_location_indices);
	CHECK(d->n_link_table == 1 && !d->link_table[0]->trace_id.len);
	CHECK(!d->attribute_table[0]->key_strindex && !d->attribute_table[0]->value);
	free_request(request);
}

static void test_shared_records_sent_once(void)
{
	Request *request = build_two(NULL);
	const Dictionary *d = request ? request->dictionary : NULL;
	int shared = 0, libc = 0, own = 0;

	CHECK(d);
	if (!d)
		return;
	for (size_t i = 1; i < d->n_function_table; i++) {
		const char *name = string_at(d, d->function_table[i]->name_strindex);

		shared += name && !strcmp(name, "shared");
		own += name && !strncmp(name, "own_", 4);
	}
	for (size_t i = 1; i < d->n_mapping_table; i++) {
		const char *file = string_at(d, d->mapping_table[i]->filename_strindex);

		libc += file && !strcmp(file, "/usr/lib/libc.so.6");
	}
	CHECK(shared == 1);
	CHECK(own == 2);
	CHECK(libc == 1);
	for (size_t i = 1; i < d->n_string_table; i++)
		for (size_t j = i + 1; j < d->n_string_table; j++)
			CHECK(strcmp(d->string_table[i], d->string_table[j]));
	free_request(request);
}

static void test_stacks_and_values_read_back(void)
{
	Request *request = build_two(NULL);
	const Dictionary *d;

	CHECK(request && request->n_resource_profiles == 2);
	if (!request || request->n_resource_profiles != 2)
		return;
	d = request->dictionary;
	for (size_t r = 0; r < 2; r++) {
		const ResourceProfiles *resource = request->resource_profiles[r];
		const Profile *profile;
		char own[32];

		snprintf(own, sizeof(own), "own_%zu", (r + 1) * 100);
		CHECK(resource->resource->n_attributes == 3);
		CHECK_STR(resource->resource->attributes[2]->key,
			  "process.executable.build_id.gnu");
		CHECK_STR(resource->resource->attributes[2]->value->string_value, "ab12");
		CHECK_STR(resource->resource->attributes[0]->key, "process.pid");
		CHECK(resource->resource->attributes[0]->value->int_value ==
		      (int64_t)(r + 1) * 100);
		CHECK(resource->n_scope_profiles == 1);
		CHECK_STR(resource->scope_profiles[0]->scope->name, "kiln");
		/* cpu/nanoseconds is the period's, not a profile; off_cpu is absent. */
		CHECK(resource->scope_profiles[0]->n_profiles == 1);
		profile = resource->scope_profiles[0]->profiles[0];
		CHECK_STR(string_at(d, profile->sample_type->type_strindex), "samples");
		CHECK_STR(string_at(d, profile->period_type->type_strindex), "cpu");
		CHECK(profile->period == 1000 &&
		      profile->time_unix_nano == 1700000000000000000ULL &&
		      profile->duration_nano == 10000000000ULL && profile->profile_id.len == 16);
		/* The zero-valued sample is left out. */
		CHECK(profile->n_samples == 1);
		const Sample *sample = profile->samples[0];
		const Stack *stack = d->stack_table[sample->stack_index];

		CHECK(sample->n_values == 1 && sample->values[0] == 3);
		CHECK(stack->n_location_indices == 3);
		const Location *leaf = d->location_table[stack->location_indices[0]];

		CHECK(leaf->n_lines == 2 && leaf->address == 0x402000);
		CHECK_STR(
			string_at(d,
				  d->function_table[leaf->lines[0]->function_index]->name_strindex),
			own);
		CHECK(leaf->lines[0]->line == 22 && leaf->lines[1]->line == 33);
		const Location *root = d->location_table[stack->location_indices[2]];

		CHECK_STR(
			string_at(d,
				  d->function_table[root->lines[0]->function_index]->name_strindex),
			"main");
		const Mapping *mapping = d->mapping_table[root->mapping_index];

		CHECK(mapping->n_attribute_indices == 1);
		const KeyValueAndUnit *build_id = d->attribute_table[mapping->attribute_indices[0]];

		CHECK_STR(string_at(d, build_id->key_strindex), "process.executable.build_id.gnu");
		CHECK_STR(build_id->value->string_value, "ab12");
		/* pid is the resource's: only tid and thread_name, renamed. */
		CHECK(sample->n_attribute_indices == 2);
		for (size_t i = 0; i < sample->n_attribute_indices; i++) {
			const KeyValueAndUnit *attribute =
				d->attribute_table[sample->attribute_indices[i]];
			const char *key = string_at(d, attribute->key_strindex);

			if (key && !strcmp(key, "thread.id"))
				CHECK(attribute->value->int_value == (int64_t)(r + 1) * 100 + 1);
			else
				CHECK_STR(attribute->value->string_value, "worker");
		}
	}
	free_request(request);
}

static void test_bad_pprof_refused_whole(void)
{
	struct otlp_builder *builder = otlp_builder__new(&opts);
	const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff };
	uint8_t *pprof, *data = NULL;
	size_t size, data_size;
	Perftools__Profiles__Profile *decoded;

	CHECK(otlp_builder__add_pprof(builder, NULL, 0, NULL, garbage, sizeof(garbage)) == -EINVAL);
	/* A sample naming a location the profile does not have. */
	pprof = process_pprof(7, &size);
	decoded = perftools__profiles__profile__unpack(NULL, size, pprof);
	CHECK(decoded && decoded->n_sample > 0);
	decoded->sample[0]->location_id[0] = 999;
	free(pprof);
	pprof = malloc(perftools__profiles__profile__get_packed_size(decoded));
	size = perftools__profiles__profile__pack(decoded, pprof);
	perftools__profiles__profile__free_unpacked(decoded, NULL);
	CHECK(otlp_builder__add_pprof(builder, NULL, 0, NULL, pprof, size) == -EINVAL);
	free(pprof);
	CHECK(otlp_builder__resource_count(builder) == 0);
	CHECK(!otlp_builder__encode(builder, &data, &data_size));
	Request *request =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
			NULL, data_size, data);
	CHECK(request && request->n_resource_profiles == 0);
	if (request)
		free_request(request);
	free(data);
	otlp_builder__free(builder);
}

static void test_gzip_round_trip_and_bounds(void)
{
	uint8_t input[10000], *gz = NULL, *out = NULL;
	size_t gz_size = 0, out_size = 0;
	int err;

	for (size_t i = 0; i < sizeof(input); i++)
		input[i] = (uint8_t)(i * 7 % 251);
	CHECK(!gzip_compress(input, sizeof(input), &gz, &gz_size));
	CHECK(!gzip_decompress(gz, gz_size, sizeof(input), &out, &out_size));
	CHECK(out_size == sizeof(input) && !memcmp(out, input, sizeof(input)));
	free(out);
	CHECK(gzip_decompress(gz, gz_size, sizeof(input) - 1, &out, &out_size) == -EFBIG);
	err = gzip_decompress(gz, gz_size - 9, sizeof(input), &out, &out_size);
	CHECK(err == -EINVAL);
	/* The trailer's CRC no longer matches. */
	gz[gz_size - 8] ^= 0x55;
	err = gzip_decompress(gz, gz_size, sizeof(input), &out, &out_size);
	CHECK(err == -EINVAL);
	CHECK(gzip_decompress(input, 100, sizeof(input), &out, &out_size) == -EINVAL);
	free(gz);
}

TEST_MAIN("otlp_builder", TEST(test_tables_start_with_zero_values),
	  TEST(test_shared_records_sent_once), TEST(test_stacks_and_values_read_back),
	  TEST(test_bad_pprof_refused_whole), TEST(test_gzip_round_trip_and_bounds))
