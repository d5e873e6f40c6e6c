// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the pprof builder with what the symbolizer and the samples would
 * hand it: the input is a program of mappings, locations with lines,
 * samples with labels and comments, names taken from the input bytes. The
 * gzip-compressed profile it writes must decode with protobuf-c's generated
 * unpack and hold exactly what was added: the same strings, ids and values.
 */
#define ZLIB_CONST
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>

#include "proto/pprof_builder.h"
#include "proto/profile.pb-c.h"
#include "tests/fuzz/fuzz.h"

typedef Perftools__Profiles__Profile Profile;

#define MAX_OPS 64
#define MAX_ITEMS 64 /* locations per sample, lines per location, labels per sample */
#define MAX_STRINGS 4096

struct input {
	const uint8_t *data;
	size_t size;
	char *strings[MAX_STRINGS]; /* every string handed to the builder, freed at the end */
	size_t string_count;
};

struct expected_line {
	const char *name, *system_name, *filename;
	int64_t start_line, line;
};

struct expected_location {
	uint64_t mapping_id, address;
	struct expected_line lines[MAX_ITEMS];
	size_t line_count;
};

struct expected_mapping {
	uint64_t start, limit, offset;
	const char *filename, *build_id;
	bool has_functions;
};

struct expected_sample {
	uint64_t location_ids[MAX_ITEMS];
	size_t location_count;
	int64_t values[3];
	struct pprof_label labels[MAX_ITEMS];
	size_t label_count;
};

struct expected {
	struct expected_mapping mappings[MAX_OPS];
	size_t mapping_count;
	struct expected_location locations[MAX_OPS];
	size_t location_count;
	struct expected_sample samples[MAX_OPS];
	size_t sample_count;
	const char *comments[MAX_OPS];
	size_t comment_count;
};

static uint8_t take_byte(struct input *in)
{
	uint8_t byte = 0;

	if (in->size) {
		byte = in->data[0];
		in->data++;
		in->size--;
	}
	return byte;
}

/* Little-endian, as many bytes as the first says (0 to 8). */
static uint64_t take_number(struct input *in)
{
	uint64_t value = 0;
	unsigned int bytes = take_byte(in) % 9;

	for (unsigned int i = 0; i < bytes; i++)
		value |= (uint64_t)take_byte(in) << (8 * i);
	return value;
}

/* Up to 63 bytes up to a NUL; NULL when the length byte says so (or out of room). */
static const char *take_string(struct input *in)
{
	uint8_t length = take_byte(in);
	char *s;

	if (length & 0x80 || in->string_count == MAX_STRINGS)
		return NULL;
	length &= 0x3f;
	if (length > in->size)
		length = (uint8_t)in->size;
	s = strndup((const char *)in->data, length);
	FUZZ_CHECK(s != NULL);
	in->data += length;
	in->size -= length;
	in->strings[in->string_count++] = s;
	return s;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static void add_mapping(struct pprof_builder *builder, struct input *in, struct expected *want)
{
	struct expected_mapping m;
	uint64_t id;

	m.start = take_number(in);
	m.limit = take_number(in);
	m.offset = take_number(in);
	m.filename = take_string(in);
	m.build_id = take_string(in);
	m.has_functions = take_byte(in) & 1;
	FUZZ_CHECK(pprof_builder__add_mapping(builder, m.start, m.limit, m.offset, m.filename,
					      m.build_id, m.has_functions, &id) == 0);
	if (id == want->mapping_count + 1 && want->mapping_count < MAX_OPS) {
		want->mappings[want->mapping_count++] = m;
		return;
	}
	/* An identical mapping: found, not added. */
	FUZZ_CHECK(id >= 1 && id <= want->mapping_count);
	FUZZ_CHECK(want->mappings[id - 1].start == m.start &&
		   want->mappings[id - 1].limit == m.limit &&
		   want->mappings[id - 1].offset == m.offset &&
		   !strcmp(or_empty(want->mappings[id - 1].filename), or_empty(m.filename)) &&
		   !strcmp(or_empty(want->mappings[id - 1].build_id), or_empty(m.build_id)));
}

static void add_location(struct pprof_builder *builder, struct input *in, struct expected *want)
{
	struct pprof_line lines[MAX_ITEMS];
	struct expected_location *loc = &want->locations[want->location_count];
	uint64_t mapping_id = take_byte(in) % (want->mapping_count + 2);
	uint64_t address = take_number(in), existing, id;
	size_t line_count = take_byte(in) % 8;
	int err;

	for (size_t i = 0; i < line_count; i++) {
		lines[i].function_name = take_string(in);
		lines[i].system_name = take_string(in);
		lines[i].filename = take_string(in);
		lines[i].start_line = (int64_t)take_number(in);
		lines[i].line = (int64_t)take_number(in);
	}
	existing = pprof_builder__find_location(builder, mapping_id, address, false);
	err = pprof_builder__add_location(builder, mapping_id, address, false, lines, line_count,
					  &id);
	if (existing) {
		FUZZ_CHECK(err == 0 && id == existing);
		return;
	}
	if (mapping_id > want->mapping_count) {
		FUZZ_CHECK(err == -EINVAL);
		return;
	}
	FUZZ_CHECK(err == 0 && id == want->location_count + 1);
	*loc = (struct expected_location){ .mapping_id = mapping_id, .address = address };
	for (size_t i = 0; i < line_count; i++) {
		if (!lines[i].function_name)
			continue;
		loc->lines[loc->line_count++] = (struct expected_line){
			lines[i].function_name,
			lines[i].system_name ? lines[i].system_name : lines[i].function_name,
			or_empty(lines[i].filename),
			lines[i].start_line,
			lines[i].line,
		};
	}
	want->location_count++;
}

static void add_sample(struct pprof_builder *builder, struct input *in, struct expected *want,
		       size_t value_count)
{
	struct expected_sample *sample = &want->samples[want->sample_count];
	bool valid = true;
	int err;

	*sample = (struct expected_sample){};
	sample->location_count = take_byte(in) % 16;
	for (size_t i = 0; i < sample->location_count; i++) {
		sample->location_ids[i] = take_byte(in) % (want->location_count + 2);
		valid &= sample->location_ids[i] >= 1 &&
			 sample->location_ids[i] <= want->location_count;
	}
	for (size_t i = 0; i < value_count; i++)
		sample->values[i] = (int64_t)take_number(in);
	sample->label_count = take_byte(in) % 4;
	for (size_t i = 0; i < sample->label_count; i++) {
		struct pprof_label *label = &sample->labels[i];

		label->key = take_string(in);
		label->str = take_string(in);
		label->num = (int64_t)take_number(in);
		label->num_unit = take_string(in);
		valid &= label->key != NULL;
	}
	err = pprof_builder__add_sample(builder, sample->location_ids, sample->location_count,
					sample->values, sample->labels, sample->label_count);
	FUZZ_CHECK(valid ? err == 0 : err == -EINVAL);
	if (!err)
		want->sample_count++;
}

/* Decompresses a gzip stream; NULL when it is not one. */
static uint8_t *gunzip(const uint8_t *data, size_t size, size_t *ret_size)
{
	size_t capacity = 4096, used = 0;
	uint8_t *out = malloc(capacity);
	z_stream stream = {};
	int zerr = Z_OK;

	FUZZ_CHECK(out && inflateInit2(&stream, 15 + 16) == Z_OK);
	stream.next_in = data;
	stream.avail_in = (uInt)size;
	while (zerr == Z_OK) {
		if (used == capacity) {
			capacity *= 2;
			out = realloc(out, capacity);
			FUZZ_CHECK(out != NULL);
		}
		stream.next_out = out + used;
		stream.avail_out = (uInt)(capacity - used);
		zerr = inflate(&stream, Z_NO_FLUSH);
		used = capacity - stream.avail_out;
	}
	inflateEnd(&stream);
	FUZZ_CHECK(zerr == Z_STREAM_END && stream.avail_in == 0);
	*ret_size = used;
	return out;
}

static const char *string_at(const Profile *profile, int64_t index)
{
	FUZZ_CHECK(index >= 0 && (size_t)index < profile->n_string_table);
	return profile->string_table[index];
}

static bool same_string(const Profile *profile, int64_t index, const char *want)
{
	return !strcmp(string_at(profile, index), or_empty(want));
}

static void check_locations(const Profile *profile, const struct expected *want)
{
	FUZZ_CHECK(profile->n_location == want->location_count);
	for (size_t i = 0; i < want->location_count; i++) {
		const Perftools__Profiles__Location *loc = profile->location[i];
		const struct expected_location *expected = &want->locations[i];

		FUZZ_CHECK(loc->id == i + 1 && loc->mapping_id == expected->mapping_id &&
			   loc->address == expected->address);
		FUZZ_CHECK(loc->n_line == expected->line_count);
		for (size_t j = 0; j < loc->n_line; j++) {
			const struct expected_line *line = &expected->lines[j];
			const Perftools__Profiles__Function *function;

			FUZZ_CHECK(loc->line[j]->function_id >= 1 &&
				   loc->line[j]->function_id <= profile->n_function);
			function = profile->function[loc->line[j]->function_id - 1];
			FUZZ_CHECK(function->id == loc->line[j]->function_id);
			FUZZ_CHECK(same_string(profile, function->name, line->name) &&
				   same_string(profile, function->system_name, line->system_name) &&
				   same_string(profile, function->filename, line->filename) &&
				   function->start_line == line->start_line &&
				   loc->line[j]->line == line->line);
		}
	}
}

static void check_samples(const Profile *profile, const struct expected *want, size_t value_count)
{
	FUZZ_CHECK(profile->n_sample == want->sample_count);
	for (size_t i = 0; i < want->sample_count; i++) {
		const Perftools__Profiles__Sample *sample = profile->sample[i];
		const struct expected_sample *expected = &want->samples[i];

		FUZZ_CHECK(sample->n_location_id == expected->location_count &&
			   sample->n_value == value_count &&
			   sample->n_label == expected->label_count);
		for (size_t j = 0; j < sample->n_location_id; j++)
			FUZZ_CHECK(sample->location_id[j] == expected->location_ids[j]);
		for (size_t j = 0; j < value_count; j++)
			FUZZ_CHECK(sample->value[j] == expected->values[j]);
		for (size_t j = 0; j < sample->n_label; j++) {
			const Perftools__Profiles__Label *label = sample->label[j];
			const struct pprof_label *want_label = &expected->labels[j];

			FUZZ_CHECK(same_string(profile, label->key, want_label->key));
			if (want_label->str) {
				FUZZ_CHECK(same_string(profile, label->str, want_label->str));
			} else {
				FUZZ_CHECK(label->num == want_label->num &&
					   same_string(profile, label->num_unit,
						       want_label->num_unit));
			}
		}
	}
}

static void check_profile(const Profile *profile, const struct expected *want,
			  const struct pprof_builder_opts *opts)
{
	FUZZ_CHECK(profile->n_string_table >= 1 && !strcmp(profile->string_table[0], ""));
	FUZZ_CHECK(profile->n_sample_type == opts->sample_type_count);
	for (size_t i = 0; i < opts->sample_type_count; i++)
		FUZZ_CHECK(same_string(profile, profile->sample_type[i]->type,
				       opts->sample_types[i].type) &&
			   same_string(profile, profile->sample_type[i]->unit,
				       opts->sample_types[i].unit));
	FUZZ_CHECK(profile->period == opts->period && profile->time_nanos == opts->time_nanos &&
		   profile->duration_nanos == opts->duration_nanos);
	FUZZ_CHECK(profile->n_mapping == want->mapping_count);
	for (size_t i = 0; i < want->mapping_count; i++) {
		const Perftools__Profiles__Mapping *m = profile->mapping[i];
		const struct expected_mapping *expected = &want->mappings[i];

		FUZZ_CHECK(m->id == i + 1 && m->memory_start == expected->start &&
			   m->memory_limit == expected->limit &&
			   m->file_offset == expected->offset &&
			   same_string(profile, m->filename, expected->filename) &&
			   same_string(profile, m->build_id, expected->build_id));
	}
	check_locations(profile, want);
	check_samples(profile, want, opts->sample_type_count);
	FUZZ_CHECK(profile->n_comment == want->comment_count);
	for (size_t i = 0; i < want->comment_count; i++)
		FUZZ_CHECK(same_string(profile, profile->comment[i], want->comments[i]));
}

static void run(struct input *in, struct expected *want)
{
	struct pprof_value_type types[3];
	struct pprof_builder_opts opts = {};
	struct pprof_builder *builder;
	uint8_t *gz = NULL, *raw;
	size_t gz_size, raw_size;
	Profile *profile;

	opts.sample_type_count = 1 + take_byte(in) % 3;
	for (size_t i = 0; i < opts.sample_type_count; i++)
		types[i] = (struct pprof_value_type){ take_string(in), take_string(in) };
	opts.sample_types = types;
	opts.period_type = (struct pprof_value_type){ take_string(in), take_string(in) };
	opts.period = (int64_t)take_number(in);
	opts.time_nanos = (int64_t)take_number(in);
	opts.duration_nanos = (int64_t)take_number(in);
	builder = pprof_builder__new(&opts);
	FUZZ_CHECK(builder != NULL);
	for (int op = 0; op < MAX_OPS && in->size; op++) {
		switch (take_byte(in) % 4) {
		case 0:
			add_mapping(builder, in, want);
			break;
		case 1:
			if (want->location_count < MAX_OPS)
				add_location(builder, in, want);
			break;
		case 2:
			add_sample(builder, in, want, opts.sample_type_count);
			break;
		default: {
			const char *comment = take_string(in);

			if (comment) {
				FUZZ_CHECK(pprof_builder__add_comment(builder, comment) == 0);
				want->comments[want->comment_count++] = comment;
			}
		}
		}
	}
	FUZZ_CHECK(pprof_builder__sample_count(builder) == want->sample_count);
	FUZZ_CHECK(pprof_builder__encode_gzip(builder, &gz, &gz_size) == 0);
	pprof_builder__free(builder);
	raw = gunzip(gz, gz_size, &raw_size);
	profile = perftools__profiles__profile__unpack(NULL, raw_size, raw);
	FUZZ_CHECK(profile != NULL);
	check_profile(profile, want, &opts);
	perftools__profiles__profile__free_unpacked(profile, NULL);
	free(raw);
	free(gz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct expected want;
	static struct input in;

	want = (struct expected){};
	in = (struct input){ .data = data, .size = size };
	run(&in, &want);
	for (size_t i = 0; i < in.string_count; i++)
		free(in.strings[i]);
	return 0;
}
