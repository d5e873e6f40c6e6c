# SPDX-License-Identifier: Apache-2.0
"""DWARF unwinding of programs built as distributions build them (gcc -O2,
no frame pointers), checked against their known stacks and against
elfutils' own unwinder (eu-stack) on the same processes."""
import collections
import re
import subprocess
import time

from kilntest import (MIN_SAMPLES, ChildCpuTimes, check, check_samples_match_cpu, finish, prog,
                      profile_process, profiles, read_profile, require_root, start, start_kiln, stop, tmpdir)

# What glibc's startup adds below main.
START = ["__libc_start_call_main", "__libc_start_main", "_start"]
FREQUENCY = 199


def user_stacks(p):
    """(count, user stack) per sample. kiln shows symbol names without their
    version ("__libc_start_main", not "__libc_start_main@@GLIBC_2.34")."""
    for s in p.samples:
        yield s["values"][0], p.user_stack(s)


def reaches_main(stack):
    """The stack goes down to main and ends at _start, with nothing cut."""
    return "main" in stack and stack[-len(START):] == START


def profile(program, name, seconds="6", extra=()):
    """Profiles the program for a 4 s window; returns (profile or None, the
    CPU seconds it used in that window)."""
    with ChildCpuTimes() as cpu:
        p, pid, _ = profile_process([prog(program), seconds],
                                    ["--frequency", str(FREQUENCY), "--duration", "4"] +
                                    list(extra), name)
    return p, cpu.in_window(pid, p) if p else 0


def check_program(name, program, expected, min_share=0.99):
    """At least min_share of the samples reach main through exactly the
    expected frames: expected(stack) says whether a stack is right."""
    p, cpu_seconds = profile(program, name)
    if not p:
        return None
    total = good = 0
    bad = {}
    for n, stack in user_stacks(p):
        total += n
        if reaches_main(stack) and expected(stack):
            good += n
        else:
            bad[tuple(stack)] = bad.get(tuple(stack), 0) + n
    worst = sorted(bad.items(), key=lambda kv: -kv[1])[:2]
    check_samples_match_cpu(name, total, cpu_seconds, FREQUENCY)
    check(f"{name}: >= {min_share:.0%} of samples exact down to main",
          total >= MIN_SAMPLES and good >= min_share * total,
          f"{good}/{total}; most common others: {worst}")
    return p


def test_split():
    def expected(stack):
        if stack[0] in ("hot_a", "hot_b", "hot_c"):
            return stack[1:3] == ["run_round", "main"] and stack[3:] == START
        # The clock_gettime call between rounds, through the vDSO.
        return stack[stack.index("main"):] == ["main"] + START

    p = check_program("dwarf split", "split_nofp", expected)
    if not p:
        return
    counts = {"hot_a": 0, "hot_b": 0, "hot_c": 0}
    for n, stack in user_stacks(p):
        if stack and stack[0] in counts:
            counts[stack[0]] += n
    total = sum(counts.values())
    shares = {k: v / max(total, 1) for k, v in counts.items()}
    check("dwarf split: 6:3:1 within 5 points", total > 0 and
          abs(shares["hot_a"] - 0.6) < 0.05 and abs(shares["hot_b"] - 0.3) < 0.05 and
          abs(shares["hot_c"] - 0.1) < 0.05, shares)


def test_qsort_callback():
    def expected(stack):
        if stack[0] != "spin":
            return True  # rand() and the like, still down to main
        i = 2
        while i < len(stack) and stack[i].startswith("msort_with_tmp"):
            i += 1
        return (stack[1] == "compare_ints" and i > 2 and
                stack[i] in ("qsort_r", "__qsort_r", "qsort") and
                stack[i + 1:i + 3] == ["sort_array", "main"])

    check_program("dwarf qsort callback", "qsort_cb_nofp", expected)


def test_recursion():
    def expected(stack):
        first = stack.index("recurse") if "recurse" in stack else len(stack)
        recursion = stack[first:first + 120]
        return recursion == ["recurse"] * 120 and stack[first + 120] == "main"

    check_program("dwarf 120-deep recursion", "recursion_nofp", expected)


def test_cplusplus():
    def expected(stack):
        return any("Sorter" in f for f in stack[:1]) or "main" in stack

    p = check_program("dwarf C++ templates", "templates_nofp", expected)
    if p:
        total = sum(n for n, _ in user_stacks(p))
        in_sort = sum(n for n, s in user_stacks(p)
                      if s and "slow_less" in s[0] and any("introsort" in f or "insertion"
                                                           in f for f in s))
        # The program does little but compare: measured 98-99%.
        check("dwarf C++ templates: >= 90% of samples are the comparator's, through std::sort",
              total > 0 and in_sort >= 0.9 * total, f"{in_sort}/{total}")


# Frames between a signal frame and interrupted_work when the alarm came during now().
INTERRUPTED_IN_CLOCK = {"now", "clock_gettime", "__clock_gettime", "__GI___clock_gettime",
                        "[libc.so.6]", "[[vdso]]", "__vdso_clock_gettime", "[vdso]"}


def test_signal_frames():
    def expected(stack):
        if stack[0] != "handler_spin":
            return True
        # handler <- the kernel's signal frame in glibc (__restore_rt) <- interrupted code,
        # which the alarm may catch inside now() reading the clock (glibc, then the vDSO).
        if stack[1] != "on_alarm" or stack[2] not in ("__restore_rt", "[libc.so.6]"):
            return False
        rest = stack[3:]
        while rest and rest[0] in INTERRUPTED_IN_CLOCK:
            rest = rest[1:]
        return rest[:2] == ["interrupted_work", "main"]

    p = check_program("dwarf signal frames", "signal_spin_nofp", expected)
    if p:
        total = sum(n for n, _ in user_stacks(p))
        handler = sum(n for n, s in user_stacks(p) if s and s[0] == "handler_spin")
        # It spins 50 ms of every 100: measured 51-53%.
        check("dwarf signal frames: >= 30% of samples in the handler",
              total > 0 and handler >= 0.3 * total, f"{handler}/{total}")


def test_frame_pointers_fail_without_them():
    """The reason for DWARF: --unwind fp on the same binary rarely reaches main."""
    p, _ = profile("split_nofp", "fp on split_nofp", extra=["--unwind", "fp"])
    if not p:
        return
    total = sum(n for n, _ in user_stacks(p))
    to_main = sum(n for n, s in user_stacks(p) if s[:3] in (["hot_a", "run_round", "main"],
                                                            ["hot_b", "run_round", "main"],
                                                            ["hot_c", "run_round", "main"]))
    check("fp on split_nofp: frame pointers lose the callers (< 50% exact)",
          total > 0 and to_main < 0.5 * total, f"{to_main}/{total}")


def share_exact(p, pid, leaf, expected):
    """(exact, total) samples of pid whose leaf is `leaf`."""
    exact = total = 0
    for s in p.samples:
        if s["labels"].get("pid") != [str(pid)]:
            continue
        stack = p.user_stack(s)
        if stack and stack[0] == leaf:
            total += s["values"][0]
            exact += s["values"][0] if stack == expected else 0
    return exact, total


def inexact_stacks(p, pid, expected, top=3):
    """The most common user stacks of pid that are not `expected`: what a
    failed exactness check prints, to say how the stacks went wrong."""
    counts = collections.Counter()
    for s in p.samples:
        stack = p.user_stack(s)
        if s["labels"].get("pid") == [str(pid)] and stack != expected:
            counts[" <- ".join(stack[:8])] += s["values"][0]
    return counts.most_common(top)


def process_samples(p, pid):
    return sum(s["values"][0] for s in p.samples if s["labels"].get("pid") == [str(pid)])


def test_dlopen():
    """A library loaded after kiln read the process: the unwinder asks for the
    mappings again, and the library's frames unwind from its own table."""
    library = prog("libspinlib_nofp.so")
    with ChildCpuTimes() as cpu:
        p, pid, err = profile_process([prog("dlopen_spin_nofp"), "1.5", library, "3"],
                                    ["--frequency", str(FREQUENCY), "--duration", "5"], "dlopen")
    if not p:
        return
    samples = process_samples(p, pid)
    check_samples_match_cpu("dlopen", samples, cpu.in_window(pid, p), FREQUENCY)
    expected = ["library_inner", "library_spin", "run_library", "main"] + START
    exact, total = share_exact(p, pid, "library_inner", expected)
    # It spins in the library after sleeping: only the dlopen call is elsewhere.
    check("dlopen: >= 90% of the samples in the library",
          total >= MIN_SAMPLES and total >= 0.9 * samples, f"{total}/{samples}")
    # The samples between dlopen and the agent's re-read (milliseconds) may be cut.
    check("dlopen: >= 95% of the library's samples exact down to _start",
          total >= MIN_SAMPLES and exact >= 0.95 * total,
          f"{exact}/{total}; most common: {inexact_stacks(p, pid, expected)}; "
          + " | ".join(line for line in err.splitlines() if "unwind" in line or "table" in line))


def test_process_started_later():
    """Whole host: a process that starts after kiln gets its tables promptly."""
    out = tmpdir()
    with ChildCpuTimes() as cpu:
        kiln = start_kiln(["--frequency", str(FREQUENCY), "--duration", "5", "--iterations",
                           "1", "--output-dir", out])
        time.sleep(1.5)
        workload = start([prog("split_nofp"), "3"])
        workload.wait()
        _, err = kiln.communicate(timeout=60)
    files = profiles(out)
    if not check("new process: one profile", kiln.returncode == 0 and len(files) == 1, err):
        return
    p = read_profile(files[0])
    samples = process_samples(p, workload.pid)
    check_samples_match_cpu("new process", samples, cpu.in_window(workload.pid, p), FREQUENCY)
    exact = total = 0
    for leaf in ("hot_a", "hot_b", "hot_c"):
        e, t = share_exact(p, workload.pid, leaf, [leaf, "run_round", "main"] + START)
        exact += e
        total += t
    # Its first samples, until its tables load (measured 50-200 ms here, behind
    # the other processes the whole host announces), use frame pointers.
    check("new process: >= 95% of its samples in hot_*",
          total >= MIN_SAMPLES and total >= 0.95 * samples, f"{total}/{samples}")
    check("new process: >= 90% of its samples exact down to _start",
          total >= MIN_SAMPLES and exact >= 0.90 * total, f"{exact}/{total}")


def table_bytes(err):
    found = re.findall(r"rows in (\d+) bytes of BPF maps", err)
    return int(found[-1]) if found else None


def test_table_budget():
    """Tables past --max-unwind-memory: a table no process uses any more is
    evicted to make room, counted and reported; stacks then unwind completely."""
    library = prog("libspinlib_nofp.so")

    def run(budget):
        out = tmpdir()
        with ChildCpuTimes() as cpu:
            short = start([prog("split_nofp"), "1"])
            late = start([prog("dlopen_spin_nofp"), "2.5", library, "5"])
            args = ["--pid", str(short.pid), "--pid", str(late.pid), "--frequency",
                    str(FREQUENCY), "--duration", "1", "--iterations", "7", "--output-dir", out,
                    "--verbose"]
            if budget:
                args += ["--max-unwind-memory", f"{budget // 1024}K"]
            try:
                _, err = start_kiln(args).communicate(timeout=60)
            finally:
                stop(short)
                stop(late)
        return err, out, late.pid, cpu

    # Calibration: what the two processes' tables take before the library loads.
    err, _, _, _ = run(None)
    first = re.search(r"unwind tables: \d+ loaded, \d+ rows in (\d+) bytes", err)
    if not check("table budget: table memory reported", first, err[-1500:]):
        return
    # Room for exactly those, and not for the library's table as well.
    budget = int(first.group(1)) + 4096
    err, out, late_pid, cpu = run(budget)
    evicted = re.findall(r"(\d+) evicted \((\d+) in use\)", err)
    check("table budget: the finished process's table is evicted for the library's",
          evicted and int(evicted[-1][0]) >= 1, evicted[-1:] if evicted else err[-1500:])
    check("table budget: the eviction is reported", "over --max-unwind-memory" in err)
    check("table budget: within the budget", (table_bytes(err) or budget + 1) <= budget,
          table_bytes(err))
    # Until the finished process is dropped (at a window's end) and the unwinder
    # asks again (once a second), the library's frames are cut; the last
    # windows, seconds later, must be whole.
    exact = total = samples = 0
    cpu_seconds = 0.0
    window_shares = []
    for path in profiles(out)[-2:]:
        p = read_profile(path)
        e, t = share_exact(p, late_pid, "library_inner",
                           ["library_inner", "library_spin", "run_library", "main"] + START)
        window_shares.append(f"{e}/{t}")
        exact += e
        total += t
        samples += process_samples(p, late_pid)
        cpu_seconds += cpu.in_window(late_pid, p)
    check_samples_match_cpu("table budget: the last two windows", samples, cpu_seconds,
                            FREQUENCY)
    check("table budget: the library's stacks unwind completely after the eviction",
          total >= MIN_SAMPLES and exact >= 0.9 * total,
          f"{exact}/{total}; per window: {window_shares}; kiln's last reports: "
          + " | ".join(re.findall(r"unwind(?: tables)?: [^\n]*", err)[-6:]))


# GCC's names for the parts it splits off a function ("msort_with_tmp.part.0"),
# which kiln names after the function itself, as DWARF does.
CLONE_SUFFIX = re.compile(r"(\.(cold|isra|part|constprop|lto_priv)(\.\d+)*)+$")


def eu_stack_frames(pid):
    """Function names of the main thread's stack, leaf first, per elfutils' unwinder."""
    out = subprocess.run(["eu-stack", "-p", str(pid)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=60).stdout
    frames = []
    for line in out.splitlines():
        match = re.match(r"#\d+\s+0x[0-9a-f]+\s+(\S+)", line)
        if match:
            frames.append(CLONE_SUFFIX.sub("", re.sub(r"@.*$", "", match.group(1))))
        elif frames and line.startswith("TID"):
            break
    return frames


def test_reference_unwinder():
    """eu-stack (libdw's unwinder, through ptrace) and kiln's BPF walk agree
    frame for frame, from the first frame both name down to _start."""
    for program, anchor in (("recursion_nofp", "recurse"), ("qsort_cb_nofp", "compare_ints"),
                            ("signal_spin_nofp", "interrupted_work")):
        workload = start([prog(program), "8"])
        time.sleep(0.5)
        references = []
        try:
            for _ in range(5):
                frames = eu_stack_frames(workload.pid)
                if anchor in frames:
                    references.append(tuple(frames[frames.index(anchor):]))
                time.sleep(0.2)
        finally:
            stop(workload)
        p, _ = profile(program, f"reference {program}")
        if not p:
            continue
        # One name per unwound frame: eu-stack does not show inlined calls.
        stacks = [p.user_frames(s) for s in p.samples]
        kiln = {tuple(s[s.index(anchor):]) for s in stacks if anchor in s}
        matched = [r for r in references if r in kiln]
        check(f"reference {program}: eu-stack's stacks from {anchor} are kiln's, frame for frame",
              references and len(matched) == len(references),
              f"{len(matched)}/{len(references)} matched; eu-stack {references[:1]} "
              f"kiln e.g. {sorted(kiln, key=len)[:1]}")


if __name__ == "__main__":
    require_root()
    test_split()
    test_qsort_callback()
    test_recursion()
    test_cplusplus()
    test_signal_frames()
    test_frame_pointers_fail_without_them()
    test_dlopen()
    test_process_started_later()
    test_table_budget()
    test_reference_unwinder()
    finish()
