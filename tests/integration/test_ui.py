# SPDX-License-Identifier: Apache-2.0
"""The flame graph page (issue 17), in Debian's headless Chromium driven by
playwright-core (tests/integration/ui/page.mjs): the page loads with no
console error; speedscope's own table (its DOM) holds the ground-truth
program's functions in their 6:3:1 proportion; the process filter narrows
it to one pid; a new window shows itself without a reload. Beside the
browser: go tool pprof reads the served URLs (one window filtered to a
pid, the last minutes merged) and finds the same split; the page's
headers; path traversal, in plain and encoded spellings, is 404; bad
query parameters are 400 naming the parameter; and without an output
directory the windows are served from memory."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess

from kilntest import (check, finish, prog, profiles, read_profile, require_root, start,
                      start_kiln, stop, tmpdir, wait_for, wait_sampling)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DRIVER = os.path.join(ROOT, "tests", "integration", "ui", "page.mjs")
PLAYWRIGHT = os.path.join(ROOT, "agent", "http", "ui", "node_modules", "playwright-core")
CHROMIUM = "/usr/bin/chromium"
# Where the screenshot is kept (the README shows it): an artefact of the run.
ARTEFACTS = os.environ.get("KILN_TEST_ARTEFACTS", os.path.join(ROOT, "build", "test-artefacts"))
SPLIT = ("hot_a", "hot_b", "hot_c")
TRUTH = (0.6, 0.3, 0.1)
TOLERANCE = 0.08
UNITS = {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9, "min": 60e9}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    """(status, headers, body bytes) of a GET sent as written, not normalised."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def sandwich_self_times(text):
    """speedscope's sandwich table as its DOM text: {function: self time in ns}."""
    pattern = re.compile(r"([\d.]+)\s*(ns|µs|us|ms|s|min) \([^)]*\)\s+([\d.]+)\s*(ns|µs|us|ms|s|min)"
                         r" \([^)]*\)\s+(.+)")
    times = {}
    for match in pattern.finditer(text):
        times[match.group(5).strip()] = float(match.group(3)) * UNITS[match.group(4)]
    return times


def shares(times):
    total = sum(times.get(name, 0) for name in SPLIT)
    return [times.get(name, 0) / total if total else 0 for name in SPLIT]


def split_close(values):
    return all(abs(v - t) <= TOLERANCE for v, t in zip(values, TRUTH))


def pprof_split(profile, pid=None):
    """The leaf values of hot_a, hot_b, hot_c (of one pid, if given) in a profile read back."""
    totals = dict.fromkeys(SPLIT, 0)
    for sample in profile.samples:
        if pid is not None and sample["labels"].get("pid") != [str(pid)]:
            continue
        location = profile.locations.get(sample["locations"][0]) if sample["locations"] else None
        name = location["lines"][0][0] if location and location["lines"] else None
        if name in totals:
            totals[name] += sample["values"][0]
    return totals


def test_page():
    if not (os.path.exists(CHROMIUM) and os.path.isdir(PLAYWRIGHT) and shutil.which("node")):
        check("ui: chromium, node and playwright-core installed (scripts/install-deps.sh)", False,
              f"{CHROMIUM} {PLAYWRIGHT}")
        return
    out, port = tmpdir(), free_port()
    split = start([prog("split_nofp"), "120"])
    other = start([prog("recursion_nofp"), "120"])
    kiln = None
    try:
        kiln = start_kiln(["--frequency", "99", "--duration", "3", "--output-dir", out,
                           "--http-address", f"127.0.0.1:{port}"])
        wait_sampling(kiln)
        # Two windows: one to read and pick, the next for the page to follow.
        wait_for(lambda: len(profiles(out)) >= 2, timeout=60)
        status, headers, body = get(port, "/api/windows")
        listing = json.loads(body) if status == 200 else {}
        check("ui: kiln was built with the viewer embedded", listing.get("viewer") is True,
              (status, body[:200]))
        os.makedirs(ARTEFACTS, exist_ok=True)
        screenshot = os.path.join(ARTEFACTS, "flamegraph.png")
        run = subprocess.run(["node", DRIVER, f"http://127.0.0.1:{port}", str(split.pid),
                              str(other.pid), screenshot], capture_output=True, text=True,
                             timeout=240)
        lines = run.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
        if not check("ui: the browser went through every step", not result.get("failure")
                     and result.get("steps") == ["all", "pid", "other", "follow"],
                     (result.get("failure"), result.get("steps"), run.stderr[-1500:])):
            return
        print(f"# ui: page and first profile shown in {result['load_ms']} ms "
              f"(window {result['picked']})")
        check("ui: the page loads with no console errors", not result["errors"],
              result["errors"][:5])

        whole = sandwich_self_times(result["all"])
        print(f"# ui: all processes: {[round(s, 3) for s in shares(whole)]} of "
              f"{[whole.get(n) for n in SPLIT]} ns")
        check("ui: the flame graph names hot_a, hot_b and hot_c in 6:3:1",
              all(n in whole for n in SPLIT) and split_close(shares(whole)),
              (shares(whole), sorted(whole)[:20]))
        # The table is virtual: only its top rows are in the DOM, the leaves with most self time.
        check("ui: it holds the other program's leaf too", "bottom" in whole, sorted(whole)[:40])

        one = sandwich_self_times(result["pid"])
        check("ui: the process filter asks kiln for that pid",
              f"pid={split.pid}" in (result.get("pid_url") or ""), result.get("pid_url"))
        check("ui: filtered to split's pid: its 6:3:1, none of the other's functions",
              split_close(shares(one)) and "bottom" not in one and "recurse" not in one,
              (shares(one), sorted(one)[:20]))
        them = sandwich_self_times(result["other"])
        check("ui: filtered to the other pid: bottom under recurse, no hot_a",
              "bottom" in them and "recurse" in them and not any(n in them for n in SPLIT),
              sorted(them)[:20])

        follow = result["follow"]
        check("ui: a new window appears without a reload",
              follow["windows_after"] > follow["windows_before"]
              and follow["marker"] == "not reloaded", follow)
        check("ui: a screenshot is kept", os.path.getsize(screenshot) > 10000, screenshot)
        served_by_pprof(port, split.pid)
    finally:
        for proc in (split, other):
            stop(proc)
        if kiln:
            stop(kiln)


def served_by_pprof(port, pid):
    """go tool pprof, the independent reader, on the URLs the page hands speedscope."""
    one = read_profile(f"http://127.0.0.1:{port}/profiles/latest?pid={pid}")
    values = pprof_split(one)
    total = sum(values.values())
    check("ui: go tool pprof reads /profiles/latest?pid=N: only that pid, its 6:3:1",
          total and split_close([values[n] / total for n in SPLIT])
          and all(s["labels"].get("pid") == [str(pid)] for s in one.samples), values)
    merged = read_profile(f"http://127.0.0.1:{port}/profiles/last?minutes=5")
    values = pprof_split(merged, pid)
    single = sum(pprof_split(one).values())
    check("ui: /profiles/last?minutes=5 merges the windows: more of split than one window",
          sum(values.values()) > single, (values, single))


def test_headers_and_refusals():
    out, port = tmpdir(), free_port()
    kiln = start_kiln(["--duration", "2", "--output-dir", out, "--http-address",
                       f"127.0.0.1:{port}"])
    try:
        wait_sampling(kiln)
        wait_for(lambda: profiles(out), timeout=60)
        status, headers, body = get(port, "/")
        csp = headers.get("Content-Security-Policy", "")
        check("ui: / is kiln's page", status == 200 and b"/ui/kiln.js" in body, (status, body[:100]))
        check("ui: the page sets a Content-Security-Policy of its own files only",
              "default-src 'self'" in csp and "script-src 'self'" in csp
              and "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0], csp)
        check("ui: and X-Content-Type-Options: nosniff",
              headers.get("X-Content-Type-Options") == "nosniff", headers)
        name = os.path.basename(profiles(out)[-1])
        status, headers, body = get(port, f"/profiles/{name}")
        with open(os.path.join(out, name), "rb") as f:
            check("ui: /profiles/NAME is the file as written", status == 200 and body == f.read(),
                  status)
        for path in ("/profiles/../../etc/passwd", "/profiles/..%2f..%2fetc%2fpasswd",
                     "/profiles/%2e%2e/%2e%2e/etc/passwd", "/profiles/..%252f..%252fetc%252fpasswd",
                     "/ui/../../../etc/passwd", "/viewer/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                     f"/profiles/{name}/..", "/profiles/", "/ui/", "/profiles/.%00/etc/passwd"):
            status, _, body = get(port, path)
            check(f"ui: {path} is 404", status == 404 and b"root:" not in body, (status, body[:80]))
        for query, word in (("kind=heap", "kind"), ("pid=abc", "pid"), ("minutes=100000", "minutes"),
                            ("label=novalue", "label"), ("comm=" + "x" * 300, "comm"),
                            ("pid=-1", "pid")):
            status, _, body = get(port, f"/profiles/latest?{query}")
            check(f"ui: ?{query[:20]} is 400 naming {word}",
                  status == 400 and body.decode().startswith(word), (status, body[:80]))
        status, _, body = get(port, "/profiles/last")
        check("ui: /profiles/last without minutes is 400", status == 400, (status, body))
        status, _, body = get(port, "/profiles/latest?kind=offcpu")
        check("ui: no off-CPU window yet is 404 saying so", status == 404 and b"yet" in body,
              (status, body))
    finally:
        stop(kiln)


def test_windows_in_memory():
    """Pushing only, no output directory: the page's windows are kept in memory."""
    port = free_port()
    split = start([prog("split_nofp"), "120"])
    spool = tmpdir()
    kiln = start_kiln(["--duration", "2", "--http-address", f"127.0.0.1:{port}",
                       "--remote-store", "http://127.0.0.1:9/", "--spool-dir", spool,
                       "--pid", str(split.pid)])
    try:
        wait_sampling(kiln)

        def listed():
            status, _, body = get(port, "/api/windows")
            return status == 200 and json.loads(body)["windows"]

        windows = wait_for(listed, timeout=60)
        status, _, body = get(port, "/api/windows")
        check("ui: without --output-dir the windows are kept in memory",
              json.loads(body)["in_memory"] is True and windows, body[:200])
        profile = read_profile(f"http://127.0.0.1:{port}/profiles/latest")
        check("ui: go tool pprof reads a window kept in memory",
              sum(pprof_split(profile).values()) > 0, len(profile.samples))
    finally:
        stop(kiln)
        stop(split)


if __name__ == "__main__":
    require_root()
    test_page()
    test_headers_and_refusals()
    test_windows_in_memory()
    finish()
