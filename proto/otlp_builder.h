/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds one OTLP ExportProfilesServiceRequest (OpenTelemetry's profiles
 * signal, proto/otlp_profiles_service.proto) from pprof profiles: one
 * ResourceProfiles per profile added (a process of one window), each with
 * one Profile per chosen sample type, and one ProfilesDictionary for the
 * whole request, so a string, function, mapping, location, stack or
 * attribute several processes share is sent once. Every table's element 0
 * is the zero value, as the specification requires (index 0 means unset).
 */
#ifndef KILN_OTLP_BUILDER_H
#define KILN_OTLP_BUILDER_H

#include <stddef.h>
#include <stdint.h>

struct otlp_builder;

/* A resource attribute: a string when str is not NULL, else the integer num. */
struct otlp_attribute {
	const char *key;
	const char *str;
	int64_t num;
};

/* A pprof label that becomes a sample attribute, under another name. */
struct otlp_label_rename {
	const char *label; /* pprof's key: "tid" */
	const char *attribute; /* the attribute's: "thread.id" */
};

struct otlp_builder_opts {
	const char *scope_name; /* the InstrumentationScope: "kiln" */
	const char *scope_version;
	/*
	 * The pprof sample types (by type, "samples", "off_cpu") that become
	 * a Profile each, in this order; a type a profile lacks is skipped.
	 */
	const char *const *sample_types;
	size_t sample_type_count;
	/* The labels kept, as attributes; every other label is left out. */
	const struct otlp_label_rename *labels;
	size_t label_count;
	/* The Mapping attribute a pprof build id goes into: "process.executable.build_id.gnu". */
	const char *build_id_attribute;
	/* The resource attribute the executable's build id goes into; NULL: none. */
	const char *executable_build_id_attribute;
};

/* NULL with errno set. opts and what it points to must outlive the builder. */
struct otlp_builder *otlp_builder__new(const struct otlp_builder_opts *opts);
void otlp_builder__free(struct otlp_builder *builder);

/*
 * Adds one pprof profile (serialized, not compressed) as a ResourceProfiles
 * with these attributes (copied), and the build id of the mapping of
 * executable (its path; NULL when unknown) if the profile has one. Samples whose value of a type is 0 are
 * left out of that type's Profile. Returns 0, -EINVAL when the profile does
 * not decode or refers to a string, mapping, function or location it does
 * not have (nothing of it is added then), or -ENOMEM.
 */
int otlp_builder__add_pprof(struct otlp_builder *builder, const struct otlp_attribute *resource,
			    size_t resource_count, const char *executable, const uint8_t *pprof,
			    size_t size);

/* ResourceProfiles added so far. */
size_t otlp_builder__resource_count(const struct otlp_builder *builder);

/* The serialized request, malloc'd (not compressed). Returns 0 or -ENOMEM. */
int otlp_builder__encode(struct otlp_builder *builder, uint8_t **ret_data, size_t *ret_size);

#endif /* KILN_OTLP_BUILDER_H */
