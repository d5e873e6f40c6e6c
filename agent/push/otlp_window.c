// SPDX-License-Identifier: Apache-2.0
/* A window's processes, each a pprof profile, as one OTLP profiles request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/gzip.h"
#include "agent/options.h"
#include "agent/push/otlp.h"
#include "proto/otlp_builder.h"

#define BUILD_ID_ATTRIBUTE "process.executable.build_id.gnu"

/* Semantic conventions' names for the labels relabel rules usually make. */
static const struct {
	const char *label;
	const char *attribute;
} label_attributes[] = {
	{ "container_id", "container.id" },
	{ "container", "k8s.container.name" },
	{ "container_name", "k8s.container.name" },
	{ "pod", "k8s.pod.name" },
	{ "pod_name", "k8s.pod.name" },
	{ "namespace", "k8s.namespace.name" },
	{ "node", "k8s.node.name" },
};

static const char *const cpu_types[] = { "samples" };
static const char *const off_cpu_types[] = { "off_cpu" };

/* pid and comm are the resource's; the thread and the off-CPU state each sample's. */
static const struct otlp_label_rename sample_labels[] = {
	{ "tid", "thread.id" },
	{ "thread_name", "thread.name" },
	{ "state", "kiln.off_cpu.state" },
};

struct otlp_window {
	struct otlp_builder_opts opts;
	struct otlp_builder *builder;
};

struct otlp_window *otlp_window__new(bool off_cpu)
{
	struct otlp_window *window = calloc(1, sizeof(*window));

	if (!window)
		return NULL;
	window->opts = (struct otlp_builder_opts){
		.scope_name = "kiln",
		.scope_version = KILN_VERSION,
		/* CPU: counts, cpu/nanoseconds the period's; off-CPU: the time blocked. */
		.sample_types = off_cpu ? off_cpu_types : cpu_types,
		.sample_type_count = 1,
		.labels = sample_labels,
		.label_count = ARRAY_SIZE(sample_labels),
		.build_id_attribute = BUILD_ID_ATTRIBUTE,
		.executable_build_id_attribute = BUILD_ID_ATTRIBUTE,
	};
	window->builder = otlp_builder__new(&window->opts);
	if (!window->builder) {
		free(window);
		errno = ENOMEM;
		return NULL;
	}
	return window;
}

void otlp_window__free(struct otlp_window *window)
{
	if (!window)
		return;
	otlp_builder__free(window->builder);
	free(window);
}

size_t otlp_window__count(const struct otlp_window *window)
{
	return otlp_builder__resource_count(window->builder);
}

static const char *attribute_name(const char *label)
{
	for (size_t i = 0; i < ARRAY_SIZE(label_attributes); i++)
		if (!strcmp(label_attributes[i].label, label))
			return label_attributes[i].attribute;
	return label;
}

/* Whether attributes[0..count) has key already: kiln's own win over a label's. */
static bool has_key(const struct otlp_attribute *attributes, size_t count, const char *key)
{
	for (size_t i = 0; i < count; i++)
		if (!strcmp(attributes[i].key, key))
			return true;
	return false;
}

int otlp_window__add(struct otlp_window *window, const struct push_record *record,
		     const char *executable, const uint8_t *pprof, size_t size)
{
	struct otlp_attribute attributes[5 + PUSH_RECORD_MAX_LABELS];
	size_t count = 0;

	attributes[count++] = (struct otlp_attribute){ "service.name", record->service_name, 0 };
	attributes[count++] = (struct otlp_attribute){ "host.name", record->hostname, 0 };
	attributes[count++] = (struct otlp_attribute){ "process.pid", NULL, record->pid };
	attributes[count++] = (struct otlp_attribute){ "process.executable.name", record->comm, 0 };
	if (executable && executable[0])
		attributes[count++] =
			(struct otlp_attribute){ "process.executable.path", executable, 0 };
	for (uint32_t i = 0; i < record->label_count && i < PUSH_RECORD_MAX_LABELS; i++) {
		const char *key = attribute_name(record->labels[i].name);

		/* A rule's service_name is already the resource's service.name. */
		if (strcmp(record->labels[i].name, "service_name") &&
		    !has_key(attributes, count, key))
			attributes[count++] =
				(struct otlp_attribute){ key, record->labels[i].value, 0 };
	}
	return otlp_builder__add_pprof(window->builder, attributes, count,
				       executable && executable[0] ? executable : NULL, pprof,
				       size);
}

int otlp_window__encode(struct otlp_window *window, uint8_t **ret_data, size_t *ret_size)
{
	uint8_t *request;
	size_t size;
	int err;

	err = otlp_builder__encode(window->builder, &request, &size);
	if (err)
		return err;
	err = gzip_compress(request, size, ret_data, ret_size);
	free(request);
	return err;
}
