// SPDX-License-Identifier: Apache-2.0
/* Builds a pprof Profile in interned tables and writes it gzip-compressed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/fs.h"
#include "lib/gzip.h"
#include "lib/hashmap.h"
#include "proto/pprof_builder.h"
#include "proto/profile.pb-c.h"

/*
 * Mappings, functions and locations are stored in fixed-size chunks, so a
 * record never moves once added and a pointer to it can serve as its key in
 * a hashmap. Record i has id i + 1.
 */
#define RECORDS_PER_CHUNK 1024

struct record_table {
	char **chunks;
	size_t chunk_capacity;
	size_t count;
	size_t record_size;
	/* A record's identity: its first key_size bytes, whole 64-bit words. */
	size_t key_size;
};

struct mapping_record {
	uint64_t memory_start;
	uint64_t memory_limit;
	uint64_t file_offset;
	int64_t filename; /* string indices */
	int64_t build_id;
	/* Not part of the key: the first mapping added wins. */
	bool has_functions;
};
#define MAPPING_KEY_SIZE offsetof(struct mapping_record, has_functions)
_Static_assert(MAPPING_KEY_SIZE == 5 * sizeof(uint64_t), "mapping key has padding");

struct function_record {
	int64_t name; /* string indices */
	int64_t system_name;
	int64_t filename;
	int64_t start_line;
};
#define FUNCTION_KEY_SIZE sizeof(struct function_record)
_Static_assert(FUNCTION_KEY_SIZE == 4 * sizeof(uint64_t), "function key has padding");

struct location_record {
	uint64_t mapping_id;
	uint64_t address;
	uint64_t call_site; /* 1: a return address, its lines those of the call before it */
	size_t line_start; /* into pprof_builder.lines */
	size_t line_count;
};
#define LOCATION_KEY_SIZE offsetof(struct location_record, line_start)
_Static_assert(LOCATION_KEY_SIZE == 3 * sizeof(uint64_t), "location key has padding");

struct line_record {
	uint64_t function_id;
	int64_t line;
};

struct sample_record {
	size_t location_start; /* into pprof_builder.sample_locations */
	size_t location_count;
	size_t label_start; /* into pprof_builder.sample_labels */
	size_t label_count;
	/* values at sample_values[index * sample_type_count] */
};

struct label_record {
	int64_t key; /* string indices, 0 when absent */
	int64_t str;
	int64_t num;
	int64_t num_unit;
};

struct value_type_record {
	int64_t type; /* string indices */
	int64_t unit;
};

struct pprof_builder {
	/* string_table: strings[i] is malloc'd; string_ids maps it to i. */
	char **strings;
	size_t string_count;
	size_t string_capacity;
	struct hashmap *string_ids;

	struct record_table mappings;
	struct hashmap *mapping_ids;
	struct record_table functions;
	struct hashmap *function_ids;
	struct record_table locations;
	struct hashmap *location_ids;

	struct line_record *lines;
	size_t line_count;
	size_t line_capacity;

	struct sample_record *samples;
	size_t sample_count;
	size_t sample_capacity;
	uint64_t *sample_locations;
	size_t sample_location_count;
	size_t sample_location_capacity;
	int64_t *sample_values;
	size_t sample_value_capacity;
	struct label_record *sample_labels;
	size_t sample_label_count;
	size_t sample_label_capacity;

	int64_t *comments;
	size_t comment_count;
	size_t comment_capacity;

	struct value_type_record *sample_types;
	size_t sample_type_count;
	struct value_type_record period_type;
	int64_t period;
	int64_t time_nanos;
	int64_t duration_nanos;
};

static void *record_table__at(const struct record_table *table, size_t index)
{
	return table->chunks[index / RECORDS_PER_CHUNK] +
	       (index % RECORDS_PER_CHUNK) * table->record_size;
}

/* Room for the record at index table->count, not yet counted: the caller commits it. */
static void *record_table__reserve(struct record_table *table)
{
	size_t chunk = table->count / RECORDS_PER_CHUNK;

	if (table->count % RECORDS_PER_CHUNK == 0 && chunk >= table->chunk_capacity) {
		if (ARRAY_GROW(table->chunks, table->chunk_capacity, chunk + 1))
			return NULL;
		memset(table->chunks + chunk, 0,
		       (table->chunk_capacity - chunk) * sizeof(*table->chunks));
	}
	if (!table->chunks[chunk]) {
		table->chunks[chunk] = calloc(RECORDS_PER_CHUNK, table->record_size);
		if (!table->chunks[chunk])
			return NULL;
	}
	return record_table__at(table, table->count);
}

static void record_table__free(struct record_table *table)
{
	for (size_t i = 0; i < table->chunk_capacity; i++)
		free(table->chunks[i]);
	free(table->chunks);
}

/*
 * Finds the record equal to *probe or adds a copy of it; the id goes to
 * *ret_id. Ids double as hashmap values.
 */
static int record_table__intern(struct record_table *table, struct hashmap *ids, const void *probe,
				uint64_t *ret_id)
{
	void *record, *id;
	int err;

	if (hashmap__find(ids, (uintptr_t)probe, &id)) {
		*ret_id = (uintptr_t)id;
		return 0;
	}
	record = record_table__reserve(table);
	if (!record)
		return -ENOMEM;
	memcpy(record, probe, table->record_size);
	err = hashmap__set(ids, (uintptr_t)record, (void *)(uintptr_t)(table->count + 1), NULL,
			   NULL);
	if (err)
		return err;
	*ret_id = ++table->count;
	return 0;
}

/* Hashmap callbacks for record keys; ctx is the record_table. */
static size_t hash_record_key(uintptr_t key, void *ctx)
{
	const struct record_table *table = ctx;
	const unsigned char *record = (const void *)key;
	uint64_t hash = HASH_SEED, word;

	for (size_t offset = 0; offset < table->key_size; offset += sizeof(word)) {
		memcpy(&word, record + offset, sizeof(word));
		hash = hash_mix(hash, word);
	}
	return hash;
}

static bool equal_record_key(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct record_table *table = ctx;

	return memcmp((const void *)a, (const void *)b, table->key_size) == 0;
}

/* The string table index of s; NULL and "" are index 0. */
static int intern_string(struct pprof_builder *builder, const char *s, int64_t *ret_index)
{
	void *index;
	char *copy;
	int err;

	if (!s || !*s) {
		*ret_index = 0;
		return 0;
	}
	if (hashmap__find(builder->string_ids, (uintptr_t)s, &index)) {
		*ret_index = (uintptr_t)index;
		return 0;
	}
	err = ARRAY_GROW(builder->strings, builder->string_capacity, builder->string_count + 1);
	if (err)
		return err;
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	err = hashmap__set(builder->string_ids, (uintptr_t)copy,
			   (void *)(uintptr_t)builder->string_count, NULL, NULL);
	if (err) {
		free(copy);
		return err;
	}
	builder->strings[builder->string_count] = copy;
	*ret_index = builder->string_count++;
	return 0;
}

static int intern_value_type(struct pprof_builder *builder, const struct pprof_value_type *type,
			     struct value_type_record *ret_record)
{
	struct value_type_record record;
	int err;

	err = intern_string(builder, type->type, &record.type);
	if (err)
		return err;
	err = intern_string(builder, type->unit, &record.unit);
	if (err)
		return err;
	*ret_record = record;
	return 0;
}

struct pprof_builder *pprof_builder__new(const struct pprof_builder_opts *opts)
{
	struct pprof_builder *builder = NULL;
	int err;

	if (!opts || !opts->sample_type_count || !opts->sample_types) {
		err = -EINVAL;
		goto cleanup;
	}
	builder = calloc(1, sizeof(*builder));
	if (!builder) {
		err = -ENOMEM;
		goto cleanup;
	}
	builder->mappings.record_size = sizeof(struct mapping_record);
	builder->mappings.key_size = MAPPING_KEY_SIZE;
	builder->functions.record_size = sizeof(struct function_record);
	builder->functions.key_size = FUNCTION_KEY_SIZE;
	builder->locations.record_size = sizeof(struct location_record);
	builder->locations.key_size = LOCATION_KEY_SIZE;
	builder->string_ids = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	builder->mapping_ids = hashmap__new(hash_record_key, equal_record_key, &builder->mappings);
	builder->function_ids =
		hashmap__new(hash_record_key, equal_record_key, &builder->functions);
	builder->location_ids =
		hashmap__new(hash_record_key, equal_record_key, &builder->locations);
	builder->sample_types = calloc(opts->sample_type_count, sizeof(*builder->sample_types));
	if (!builder->string_ids || !builder->mapping_ids || !builder->function_ids ||
	    !builder->location_ids || !builder->sample_types) {
		err = -ENOMEM;
		goto cleanup;
	}

	/* string_table[0] must be "": intern_string never stores "" itself. */
	err = ARRAY_GROW(builder->strings, builder->string_capacity, 1);
	if (err)
		goto cleanup;
	builder->strings[0] = strdup("");
	if (!builder->strings[0]) {
		err = -ENOMEM;
		goto cleanup;
	}
	builder->string_count = 1;

	for (size_t i = 0; i < opts->sample_type_count; i++) {
		err = intern_value_type(builder, &opts->sample_types[i], &builder->sample_types[i]);
		if (err)
			goto cleanup;
	}
	builder->sample_type_count = opts->sample_type_count;
	err = intern_value_type(builder, &opts->period_type, &builder->period_type);
	if (err)
		goto cleanup;
	builder->period = opts->period;
	builder->time_nanos = opts->time_nanos;
	builder->duration_nanos = opts->duration_nanos;
	return builder;

cleanup:
	pprof_builder__free(builder);
	errno = -err;
	return NULL;
}

void pprof_builder__free(struct pprof_builder *builder)
{
	if (!builder)
		return;
	for (size_t i = 0; i < builder->string_count; i++)
		free(builder->strings[i]);
	free(builder->strings);
	hashmap__free(builder->string_ids);
	record_table__free(&builder->mappings);
	hashmap__free(builder->mapping_ids);
	record_table__free(&builder->functions);
	hashmap__free(builder->function_ids);
	record_table__free(&builder->locations);
	hashmap__free(builder->location_ids);
	free(builder->lines);
	free(builder->samples);
	free(builder->sample_locations);
	free(builder->sample_values);
	free(builder->sample_labels);
	free(builder->comments);
	free(builder->sample_types);
	free(builder);
}

int pprof_builder__add_mapping(struct pprof_builder *builder, uint64_t memory_start,
			       uint64_t memory_limit, uint64_t file_offset, const char *filename,
			       const char *build_id, bool has_functions, uint64_t *ret_mapping_id)
{
	struct mapping_record probe = {
		.memory_start = memory_start,
		.memory_limit = memory_limit,
		.file_offset = file_offset,
		.has_functions = has_functions,
	};
	int err;

	err = intern_string(builder, filename, &probe.filename);
	if (err)
		return err;
	err = intern_string(builder, build_id, &probe.build_id);
	if (err)
		return err;
	return record_table__intern(&builder->mappings, builder->mapping_ids, &probe,
				    ret_mapping_id);
}

uint64_t pprof_builder__find_location(const struct pprof_builder *builder, uint64_t mapping_id,
				      uint64_t address, bool call_site)
{
	struct location_record probe = { .mapping_id = mapping_id,
					 .address = address,
					 .call_site = call_site };
	void *id;

	if (!hashmap__find(builder->location_ids, (uintptr_t)&probe, &id))
		return 0;
	return (uintptr_t)id;
}

static int intern_function(struct pprof_builder *builder, const struct pprof_line *line,
			   uint64_t *ret_function_id)
{
	struct function_record probe = { .start_line = line->start_line };
	int err;

	err = intern_string(builder, line->function_name, &probe.name);
	if (err)
		return err;
	err = intern_string(builder, line->system_name ?: line->function_name, &probe.system_name);
	if (err)
		return err;
	err = intern_string(builder, line->filename, &probe.filename);
	if (err)
		return err;
	return record_table__intern(&builder->functions, builder->function_ids, &probe,
				    ret_function_id);
}

/*
 * On failure the location is not added; functions and strings interned on
 * the way may stay, which is harmless.
 */
int pprof_builder__add_location(struct pprof_builder *builder, uint64_t mapping_id,
				uint64_t address, bool call_site, const struct pprof_line *lines,
				size_t line_count, uint64_t *ret_location_id)
{
	struct location_record probe = { .mapping_id = mapping_id,
					 .address = address,
					 .call_site = call_site };
	size_t line_start = builder->line_count;
	uint64_t location_id;
	int err;

	location_id = pprof_builder__find_location(builder, mapping_id, address, call_site);
	if (location_id) {
		*ret_location_id = location_id;
		return 0;
	}
	/* A nonzero mapping_id must name a Mapping, or readers reject the profile. */
	if (mapping_id > builder->mappings.count || (line_count && !lines)) {
		err = -EINVAL;
		goto cleanup;
	}
	if (line_count > SIZE_MAX - line_start) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = ARRAY_GROW(builder->lines, builder->line_capacity, line_start + line_count);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < line_count; i++) {
		struct line_record *line = &builder->lines[builder->line_count];

		if (!lines[i].function_name)
			continue;
		err = intern_function(builder, &lines[i], &line->function_id);
		if (err)
			goto cleanup;
		line->line = lines[i].line;
		builder->line_count++;
	}
	probe.line_start = line_start;
	probe.line_count = builder->line_count - line_start;
	err = record_table__intern(&builder->locations, builder->location_ids, &probe,
				   &location_id);
	if (err)
		goto cleanup;
	*ret_location_id = location_id;

cleanup:
	if (err)
		builder->line_count = line_start;
	return err;
}

static int intern_label(struct pprof_builder *builder, const struct pprof_label *label,
			struct label_record *ret_record)
{
	struct label_record record = { 0 };
	int err;

	err = intern_string(builder, label->key, &record.key);
	if (err)
		return err;
	if (label->str) {
		err = intern_string(builder, label->str, &record.str);
	} else {
		record.num = label->num;
		err = intern_string(builder, label->num_unit, &record.num_unit);
	}
	if (err)
		return err;
	*ret_record = record;
	return 0;
}

int pprof_builder__add_sample(struct pprof_builder *builder, const uint64_t *location_ids,
			      size_t location_count, const int64_t *values,
			      const struct pprof_label *labels, size_t label_count)
{
	size_t value_count = builder->sample_type_count;
	size_t location_start = builder->sample_location_count;
	size_t label_start = builder->sample_label_count;
	struct sample_record *sample;
	int err;

	if (!values || (location_count && !location_ids) || (label_count && !labels))
		return -EINVAL;
	for (size_t i = 0; i < location_count; i++)
		if (location_ids[i] == 0 || location_ids[i] > builder->locations.count)
			return -EINVAL;
	for (size_t i = 0; i < label_count; i++)
		if (!labels[i].key)
			return -EINVAL;
	if (location_count > SIZE_MAX - location_start || label_count > SIZE_MAX - label_start ||
	    builder->sample_count + 1 > SIZE_MAX / value_count)
		return -ENOMEM;

	/* Everything that can fail comes before the sample is committed. */
	err = ARRAY_GROW(builder->samples, builder->sample_capacity, builder->sample_count + 1);
	if (!err)
		err = ARRAY_GROW(builder->sample_values, builder->sample_value_capacity,
				 (builder->sample_count + 1) * value_count);
	if (!err)
		err = ARRAY_GROW(builder->sample_locations, builder->sample_location_capacity,
				 location_start + location_count);
	if (!err)
		err = ARRAY_GROW(builder->sample_labels, builder->sample_label_capacity,
				 label_start + label_count);
	for (size_t i = 0; !err && i < label_count; i++)
		err = intern_label(builder, &labels[i], &builder->sample_labels[label_start + i]);
	if (err)
		return err;

	sample = &builder->samples[builder->sample_count];
	sample->location_start = location_start;
	sample->location_count = location_count;
	sample->label_start = label_start;
	sample->label_count = label_count;
	if (location_count)
		memcpy(&builder->sample_locations[location_start], location_ids,
		       location_count * sizeof(*location_ids));
	memcpy(&builder->sample_values[builder->sample_count * value_count], values,
	       value_count * sizeof(*values));
	builder->sample_location_count += location_count;
	builder->sample_label_count += label_count;
	builder->sample_count++;
	return 0;
}

size_t pprof_builder__sample_count(const struct pprof_builder *builder)
{
	return builder->sample_count;
}

void pprof_builder__set_time(struct pprof_builder *builder, int64_t time_nanos,
			     int64_t duration_nanos)
{
	builder->time_nanos = time_nanos;
	builder->duration_nanos = duration_nanos;
}

int pprof_builder__add_comment(struct pprof_builder *builder, const char *comment)
{
	int64_t index;
	int err;

	if (!comment)
		return -EINVAL;
	err = ARRAY_GROW(builder->comments, builder->comment_capacity, builder->comment_count + 1);
	if (err)
		return err;
	err = intern_string(builder, comment, &index);
	if (err)
		return err;
	builder->comments[builder->comment_count++] = index;
	return 0;
}

/*
 * The protobuf-c view of a builder: arrays of messages and of pointers to
 * them, built for one encode. Repeated scalars and the string table point
 * into the builder itself.
 */
struct profile_messages {
	Perftools__Profiles__Profile profile;
	Perftools__Profiles__ValueType period_type;
	Perftools__Profiles__ValueType *sample_types, **sample_type_ptrs;
	Perftools__Profiles__Sample *samples, **sample_ptrs;
	Perftools__Profiles__Label *labels, **label_ptrs;
	Perftools__Profiles__Mapping *mappings, **mapping_ptrs;
	Perftools__Profiles__Location *locations, **location_ptrs;
	Perftools__Profiles__Line *lines, **line_ptrs;
	Perftools__Profiles__Function *functions, **function_ptrs;
};

static void profile_messages__free(struct profile_messages *m)
{
	free(m->sample_types);
	free(m->sample_type_ptrs);
	free(m->samples);
	free(m->sample_ptrs);
	free(m->labels);
	free(m->label_ptrs);
	free(m->mappings);
	free(m->mapping_ptrs);
	free(m->locations);
	free(m->location_ptrs);
	free(m->lines);
	free(m->line_ptrs);
	free(m->functions);
	free(m->function_ptrs);
}

/* count messages and pointers to them; one extra element so count 0 is no special case. */
#define ALLOC_MESSAGES(messages, ptrs, count)                                                      \
	({                                                                                         \
		(messages) = calloc((count) + 1, sizeof(*(messages)));                             \
		(ptrs) = calloc((count) + 1, sizeof(*(ptrs)));                                     \
		(messages) && (ptrs) ? 0 : -ENOMEM;                                                \
	})

static int profile_messages__init(struct profile_messages *m, const struct pprof_builder *b)
{
	Perftools__Profiles__Profile *profile = &m->profile;
	int err;

	err = ALLOC_MESSAGES(m->sample_types, m->sample_type_ptrs, b->sample_type_count);
	if (!err)
		err = ALLOC_MESSAGES(m->samples, m->sample_ptrs, b->sample_count);
	if (!err)
		err = ALLOC_MESSAGES(m->labels, m->label_ptrs, b->sample_label_count);
	if (!err)
		err = ALLOC_MESSAGES(m->mappings, m->mapping_ptrs, b->mappings.count);
	if (!err)
		err = ALLOC_MESSAGES(m->locations, m->location_ptrs, b->locations.count);
	if (!err)
		err = ALLOC_MESSAGES(m->lines, m->line_ptrs, b->line_count);
	if (!err)
		err = ALLOC_MESSAGES(m->functions, m->function_ptrs, b->functions.count);
	if (err)
		return err;

	perftools__profiles__profile__init(profile);
	for (size_t i = 0; i < b->sample_type_count; i++) {
		Perftools__Profiles__ValueType *type = &m->sample_types[i];

		perftools__profiles__value_type__init(type);
		type->type = b->sample_types[i].type;
		type->unit = b->sample_types[i].unit;
		m->sample_type_ptrs[i] = type;
	}
	profile->n_sample_type = b->sample_type_count;
	profile->sample_type = m->sample_type_ptrs;

	for (size_t i = 0; i < b->sample_label_count; i++) {
		Perftools__Profiles__Label *label = &m->labels[i];

		perftools__profiles__label__init(label);
		label->key = b->sample_labels[i].key;
		label->str = b->sample_labels[i].str;
		label->num = b->sample_labels[i].num;
		label->num_unit = b->sample_labels[i].num_unit;
		m->label_ptrs[i] = label;
	}
	for (size_t i = 0; i < b->sample_count; i++) {
		const struct sample_record *record = &b->samples[i];
		Perftools__Profiles__Sample *sample = &m->samples[i];

		perftools__profiles__sample__init(sample);
		sample->n_location_id = record->location_count;
		/* No sample with a location leaves sample_locations NULL: no offset from it. */
		sample->location_id = record->location_count
					      ? &b->sample_locations[record->location_start]
					      : NULL;
		sample->n_value = b->sample_type_count;
		sample->value = &b->sample_values[i * b->sample_type_count];
		sample->n_label = record->label_count;
		sample->label = &m->label_ptrs[record->label_start];
		m->sample_ptrs[i] = sample;
	}
	profile->n_sample = b->sample_count;
	profile->sample = m->sample_ptrs;

	for (size_t i = 0; i < b->mappings.count; i++) {
		const struct mapping_record *record = record_table__at(&b->mappings, i);
		Perftools__Profiles__Mapping *mapping = &m->mappings[i];

		perftools__profiles__mapping__init(mapping);
		mapping->id = i + 1;
		mapping->memory_start = record->memory_start;
		mapping->memory_limit = record->memory_limit;
		mapping->file_offset = record->file_offset;
		mapping->filename = record->filename;
		mapping->build_id = record->build_id;
		mapping->has_functions = record->has_functions;
		m->mapping_ptrs[i] = mapping;
	}
	profile->n_mapping = b->mappings.count;
	profile->mapping = m->mapping_ptrs;

	for (size_t i = 0; i < b->line_count; i++) {
		Perftools__Profiles__Line *line = &m->lines[i];

		perftools__profiles__line__init(line);
		line->function_id = b->lines[i].function_id;
		line->line = b->lines[i].line;
		m->line_ptrs[i] = line;
	}
	for (size_t i = 0; i < b->locations.count; i++) {
		const struct location_record *record = record_table__at(&b->locations, i);
		Perftools__Profiles__Location *location = &m->locations[i];

		perftools__profiles__location__init(location);
		location->id = i + 1;
		location->mapping_id = record->mapping_id;
		location->address = record->address;
		location->n_line = record->line_count;
		location->line = &m->line_ptrs[record->line_start];
		m->location_ptrs[i] = location;
	}
	profile->n_location = b->locations.count;
	profile->location = m->location_ptrs;

	for (size_t i = 0; i < b->functions.count; i++) {
		const struct function_record *record = record_table__at(&b->functions, i);
		Perftools__Profiles__Function *function = &m->functions[i];

		perftools__profiles__function__init(function);
		function->id = i + 1;
		function->name = record->name;
		function->system_name = record->system_name;
		function->filename = record->filename;
		function->start_line = record->start_line;
		m->function_ptrs[i] = function;
	}
	profile->n_function = b->functions.count;
	profile->function = m->function_ptrs;

	profile->n_string_table = b->string_count;
	profile->string_table = b->strings;
	profile->time_nanos = b->time_nanos;
	profile->duration_nanos = b->duration_nanos;
	if (b->period_type.type || b->period_type.unit) {
		perftools__profiles__value_type__init(&m->period_type);
		m->period_type.type = b->period_type.type;
		m->period_type.unit = b->period_type.unit;
		profile->period_type = &m->period_type;
	}
	profile->period = b->period;
	profile->n_comment = b->comment_count;
	profile->comment = b->comments;
	return 0;
}

int pprof_builder__encode(struct pprof_builder *builder, uint8_t **ret_data, size_t *ret_size)
{
	struct profile_messages messages = { 0 };
	uint8_t *packed;
	size_t packed_size;
	int err;

	err = profile_messages__init(&messages, builder);
	if (err)
		goto cleanup;
	packed_size = perftools__profiles__profile__get_packed_size(&messages.profile);
	packed = malloc(packed_size + 1);
	if (!packed) {
		err = -ENOMEM;
		goto cleanup;
	}
	*ret_size = perftools__profiles__profile__pack(&messages.profile, packed);
	*ret_data = packed;

cleanup:
	profile_messages__free(&messages);
	return err;
}

int pprof_builder__encode_gzip(struct pprof_builder *builder, uint8_t **ret_data, size_t *ret_size)
{
	uint8_t *packed = NULL;
	size_t packed_size;
	int err;

	err = pprof_builder__encode(builder, &packed, &packed_size);
	if (!err)
		err = gzip_compress(packed, packed_size, ret_data, ret_size);
	free(packed);
	return err;
}

int pprof_builder__write_file(struct pprof_builder *builder, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *file_name = slash ? slash + 1 : path;
	char *directory = NULL;
	uint8_t *data = NULL;
	size_t size;
	int dir_fd = AT_FDCWD, err;

	if (!*file_name)
		return -EISDIR;
	if (slash) {
		/* "/name" lives in the root directory. */
		directory = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		if (!directory)
			return -ENOMEM;
		dir_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir_fd < 0) {
			err = -errno;
			goto cleanup;
		}
	}
	err = pprof_builder__encode_gzip(builder, &data, &size);
	if (err)
		goto cleanup;
	err = fs_write_file_atomic(dir_fd, file_name, &(struct iovec){ data, size }, 1, 0644,
				   FS_WRITE_DURABLE);

cleanup:
	if (dir_fd >= 0)
		close(dir_fd);
	free(directory);
	free(data);
	return err;
}
