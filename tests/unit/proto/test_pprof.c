// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the pprof builder, read back with protobuf-c and zlib. */
#define ZLIB_CONST
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "proto/pprof_builder.h"
#include "proto/profile.pb-c.h"
#include "tests/unit/testing.h"

typedef Perftools__Profiles__Profile Profile;

static const struct pprof_value_type cpu_sample_types[] = {
	{ "samples", "count" },
	{ "cpu", "nanoseconds" },
};

static const struct pprof_builder_opts cpu_opts = {
	.sample_types = cpu_sample_types,
	.sample_type_count = 2,
	.period_type = { "cpu", "nanoseconds" },
	.period = 10101010,
	.time_nanos = 1700000000123456789,
	.duration_nanos = 10000000000,
};

/* Decompresses a gzip stream; NULL on any error. */
static uint8_t *gunzip(const uint8_t *data, size_t size, size_t *ret_size)
{
	z_stream stream = { 0 };
	size_t capacity = 4096, used = 0;
	uint8_t *out = malloc(capacity), *grown;
	int zerr = Z_OK;

	if (!out || inflateInit2(&stream, 15 + 16) != Z_OK) {
		free(out);
		return NULL;
	}
	stream.next_in = data;
	stream.avail_in = size;
	while (zerr == Z_OK) {
		if (used == capacity) {
			grown = realloc(out, capacity * 2);
			if (!grown)
				break;
			out = grown;
			capacity *= 2;
		}
		stream.next_out = out + used;
		stream.avail_out = capacity - used;
		zerr = inflate(&stream, Z_NO_FLUSH);
		used = capacity - stream.avail_out;
	}
	inflateEnd(&stream);
	if (zerr != Z_STREAM_END || stream.avail_in) {
		free(out);
		return NULL;
	}
	*ret_size = used;
	return out;
}

static Profile *unpack_gzip(const uint8_t *data, size_t size)
{
	size_t raw_size;
	uint8_t *raw = gunzip(data, size, &raw_size);
	Profile *profile;

	if (!raw)
		return NULL;
	profile = perftools__profiles__profile__unpack(NULL, raw_size, raw);
	free(raw);
	return profile;
}

/* Encodes the builder and reads the result back; NULL (with a failed check) on error. */
static Profile *decode(struct pprof_builder *builder)
{
	uint8_t *data = NULL;
	size_t size = 0;
	Profile *profile;

	CHECK(pprof_builder__encode_gzip(builder, &data, &size) == 0);
	if (!data)
		return NULL;
	CHECK(size > 2 && data[0] == 0x1f && data[1] == 0x8b);
	profile = unpack_gzip(data, size);
	CHECK(profile != NULL);
	free(data);
	return profile;
}

static const char *string_at(const Profile *profile, int64_t index)
{
	if (index < 0 || (size_t)index >= profile->n_string_table)
		return NULL;
	return profile->string_table[index];
}

static const Perftools__Profiles__Function *function_by_id(const Profile *profile, uint64_t id)
{
	for (size_t i = 0; i < profile->n_function; i++)
		if (profile->function[i]->id == id)
			return profile->function[i];
	return NULL;
}

static const char *function_name_of_line(const Profile *profile,
					 const Perftools__Profiles__Line *line)
{
	const Perftools__Profiles__Function *function = function_by_id(profile, line->function_id);

	return function ? string_at(profile, function->name) : NULL;
}

static void test_free_null(void)
{
	pprof_builder__free(NULL);
}

static void test_new_rejects_no_sample_types(void)
{
	struct pprof_builder_opts opts = { .period = 1 };

	errno = 0;
	CHECK(pprof_builder__new(&opts) == NULL);
	CHECK(errno == EINVAL);
	errno = 0;
	CHECK(pprof_builder__new(NULL) == NULL);
	CHECK(errno == EINVAL);
}

static void test_strings_interned(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	const struct pprof_line line = { "main", NULL, "main.c", 10, 12 };
	const struct pprof_label label = { .key = "comm", .str = "main" };
	uint64_t mapping_id, location_ids[2];
	const int64_t values[2] = { 1, 10 };
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0, "/bin/main", "", true,
					 &mapping_id) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1100, false, &line, 1,
					  &location_ids[0]) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1200, false, &line, 1,
					  &location_ids[1]) == 0);
	CHECK(pprof_builder__add_sample(builder, location_ids, 2, values, &label, 1) == 0);
	CHECK(pprof_builder__add_comment(builder, "main") == 0);
	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_string_table > 0);
		CHECK_STR(string_at(profile, 0), "");
		/* "", samples, count, cpu, nanoseconds, /bin/main, main, main.c, comm: once each.
		 */
		CHECK(profile->n_string_table == 9);
		for (size_t i = 0; i < profile->n_string_table; i++) {
			const char *s = profile->string_table[i];

			for (size_t j = i + 1; j < profile->n_string_table; j++)
				CHECK(strcmp(s, profile->string_table[j]) != 0);
		}
		/* "cpu" in sample_type[1] and period_type is one string. */
		CHECK(profile->sample_type[1]->type == profile->period_type->type);
		CHECK(profile->n_comment == 1);
		CHECK(profile->comment[0] == profile->function[0]->name);
		CHECK(profile->sample[0]->label[0]->str == profile->function[0]->name);
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

static void test_mappings_deduplicated(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	uint64_t first = 0, again = 0, other_build_id = 0, other_offset = 0, no_build_id = 0;
	uint64_t null_build_id = 0;
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x100, "/lib/a.so", "abcd", true,
					 &first) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x100, "/lib/a.so", "abcd", true,
					 &again) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x100, "/lib/a.so", "ef01", true,
					 &other_build_id) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x200, "/lib/a.so", "abcd", true,
					 &other_offset) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x100, "/lib/a.so", "", true,
					 &no_build_id) == 0);
	/* NULL and "" build ids are the same: no build id. */
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0x100, "/lib/a.so", NULL, true,
					 &null_build_id) == 0);
	CHECK(first == 1);
	CHECK(again == 1);
	CHECK(other_build_id == 2);
	CHECK(other_offset == 3);
	CHECK(no_build_id == 4);
	CHECK(null_build_id == 4);
	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_mapping == 4);
		for (size_t i = 0; i < profile->n_mapping; i++)
			CHECK(profile->mapping[i]->id == i + 1);
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

static void test_locations_and_functions_deduplicated(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	const struct pprof_line foo = { "foo", "_Z3foov", "foo.cc", 3, 7 };
	const struct pprof_line foo_other_line = { "foo", "_Z3foov", "foo.cc", 3, 9 };
	const struct pprof_line foo_other_start = { "foo", "_Z3foov", "foo.cc", 4, 9 };
	const struct pprof_line bar = { "bar", NULL, NULL, 0, 0 };
	uint64_t mapping_id = 0, a = 0, a_again = 0, b = 0, c = 0, d = 0, unmapped = 0;
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x9000, 0, "/bin/x", NULL, true,
					 &mapping_id) == 0);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1010, false) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1010, false, &foo, 1, &a) == 0);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1010, false) == a);
	/* Same (mapping, address): the same location, new lines ignored. */
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1010, false, &bar, 1, &a_again) ==
	      0);
	/* Same function, another line: a new location, the same function. */
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1020, false, &foo_other_line, 1,
					  &b) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1030, false, &foo_other_start, 1,
					  &c) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1040, false, &bar, 1, &d) == 0);
	/* Mapping 0 (unknown) is a different location even at the same address. */
	CHECK(pprof_builder__add_location(builder, 0, 0x1010, false, &bar, 1, &unmapped) == 0);
	CHECK(pprof_builder__find_location(builder, 0, 0x1010, false) == unmapped);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1050, false) == 0);
	CHECK(a == 1);
	CHECK(a_again == 1);
	CHECK(b == 2);
	CHECK(c == 3);
	CHECK(d == 4);
	CHECK(unmapped == 5);

	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_location == 5);
		for (size_t i = 0; i < profile->n_location; i++)
			CHECK(profile->location[i]->id == i + 1);
		/* foo (start 3), foo (start 4), bar */
		CHECK(profile->n_function == 3);
		for (size_t i = 0; i < profile->n_function; i++)
			CHECK(profile->function[i]->id == i + 1);
		if (profile->n_location == 5 && profile->n_function == 3) {
			CHECK(profile->location[0]->n_line == 1);
			CHECK(profile->location[0]->line[0]->function_id == 1);
			CHECK(profile->location[0]->line[0]->line == 7);
			CHECK(profile->location[1]->line[0]->function_id == 1);
			CHECK(profile->location[1]->line[0]->line == 9);
			CHECK(profile->location[2]->line[0]->function_id == 2);
			CHECK(profile->location[3]->line[0]->function_id == 3);
			CHECK(profile->location[4]->line[0]->function_id == 3);
			CHECK(profile->location[4]->mapping_id == 0);
			/* system_name NULL is the name; filename NULL is "". */
			CHECK(profile->function[2]->system_name == profile->function[2]->name);
			CHECK(profile->function[2]->filename == 0);
		}
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

/*
 * One address as a leaf and as a return address: two locations, each with
 * its own lines. After a call, the return address can be the first
 * instruction of an inlined function (now() inlined in spin()); as a leaf
 * it is in now, as a return address its lines are the call's, in spin.
 */
static void test_call_site_is_its_own_location(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	const struct pprof_line leaf_lines[] = { { "now", NULL, "lib.c", 7, 11 },
						 { "spin", NULL, "lib.c", 20, 25 } };
	const struct pprof_line call_lines[] = { { "spin", NULL, "lib.c", 20, 26 } };
	uint64_t mapping_id = 0, leaf = 0, call = 0;
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x9000, 0, "/lib/x.so", NULL, true,
					 &mapping_id) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1010, false, leaf_lines, 2,
					  &leaf) == 0);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1010, true) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1010, true, call_lines, 1,
					  &call) == 0);
	CHECK(leaf != 0 && call != 0 && leaf != call);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1010, false) == leaf);
	CHECK(pprof_builder__find_location(builder, mapping_id, 0x1010, true) == call);
	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_location == 2);
		if (profile->n_location == 2) {
			CHECK(profile->location[0]->address == 0x1010 &&
			      profile->location[1]->address == 0x1010);
			CHECK(profile->location[0]->n_line == 2 &&
			      profile->location[1]->n_line == 1);
			CHECK(profile->location[1]->n_line == 1 &&
			      profile->location[1]->line[0]->line == 26);
		}
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

static void test_add_location_unknown_mapping(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	const struct pprof_line line = { "f", NULL, NULL, 0, 0 };
	uint64_t location_id = 77;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_location(builder, 1, 0x10, false, &line, 1, &location_id) ==
	      -EINVAL);
	CHECK(location_id == 77);
	CHECK(pprof_builder__find_location(builder, 1, 0x10, false) == 0);
	pprof_builder__free(builder);
}

static void test_add_sample_unknown_location(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	const int64_t values[2] = { 1, 2 };
	uint64_t mapping_id = 0, location_id = 0, bad_ids[2];

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x1000, 0x2000, 0, "/bin/x", NULL, false,
					 &mapping_id) == 0);
	CHECK(pprof_builder__add_location(builder, mapping_id, 0x1000, false, NULL, 0,
					  &location_id) == 0);
	bad_ids[0] = location_id;
	bad_ids[1] = location_id + 1;
	CHECK(pprof_builder__add_sample(builder, bad_ids, 2, values, NULL, 0) == -EINVAL);
	bad_ids[1] = 0;
	CHECK(pprof_builder__add_sample(builder, bad_ids, 2, values, NULL, 0) == -EINVAL);
	CHECK(pprof_builder__sample_count(builder) == 0);
	CHECK(pprof_builder__add_sample(builder, &location_id, 1, values, NULL, 0) == 0);
	CHECK(pprof_builder__sample_count(builder) == 1);
	pprof_builder__free(builder);
}

/* A small profile with every kind of field set, shared by the round trip and file tests. */
static struct pprof_builder *build_example(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	/* memcpy inlined into copy_buffer, which main called. */
	const struct pprof_line inlined[] = {
		{ "memcpy", "__memcpy_avx", "memcpy.c", 20, 25 },
		{ NULL, NULL, NULL, 0, 0 }, /* unknown frame: skipped */
		{ "copy_buffer", "_Z11copy_bufferPc", "buffer.cc", 40, 44 },
	};
	const struct pprof_line main_line = { "main", NULL, "main.c", 5, 9 };
	const struct pprof_line kernel_line = { "do_syscall_64", NULL, NULL, 0, 0 };
	const struct pprof_label labels[] = {
		{ .key = "comm", .str = "worker" },
		{ .key = "pid", .num = 4242 },
		{ .key = "cpu_time", .num = 123456, .num_unit = "nanoseconds" },
	};
	const int64_t values_a[2] = { 3, 30303030 };
	const int64_t values_b[2] = { 1, 10101010 };
	uint64_t exe = 0, libc = 0, kernel = 0, leaf = 0, caller = 0, unsymbolized = 0;
	uint64_t kernel_leaf = 0;
	uint64_t stack_a[4], stack_b[1];
	int failures_before = testing_failures;

	if (!builder)
		return NULL;
	CHECK(pprof_builder__add_mapping(builder, 0x400000, 0x401000, 0x1000, "/usr/bin/app",
					 "0123456789abcdef", true, &exe) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0x7f0000000000, 0x7f0000100000, 0,
					 "/lib/libc.so.6", NULL, false, &libc) == 0);
	CHECK(pprof_builder__add_mapping(builder, 0xffffffff81000000, 0xffffffff82000000, 0,
					 "[kernel.kallsyms]", NULL, true, &kernel) == 0);
	CHECK(pprof_builder__add_location(builder, exe, 0x400123, false, inlined, 3, &leaf) == 0);
	CHECK(pprof_builder__add_location(builder, exe, 0x400456, false, &main_line, 1, &caller) ==
	      0);
	CHECK(pprof_builder__add_location(builder, libc, 0x7f0000001234, false, NULL, 0,
					  &unsymbolized) == 0);
	CHECK(pprof_builder__add_location(builder, kernel, 0xffffffff81001000, false, &kernel_line,
					  1, &kernel_leaf) == 0);
	stack_a[0] = kernel_leaf;
	stack_a[1] = leaf;
	stack_a[2] = caller;
	stack_a[3] = unsymbolized;
	stack_b[0] = leaf;
	CHECK(pprof_builder__add_sample(builder, stack_a, 4, values_a, labels, 3) == 0);
	CHECK(pprof_builder__add_sample(builder, stack_b, 1, values_b, labels, 1) == 0);
	CHECK(pprof_builder__add_comment(builder, "kiln unit test") == 0);
	if (testing_failures != failures_before) {
		pprof_builder__free(builder);
		return NULL;
	}
	return builder;
}

/* Checks mapping[id - 1]; build_id NULL means none (index 0). */
static void check_mapping(const Profile *p, uint64_t id, uint64_t memory_start,
			  uint64_t memory_limit, uint64_t file_offset, const char *filename,
			  const char *build_id, bool has_functions)
{
	const Perftools__Profiles__Mapping *m = id <= p->n_mapping ? p->mapping[id - 1] : NULL;

	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(m->id == id);
	CHECK(m->memory_start == memory_start);
	CHECK(m->memory_limit == memory_limit);
	CHECK(m->file_offset == file_offset);
	CHECK_STR(string_at(p, m->filename), filename);
	if (build_id)
		CHECK_STR(string_at(p, m->build_id), build_id);
	else
		CHECK(m->build_id == 0);
	CHECK(m->has_functions == has_functions);
}

static void check_function(const Profile *p, uint64_t id, const char *name, const char *system_name,
			   const char *filename, int64_t start_line)
{
	const Perftools__Profiles__Function *f = id <= p->n_function ? p->function[id - 1] : NULL;

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(f->id == id);
	CHECK_STR(string_at(p, f->name), name);
	CHECK_STR(string_at(p, f->system_name), system_name);
	CHECK_STR(string_at(p, f->filename), filename);
	CHECK(f->start_line == start_line);
}

/* Checks location[id - 1] and its lines, given as alternating function names and line numbers. */
static void check_location(const Profile *p, uint64_t id, uint64_t mapping_id, uint64_t address,
			   size_t line_count, ...)
{
	const Perftools__Profiles__Location *l = id <= p->n_location ? p->location[id - 1] : NULL;
	va_list ap;

	CHECK(l != NULL);
	if (!l)
		return;
	CHECK(l->id == id);
	CHECK(l->mapping_id == mapping_id);
	CHECK(l->address == address);
	CHECK(l->n_line == line_count);
	va_start(ap, line_count);
	for (size_t i = 0; i < line_count && i < l->n_line; i++) {
		const char *function_name = va_arg(ap, const char *);
		int64_t line = va_arg(ap, int64_t);

		CHECK_STR(function_name_of_line(p, l->line[i]), function_name);
		CHECK(l->line[i]->line == line);
	}
	va_end(ap);
}

static void check_label(const Profile *p, const Perftools__Profiles__Label *label, const char *key,
			const char *str, int64_t num, const char *num_unit)
{
	CHECK_STR(string_at(p, label->key), key);
	if (str)
		CHECK_STR(string_at(p, label->str), str);
	else
		CHECK(label->str == 0);
	CHECK(label->num == num);
	if (num_unit)
		CHECK_STR(string_at(p, label->num_unit), num_unit);
	else
		CHECK(label->num_unit == 0);
}

static void check_example(const Profile *p)
{
	const Perftools__Profiles__Sample *s;

	CHECK_STR(string_at(p, 0), "");
	CHECK(p->n_sample_type == 2);
	if (p->n_sample_type == 2) {
		CHECK_STR(string_at(p, p->sample_type[0]->type), "samples");
		CHECK_STR(string_at(p, p->sample_type[0]->unit), "count");
		CHECK_STR(string_at(p, p->sample_type[1]->type), "cpu");
		CHECK_STR(string_at(p, p->sample_type[1]->unit), "nanoseconds");
	}
	CHECK(p->period_type != NULL);
	if (p->period_type) {
		CHECK_STR(string_at(p, p->period_type->type), "cpu");
		CHECK_STR(string_at(p, p->period_type->unit), "nanoseconds");
	}
	CHECK(p->period == 10101010);
	CHECK(p->time_nanos == 1700000000123456789);
	CHECK(p->duration_nanos == 10000000000);
	CHECK(p->n_comment == 1);
	if (p->n_comment == 1)
		CHECK_STR(string_at(p, p->comment[0]), "kiln unit test");

	CHECK(p->n_mapping == 3);
	check_mapping(p, 1, 0x400000, 0x401000, 0x1000, "/usr/bin/app", "0123456789abcdef", true);
	check_mapping(p, 2, 0x7f0000000000, 0x7f0000100000, 0, "/lib/libc.so.6", NULL, false);
	check_mapping(p, 3, 0xffffffff81000000, 0xffffffff82000000, 0, "[kernel.kallsyms]", NULL,
		      true);

	CHECK(p->n_function == 4);
	check_function(p, 1, "memcpy", "__memcpy_avx", "memcpy.c", 20);
	check_function(p, 2, "copy_buffer", "_Z11copy_bufferPc", "buffer.cc", 40);
	check_function(p, 3, "main", "main", "main.c", 5);
	check_function(p, 4, "do_syscall_64", "do_syscall_64", "", 0);

	CHECK(p->n_location == 4);
	/* Innermost first; the NULL-named line is gone. */
	check_location(p, 1, 1, 0x400123, 2, "memcpy", (int64_t)25, "copy_buffer", (int64_t)44);
	check_location(p, 2, 1, 0x400456, 1, "main", (int64_t)9);
	/* Unsymbolized: address and mapping only. */
	check_location(p, 3, 2, 0x7f0000001234, 0);
	check_location(p, 4, 3, 0xffffffff81001000, 1, "do_syscall_64", (int64_t)0);

	CHECK(p->n_sample == 2);
	if (p->n_sample != 2)
		return;
	s = p->sample[0];
	CHECK(s->n_location_id == 4);
	if (s->n_location_id == 4) {
		CHECK(s->location_id[0] == 4);
		CHECK(s->location_id[1] == 1);
		CHECK(s->location_id[2] == 2);
		CHECK(s->location_id[3] == 3);
	}
	CHECK(s->n_value == 2 && s->value[0] == 3 && s->value[1] == 30303030);
	CHECK(s->n_label == 3);
	if (s->n_label == 3) {
		check_label(p, s->label[0], "comm", "worker", 0, NULL);
		check_label(p, s->label[1], "pid", NULL, 4242, NULL);
		check_label(p, s->label[2], "cpu_time", NULL, 123456, "nanoseconds");
	}
	s = p->sample[1];
	CHECK(s->n_location_id == 1 && s->location_id[0] == 1);
	CHECK(s->n_value == 2 && s->value[0] == 1 && s->value[1] == 10101010);
	CHECK(s->n_label == 1);
	if (s->n_label == 1)
		check_label(p, s->label[0], "comm", "worker", 0, NULL);
}

static void test_round_trip(void)
{
	struct pprof_builder *builder = build_example();
	const char *sample_out = getenv("KILN_PPROF_SAMPLE_OUT");
	Profile *profile;

	if (!builder)
		return;
	CHECK(pprof_builder__sample_count(builder) == 2);
	profile = decode(builder);
	if (profile) {
		check_example(profile);
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	/* For tests/integration: the same profile, to read with go tool pprof. */
	if (sample_out && *sample_out)
		CHECK(pprof_builder__write_file(builder, sample_out) == 0);
	pprof_builder__free(builder);
}

/* Encoding twice gives the same bytes; the builder is not consumed. */
static void test_encode_twice(void)
{
	struct pprof_builder *builder = build_example();
	uint8_t *first = NULL, *second = NULL;
	size_t first_size = 0, second_size = 0;
	Profile *profile;

	if (!builder)
		return;
	CHECK(pprof_builder__encode_gzip(builder, &first, &first_size) == 0);
	CHECK(pprof_builder__encode_gzip(builder, &second, &second_size) == 0);
	CHECK(first && second && first_size == second_size &&
	      memcmp(first, second, first_size) == 0);
	profile = second ? unpack_gzip(second, second_size) : NULL;
	CHECK(profile != NULL);
	if (profile) {
		check_example(profile);
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	free(first);
	free(second);
	pprof_builder__free(builder);
}

static void test_empty_profile(void)
{
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_sample == 0);
		CHECK(profile->n_location == 0);
		CHECK(profile->n_mapping == 0);
		CHECK(profile->n_function == 0);
		CHECK(profile->n_sample_type == 2);
		CHECK_STR(string_at(profile, 0), "");
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

/* Enough records to cross chunk and hashmap resizes many times over. */
static void test_many_records(void)
{
	enum { LOCATIONS = 20000, DEPTH = 8 };
	struct pprof_builder *builder = pprof_builder__new(&cpu_opts);
	uint64_t mapping_id = 0, location_id, stack[DEPTH];
	const int64_t values[2] = { 1, 10 };
	char name[32];
	bool ok = true;
	Profile *profile;

	CHECK(builder != NULL);
	if (!builder)
		return;
	CHECK(pprof_builder__add_mapping(builder, 0x100000, 0x10000000, 0, "/bin/big", NULL, true,
					 &mapping_id) == 0);
	for (uint64_t i = 0; i < LOCATIONS && ok; i++) {
		/* 1000 functions, 20 addresses in each. */
		struct pprof_line line = { name, NULL, "big.c", 0, (int64_t)i };

		snprintf(name, sizeof(name), "fn_%llu", (unsigned long long)(i / 20));
		ok = pprof_builder__add_location(builder, mapping_id, 0x100000 + i * 16, false,
						 &line, 1, &location_id) == 0 &&
		     location_id == i + 1;
	}
	CHECK(ok);
	for (uint64_t i = 0; i < LOCATIONS && ok; i++) {
		struct pprof_label label = { .key = "tid", .num = (int64_t)(i % 97) };

		for (int d = 0; d < DEPTH; d++)
			stack[d] = (i + d * 7) % LOCATIONS + 1;
		ok = pprof_builder__add_sample(builder, stack, DEPTH, values, &label, 1) == 0;
	}
	CHECK(ok);
	for (uint64_t i = 0; i < LOCATIONS && ok; i += 997)
		ok = pprof_builder__find_location(builder, mapping_id, 0x100000 + i * 16, false) ==
		     i + 1;
	CHECK(ok);
	CHECK(pprof_builder__sample_count(builder) == LOCATIONS);
	profile = decode(builder);
	if (profile) {
		CHECK(profile->n_location == LOCATIONS);
		CHECK(profile->n_function == LOCATIONS / 20);
		CHECK(profile->n_sample == LOCATIONS);
		if (profile->n_sample == LOCATIONS && profile->n_location == LOCATIONS) {
			const Perftools__Profiles__Sample *last = profile->sample[LOCATIONS - 1];
			const Perftools__Profiles__Location *location =
				profile->location[LOCATIONS - 1];

			CHECK(last->n_location_id == DEPTH && last->location_id[0] == LOCATIONS);
			CHECK(last->n_label == 1 && last->label[0]->num == (LOCATIONS - 1) % 97);
			CHECK(location->n_line == 1 && location->line[0]->line == LOCATIONS - 1);
			CHECK_STR(function_name_of_line(profile, location->line[0]), "fn_999");
		}
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}
	pprof_builder__free(builder);
}

/* The names in directory, other than . and .., joined with '/'; "" when empty. */
static void list_directory(const char *directory, char *buffer, size_t size)
{
	DIR *dir = opendir(directory);
	struct dirent *entry;

	buffer[0] = '\0';
	if (!dir) {
		snprintf(buffer, size, "(cannot open: %s)", strerror(errno));
		return;
	}
	while ((entry = readdir(dir))) {
		if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
			continue;
		if (buffer[0])
			strncat(buffer, "/", size - strlen(buffer) - 1);
		strncat(buffer, entry->d_name, size - strlen(buffer) - 1);
	}
	closedir(dir);
}

static void test_write_file(void)
{
	struct pprof_builder *builder = build_example();
	char directory[] = "/tmp/kiln-test-pprof.XXXXXX", path[256], listing[256];
	uint8_t data[1 << 16];
	struct stat st;
	ssize_t size = -1;
	Profile *profile;
	int fd;

	if (!builder)
		return;
	CHECK(mkdtemp(directory) != NULL);
	snprintf(path, sizeof(path), "%s/cpu.pb.gz", directory);
	CHECK(pprof_builder__write_file(builder, path) == 0);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK((st.st_mode & 07777) == 0644);
	list_directory(directory, listing, sizeof(listing));
	CHECK_STR(listing, "cpu.pb.gz");

	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	if (fd >= 0) {
		size = read(fd, data, sizeof(data));
		close(fd);
	}
	CHECK(size > 2 && (size_t)size < sizeof(data));
	CHECK(size > 2 && data[0] == 0x1f && data[1] == 0x8b);
	profile = size > 0 ? unpack_gzip(data, size) : NULL;
	CHECK(profile != NULL);
	if (profile) {
		check_example(profile);
		perftools__profiles__profile__free_unpacked(profile, NULL);
	}

	/* Overwriting replaces the file and still leaves no temporary behind. */
	CHECK(pprof_builder__write_file(builder, path) == 0);
	list_directory(directory, listing, sizeof(listing));
	CHECK_STR(listing, "cpu.pb.gz");

	unlink(path);
	rmdir(directory);
	pprof_builder__free(builder);
}

static void test_write_file_missing_directory(void)
{
	struct pprof_builder *builder = build_example();
	char directory[] = "/tmp/kiln-test-pprof.XXXXXX", path[256], listing[256];
	int err;

	if (!builder)
		return;
	CHECK(mkdtemp(directory) != NULL);
	snprintf(path, sizeof(path), "%s/missing/cpu.pb.gz", directory);
	err = pprof_builder__write_file(builder, path);
	CHECK(err == -ENOENT);
	list_directory(directory, listing, sizeof(listing));
	CHECK_STR(listing, "");

	/* A path naming a directory is refused before anything is created. */
	snprintf(path, sizeof(path), "%s/", directory);
	CHECK(pprof_builder__write_file(builder, path) < 0);
	list_directory(directory, listing, sizeof(listing));
	CHECK_STR(listing, "");

	rmdir(directory);
	pprof_builder__free(builder);
}

TEST_MAIN("pprof", TEST(test_free_null), TEST(test_new_rejects_no_sample_types),
	  TEST(test_strings_interned), TEST(test_mappings_deduplicated),
	  TEST(test_locations_and_functions_deduplicated), TEST(test_call_site_is_its_own_location),
	  TEST(test_add_location_unknown_mapping), TEST(test_add_sample_unknown_location),
	  TEST(test_round_trip), TEST(test_encode_twice), TEST(test_empty_profile),
	  TEST(test_many_records), TEST(test_write_file), TEST(test_write_file_missing_directory))
