# SPDX-License-Identifier: Apache-2.0
"""Off-CPU profiles: threads whose waiting is known (a sleeper, a pipe reader,
a spinner) measured by sched_switch and read back with go tool pprof."""
import re
import signal
import subprocess
import time

from kilntest import (check, finish, kiln_bpf_programs, prog, profile_process, profiles,
                      read_profile, run_kiln, start_kiln, tmpdir, wait_for)

WINDOW = 5.0


def label(sample, key):
    values = sample["labels"].get(key)
    return values[0] if values else None


def by_thread(p):
    """thread name -> (off-CPU seconds, samples)"""
    threads = {}
    for s in p.samples:
        name = label(s, "thread_name")
        seconds, samples = threads.get(name, (0.0, []))
        threads[name] = (seconds + s["values"][1] / 1e9, samples + [s])
    return threads


def test_known_waits():
    p, pid, err = profile_process(
        [prog("offcpu_threads_nofp"), "8"],
        ["--off-cpu", "--no-cpu", "--duration", str(int(WINDOW)), "--verbose"], "off-CPU")
    if not p:
        return
    check("off-CPU: sample types samples/count and off_cpu/nanoseconds",
          p.sample_types == ["samples/count", "off_cpu/nanoseconds"], p.sample_types)
    check("off-CPU: period type off_cpu/nanoseconds, period 1",
          p.period_type == "off_cpu nanoseconds" and p.period == 1, (p.period_type, p.period))
    threads = by_thread(p)
    for name, function, kernel_hint in (("sleeper", "sleeper_wait", "nanosleep"),
                                        ("reader", "reader_wait", "read")):
        seconds, samples = threads.get(name, (0.0, []))
        check(f"off-CPU: {name} waited the whole window (within 10%)",
              abs(seconds - WINDOW) <= 0.1 * WINDOW, f"{seconds:.3f} s")
        mine = [s for s in samples if function in p.user_stack(s)]
        kernel = p.kernel_mapping_ids()
        with_kernel = [s for s in mine
                       if p.locations[s["locations"][0]]["mapping"] in kernel and
                       any(kernel_hint in f for f in p.stack(s)[:8])]
        own = sum(s["values"][1] for s in mine) / 1e9
        check(f"off-CPU: {name}'s time is in {function}, under main's thread start",
              own >= 0.95 * seconds and all("start_thread" in p.user_stack(s) for s in mine),
              f"{own:.3f} of {seconds:.3f} s")
        check(f"off-CPU: {name}'s stacks have the kernel frames it waited in",
              mine and sum(s["values"][1] for s in with_kernel) >= 0.95 * own * 1e9,
              [p.stack(s)[:6] for s in mine[:1]])
        check(f"off-CPU: {name}'s blocks are labelled state=sleeping",
              all(label(s, "state") == "sleeping" for s in samples))
    spinner = threads.get("spinner", (0.0, []))[0]
    check("off-CPU: the spinner is near zero (< 5% of the window)", spinner < 0.05 * WINDOW,
          f"{spinner:.3f} s")
    totals = re.search(r"all blocks: (\d+) \(([\d.]+) s\)", err)
    check("off-CPU: every block is counted, short ones included",
          totals and int(totals.group(1)) >= len(p.samples), totals and totals.group(0))


def test_min_block():
    """Blocks under --off-cpu-min-block get no stack but stay in the totals."""
    p, _, err = profile_process(
        [prog("offcpu_threads_nofp"), "6"],
        ["--off-cpu", "--no-cpu", "--duration", "4", "--off-cpu-min-block", "200000"],
        "off-CPU min block")
    if not p:
        return
    sleeper = by_thread(p).get("sleeper", (0.0, []))[0]
    short = re.search(r"(\d+) shorter than --off-cpu-min-block \(([\d.]+) s", err)
    check("off-CPU min block: 50 ms sleeps get no stack under a 200 ms minimum",
          sleeper == 0.0, f"{sleeper:.3f} s")
    check("off-CPU min block: their time is still counted", short and
          float(short.group(2)) > 3.0, short and short.group(0))


def test_block_longer_than_window():
    """A 3 s sleep seen through 1 s windows: no window is charged more than its
    own length (the earlier part of a block is not put into a later window)."""
    out = tmpdir()
    # The long sleep begins after kiln does (exec keeps the pid kiln filters on).
    sleeper = subprocess.Popen(["sh", "-c", "sleep 0.7; exec sleep 3"])
    code, err = run_kiln(["--off-cpu", "--no-cpu", "--pid", str(sleeper.pid), "--duration",
                          "1", "--iterations", "5", "--output-dir", out])
    sleeper.wait()
    charged = []
    for path in profiles(out, "offcpu"):
        p = read_profile(path)
        charged.append(sum(s["values"][1] for s in p.samples) / 1e9)
    check("off-CPU long block: every window charged at most its own length",
          code == 0 and charged and max(charged) <= 1.05, f"exit {code}: {charged}")
    check("off-CPU long block: the block is charged when it ends",
          charged and max(charged) > 0.05, charged)


def test_cpu_and_off_cpu_together():
    out = tmpdir()
    code, err = run_kiln(["--off-cpu", "--duration", "2", "--iterations", "1", "--output-dir",
                          out])
    check("off-CPU with CPU: both profiles written",
          code == 0 and len(profiles(out, "cpu")) == 1 and len(profiles(out, "offcpu")) == 1,
          f"exit {code}: {err[-800:]}")


def test_sigterm():
    out = tmpdir()
    kiln = start_kiln(["--off-cpu", "--duration", "60", "--output-dir", out])
    time.sleep(2.5)
    loaded = kiln_bpf_programs()
    kiln.send_signal(signal.SIGTERM)
    _, err = kiln.communicate(timeout=30)
    check("off-CPU sigterm: both programs were loaded",
          "sched_switch" in loaded and "syscall_return" in loaded, loaded)
    check("off-CPU sigterm: exits 0 and writes the partial window",
          kiln.returncode == 0 and len(profiles(out, "offcpu")) == 1, err[-500:])
    check("off-CPU sigterm: no BPF program left",
          wait_for(lambda: kiln_bpf_programs() == [], 5), kiln_bpf_programs())


def test_bad_flags():
    for args, flag in ((["--no-cpu"], "--no-cpu"), (["--off-cpu-states", "running"],
                                                    "--off-cpu-states"),
                       (["--off-cpu-min-block", "x"], "--off-cpu-min-block")):
        code, err = run_kiln(args)
        check(f"off-CPU cli: {' '.join(args)} exits 2 naming {flag}", code == 2 and flag in err,
              f"exit {code}: {err}")


if __name__ == "__main__":
    test_bad_flags()
    test_known_waits()
    test_min_block()
    test_block_longer_than_window()
    test_cpu_and_off_cpu_together()
    test_sigterm()
    finish()
