/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a process's cgroup path says about it: its systemd unit and slice,
 * and the container and Kubernetes pod it runs in, read from the names
 * container runtimes give their cgroups, with either cgroup driver
 * (systemd's .slice/.scope units or plain cgroupfs directories):
 *
 *   docker      /system.slice/docker-ID.scope, /docker/ID
 *   containerd  cri-containerd-ID.scope (Kubernetes), /kubepods/.../ID
 *   CRI-O       crio-ID.scope, /kubepods/.../crio-ID
 *   podman      libpod-ID.scope, /libpod_parent/libpod-ID (the
 *               libpod-conmon-ID monitor is not the container)
 *   Kubernetes  kubepods[-burstable|-besteffort]-podUID.slice, or
 *               /kubepods[/burstable|/besteffort]/podUID: the pod's UID
 *               and QoS class (Guaranteed pods sit under kubepods itself)
 *
 * IDs are the runtimes' 64 hex digits. Nothing here reads a file: callers
 * give /proc/PID/cgroup's text, which the process's own cgroup names.
 */
#ifndef KILN_CGROUP_H
#define KILN_CGROUP_H

#include <stddef.h>

#define CGROUP_PATH_MAX 512
#define CONTAINER_ID_SIZE 65 /* 64 hex digits */
#define POD_UID_SIZE 37 /* 8-4-4-4-12 */
#define UNIT_NAME_MAX 256

struct cgroup_metadata {
	char path[CGROUP_PATH_MAX]; /* the unified (v2) path, or v1's most telling; "" unknown */
	char systemd_unit[UNIT_NAME_MAX]; /* innermost .service/.scope/... ; "" none */
	char systemd_slice[UNIT_NAME_MAX]; /* innermost .slice */
	char container_id[CONTAINER_ID_SIZE];
	const char *container_runtime; /* "docker", "containerd", "cri-o", "podman"; NULL none */
	char pod_uid[POD_UID_SIZE]; /* with dashes, as the API spells it */
	const char *qos_class; /* "Guaranteed", "Burstable", "BestEffort"; NULL not a pod */
};

/*
 * Reads /proc/PID/cgroup's text (len bytes; v2's "0::/path", v1's
 * "N:controllers:/path" lines, or both). Always fills what it can;
 * returns 0, or -EINVAL when no line had a path.
 */
int cgroup_metadata_parse(const char *text, size_t len, struct cgroup_metadata *metadata);

#endif /* KILN_CGROUP_H */
