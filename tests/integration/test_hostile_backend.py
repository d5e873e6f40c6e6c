# SPDX-License-Identifier: Apache-2.0
"""Pushing to a hostile backend (servers/hostile_server.py on loopback): a
100 MiB answer, 1 MiB of headers, an answer trickled a byte a second, a
redirect to another server, and gRPC trailers that are malformed. Each
attempt fails, counted by its reason, never read as delivered; and
sampling never waits on the backend: the local windows keep being written
on time throughout."""
import os
import re
import subprocess
import sys
import threading
import time

from kilntest import KILN, check, finish, prog, profiles, require_root, start, stop, tmpdir
from test_push import Server, spool_files, spooled_total, upload_counters

# Windows of 1 s: one written later than this after the one before means the
# window loop waited (on a trickle that holds a request 10 s, say). Several
# times a loaded machine's delay, far below what the faults would cost.
WINDOW_S = 1
LATE_S = 4
# Time at exit for the profiles still spooled: an answer that comes at once
# is then counted, whatever the load; an attempt cut at the deadline is not.
DRAIN = ["--remote-drain-timeout", "3"]

def failure_counters(log):
    """The last "upload failures" line (logged each window with -v), by reason."""
    lines = re.findall(r"upload failures: (.*)", log)
    if not lines:
        return {}
    return {reason: int(n) for n, reason in re.findall(r"(\d+) ([a-z -]+?)(?:,|$)", lines[-1])}


class Kiln:
    """kiln --pid on a CPU-bound program, 1 s windows to out, pushing to url.
    Records its peak RSS while it runs."""

    def __init__(self, url, iterations, extra=(), protocol="pyroscope"):
        self.out, self.spool = tmpdir(), tmpdir()
        self.workload = start([prog("split"), "120"])
        self.proc = subprocess.Popen(
            [KILN, "--pid", str(self.workload.pid), "--frequency", "99", "--duration",
             str(WINDOW_S), "--iterations", str(iterations), "--output-dir", self.out,
             "--remote-store", url, "--remote-protocol", protocol, "--spool-dir", self.spool,
             "--verbose"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.peak_rss_kib = 0
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch_rss)
        self._watcher.start()

    def _watch_rss(self):
        while not self._done.wait(0.05):
            try:
                with open(f"/proc/{self.proc.pid}/status") as f:
                    found = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
            except OSError:
                continue
            if found:
                self.peak_rss_kib = max(self.peak_rss_kib, int(found.group(1)))

    def wait(self, timeout=180):
        try:
            _, self.log = self.proc.communicate(timeout=timeout)
            self.exited_at = time.time()
        finally:
            self._done.set()
            self._watcher.join()
            stop(self.proc)
            stop(self.workload)
        return self.proc.returncode, self.log

    def window_times(self):
        """When each local CPU window was written (mtime), oldest first."""
        return sorted(os.path.getmtime(p) for p in profiles(self.out))


def push_to_hostile(server_args, iterations, kiln_args, protocol="pyroscope"):
    """Runs kiln for iterations windows against a hostile server started with
    server_args; returns (kiln, its log, the server, now stopped)."""
    server = Server("hostile", 0, *server_args)
    try:
        kiln = Kiln(server.url, iterations, kiln_args, protocol)
        _, log = kiln.wait()
    finally:
        server.stop()
    return kiln, log, server


def check_windows_on_time(name, kiln, iterations):
    """Every window was written, none later than LATE_S after the one before."""
    times = kiln.window_times()
    gaps = [b - a for a, b in zip(times, times[1:])]
    check(f"{name}: sampling not blocked: all {iterations} windows written, "
          f"each within {LATE_S} s of the one before",
          len(times) == iterations and max(gaps, default=0) <= LATE_S,
          f"{len(times)} windows, gaps {[round(g, 1) for g in gaps]}")
    return times


def check_counted(name, log, server, reason):
    """Every failed attempt counted under reason, one per request the server
    saw: all but one at most, the request in flight at the drain deadline
    (cut, no failure of the backend's)."""
    failures = failure_counters(log)
    requests = server.stats()["requests"]
    counted = failures.get(reason, 0)
    check(f"{name}: each attempt counted as {reason} ({counted} of {requests} requests)",
          counted >= 1 and sum(failures.values()) == counted and
          requests - 1 <= counted <= requests, (failures, server.stats(), log[-1500:]))
    return counted


def check_nothing_delivered(name, kiln, log, server):
    counters = upload_counters(log)
    check(f"{name}: kiln exits 0, reached the server, delivered nothing",
          kiln.proc.returncode == 0 and server.stats()["requests"] >= 1 and
          counters.get("sent") == 0,
          (kiln.proc.returncode, server.stats(), counters, log[-1500:]))
    return counters


def test_huge_body():
    """200 with 100 MiB of body: cut off at the bound, retried, RSS bounded."""
    for fault in ("huge-body", "huge-length"):
        name = f"{fault}"
        kiln, log, server = push_to_hostile(["--fault", fault], 4, DRAIN)
        counters = check_nothing_delivered(name, kiln, log, server)
        check_counted(name, log, server, "responses too large")
        sent = server.stats()["body_bytes_sent"]
        check(f"{name}: retried, not given up",
              counters.get("retried", 0) >= 1 and counters.get("failed") == 0, counters)
        # What left the server: what kiln read before it hung up, and what the
        # sockets' buffers took. All of 100 MiB would be a body read to its end.
        check(f"{name}: the body was cut off, not read to its end ({sent >> 20} MiB sent)",
              sent < (100 << 20) // 4, sent)
        check(f"{name}: kiln's peak RSS ({kiln.peak_rss_kib >> 10} MiB) far under the "
              f"100 MiB body", 0 < kiln.peak_rss_kib < 64 << 10, kiln.peak_rss_kib)
        check(f"{name}: the profiles stay spooled for a retry",
              len(spool_files(kiln.spool)) == spooled_total(log) >= 1,
              (spool_files(kiln.spool), spooled_total(log)))
        check(f"{name}: the failure is warned with its reason",
              "failed: response body over 64 KiB, cut off" in log, log[-1500:])
        check_windows_on_time(name, kiln, 4)


def test_huge_headers():
    kiln, log, server = push_to_hostile(["--fault", "huge-headers"], 3,
                                        DRAIN)
    check_nothing_delivered("huge headers", kiln, log, server)
    check_counted("huge headers", log, server, "headers too large")
    check("huge headers: warned with the reason",
          "failed: response headers over 64 KiB, cut off" in log, log[-1500:])
    check_windows_on_time("huge headers", kiln, 3)


def test_trickle():
    """One byte a second: cut by the low-speed limit (10 s), or by --remote-timeout
    when shorter; windows are written on time while the request hangs."""
    kiln, log, server = push_to_hostile(["--fault", "trickle"], 16,
                                        ["--remote-drain-timeout", "1"])
    check_nothing_delivered("trickle", kiln, log, server)
    failures = failure_counters(log)
    check("trickle: cut by the low-speed limit, counted as too slow",
          failures.get("too slow", 0) >= 1 and failures.get("timed out") == 0 and
          "failed: Operation too slow" in log, (failures, log[-1500:]))
    times = check_windows_on_time("trickle", kiln, 16)
    first = server.stats()["first_request_at"] or 0
    # The low-speed limit holds it 10 s: a window loop that waited on it
    # would write one window then at most, on time nine.
    held = [t for t in times if first < t < first + 9]
    check("trickle: windows written while the first request was held (5+ in 9 s)",
          len(held) >= 5, (len(held), first, times))
    # At exit the trickled request in flight is cut at the drain deadline (1 s).
    check(f"trickle: kiln exits within {1 + LATE_S} s of its last window, the request cut",
          times and kiln.exited_at - times[-1] <= 1 + LATE_S,
          (kiln.exited_at - times[-1]) if times else None)

    kiln, log, server = push_to_hostile(["--fault", "trickle"], 6,
                                        ["--remote-timeout", "2"] + DRAIN)
    check_nothing_delivered("trickle, --remote-timeout 2", kiln, log, server)
    failures = failure_counters(log)
    check("trickle, --remote-timeout 2: cut by the timeout first, counted as timed out",
          failures.get("timed out", 0) >= 1 and failures.get("too slow") == 0,
          (failures, log[-1500:]))
    check_windows_on_time("trickle, --remote-timeout 2", kiln, 6)


def test_redirect():
    """307 to another server: never followed, the other server sees nothing."""
    other = Server("pyroscope")
    try:
        kiln, log, server = push_to_hostile(["--fault", "redirect", "--status", "307",
                                             "--location", other.url + "/ingest"], 3, [])
    finally:
        other.stop()
    counters = check_nothing_delivered("redirect", kiln, log, server)
    spooled = spooled_total(log)
    check("redirect: the other server received nothing",
          other.stats()["requests"] == 0, other.stats())
    failures = failure_counters(log)
    check("redirect: each profile rejected once, counted as a redirect, not retried",
          spooled >= 1 and server.stats()["requests"] == spooled and
          counters.get("failed") == spooled and counters.get("retried") == 0 and
          failures.get("redirects not followed") == spooled and
          spool_files(kiln.spool) == [], (spooled, server.stats(), counters, failures))
    check("redirect: the warning names where it pointed",
          re.search(r"rejected the CPU profile .*\(HTTP 307\), not retrying: redirect to " +
                    re.escape(other.url) + "/ingest, not followed", log), log[-1500:])
    check("redirect: warned once, not once per profile",
          len(re.findall(r"warning: .*redirect to", log)) == 1, log[-2000:])
    check_windows_on_time("redirect", kiln, 3)


def test_malformed_trailers():
    """gRPC trailers a server must not send: never read as OK, counted by why."""
    # fault: (reason counted, rejected for good (True) or retried (False))
    cases = {
        "grpc-status-text": ("bad grpc-status", True),
        "grpc-status-missing": ("bad grpc-status", True),
        "grpc-status-twice": ("bad grpc-status", True),
        # 80 KB of trailers: over kiln's 64 KiB bound on headers.
        "trailers-many": ("headers too large", False),
        "trailer-bad-name": ("protocol errors", False),
        "trailer-pseudo": ("protocol errors", False),
        # One field over nghttp2's 64 KiB: libcurl 7.88 drops the whole
        # trailer block and ends the call as if none had come.
        "grpc-message-huge": ("bad grpc-status", True),
    }
    for fault, (reason, rejected) in cases.items():
        kiln, log, server = push_to_hostile(["--fault", fault], 2,
                                            DRAIN, "parca")
        counters = check_nothing_delivered(fault, kiln, log, server)
        counted = check_counted(fault, log, server, reason)
        if rejected:
            check(f"{fault}: rejected, not retried (gRPC's INTERNAL)",
                  counters.get("failed") == counted and counters.get("retried") == 0,
                  (counters, server.stats()))
        else:
            check(f"{fault}: retried, the profiles kept in the spool",
                  counters.get("failed") == 0 and counters.get("retried", 0) >= 1 and
                  len(spool_files(kiln.spool)) >= 1, (counters, spool_files(kiln.spool)))
        check_windows_on_time(fault, kiln, 2)


if __name__ == "__main__":
    require_root()
    tests = [test_redirect, test_huge_body, test_huge_headers, test_malformed_trailers,
             test_trickle]
    # Names given on the command line run only those: test_trickle...
    for test in tests:
        if len(sys.argv) < 2 or test.__name__ in sys.argv[1:]:
            test()
    finish()
