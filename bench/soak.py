# SPDX-License-Identifier: Apache-2.0
"""The soak (issue 13): kiln left running whole-host with 5 s windows on the
realistic host of bench/hostmix.py for --minutes (60), its RSS, anonymous
RSS, CPU and BPF map memory read every 10 s. Says whether RSS is flat after
the first minutes: the least-squares slope over the second half of the run.
Writes its section into bench/RESULTS.md (replacing an older one), or with
--print only prints it. Needs root.
  python3 bench/soak.py [--minutes N] [--print]
  python3 bench/soak.py --extract FILE   prints FILE's soak section (bench/run.sh keeps it)"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostmix  # noqa: E402
from hostmix import HostMix, KilnWatch, loadavg  # noqa: E402

HEADING = "## Soak: the realistic host, left running"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
FREQ = 99
WINDOW = 5
INTERVAL = 10
# RSS counts as flat when the second half's fitted growth is within this.
FLAT_MIB = 1.0
FLAT_SHARE = 0.01
WARMUP = 8
JVM_MAP_EVERY = 300  # s: the JVM's code cache grows, its perf map is a snapshot


def section_bounds(lines):
    """[first, end) of the soak section in RESULTS.md's lines, or None."""
    for first, line in enumerate(lines):
        if line.startswith(HEADING):
            end = first + 1
            while end < len(lines) and not lines[end].startswith("## "):
                end += 1
            return first, end
    return None


def extract(path):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return ""
    bounds = section_bounds(lines)
    return "\n".join(lines[bounds[0]:bounds[1]]).rstrip() + "\n" if bounds else ""


def splice(path, section):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        lines = []
    bounds = section_bounds(lines)
    new = section.rstrip().splitlines() + [""]
    if bounds:
        lines[bounds[0]:bounds[1]] = new
    else:
        lines += [""] + new if lines and lines[-1] else new
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def soak(minutes):
    out = tempfile.mkdtemp(prefix="kiln-bench-soak-")
    mix = HostMix()
    rows = []  # (s, rss KiB, anon KiB, hwm KiB, cpu s, bpf ns, map bytes, tracked, load)
    try:
        mix.start()
        time.sleep(WARMUP)
        mix.write_jvm_perf_map()
        with hostmix.BpfStats():
            watch = KilnWatch(["--frequency", str(FREQ), "--duration", str(WINDOW),
                               "--output-dir", out, "--output-max-bytes", "32M", "--verbose"],
                              poll=INTERVAL)
            try:
                start = time.monotonic()
                last_map = start
                end = start + minutes * 60
                while time.monotonic() < end and watch.proc.poll() is None:
                    time.sleep(min(INTERVAL, max(end - time.monotonic(), 0)))
                    now = time.monotonic()
                    if now - last_map >= JVM_MAP_EVERY:
                        mix.write_jvm_perf_map()
                        last_map = now
                    rss, anon, hwm = hostmix.status_kib(watch.proc.pid, "VmRSS", "RssAnon",
                                                        "VmHWM")
                    cpu, bpf, maps = watch.snapshot()
                    tracked = [int(n) for n in re.findall(r"(\d+) processes tracked",
                                                          watch.log())]
                    rows.append((now - start, rss, anon, hwm, cpu, bpf, sum(maps.values()),
                                 tracked[-1] if tracked else 0, loadavg()))
                    print(f"soak {rows[-1][0] / 60:.1f} min: RSS {rss / 1024:.1f} MiB, anon "
                          f"{anon / 1024:.1f}, CPU {cpu:.1f} s, load {rows[-1][-1]}",
                          file=sys.stderr)
            finally:
                code = watch.stop()
    finally:
        mix.stop()
        shutil.rmtree(out, ignore_errors=True)
    if code not in (0, None) or not rows:
        raise RuntimeError(f"kiln exited {code} during the soak:\n{watch.log()[-3000:]}")
    return rows, mix.missing


def report(minutes, rows, missing):
    mib = lambda kib: kib / 1024  # noqa: E731
    duration = rows[-1][0]
    half = [r for r in rows if r[0] >= duration / 2]
    rss_slope = slope([(r[0] / 3600, mib(r[1])) for r in half])  # MiB per hour
    anon_slope = slope([(r[0] / 3600, mib(r[2])) for r in half])
    half_hours = (half[-1][0] - half[0][0]) / 3600
    growth = rss_slope * half_hours
    mean_rss = sum(mib(r[1]) for r in half) / len(half)
    flat = growth <= max(FLAT_MIB, FLAT_SHARE * mean_rss)
    cpu_half = (half[-1][4] - half[0][4]) / (half[-1][0] - half[0][0])
    bpf_half = (half[-1][5] - half[0][5]) / 1e9 / (half[-1][0] - half[0][0])
    cpu_all = rows[-1][4] / duration
    marks = [0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120]
    shown = []
    for mark in marks:
        row = min(rows, key=lambda r: abs(r[0] - mark * 60))
        if abs(row[0] - mark * 60) <= INTERVAL and row not in shown:
            shown.append(row)
    if rows[-1] not in shown:
        shown.append(rows[-1])
    lines = [f"""{HEADING}

kiln (commit {hostmix.kiln_commit()}) left running whole-host at {FREQ} Hz with {WINDOW} s windows (`--output-max-bytes 32M`,
otherwise defaults) for {duration / 60:.1f} minutes on the realistic host of the
section above (`bench/soak.py --minutes {minutes:g}`{', missing: ' + ', '.join(missing) if missing else ''}: the native programs, the
short-lived churn, the coreutils loop and every runtime, all CPU-bound), read
every {INTERVAL} s from `/proc/PID/status` (VmRSS, RssAnon, VmHWM), `/proc/PID/stat`
and the fdinfo of its BPF descriptors (`kernel.bpf_stats_enabled=1`).

| minute | RSS, MiB | anonymous, MiB | peak (VmHWM), MiB | CPU so far, s | BPF map memory, MiB | processes tracked | load |
| --- | --- | --- | --- | --- | --- | --- | --- |"""]
    for r in shown:
        lines.append(f"| {r[0] / 60:.1f} | {mib(r[1]):.1f} | {mib(r[2]):.1f} | {mib(r[3]):.1f} | "
                     f"{r[4]:.1f} | {r[6] / 2**20:.1f} | {r[7]} | {r[8]} |")
    lines.append(f"""
Over the second half ({half[0][0] / 60:.1f}-{duration / 60:.1f} min, {len(half)} readings): RSS
{min(mib(r[1]) for r in half):.1f}-{max(mib(r[1]) for r in half):.1f} MiB, fitted slope
{rss_slope:+.2f} MiB/hour ({growth:+.2f} MiB over that half), anonymous
{anon_slope:+.2f} MiB/hour: RSS is **{'flat' if flat else 'still growing'}** (flat: the
half's fitted growth within {FLAT_MIB:g} MiB or {FLAT_SHARE:.0%} of its mean RSS).
Peak RSS {mib(rows[-1][3]):.1f} MiB (target: at most 40 MiB). CPU: {cpu_half:.2%} of a
core over the second half, {cpu_all:.2%} over the whole run (start-up included),
and its BPF programs {bpf_half:.2%} of a core more over the second half.
""")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--print", action="store_true", help="print only; leave RESULTS.md")
    parser.add_argument("--extract", metavar="FILE", help="print FILE's soak section and exit")
    args = parser.parse_args()
    if args.extract:
        sys.stdout.write(extract(args.extract))
        return
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    rows, missing = soak(args.minutes)
    section = report(args.minutes, rows, missing)
    if args.print:
        print(section)
    else:
        splice(RESULTS, section)
        print(f"soak: wrote its section into {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
