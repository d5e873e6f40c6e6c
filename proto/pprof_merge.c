// SPDX-License-Identifier: Apache-2.0
/*
 * Profiles merged through the pprof builder, which interns mappings,
 * functions and locations: a function every window has is written once.
 * A location keeps what kiln's builder keyed it by: the same address as a
 * leaf and as a return address are two locations (their lines differ), so
 * the leaf of a sample is added as a leaf and the rest as call sites.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hashmap.h"
#include "proto/pprof_builder.h"
#include "proto/pprof_merge.h"
#include "proto/profile.pb-c.h"

/* A location's lines beyond this are left out (kiln writes far fewer: its inline depth). */
#define MERGE_MAX_LINES 64
/* A sample's labels beyond this are left out. */
#define MERGE_MAX_LABELS 64

struct process_record {
	struct pprof_merge_process process;
	char comm[64];
	char container_id[128];
};

struct pprof_merge {
	struct pprof_builder *builder;
	/* The first profile's sample types: every later one must have the same. */
	char **type_names;
	size_t type_count;
	int64_t start_ns, end_ns;
	struct hashmap *processes; /* pid -> struct process_record */
	struct pprof_merge_stats stats;
};

/* One input profile's tables, by id, and what each became in the merge. */
struct input {
	const Perftools__Profiles__Profile *profile;
	struct hashmap *location_positions; /* location id -> its position + 1 */
	struct hashmap *mapping_positions;
	struct hashmap *function_positions;
	uint64_t *leaf_ids, *call_ids; /* per location position: the merged ids, 0 before */
	uint64_t *mapping_ids; /* per mapping position */
};

struct pprof_merge *pprof_merge__new(void)
{
	struct pprof_merge *merge = calloc(1, sizeof(*merge));

	if (!merge)
		return NULL;
	merge->processes = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	if (!merge->processes) {
		free(merge);
		errno = ENOMEM;
		return NULL;
	}
	return merge;
}

void pprof_merge__free(struct pprof_merge *merge)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	if (!merge)
		return;
	while (hashmap__next(merge->processes, &iter, NULL, &value))
		free(value);
	hashmap__free(merge->processes);
	for (size_t i = 0; i < merge->type_count; i++)
		free(merge->type_names[i]);
	free(merge->type_names);
	pprof_builder__free(merge->builder);
	free(merge);
}

static const char *string_at(const Perftools__Profiles__Profile *profile, int64_t index)
{
	if (index < 0 || (uint64_t)index >= profile->n_string_table)
		return NULL;
	return profile->string_table[index];
}

/* The type and unit of a value type, "" for an index out of range. */
static struct pprof_value_type value_type_of(const Perftools__Profiles__Profile *profile,
					     const Perftools__Profiles__ValueType *type)
{
	const char *name = type ? string_at(profile, type->type) : NULL;
	const char *unit = type ? string_at(profile, type->unit) : NULL;

	return (struct pprof_value_type){ .type = name ? name : "", .unit = unit ? unit : "" };
}

static int start_builder(struct pprof_merge *merge, const Perftools__Profiles__Profile *profile)
{
	struct pprof_value_type *types;
	int err = 0;

	types = calloc(profile->n_sample_type, sizeof(*types));
	merge->type_names = calloc(profile->n_sample_type, sizeof(*merge->type_names));
	if (!types || !merge->type_names) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < profile->n_sample_type; i++) {
		types[i] = value_type_of(profile, profile->sample_type[i]);
		merge->type_names[i] = strdup(types[i].type);
		if (!merge->type_names[i]) {
			err = -ENOMEM;
			goto out;
		}
		merge->type_count++;
	}
	merge->builder = pprof_builder__new(&(struct pprof_builder_opts){
		.sample_types = types,
		.sample_type_count = profile->n_sample_type,
		.period_type = value_type_of(profile, profile->period_type),
		.period = profile->period,
	});
	if (!merge->builder)
		err = -ENOMEM;
out:
	free(types);
	return err;
}

static bool same_types(const struct pprof_merge *merge, const Perftools__Profiles__Profile *profile)
{
	if (profile->n_sample_type != merge->type_count)
		return false;
	for (size_t i = 0; i < merge->type_count; i++) {
		if (strcmp(value_type_of(profile, profile->sample_type[i]).type,
			   merge->type_names[i]))
			return false;
	}
	return true;
}

/* id -> position + 1 over a table of messages whose first field is their id. */
#define INDEX_BY_ID(map, items, count)                                                             \
	({                                                                                         \
		int __err = 0;                                                                     \
		for (size_t __i = 0; __i < (count) && !__err; __i++)                               \
			__err = hashmap__set(map, (uintptr_t)(items)[__i]->id,                     \
					     (void *)(uintptr_t)(__i + 1), NULL, NULL);            \
		__err;                                                                             \
	})

static size_t position_of(const struct hashmap *map, uint64_t id)
{
	void *value;

	return id && hashmap__find(map, (uintptr_t)id, &value) ? (size_t)(uintptr_t)value : 0;
}

static void input_free(struct input *input)
{
	hashmap__free(input->location_positions);
	hashmap__free(input->mapping_positions);
	hashmap__free(input->function_positions);
	free(input->leaf_ids);
	free(input->call_ids);
	free(input->mapping_ids);
}

static int input_init(struct input *input, const Perftools__Profiles__Profile *profile)
{
	*input = (struct input){ .profile = profile };
	input->location_positions = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	input->mapping_positions = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	input->function_positions = hashmap__new(hashmap_hash_int, hashmap_equal_int, NULL);
	input->leaf_ids = calloc(profile->n_location + 1, sizeof(*input->leaf_ids));
	input->call_ids = calloc(profile->n_location + 1, sizeof(*input->call_ids));
	input->mapping_ids = calloc(profile->n_mapping + 1, sizeof(*input->mapping_ids));
	if (!input->location_positions || !input->mapping_positions || !input->function_positions ||
	    !input->leaf_ids || !input->call_ids || !input->mapping_ids)
		return -ENOMEM;
	if (INDEX_BY_ID(input->location_positions, profile->location, profile->n_location) ||
	    INDEX_BY_ID(input->mapping_positions, profile->mapping, profile->n_mapping) ||
	    INDEX_BY_ID(input->function_positions, profile->function, profile->n_function))
		return -ENOMEM;
	return 0;
}

/* The merged mapping of an input mapping id: 0 for none (or an unknown id). */
static int merged_mapping(struct pprof_merge *merge, struct input *input, uint64_t id,
			  uint64_t *ret_id)
{
	size_t position = position_of(input->mapping_positions, id);
	const Perftools__Profiles__Mapping *mapping;
	const char *filename, *build_id;

	*ret_id = 0;
	if (!position)
		return 0;
	if (input->mapping_ids[position]) {
		*ret_id = input->mapping_ids[position];
		return 0;
	}
	mapping = input->profile->mapping[position - 1];
	filename = string_at(input->profile, mapping->filename);
	build_id = string_at(input->profile, mapping->build_id);
	return pprof_builder__add_mapping(merge->builder, mapping->memory_start,
					  mapping->memory_limit, mapping->file_offset,
					  filename ? filename : "", build_id,
					  mapping->has_functions, &input->mapping_ids[position])
		       ?: (*ret_id = input->mapping_ids[position], 0);
}

/* The merged location of an input location id: -ENOENT for an unknown id. */
static int merged_location(struct pprof_merge *merge, struct input *input, uint64_t id,
			   bool call_site, uint64_t *ret_id)
{
	size_t position = position_of(input->location_positions, id);
	struct pprof_line lines[MERGE_MAX_LINES];
	const Perftools__Profiles__Location *location;
	uint64_t *cached, mapping_id;
	size_t line_count = 0;
	int err;

	if (!position)
		return -ENOENT;
	cached = call_site ? &input->call_ids[position] : &input->leaf_ids[position];
	if (*cached) {
		*ret_id = *cached;
		return 0;
	}
	location = input->profile->location[position - 1];
	err = merged_mapping(merge, input, location->mapping_id, &mapping_id);
	if (err)
		return err;
	for (size_t i = 0; i < location->n_line && line_count < MERGE_MAX_LINES; i++) {
		const Perftools__Profiles__Line *line = location->line[i];
		size_t function = position_of(input->function_positions, line->function_id);
		const Perftools__Profiles__Function *f;

		if (!function)
			continue;
		f = input->profile->function[function - 1];
		lines[line_count++] = (struct pprof_line){
			.function_name = string_at(input->profile, f->name) ?: "",
			.system_name = string_at(input->profile, f->system_name),
			.filename = string_at(input->profile, f->filename),
			.start_line = f->start_line,
			.line = line->line,
		};
	}
	err = pprof_builder__add_location(merge->builder, mapping_id, location->address, call_site,
					  lines, line_count, cached);
	if (err)
		return err;
	*ret_id = *cached;
	return 0;
}

/* A sample's labels as the builder takes them; strings out of range leave the label out. */
static size_t sample_labels(const Perftools__Profiles__Profile *profile,
			    const Perftools__Profiles__Sample *sample, struct pprof_label *labels)
{
	size_t count = 0;

	for (size_t i = 0; i < sample->n_label && count < MERGE_MAX_LABELS; i++) {
		const Perftools__Profiles__Label *label = sample->label[i];
		const char *key = string_at(profile, label->key);

		if (!key || !*key)
			continue;
		labels[count] = (struct pprof_label){ .key = key, .num = label->num };
		if (label->str) {
			labels[count].str = string_at(profile, label->str);
			if (!labels[count].str)
				continue;
		}
		if (label->num_unit)
			labels[count].num_unit = string_at(profile, label->num_unit);
		count++;
	}
	return count;
}

static const struct pprof_label *find_label(const struct pprof_label *labels, size_t count,
					    const char *key)
{
	for (size_t i = 0; i < count; i++) {
		if (!strcmp(labels[i].key, key))
			return &labels[i];
	}
	return NULL;
}

static bool passes(const struct pprof_filter *filter, const struct pprof_label *labels,
		   size_t count)
{
	const struct pprof_label *label;

	if (!filter)
		return true;
	if (filter->pid && (!(label = find_label(labels, count, "pid")) || label->str ||
			    label->num != filter->pid))
		return false;
	if (filter->tid && (!(label = find_label(labels, count, "tid")) || label->str ||
			    label->num != filter->tid))
		return false;
	if (filter->comm && (!(label = find_label(labels, count, "comm")) || !label->str ||
			     strcmp(label->str, filter->comm)))
		return false;
	if (filter->label_key &&
	    (!(label = find_label(labels, count, filter->label_key)) || !label->str ||
	     strcmp(label->str, filter->label_value ? filter->label_value : "")))
		return false;
	return true;
}

static void copy_text(char *to, size_t size, const char *from)
{
	size_t length = from ? strnlen(from, size - 1) : 0;

	memcpy(to, from ? from : "", length);
	to[length] = '\0';
}

static int count_process(struct pprof_merge *merge, const struct pprof_label *labels, size_t count,
			 int64_t value)
{
	const struct pprof_label *pid = find_label(labels, count, "pid");
	const struct pprof_label *label;
	struct process_record *record;
	void *found;
	int err;

	if (!pid || pid->str)
		return 0;
	if (hashmap__find(merge->processes, (uintptr_t)pid->num, &found)) {
		record = found;
		record->process.value += value;
		return 0;
	}
	if (hashmap__size(merge->processes) >= PPROF_MERGE_MAX_PROCESSES) {
		merge->stats.other_processes++;
		return 0;
	}
	record = calloc(1, sizeof(*record));
	if (!record)
		return -ENOMEM;
	label = find_label(labels, count, "comm");
	copy_text(record->comm, sizeof(record->comm), label ? label->str : NULL);
	label = find_label(labels, count, "container_id");
	copy_text(record->container_id, sizeof(record->container_id), label ? label->str : NULL);
	record->process = (struct pprof_merge_process){ .pid = pid->num,
							.comm = record->comm,
							.container_id = record->container_id,
							.value = value };
	err = hashmap__set(merge->processes, (uintptr_t)pid->num, record, NULL, NULL);
	if (err)
		free(record);
	return err;
}

static int add_sample(struct pprof_merge *merge, struct input *input,
		      const Perftools__Profiles__Sample *sample, const struct pprof_filter *filter,
		      uint64_t *ids)
{
	struct pprof_label labels[MERGE_MAX_LABELS];
	size_t label_count;
	int err;

	if (sample->n_value != merge->type_count) {
		merge->stats.samples_invalid++;
		return 0;
	}
	label_count = sample_labels(input->profile, sample, labels);
	if (!passes(filter, labels, label_count)) {
		merge->stats.samples_filtered++;
		return 0;
	}
	for (size_t i = 0; i < sample->n_location_id; i++) {
		err = merged_location(merge, input, sample->location_id[i], i > 0, &ids[i]);
		if (err == -ENOENT) {
			merge->stats.samples_invalid++;
			return 0;
		}
		if (err)
			return err;
	}
	err = pprof_builder__add_sample(merge->builder, ids, sample->n_location_id, sample->value,
					labels, label_count);
	if (err)
		return err;
	merge->stats.samples++;
	return count_process(merge, labels, label_count, sample->value[0]);
}

int pprof_merge__add(struct pprof_merge *merge, const uint8_t *data, size_t size,
		     const struct pprof_filter *filter)
{
	Perftools__Profiles__Profile *profile;
	struct input input = {};
	size_t most_locations = 0;
	uint64_t *ids = NULL;
	int err;

	profile = perftools__profiles__profile__unpack(NULL, size, data);
	if (!profile)
		return -EINVAL;
	if (!profile->n_sample_type) {
		err = -EINVAL;
		goto out;
	}
	if (!merge->builder) {
		err = start_builder(merge, profile);
		if (err)
			goto out;
	} else if (!same_types(merge, profile)) {
		err = -EINVAL;
		goto out;
	}
	err = input_init(&input, profile);
	if (err)
		goto out;
	for (size_t i = 0; i < profile->n_sample; i++) {
		if (profile->sample[i]->n_location_id > most_locations)
			most_locations = profile->sample[i]->n_location_id;
	}
	ids = calloc(most_locations + 1, sizeof(*ids));
	if (!ids) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < profile->n_sample && !err; i++)
		err = add_sample(merge, &input, profile->sample[i], filter, ids);
	if (err)
		goto out;
	if (!merge->stats.profiles || profile->time_nanos < merge->start_ns)
		merge->start_ns = profile->time_nanos;
	if (profile->time_nanos + profile->duration_nanos > merge->end_ns)
		merge->end_ns = profile->time_nanos + profile->duration_nanos;
	merge->stats.profiles++;
out:
	free(ids);
	input_free(&input);
	perftools__profiles__profile__free_unpacked(profile, NULL);
	return err;
}

void pprof_merge__stats(const struct pprof_merge *merge, struct pprof_merge_stats *ret_stats)
{
	*ret_stats = merge->stats;
}

int pprof_merge__for_each_process(const struct pprof_merge *merge,
				  int (*fn)(void *ctx, const struct pprof_merge_process *process),
				  void *ctx)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;
	int err;

	while (hashmap__next(merge->processes, &iter, NULL, &value)) {
		err = fn(ctx, &((struct process_record *)value)->process);
		if (err)
			return err;
	}
	return 0;
}

int pprof_merge__encode_gzip(struct pprof_merge *merge, uint8_t **ret_data, size_t *ret_size)
{
	if (!merge->builder)
		return -ENOENT;
	pprof_builder__set_time(merge->builder, merge->start_ns, merge->end_ns - merge->start_ns);
	return pprof_builder__encode_gzip(merge->builder, ret_data, ret_size);
}
