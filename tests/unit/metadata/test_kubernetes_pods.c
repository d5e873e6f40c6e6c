// SPDX-License-Identifier: Apache-2.0
/*
 * The pods store against the Kubernetes API's JSON as the API server
 * sends it (a PodList page, watch events of each type, a Status ERROR),
 * the labels it gives a process of a pod and container, and what an API
 * that sends too much or the wrong thing gets: bounds, counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/kubernetes_pods.h"
#include "tests/unit/testing.h"

#define UID_WEB "1f0c7e2a-5b7d-4c2e-9a61-3d2b8e4f6a10"
#define UID_DB "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
#define ID_WEB "aaaa5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
#define ID_SIDECAR "bbbb5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
#define ID_DB "cccc5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"

/* A pod as the API serves it, trimmed of what kiln does not read. */
#define POD_WEB                                                                                    \
	"{\"metadata\":{\"name\":\"web-7d4b9c\",\"namespace\":\"shop\",\"uid\":\"" UID_WEB "\","   \
	"\"resourceVersion\":\"101\",\"labels\":{\"app\":\"web\",\"app.kubernetes.io/"             \
	"version\":\"1.2\"},\"annotations\":{\"prometheus.io/scrape\":\"true\"},"                  \
	"\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-" \
	"7d4b\",\"controller\":true}]},\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{"        \
	"\"name\":\"web\"},{\"name\":\"sidecar\"}]},\"status\":{\"phase\":\"Running\",\"podIP\":"  \
	"\"10.1.2.3\",\"qosClass\":\"Burstable\",\"containerStatuses\":[{\"name\":\"web\","        \
	"\"containerID\":\"containerd://" ID_WEB "\"},{\"name\":\"sidecar\",\"containerID\":"      \
	"\"containerd://" ID_SIDECAR "\"}]}}"

#define POD_DB                                                                                     \
	"{\"metadata\":{\"name\":\"db-0\",\"namespace\":\"data\",\"uid\":\"" UID_DB "\","          \
	"\"resourceVersion\":\"205\"},\"spec\":{\"nodeName\":\"node-a\"},\"status\":{"             \
	"\"containerStatuses\":[{\"name\":\"postgres\",\"containerID\":\"cri-o://" ID_DB "\"}]}}"

static void process_in(struct label_set *labels, const char *uid, const char *container_id)
{
	label_set__clear(labels);
	CHECK(label_set__set(labels, "__meta_process_pid", "42") == 0);
	CHECK(label_set__set(labels, "__meta_kubernetes_pod_uid", uid) == 0);
	if (container_id)
		CHECK(label_set__set(labels, "__meta_container_id", container_id) == 0);
}

static int apply(struct kubernetes_pods *pods, const char *json, char *version)
{
	char error[256] = "";

	return kubernetes_pods__apply_event(pods, json, strlen(json), version, error,
					    sizeof(error));
}

static void test_list_and_labels(void)
{
	static const char page[] = "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{"
				   "\"resourceVersion\":\"300\",\"continue\":\"tok-2\"},"
				   "\"items\":[" POD_WEB "]}";
	static const char last[] =
		"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"301\"},"
		"\"items\":[" POD_DB "]}";
	struct kubernetes_pods *pods = kubernetes_pods__new(16);
	struct kubernetes_pods_stats stats;
	char version[KUBERNETES_RESOURCE_VERSION_MAX] = "", next[64];
	struct label_set labels = {};

	CHECK(pods);
	if (!pods)
		return;
	kubernetes_pods__begin_list(pods);
	CHECK(kubernetes_pods__add_page(pods, page, strlen(page), version, next, sizeof(next)) ==
	      0);
	CHECK_STR(version, "300");
	CHECK_STR(next, "tok-2");
	CHECK(kubernetes_pods__add_page(pods, last, strlen(last), version, next, sizeof(next)) ==
	      0);
	CHECK_STR(next, "");
	CHECK_STR(version, "301");
	kubernetes_pods__end_list(pods);

	process_in(&labels, UID_WEB, ID_SIDECAR);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_namespace"), "shop");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_name"), "web-7d4b9c");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_container_name"), "sidecar");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_node_name"), "node-a");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_ip"), "10.1.2.3");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_controller_kind"), "ReplicaSet");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_controller_name"), "web-7d4b");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_label_app"), "web");
	/* Names made Prometheus label names, as its service discovery makes them. */
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_label_app_kubernetes_io_version"),
		  "1.2");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_labelpresent_app"), "true");
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
		  "true");

	/* CRI-O's container IDs too; a pod with neither labels nor owner. */
	process_in(&labels, UID_DB, ID_DB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_container_name"), "postgres");
	CHECK(!label_set__get(&labels, "__meta_kubernetes_pod_controller_kind"));

	/* Not known: a pod the API has not told of yet, a container not started. */
	process_in(&labels, "00000000-0000-4000-8000-000000000000", NULL);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 1);
	CHECK(!label_set__get(&labels, "__meta_kubernetes_namespace"));
	process_in(&labels, UID_WEB, ID_DB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 1);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_name"), "web-7d4b9c");
	CHECK(!label_set__get(&labels, "__meta_kubernetes_pod_container_name"));
	/* Not in a pod at all: nothing to wait for. */
	label_set__clear(&labels);
	CHECK(label_set__set(&labels, "__meta_process_pid", "1") == 0);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	CHECK(labels.count == 1);

	/* A list that no longer names web: it was deleted while nothing watched. */
	kubernetes_pods__begin_list(pods);
	CHECK(kubernetes_pods__add_page(pods, last, strlen(last), version, next, sizeof(next)) ==
	      0);
	kubernetes_pods__end_list(pods);
	process_in(&labels, UID_WEB, ID_WEB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 1);
	kubernetes_pods__stats(pods, &stats);
	CHECK(stats.pods == 1 && stats.lookups_missed == 3 && stats.malformed == 0);
	label_set__clear(&labels);
	kubernetes_pods__free(pods);
}

static void test_watch_events(void)
{
	struct kubernetes_pods *pods = kubernetes_pods__new(16);
	struct kubernetes_pods_stats stats;
	char version[KUBERNETES_RESOURCE_VERSION_MAX] = "1", error[256];
	struct label_set labels = {};
	static const char expired[] =
		"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
		"\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 1 "
		"(300)\",\"reason\":\"Expired\",\"code\":410}}";
	static const char forbidden[] =
		"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"pods is "
		"forbidden\",\"code\":403}}";

	CHECK(pods);
	if (!pods)
		return;
	CHECK(apply(pods, "{\"type\":\"ADDED\",\"object\":" POD_WEB "}", version) == 0);
	CHECK_STR(version, "101");
	process_in(&labels, UID_WEB, ID_WEB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_container_name"), "web");

	/* MODIFIED replaces the pod: its label changed. */
	CHECK(apply(pods,
		    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"web-7d4b9c\","
		    "\"namespace\":\"shop\",\"uid\":\"" UID_WEB "\",\"resourceVersion\":\"102\","
		    "\"labels\":{\"app\":\"web-v2\"}},\"status\":{\"containerStatuses\":[{\"name\":"
		    "\"web\",\"containerID\":\"containerd://" ID_WEB "\"}]}}}",
		    version) == 0);
	CHECK_STR(version, "102");
	process_in(&labels, UID_WEB, ID_WEB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_label_app"), "web-v2");

	/* A bookmark moves the version only. */
	CHECK(apply(pods,
		    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
		    "\"resourceVersion\":\"150\"}}}",
		    version) == 0);
	CHECK_STR(version, "150");
	CHECK(apply(pods,
		    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"web-7d4b9c\","
		    "\"namespace\":\"shop\",\"uid\":\"" UID_WEB "\",\"resourceVersion\":\"160\"}}}",
		    version) == 0);
	process_in(&labels, UID_WEB, ID_WEB);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 1);

	/* Errors: 410 asks for a new list; another is passed on with its message. */
	CHECK(kubernetes_pods__apply_event(pods, expired, strlen(expired), version, error,
					   sizeof(error)) == -ESTALE);
	CHECK(strstr(error, "too old resource version") != NULL);
	CHECK(kubernetes_pods__apply_event(pods, forbidden, strlen(forbidden), version, error,
					   sizeof(error)) == -EPROTO);
	CHECK_STR(error, "pods is forbidden");
	CHECK_STR(version, "160");

	/* Lines that are no event, and a pod with no uid: counted, nothing stored. */
	CHECK(apply(pods, "not json", version) == -EINVAL);
	CHECK(apply(pods, "{\"type\":\"ADDED\"}", version) == -EINVAL);
	CHECK(apply(pods, "[1,2]", version) == -EINVAL);
	CHECK(apply(pods, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
		    version) == 0);
	CHECK(apply(pods, "{\"type\":\"ADDED\",\"object\":{\"metadata\":7}}", version) == 0);
	kubernetes_pods__stats(pods, &stats);
	CHECK(stats.pods == 0);
	CHECK(stats.malformed == 5);
	label_set__clear(&labels);
	kubernetes_pods__free(pods);
}

/* An API that sends too much: too many pods, labels, long values, control characters. */
static void test_bounds(void)
{
	struct kubernetes_pods *pods = kubernetes_pods__new(2);
	struct kubernetes_pods_stats stats;
	char version[KUBERNETES_RESOURCE_VERSION_MAX] = "";
	struct label_set labels = {};
	size_t size = 1 << 20, length = 0;
	char *json = malloc(size);
	size_t present = 0;

	CHECK(pods && json);
	if (!pods || !json)
		goto out;
	length += (size_t)snprintf(json + length, size - length,
				   "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\","
				   "\"namespace\":\"n\",\"uid\":\"" UID_WEB "\",\"labels\":{");
	for (int i = 0; i < KUBERNETES_POD_MAX_PAIRS + 10; i++)
		length += (size_t)snprintf(json + length, size - length, "%s\"l%d\":\"v%d\"",
					   i ? "," : "", i, i);
	length += (size_t)snprintf(json + length, size - length, "},\"annotations\":{\"huge\":\"");
	memset(json + length, 'x', KUBERNETES_VALUE_MAX + 1);
	length += KUBERNETES_VALUE_MAX + 1;
	length +=
		(size_t)snprintf(json + length, size - length, "\",\"note\":\"line\\nbreak\"}}}}");
	CHECK(kubernetes_pods__apply_event(pods, json, length, version, json, 0) == 0);
	process_in(&labels, UID_WEB, NULL);
	CHECK(kubernetes_pods__annotate(pods, &labels) == 0);
	for (size_t i = 0; i < labels.count; i++)
		present += !strncmp(labels.labels[i].name, "__meta_kubernetes_pod_labelpresent_",
				    strlen("__meta_kubernetes_pod_labelpresent_"));
	CHECK(present == KUBERNETES_POD_MAX_PAIRS);
	CHECK(!label_set__get(&labels, "__meta_kubernetes_pod_annotation_huge"));
	CHECK_STR(label_set__get(&labels, "__meta_kubernetes_pod_annotation_note"), "line_break");
	kubernetes_pods__stats(pods, &stats);
	CHECK(stats.values_left_out == 11);

	/* Two pods fit; a third is left out, counted; replacing one still works. */
	CHECK(apply(pods, "{\"type\":\"ADDED\",\"object\":" POD_DB "}", version) == 0);
	CHECK(apply(pods,
		    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"c\",\"namespace\":"
		    "\"n\",\"uid\":\"3\"}}}",
		    version) == 0);
	CHECK(apply(pods, "{\"type\":\"MODIFIED\",\"object\":" POD_DB "}", version) == 0);
	kubernetes_pods__stats(pods, &stats);
	CHECK(stats.pods == 2 && stats.pods_full == 1);
out:
	label_set__clear(&labels);
	free(json);
	kubernetes_pods__free(pods);
}

TEST_MAIN("kubernetes_pods", TEST(test_list_and_labels), TEST(test_watch_events), TEST(test_bounds))
