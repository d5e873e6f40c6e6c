# SPDX-License-Identifier: Apache-2.0
"""CPU profiling end to end: real BPF on this kernel, ground-truth programs,
profiles read back with `go tool pprof -raw`."""
import math
import os
import signal
import subprocess
import time

from kilntest import (MIN_SAMPLES, ChildCpuTimes, check, check_samples_match_cpu, finish,
                      go_duration_seconds,
                      kiln_bpf_programs, prog, profile_process, profiles, read_profile, require_root, run_kiln,
                      start, start_kiln, stop, tmpdir, wait_for, wait_sampling)


def label(sample, key):
    values = sample["labels"].get(key)
    return values[0] if values else None


def test_split_ratio_and_exact_stacks():
    """6:3:1 over hot_a/hot_b/hot_c; every stack must be exactly leaf, run_round, main."""
    freq = 499
    with ChildCpuTimes() as cpu:
        p, pid, _ = profile_process([prog("split"), "7"],
                                    ["--frequency", str(freq), "--duration", "5"], "split")
    if not p:
        return
    samples = sum(s["values"][0] for s in p.samples)
    check_samples_match_cpu("split", samples, cpu.in_window(pid, p), freq)
    check("split: period type cpu/nanoseconds", p.period_type == "cpu nanoseconds",
          p.period_type)
    check("split: period is 1e9/frequency", p.period == 10**9 // freq, p.period)
    check("split: the profile says what made it",
          any(c.startswith("kiln ") and f"{freq} Hz" in c for c in p.comments), p.comments)
    check("split: sample types samples/count and cpu/nanoseconds",
          p.sample_types == ["samples/count", "cpu/nanoseconds"], p.sample_types)
    check("split: cpu/nanoseconds = count * period",
          all(s["values"][1] == s["values"][0] * p.period for s in p.samples))
    check("split: labels pid/tid/comm/thread_name are the process's",
          p.samples and all(label(s, "pid") == str(pid) and label(s, "tid") == str(pid) and
                            label(s, "comm") == "split" and label(s, "thread_name") == "split"
                            for s in p.samples),
          [s["labels"] for s in p.samples[:3]])

    counts = {"hot_a": 0, "hot_b": 0, "hot_c": 0}
    exact = total = 0
    bad = []
    for s in p.samples:
        stack = p.stack(s)
        n = s["values"][0]
        if not stack or stack[0] not in counts:
            continue
        counts[stack[0]] += n
        total += n
        if stack[1:3] == ["run_round", "main"]:
            exact += n
        else:
            bad.append(stack)
    # Only the clock read between rounds is elsewhere.
    check("split: >= 99% of samples in hot_*", total >= MIN_SAMPLES and total >= 0.99 * samples,
          f"{total}/{samples}")
    if total == 0:
        return
    check("split: >= 99% of stacks exactly hot_* <- run_round <- main",
          exact >= 0.99 * total, f"{exact}/{total}; e.g. {bad[:3]}")
    for name, share in (("hot_a", 0.6), ("hot_b", 0.3), ("hot_c", 0.1)):
        got = counts[name] / total
        # Five standard deviations of a binomial share, plus 2 points for timing noise.
        tolerance = 5 * math.sqrt(share * (1 - share) / total) + 0.02
        check(f"split: {name} share {got:.3f} within {tolerance:.3f} of {share}",
              abs(got - share) <= tolerance, counts)


def test_pid_filter_and_late_thread():
    """--pid keeps only that process, including a thread created after kiln started."""
    with ChildCpuTimes() as cpu:
        p, pid, _ = profile_process([prog("late_thread"), "1.5", "2.5"],
                                    ["--frequency", "199", "--duration", "5"], "pid filter",
                                    others=[[prog("split"), "6"]], settle=0)
    if not p:
        return
    pids = {label(s, "pid") for s in p.samples}
    check("pid filter: only the filtered process", pids == {str(pid)}, pids)
    late = [s for s in p.samples if label(s, "thread_name") == "late_spinner"]
    late_count = sum(s["values"][0] for s in late)
    # The main thread only waits: the process's CPU time is the late thread's.
    check_samples_match_cpu("pid filter: thread created later", late_count,
                            cpu.in_window(pid, p), 199)
    check("pid filter: late thread has its own tid and the process's comm",
          late and all(label(s, "tid") != str(pid) and
                       label(s, "comm") == "late_thread" for s in late))
    check("pid filter: late thread's leaf is late_spin",
          late and sum(s["values"][0] for s in late if "late_spin" in p.stack(s)[:2]) >=
          0.95 * late_count)


def test_whole_host_exited_process_and_kernel():
    """No filter: a process that exits mid-window is symbolized; kernel frames resolve."""
    out = tmpdir()
    kiln = start_kiln(["--frequency", "199", "--duration", "4", "--iterations", "1",
                       "--output-dir", out])
    # Not a fixed sleep: on a loaded machine loading takes seconds, and a
    # process started before kiln samples leaves it only its last few
    # samples (once 5, two of them in the loader: "3/5 resolved").
    head = wait_sampling(kiln)
    short = start([prog("split"), "1.2"])
    dd = start(["dd", "if=/dev/zero", "of=/dev/null", "bs=64k", "count=400000"],
               stderr=subprocess.DEVNULL)
    short.wait()
    # The kernel's own split of dd's time: utime and stime, /proc/PID/stat.
    with open(f"/proc/{dd.pid}/stat") as f:
        utime, stime = (int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    stop(dd)
    try:
        _, err = kiln.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop(kiln)
        err = "timeout"
    err = head + err
    files = profiles(out)
    if not check("whole host: one profile", kiln.returncode == 0 and len(files) == 1, err):
        return
    p = read_profile(files[0])
    check("whole host: idle task excluded", all(label(s, "pid") != "0" for s in p.samples))
    mine = [s for s in p.samples if label(s, "pid") == str(short.pid)]
    # Weighed by samples, not by distinct stacks: the process's few samples
    # in the kernel (exec, exit, a preemption) are as many stacks as its
    # hundreds in hot_* (once "3/6 stacks" for 149 of 152 samples).
    total = sum(s["values"][0] for s in mine)
    named = sum(s["values"][0] for s in mine
                if p.stack(s) and p.stack(s)[0] in ("hot_a", "hot_b", "hot_c"))
    check("whole host: exited process still symbolized", total and named >= 0.9 * total,
          f"{named}/{total} samples resolved")
    # Weighed by samples too: dd's few user-space samples spread over many
    # distinct stacks (once 18 of 37 stacks had a kernel leaf, though the
    # kernel ran dd most of the time).
    kernel_mappings = {i for i, m in p.mappings.items() if "[kernel.kallsyms]" in m}
    dd_total = in_kernel = kernel_named = 0
    for s in p.samples:
        if label(s, "comm") != "dd":
            continue
        n = s["values"][0]
        dd_total += n
        leaf = p.locations[s["locations"][0]] if s["locations"] else None
        if leaf and leaf["mapping"] in kernel_mappings:
            in_kernel += n
            kernel_named += n if leaf["lines"] else 0
    check("whole host: dd's kernel leaves symbolized under [kernel.kallsyms]",
          in_kernel >= MIN_SAMPLES and kernel_named >= 0.95 * in_kernel,
          f"{kernel_named}/{in_kernel} kernel-leaf samples named")
    # Ground truth for where dd ran: the kernel's tick accounting over dd's
    # whole life, which is about kiln's window (dd starts once kiln samples).
    truth = stime / (utime + stime) if utime + stime else 0
    got = in_kernel / dd_total if dd_total else 0
    check(f"whole host: dd's kernel share {got:.2f} within 0.15 of stime's {truth:.2f}",
          dd_total >= MIN_SAMPLES and abs(got - truth) <= 0.15,
          f"{in_kernel}/{dd_total} samples; utime {utime} stime {stime} ticks")


def test_sigterm_mid_window():
    out = tmpdir()
    kiln = start_kiln(["--duration", "60", "--output-dir", out])
    # The window begins once kiln samples: whole-host start-up takes long beside busy jobs.
    wait_sampling(kiln)
    time.sleep(2.5)
    check("sigterm: BPF programs loaded while running", len(kiln_bpf_programs()) >= 1,
          kiln_bpf_programs())
    kiln.send_signal(signal.SIGTERM)
    try:
        _, err = kiln.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop(kiln)
        err = "did not exit"
    check("sigterm: exits 0", kiln.returncode == 0, f"exit {kiln.returncode}: {err}")
    files = profiles(out)
    if check("sigterm: partial window written", len(files) == 1, files):
        p = read_profile(files[0])
        check("sigterm: duration is the partial window",
              1 < (go_duration_seconds(p.duration) or 0) < 10, p.duration)
    # The kernel frees programs after an RCU grace period: allow it a moment.
    check("sigterm: no BPF program left", wait_for(lambda: kiln_bpf_programs() == [], 5),
          kiln_bpf_programs())
    check("sigterm: no temporary files left",
          [f for f in os.listdir(out) if not f.endswith(".pb.gz")] == [], os.listdir(out))


def test_iterations():
    out = tmpdir()
    code, err = run_kiln(["--duration", "1", "--iterations", "3", "--output-dir", out])
    files = profiles(out)
    check("iterations: three windows, three files", code == 0 and len(files) == 3,
          f"exit {code}, {files}: {err}")
    for f in files:
        read_profile(f)
    check("iterations: every file reads in go tool pprof", True)


def test_command_line():
    bad = [
        (["--frequency", "0"], "--frequency"),
        (["--frequency", "abc"], "--frequency"),
        (["--frequency", "1000000"], "--frequency"),
        (["--duration", "-1"], "--duration"),
        (["--duration", "0"], "--duration"),
        (["--iterations", "x"], "--iterations"),
        (["--pid", "0"], "--pid"),
        (["--pid", "4194300"], "--pid"),
        (["--max-stacks", "1"], "--max-stacks"),
        (["--frequency"], "--frequency"),
        (["--unwind", "lbr"], "--unwind"),
        (["--max-unwind-memory", "0"], "--max-unwind-memory"),
        (["--max-unwind-memory", "5X"], "--max-unwind-memory"),
        (["--bogus"], "--bogus"),
        (["stray"], "stray"),
    ]
    for args, flag in bad:
        code, err = run_kiln(args)
        check(f"cli: {' '.join(args)} exits 2 naming {flag}", code == 2 and flag in err,
              f"exit {code}: {err.strip()}")
    proc = subprocess.run([os.path.join(os.environ.get("BUILD", "build"), "kiln"), "--help"],
                          stdout=subprocess.PIPE, text=True)
    flags = ["--frequency", "--duration", "--iterations", "--pid", "--output-dir",
             "--max-stacks", "--max-sample-keys", "--max-processes", "--unwind",
             "--max-unwind-memory", "--help", "--version"]
    check("cli: --help exits 0 and lists every flag",
          proc.returncode == 0 and all(f in proc.stdout for f in flags), proc.stdout)
    code, _ = run_kiln(["--version"])
    check("cli: --version exits 0", code == 0)
    code, err = run_kiln(["--duration=1", "--iterations=1", "--output-dir=/proc/kiln-no"])
    check("cli: unwritable output dir exits 1 naming it", code == 1 and "/proc/kiln-no" in err,
          f"exit {code}: {err}")
    unprivileged = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", os.path.abspath(os.path.join(os.environ.get("BUILD", "build"),
                                                             "kiln")),
         "--output-dir", "/tmp", "--iterations", "1", "--duration", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check("cli: without privileges exits 1 and says what is needed",
          unprivileged.returncode == 1 and "CAP_BPF" in unprivileged.stderr,
          f"exit {unprivileged.returncode}: {unprivileged.stderr}")


if __name__ == "__main__":
    require_root()
    test_command_line()
    test_split_ratio_and_exact_stacks()
    test_pid_filter_and_late_thread()
    test_whole_host_exited_process_and_kernel()
    test_sigterm_mid_window()
    test_iterations()
    finish()
