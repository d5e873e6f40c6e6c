#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""BPF cost of CPython's frames: ns per CPU sample for a CPython 3.12
process spinning under a 20-deep Python recursion, with --python on (20
Python frames read in BPF) and off (the same native stack, evaluator frames
kept), and the agent's RSS. The sampler's run time (kernel.bpf_stats_enabled)
includes the events of other processes, which --pid filters out early: their
cost is measured apart, on a sleeping process, and taken off; the
unwinder's own time per stack (kiln_unwind_seconds_total) is shown beside
it. Prints Markdown."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from kilntest import KILN  # noqa: E402

FREQ = int(os.environ.get("FREQ", "499"))
SECONDS = int(os.environ.get("SECONDS_PROFILED", "8"))
DEPTH = 20
PROGRAM = f"""
def spin():
    x = 0
    while True:
        x += 1
def rec(n):
    if n <= 1:
        spin()
    rec(n - 1)
rec({DEPTH - 1})
"""


def python312():
    root = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, text=True).stdout.strip()
    paths = sorted(glob.glob(os.path.join(root, "versions", "3.12.*", "bin", "python3.12")))
    return paths[-1] if paths else None


def sampler_runs(kiln_pid):
    """(run ns, runs) of kiln's perf-event program, from its descriptors."""
    best = (0, 0)
    for fd in os.listdir(f"/proc/{kiln_pid}/fdinfo"):
        try:
            text = open(f"/proc/{kiln_pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\S+)", text, re.M))
        # prog_type 7: BPF_PROG_TYPE_PERF_EVENT, the CPU sampler.
        if fields.get("prog_type") == "7" and "run_time_ns" in fields:
            best = max(best, (int(fields["run_time_ns"]), int(fields["run_cnt"])))
    return best


def run(target_pid, extra):
    """kiln on target_pid for one window: (run ns, runs, recorded samples, python frames,
    unwinder ns, unwound stacks, RSS KiB)."""
    out = tempfile.mkdtemp(prefix="kiln-bench-python-")
    kiln = subprocess.Popen([KILN, "-v", "--pid", str(target_pid), "--frequency", str(FREQ),
                             "--duration", str(SECONDS), "--iterations", "1", "--output-dir",
                             out] + extra, stderr=subprocess.PIPE, text=True)
    runs, rss = [(0, 0)], [0]

    def poll():
        # Until kiln detaches its programs at exit: the last reading is the whole window's.
        while kiln.poll() is None:
            try:
                runs[0] = max(runs[0], sampler_runs(kiln.pid))
                found = re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{kiln.pid}/status").read())
                rss[0] = max(rss[0], int(found.group(1)) if found else 0)
            except OSError:
                pass
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    text = kiln.stderr.read()
    kiln.wait()
    poller.join()
    recorded = int(re.search(r"(\d+) recorded", text).group(1))
    frames = re.search(r"python: \d+ stacks with Python frames, (\d+) frames", text)
    unwind = re.search(r"unwind: (\d+) user stacks from CFI in (\d+) ns", text)
    return (runs[0][0], runs[0][1], recorded, int(frames.group(1)) if frames else 0,
            int(unwind.group(2)) if unwind else 0, int(unwind.group(1)) if unwind else 0, rss[0])


def main():
    if os.geteuid() != 0:
        sys.exit("bench/python.py: needs root")
    python = python312()
    if not python:
        sys.exit("bench/python.py: no pyenv CPython 3.12")
    stats = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(stats).read().strip()
    open(stats, "w").write("1")
    try:
        sleeper = subprocess.Popen(["sleep", "1000"])
        try:
            ns, runs = run(sleeper.pid, [])[:2]
        finally:
            sleeper.kill()
            sleeper.wait()
        filtered = ns / max(runs, 1)
        rows = []
        for label, extra in (("--python on", []), ("--python off", ["--python", "off"])):
            proc = subprocess.Popen([python, "-c", PROGRAM])
            try:
                time.sleep(1)
                ns, runs, recorded, frames, unwind_ns, stacks, rss = run(proc.pid, extra)
            finally:
                proc.kill()
                proc.wait()
            own = (ns - (runs - recorded) * filtered) / max(recorded, 1)
            rows.append((label, recorded, frames / max(recorded, 1), own,
                         unwind_ns / max(stacks, 1), rss))
    finally:
        open(stats, "w").write(old)
    print(f"CPython 3.12, {DEPTH}-deep Python recursion, {FREQ} Hz, {SECONDS} s; "
          f"a filtered event costs {filtered:.0f} ns, taken off\n")
    print("| kiln | samples | Python frames a sample | BPF ns a sample | of it, the unwinder's "
          "| kiln peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, recorded, per, own, unwind, rss in rows:
        print(f"| {label} | {recorded} | {per:.1f} | {own:.0f} | {unwind:.0f} "
              f"| {rss / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
