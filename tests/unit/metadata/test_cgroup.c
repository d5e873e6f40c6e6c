// SPDX-License-Identifier: Apache-2.0
/*
 * cgroup paths as each runtime and driver names them (docker, containerd
 * under Kubernetes in its three QoS classes, CRI-O, podman rootful and
 * rootless, systemd units), v2 and v1, read into units, containers, pods.
 */
#include <errno.h>
#include <string.h>

#include "agent/metadata/cgroup.h"
#include "tests/unit/testing.h"

#define ID "3f4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829"
#define UID "8e6a1b2c-3d4e-4f50-9a6b-7c8d9e0f1a2b"
#define UID_ "8e6a1b2c_3d4e_4f50_9a6b_7c8d9e0f1a2b"

static const struct {
	const char *cgroup; /* /proc/PID/cgroup's text */
	const char *unit, *slice, *container_id, *runtime, *pod_uid, *qos;
} cases[] = {
	{ "0::/system.slice/nginx.service\n", "nginx.service", "system.slice" },
	{ "0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope",
	  "user-1000.slice" },
	{ "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-foo-42.scope\n",
	  "app-gnome-foo-42.scope", "app.slice" },
	/* docker, systemd driver and cgroupfs driver (v2, then a v1 host) */
	{ "0::/system.slice/docker-" ID ".scope\n", "docker-" ID ".scope", "system.slice", ID,
	  "docker" },
	{ "0::/docker/" ID "\n", "", "", ID, "docker" },
	{ "12:pids:/docker/" ID "\n11:cpu,cpuacct:/docker/" ID "\n1:name=systemd:/docker/" ID
	  "\n0::/\n",
	  "", "", ID, "docker" },
	/* Kubernetes with containerd, systemd driver: the three QoS classes */
	{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n",
	  "cri-containerd-" ID ".scope", "kubepods-burstable-pod" UID_ ".slice", ID, "containerd",
	  UID, "Burstable" },
	{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n",
	  "cri-containerd-" ID ".scope", "kubepods-besteffort-pod" UID_ ".slice", ID, "containerd",
	  UID, "BestEffort" },
	{ "0::/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope\n",
	  "cri-containerd-" ID ".scope", "kubepods-pod" UID_ ".slice", ID, "containerd", UID,
	  "Guaranteed" },
	/* ... cgroupfs driver */
	{ "0::/kubepods/burstable/pod" UID "/" ID "\n", "", "", ID, "containerd", UID,
	  "Burstable" },
	{ "0::/kubepods/pod" UID "/" ID "\n", "", "", ID, "containerd", UID, "Guaranteed" },
	{ "0::/kubepods/besteffort/pod" UID "/crio-" ID "\n", "", "", ID, "cri-o", UID,
	  "BestEffort" },
	/* CRI-O, systemd driver; its conmon monitor is no container */
	{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/crio-" ID ".scope\n",
	  "crio-" ID ".scope", "kubepods-burstable-pod" UID_ ".slice", ID, "cri-o", UID,
	  "Burstable" },
	{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/crio-conmon-" ID ".scope\n",
	  "crio-conmon-" ID ".scope", "kubepods-burstable-pod" UID_ ".slice", "", NULL, UID,
	  "Burstable" },
	/* podman: rootful, rootless, cgroupfs; conmon */
	{ "0::/machine.slice/libpod-" ID ".scope\n", "libpod-" ID ".scope", "machine.slice", ID,
	  "podman" },
	{ "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope\n",
	  "libpod-" ID ".scope", "user.slice", ID, "podman" },
	{ "0::/libpod_parent/libpod-" ID "\n", "", "", ID, "podman" },
	{ "0::/machine.slice/libpod-conmon-" ID ".scope\n", "libpod-conmon-" ID ".scope",
	  "machine.slice", "", NULL },
	/* A pod seen from another cgroup namespace: the path climbs out first. */
	{ "0::/../../kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope\n",
	  "cri-containerd-" ID ".scope", "kubepods-pod" UID_ ".slice", ID, "containerd", UID,
	  "Guaranteed" },
	/* Not IDs: a 63-digit name, upper case, a docker-named service. */
	{ "0::/docker/"
	  "3f4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
	  "\n",
	  "", "" },
	{ "0::/system.slice/docker-3F4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F6071829"
	  ".scope\n",
	  "docker-3F4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F6071829.scope",
	  "system.slice" },
	{ "0::/system.slice/docker.service\n", "docker.service", "system.slice" },
	{ "0::/\n", "", "" },
};

static void test_runtimes(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cgroup_metadata m;
		int before = testing_failures;

		CHECK(cgroup_metadata_parse(cases[i].cgroup, strlen(cases[i].cgroup), &m) == 0);
		CHECK_STR(m.systemd_unit, cases[i].unit);
		CHECK_STR(m.systemd_slice, cases[i].slice);
		CHECK_STR(m.container_id, cases[i].container_id ? cases[i].container_id : "");
		CHECK(!m.container_runtime == !cases[i].runtime);
		if (cases[i].runtime)
			CHECK_STR(m.container_runtime, cases[i].runtime);
		CHECK_STR(m.pod_uid, cases[i].pod_uid ? cases[i].pod_uid : "");
		CHECK(!m.qos_class == !cases[i].qos);
		if (cases[i].qos)
			CHECK_STR(m.qos_class, cases[i].qos);
		if (testing_failures != before)
			fprintf(stderr, "case %zu: %s", i, cases[i].cgroup);
	}
}

/* The line chosen, and what is not a cgroup line at all. */
static void test_lines(void)
{
	struct cgroup_metadata m;
	const char v1[] = "4:memory:/user.slice\n1:name=systemd:/system.slice/cron.service\n";
	const char hybrid[] = "1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service";

	CHECK(cgroup_metadata_parse(v1, strlen(v1), &m) == 0);
	CHECK_STR(m.systemd_unit, "cron.service");
	CHECK_STR(m.path, "/system.slice/cron.service");
	CHECK(cgroup_metadata_parse(hybrid, strlen(hybrid), &m) == 0); /* no final newline */
	CHECK_STR(m.systemd_unit, "b.service");
	CHECK(cgroup_metadata_parse("", 0, &m) == -EINVAL);
	const char garbage[] = "garbage\n0:x\n::\n";

	CHECK(cgroup_metadata_parse(garbage, strlen(garbage), &m) == -EINVAL);
	CHECK(m.path[0] == '\0' && !m.container_runtime);
	/* A path longer than kept is cut, not overrun; the parts read are the whole path's. */
	static char text[4 * CGROUP_PATH_MAX];
	size_t n = snprintf(text, sizeof(text), "0::");

	while (n < sizeof(text) - 100)
		n += snprintf(text + n, sizeof(text) - n, "/a.slice");
	n += snprintf(text + n, sizeof(text) - n, "/docker-%s.scope", ID);
	CHECK(cgroup_metadata_parse(text, n, &m) == 0);
	CHECK(strlen(m.path) == CGROUP_PATH_MAX - 1);
	CHECK_STR(m.container_id, ID);
}

TEST_MAIN("cgroup", TEST(test_runtimes), TEST(test_lines))
