// SPDX-License-Identifier: Apache-2.0
/* Parca: unary gRPC ProfileStoreService/WriteRaw over HTTP/2, status from the trailers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "agent/push/http.h"
#include "agent/push/parca.h"
#include "agent/push/protocol.h"
#include "proto/profilestore.pb-c.h"

#define WRITE_RAW_PATH "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw"

typedef Parca__Profilestore__V1alpha1__WriteRawRequest WriteRawRequest;
typedef Parca__Profilestore__V1alpha1__RawProfileSeries RawProfileSeries;
typedef Parca__Profilestore__V1alpha1__RawSample RawSample;
typedef Parca__Profilestore__V1alpha1__LabelSet LabelSet;
typedef Parca__Profilestore__V1alpha1__Label Label;

/* The labels every series has: its name, the host, the process. */
#define BUILTIN_LABELS 4

static void set_label(Label *label, const char *name, const char *value)
{
	parca__profilestore__v1alpha1__label__init(label);
	label->name = (char *)name;
	label->value = (char *)value;
}

static bool builtin_label(const char *const *names, const char *name)
{
	for (int i = 0; i < BUILTIN_LABELS; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

int parca_encode_write_raw(const struct push_record *record, const uint8_t *data, size_t size,
			   uint8_t **ret_body, size_t *ret_size)
{
	char host[sizeof(record->hostname)], comm[sizeof(record->comm)], pid[16];
	Label labels[BUILTIN_LABELS + PUSH_RECORD_MAX_LABELS];
	Label *label_ptrs[BUILTIN_LABELS + PUSH_RECORD_MAX_LABELS];
	const char *names[BUILTIN_LABELS] = { "__name__", "node", "pid", "comm" };
	const char *values[BUILTIN_LABELS] = { record->off_cpu ? "parca_agent_off_cpu"
							       : "parca_agent_cpu",
					       host, pid, comm };
	LabelSet label_set;
	RawSample sample, *sample_ptr = &sample;
	RawProfileSeries series, *series_ptr = &series;
	WriteRawRequest request;
	size_t packed_size, count = 0;
	uint8_t *body;

	push_label_sanitize(record->hostname, "", host, sizeof(host));
	push_label_sanitize(record->comm, "", comm, sizeof(comm));
	snprintf(pid, sizeof(pid), "%" PRIu32, record->pid);
	for (int i = 0; i < BUILTIN_LABELS; i++)
		set_label(&labels[count++], names[i], values[i]);
	/* Relabeling's labels after kiln's own, which win a name both have. */
	for (uint32_t i = 0; i < record->label_count && i < PUSH_RECORD_MAX_LABELS; i++)
		if (!builtin_label(names, record->labels[i].name))
			set_label(&labels[count++], record->labels[i].name,
				  record->labels[i].value);
	for (size_t i = 0; i < count; i++)
		label_ptrs[i] = &labels[i];
	parca__profilestore__v1alpha1__label_set__init(&label_set);
	label_set.n_labels = count;
	label_set.labels = label_ptrs;
	parca__profilestore__v1alpha1__raw_sample__init(&sample);
	sample.raw_profile.data = (uint8_t *)data;
	sample.raw_profile.len = size;
	parca__profilestore__v1alpha1__raw_profile_series__init(&series);
	series.labels = &label_set;
	series.n_samples = 1;
	series.samples = &sample_ptr;
	parca__profilestore__v1alpha1__write_raw_request__init(&request);
	request.n_series = 1;
	request.series = &series_ptr;
	request.normalized = false; /* virtual addresses, with their mappings */

	packed_size = parca__profilestore__v1alpha1__write_raw_request__get_packed_size(&request);
	if (packed_size > UINT32_MAX)
		return -EFBIG;
	body = malloc(GRPC_PREFIX_SIZE + packed_size);
	if (!body)
		return -ENOMEM;
	grpc_put_prefix(body, false, (uint32_t)packed_size);
	parca__profilestore__v1alpha1__write_raw_request__pack(&request, body + GRPC_PREFIX_SIZE);
	*ret_body = body;
	*ret_size = GRPC_PREFIX_SIZE + packed_size;
	return 0;
}

static int parca_send(struct http_client *http, const struct push_record *record,
		      const uint8_t *data, size_t size, struct push_result *ret_result)
{
	struct http_response response;
	uint8_t *body = NULL;
	size_t body_size;
	char timeout[48];
	int err;

	err = parca_encode_write_raw(record, data, size, &body, &body_size);
	if (err)
		return err;
	grpc_timeout_header(http, timeout, sizeof(timeout));
	const char *const headers[] = { "Content-Type: application/grpc", "TE: trailers", timeout };

	err = http_client__post(http, WRITE_RAW_PATH, headers, ARRAY_SIZE(headers), true, body,
				body_size, &response);
	if (!err)
		http_response__grpc_result(&response, ret_result);
	free(body);
	return err;
}

const struct push_protocol push_protocol_parca = {
	.name = "parca",
	.title = "Parca",
	.send = parca_send,
};
