// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes what the Kubernetes API server sends: the input is lines of a
 * watch stream, each a JSON event, or (first byte odd) one PodList page.
 * Every pod kept must then give labels within the store's bounds to a
 * process of any of the pods named, and the store must stay within its
 * own bound on pods.
 */
#include <string.h>

#include "agent/metadata/kubernetes_pods.h"
#include "tests/fuzz/fuzz.h"

#define MAX_PODS 8

/* Looks up the uid of every "uid":"..." the input names, as a process in that pod would. */
static void annotate_named(struct kubernetes_pods *pods, const char *text, size_t size)
{
	const char *end = text + size, *at = text;

	while ((at = memmem(at, (size_t)(end - at), "\"uid\":\"", 7))) {
		struct label_set labels = {};
		char uid[80];
		const char *close;
		size_t length;

		at += 7;
		close = memchr(at, '"', (size_t)(end - at));
		length = close ? (size_t)(close - at) : 0;
		if (!length || length >= sizeof(uid))
			continue;
		memcpy(uid, at, length);
		uid[length] = '\0';
		FUZZ_CHECK(label_set__set(&labels, "__meta_kubernetes_pod_uid", uid) == 0);
		FUZZ_CHECK(label_set__set(&labels, "__meta_container_id", uid) == 0);
		int result = kubernetes_pods__annotate(pods, &labels);

		FUZZ_CHECK(result == 0 || result == 1);
		/* Seven fields, the pairs (and their "present" twins), the two set here. */
		FUZZ_CHECK(labels.count <= 9 + 4 * KUBERNETES_POD_MAX_PAIRS);
		for (size_t i = 0; i < labels.count; i++) {
			const char *name = labels.labels[i].name;

			FUZZ_CHECK(label_name_is_valid(name));
			/* The two set above are the input's own bytes. */
			if (!strcmp(name, "__meta_kubernetes_pod_uid") ||
			    !strcmp(name, "__meta_container_id"))
				continue;
			FUZZ_CHECK(strlen(labels.labels[i].value) <= KUBERNETES_VALUE_MAX);
			for (const char *c = labels.labels[i].value; *c; c++)
				FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
		}
		label_set__clear(&labels);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubernetes_pods *pods = kubernetes_pods__new(MAX_PODS);
	char version[KUBERNETES_RESOURCE_VERSION_MAX] = "", next[256], error[256];
	struct kubernetes_pods_stats stats;
	const char *text = (const char *)data + 1;

	FUZZ_CHECK(pods != NULL);
	if (size < 1)
		goto out;
	size--;
	if (data[0] & 1) {
		kubernetes_pods__begin_list(pods);
		if (!kubernetes_pods__add_page(pods, text, size, version, next, sizeof(next)))
			kubernetes_pods__end_list(pods);
		FUZZ_CHECK(strlen(next) < sizeof(next));
	} else {
		const char *line = text, *end = text + size;

		while (line < end) {
			const char *newline = memchr(line, '\n', (size_t)(end - line));
			size_t length = newline ? (size_t)(newline - line) : (size_t)(end - line);

			kubernetes_pods__apply_event(pods, line, length, version, error,
						     sizeof(error));
			line += length + 1;
		}
	}
	FUZZ_CHECK(strlen(version) < sizeof(version));
	kubernetes_status_message(text, size, error, sizeof(error));
	annotate_named(pods, text, size);
	kubernetes_pods__stats(pods, &stats);
	FUZZ_CHECK(stats.pods <= MAX_PODS);
out:
	kubernetes_pods__free(pods);
	return 0;
}
