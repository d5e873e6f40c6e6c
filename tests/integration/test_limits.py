# SPDX-License-Identifier: Apache-2.0
"""Full maps and deep stacks: every loss is counted, reported and visible in the
profile, never silent; kiln keeps running."""
import os
import re
import subprocess

from kilntest import (KILN, check, finish, prog, profile_process, profiles, read_profile,
                      require_root, run_kiln, start, stop, tmpdir)


def profile_many_stacks(extra_args, name, program="many_stacks"):
    return profile_process([prog(program), "6"],
                           ["--frequency", "999", "--duration", "3"] + extra_args, name)


def lost_count(err, what):
    match = re.search(r"(\d+) " + what, err)
    return int(match.group(1)) if match else 0


def test_stacks_map_full():
    p, _, err = profile_many_stacks(["--max-stacks", "64"], "stacks map full")
    if not p:
        return
    stacks_lost = lost_count(err, r"stacks \(stacks map full")
    check("stacks map full: reported with the flag to raise",
          stacks_lost > 0 and "--max-stacks" in err, err)
    marked = sum(s["values"][0] for s in p.samples
                 if "[stack lost: stacks map full]" in p.stack(s))
    check("stacks map full: lost stacks are marked in the profile, samples kept",
          marked > 0, f"{marked} marked samples, {stacks_lost} reported")


def test_counts_map_full():
    p, _, err = profile_many_stacks(["--max-sample-keys", "64"], "counts map full")
    if not p:
        return
    check("counts map full: dropped samples reported with the flag to raise",
          lost_count(err, r"samples \(counts map full") > 0 and "--max-sample-keys" in err,
          err)
    check("counts map full: the profile keeps at most the map's entries",
          0 < len(p.samples) <= 64, len(p.samples))


def check_deep_stacks(name, p, kept, walk_known_complete):
    """Stacks deeper than `kept` frames end in a [truncated: too deep] frame after
    exactly `kept` frames; the others reach main. A frame-pointer walk cannot
    know it missed a frame (a sample in a prologue skips the caller), so only
    DWARF's stacks must all be either complete or marked."""
    truncated = complete = wrong = 0
    examples = []
    for s in p.samples:
        stack = p.user_stack(s)
        if not stack or stack[0] != "descend":
            continue
        n = s["values"][0]
        if stack[-1] == "[truncated: too deep]":
            # A stack of exactly `kept` frames is marked too: it cannot be told apart.
            if len(stack) == kept + 1:
                truncated += n
            else:
                wrong += n
                examples.append(stack)
        elif "main" in stack:
            complete += n
        elif walk_known_complete or len(stack) >= kept:
            wrong += n
            examples.append(stack)
    check(f"{name}: stacks past {kept} frames end in [truncated: too deep]", truncated > 0,
          f"{truncated} truncated")
    check(f"{name}: shallower stacks reach main", complete > 0, f"{complete} complete")
    check(f"{name}: no stack is cut without the marker", wrong == 0,
          f"{wrong} samples neither complete nor marked, e.g. "
          f"{[(len(e), [f for f in e if f != 'descend']) for e in examples[:3]]}")


def test_deep_stacks_frame_pointers():
    p, _, _ = profile_many_stacks(["--unwind", "fp"], "deep stacks, frame pointers")
    if p:
        check_deep_stacks("deep stacks, frame pointers", p, 127, walk_known_complete=False)


def test_deep_stacks_dwarf():
    p, _, _ = profile_many_stacks([], "deep stacks, DWARF", program="many_stacks_nofp")
    if p:
        check_deep_stacks("deep stacks, DWARF", p, 256, walk_known_complete=True)


def seed_profiles(out, stamps, size):
    """Profiles of an earlier run (their content does not matter to the bound)."""
    for stamp in stamps:
        for kind in ("cpu", "offcpu"):
            with open(os.path.join(out, f"{kind}-{stamp}.pb.gz"), "wb") as f:
                f.write(os.urandom(size))


def kiln_profile_bytes(out):
    """What the bound covers: cpu-<stamp>.pb.gz and offcpu-<stamp>.pb.gz."""
    return sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)
               if re.fullmatch(r"(off)?cpu-\d{8}T\d{6}Z\.pb\.gz", f))


def profile_into(out, extra_args, windows=3):
    workload = start([prog("split"), "30"])
    try:
        return run_kiln(["--pid", str(workload.pid), "--duration", "1", "--iterations",
                         str(windows), "--off-cpu", "--output-dir", out] + extra_args)
    finally:
        stop(workload)


def test_output_bound():
    """Over the bound at start: the oldest go first, down to nine tenths; files
    that are not kiln's profiles are never touched; new windows are kept."""
    out = tmpdir()
    old = [f"2020010{d}T000000Z" for d in range(1, 9)]
    seed_profiles(out, old, 50 << 10)  # 8 windows, 800 KiB
    others = ["notes.txt", "cpu-latest.pb.gz", "cpu-20200101T000000Z.pb.gz.bak"]
    for name in others:
        with open(os.path.join(out, name), "wb") as f:
            f.write(os.urandom(200 << 10))
    code, err = profile_into(out, ["--output-max-bytes", "500K"])
    names = sorted(os.listdir(out))
    new = [n for n in names if re.fullmatch(r"(off)?cpu-\d{8}T\d{6}Z\.pb\.gz", n) and
           not n.split("-")[1].startswith("2020")]
    check("output bound: kiln exits 0 and writes every window",
          code == 0 and len(new) == 6, f"exit {code}, {names}: {err}")
    # 800 KiB down to at most 450: the 7 oldest, a window's CPU profile before its off-CPU one.
    deleted = [f"{kind}-{s}.pb.gz" for s in old[:3] for kind in ("cpu", "offcpu")]
    deleted.append(f"cpu-{old[3]}.pb.gz")
    kept = [f"{kind}-{s}.pb.gz" for s in old for kind in ("cpu", "offcpu")]
    kept = [n for n in kept if n not in deleted]
    check("output bound: the oldest of an earlier run deleted first, to 9/10 of the bound",
          not set(deleted) & set(names) and set(kept) <= set(names), names)
    check("output bound: kiln's profiles stay within the bound",
          kiln_profile_bytes(out) <= 500 << 10, kiln_profile_bytes(out))
    check("output bound: other files in the directory untouched",
          all(os.path.getsize(os.path.join(out, n)) == 200 << 10 for n in others), names)
    check("output bound: the deletion is reported with its count",
          re.search(r"deleted the 7 oldest profiles \(350 KiB\) to stay within "
                    r"--output-max-bytes \(500 KiB\)", err), err)
    cpu = [n for n in new if n.startswith("cpu-")]
    check("output bound: new profiles read back with go tool pprof",
          cpu and read_profile(os.path.join(out, cpu[-1])).samples, new)


def test_output_bound_below_one_profile():
    """A bound smaller than one profile: the one just written is never deleted,
    every older one is."""
    out = tmpdir()
    seed_profiles(out, ["20200101T000000Z"], 10 << 10)
    code, err = profile_into(out, ["--output-max-bytes", "1K"])
    left = sorted(os.listdir(out))
    check("output bound below one profile: only the last profile written is left",
          code == 0 and len(left) == 1 and left[0].startswith("offcpu-") and
          "2020" not in left[0], f"exit {code}, {left}: {err}")
    check("output bound below one profile: every deletion counted",
          re.search(r"7 since start, 1 profiles", err), err)


def test_output_bound_flag():
    proc = subprocess.run([KILN, "--output-max-bytes", "lots"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    check("output bound: a bad --output-max-bytes exits 2 naming the flag",
          proc.returncode == 2 and "--output-max-bytes" in proc.stderr, proc.stderr)
    proc = subprocess.run([KILN, "--remote-store", "http://127.0.0.1:1", "--output-max-bytes",
                           "1G"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check("output bound: --output-max-bytes when pushing without --output-dir exits 2",
          proc.returncode == 2 and "--output-max-bytes" in proc.stderr, proc.stderr)


if __name__ == "__main__":
    require_root()
    test_stacks_map_full()
    test_counts_map_full()
    test_deep_stacks_frame_pointers()
    test_deep_stacks_dwarf()
    test_output_bound()
    test_output_bound_below_one_profile()
    test_output_bound_flag()
    finish()
