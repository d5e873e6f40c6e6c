# SPDX-License-Identifier: Apache-2.0
"""kiln's steady-state cost on the realistic host (bench/hostmix.py), two
builds side by side on the same load: `cost.py BEFORE_KILN AFTER_KILN`
(either may be the same binary). Both profile the whole host at FREQ Hz
with WINDOW s windows; once each has written SKIP windows, SLICES slices of
SLICE s are measured, and in each `perf record -a -g` runs over the same
seconds (then `perf report --stdio` reads it). Per slice and kiln: process
CPU (/proc/PID/stat), BPF run time (kernel.bpf_stats_enabled), and that
against perf record + report's CPU. Then, from each kiln's profiles of the
measured windows, the share of frames in files with DWARF that have a
line. Needs root. Prints Markdown.
  FREQ (99), HOST_WINDOW (10), HOST_SKIP (2), COST_SLICES (3), COST_SLICE (30)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostmix  # noqa: E402
from hostmix import HostMix, KilnWatch, BpfStats, loadavg  # noqa: E402

FREQ = int(os.environ.get("FREQ", "99"))
WINDOW = int(os.environ.get("HOST_WINDOW", "10"))
SKIP = int(os.environ.get("HOST_SKIP", "2"))
SLICES = int(os.environ.get("COST_SLICES", "3"))
SLICE = int(os.environ.get("COST_SLICE", "30"))
WROTE = re.compile(r"info: wrote (\S+\.pb\.gz)")
_DWARF = {}  # path -> whether it (or its debug file by build id) has DWARF


def has_dwarf(path):
    """Whether the file, or the debug file its build id names, has .debug_info."""
    if path not in _DWARF:
        found = False
        for candidate in [path] + debug_file(path):
            out = subprocess.run(["readelf", "-S", "-W", candidate], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True).stdout
            if re.search(r"\.z?debug_info\s+PROGBITS", out):
                found = True
                break
        _DWARF[path] = found
    return _DWARF[path]


def debug_file(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    match = re.search(r"Build ID: ([0-9a-f]{2})([0-9a-f]+)", out)
    if not match:
        return []
    debug = f"/usr/lib/debug/.build-id/{match.group(1)}/{match.group(2)}.debug"
    return [debug] if os.path.exists(debug) else []


def line_share(paths):
    """(frames with a line, frames, {file: (without, frames)}) over the
    samples, in files with DWARF; `_start` (crt1's, which no DWARF covers)
    left out."""
    with_line = total = 0
    files = {}
    for path in paths:
        p = hostmix.read_profile(path)
        for s in p.samples:
            for loc_id in s["locations"]:
                loc = p.locations.get(loc_id)
                if not loc or not loc["mapping"]:
                    continue
                mapping = p.mappings.get(loc["mapping"], "").split()
                file = next((f for f in mapping if f.startswith("/")), None)
                if not file or not os.path.exists(file) or not has_dwarf(file):
                    continue
                if [name for name, _ in loc["lines"]] == ["_start"]:
                    continue
                n = s["values"][0]
                without, frames = files.get(file, (0, 0))
                total += n
                if loc["lines"] and all(line and not line.endswith(":0")
                                        for _, line in loc["lines"]):
                    with_line += n
                else:
                    without += n
                files[file] = (without, frames + n)
    return with_line, total, files


def main():
    binaries = sys.argv[1:3]
    if len(binaries) != 2:
        sys.exit("usage: cost.py BEFORE_KILN AFTER_KILN")
    out = tempfile.mkdtemp(prefix="kiln-bench-cost-")
    mix = HostMix()
    slices = []  # per slice: (load, perf cpu, [(cpu, bpf) per kiln])
    watches = []
    try:
        mix.start()
        time.sleep(8)
        mix.write_jvm_perf_map()
        with BpfStats():
            for i, binary in enumerate(binaries):
                hostmix.KILN = binary
                watches.append(KilnWatch(["--frequency", str(FREQ), "--duration", str(WINDOW),
                                          "--output-dir", os.path.join(out, str(i)),
                                          "--verbose"]))
            for w in watches:
                w.wait_line(r"info: wrote ", SKIP)
            first_profile = [len([e for e in w.lines if WROTE.search(e[3])]) for w in watches]
            for _ in range(SLICES):
                data = os.path.join(out, "perf.data")
                before = [w.snapshot() for w in watches]
                load = loadavg()
                record_cpu, _ = hostmix.run_measured(
                    ["perf", "record", "-q", "-a", "-g", "-F", str(FREQ), "-o", data, "--",
                     "sleep", str(SLICE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                after = [w.snapshot() for w in watches]
                report_cpu, _ = hostmix.run_measured(
                    ["perf", "report", "-i", data, "--stdio"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
                slices.append((load, record_cpu + report_cpu,
                               [(a[0] - b[0], (a[1] - b[1]) / 1e9) for a, b in zip(after, before)]))
            for w in watches:
                w.stop()
        profiles = [[WROTE.search(e[3]).group(1) for e in w.lines if WROTE.search(e[3])][n:]
                    for w, n in zip(watches, first_profile)]
        lines = [line_share(p) for p in profiles]
    finally:
        for w in watches:
            w.stop()
        mix.stop()
    print(f"Side by side on the host mix, {FREQ} Hz, {WINDOW} s windows, {SLICES} slices of "
          f"{SLICE} s after {SKIP} windows; perf record -a -g + report over each slice.\n")
    print("| slice | load | perf s | " + " | ".join(
        f"kiln {i} CPU + BPF s | of a core | / perf" for i in range(2)) + " |")
    print("| --- | --- | --- |" + " --- | --- | --- |" * 2)
    for n, (load, perf, kilns) in enumerate(slices):
        cells = [f"{c:.2f} + {b:.3f} | {(c + b) / SLICE:.2%} | {(c + b) / perf:.2f}"
                 for c, b in kilns]
        print(f"| {n + 1} | {load} | {perf:.2f} | " + " | ".join(cells) + " |")
    for i, (binary, (with_line, total, files)) in enumerate(zip(binaries, lines)):
        share = f"{with_line / total:.1%}" if total else "n/a"
        print(f"\nkiln {i} ({binary}): frames in files with DWARF that have a line: "
              f"{with_line}/{total} = {share}; without a line, by file:")
        for file, (without, frames) in sorted(files.items(), key=lambda f: -f[1][1])[:8]:
            print(f"- {file}: {without}/{frames}")
    for i, w in enumerate(watches):
        dwarf = [line for line in w.log().splitlines() if "DWARF:" in line]
        print(f"\nkiln {i} last DWARF line: {dwarf[-1] if dwarf else '(none)'}")
        print(f"kiln {i} peak RSS {w.peak['hwm_kib'] / 1024:.1f} MiB, "
              f"anon {w.peak['anon_kib'] / 1024:.1f} MiB")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
