// SPDX-License-Identifier: Apache-2.0
/* Parca's WriteRaw request: decoded with the code generated from profilestore.proto. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/push/parca.h"
#include "agent/push/protocol.h"
#include "proto/profilestore.pb-c.h"
#include "tests/unit/testing.h"

typedef Parca__Profilestore__V1alpha1__WriteRawRequest WriteRawRequest;

/* The value of the label called name in the series, or NULL. */
static const char *label(const Parca__Profilestore__V1alpha1__RawProfileSeries *series,
			 const char *name)
{
	for (size_t i = 0; i < series->labels->n_labels; i++)
		if (!strcmp(series->labels->labels[i]->name, name))
			return series->labels->labels[i]->value;
	return NULL;
}

/* Encodes, checks the gRPC framing, and decodes; NULL when any of it fails. */
static WriteRawRequest *encode_decode(const struct push_record *record, const uint8_t *data,
				      size_t size)
{
	WriteRawRequest *request;
	uint8_t *body = NULL;
	size_t body_size = 0, length;

	CHECK(parca_encode_write_raw(record, data, size, &body, &body_size) == 0);
	if (!body)
		return NULL;
	CHECK(body_size > GRPC_PREFIX_SIZE);
	/* Uncompressed message, then its length big-endian, then exactly that many bytes. */
	CHECK(body[0] == 0);
	length = (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 | body[4];
	CHECK(length == body_size - GRPC_PREFIX_SIZE);
	request = parca__profilestore__v1alpha1__write_raw_request__unpack(
		NULL, body_size - GRPC_PREFIX_SIZE, body + GRPC_PREFIX_SIZE);
	CHECK(request != NULL);
	free(body);
	return request;
}

static void test_cpu_request(void)
{
	const struct push_record record = { .pid = 4242,
					    .comm = "web worker",
					    .service_name = "ignored",
					    .hostname = "node-7",
					    .start_ns = 1,
					    .duration_ns = 2 };
	static const uint8_t profile[] = { 0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x01 };
	WriteRawRequest *request = encode_decode(&record, profile, sizeof(profile));

	if (!request)
		return;
	CHECK(!request->normalized);
	CHECK(request->n_series == 1);
	if (request->n_series == 1) {
		const Parca__Profilestore__V1alpha1__RawProfileSeries *series = request->series[0];

		CHECK(series->labels && series->labels->n_labels == 4);
		CHECK_STR(label(series, "__name__"), "parca_agent_cpu");
		CHECK_STR(label(series, "node"), "node-7");
		CHECK_STR(label(series, "pid"), "4242");
		/* Sanitized as the spool's labels are: one printable word. */
		CHECK_STR(label(series, "comm"), "web_worker");
		CHECK(series->n_samples == 1);
		if (series->n_samples == 1) {
			CHECK(series->samples[0]->raw_profile.len == sizeof(profile));
			CHECK(!memcmp(series->samples[0]->raw_profile.data, profile,
				      sizeof(profile)));
			CHECK(series->samples[0]->n_executable_info == 0);
		}
	}
	parca__profilestore__v1alpha1__write_raw_request__free_unpacked(request, NULL);
}

static void test_off_cpu_large_profile(void)
{
	const struct push_record record = {
		.off_cpu = true, .pid = 1, .comm = "", .hostname = "h"
	};
	/* Over 64 KiB: the length takes three of the prefix's four bytes. */
	size_t size = 70000;
	uint8_t *profile = malloc(size);
	WriteRawRequest *request;

	for (size_t i = 0; i < size; i++)
		profile[i] = (uint8_t)(i * 7);
	request = encode_decode(&record, profile, size);
	if (request && request->n_series == 1) {
		const Parca__Profilestore__V1alpha1__RawProfileSeries *series = request->series[0];

		CHECK_STR(label(series, "__name__"), "parca_agent_off_cpu");
		CHECK_STR(label(series, "comm"), "unknown");
		CHECK(series->n_samples == 1 && series->samples[0]->raw_profile.len == size &&
		      !memcmp(series->samples[0]->raw_profile.data, profile, size));
	}
	CHECK(request && request->n_series == 1);
	if (request)
		parca__profilestore__v1alpha1__write_raw_request__free_unpacked(request, NULL);
	free(profile);
}

static void test_relabeled_labels(void)
{
	struct push_record record = { .pid = 7, .comm = "api", .hostname = "node-7" };
	WriteRawRequest *request;

	CHECK(push_record__add_label(&record, "namespace", "shop") == 0);
	CHECK(push_record__add_label(&record, "pod", "api-7d9f c") == 0);
	/* kiln's own labels win a name both have. */
	CHECK(push_record__add_label(&record, "pid", "1") == 0);
	request = encode_decode(&record, (const uint8_t *)"x", 1);
	if (request && request->n_series == 1) {
		const Parca__Profilestore__V1alpha1__RawProfileSeries *series = request->series[0];

		CHECK(series->labels->n_labels == 6);
		CHECK_STR(label(series, "namespace"), "shop");
		CHECK_STR(label(series, "pod"), "api-7d9f c");
		CHECK_STR(label(series, "pid"), "7");
	}
	CHECK(request && request->n_series == 1);
	if (request)
		parca__profilestore__v1alpha1__write_raw_request__free_unpacked(request, NULL);
}

static void test_protocol_table(void)
{
	CHECK(push_protocols[0] == &push_protocol_pyroscope); /* the default */
	CHECK(push_protocol_find("parca") == &push_protocol_parca);
	CHECK(push_protocol_find("pyroscope") == &push_protocol_pyroscope);
	CHECK(push_protocol_find("otlp") == &push_protocol_otlp);
	CHECK(push_protocol_otlp.grpc == &push_protocol_otlp_grpc);
	CHECK(push_protocol_find("zipkin") == NULL);
	CHECK(push_protocol_find("") == NULL);
	CHECK_STR(push_protocol_parca.title, "Parca");
}

TEST_MAIN("parca", TEST(test_cpu_request), TEST(test_off_cpu_large_profile),
	  TEST(test_relabeled_labels), TEST(test_protocol_table))
