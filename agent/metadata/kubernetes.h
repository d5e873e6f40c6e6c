/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the Kubernetes API says of this node's pods, kept current on a
 * thread of its own: a list of the pods whose spec.nodeName is this node,
 * then a watch from the list's resourceVersion, watched again from the
 * last version seen when the server ends it, listed again (with backoff)
 * when it fails or the version is too old. Nothing is asked per sample or
 * per process: relabeling reads the pods kept (kubernetes_pods.h).
 *
 * In a pod, the service account's token (read again at every request, as
 * projected tokens rotate), its CA and $KUBERNETES_SERVICE_HOST/PORT say
 * where and how; the token needs get, list and watch on pods.
 */
#ifndef KILN_KUBERNETES_H
#define KILN_KUBERNETES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/metadata/kubernetes_pods.h"

#define KUBERNETES_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBERNETES_MAX_PODS 1024 /* the kubelet's default bound is 110 a node */

struct kubernetes;

struct kubernetes_opts {
	char api_url[512]; /* "https://10.96.0.1:443", no trailing slash */
	char token_file[PATH_MAX];
	char ca_file[PATH_MAX];
	const char *node_name;
	size_t max_pods;
};

struct kubernetes_stats {
	struct kubernetes_pods_stats pods;
	uint64_t lists; /* complete lists of the node's pods */
	uint64_t list_failures;
	uint64_t watches; /* watches that ended as the server ends them */
	uint64_t watch_failures; /* broke off, refused, or an ERROR event */
	uint64_t relists_expired; /* the watch's version was too old (410) */
	uint64_t watching; /* 1 while a watch is open */
};

/*
 * Fills opts's URL and files for an agent in a pod: api_url (NULL: from
 * $KUBERNETES_SERVICE_HOST and _PORT), the token and ca.crt under
 * service_account_dir (NULL: KUBERNETES_SERVICE_ACCOUNT_DIR). Returns 0,
 * or -ENOENT with what is missing in error (not in a pod).
 */
int kubernetes_in_cluster(const char *api_url, const char *service_account_dir,
			  struct kubernetes_opts *opts, char *error, size_t error_size);

/* Starts the watch (libcurl must be loaded). NULL with errno set. */
struct kubernetes *kubernetes__start(const struct kubernetes_opts *opts);
/* Stops the watch at once, even mid-request, and frees it. */
void kubernetes__free(struct kubernetes *kubernetes);

/*
 * Waits at most timeout_ms for the first complete list, so that the
 * processes read at start are read with their pods. True once listed.
 */
bool kubernetes__wait_listed(struct kubernetes *kubernetes, uint64_t timeout_ms);

/* kubernetes_pods__annotate on the pods kept. */
int kubernetes__annotate(struct kubernetes *kubernetes, struct label_set *labels);

void kubernetes__stats(struct kubernetes *kubernetes, struct kubernetes_stats *ret_stats);

#endif /* KILN_KUBERNETES_H */
