# SPDX-License-Identifier: Apache-2.0
"""The HTTP endpoint (--http-address): Debian's real Prometheus scrapes
/metrics, and the CPU samples it stored equal, scrape by scrape, the
samples in the profiles written up to that scrape (read with go tool
pprof); promtool lints the text; /healthz is 503 with the reason until BPF
is attached and a window is written, then 200; a second kiln on the
address warns naming it and profiles on; unknown paths, other methods,
bodies, huge headers and a flood of idle connections are refused while
kiln goes on serving; and --http-address '' listens nowhere."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

from kilntest import (KILN, check, finish, prog, profiles, read_profile, require_root, start,
                      start_kiln, stop, tmpdir, wait_for, wait_sampling)

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
SAMPLES = "kiln_cpu_profile_samples_total"
WINDOWS = "kiln_windows_written_total"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, path, method="GET", body=None, headers=None, timeout=5):
    """(status, headers, body text), or (None, None, the error) when nothing answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    except (OSError, http.client.HTTPException) as e:
        return None, None, str(e)
    finally:
        connection.close()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_metrics(text):
    """{name or name{labels}: value}, and the problems with the text's format."""
    values, problems, headers = {}, [], set()
    for line in text.splitlines():
        if line.startswith("# "):
            kind, name = line.split()[1:3]
            if (kind, name) in headers:
                problems.append(f"{kind} {name} twice")
            headers.add((kind, name))
            continue
        match = _SAMPLE.match(line)
        if not match:
            problems.append(f"bad line {line!r}")
            continue
        name = match.group(1)
        if ("TYPE", name) not in headers or ("HELP", name) not in headers:
            problems.append(f"{name} without HELP and TYPE before it")
        values[name + (match.group(2) or "")] = float(match.group(3))
    return values, problems


def metrics(port):
    status, _, text = request(port, "/metrics")
    return parse_metrics(text)[0] if status == 200 else {}


def profile_samples(files):
    return [sum(s["values"][0] for s in read_profile(f).samples) for f in files]


def start_prometheus(directory, kiln_port):
    port = free_port()
    config = os.path.join(directory, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kiln
    static_configs:
      - targets: ['127.0.0.1:{kiln_port}']
""")
    proc = start([PROMETHEUS, f"--config.file={config}",
                  f"--storage.tsdb.path={directory}/tsdb",
                  f"--web.listen-address=127.0.0.1:{port}"],
                 stdout=subprocess.DEVNULL, stderr=open(f"{directory}/prometheus.log", "w"))
    return proc, port


def query(port, expression):
    """The result list of an instant query, [] while Prometheus is not up."""
    status, _, text = request(port, "/api/v1/query?query=" + urllib.parse.quote(expression))
    if status != 200:
        return []
    return json.loads(text)["data"]["result"]


def stored_samples(port, name, minutes=10):
    """{timestamp: value} of every sample Prometheus stored of a series."""
    result = query(port, f'{name}{{job="kiln"}}[{minutes}m]')
    return {ts: float(v) for ts, v in result[0]["values"]} if result else {}


def test_prometheus_scrapes_exact_samples():
    """Every scrape's sample counter equals the samples in the profiles written by then.

    Exact by construction: kiln counts the window in kiln_windows_written_total
    and publishes that window's counters in one step under the endpoint's
    lock, so a scrape sees N windows with the counters of exactly those N;
    the profiles sort by their start time, so the first N files are those
    windows, whatever was written after the scrape. Both series of one
    scrape carry the same timestamp in Prometheus."""
    out = tmpdir()
    port = free_port()
    workload = start([prog("split_nofp"), "120"])
    kiln = start_kiln(["--http-address", f"127.0.0.1:{port}", "--duration", "1",
                       "--pid", str(workload.pid), "--output-dir", f"{out}/profiles"])
    prometheus, prometheus_port = start_prometheus(out, port)
    try:
        head = wait_sampling(kiln)
        check("http: kiln says where it serves", f"serving /metrics and /healthz on "
              f"http://127.0.0.1:{port}" in head, head)
        up = wait_for(lambda: any(r["value"][1] == "1"
                                  for r in query(prometheus_port, 'up{job="kiln"}')),
                      timeout=60, interval=0.5)
        check("http: Prometheus scrapes kiln (up == 1)", up,
              open(f"{out}/prometheus.log").read()[-1500:])
        # Scrapes across windows: three different counts of windows stored.
        scraped = wait_for(lambda: len(set(stored_samples(prometheus_port, WINDOWS).values()) -
                                       {0}) >= 3, timeout=60, interval=0.5)
        check("http: Prometheus stored scrapes of three windows and more", scraped,
              stored_samples(prometheus_port, WINDOWS))
        direct_text = request(port, "/metrics")[2]
        direct, problems = parse_metrics(direct_text)
        map_bytes = bpftool_map_bytes(kiln.pid)
        windows = stored_samples(prometheus_port, WINDOWS)
        samples = stored_samples(prometheus_port, SAMPLES)
    finally:
        kiln.send_signal(signal.SIGTERM)
        kiln.wait(timeout=60)
        stop(prometheus, signal.SIGTERM)
        stop(workload)
    check("http: /metrics is well-formed, one HELP and TYPE per family", not problems,
          problems[:5])
    # Prometheus' own linter, as an independent reader of the format.
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=direct_text, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check("http: promtool check metrics finds nothing to say", lint.returncode == 0 and
          not lint.stdout.strip(), lint.stdout[-1500:])
    files = profiles(f"{out}/profiles")
    counts = profile_samples(files)
    both = sorted(ts for ts in windows if ts in samples and windows[ts] >= 1)
    wrong = [(ts, int(windows[ts]), samples[ts], sum(counts[:int(windows[ts])]))
             for ts in both
             if int(windows[ts]) > len(counts) or samples[ts] != sum(counts[:int(windows[ts])])]
    check("http: each scrape's samples equal the samples of the profiles written by then",
          len(both) >= 3 and not wrong and sum(counts) > 0,
          f"{len(both)} scrapes, (time, windows, scraped, in profiles): {wrong[:5]}, "
          f"profiles {counts}")
    n = int(direct.get(WINDOWS, 0))
    check("http: /metrics read directly agrees with the profiles too",
          n >= 3 and direct.get(SAMPLES) == sum(counts[:n]),
          f"{n} windows, {direct.get(SAMPLES)} samples, profiles {counts}")
    check("http: process and BPF metrics are there",
          direct.get("kiln_process_cpu_seconds_total", 0) > 0 and
          direct.get("kiln_process_resident_memory_bytes", 0) > 1 << 20 and
          0 < direct.get("kiln_process_resident_anonymous_memory_bytes", 0) <
          direct["kiln_process_resident_memory_bytes"] and
          direct.get("kiln_bpf_attached") == 1 and
          'kiln_bpf_runs_total{program="cpu"}' in direct and
          "kiln_unwind_table_bytes" in direct and
          'kiln_unwind_stacks_cut_total{reason="no_cfi"}' in direct,
          {k: v for k, v in direct.items() if "process" in k or "bpf" in k})
    # Within 1%: a map allocated as it fills (task storage) may grow between the two reads.
    check("http: BPF map memory is what bpftool says kiln's maps hold",
          map_bytes and abs(direct.get("kiln_bpf_map_memory_bytes", 0) - map_bytes[0]) <=
          map_bytes[0] / 100 and
          direct.get("kiln_bpf_maps") == map_bytes[1],
          f"bpftool {map_bytes}, kiln {direct.get('kiln_bpf_map_memory_bytes')} in "
          f"{direct.get('kiln_bpf_maps')} maps")


def bpftool_map_bytes(pid):
    """(bytes_memlock summed, maps) as bpftool reports the maps pid holds
    (their ids from its fdinfo), or None."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                text = f.read()
        except OSError:
            continue
        found = re.search(r"^map_id:\s+(\d+)", text, re.M)
        if found:
            ids.add(int(found.group(1)))
    out = subprocess.run(["bpftool", "-j", "map", "show"], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        return None
    maps = [m for m in json.loads(out.stdout) if m["id"] in ids]
    return sum(m["bytes_memlock"] for m in maps), len(maps)


def test_health_and_second_kiln():
    """/healthz: 503 while loading, 503 before the first window, 200 after it;
    a second kiln on the same address warns, profiles and exits 0."""
    out = tmpdir()
    port = free_port()
    workload = start([prog("split_nofp"), "60"])
    kiln = start_kiln(["--http-address", f"127.0.0.1:{port}", "--duration", "4",
                       "--pid", str(workload.pid), "--output-dir", f"{out}/first"])
    try:
        # The endpoint opens before the BPF programs load, which takes
        # hundreds of milliseconds at least: the first answer comes then.
        first = None
        deadline = time.time() + 30
        while first is None and time.time() < deadline and kiln.poll() is None:
            status, _, body = request(port, "/healthz", timeout=1)
            first = (status, body) if status else None
            time.sleep(0.01)
        check("http: /healthz is 503 'BPF programs not attached' while loading",
              first == (503, "BPF programs not attached\n"), first)
        head = wait_sampling(kiln)
        status, _, body = request(port, "/healthz")
        check("http: /healthz is 503 'no window written yet' before the first window",
              status == 503 and body.startswith("no window written yet"), (status, body, head))
        wait_for(lambda: metrics(port).get(WINDOWS, 0) >= 1, timeout=30, interval=0.2)
        status, _, body = request(port, "/healthz")
        check("http: /healthz is 200 'ok' after a window", (status, body) == (200, "ok\n"),
              (status, body))

        second = subprocess.run([KILN, "--http-address", f"127.0.0.1:{port}",
                                 "--duration", "1", "--iterations", "1",
                                 "--pid", str(workload.pid), "--output-dir", f"{out}/second"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                timeout=120)
        warned = [line for line in second.stderr.splitlines()
                  if line.startswith("kiln: warning: ") and f"127.0.0.1:{port}" in line]
        check("http: a second kiln on the address warns naming it and the reason",
              warned and "Address already in use" in warned[0], second.stderr[-1500:])
        check("http: ... and still profiles, exiting 0",
              second.returncode == 0 and len(profiles(f"{out}/second")) == 1,
              f"exit {second.returncode}: {second.stderr[-800:]}")
        status, _, body = request(port, "/healthz")
        check("http: the first kiln serves on", status == 200 and kiln.poll() is None,
              (status, body))
    finally:
        stop(kiln, signal.SIGTERM)
        stop(workload)


def test_bad_requests():
    """Only GET and HEAD of /metrics and /healthz; bodies, huge headers and idle
    connections past the bounds are refused, and kiln serves on."""
    out = tmpdir()
    port = free_port()
    kiln = start_kiln(["--http-address", f"127.0.0.1:{port}", "--duration", "2",
                       "--pid", str(os.getpid()), "--output-dir", out])
    try:
        wait_sampling(kiln)
        status, _, body = request(port, "/nothing")
        check("http: an unknown path is 404", status == 404, (status, body))
        status, headers, body = request(port, "/metrics", method="POST", body="x=1")
        check("http: POST is 405 naming the methods allowed",
              status == 405 and headers.get("Allow") == "GET, HEAD", (status, headers, body))
        status, _, body = request(port, "/healthz", method="DELETE")
        check("http: DELETE is 405", status == 405, (status, body))
        status, _, body = request(port, "/metrics", body="x" * 100000)
        check("http: a GET with a body is refused (413)", status == 413, (status, body))
        status, headers, body = request(port, "/metrics", method="HEAD")
        check("http: HEAD of /metrics is 200 with the metrics' type",
              status == 200 and headers.get("Content-Type") ==
              "text/plain; version=0.0.4; charset=utf-8", (status, headers))
        status, _, body = request(port, "/metrics", headers={"X-Big": "y" * 64 * 1024})
        check("http: 64 KiB of request headers are refused", status in (None, 413, 431),
              (status, body[:200]))

        # More idle connections than the bounds: the ones past them are
        # closed at once, the rest after the connection timeout (5 s).
        idle = []
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(s)
        started = time.time()
        closed = 0
        for s in idle:
            try:
                s.settimeout(15)
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        elapsed = time.time() - started
        check("http: idle connections are all closed, none held past the timeout",
              closed == len(idle) and elapsed < 12, f"{closed} closed in {elapsed:.1f} s")
        for s in idle:
            s.close()
        status, _, body = request(port, "/metrics")
        check("http: kiln serves on after the flood", status == 200 and kiln.poll() is None,
              (status, body[:200]))
    finally:
        stop(kiln, signal.SIGTERM)
    check("http: kiln exits 0 after all that", kiln.returncode == 0,
          f"exit {kiln.returncode}: {kiln.stderr.read()[-800:]}")


def listening_inodes():
    """Socket inodes in the LISTEN state, IPv4 and IPv6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    inodes.add(fields[9])
    return inodes


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def test_off():
    """--http-address '' listens nowhere; an IPv6 address listens there."""
    out = tmpdir()
    kiln = start_kiln(["--http-address", "", "--duration", "1", "--iterations", "2",
                       "--pid", str(os.getpid()), "--output-dir", out])
    head = wait_sampling(kiln)
    listening = socket_inodes(kiln.pid) & listening_inodes()
    kiln.wait(timeout=60)
    check("http: --http-address '' listens nowhere",
          not listening and "serving /metrics" not in head and kiln.returncode == 0,
          f"{listening}, exit {kiln.returncode}: {head}")

    port = free_port()
    kiln = start_kiln(["--http-address", f"[::1]:{port}", "--duration", "1",
                       "--pid", str(os.getpid()), "--output-dir", out])
    try:
        wait_sampling(kiln)
        connection = http.client.HTTPConnection("::1", port, timeout=5)
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
        connection.close()
        check("http: [::1]:PORT serves over IPv6", status in (200, 503), status)
    except OSError as e:
        check("http: [::1]:PORT serves over IPv6", False, e)
    finally:
        stop(kiln, signal.SIGTERM)

    proc = subprocess.run([KILN, "--http-address", "localhost:7071"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    check("http: an unparseable address exits 2",
          proc.returncode == 2 and "is not HOST:PORT" in proc.stderr,
          f"exit {proc.returncode}: {proc.stderr}")


if __name__ == "__main__":
    require_root()
    if not os.path.exists(PROMETHEUS):
        check("http: prometheus is installed (scripts/install-deps.sh)", False, PROMETHEUS)
    test_off()
    test_bad_requests()
    test_health_and_second_kiln()
    if os.path.exists(PROMETHEUS):
        test_prometheus_scrapes_exact_samples()
    finish()
