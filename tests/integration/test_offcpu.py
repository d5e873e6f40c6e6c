# SPDX-License-Identifier: Apache-2.0
"""Off-CPU profiles: threads whose waiting is known (a sleeper, a pipe reader,
a spinner) measured by sched_switch and read back with go tool pprof."""
import json
import os
import re
import signal
import subprocess
import time

from kilntest import (check, finish, kernel_refuses, kiln_bpf_programs, prog, profile_process,
                      profiles, read_profile, require_root, run_kiln, start_kiln, tmpdir, wait_for)

# Whether this kernel's verifier lets sched_switch schedule a task work (some 6.18 do not).
TASK_WORK_REFUSED = kernel_refuses("task works from sched_switch")

WINDOW = 5.0
# How long offcpu_threads runs: longer than kiln's start-up and window could
# ever take, so that its threads wait through the whole window. kiln starts
# in about 1 s, but loading its programs (kernel BTF, the verifier) is CPU
# work: beside three CPU-bound loops it took 6.7 to 16 s after the start,
# and a workload of a fixed 8 s was gone before a 5 s window ended.
# profile_process stops it as soon as kiln is done.
WORKLOAD_S = "600"


def label(sample, key):
    values = sample["labels"].get(key)
    return values[0] if values else None


def seconds(duration):
    """pprof -raw's printed duration ("2.00", "2.01s", "950ms") in seconds."""
    m = re.match(r"([\d.]+)(ms|s)?$", duration or "")
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1) if m else 0.0


def by_thread(p):
    """thread name -> (off-CPU seconds, samples)"""
    threads = {}
    for s in p.samples:
        name = label(s, "thread_name")
        seconds, samples = threads.get(name, (0.0, []))
        threads[name] = (seconds + s["values"][1] / 1e9, samples + [s])
    return threads


def test_known_waits(hooks=None):
    extra = ["--off-cpu-hooks", hooks] if hooks else []
    name = f"off-CPU ({hooks})" if hooks else "off-CPU"
    p, pid, err = profile_process(
        [prog("offcpu_threads_nofp"), WORKLOAD_S],
        ["--off-cpu", "--no-cpu", "--duration", str(int(WINDOW)), "--verbose"] + extra, name)
    if not p:
        return
    if hooks:
        said = {"sys-exit": "(tp_btf sched_switch and sys_exit)",
                "raw-tp": "(raw_tp sched_switch and sys_exit)"}[hooks]
        check(f"{name}: kiln says which hooks it uses", said in err, err[:400])
        for thread, function in (("sleeper", "sleeper_wait"), ("reader", "reader_wait")):
            seconds, samples = by_thread(p).get(thread, (0.0, []))
            own = sum(s["values"][1] for s in samples if function in p.user_stack(s)) / 1e9
            check(f"{name}: {thread} waited the whole window, in {function} (within 10%)",
                  abs(seconds - WINDOW) <= 0.1 * WINDOW and own >= 0.95 * seconds,
                  f"{seconds:.3f} s, {own:.3f} s in {function}")
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
        # Its waits in the kernel are sleeps; on a busy machine it may also be
        # preempted on its way back to them, which kiln rightly labels so.
        # So: nearly all its time is labelled sleeping, the rest preempted.
        by_state = {}
        for s in with_kernel:
            by_state[label(s, "state")] = by_state.get(label(s, "state"), 0) + s["values"][1]
        slept = by_state.get("sleeping", 0)
        check(f"off-CPU: {name}'s blocks are labelled state=sleeping",
              with_kernel and set(by_state) <= {"sleeping", "preempted"} and
              slept >= 0.95 * sum(by_state.values()),
              {k: f"{v / 1e9:.3f} s" for k, v in by_state.items()})
    # The spinner never blocks; it waits only for a CPU when the machine is
    # busy (beside a CPU-bound job: 3.5 s of the 5), which kiln rightly
    # counts as preempted. What it must not have is time asleep.
    spinner = threads.get("spinner", (0.0, []))[1]
    asleep = sum(s["values"][1] for s in spinner if label(s, "state") != "preempted") / 1e9
    check("off-CPU: the spinner is near zero apart from preemption (< 5% of the window)",
          asleep < 0.05 * WINDOW, f"{asleep:.3f} s")
    totals = re.search(r"all blocks: (\d+) \(([\d.]+) s\)", err)
    check("off-CPU: every block is counted, short ones included",
          totals and int(totals.group(1)) >= len(p.samples), totals and totals.group(0))


def test_min_block():
    """Blocks under --off-cpu-min-block get no stack but stay in the totals."""
    p, _, err = profile_process(
        [prog("offcpu_threads_nofp"), WORKLOAD_S],
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
    """A 3 s sleep seen through 1 s windows: each window is charged its own
    part of the block, the windows the block spans wholly about their whole
    length, none more than its length."""
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
    check("off-CPU long block: windows the block spans are charged their whole length",
          len([c for c in charged if c >= 0.9]) >= 2, charged)


def test_asleep_before_kiln():
    """A thread asleep 100% of the time since before kiln started: every
    window charges it the window's length, in the function it sleeps in,
    with the kernel frames below, though kiln never saw it leave the CPU."""
    out = tmpdir()
    sleeper = subprocess.Popen([prog("sleep_forever_nofp")])
    try:
        time.sleep(0.5)
        code, err = run_kiln(["--off-cpu", "--no-cpu", "--pid", str(sleeper.pid), "--duration",
                              "2", "--iterations", "2", "--output-dir", out])
    finally:
        sleeper.kill()
        sleeper.wait()
    files = profiles(out, "offcpu")
    check("off-CPU asleep: kiln exits 0 and writes two profiles",
          code == 0 and len(files) == 2, f"exit {code}: {err[-500:]}")
    for i, path in enumerate(files):
        p = read_profile(path)
        total = sum(s["values"][1] for s in p.samples) / 1e9
        window = seconds(p.duration)
        stacks = [p.stack(s) for s in p.samples]
        check(f"off-CPU asleep: window {i + 1} charges the whole window (within 10%)",
              abs(total - window) <= 0.1 * window, f"{total:.3f} s of {window:.3f} s")
        # A sleeping task's kernel stack starts below the scheduler's own frames.
        check(f"off-CPU asleep: window {i + 1} is in the pause syscall under hold_still, main",
              stacks and all("hold_still" in st and "main" in st and "pause" in st[0] and
                             "do_syscall_64" in st for st in stacks),
              stacks[:1])


def map_tids(name):
    """Thread ids kept in one of kiln's BPF maps keyed by thread id."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "name", name], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    entries = json.loads(out or "[]")
    return [e["key"] for e in entries if isinstance(e.get("key"), int)]


def test_task_work_refused():
    """A kernel that refuses task works from sched_switch: auto picks sys-exit
    and says why; asking for task-work fails naming the kernel's reason."""
    code, err = run_kiln(["--off-cpu", "--no-cpu", "--off-cpu-hooks", "task-work", "--duration",
                          "1", "--output-dir", tmpdir()])
    check("off-CPU task-work refused: kiln exits non-zero naming the verifier's reason",
          code != 0 and "--off-cpu-hooks task-work: the kernel refuses it: " +
          TASK_WORK_REFUSED in err, f"exit {code}: {err[-500:]}")
    code, err = run_kiln(["--off-cpu", "--no-cpu", "--duration", "1", "--iterations", "1",
                          "--output-dir", tmpdir()])
    check("off-CPU task-work refused: auto takes sys-exit and says why",
          code == 0 and "taken at syscall exit, not by task work: " + TASK_WORK_REFUSED in err
          and "(tp_btf sched_switch and sys_exit)" in err, f"exit {code}: {err[-800:]}")


def test_thread_churn(hooks, map_name):
    """300 threads that each block 3 ms and exit: their blocks keep their user
    stacks, and nothing is left behind by thread id once they are gone
    (map_name None: the hooks keep nothing by thread id)."""
    out = tmpdir()
    kiln = start_kiln(["--off-cpu", "--no-cpu", "--off-cpu-hooks", hooks, "--duration", "60",
                       "--output-dir", out])
    try:
        time.sleep(2.0)
        churn = subprocess.run([prog("thread_churn_nofp"), "300"], timeout=60)
        time.sleep(0.5)
        left = [tid for tid in map_tids(map_name) if not os.path.exists(f"/proc/{tid}")] \
            if map_name else []
    finally:
        kiln.send_signal(signal.SIGTERM)
        _, err = kiln.communicate(timeout=30)
    check(f"off-CPU churn ({hooks}): {map_name or 'nothing'} keeps no exited thread",
          churn.returncode == 0 and kiln.returncode == 0 and not left,
          f"{len(left)} exited threads left: {left[:10]}; {err[-300:]}")
    files = profiles(out, "offcpu")
    p = read_profile(files[0]) if files else None
    waits = [s for s in p.samples if "churn_wait" in p.user_stack(s)] if p else []
    churned = sum(s["values"][0] for s in waits)
    check(f"off-CPU churn ({hooks}): the threads' blocks have their user stacks",
          churned >= 0.9 * 900 and all("main" not in p.user_stack(s) and
                                       "start_thread" in p.user_stack(s) for s in waits),
          f"{churned} of 900 blocks in churn_wait")


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
    # Older kernels keep 15 characters of a name: sched_switch_sys_exit is sched_switch_sy.
    wanted = ({"sched_switch_sy", "syscall_return", "blocked_tasks"} if TASK_WORK_REFUSED
              else {"sched_switch", "thread_exit", "blocked_tasks"})
    check("off-CPU sigterm: its programs were loaded (the hooks this kernel allows)",
          all(any(name.startswith(w) for name in loaded) for w in wanted), (wanted, loaded))
    check("off-CPU sigterm: exits 0 and writes the partial window",
          kiln.returncode == 0 and len(profiles(out, "offcpu")) == 1, err[-500:])
    check("off-CPU sigterm: no BPF program left",
          wait_for(lambda: kiln_bpf_programs() == [], 5), kiln_bpf_programs())


def test_bad_flags():
    for args, flag in ((["--no-cpu"], "--no-cpu"), (["--off-cpu-states", "running"],
                                                    "--off-cpu-states"),
                       (["--off-cpu-min-block", "x"], "--off-cpu-min-block"),
                       (["--off-cpu-hooks", "kprobe"], "--off-cpu-hooks")):
        code, err = run_kiln(args)
        check(f"off-CPU cli: {' '.join(args)} exits 2 naming {flag}", code == 2 and flag in err,
              f"exit {code}: {err}")


if __name__ == "__main__":
    require_root()
    test_bad_flags()
    test_known_waits()
    test_known_waits("sys-exit")
    test_known_waits("raw-tp")
    test_min_block()
    test_block_longer_than_window()
    test_asleep_before_kiln()
    if TASK_WORK_REFUSED:
        print(f"# this kernel refuses task works from sched_switch ({TASK_WORK_REFUSED}): "
              "task-work hooks untested here, sys-exit instead")
        test_task_work_refused()
        test_thread_churn("sys-exit", None)
    else:
        test_thread_churn("task-work", "stack_requests")
    test_thread_churn("raw-tp", "blocks_by_tid")
    test_cpu_and_off_cpu_together()
    test_sigterm()
    finish()
