// SPDX-License-Identifier: Apache-2.0
/* pprof profiles into one OTLP profiles request with a shared dictionary. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "lib/array.h"
#include "lib/hashmap.h"
#include "proto/otlp_builder.h"
#include "proto/otlp_profiles_service.pb-c.h"
#include "proto/profile.pb-c.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
	ExportRequest;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dictionary;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles ResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles ScopeProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Profile Profile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample Sample;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType ValueType;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping Mapping;
typedef Opentelemetry__Proto__Profiles__V1development__Location Location;
typedef Opentelemetry__Proto__Profiles__V1development__Line Line;
typedef Opentelemetry__Proto__Profiles__V1development__Function Function;
typedef Opentelemetry__Proto__Profiles__V1development__Stack Stack;
typedef Opentelemetry__Proto__Profiles__V1development__Link Link;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit KeyValueAndUnit;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope InstrumentationScope;

#define PROFILE_ID_SIZE 16

/*
 * A dictionary record as bytes: its identity, and all that is needed to
 * write it. Strings keep a NUL after their bytes (not counted in size).
 */
struct blob {
	uint32_t size;
	uint8_t bytes[];
};

/* One table of the dictionary: blobs by index, and index by blob. Index 0 is the empty blob. */
struct blob_table {
	struct blob **items;
	size_t count;
	size_t capacity;
	struct hashmap *ids;
	uint8_t *probe; /* a blob being looked up */
	size_t probe_capacity;
};

enum attribute_kind { ATTRIBUTE_STRING = 1, ATTRIBUTE_INT = 2 };

/* A sample of one Profile being built: its stack, attributes and one value. */
struct sample_record {
	int32_t stack;
	int64_t value;
	size_t attribute_start; /* into otlp_builder.sample_attributes */
	size_t attribute_count;
};

struct profile_record {
	int32_t type, unit; /* string indices */
	int32_t period_type, period_unit;
	int64_t period;
	uint64_t time_ns, duration_ns;
	uint8_t id[PROFILE_ID_SIZE];
	size_t sample_start; /* into otlp_builder.samples */
	size_t sample_count;
};

struct resource_record {
	size_t attribute_start; /* into otlp_builder.resource_attributes */
	size_t attribute_count;
	size_t profile_start; /* into otlp_builder.profiles */
	size_t profile_count;
};

/* A resource attribute, copied. */
struct resource_attribute {
	char *key;
	char *str; /* NULL: num */
	int64_t num;
};

struct otlp_builder {
	const struct otlp_builder_opts *opts;
	struct blob_table strings, mappings, locations, functions, stacks, attributes;
	struct resource_record *resources;
	size_t resource_count, resource_capacity;
	struct resource_attribute *resource_attributes;
	size_t resource_attribute_count, resource_attribute_capacity;
	struct profile_record *profiles;
	size_t profile_count, profile_capacity;
	struct sample_record *samples;
	size_t sample_count, sample_capacity;
	int32_t *sample_attributes;
	size_t sample_attribute_count, sample_attribute_capacity;
	/* A record being put together, before it is interned. */
	uint8_t *scratch;
	size_t scratch_size, scratch_capacity;
};

static size_t hash_blob(uintptr_t key, void *ctx)
{
	const struct blob *blob = (const void *)key;

	(void)ctx;
	return hash_bytes(blob->bytes, blob->size, HASH_SEED);
}

static bool equal_blob(uintptr_t a, uintptr_t b, void *ctx)
{
	const struct blob *x = (const void *)a, *y = (const void *)b;

	(void)ctx;
	return x->size == y->size && !memcmp(x->bytes, y->bytes, x->size);
}

static int blob_table__intern(struct blob_table *table, const void *bytes, size_t size,
			      int32_t *ret_index)
{
	struct blob *blob;
	void *index;
	int err;

	if (size > UINT32_MAX - 1 || table->count >= INT32_MAX)
		return -ENOMEM;
	/* Looked up first through a probe of the table's own: most records are found. */
	err = ARRAY_GROW(table->probe, table->probe_capacity, sizeof(*blob) + size);
	if (err)
		return err;
	blob = (struct blob *)table->probe;
	blob->size = (uint32_t)size;
	memcpy(blob->bytes, bytes, size);
	if (hashmap__find(table->ids, (uintptr_t)blob, &index)) {
		*ret_index = (int32_t)(uintptr_t)index;
		return 0;
	}
	blob = malloc(sizeof(*blob) + size + 1);
	if (!blob)
		return -ENOMEM;
	blob->size = (uint32_t)size;
	memcpy(blob->bytes, bytes, size);
	blob->bytes[size] = 0;
	err = ARRAY_GROW(table->items, table->capacity, table->count + 1);
	if (!err)
		err = hashmap__set(table->ids, (uintptr_t)blob, (void *)(uintptr_t)table->count,
				   NULL, NULL);
	if (err) {
		free(blob);
		return err;
	}
	table->items[table->count] = blob;
	*ret_index = (int32_t)table->count++;
	return 0;
}

/* The table with its zero value (the empty blob) at index 0. */
static int blob_table__init(struct blob_table *table)
{
	int32_t zero;

	table->ids = hashmap__new(hash_blob, equal_blob, NULL);
	if (!table->ids)
		return -ENOMEM;
	return blob_table__intern(table, "", 0, &zero);
}

static void blob_table__free(struct blob_table *table)
{
	for (size_t i = 0; i < table->count; i++)
		free(table->items[i]);
	free(table->items);
	free(table->probe);
	hashmap__free(table->ids);
}

/* Records are put together in the scratch buffer, then interned. */
static int scratch_put(struct otlp_builder *builder, const void *bytes, size_t size)
{
	int err = ARRAY_GROW(builder->scratch, builder->scratch_capacity,
			     builder->scratch_size + size);

	if (err)
		return err;
	memcpy(builder->scratch + builder->scratch_size, bytes, size);
	builder->scratch_size += size;
	return 0;
}

static int scratch_intern(struct otlp_builder *builder, struct blob_table *table,
			  int32_t *ret_index)
{
	int err = blob_table__intern(table, builder->scratch, builder->scratch_size, ret_index);

	builder->scratch_size = 0;
	return err;
}

static int intern_string(struct otlp_builder *builder, const char *s, int32_t *ret_index)
{
	if (!s)
		s = "";
	return blob_table__intern(&builder->strings, s, strlen(s), ret_index);
}

/* Attribute records: key (i32), kind (u8), then the int64 or the string's bytes. */
static int intern_attribute(struct otlp_builder *builder, const char *key, const char *str,
			    int64_t num, int32_t *ret_index)
{
	uint8_t kind = str ? ATTRIBUTE_STRING : ATTRIBUTE_INT;
	int32_t key_index;
	int err;

	err = intern_string(builder, key, &key_index);
	if (!err)
		err = scratch_put(builder, &key_index, sizeof(key_index));
	if (!err)
		err = scratch_put(builder, &kind, sizeof(kind));
	if (!err)
		err = str ? scratch_put(builder, str, strlen(str))
			  : scratch_put(builder, &num, sizeof(num));
	if (err) {
		builder->scratch_size = 0;
		return err;
	}
	return scratch_intern(builder, &builder->attributes, ret_index);
}

struct otlp_builder *otlp_builder__new(const struct otlp_builder_opts *opts)
{
	struct otlp_builder *builder = calloc(1, sizeof(*builder));

	if (!builder) {
		errno = ENOMEM;
		return NULL;
	}
	builder->opts = opts;
	if (blob_table__init(&builder->strings) || blob_table__init(&builder->mappings) ||
	    blob_table__init(&builder->locations) || blob_table__init(&builder->functions) ||
	    blob_table__init(&builder->stacks) || blob_table__init(&builder->attributes)) {
		otlp_builder__free(builder);
		errno = ENOMEM;
		return NULL;
	}
	return builder;
}

void otlp_builder__free(struct otlp_builder *builder)
{
	if (!builder)
		return;
	blob_table__free(&builder->strings);
	blob_table__free(&builder->mappings);
	blob_table__free(&builder->locations);
	blob_table__free(&builder->functions);
	blob_table__free(&builder->stacks);
	blob_table__free(&builder->attributes);
	for (size_t i = 0; i < builder->resource_attribute_count; i++) {
		free(builder->resource_attributes[i].key);
		free(builder->resource_attributes[i].str);
	}
	free(builder->resource_attributes);
	free(builder->resources);
	free(builder->profiles);
	free(builder->samples);
	free(builder->sample_attributes);
	free(builder->scratch);
	free(builder);
}

size_t otlp_builder__resource_count(const struct otlp_builder *builder)
{
	return builder->resource_count;
}

/* One pprof profile being converted: its ids to dictionary indices. */
struct conversion {
	const Perftools__Profiles__Profile *pprof;
	struct hashmap *mappings, *functions, *locations; /* pprof id -> its record */
	/* pprof id -> dictionary index + 1, once converted: stacks share most locations. */
	struct hashmap *mapping_indices, *function_indices, *location_indices;
	int32_t *strings; /* pprof string index -> dictionary index, filled as used */
};

/* The dictionary index a pprof id was converted to before, or -1. */
static int32_t converted(struct hashmap *indices, uint64_t id)
{
	void *index;

	return hashmap__find(indices, id, &index) ? (int32_t)((uintptr_t)index - 1) : -1;
}

static int remember(struct hashmap *indices, uint64_t id, int err, const int32_t *index)
{
	if (err)
		return err;
	return hashmap__set(indices, id, (void *)(uintptr_t)(*index + 1), NULL, NULL);
}

static bool string_ok(const Perftools__Profiles__Profile *pprof, int64_t index)
{
	return index >= 0 && (uint64_t)index < pprof->n_string_table;
}

static int convert_string(struct otlp_builder *builder, struct conversion *conv, int64_t index,
			  int32_t *ret_index)
{
	int err;

	if (conv->strings[index] < 0) {
		err = intern_string(builder, conv->pprof->string_table[index],
				    &conv->strings[index]);
		if (err)
			return err;
	}
	*ret_index = conv->strings[index];
	return 0;
}

/* Every index the profile holds in range, every id it refers to defined: else -EINVAL. */
static int check_pprof(const Perftools__Profiles__Profile *pprof, struct hashmap *mapping_ids,
		       struct hashmap *function_ids, struct hashmap *location_ids)
{
	int err;

	if (!pprof->n_string_table || pprof->string_table[0][0])
		return -EINVAL;
	for (size_t i = 0; i < pprof->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = pprof->mapping[i];

		if (!m->id || !string_ok(pprof, m->filename) || !string_ok(pprof, m->build_id) ||
		    hashmap__find(mapping_ids, m->id, NULL))
			return -EINVAL;
		err = hashmap__set(mapping_ids, m->id, (void *)m, NULL, NULL);
		if (err)
			return err;
	}
	for (size_t i = 0; i < pprof->n_function; i++) {
		const Perftools__Profiles__Function *f = pprof->function[i];

		if (!f->id || !string_ok(pprof, f->name) || !string_ok(pprof, f->system_name) ||
		    !string_ok(pprof, f->filename) || hashmap__find(function_ids, f->id, NULL))
			return -EINVAL;
		err = hashmap__set(function_ids, f->id, (void *)f, NULL, NULL);
		if (err)
			return err;
	}
	for (size_t i = 0; i < pprof->n_location; i++) {
		const Perftools__Profiles__Location *l = pprof->location[i];

		if (!l->id || (l->mapping_id && !hashmap__find(mapping_ids, l->mapping_id, NULL)) ||
		    hashmap__find(location_ids, l->id, NULL))
			return -EINVAL;
		for (size_t j = 0; j < l->n_line; j++)
			if (!hashmap__find(function_ids, l->line[j]->function_id, NULL))
				return -EINVAL;
		err = hashmap__set(location_ids, l->id, (void *)l, NULL, NULL);
		if (err)
			return err;
	}
	for (size_t i = 0; i < pprof->n_sample_type; i++)
		if (!string_ok(pprof, pprof->sample_type[i]->type) ||
		    !string_ok(pprof, pprof->sample_type[i]->unit))
			return -EINVAL;
	if (pprof->period_type && (!string_ok(pprof, pprof->period_type->type) ||
				   !string_ok(pprof, pprof->period_type->unit)))
		return -EINVAL;
	for (size_t i = 0; i < pprof->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pprof->sample[i];

		if (s->n_value != pprof->n_sample_type)
			return -EINVAL;
		for (size_t j = 0; j < s->n_location_id; j++)
			if (!hashmap__find(location_ids, s->location_id[j], NULL))
				return -EINVAL;
		for (size_t j = 0; j < s->n_label; j++)
			if (!string_ok(pprof, s->label[j]->key) ||
			    !string_ok(pprof, s->label[j]->str))
				return -EINVAL;
	}
	return 0;
}

/* Mapping records: start, limit, offset (u64), filename and build-id attribute (i32). */
static int convert_mapping(struct otlp_builder *builder, struct conversion *conv,
			   uint64_t mapping_id, int32_t *ret_index)
{
	const Perftools__Profiles__Mapping *m;
	int32_t filename, build_id = 0;
	void *found;
	int err;

	if (!mapping_id) {
		*ret_index = 0;
		return 0;
	}
	*ret_index = converted(conv->mapping_indices, mapping_id);
	if (*ret_index >= 0)
		return 0;
	hashmap__find(conv->mappings, mapping_id, &found);
	m = found;
	err = convert_string(builder, conv, m->filename, &filename);
	if (!err && m->build_id && builder->opts->build_id_attribute)
		err = intern_attribute(builder, builder->opts->build_id_attribute,
				       conv->pprof->string_table[m->build_id], 0, &build_id);
	if (!err)
		err = scratch_put(builder, &m->memory_start, sizeof(m->memory_start));
	if (!err)
		err = scratch_put(builder, &m->memory_limit, sizeof(m->memory_limit));
	if (!err)
		err = scratch_put(builder, &m->file_offset, sizeof(m->file_offset));
	if (!err)
		err = scratch_put(builder, &filename, sizeof(filename));
	if (!err)
		err = scratch_put(builder, &build_id, sizeof(build_id));
	if (err) {
		builder->scratch_size = 0;
		return err;
	}
	err = scratch_intern(builder, &builder->mappings, ret_index);
	return remember(conv->mapping_indices, mapping_id, err, ret_index);
}

/* Function records: name, system name, filename (i32), start line (i64). */
static int convert_function(struct otlp_builder *builder, struct conversion *conv,
			    uint64_t function_id, int32_t *ret_index)
{
	const Perftools__Profiles__Function *f;
	int32_t fields[3];
	void *found;
	int err;

	*ret_index = converted(conv->function_indices, function_id);
	if (*ret_index >= 0)
		return 0;
	hashmap__find(conv->functions, function_id, &found);
	f = found;
	err = convert_string(builder, conv, f->name, &fields[0]);
	if (!err)
		err = convert_string(builder, conv, f->system_name, &fields[1]);
	if (!err)
		err = convert_string(builder, conv, f->filename, &fields[2]);
	if (!err)
		err = scratch_put(builder, fields, sizeof(fields));
	if (!err)
		err = scratch_put(builder, &f->start_line, sizeof(f->start_line));
	if (err) {
		builder->scratch_size = 0;
		return err;
	}
	err = scratch_intern(builder, &builder->functions, ret_index);
	return remember(conv->function_indices, function_id, err, ret_index);
}

/* Location records: mapping (i32), address (u64), then (function i32, line i64) per line. */
static int convert_location(struct otlp_builder *builder, struct conversion *conv,
			    uint64_t location_id, int32_t *ret_index)
{
	const Perftools__Profiles__Location *l;
	int32_t mapping, function, *functions;
	void *found;
	int err;

	*ret_index = converted(conv->location_indices, location_id);
	if (*ret_index >= 0)
		return 0;
	hashmap__find(conv->locations, location_id, &found);
	l = found;
	err = convert_mapping(builder, conv, l->mapping_id, &mapping);
	if (err)
		return err;
	/* Functions first: each is its own scratch record. */
	functions = calloc(l->n_line ? l->n_line : 1, sizeof(*functions));
	if (!functions)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_line && !err; i++)
		err = convert_function(builder, conv, l->line[i]->function_id, &functions[i]);
	if (!err)
		err = scratch_put(builder, &mapping, sizeof(mapping));
	if (!err)
		err = scratch_put(builder, &l->address, sizeof(l->address));
	for (size_t i = 0; i < l->n_line && !err; i++) {
		function = functions[i];
		err = scratch_put(builder, &function, sizeof(function));
		if (!err)
			err = scratch_put(builder, &l->line[i]->line, sizeof(l->line[i]->line));
	}
	free(functions);
	if (err) {
		builder->scratch_size = 0;
		return err;
	}
	err = scratch_intern(builder, &builder->locations, ret_index);
	return remember(conv->location_indices, location_id, err, ret_index);
}

/* Stack records: location indices (i32), leaf first. */
static int convert_stack(struct otlp_builder *builder, struct conversion *conv,
			 const Perftools__Profiles__Sample *sample, int32_t *ret_index)
{
	int32_t *indices =
		calloc(sample->n_location_id ? sample->n_location_id : 1, sizeof(*indices));
	int err = indices ? 0 : -ENOMEM;

	for (size_t i = 0; i < sample->n_location_id && !err; i++)
		err = convert_location(builder, conv, sample->location_id[i], &indices[i]);
	if (!err)
		err = blob_table__intern(&builder->stacks, indices,
					 sample->n_location_id * sizeof(*indices), ret_index);
	free(indices);
	return err;
}

/* The attributes of a sample's kept labels, appended to sample_attributes. */
static int convert_labels(struct otlp_builder *builder, const Perftools__Profiles__Sample *sample,
			  const Perftools__Profiles__Profile *pprof, size_t *ret_count)
{
	const struct otlp_builder_opts *opts = builder->opts;
	size_t count = 0;
	int32_t index;
	int err;

	for (size_t i = 0; i < sample->n_label; i++) {
		const Perftools__Profiles__Label *label = sample->label[i];
		const char *key = pprof->string_table[label->key];

		for (size_t j = 0; j < opts->label_count; j++) {
			if (strcmp(opts->labels[j].label, key))
				continue;
			err = intern_attribute(builder, opts->labels[j].attribute,
					       label->str ? pprof->string_table[label->str] : NULL,
					       label->num, &index);
			if (!err)
				err = ARRAY_GROW(builder->sample_attributes,
						 builder->sample_attribute_capacity,
						 builder->sample_attribute_count + 1);
			if (err)
				return err;
			builder->sample_attributes[builder->sample_attribute_count++] = index;
			count++;
			break;
		}
	}
	*ret_count = count;
	return 0;
}

static int add_resource_attributes(struct otlp_builder *builder,
				   const struct otlp_attribute *attributes, size_t count)
{
	int err = ARRAY_GROW(builder->resource_attributes, builder->resource_attribute_capacity,
			     builder->resource_attribute_count + count);

	if (err)
		return err;
	for (size_t i = 0; i < count; i++) {
		struct resource_attribute *copy =
			&builder->resource_attributes[builder->resource_attribute_count];

		copy->key = strdup(attributes[i].key);
		copy->str = attributes[i].str ? strdup(attributes[i].str) : NULL;
		copy->num = attributes[i].num;
		if (!copy->key || (attributes[i].str && !copy->str)) {
			free(copy->key);
			free(copy->str);
			return -ENOMEM;
		}
		builder->resource_attribute_count++;
	}
	return 0;
}

/* The sample type index of the pprof's type called name, or -1. */
static ssize_t find_sample_type(const Perftools__Profiles__Profile *pprof, const char *name)
{
	for (size_t i = 0; i < pprof->n_sample_type; i++)
		if (!strcmp(pprof->string_table[pprof->sample_type[i]->type], name))
			return (ssize_t)i;
	return -1;
}

static int add_profile(struct otlp_builder *builder, struct conversion *conv, size_t type,
		       const int32_t *stacks, const size_t *label_starts,
		       const size_t *label_counts)
{
	const Perftools__Profiles__Profile *pprof = conv->pprof;
	struct profile_record *profile;
	int err;

	err = ARRAY_GROW(builder->profiles, builder->profile_capacity, builder->profile_count + 1);
	if (err)
		return err;
	profile = &builder->profiles[builder->profile_count];
	*profile = (struct profile_record){
		.period = pprof->period,
		.time_ns = pprof->time_nanos > 0 ? (uint64_t)pprof->time_nanos : 0,
		.duration_ns = pprof->duration_nanos > 0 ? (uint64_t)pprof->duration_nanos : 0,
		.sample_start = builder->sample_count,
	};
	err = convert_string(builder, conv, pprof->sample_type[type]->type, &profile->type);
	if (!err)
		err = convert_string(builder, conv, pprof->sample_type[type]->unit, &profile->unit);
	if (!err && pprof->period_type)
		err = convert_string(builder, conv, pprof->period_type->type,
				     &profile->period_type);
	if (!err && pprof->period_type)
		err = convert_string(builder, conv, pprof->period_type->unit,
				     &profile->period_unit);
	if (err)
		return err;
	/* Random, as the specification asks: all zeroes would be invalid. */
	if (getrandom(profile->id, sizeof(profile->id), 0) != sizeof(profile->id))
		memset(profile->id, 0x6b, sizeof(profile->id));
	for (size_t i = 0; i < pprof->n_sample; i++) {
		int64_t value = pprof->sample[i]->value[type];

		if (!value)
			continue;
		err = ARRAY_GROW(builder->samples, builder->sample_capacity,
				 builder->sample_count + 1);
		if (err)
			return err;
		builder->samples[builder->sample_count++] = (struct sample_record){
			.stack = stacks[i],
			.value = value,
			.attribute_start = label_starts[i],
			.attribute_count = label_counts[i],
		};
	}
	profile->sample_count = builder->sample_count - profile->sample_start;
	builder->profile_count++;
	return 0;
}

static int convert(struct otlp_builder *builder, struct conversion *conv,
		   const struct otlp_attribute *resource, size_t resource_count)
{
	const Perftools__Profiles__Profile *pprof = conv->pprof;
	size_t n = pprof->n_sample ? pprof->n_sample : 1;
	int32_t *stacks = calloc(n, sizeof(*stacks));
	size_t *label_starts = calloc(n, sizeof(*label_starts));
	size_t *label_counts = calloc(n, sizeof(*label_counts));
	struct resource_record record = {
		.attribute_start = builder->resource_attribute_count,
		.attribute_count = resource_count,
		.profile_start = builder->profile_count,
	};
	int err = stacks && label_starts && label_counts ? 0 : -ENOMEM;

	ssize_t *types = calloc(builder->opts->sample_type_count + 1, sizeof(*types));

	if (!types)
		err = -ENOMEM;
	for (size_t i = 0; i < builder->opts->sample_type_count && !err; i++)
		types[i] = find_sample_type(pprof, builder->opts->sample_types[i]);
	/* Only what some profile sends: a sample of 0 in every chosen type is left out. */
	for (size_t i = 0; i < pprof->n_sample && !err; i++) {
		bool sent = false;

		for (size_t t = 0; t < builder->opts->sample_type_count; t++)
			sent |= types[t] >= 0 && pprof->sample[i]->value[types[t]];
		if (!sent)
			continue;
		err = convert_stack(builder, conv, pprof->sample[i], &stacks[i]);
		label_starts[i] = builder->sample_attribute_count;
		if (!err)
			err = convert_labels(builder, pprof->sample[i], pprof, &label_counts[i]);
	}
	for (size_t i = 0; i < builder->opts->sample_type_count && !err; i++)
		if (types[i] >= 0)
			err = add_profile(builder, conv, (size_t)types[i], stacks, label_starts,
					  label_counts);
	free(types);
	if (!err)
		err = add_resource_attributes(builder, resource, resource_count);
	if (!err)
		err = ARRAY_GROW(builder->resources, builder->resource_capacity,
				 builder->resource_count + 1);
	if (!err) {
		record.profile_count = builder->profile_count - record.profile_start;
		builder->resources[builder->resource_count++] = record;
	}
	free(stacks);
	free(label_starts);
	free(label_counts);
	return err;
}

/* The resource's build id: of the mapping named as its executable, when the profile has it. */
static int add_executable_build_id(struct otlp_builder *builder,
				   const Perftools__Profiles__Profile *pprof,
				   const char *executable)
{
	const char *key = builder->opts->executable_build_id_attribute;
	struct resource_record *resource = &builder->resources[builder->resource_count - 1];

	if (!key || !executable)
		return 0;
	for (size_t i = 0; i < pprof->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = pprof->mapping[i];
		struct otlp_attribute attribute = { key, pprof->string_table[m->build_id], 0 };
		int err;

		if (!m->build_id || strcmp(pprof->string_table[m->filename], executable))
			continue;
		/* Its attributes are the last added: one more goes at their end. */
		err = add_resource_attributes(builder, &attribute, 1);
		if (!err)
			resource->attribute_count++;
		return err;
	}
	return 0;
}

int otlp_builder__add_pprof(struct otlp_builder *builder, const struct otlp_attribute *resource,
			    size_t resource_count, const char *executable,
			    const uint8_t *pprof_data, size_t size)
{
	struct conversion conv = {};
	Perftools__Profiles__Profile *pprof;
	/* What a failed conversion leaves is taken back, but for interned records. */
	size_t profiles = builder->profile_count, samples = builder->sample_count;
	size_t attributes = builder->sample_attribute_count;
	int err;

	pprof = perftools__profiles__profile__unpack(NULL, size, pprof_data);
	if (!pprof)
		return -EINVAL;
	conv.pprof = pprof;
	conv.mappings = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.functions = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.locations = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.mapping_indices = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.function_indices = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.location_indices = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	conv.strings =
		malloc((pprof->n_string_table ? pprof->n_string_table : 1) * sizeof(*conv.strings));
	err = conv.mappings && conv.functions && conv.locations && conv.strings &&
			      conv.mapping_indices && conv.function_indices && conv.location_indices
		      ? 0
		      : -ENOMEM;
	if (!err)
		err = check_pprof(pprof, conv.mappings, conv.functions, conv.locations);
	if (!err) {
		memset(conv.strings, 0xff, pprof->n_string_table * sizeof(*conv.strings));
		err = convert(builder, &conv, resource, resource_count);
	}
	if (!err)
		err = add_executable_build_id(builder, pprof, executable);
	if (err) {
		builder->profile_count = profiles;
		builder->sample_count = samples;
		builder->sample_attribute_count = attributes;
	}
	hashmap__free(conv.mappings);
	hashmap__free(conv.functions);
	hashmap__free(conv.locations);
	hashmap__free(conv.mapping_indices);
	hashmap__free(conv.function_indices);
	hashmap__free(conv.location_indices);
	free(conv.strings);
	perftools__profiles__profile__free_unpacked(pprof, NULL);
	return err;
}

/* Reads a record's fields back, in the order they were put. */
struct reader {
	const uint8_t *at, *end;
};

static void read_field(struct reader *reader, void *out, size_t size)
{
	memcpy(out, reader->at, size);
	reader->at += size;
}

/*
 * The protobuf-c messages of a request, pointing into the builder's tables,
 * allocated together and freed by messages_free.
 */
struct messages {
	ExportRequest request;
	Dictionary dictionary;
	Mapping *mappings, **mapping_ptrs;
	int32_t *mapping_attributes;
	Location *locations, **location_ptrs;
	Line *lines, **line_ptrs;
	Function *functions, **function_ptrs;
	Stack *stacks, **stack_ptrs;
	KeyValueAndUnit *attributes, **attribute_ptrs;
	AnyValue *attribute_values;
	Link link, *link_ptr;
	char **strings;
	ResourceProfiles *resources, **resource_ptrs;
	Resource *resource_messages;
	KeyValue *resource_kvs, **resource_kv_ptrs;
	AnyValue *resource_values;
	ScopeProfiles *scopes, **scope_ptrs;
	InstrumentationScope scope;
	Profile *profiles, **profile_ptrs;
	ValueType *value_types; /* two a profile: sample type, period type */
	Sample *samples, **sample_ptrs;
};

#define ALLOC(field, count)                                                                        \
	((m->field = calloc((count) > 0 ? (count) : 1, sizeof(*m->field))) != NULL)

static void messages_free(struct messages *m)
{
	free(m->mappings);
	free(m->mapping_ptrs);
	free(m->mapping_attributes);
	free(m->locations);
	free(m->location_ptrs);
	free(m->lines);
	free(m->line_ptrs);
	free(m->functions);
	free(m->function_ptrs);
	free(m->stacks);
	free(m->stack_ptrs);
	free(m->attributes);
	free(m->attribute_ptrs);
	free(m->attribute_values);
	free(m->strings);
	free(m->resources);
	free(m->resource_ptrs);
	free(m->resource_messages);
	free(m->resource_kvs);
	free(m->resource_kv_ptrs);
	free(m->resource_values);
	free(m->scopes);
	free(m->scope_ptrs);
	free(m->profiles);
	free(m->profile_ptrs);
	free(m->value_types);
	free(m->samples);
	free(m->sample_ptrs);
}

static size_t count_lines(const struct otlp_builder *b)
{
	size_t lines = 0;
	const size_t head = sizeof(int32_t) + sizeof(uint64_t), line = sizeof(int32_t) + 8;

	for (size_t i = 1; i < b->locations.count; i++)
		lines += (b->locations.items[i]->size - head) / line;
	return lines;
}

static void fill_dictionary(struct messages *m, const struct otlp_builder *b)
{
	Dictionary *d = &m->dictionary;
	size_t line_at = 0;

	opentelemetry__proto__profiles__v1development__profiles_dictionary__init(d);
	for (size_t i = 0; i < b->strings.count; i++)
		m->strings[i] = (char *)b->strings.items[i]->bytes;
	d->n_string_table = b->strings.count;
	d->string_table = m->strings;
	for (size_t i = 0; i < b->mappings.count; i++) {
		Mapping *mapping = &m->mappings[i];
		struct reader r = { b->mappings.items[i]->bytes,
				    b->mappings.items[i]->bytes + b->mappings.items[i]->size };

		opentelemetry__proto__profiles__v1development__mapping__init(mapping);
		if (i) {
			read_field(&r, &mapping->memory_start, sizeof(uint64_t));
			read_field(&r, &mapping->memory_limit, sizeof(uint64_t));
			read_field(&r, &mapping->file_offset, sizeof(uint64_t));
			read_field(&r, &mapping->filename_strindex, sizeof(int32_t));
			read_field(&r, &m->mapping_attributes[i], sizeof(int32_t));
			if (m->mapping_attributes[i]) {
				mapping->n_attribute_indices = 1;
				mapping->attribute_indices = &m->mapping_attributes[i];
			}
		}
		m->mapping_ptrs[i] = mapping;
	}
	d->n_mapping_table = b->mappings.count;
	d->mapping_table = m->mapping_ptrs;
	for (size_t i = 0; i < b->functions.count; i++) {
		Function *function = &m->functions[i];
		struct reader r = { b->functions.items[i]->bytes, NULL };

		opentelemetry__proto__profiles__v1development__function__init(function);
		if (i) {
			read_field(&r, &function->name_strindex, sizeof(int32_t));
			read_field(&r, &function->system_name_strindex, sizeof(int32_t));
			read_field(&r, &function->filename_strindex, sizeof(int32_t));
			read_field(&r, &function->start_line, sizeof(int64_t));
		}
		m->function_ptrs[i] = function;
	}
	d->n_function_table = b->functions.count;
	d->function_table = m->function_ptrs;
	for (size_t i = 0; i < b->locations.count; i++) {
		Location *location = &m->locations[i];
		const struct blob *blob = b->locations.items[i];
		struct reader r = { blob->bytes, blob->bytes + blob->size };

		opentelemetry__proto__profiles__v1development__location__init(location);
		if (i) {
			read_field(&r, &location->mapping_index, sizeof(int32_t));
			read_field(&r, &location->address, sizeof(uint64_t));
			location->lines = &m->line_ptrs[line_at];
			while (r.at < r.end) {
				Line *line = &m->lines[line_at];

				opentelemetry__proto__profiles__v1development__line__init(line);
				read_field(&r, &line->function_index, sizeof(int32_t));
				read_field(&r, &line->line, sizeof(int64_t));
				m->line_ptrs[line_at++] = line;
				location->n_lines++;
			}
		}
		m->location_ptrs[i] = location;
	}
	d->n_location_table = b->locations.count;
	d->location_table = m->location_ptrs;
	for (size_t i = 0; i < b->stacks.count; i++) {
		Stack *stack = &m->stacks[i];

		opentelemetry__proto__profiles__v1development__stack__init(stack);
		stack->n_location_indices = b->stacks.items[i]->size / sizeof(int32_t);
		/* The blob's bytes are 4-aligned: its header is one uint32_t. */
		stack->location_indices = (int32_t *)b->stacks.items[i]->bytes;
		m->stack_ptrs[i] = stack;
	}
	d->n_stack_table = b->stacks.count;
	d->stack_table = m->stack_ptrs;
	for (size_t i = 0; i < b->attributes.count; i++) {
		KeyValueAndUnit *attribute = &m->attributes[i];
		AnyValue *value = &m->attribute_values[i];
		const struct blob *blob = b->attributes.items[i];
		struct reader r = { blob->bytes, blob->bytes + blob->size };
		uint8_t kind;

		opentelemetry__proto__profiles__v1development__key_value_and_unit__init(attribute);
		opentelemetry__proto__common__v1__any_value__init(value);
		if (i) {
			read_field(&r, &attribute->key_strindex, sizeof(int32_t));
			read_field(&r, &kind, sizeof(kind));
			if (kind == ATTRIBUTE_STRING) {
				value->value_case =
					OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
				value->string_value = (char *)r.at; /* NUL-terminated */
			} else {
				value->value_case =
					OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
				read_field(&r, &value->int_value, sizeof(int64_t));
			}
			attribute->value = value;
		}
		m->attribute_ptrs[i] = attribute;
	}
	d->n_attribute_table = b->attributes.count;
	d->attribute_table = m->attribute_ptrs;
	opentelemetry__proto__profiles__v1development__link__init(&m->link);
	m->link_ptr = &m->link;
	d->n_link_table = 1;
	d->link_table = &m->link_ptr;
}

static void fill_resources(struct messages *m, struct otlp_builder *b)
{
	opentelemetry__proto__common__v1__instrumentation_scope__init(&m->scope);
	m->scope.name = (char *)(b->opts->scope_name ? b->opts->scope_name : "");
	m->scope.version = (char *)(b->opts->scope_version ? b->opts->scope_version : "");
	for (size_t i = 0; i < b->resource_attribute_count; i++) {
		const struct resource_attribute *a = &b->resource_attributes[i];
		KeyValue *kv = &m->resource_kvs[i];
		AnyValue *value = &m->resource_values[i];

		opentelemetry__proto__common__v1__key_value__init(kv);
		opentelemetry__proto__common__v1__any_value__init(value);
		kv->key = a->key;
		if (a->str) {
			value->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			value->string_value = a->str;
		} else {
			value->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
			value->int_value = a->num;
		}
		kv->value = value;
		m->resource_kv_ptrs[i] = kv;
	}
	for (size_t i = 0; i < b->sample_count; i++) {
		const struct sample_record *s = &b->samples[i];
		Sample *sample = &m->samples[i];

		opentelemetry__proto__profiles__v1development__sample__init(sample);
		sample->stack_index = s->stack;
		sample->n_values = 1;
		sample->values = (int64_t *)&s->value;
		sample->n_attribute_indices = s->attribute_count;
		sample->attribute_indices = &b->sample_attributes[s->attribute_start];
		m->sample_ptrs[i] = sample;
	}
	for (size_t i = 0; i < b->profile_count; i++) {
		struct profile_record *p = &b->profiles[i];
		Profile *profile = &m->profiles[i];
		ValueType *types = &m->value_types[2 * i];

		opentelemetry__proto__profiles__v1development__profile__init(profile);
		opentelemetry__proto__profiles__v1development__value_type__init(&types[0]);
		opentelemetry__proto__profiles__v1development__value_type__init(&types[1]);
		types[0].type_strindex = p->type;
		types[0].unit_strindex = p->unit;
		types[1].type_strindex = p->period_type;
		types[1].unit_strindex = p->period_unit;
		profile->sample_type = &types[0];
		profile->period_type = &types[1];
		profile->period = p->period;
		profile->time_unix_nano = p->time_ns;
		profile->duration_nano = p->duration_ns;
		profile->profile_id.data = p->id;
		profile->profile_id.len = sizeof(p->id);
		profile->n_samples = p->sample_count;
		profile->samples = &m->sample_ptrs[p->sample_start];
		m->profile_ptrs[i] = profile;
	}
	for (size_t i = 0; i < b->resource_count; i++) {
		const struct resource_record *r = &b->resources[i];
		ResourceProfiles *resource = &m->resources[i];
		ScopeProfiles *scope = &m->scopes[i];

		opentelemetry__proto__resource__v1__resource__init(&m->resource_messages[i]);
		m->resource_messages[i].n_attributes = r->attribute_count;
		m->resource_messages[i].attributes = &m->resource_kv_ptrs[r->attribute_start];
		opentelemetry__proto__profiles__v1development__scope_profiles__init(scope);
		scope->scope = &m->scope;
		scope->n_profiles = r->profile_count;
		scope->profiles = &m->profile_ptrs[r->profile_start];
		m->scope_ptrs[i] = scope;
		opentelemetry__proto__profiles__v1development__resource_profiles__init(resource);
		resource->resource = &m->resource_messages[i];
		resource->n_scope_profiles = 1;
		resource->scope_profiles = &m->scope_ptrs[i];
		m->resource_ptrs[i] = resource;
	}
}

int otlp_builder__encode(struct otlp_builder *b, uint8_t **ret_data, size_t *ret_size)
{
	struct messages messages = {}, *m = &messages;
	size_t lines = count_lines(b), size;
	uint8_t *data = NULL;
	int err = -ENOMEM;

	if (!ALLOC(mappings, b->mappings.count) || !ALLOC(mapping_ptrs, b->mappings.count) ||
	    !ALLOC(mapping_attributes, b->mappings.count) ||
	    !ALLOC(locations, b->locations.count) || !ALLOC(location_ptrs, b->locations.count) ||
	    !ALLOC(lines, lines) || !ALLOC(line_ptrs, lines) ||
	    !ALLOC(functions, b->functions.count) || !ALLOC(function_ptrs, b->functions.count) ||
	    !ALLOC(stacks, b->stacks.count) || !ALLOC(stack_ptrs, b->stacks.count) ||
	    !ALLOC(attributes, b->attributes.count) ||
	    !ALLOC(attribute_ptrs, b->attributes.count) ||
	    !ALLOC(attribute_values, b->attributes.count) || !ALLOC(strings, b->strings.count) ||
	    !ALLOC(resources, b->resource_count) || !ALLOC(resource_ptrs, b->resource_count) ||
	    !ALLOC(resource_messages, b->resource_count) ||
	    !ALLOC(resource_kvs, b->resource_attribute_count) ||
	    !ALLOC(resource_kv_ptrs, b->resource_attribute_count) ||
	    !ALLOC(resource_values, b->resource_attribute_count) ||
	    !ALLOC(scopes, b->resource_count) || !ALLOC(scope_ptrs, b->resource_count) ||
	    !ALLOC(profiles, b->profile_count) || !ALLOC(profile_ptrs, b->profile_count) ||
	    !ALLOC(value_types, 2 * b->profile_count) || !ALLOC(samples, b->sample_count) ||
	    !ALLOC(sample_ptrs, b->sample_count))
		goto cleanup;
	fill_dictionary(m, b);
	fill_resources(m, b);
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__init(
		&m->request);
	m->request.n_resource_profiles = b->resource_count;
	m->request.resource_profiles = m->resource_ptrs;
	m->request.dictionary = &m->dictionary;
	size = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size(
		&m->request);
	data = malloc(size ? size : 1);
	if (!data)
		goto cleanup;
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack(
		&m->request, data);
	*ret_data = data;
	*ret_size = size;
	err = 0;

cleanup:
	messages_free(m);
	return err;
}
