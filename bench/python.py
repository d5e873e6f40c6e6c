#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""BPF cost of CPython's frames: ns per CPU sample for a CPython 3.12
process spinning under a 20-deep Python recursion, with --python on (20
Python frames read in BPF) and off (the same native stack, evaluator frames
kept), and the agent's RSS. The sampler's run time (kernel.bpf_stats_enabled)
includes the events of other processes, which --pid filters out early: their
cost is measured apart, on a sleeping process, and taken off; the
unwinder's own time per stack (kiln_unwind_seconds_total) is shown beside
it. Prints Markdown.
  --memory: the agent's extra memory per Python process: kiln's peak RSS
  over MEMORY_PROCESSES (16) CPython 3.12 processes, each calling 200
  functions of its own, with --python on against off.
  --xperf: CPython 3.12's own perf-map support (`-X perf`, 3.12+) beside
  kiln's frames read in BPF: the same 20-deep recursion profiled by kiln
  (--python on; --python off with the perf map) and by `perf record -g`
  (frame pointers) and `--call-graph dwarf`, each with perf report: the
  share of samples whose stack holds all 20 Python frames, and CPU."""
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
import kilntest  # noqa: E402
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


MEMORY_PROCESSES = int(os.environ.get("MEMORY_PROCESSES", "16"))
MANY_FUNCTIONS = "\n".join(
    [f"def f{i}(x):\n    return sum(range(x)) + {i}" for i in range(200)] +
    ["fs = [" + ", ".join(f"f{i}" for i in range(200)) + "]",
     "while True:", "    for f in fs:", "        f(200)"])


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


def watch(kiln, read):
    """Calls read(kiln_pid) every 50 ms until kiln exits (OSError once it
    is gone is ignored), in a thread; returns the thread, to join."""
    def poll():
        while kiln.poll() is None:
            try:
                read(kiln.pid)
            except OSError:
                pass
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    return poller


def vm_hwm_kib(pid):
    found = re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read())
    return int(found.group(1)) if found else 0


def run(target_pid, extra):
    """kiln on target_pid for one window: (run ns, runs, recorded samples, python frames,
    unwinder ns, unwound stacks, RSS KiB)."""
    out = tempfile.mkdtemp(prefix="kiln-bench-python-")
    kiln = subprocess.Popen([KILN, "-v", "--pid", str(target_pid), "--frequency", str(FREQ),
                             "--duration", str(SECONDS), "--iterations", "1", "--output-dir",
                             out] + extra, stderr=subprocess.PIPE, text=True)
    runs, rss = [(0, 0)], [0]

    def read(pid):
        # Until kiln detaches its programs at exit: the last reading is the whole window's.
        runs[0] = max(runs[0], sampler_runs(pid))
        rss[0] = max(rss[0], vm_hwm_kib(pid))

    poller = watch(kiln, read)
    text = kiln.stderr.read()
    kiln.wait()
    poller.join()
    recorded = int(re.search(r"(\d+) recorded", text).group(1))
    frames = re.search(r"python: \d+ stacks with Python frames, (\d+) frames", text)
    unwind = re.search(r"unwind: (\d+) user stacks from CFI in (\d+) ns", text)
    return (runs[0][0], runs[0][1], recorded, int(frames.group(1)) if frames else 0,
            int(unwind.group(2)) if unwind else 0, int(unwind.group(1)) if unwind else 0, rss[0])


def peak_rss_kib(pids, extra):
    """kiln's peak RSS (VmHWM, KiB) over one window on pids, and its Python log line."""
    out = tempfile.mkdtemp(prefix="kiln-bench-python-")
    args = [KILN, "-v", "--frequency", str(FREQ), "--duration", str(SECONDS), "--iterations",
            "1", "--output-dir", out] + extra
    for pid in pids:
        args += ["--pid", str(pid)]
    kiln = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    peak = [0]
    poller = watch(kiln, lambda pid: peak.__setitem__(0, max(peak[0], vm_hwm_kib(pid))))
    text = kiln.stderr.read()
    kiln.wait()
    poller.join()
    code = re.search(r"python code objects: (\d+) frames resolved.*?(\d+) cached in ([\d.]+) MiB",
                     text)
    return peak[0], code.group(0) if code else ""


def memory(python):
    """Peak RSS with --python on and off over the same processes."""
    procs = [subprocess.Popen([python, "-c", MANY_FUNCTIONS]) for _ in range(MEMORY_PROCESSES)]
    try:
        time.sleep(2)
        pids = [p.pid for p in procs]
        rows = [(label, *peak_rss_kib(pids, extra)) for label, extra in
                (("--python off", ["--python", "off"]), ("--python on", []),
                 ("--python off", ["--python", "off"]), ("--python on", []))]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    print(f"{MEMORY_PROCESSES} CPython 3.12 processes, each calling 200 functions of its own, "
          f"{FREQ} Hz, {SECONDS} s, one kiln on all of them (`--pid` each)\n")
    print("| kiln | peak RSS | code objects |")
    print("| --- | --- | --- |")
    for label, rss, code in rows:
        print(f"| {label} | {rss / 1024:.1f} MiB | {code} |")
    on = min(r for label, r, _ in rows if label == "--python on")
    off = min(r for label, r, _ in rows if label == "--python off")
    print(f"\nPer Python process (lower peak of each, difference / {MEMORY_PROCESSES}): "
          f"{(on - off) / 1024 / MEMORY_PROCESSES:.2f} MiB")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kiln_share(python_pid, extra):
    """(samples, samples with all DEPTH rec frames, kiln CPU s) of one kiln window."""
    out = tempfile.mkdtemp(prefix="kiln-bench-python-")
    kiln = subprocess.Popen([KILN, "--pid", str(python_pid), "--frequency", str(FREQ),
                             "--duration", str(SECONDS), "--iterations", "1", "--output-dir",
                             out] + extra, stderr=subprocess.DEVNULL)
    cpu = [0.0]
    watch(kiln, lambda pid: cpu.__setitem__(0, cpu_seconds(pid))).join()
    profile = kilntest.read_profile(kilntest.profiles(out)[0])
    total = full = 0
    for sample in profile.samples:
        names = profile.stack(sample)
        total += sample["values"][0]
        # "rec" read in BPF; "py::rec:<string>" from -X perf's perf map.
        if sum(1 for n in names if re.fullmatch(r"(py::)?rec(:.*)?", n)) >= DEPTH - 1:
            full += sample["values"][0]
    return total, full, cpu[0]


def perf_share(python_pid, mode):
    """(samples, samples with all DEPTH rec frames, perf record + report CPU s)."""
    import resource
    data = tempfile.mktemp(prefix="kiln-bench-perf-")
    graph = ["-g"] if mode == "fp" else ["--call-graph", "dwarf"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["perf", "record", "-q", "-F", str(FREQ), *graph, "-p", str(python_pid),
                    "-o", data, "--", "sleep", str(SECONDS)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["perf", "report", "-i", data, "--stdio"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    os.unlink(data)
    total = full = 0
    for block in script.stdout.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        total += 1
        if sum(1 for line in lines if "py::rec:" in line) >= DEPTH - 1:
            full += 1
    return total, full, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def xperf(python):
    """-X perf's perf map and trampolines against kiln's BPF frames."""
    proc = subprocess.Popen([python, "-X", "perf", "-c", PROGRAM])
    rows = []
    try:
        time.sleep(1)
        for label, extra in (("kiln --python on", []),
                             ("kiln --python off (the -X perf map)", ["--python", "off"])):
            total, full, cpu = kiln_share(proc.pid, extra)
            rows.append((label, total, full, cpu))
        for label, mode in (("perf record -g + perf report", "fp"),
                            ("perf record --call-graph dwarf + perf report", "dwarf")):
            rows.append((label, *perf_share(proc.pid, mode)))
    finally:
        proc.kill()
        proc.wait()
    print(f"CPython 3.12 -X perf, {DEPTH}-deep Python recursion, {FREQ} Hz, {SECONDS} s\n")
    print("| profiler | samples | with all 20 Python frames | process CPU, s |")
    print("| --- | --- | --- | --- |")
    for label, total, full, cpu in rows:
        print(f"| {label} | {total} | {full} ({100 * full / max(total, 1):.1f}%) | {cpu:.2f} |")


def main():
    if "--memory" in sys.argv[1:] or "--xperf" in sys.argv[1:]:
        python = python312()
        if not python:
            sys.exit("bench/python.py: no pyenv CPython 3.12")
        if "--memory" in sys.argv[1:]:
            memory(python)
        if "--xperf" in sys.argv[1:]:
            xperf(python)
        return
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
