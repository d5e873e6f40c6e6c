# SPDX-License-Identifier: Apache-2.0
"""Who each sample belongs to, on containers as each runtime makes them.

Programs run in cgroups named as docker (systemd and cgroupfs drivers,
cgroup v2 and v1), podman, a systemd service, and Kubernetes pods under
containerd and CRI-O in all three QoS classes, each in a mount namespace
of its own whose executable exists nowhere else. A stand-in for the
Kubernetes API (servers/kubernetes_server.py: HTTPS, bearer token, the
real API's pods list and watch JSON) names the pods. relabel_configs turn
the __meta_* labels into labels; each process's must be exactly right in
the profiles written (read with go tool pprof) and in what both push
protocols receive. The API fails its first lists, a pod appears after kiln
started, a watch breaks and the history expires: kiln lists again and its
labels catch up."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from kilntest import (KILN, check, finish, make_certificates, prog, profiles, read_profile,
                      require_root, start, stop, tmpdir, wait_for)
from servers.kubernetes_server import KubernetesServer, make_pod
from test_push import Server

NODE = "kiln-test-node"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.kiln-test-service-account"


def hex_id(seed):
    return (seed * 64)[:64]


UIDS = {"web": "5f1c9a2e-7b3d-4e8f-9a0b-1c2d3e4f5a6b",
        "db": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "late": "9f8e7d6c-5b4a-4392-8a1b-0c9d8e7f6a5b"}

# name, hierarchy, cgroup path, the labels the rules below must give it.
CONTAINERS = [
    ("docker", "v2", f"system.slice/docker-{hex_id('d1')}.scope",
     {"runtime": "docker", "container_id": hex_id("d1"), "unit": f"docker-{hex_id('d1')}.scope",
      "slice": "system.slice"}),
    ("docker-cgroupfs-v1", "v1", f"docker/{hex_id('d2')}",
     {"runtime": "docker", "container_id": hex_id("d2")}),
    ("podman", "v2", f"machine.slice/libpod-{hex_id('a3')}.scope",
     {"runtime": "podman", "container_id": hex_id("a3"), "unit": f"libpod-{hex_id('a3')}.scope",
      "slice": "machine.slice"}),
    ("systemd-service", "v2", "system.slice/kiln-test-web.service",
     {"unit": "kiln-test-web.service", "slice": "system.slice"}),
    ("containerd-burstable", "v2",
     "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
     f"{UIDS['web'].replace('-', '_')}.slice/cri-containerd-{hex_id('c4')}.scope",
     {"runtime": "containerd", "container_id": hex_id("c4"), "pod_uid": UIDS["web"],
      "unit": f"cri-containerd-{hex_id('c4')}.scope",
      "slice": f"kubepods-burstable-pod{UIDS['web'].replace('-', '_')}.slice",
      "qos": "Burstable", "namespace": "shop", "pod": "web-5d8f9c", "container": "web",
      "pod_label_app": "web", "controller": "ReplicaSet"}),
    ("crio-besteffort", "v2",
     "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
     f"{UIDS['db'].replace('-', '_')}.slice/crio-{hex_id('e5')}.scope",
     {"runtime": "cri-o", "container_id": hex_id("e5"), "pod_uid": UIDS["db"],
      "unit": f"crio-{hex_id('e5')}.scope",
      "slice": f"kubepods-besteffort-pod{UIDS['db'].replace('-', '_')}.slice",
      "qos": "BestEffort", "namespace": "data", "pod": "db-0", "container": "postgres",
      "pod_label_app": "db", "controller": "StatefulSet"}),
    ("containerd-guaranteed-late", "v2",
     f"kubepods.slice/kubepods-pod{UIDS['late'].replace('-', '_')}.slice/"
     f"cri-containerd-{hex_id('f6')}.scope",
     {"runtime": "containerd", "container_id": hex_id("f6"), "pod_uid": UIDS["late"],
      "unit": f"cri-containerd-{hex_id('f6')}.scope",
      "slice": f"kubepods-pod{UIDS['late'].replace('-', '_')}.slice",
      "qos": "Guaranteed", "namespace": "batch", "pod": "late-job-x7", "container": "worker",
      "pod_label_app": "late"}),
]
# The labels the Kubernetes API gives; the rest come from the cgroup and the executable.
API_KEYS = {"namespace", "pod", "container", "pod_label_app", "controller", "node_name"}
# Labels only some containers have: the others must not have them.
ALL_KEYS = {k for _, _, _, labels in CONTAINERS for k in labels}

RULES = """relabel_configs:
  - source_labels: [__meta_container_runtime]
    target_label: runtime
  - source_labels: [__meta_container_id]
    target_label: container_id
  - source_labels: [__meta_systemd_unit]
    target_label: unit
  - source_labels: [__meta_systemd_slice]
    target_label: slice
  - source_labels: [__meta_kubernetes_pod_uid]
    target_label: pod_uid
  - source_labels: [__meta_kubernetes_pod_qos_class]
    target_label: qos
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_container_name]
    target_label: container
  - source_labels: [__meta_kubernetes_pod_controller_kind]
    target_label: controller
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
    replacement: pod_label_$1
  - source_labels: [__meta_process_executable_build_id]
    target_label: build_id
  - source_labels: [__meta_kubernetes_node_name]
    target_label: node_name
"""


def pod(key):
    if key == "web":
        return make_pod("web-5d8f9c", "shop", UIDS["web"], NODE, {"app": "web"},
                        {"prometheus.io/scrape": "true"},
                        [("web", f"containerd://{hex_id('c4')}")], "Burstable",
                        ("ReplicaSet", "web-5d8f"))
    if key == "db":
        return make_pod("db-0", "data", UIDS["db"], NODE, {"app": "db"}, {},
                        [("postgres", f"cri-o://{hex_id('e5')}")], "BestEffort",
                        ("StatefulSet", "db"))
    return make_pod("late-job-x7", "batch", UIDS["late"], NODE, {"app": "late"}, {},
                    [("worker", f"containerd://{hex_id('f6')}")], "Guaranteed")


def hierarchies():
    """Mount points of the cgroup v2 hierarchy and of v1's pids one (None if absent)."""
    v2 = v1 = None
    with open("/proc/mounts") as f:
        for line in f:
            _, point, kind, options = line.split()[:4]
            if kind == "cgroup2" and v2 is None:
                v2 = point
            if kind == "cgroup" and "pids" in options.split(","):
                v1 = point
    return {"v2": v2, "v1": v1}


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE, text=True).stdout
    found = re.search(r"Build ID: ([0-9a-f]+)", out)
    return found.group(1) if found else None


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


class Containers:
    """The programs, each in its cgroup and a mount namespace where its
    executable is a copy on a tmpfs only that namespace sees."""

    def __init__(self, seconds):
        self.dirs, self.procs = [], {}
        roots = hierarchies()
        self.skipped = [name for name, hierarchy, _, _ in CONTAINERS if not roots[hierarchy]]
        for name, hierarchy, path, _ in CONTAINERS:
            if not roots[hierarchy]:
                continue
            cgroup = os.path.join(roots[hierarchy], path)
            os.makedirs(cgroup, exist_ok=True)
            self.dirs.append((roots[hierarchy], path))
            mount = tmpdir("kiln-rootfs-")
            script = (f"echo $$ > {cgroup}/cgroup.procs && "
                      f"mount -t tmpfs kiln-{name} {mount} && "
                      f"cp {prog('split_nofp')} {mount}/app && exec {mount}/app {seconds}")
            self.procs[name] = start(["unshare", "--mount", "--propagation", "private", "sh",
                                      "-c", script])
        # The shell has exec'd the program once its path is the tmpfs's.
        wait_for(lambda: all(exe_of(p.pid).endswith("/app") for p in self.procs.values()),
                 timeout=10)

    def stop(self):
        for proc in self.procs.values():
            stop(proc)
        for root, path in self.dirs:
            parts = path.split("/")
            for depth in range(len(parts), 0, -1):
                directory = os.path.join(root, *parts[:depth])
                for _ in range(50):
                    try:
                        os.rmdir(directory)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)  # its processes are still leaving


def labels_by_pid(samples):
    """pid -> {label: set of values} over the samples."""
    out = {}
    for s in samples:
        pid = int(s["labels"].get("pid", ["0"])[0])
        for key, values in s["labels"].items():
            out.setdefault(pid, {}).setdefault(key, set()).update(values)
    return out


def check_labels(where, got, containers, late_known, want_build_id):
    for name, _, _, want in CONTAINERS:
        if name not in containers.procs:
            continue
        pid = containers.procs[name].pid
        labels = got.get(pid)
        if not check(f"{where}: {name} was sampled", labels is not None, sorted(got)):
            continue
        expected = dict(want, build_id=want_build_id)
        if "pod_uid" in want:
            expected["node_name"] = NODE
        if name.endswith("-late") and not late_known:
            # What the cgroup says; the API's part comes once the pod is told of.
            expected = {k: v for k, v in expected.items() if k not in API_KEYS}
        wrong = {k: labels.get(k) for k, v in expected.items() if labels.get(k) != {v}}
        extra = {k: labels[k] for k in ALL_KEYS | {"node_name"} if k in labels and
                 k not in expected}
        check(f"{where}: {name} has exactly its labels", not wrong and not extra,
              f"wrong {wrong}, extra {extra}, all {labels}")


def write_config(directory, text):
    path = os.path.join(directory, "kiln.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def service_account(cert):
    directory = tmpdir("kiln-serviceaccount-")
    with open(os.path.join(directory, "token"), "w") as f:
        f.write(TOKEN + "\n")
    shutil.copy(cert("ca.pem"), os.path.join(directory, "ca.crt"))
    return directory


def run_with_pods(protocol, api, sa_dir, during=None, windows=6):
    """kiln on the containers for `windows` 2 s windows, pushing to protocol's
    stand-in; during(out) runs while kiln does. Returns (code, log, out,
    received metadata, containers)."""
    out = tmpdir()
    config = write_config(tmpdir(), RULES)
    containers = Containers(windows * 2 + 30)
    server = Server(protocol)
    try:
        pids = [str(p.pid) for p in containers.procs.values()]
        kiln = subprocess.Popen(
            [KILN, "--config", config, "--kubernetes", "on", "--kubernetes-api", api.url,
             "--kubernetes-service-account-dir", sa_dir, "--node-name", NODE,
             "--frequency", "49", "--duration", "2", "--iterations", str(windows),
             "--output-dir", out, "--remote-store", server.url, "--remote-protocol", protocol,
             "--spool-dir", tmpdir(), "--http-address", "", "-v"] +
            [arg for pid in pids for arg in ("--pid", pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if during:
            during(out)
        _, log = kiln.communicate(timeout=180)
        received = [meta for meta, _ in server.received()]
    finally:
        server.stop()
        containers.stop()
    return kiln.returncode, log, out, received, containers


def test_containers_and_pods():
    cert = make_certificates()
    sa_dir = service_account(cert)
    binary_id = build_id(prog("split_nofp"))
    for protocol in ("pyroscope", "parca"):
        api = KubernetesServer(cert("server.pem"), cert("server.key"), TOKEN)
        api.add(pod("web"))
        api.add(pod("db"))
        # Another node's pod: the field selector keeps it out.
        api.add(make_pod("elsewhere", "shop", "11111111-2222-4333-8444-555555555555",
                         "other-node", {"app": "web"}))
        faults = protocol == "pyroscope"
        if faults:
            api.fail_lists(2)

        def during(out):
            # The late pod is told of once kiln has written a window without it.
            wait_for(lambda: len(profiles(out)) >= 1, timeout=60)
            api.add(pod("late"))
            if faults:
                # A watch cut off: listed again. Then the history compacted
                # and the watch ended as at its timeout: watched again from
                # a version too old, 410, listed again.
                wait_for(lambda: len(profiles(out)) >= 2, timeout=60)
                api.break_watches()
                wait_for(lambda: len(profiles(out)) >= 3, timeout=60)
                api.forget_history()
                api.end_watches()
        try:
            code, log, out, received, containers = run_with_pods(protocol, api, sa_dir, during)
        finally:
            api.stop()
        files = profiles(out)
        if not check(f"metadata ({protocol}): kiln exits 0 with every window",
                     code == 0 and len(files) == 6, f"exit {code}, {files}: {log[-2000:]}"):
            continue
        if containers.skipped:
            print(f"note: no cgroup hierarchy for {containers.skipped} on this machine")
        last = read_profile(files[-1])
        check_labels(f"metadata ({protocol}) last window", labels_by_pid(last.samples),
                     containers, True, binary_id)
        first = read_profile(files[0])
        check_labels(f"metadata ({protocol}) first window", labels_by_pid(first.samples),
                     containers, False, binary_id)
        # The program's own functions are named, its executable seen only in its namespace.
        names = {f for s in last.samples for f in last.stack(s)}
        check(f"metadata ({protocol}): programs in their mount namespaces are symbolized",
              {"hot_a", "hot_b", "hot_c", "main"} <= names, sorted(names)[:20])
        # What was pushed: each process's last push carries the same labels.
        pushed = {}
        for meta in received:
            labels = meta["labels"]
            pushed[int(labels.get("pid", 0))] = {k: {v} for k, v in labels.items()}
        check_labels(f"metadata ({protocol}) pushed", pushed, containers, True, binary_id)
        requests = api.requests
        check(f"metadata ({protocol}): every request had the token and this node's selector",
              requests and all(ok and q.get("fieldSelector") == f"spec.nodeName={NODE}"
                               for _, q, ok in requests), requests[:3])
        if faults:
            lists = [q for kind, q, _ in requests if kind == "list"]
            counts = re.findall(r"kubernetes: (\d+) pods, watching \d+, (\d+) lists, (\d+) "
                                r"failed, (\d+) watches, (\d+) broke, (\d+) expired", log)
            pods, listed, failed, ended, broke, expired = map(int, counts[-1]) if counts \
                else (0,) * 6
            check("kubernetes API faults: two failed lists retried, a list again after the "
                  "watch broke, and again after its version expired (410)",
                  len(lists) >= 5 and failed == 2 and listed >= 3 and broke >= 2 and
                  expired >= 1 and pods == 3,
                  f"{len(lists)} lists asked; kiln's counters {counts[-1:]}")
            check("kubernetes API faults: the failure is said, naming the server's message",
                  "HTTP 500: etcdserver: request timed out" in log, log[-2000:])


def test_bad_kubernetes_setup():
    """--kubernetes=on without what it needs exits with the reason; auto outside a pod is quiet."""
    config = write_config(tmpdir(), RULES)
    proc = subprocess.run([KILN, "--kubernetes", "on", "--iterations", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    check("kubernetes: --kubernetes=on without --config exits 2 saying so",
          proc.returncode == 2 and "--kubernetes=on: needs --config" in proc.stderr,
          proc.stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    proc = subprocess.run([KILN, "--config", config, "--kubernetes", "on",
                           "--kubernetes-service-account-dir", tmpdir(), "--iterations", "1",
                           "--duration", "1", "--http-address", "", "--output-dir", tmpdir()],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                          env=env)
    check("kubernetes: --kubernetes=on outside a pod fails naming what is missing",
          proc.returncode == 1 and "KUBERNETES_SERVICE_HOST is not set" in proc.stderr,
          proc.stderr[-1000:])
    workload = start([prog("split_nofp"), "20"])
    try:
        proc = subprocess.run([KILN, "--config", config, "--pid", str(workload.pid),
                               "--iterations", "1", "--duration", "1", "--http-address", "",
                               "--output-dir", tmpdir()],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60, env=env)
    finally:
        stop(workload)
    check("kubernetes: auto outside a pod profiles without a word about it",
          proc.returncode == 0 and "kubernetes" not in proc.stderr, proc.stderr[-1000:])


def test_token_refused():
    """A token the API refuses: kiln says so and profiles on."""
    cert = make_certificates()
    sa_dir = service_account(cert)
    api = KubernetesServer(cert("server.pem"), cert("server.key"), "another-token")
    config = write_config(tmpdir(), RULES)
    workload = start([prog("split_nofp"), "20"])
    out = tmpdir()
    try:
        proc = subprocess.run([KILN, "--config", config, "--kubernetes", "on",
                               "--kubernetes-api", api.url, "--kubernetes-service-account-dir",
                               sa_dir, "--node-name", NODE, "--pid", str(workload.pid),
                               "--iterations", "2", "--duration", "1", "--http-address", "",
                               "--output-dir", out],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        stop(workload)
        api.stop()
    check("kubernetes: a refused token is said, and every window still written",
          proc.returncode == 0 and "HTTP 401: Unauthorized" in proc.stderr and
          len(profiles(out)) == 2, proc.stderr[-1500:])


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_daemonset_manifest():
    """deploy/kubernetes/kiln.yaml holds what kiln needs: the host's PIDs, the
    unit's capabilities and no others, a read-only root, a service account
    that may watch pods, the node's name, and a config kiln runs with."""
    manifest = os.path.join(REPO, "deploy", "kubernetes", "kiln.yaml")
    # python3-yaml is Debian's: read on its interpreter.
    out = subprocess.run(["/usr/bin/python3", "-c",
                          "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all("
                          "open(sys.argv[1])))))", manifest],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not check("manifest: deploy/kubernetes/kiln.yaml is YAML", out.returncode == 0,
                 out.stderr):
        return
    docs = {d["kind"]: d for d in json.loads(out.stdout)}
    ds, sa = docs.get("DaemonSet"), docs.get("ServiceAccount")
    role, binding = docs.get("ClusterRole"), docs.get("ClusterRoleBinding")
    if not check("manifest: a DaemonSet, its service account, role, binding and config map",
                 all(docs.get(k) for k in ("DaemonSet", "ServiceAccount", "ClusterRole",
                                           "ClusterRoleBinding", "ConfigMap")), sorted(docs)):
        return
    spec = ds["spec"]["template"]["spec"]
    container = spec["containers"][0]
    security = container["securityContext"]
    with open(os.path.join(REPO, "scripts", "kiln.service")) as f:
        unit_caps = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M).group(1).split()
    check("manifest: the host's PID namespace", spec.get("hostPID") is True, spec)
    check("manifest: exactly the systemd unit's capabilities, all others dropped",
          security["capabilities"]["drop"] == ["ALL"] and
          sorted(security["capabilities"]["add"]) == sorted(c[4:] for c in unit_caps) and
          security.get("privileged") is False and
          security.get("allowPrivilegeEscalation") is False, security)
    check("manifest: a read-only root", security.get("readOnlyRootFilesystem") is True)
    check("manifest: pods get, list and watch, and nothing else",
          role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                             "verbs": ["get", "list", "watch"]}], role["rules"])
    check("manifest: the role bound to the DaemonSet's service account",
          binding["roleRef"]["name"] == role["metadata"]["name"] and
          binding["subjects"][0]["name"] == sa["metadata"]["name"] ==
          spec["serviceAccountName"], binding)
    env = {e["name"]: e for e in container.get("env", [])}
    check("manifest: NODE_NAME from the downward API",
          env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") ==
          "spec.nodeName", env)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_arg = [a for a in container["args"] if a.startswith("--config=")]
    check("manifest: the config map is mounted where --config reads it",
          config_arg and os.path.dirname(config_arg[0].split("=", 1)[1]) in mounts, mounts)
    check("manifest: /healthz is the probe, on the --http-address port",
          container["livenessProbe"]["httpGet"]["path"] == "/healthz" and
          "--http-address=0.0.0.0:7071" in container["args"], container["args"])
    # The config and the args, as kiln in the pod gets them (its paths put here).
    directory = tmpdir()
    text = docs["ConfigMap"]["data"]["kiln.yaml"].replace("/var/lib/kiln", directory)
    config = write_config(directory, text)
    args = [a for a in container["args"] if not a.startswith(("--config=", "--http-address="))]
    workload = start([prog("split_nofp"), "20"])
    try:
        proc = subprocess.run([KILN, f"--config={config}"] + args +
                              ["--http-address=", "--pid", str(workload.pid), "--iterations",
                               "1", "--duration", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        stop(workload)
    files = profiles(os.path.join(directory, "profiles"))
    p = read_profile(files[0]) if files else None
    names = {v for s in p.samples for v in s["labels"].get("service_name", [])} if p else set()
    check("manifest: kiln runs with its config map and args; its rules name the service",
          proc.returncode == 0 and names == {"split_nofp"}, f"{names}: {proc.stderr[-1500:]}")


if __name__ == "__main__":
    require_root()
    test_daemonset_manifest()
    test_bad_kubernetes_setup()
    test_token_refused()
    test_containers_and_pods()
    finish()
