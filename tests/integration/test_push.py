# SPDX-License-Identifier: Apache-2.0
"""Pushing profiles to real servers on loopback: a Pyroscope /ingest server
(http.server) and a Parca WriteRaw server (grpcio), both validating as the
real backends do. Every pushed profile is read back with `go tool pprof` and
compared with the local file kiln wrote for the same window; then faults: a
backend down then up, 503s, a hung server, a 400, SIGTERM during an outage
and a restart, a spool over its bound."""
import base64
import calendar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from kilntest import (KILN, check, finish, make_certificates, prog, profiles, read_profile,
                      require_root, start, stop, tmpdir, wait_for)

SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers")
# python3-grpcio is Debian's: the gRPC server runs on Debian's interpreter.
DEBIAN_PYTHON = "/usr/bin/python3"


class Server:
    """A test backend in its own process; received profiles land in self.out."""

    def __init__(self, kind, port=0, *args):
        self.out = tmpdir("kiln-push-server-")
        # python3-grpcio and python3-h2 are Debian's: those servers run on its interpreter.
        argv = {"pyroscope": [sys.executable, os.path.join(SERVERS, "pyroscope_server.py")],
                "parca": [DEBIAN_PYTHON, os.path.join(SERVERS, "parca_server.py")],
                "hostile": [DEBIAN_PYTHON, os.path.join(SERVERS, "hostile_server.py")]}[kind]
        self.proc = subprocess.Popen(argv + ["--out", self.out, "--port", str(port)] +
                                     list(args), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"{kind} server did not start: {line}")
        self.port = int(line[1])
        tls = "--tls-cert" in args
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def stats(self):
        try:
            with open(os.path.join(self.out, "stats.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"requests": 0, "accepted": 0, "rejected": 0}

    def received(self):
        """[(metadata, path of the .pb.gz)] in arrival order."""
        out = []
        for name in sorted(os.listdir(self.out)):
            if name.endswith(".json") and name != "stats.json":
                with open(os.path.join(self.out, name)) as f:
                    out.append((json.load(f), os.path.join(self.out, name[:-5] + ".pb.gz")))
        return out

    def stop(self):
        stop(self.proc, signal.SIGTERM)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_kiln(args, timeout=180):
    proc = subprocess.run([KILN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stderr


def upload_counters(log):
    """The last per-window upload report: sent, bytes, failed, retried, dropped, pending."""
    matches = re.findall(r"uploads to \S+: (\d+) sent \((\d+) bytes\), (\d+) failed, "
                         r"(?:\d+ dropped by the backend, )?(\d+) retried, (\d+) dropped; "
                         r"(\d+) waiting", log)
    keys = ("sent", "bytes", "failed", "retried", "dropped", "pending")
    return dict(zip(keys, map(int, matches[-1]))) if matches else {}


def spooled_total(log):
    return sum(int(n) for n in re.findall(r"spooled (\d+) process profiles", log))


def spool_files(spool):
    return [f for f in os.listdir(spool) if f.endswith(".prof")] if os.path.isdir(spool) else []


def total_samples(p):
    return sum(s["values"][0] for s in p.samples)


def local_windows(directory):
    """{(kind, start second): profile} for every local file that has samples."""
    windows = {}
    for kind in ("cpu", "offcpu"):
        for path in profiles(directory, kind):
            stamp = re.search(r"-(\d{8}T\d{6})Z\.pb\.gz$", path).group(1)
            start = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S"))
            p = read_profile(path)
            if p.samples:
                windows[(kind, start)] = p
    return windows


def kind_of(p):
    return "offcpu" if "off_cpu/nanoseconds" in p.sample_types else "cpu"


def check_pyroscope_profiles(name, server, local, pid, comm, service):
    """Each local window has one pushed profile with its samples, and the labels."""
    received = server.received()
    pushed = {}
    for meta, path in received:
        p = read_profile(path)  # go tool pprof must read every one of them
        pushed.setdefault((kind_of(p), meta["from"]), []).append((meta, p))
    check(f"{name}: one pushed profile per local window ({len(local)})",
          sorted(pushed) == sorted(local) and all(len(v) == 1 for v in pushed.values()),
          f"local {sorted(local)}, pushed {sorted((k, len(v)) for k, v in pushed.items())}")
    same = [k for k in local if k in pushed and
            total_samples(pushed[k][0][1]) == total_samples(local[k]) and
            pushed[k][0][1].sample_types == local[k].sample_types]
    check(f"{name}: pushed profiles hold the local files' samples", len(same) == len(local),
          f"{len(same)} of {len(local)} the same")
    labels = [meta["labels"] for meta, _ in received]
    want = {"__name__": service, "service_name": service, "hostname": socket.gethostname(),
            "pid": str(pid), "comm": comm}
    check(f"{name}: labels service_name, hostname, pid, comm",
          labels and all(all(l.get(k) == v for k, v in want.items()) for l in labels),
          f"want {want}, got {labels[:2]}")
    check(f"{name}: from/until span the window",
          all(meta["until"] > meta["from"] for meta, _ in received), received[:1])
    check(f"{name}: sample types without '-' (Pyroscope's validator)",
          all("-" not in t.split("/")[0] for k in pushed for t in pushed[k][0][1].sample_types))
    return received


def test_pyroscope_every_window():
    """CPU and off-CPU, four windows: each arrives once, equal to the local file."""
    out, spool = tmpdir(), tmpdir()
    token = os.path.join(tmpdir(), "token")
    with open(token, "w") as f:
        f.write("s3cret-token\n")
    server = Server("pyroscope")
    workload = start([prog("offcpu_threads"), "30"])
    try:
        time.sleep(0.3)
        code, log = run_kiln(["--pid", str(workload.pid), "--frequency", "99", "--duration",
                              "1", "--iterations", "4", "--off-cpu", "--output-dir", out,
                              "--remote-store", server.url, "--spool-dir", spool,
                              "--header", "X-Scope-OrgID: team-a", "--bearer-token-file",
                              token])
    finally:
        stop(workload)
        server.stop()
    check("pyroscope: kiln exits 0", code == 0, log[-2000:])
    local = local_windows(out)
    check("pyroscope: CPU and off-CPU windows written locally",
          {k for k, _ in local} == {"cpu", "offcpu"}, sorted(local))
    received = check_pyroscope_profiles("pyroscope", server, local, workload.pid,
                                        "offcpu_threads", "offcpu_threads")
    headers = [meta["headers"] for meta, _ in received]
    check("pyroscope: --header and --bearer-token-file sent",
          headers and all(h.get("x-scope-orgid") == "team-a" and
                          h.get("authorization") == "Bearer s3cret-token" for h in headers),
          headers[:1])
    counters = upload_counters(log)
    check("pyroscope: counters: all sent, nothing failed, retried or dropped",
          counters.get("failed") == 0 and counters.get("dropped") == 0 and
          counters.get("retried") == 0 and spool_files(spool) == [], counters)
    check("pyroscope: server saw no invalid profile", server.stats()["rejected"] == 0,
          server.stats())


def test_parca_every_window():
    """gRPC WriteRaw over h2c: every window arrives with Parca's series labels."""
    out, spool = tmpdir(), tmpdir()
    auth = os.path.join(tmpdir(), "basic")
    with open(auth, "w") as f:
        f.write("kiln:pa55word\n")
    server = Server("parca")
    workload = start([prog("offcpu_threads"), "30"])
    try:
        time.sleep(0.3)
        code, log = run_kiln(["--pid", str(workload.pid), "--frequency", "99", "--duration",
                              "1", "--iterations", "3", "--off-cpu", "--output-dir", out,
                              "--remote-store", server.url, "--remote-protocol", "parca",
                              "--spool-dir", spool, "--basic-auth-file", auth,
                              "--header", "X-Scope-OrgID: team-b"])
    finally:
        stop(workload)
        server.stop()
    check("parca: kiln exits 0", code == 0, log[-2000:])
    local = local_windows(out)
    received = server.received()
    pushed = {"cpu": [], "offcpu": []}
    for meta, path in received:
        p = read_profile(path)
        pushed[kind_of(p)].append((meta, p))
    for kind in ("cpu", "offcpu"):
        mine = [local[k] for k in sorted(local) if k[0] == kind]
        # One kiln, oldest first: the n-th pushed profile of a kind is the n-th window.
        check(f"parca: every {kind} window arrived once, with its samples",
              len(mine) == len(pushed[kind]) and
              all(total_samples(a) == total_samples(b)
                  for a, (_, b) in zip(mine, pushed[kind])),
              f"local {[total_samples(p) for p in mine]}, "
              f"pushed {[total_samples(p) for _, p in pushed[kind]]}")
        name = "parca_agent_off_cpu" if kind == "offcpu" else "parca_agent_cpu"
        labels = [meta["labels"] for meta, _ in pushed[kind]]
        want = {"__name__": name, "node": socket.gethostname(), "pid": str(workload.pid),
                "comm": "offcpu_threads"}
        check(f"parca: {kind} series labels __name__, node, pid, comm",
              labels and all(l == want for l in labels), f"want {want}, got {labels[:1]}")
    metadata = [meta["headers"] for meta, _ in received]
    basic = "Basic " + base64.b64encode(b"kiln:pa55word").decode()
    check("parca: basic auth and --header in the gRPC metadata",
          metadata and all(m.get("authorization") == basic and
                           m.get("x-scope-orgid") == "team-b" for m in metadata),
          metadata[:1])
    check("parca: addresses sent unnormalized", all(not m["normalized"] for m, _ in received))
    check("parca: nothing left in the spool", spool_files(spool) == [], spool_files(spool))


# Rules that give the pushed profiles labels: a service name from the
# executable's name, a static team, the cgroup (a value with '/' and '.').
RELABEL_CONFIG = """relabel_configs:
  - source_labels: [__meta_process_executable_name]
    target_label: service_name
    replacement: svc-$1
  - target_label: team
    replacement: payments
  - source_labels: [__meta_process_cgroup]
    target_label: cgroup
"""


def test_relabeled_labels_pushed():
    """Labels from --config's relabel rules reach both protocols: Pyroscope's
    ingest name (its service name from a rule) and Parca's label set."""
    config = os.path.join(tmpdir(), "kiln.yaml")
    with open(config, "w") as f:
        f.write(RELABEL_CONFIG)
    with open("/proc/self/cgroup") as f:
        # A child's cgroup is its parent's: ours, on cgroup v2's one line.
        cgroup = f.read().strip().split("::", 1)[-1]
    for protocol in ("pyroscope", "parca"):
        server = Server(protocol)
        try:
            code, log, _, spool, pid = run_split(server.url, ["--config", config], 2,
                                                 protocol=protocol)
        finally:
            server.stop()
        labels = [meta["labels"] for meta, _ in server.received()]
        check(f"labels to {protocol}: kiln exits 0, both windows pushed",
              code == 0 and len(labels) == 2, f"{len(labels)} pushed; {log[-1500:]}")
        want = {"team": "payments", "service_name": "svc-split", "pid": str(pid),
                "comm": "split", "cgroup": cgroup}
        if protocol == "pyroscope":
            want["__name__"] = "svc-split"  # the rule's service_name names the app
        check(f"labels to {protocol}: the rules' labels, kiln's own beside them",
              labels and all(all(l.get(k) == v for k, v in want.items()) for l in labels),
              f"want {want}, got {labels[:1]}")
        check(f"labels to {protocol}: no __meta_* label pushed",
              labels and not any(k.startswith("__meta_") for l in labels for k in l), labels[:1])
        check(f"labels to {protocol}: spool empty", spool_files(spool) == [], spool_files(spool))


def run_split(server_url, extra, iterations, out=None, spool=None, protocol="pyroscope"):
    """kiln --pid on a CPU-bound program for a few 1 s windows; returns
    (code, log, out, spool, pid)."""
    out, spool = out or tmpdir(), spool or tmpdir()
    workload = start([prog("split"), "60"])
    try:
        time.sleep(0.3)
        code, log = run_kiln(["--pid", str(workload.pid), "--frequency", "99", "--duration",
                              "1", "--iterations", str(iterations), "--output-dir", out,
                              "--remote-store", server_url, "--remote-protocol", protocol,
                              "--spool-dir", spool] + extra)
    finally:
        stop(workload)
    return code, log, out, spool, workload.pid


def test_parca_status_codes():
    """UNAVAILABLE is retried until it works; INVALID_ARGUMENT is not retried."""
    server = Server("parca", 0, "--fail-first", "2", "--fail-code", "UNAVAILABLE")
    try:
        code, log, out, spool, pid = run_split(server.url, ["--remote-drain-timeout", "60"], 2,
                                          protocol="parca")
    finally:
        server.stop()
    counters = upload_counters(log)
    check("parca UNAVAILABLE: retried, then every window delivered",
          code == 0 and len(server.received()) == len(local_windows(out)) == 2 and
          server.stats()["requests"] == 4 and spool_files(spool) == [],
          (code, server.stats(), counters, log[-1500:]))
    check("parca UNAVAILABLE: grpc-status read from the trailers and logged",
          "gRPC UNAVAILABLE (14): ingester unavailable (test fault)" in log, log[-1500:])

    server = Server("parca", 0, "--reject-code", "INVALID_ARGUMENT")
    try:
        code, log, out, spool, pid = run_split(server.url, [], 2, protocol="parca")
    finally:
        server.stop()
    counters = upload_counters(log)
    check("parca INVALID_ARGUMENT: one request per profile, none retried",
          code == 0 and server.stats()["requests"] == 2 and counters.get("failed") == 2 and
          counters.get("retried") == 0 and spool_files(spool) == [],
          (server.stats(), counters))
    check("parca INVALID_ARGUMENT: the server's message is logged",
          "INVALID_ARGUMENT (3): invalid profile: the test server rejects everything" in log,
          log[-1500:])


def test_backend_down_then_up():
    """Nothing listens for the first windows; then a server starts: every window arrives."""
    port = free_port()
    out, spool = tmpdir(), tmpdir()
    server = None
    workload = start([prog("split"), "60"])
    kiln = subprocess.Popen([KILN, "--pid", str(workload.pid), "--frequency", "99",
                             "--duration", "1", "--iterations", "6", "--output-dir", out,
                             "--remote-store", f"http://127.0.0.1:{port}", "--spool-dir",
                             spool, "--remote-drain-timeout", "60"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(profiles(out)) >= 3, timeout=60)
        spooled_while_down = len(spool_files(spool))
        server = Server("pyroscope", port)
        _, log = kiln.communicate(timeout=120)
    finally:
        stop(kiln)
        stop(workload)
        if server:
            server.stop()
    counters = upload_counters(log)
    check("down then up: profiles waited in the spool while the backend was down",
          spooled_while_down >= 2, spooled_while_down)
    check("down then up: kiln exits 0, retried, nothing failed or dropped",
          kiln.returncode == 0 and counters.get("retried", 0) >= 1 and
          counters.get("failed") == 0 and counters.get("dropped") == 0, (counters, log[-1500:]))
    if server:
        check_pyroscope_profiles("down then up", server, local_windows(out), workload.pid,
                                 "split", "split")


def test_503_then_success():
    server = Server("pyroscope", 0, "--fail-first", "3", "--fail-status", "503")
    try:
        code, log, out, spool, pid = run_split(server.url, ["--service-name", "checkout/api"], 3)
    finally:
        server.stop()
    counters = upload_counters(log)
    check("503: kiln exits 0; three 503s retried, nothing failed",
          code == 0 and counters.get("retried") == 3 and counters.get("failed") == 0,
          (counters, log[-1500:]))
    check("503: each failed request was retried (3 failed + 3 accepted)",
          server.stats()["requests"] == 6 and server.stats()["accepted"] == 3, server.stats())
    check_pyroscope_profiles("503 then success", server, local_windows(out), pid, "split",
                             "checkout/api")


def test_hung_server():
    """The first two requests never get an answer: timeouts fire, sampling goes on."""
    server = Server("pyroscope", 0, "--hang-first", "2")
    try:
        code, log, out, spool, pid = run_split(server.url, ["--remote-timeout", "2", "--verbose",
                                                       "--remote-drain-timeout", "60"], 5)
    finally:
        server.stop()
    local = local_windows(out)
    timeouts = len(re.findall(r"failed: Operation timed out", log))
    check("hung server: both hung requests timed out and were retried",
          timeouts >= 2 and upload_counters(log).get("retried", 0) >= 2,
          (timeouts, upload_counters(log)))
    # Windows ended while the upload thread waited on the hung server.
    before_recovery = log.split("works again")[0].count("wrote ")
    check("hung server: kiln kept sampling and writing windows meanwhile",
          code == 0 and len(local) == 5 and before_recovery >= 2,
          (code, len(local), before_recovery))
    check_pyroscope_profiles("hung server", server, local, pid, "split", "split")


def test_400_not_retried():
    server = Server("pyroscope", 0, "--reject-status", "400")
    try:
        code, log, out, spool, pid = run_split(server.url, [], 2)
    finally:
        server.stop()
    counters = upload_counters(log)
    profiles_spooled = spooled_total(log)
    check("400: exactly one request per profile, none retried",
          code == 0 and profiles_spooled == 2 and server.stats()["requests"] == 2 and
          counters.get("failed") == 2 and counters.get("retried") == 0,
          (profiles_spooled, server.stats(), counters))
    check("400: the server's message is logged",
          re.search(r"rejected the CPU profile of pid \d+ .*\(HTTP 400\), not retrying: "
                    r"invalid profile: the test server rejects everything", log), log[-1500:])
    check("400: rejected profiles leave the spool", spool_files(spool) == [], spool_files(spool))


def test_sigterm_during_outage_then_restart():
    port = free_port()
    out1, out2, spool = tmpdir(), tmpdir(), tmpdir()
    workload = start([prog("split"), "120"])
    try:
        kiln = subprocess.Popen([KILN, "--pid", str(workload.pid), "--frequency", "99",
                                 "--duration", "1", "--output-dir", out1, "--remote-store",
                                 f"http://127.0.0.1:{port}", "--spool-dir", spool,
                                 "--remote-drain-timeout", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(profiles(out1)) >= 3, timeout=60)
        kiln.send_signal(signal.SIGTERM)
        _, log1 = kiln.communicate(timeout=60)
        left = len(spool_files(spool))
        spooled = spooled_total(log1)
        check("SIGTERM in an outage: exits 0 within the drain deadline, profiles stay spooled",
              kiln.returncode == 0 and left == spooled >= 3 and "stay in the spool" in log1,
              (kiln.returncode, left, spooled, log1[-1500:]))
        server = Server("pyroscope", port)
        try:
            code, log2 = run_kiln(["--pid", str(workload.pid), "--frequency", "99",
                                   "--duration", "1", "--iterations", "1", "--output-dir",
                                   out2, "--remote-store", server.url, "--spool-dir", spool])
        finally:
            server.stop()
    finally:
        stop(workload)
    check("restart: the earlier run's profiles are found",
          code == 0 and f"{left} profiles" in log2 and "from an earlier run" in log2,
          log2[-1500:])
    local = local_windows(out1)
    local.update(local_windows(out2))
    check_pyroscope_profiles("restart", server, local, workload.pid, "split", "split")
    check("restart: spool empty at the end", spool_files(spool) == [], spool_files(spool))


def test_spool_bound():
    """The whole host into a 64 KiB spool with no backend: the oldest go, counted."""
    port = free_port()
    out, spool = tmpdir(), tmpdir()
    bound = 64 << 10
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            total = 0
            for name in os.listdir(spool):
                try:
                    total += os.path.getsize(os.path.join(spool, name))
                except OSError:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.02)

    load = start([prog("split"), "60"])
    kiln = subprocess.Popen([KILN, "--frequency", "499", "--duration", "1", "--output-dir",
                             out, "--remote-store", f"http://127.0.0.1:{port}", "--spool-dir",
                             spool, "--spool-max-bytes", "64K", "--remote-drain-timeout", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = threading.Thread(target=watch)
    watcher.start()
    log_lines = []
    reader = threading.Thread(target=lambda: log_lines.extend(kiln.stderr))
    reader.start()
    try:
        wait_for(lambda: "oldest profiles dropped" in "".join(log_lines) and
                 len(profiles(out)) >= 6, timeout=90)
        kiln.send_signal(signal.SIGTERM)
        kiln.wait(timeout=60)
    finally:
        stop(kiln)
        stop(load)
        done.set()
        watcher.join()
        reader.join()
    log = "".join(log_lines)
    counters = upload_counters(log)
    spooled = spooled_total(log)
    check(f"spool bound: never more than {bound} bytes on disk", 0 < peak[0] <= bound, peak[0])
    check("spool bound: oldest dropped and counted; spooled = dropped + waiting",
          counters.get("dropped", 0) > 0 and
          spooled == counters["dropped"] + counters["pending"] and
          len(spool_files(spool)) == counters["pending"], (spooled, counters))
    check("spool bound: a warning says profiles were dropped",
          "spool full (--spool-max-bytes)" in log, log[-1000:])

    # What is left is the newest: delivered after a restart, the oldest windows missing.
    server = Server("pyroscope", port)
    try:
        code, _ = run_kiln(["--frequency", "19", "--duration", "1", "--iterations", "1",
                            "--remote-store", server.url, "--spool-dir", spool,
                            "--spool-max-bytes", "64K", "--pid", str(os.getpid())])
    finally:
        server.stop()
    windows = sorted({calendar.timegm(time.strptime(
        re.search(r"(\d{8}T\d{6})Z", p).group(1), "%Y%m%dT%H%M%S")) for p in profiles(out)})
    delivered = sorted({meta["from"] for meta, _ in server.received()} & set(windows))
    check("spool bound: the spooled profiles arrive after a restart",
          code == 0 and len(server.received()) >= counters.get("pending", 0) > 0,
          (code, len(server.received()), counters))
    # Whole host: a window is many process profiles, and the bound may drop
    # only some of the oldest window's; what arrives is then every window from
    # the first delivered one on: the windows missing are all older.
    check("spool bound: the oldest windows were the ones dropped",
          delivered and delivered == [w for w in windows if w >= delivered[0]],
          (windows, delivered))
    for _, path in server.received()[:5]:
        read_profile(path)


def test_tls():
    """HTTPS with a private CA and a client certificate; Parca's gRPC over TLS (ALPN h2)."""
    cert = make_certificates()
    client = ["--tls-cert", cert("client.pem"), "--tls-key", cert("client.key")]
    server = Server("pyroscope", 0, "--tls-cert", cert("server.pem"), "--tls-key",
                    cert("server.key"), "--client-ca", cert("ca.pem"))
    spool = tmpdir()
    try:
        code, log, out, _, pid = run_split(server.url, ["--tls-ca", cert("ca.pem")] + client, 2,
                                           spool=spool)
        received = server.received()
        check("tls: verified server, client certificate: every window delivered",
              code == 0 and len(received) == len(local_windows(out)) == 2 and
              all(m["client_cert"] == "kiln-client" for m, _ in received),
              (code, [m.get("client_cert") for m, _ in received], log[-1500:]))
        # Without the CA the server is not trusted: nothing is sent, all stays spooled.
        code, log, out, _, _ = run_split(server.url, client + ["--remote-drain-timeout", "1"],
                                         1, spool=spool)
        check("tls: an untrusted server certificate is retried, the profile kept",
              code == 0 and len(server.received()) == 2 and
              re.search(r"failed: .*(certificate|issuer)", log) and
              len(spool_files(spool)) == 1, (len(server.received()), log[-1500:]))
        code, log, out, _, _ = run_split(server.url, client + ["--tls-insecure-skip-verify"], 1,
                                         spool=spool)
        check("tls: --tls-insecure-skip-verify delivers, the kept profile first",
              code == 0 and len(server.received()) == 4 and spool_files(spool) == [],
              (len(server.received()), log[-1500:]))
    finally:
        server.stop()
    server = Server("parca", 0, "--tls-cert", cert("server.pem"), "--tls-key",
                    cert("server.key"))
    try:
        code, log, out, spool, pid = run_split(server.url, ["--tls-ca", cert("ca.pem")], 3,
                                               protocol="parca")
    finally:
        server.stop()
    check("tls: Parca's gRPC over TLS (ALPN h2): every window delivered",
          code == 0 and len(server.received()) == len(local_windows(out)) == 3 and
          upload_counters(log).get("retried") == 0, (server.stats(), log[-1500:]))


def test_bad_flags():
    cases = [
        (["--remote-store", "ftp://x"], "--remote-store"),
        (["--remote-store", "http://x", "--remote-protocol", "zipkin"], "--remote-protocol"),
        (["--spool-dir", "/tmp/x"], "--spool-dir: only with --remote-store"),
        (["--remote-store", "http://x", "--header", "no colon"], "--header"),
        (["--remote-store", "http://x", "--bearer-token-file", "/nonexistent"],
         "--bearer-token-file"),
        (["--remote-store", "http://x", "--tls-cert", "/etc/hostname"], "--tls-cert"),
        (["--remote-store", "http://x", "--service-name", "a b"], "--service-name"),
        (["--remote-store", "http://x", "--spool-max-bytes", "1K"], "out of range (64K to 1T)"),
    ]
    for args, expected in cases:
        code, err = run_kiln(args)
        check(f"bad flag {' '.join(args)}: exit 2 naming it", code == 2 and expected in err,
              (code, err))


if __name__ == "__main__":
    require_root()
    test_bad_flags()
    test_pyroscope_every_window()
    test_parca_every_window()
    test_relabeled_labels_pushed()
    test_parca_status_codes()
    test_backend_down_then_up()
    test_503_then_success()
    test_hung_server()
    test_400_not_retried()
    test_sigterm_during_outage_then_restart()
    test_spool_bound()
    test_tls()
    finish()
