/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds one pprof Profile (google/pprof profile.proto): interns strings,
 * mappings, functions and locations, collects samples, and writes the result
 * gzip-compressed. Ids are sequential from 1 and string_table[0] is "", as
 * pprof's consumers (go tool pprof, Pyroscope, Parca) require.
 */
#ifndef KILN_PPROF_BUILDER_H
#define KILN_PPROF_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pprof_builder;

struct pprof_value_type {
	const char *type; /* "samples", "cpu" */
	const char *unit; /* "count", "nanoseconds" */
};

struct pprof_builder_opts {
	const struct pprof_value_type *sample_types;
	size_t sample_type_count;
	struct pprof_value_type period_type;
	int64_t period;
	int64_t time_nanos; /* start of the window, Unix ns */
	int64_t duration_nanos;
};

struct pprof_line {
	const char *function_name; /* NULL: the Line is omitted from the Location */
	const char *system_name; /* NULL: same as function_name */
	const char *filename; /* NULL: "" */
	int64_t start_line;
	int64_t line;
};

struct pprof_label {
	const char *key;
	const char *str; /* string label when not NULL, else numeric */
	int64_t num;
	const char *num_unit; /* NULL: none */
};

/* NULL with errno set. Strings in opts are copied. */
struct pprof_builder *pprof_builder__new(const struct pprof_builder_opts *opts);
void pprof_builder__free(struct pprof_builder *builder);

/*
 * Adds a mapping, or finds the identical one (same range, offset, file and
 * build id). build_id may be NULL or "". Returns 0 or -ENOMEM.
 */
int pprof_builder__add_mapping(struct pprof_builder *builder, uint64_t memory_start,
			       uint64_t memory_limit, uint64_t file_offset, const char *filename,
			       const char *build_id, bool has_functions, uint64_t *ret_mapping_id);

/*
 * The id of the location at (mapping_id, address, call_site), or 0 when
 * none yet. call_site: address is a return address and the location's
 * lines are those of the call before it. The same address sampled as a
 * leaf is another location, whose lines are the instruction's own (the
 * first of an inlined function after the call, say).
 */
uint64_t pprof_builder__find_location(const struct pprof_builder *builder, uint64_t mapping_id,
				      uint64_t address, bool call_site);

/*
 * Adds the location at (mapping_id, address, call_site) with its lines, innermost
 * first; when it already exists the lines are ignored and its id returned.
 * Functions are deduplicated by (name, system name, file, start line).
 * Returns 0, -EINVAL (mapping_id neither 0 nor a known mapping) or -ENOMEM.
 */
int pprof_builder__add_location(struct pprof_builder *builder, uint64_t mapping_id,
				uint64_t address, bool call_site, const struct pprof_line *lines,
				size_t line_count, uint64_t *ret_location_id);

/*
 * Adds a sample: location ids leaf first, one value per sample type,
 * labels copied. Returns 0, -EINVAL (unknown location id) or -ENOMEM.
 */
int pprof_builder__add_sample(struct pprof_builder *builder, const uint64_t *location_ids,
			      size_t location_count, const int64_t *values,
			      const struct pprof_label *labels, size_t label_count);

size_t pprof_builder__sample_count(const struct pprof_builder *builder);

/* Sets the profile's time and duration (Unix ns), as pprof_builder_opts gave them. */
void pprof_builder__set_time(struct pprof_builder *builder, int64_t time_nanos,
			     int64_t duration_nanos);

/* Adds a comment string to the profile (Profile.comment). */
int pprof_builder__add_comment(struct pprof_builder *builder, const char *comment);

/* The serialized profile, malloc'd, not compressed. Returns 0 or a negative errno. */
int pprof_builder__encode(struct pprof_builder *builder, uint8_t **ret_data, size_t *ret_size);

/* The serialized, gzip-compressed profile, malloc'd. Returns 0 or a negative errno. */
int pprof_builder__encode_gzip(struct pprof_builder *builder, uint8_t **ret_data, size_t *ret_size);

/*
 * Writes the gzip-compressed profile to path atomically: a temporary file
 * in the same directory, fsync, rename. Returns 0 or a negative errno.
 */
int pprof_builder__write_file(struct pprof_builder *builder, const char *path);

#endif /* KILN_PPROF_BUILDER_H */
