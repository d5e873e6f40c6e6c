# SPDX-License-Identifier: Apache-2.0
"""A short run of a sanitized kiln (make sanitize-build; tests/run.sh runs
this file with BUILD set to that build): one window profiling a program
unwound from its CFI (no frame pointers) with inlined code, and a JIT
named from its perf map, on CPU and off it. Any ASan or UBSan report
aborts kiln; the profiles must read back with go tool pprof and name what
the programs run. Not named test_*: a plain build has nothing to add here."""
import os
import signal

from kilntest import (check, finish, prog, profiles, read_profile, require_root, start,
                      start_kiln, stop, tmpdir, wait_for)

SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def pid_stacks(p, pid):
    return [p.user_stack(s) for s in p.samples if s["labels"].get("pid") == [str(pid)]]


def test_one_window():
    out = tmpdir()
    unwound = start([prog("inline_hot_nofp"), "60"])
    jit = start([prog("jit_loop"), "60"])
    map_path = f"/tmp/perf-{jit.pid}.map"
    try:
        wait_for(lambda: os.path.exists(map_path) and os.path.getsize(map_path) > 0, 10)
        kiln = start_kiln(["--pid", str(unwound.pid), "--pid", str(jit.pid), "--off-cpu",
                           "--duration", "3", "--iterations", "1", "--output-dir", out])
        _, err = kiln.communicate(timeout=300)
    finally:
        for proc in (unwound, jit):
            stop(proc, signal.SIGKILL)
        if os.path.exists(map_path):
            os.unlink(map_path)
    reports = [line for line in err.splitlines() if any(r in line for r in SANITIZER_REPORTS)]
    check("sanitized kiln: exits 0 without a sanitizer report",
          kiln.returncode == 0 and not reports, f"exit {kiln.returncode}: {err[-3000:]}")
    files = profiles(out, "cpu")
    if not check("sanitized kiln: one CPU profile and one off-CPU profile",
                 len(files) == 1 and len(profiles(out, "offcpu")) == 1, str(os.listdir(out))):
        return
    p = read_profile(files[0])
    unwound_stacks = pid_stacks(p, unwound.pid)
    check("sanitized kiln: the CFI-unwound program's samples reach main",
          any("main" in stack for stack in unwound_stacks),
          f"{len(unwound_stacks)} samples: {unwound_stacks[:3]}")
    jit_stacks = pid_stacks(p, jit.pid)
    check("sanitized kiln: the JIT's code is named from its perf map",
          any("jit_hot_loop" in stack for stack in jit_stacks),
          f"{len(jit_stacks)} samples: {jit_stacks[:3]}")
    read_profile(profiles(out, "offcpu")[0])


if __name__ == "__main__":
    require_root()
    test_one_window()
    finish()
