# SPDX-License-Identifier: Apache-2.0
"""--max-memory: kiln profiling the whole host beside node with a large perf
map (--perf-basic-prof, a new function compiled every few milliseconds) and
a churn of short coreutils processes stays within a small budget: its RSS
under the bound plus what it needs besides its caches, with slack; the
caches evict, and say so; the JS functions are still named from the map."""
import os
import re
import shutil
import threading
import time

from kilntest import (check, finish, profiles, read_profile, require_root, start, start_kiln,
                      stop, tmpdir, wait_sampling)

MAX_MEMORY_MIB = 8
# What kiln holds besides its caches: its code and libraries' pages, kallsyms
# (3 MiB), libbpf, a window's samples and profile, malloc's slack; DWARF
# read within one window may reach twice its share (half the budget);
# libmicrohttpd and the GnuTLS it links, mapped and initialised at start
# for the HTTP endpoint (3 MiB, measured: 2.3 of file pages, 0.4 of heap).
FIXED_MIB = 27
SLACK_MIB = 8

NODE_SCRIPT = r"""
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
let total = 0, i = 0;
const end = Date.now() + 1000 * Number(process.argv[2]);
while (Date.now() < end) {
    // A new function each time: V8 compiles it and writes its line to the map.
    const made = new Function("x", "return x + " + (i++) + ";");
    total += made(fib(18));
}
console.log(total);
"""

CHURN = ("end=$((SECONDS+{seconds})); while [ $SECONDS -lt $end ]; do "
         "ls /usr/lib >/dev/null; sha256sum /usr/bin/ls >/dev/null; "
         "gzip -c /etc/services >/dev/null; date >/dev/null; done")


def rss_kib(pid):
    """VmRSS and RssAnon of pid in KiB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            text = status.read()
    except OSError:
        return None
    values = dict(re.findall(r"^(VmRSS|RssAnon):\s+(\d+) kB", text, re.M))
    if "VmRSS" not in values:
        return None
    return int(values["VmRSS"]), int(values.get("RssAnon", 0))


class PeakRss:
    """Samples a process's RSS until it exits; keeps the highest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = (0, 0)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            values = rss_kib(self.pid)
            if values is None:
                return
            self.peak = (max(self.peak[0], values[0]), max(self.peak[1], values[1]))
            time.sleep(0.05)


def counter(err, pattern):
    return sum(int(n) for n in re.findall(pattern, err))


def test_budget_beside_node():
    node = shutil.which("node")
    if not node:
        print("skip test_memory: node is not installed")
        return
    work = tmpdir()
    out = tmpdir()
    script = os.path.join(work, "busy.js")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    seconds = 16
    kiln = start_kiln(["--max-memory", f"{MAX_MEMORY_MIB}M", "--frequency", "99",
                       "--duration", "4", "--iterations", "3", "--output-dir", out, "-v"])
    head = wait_sampling(kiln)
    peak = PeakRss(kiln.pid)
    workloads = [start([node, "--perf-basic-prof", script, str(seconds)], cwd=work),
                 start(["bash", "-c", CHURN.format(seconds=seconds)])]
    try:
        _, rest = kiln.communicate(timeout=300)
    finally:
        for proc in workloads:
            stop(proc)
        stop(kiln)
    peak.thread.join(timeout=5)
    err = head + rest
    node_pid = workloads[0].pid
    files = profiles(out)
    check("memory: kiln exits 0 and writes its windows", kiln.returncode == 0 and files,
          f"exit {kiln.returncode}, files {files}, stderr: {err[-2000:]}")
    bound = MAX_MEMORY_MIB + FIXED_MIB + SLACK_MIB
    check(f"memory: peak RSS within --max-memory {MAX_MEMORY_MIB}M plus what is fixed",
          0 < peak.peak[0] <= bound * 1024,
          f"peak VmRSS {peak.peak[0]} KiB, RssAnon {peak.peak[1]} KiB, bound {bound} MiB")
    print(f"     peak VmRSS {peak.peak[0] // 1024} MiB, RssAnon {peak.peak[1] // 1024} MiB")
    # The caches evicted within their shares, and each eviction was reported.
    evicted = (counter(err, r"(\d+) maps evicted") + counter(err, r"(\d+) evicted at --max-memory")
               + counter(err, r"(\d+) at --max-dwarf-memory"))
    check("memory: evictions at the bound are reported", evicted > 0, err[-3000:])
    held = [int(n) for n in re.findall(r"(\d+) MiB held", err)]
    check("memory: what DWARF and perf maps hold is reported", held, err[-2000:])
    # JS frames of node are still named from its perf map.
    named = total = 0
    for path in files:
        profile = read_profile(path)
        for sample in profile.samples:
            if sample["labels"].get("pid") != [str(node_pid)]:
                continue
            total += sample["values"][0]
            if any(name.startswith("JS:") or "fib" in name for name in profile.stack(sample)):
                named += sample["values"][0]
    check("memory: node's JS functions are named from its perf map within the budget",
          total > 0 and named > total // 4, f"{named} of {total} node samples name JS code")


if __name__ == "__main__":
    require_root()
    test_budget_beside_node()
    finish()
