/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pods of this node as the Kubernetes API describes them, read from
 * the JSON of its pods list (GET /api/v1/pods) and watch events, and the
 * __meta_kubernetes_* labels they give a process whose cgroup names the
 * pod (its UID) and container (its ID):
 *
 *   __meta_kubernetes_namespace, __meta_kubernetes_pod_name,
 *   __meta_kubernetes_pod_container_name, __meta_kubernetes_node_name,
 *   __meta_kubernetes_pod_ip, __meta_kubernetes_pod_controller_kind,
 *   __meta_kubernetes_pod_controller_name,
 *   __meta_kubernetes_pod_label_NAME, __meta_kubernetes_pod_labelpresent_NAME,
 *   __meta_kubernetes_pod_annotation_NAME,
 *   __meta_kubernetes_pod_annotationpresent_NAME
 *
 * as Prometheus's Kubernetes service discovery names them (NAME with every
 * character outside [a-zA-Z0-9_] made '_'). The API server is trusted no
 * more than a file: every object is bounded (pods, labels and annotations
 * per pod, containers, value lengths), and what does not fit is counted.
 * Safe to use from two threads: the watch writes, relabeling reads.
 */
#ifndef KILN_KUBERNETES_PODS_H
#define KILN_KUBERNETES_PODS_H

#include <stddef.h>
#include <stdint.h>

#include "agent/metadata/labels.h"

#define KUBERNETES_POD_MAX_PAIRS 64 /* labels, and annotations, per pod */
#define KUBERNETES_POD_MAX_CONTAINERS 64 /* init, ephemeral and the others */
#define KUBERNETES_VALUE_MAX 1024 /* longer annotations are left out, counted */
#define KUBERNETES_RESOURCE_VERSION_MAX 64

struct kubernetes_pods;

struct kubernetes_pods_stats {
	uint64_t pods; /* known now */
	uint64_t events; /* watch events applied */
	uint64_t pods_full; /* pods left out: the store was full */
	uint64_t malformed; /* objects or events that were not what the API sends */
	uint64_t values_left_out; /* labels, annotations or containers past the bounds */
	uint64_t lookups_missed; /* a process's pod or container not known (yet) */
};

/* NULL with errno set. */
struct kubernetes_pods *kubernetes_pods__new(size_t max_pods);
void kubernetes_pods__free(struct kubernetes_pods *pods);

/*
 * A list is read a page at a time: begin, one call per page, end. Pods the
 * list did not name are removed at the end (they were deleted while no
 * watch ran). A page gives its metadata.resourceVersion and
 * metadata.continue (the next page's token; "" on the last page).
 * Returns 0, or -EINVAL when the page is not a PodList.
 */
void kubernetes_pods__begin_list(struct kubernetes_pods *pods);
int kubernetes_pods__add_page(struct kubernetes_pods *pods, const char *json, size_t length,
			      char resource_version[KUBERNETES_RESOURCE_VERSION_MAX],
			      char *continue_token, size_t continue_size);
void kubernetes_pods__end_list(struct kubernetes_pods *pods);

/*
 * One watch event, a line of the stream: {"type": ADDED, MODIFIED,
 * DELETED, BOOKMARK or ERROR, "object": ...}. Updates resource_version
 * from the object. Returns 0; -ESTALE for an ERROR whose code is 410 (the
 * version is too old: list again); -EPROTO for another ERROR, with its
 * message in error; -EINVAL for a line that is not an event (counted).
 */
int kubernetes_pods__apply_event(struct kubernetes_pods *pods, const char *json, size_t length,
				 char resource_version[KUBERNETES_RESOURCE_VERSION_MAX],
				 char *error, size_t error_size);

/*
 * Adds the labels of the pod labels' __meta_kubernetes_pod_uid names, and
 * of the container __meta_container_id names in it. Returns 0 (also when
 * the process is in no pod), or 1 when its pod or container is not known:
 * the API may not have told of it yet.
 */
int kubernetes_pods__annotate(struct kubernetes_pods *pods, struct label_set *labels);

/*
 * The message of an API error's body (a Status object), in buf. Returns 0,
 * or -EINVAL when json is no Status with a message.
 */
int kubernetes_status_message(const char *json, size_t length, char *buf, size_t size);

void kubernetes_pods__stats(struct kubernetes_pods *pods, struct kubernetes_pods_stats *ret_stats);

#endif /* KILN_KUBERNETES_PODS_H */
