# SPDX-License-Identifier: Apache-2.0
"""The realistic host (issue 13): every runtime this machine has, busy side
by side with short-lived processes and the ground-truth native programs
(bench/hostmix.py), profiled whole-host at 99 Hz by kiln and, over the same
seconds, by `perf record -a -g` + `perf report`. Measures kiln's start-up
(1 s windows from a fresh start: when stacks are full, and the CPU it took),
its steady-state cost per window (process CPU and BPF run time apart), peak
RSS and its anonymous part, BPF map memory, and per kind of program the share
of samples whose stack is complete, read back by `go tool pprof -raw`; perf's
own completeness per kind for reference. Needs root. Prints Markdown.
With --profile-kiln instead: where kiln's steady CPU goes, from a second
kiln profiling the first (`--pid`, 999 Hz, DWARF unwinding) over the steady
windows, as `go tool pprof -top` lines. --detail: the commonest incomplete
stacks per kind, on stderr.
  FREQ (99), HOST_WINDOW (10 s), HOST_WINDOWS (3 steady windows),
  HOST_STARTUP_WINDOWS (6), HOST_WARMUP (8 s), HOST_SKIP (2 windows before
  the steady ones) tune it; HOST_KEEP_PROFILE=PATH keeps --profile-kiln's profile."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostmix  # noqa: E402
from hostmix import KINDS, HostMix, KilnWatch, loadavg  # noqa: E402

FREQ = int(os.environ.get("FREQ", "99"))
WINDOW = int(os.environ.get("HOST_WINDOW", "10"))
WINDOWS = int(os.environ.get("HOST_WINDOWS", "3"))
STARTUP_WINDOWS = int(os.environ.get("HOST_STARTUP_WINDOWS", "6"))
WARMUP = float(os.environ.get("HOST_WARMUP", "8"))
# Windows left out before the steady ones: the first still builds tables and
# reads debug information for what it met at start.
SKIP = int(os.environ.get("HOST_SKIP", "2"))
# Issue 13's targets.
RSS_TARGET_MIB = 40
CORE_TARGET = 0.005
PERF_RATIO_TARGET = 0.2
TEMPORARY = []  # directories removed on exit
WROTE = re.compile(r"info: wrote (\S+\.pb\.gz): (\d+) samples")


def written(watch):
    """(seconds since start, cpu s, bpf ns, profile path, samples) per window."""
    out = []
    for t, cpu, bpf, line in watch.lines:
        match = WROTE.search(line)
        if match:
            out.append((t, cpu, bpf, match.group(1), int(match.group(2))))
    return out


def startup(mix):
    """A fresh kiln with 1 s windows: when each kind's stacks become full."""
    out = tempfile.mkdtemp(prefix="kiln-bench-startup-")
    TEMPORARY.append(out)
    load = loadavg()
    watch = KilnWatch(["--frequency", str(FREQ), "--duration", "1", "--iterations",
                       str(STARTUP_WINDOWS), "--output-dir", out, "--verbose"], poll=0.1)
    watch.proc.wait()
    watch.stop()
    sampling = watch.wait_line(r"info: sampling ")
    windows = written(watch)
    kinds = mix.kinds()
    tallies = [hostmix.kiln_tally([w[3]], kinds) for w in windows]
    full = next((i for i, t in enumerate(tallies)
                 if (t.share("native") or 0) >= 0.99), None)
    return {"load": load, "sampling": sampling, "windows": windows, "tallies": tallies,
            "full": full, "hwm_kib": watch.peak["hwm_kib"], "log": watch.log()}


def steady(mix):
    """kiln with WINDOW s windows; perf record -a -g over the WINDOWS after SKIP."""
    out = tempfile.mkdtemp(prefix="kiln-bench-steady-")
    TEMPORARY.append(out)
    data = os.path.join(out, "perf.data")
    load_start = loadavg()
    watch = KilnWatch(["--frequency", str(FREQ), "--duration", str(WINDOW), "--output-dir",
                       out, "--verbose"])
    try:
        watch.wait_line(r"info: wrote ", SKIP)
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", str(FREQ), "-o", data,
                                 "--", "sleep", str(WINDOW * WINDOWS)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(perf.pid, 0)
        perf.returncode = 0
        record_cpu, record_rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
        watch.wait_line(r"info: wrote ", SKIP + WINDOWS)
    finally:
        watch.stop()
    load_end = loadavg()
    windows = written(watch)[SKIP - 1:SKIP + WINDOWS]
    report_cpu, report_rss = hostmix.run_measured(["perf", "report", "-i", data, "--stdio"],
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL)
    kinds = mix.kinds()
    kiln = hostmix.kiln_tally([w[3] for w in windows[1:]], kinds)
    perf_complete = hostmix.perf_tally(data, kinds)
    first, last = windows[0], windows[-1]
    per_window = [(b[1] - a[1], (b[2] - a[2]) / 1e9) for a, b in zip(windows, windows[1:])]
    log = watch.log()
    unwind = [tuple(map(int, m)) for m in re.findall(
        r"unwind: (\d+) user stacks from CFI(?: in \d+ ns)?, (\d+) complete, (\d+) "
        r"before tables were ready",
        log)][SKIP:SKIP + WINDOWS]
    tracked = [int(n) for n in re.findall(r"(\d+) processes tracked", log)][SKIP:SKIP + WINDOWS]
    return {"load": (load_start, load_end), "seconds": last[0] - first[0],
            "cpu": last[1] - first[1], "bpf": (last[2] - first[2]) / 1e9,
            "per_window": per_window, "samples": sum(w[4] for w in windows[1:]),
            "record_cpu": record_cpu, "record_rss": record_rss, "report_cpu": report_cpu,
            "report_rss": report_rss, "kiln": kiln, "perf": perf_complete,
            "hwm_kib": watch.peak["hwm_kib"], "anon_kib": watch.peak["anon_kib"],
            "map_bytes": watch.peak["map_bytes"], "unwind": unwind, "tracked": tracked}


def pct(tally, kind):
    complete, with_user, total = tally.counts[kind]
    if not with_user:
        return "(no samples)"
    return f"{complete}/{with_user} = {complete / with_user:.1%}"


def met(ok):
    return "met" if ok else "**not met**"


def report(mix, jvm_map, up, st):
    seconds = st["seconds"]
    kiln_cost = st["cpu"] + st["bpf"]
    perf_cost = st["record_cpu"] + st["report_cpu"]
    core = kiln_cost / seconds
    hwm = max(up["hwm_kib"], st["hwm_kib"]) / 1024
    sampling_t, sampling_cpu = up["sampling"][0], up["sampling"][1]
    print(f"""## Realistic host: every runtime side by side (issue 13)

The host as users run it, on this machine's {os.cpu_count()} CPUs: two ground-truth
native programs (`split`, the 6:3:1 split, with frame pointers and as
`split_nofp`, gcc -O2 without), a bash loop starting `short_spin_nofp` for
20-50 ms of CPU one after another, a bash loop of coreutils on small inputs
(`ls -l /usr/bin`, `sha256sum` and `gzip -c` of 16 KiB), CPython
(a pure-Python busy function), Node (`--perf-basic-prof`, a recursive JS
function), the JVM (`-XX:+PreserveFramePointer`, a busy Java method; no
perf-map agent is installed, so JDK 17's own `jcmd PID Compiler.perfmap`
writes /tmp/perf-PID.map once the method is compiled{'' if jvm_map else ': it failed this run'})
and perl (a busy sub){', missing here: ' + ', '.join(mix.missing) if mix.missing else ''}. Every one is CPU-bound, so
the CPUs are oversubscribed; other users' programs run too (load average
noted), and each sample is judged by its process id, so theirs are left out.
kiln (commit {hostmix.kiln_commit()}) profiles the whole host at {FREQ} Hz with default options. A stack is
complete when its user part reaches `main`, `_start` or a thread's start
(`start_thread`, `clone3`) and has no frame of kiln's for a cut or lost
stack (`[truncated: ...]`, `[stack ...]`); samples with no user stack at all
(in execve, at exit) are left out of the share. kiln's profiles are read back
with `go tool pprof -raw`, perf's with `perf script`.

### Steady state: kiln against perf over the same {seconds:.0f} s

kiln with {WINDOW} s windows; once its first {SKIP} windows are written (start-up
over), `perf record -a -g -F {FREQ} -- sleep {WINDOW * WINDOWS}` runs beside it for the next
{WINDOWS} windows, then `perf report --stdio` reads its data. kiln's cost is its
process CPU (`/proc/PID/stat`, all threads) plus the run time of its BPF
programs (`kernel.bpf_stats_enabled=1`, `run_time_ns` in the fdinfo of its
program descriptors), over those windows; perf's is perf record's and perf
report's CPU (its in-kernel sampling is not counted, which favours perf).
Load average {st['load'][0]} at the start, {st['load'][1]} at the end.

| | kiln | perf record + report | kiln / perf |
| --- | --- | --- | --- |
| process CPU, s | {st['cpu']:.3f} | {st['record_cpu']:.3f} + {st['report_cpu']:.3f} = {perf_cost:.3f} | |
| BPF program time, s | {st['bpf']:.4f} | (not measurable) | |
| total cost, s | {kiln_cost:.3f} | {perf_cost:.3f} | {kiln_cost / perf_cost:.2f} |
| of one core | {core:.2%} | {perf_cost / seconds:.2%} | |
| per {WINDOW} s window: process CPU / BPF, s | {' · '.join(f'{c:.2f} / {b:.3f}' for c, b in st['per_window'])} | | |
| peak RSS (VmHWM), MiB | {hwm:.1f} | {st['record_rss'] / 1024:.1f} (record), {st['report_rss'] / 1024:.1f} (report) | |
| its anonymous part (RssAnon, highest seen), MiB | {st['anon_kib'] / 1024:.1f} | | |
| BPF map memory (memlock of its maps, highest seen), MiB | {st['map_bytes'] / 2**20:.1f} | | |
| samples in kiln's profiles | {st['samples']} | | |
| processes tracked per window (kiln's log) | {', '.join(map(str, st['tracked']))} | | |

Targets (issue 13): steady state at most {CORE_TARGET:.1%} of a core
({met(core <= CORE_TARGET)}: {core:.2%}) and at most 1/5 of perf's
({met(kiln_cost <= PERF_RATIO_TARGET * perf_cost)}: {kiln_cost / perf_cost:.2f}); peak RSS at most
{RSS_TARGET_MIB} MiB ({met(hwm <= RSS_TARGET_MIB)}: {hwm:.1f} MiB, the start-up run included).

Stacks complete, per kind of program, over the same windows:

| program | kiln | target | perf record -a -g (frame pointers) |
| --- | --- | --- | --- |""")
    for kind, description, target in KINDS:
        share = st["kiln"].share(kind)
        goal = "" if target is None else \
            f"≥ {target:.0%}: {met(share is not None and share >= target)}"
        print(f"| {description} | {pct(st['kiln'], kind)} | {goal} | {pct(st['perf'], kind)} |")
    unwind = [sum(u[i] for u in st["unwind"]) for i in range(3)] if st["unwind"] else [0, 0, 0]
    print(f"""
kiln's own account over those windows: {unwind[0]} user stacks unwound from
CFI, {unwind[1]} of them complete, {unwind[2]} walked by frame pointers because
their process's tables were not ready yet.

### Start-up

A fresh kiln on the same host with 1 s windows ({STARTUP_WINDOWS} of them), load average
{up['load']}: it logged that it samples {sampling_t:.2f} s after it started, having used
{sampling_cpu:.2f} s of CPU.""")
    if up["full"] is None:
        print(f"Native stacks were not 99% complete in any of its {len(up['windows'])} windows.")
    else:
        w = up["windows"][up["full"]]
        print(f"Its window {up['full'] + 1} was the first with native stacks 99% complete, "
              f"written {w[0]:.2f} s after start, with {w[1]:.2f} s of CPU and "
              f"{w[2] / 1e9:.3f} s of BPF time used by then.")
    print(f"Peak RSS of this run {up['hwm_kib'] / 1024:.1f} MiB.\n")
    print("| program | " + " | ".join(f"window {i + 1}" for i in range(len(up["windows"])))
          + " |")
    print("| --- |" + " --- |" * len(up["windows"]))
    for kind, description, _ in KINDS:
        cells = []
        for t in up["tallies"]:
            share = t.share(kind)
            cells.append("" if share is None else f"{share:.0%} ({t.counts[kind][1]})")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print(f"""
(share complete, and in parentheses the samples with a user stack.)
Window end times after start, s: {', '.join(f'{w[0]:.1f}' for w in up['windows'])};
kiln's CPU by then, s: {', '.join(f'{w[1]:.2f}' for w in up['windows'])}.
""")


def profile_kiln(mix):
    """kiln profiled by kiln over WINDOWS steady windows; prints pprof's top."""
    out = tempfile.mkdtemp(prefix="kiln-bench-self-")
    TEMPORARY.append(out)
    watch = KilnWatch(["--frequency", str(FREQ), "--duration", str(WINDOW), "--output-dir",
                       os.path.join(out, "profiled"), "--verbose"])
    try:
        watch.wait_line(r"info: wrote ", SKIP)
        before = watch.snapshot()
        subprocess.run([hostmix.KILN, "--pid", str(watch.proc.pid), "--frequency", "999",
                        "--duration", str(WINDOW * WINDOWS), "--iterations", "1",
                        "--output-dir", os.path.join(out, "self")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = watch.snapshot()
    finally:
        watch.stop()
    print(f"kiln over {WINDOW * WINDOWS} s of steady windows: {after[0] - before[0]:.2f} s CPU, "
          f"{(after[1] - before[1]) / 1e9:.3f} s BPF; load {loadavg()}")
    profile = os.path.join(out, "self", os.listdir(os.path.join(out, "self"))[0])
    if os.environ.get("HOST_KEEP_PROFILE"):
        shutil.copy(profile, os.environ["HOST_KEEP_PROFILE"])
    for flag in ("-top", "-top -cum", "-top -cum -focus=window_profile__write"):
        top = subprocess.run(["go", "tool", "pprof", *flag.split(), "-nodecount=40", profile],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        print(top.stdout)
    print(watch.log())


def main():
    mix = HostMix()
    try:
        mix.start()
        time.sleep(WARMUP)  # the JIT compilers settle, the churn loops run
        jvm_map = mix.write_jvm_perf_map()
        if "--profile-kiln" in sys.argv[1:]:
            with hostmix.BpfStats():
                profile_kiln(mix)
            return
        with hostmix.BpfStats():
            up = startup(mix)
            st = steady(mix)
    finally:
        mix.stop()
        for directory in TEMPORARY:
            shutil.rmtree(directory, ignore_errors=True)
    report(mix, jvm_map, up, st)
    if "--detail" in sys.argv[1:]:
        st["kiln"].print_incomplete("kiln steady")
        st["perf"].print_incomplete("perf steady")
        for i, tally in enumerate(up["tallies"][:2]):
            tally.print_incomplete(f"kiln start-up window {i + 1}")


if __name__ == "__main__":
    main()
