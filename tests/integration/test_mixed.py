# SPDX-License-Identifier: Apache-2.0
"""Mixed-mode stacks: code that no CFI covers inside a file (hand-written
assembly, V8's builtins in node's .text) is stepped with frame pointers when
the chain is sane, then CFI takes over again; a chain that is not sane ends
the stack there, cut, with no frame made up from it. JIT code named from
perf maps keeps its callers: node's, and CPython's -X perf trampolines,
which keep no frame pointer."""
import collections
import glob
import os
import re
import shutil

from kilntest import (MIN_SAMPLES, ChildCpuTimes, check, check_samples_match_cpu, finish, prog,
                      profile_process, require_root, tmpdir)

START = ["__libc_start_call_main", "__libc_start_main", "_start"]
FREQUENCY = 199
NO_CFI = "[truncated: no unwind info]"


def counter(err, pattern):
    """The sum over kiln's windows of a counter its unwind line shows."""
    return sum(int(n) for n in re.findall(pattern, err))


def sample_stacks(p, pid):
    for s in p.samples:
        if s["labels"].get("pid") == [str(pid)]:
            yield s["values"][0], p.user_stack(s)


def profile(argv, name, settle=0.3, seconds="4"):
    """One window of argv under --pid: (profile or None, pid, stderr, CPU seconds).
    The perf map a JIT runtime wrote for it is removed afterwards."""
    with ChildCpuTimes() as cpu:
        p, pid, err = profile_process(argv, ["--frequency", str(FREQUENCY), "--duration",
                                             seconds, "--verbose"], name, settle=settle)
    perf_map = f"/tmp/perf-{pid}.map"
    if os.path.exists(perf_map):
        os.unlink(perf_map)
    return p, pid, err, cpu.in_window(pid, p) if p else 0


def test_assembly_without_cfi():
    """asm_trampoline has no FDE and keeps rbp a frame pointer; outer and
    inner have CFI and no frame pointers: the walk goes CFI, frame pointer,
    CFI down to _start."""
    name = "assembly without CFI"
    p, pid, err, cpu_seconds = profile([prog("asm_trampoline_nofp"), "6"], name)
    if not p:
        return
    expected = ["spin", "inner", "asm_trampoline", "outer", "main"] + START
    total = exact = 0
    others = collections.Counter()
    for n, stack in sample_stacks(p, pid):
        total += n
        if stack == expected:
            exact += n
        else:
            others[tuple(stack)] += n
    check_samples_match_cpu(name, total, cpu_seconds, FREQUENCY)
    check(f"{name}: >= 95% of samples exactly spin <- inner <- asm_trampoline <- outer <- main",
          total >= MIN_SAMPLES and exact >= 0.95 * total,
          f"{exact}/{total}; most common others: {others.most_common(2)}")
    mixed = counter(err, r"(\d+) in code without CFI")
    check(f"{name}: the frames without CFI are counted", mixed >= max(exact, 1),
          f"{mixed} for {exact} exact samples")


def test_broken_frame_pointer_chain():
    """rbp that is no frame pointer, in code without CFI: a record on the
    stack whose return address is in no mapping, and one far from the stack
    whose return address is main's. Each stack ends at the assembly frame,
    cut for want of unwind info, and the refusals are counted."""
    name = "broken frame-pointer chain"
    p, pid, err, cpu_seconds = profile([prog("asm_trampoline_nofp"), "6", "broken"], name)
    if not p:
        return
    expected = {tuple(["spin", "inner", trampoline, NO_CFI])
                for trampoline in ("asm_stack_junk", "asm_far_frame")}
    total = clean = 0
    seen = collections.Counter()
    others = collections.Counter()
    for n, stack in sample_stacks(p, pid):
        total += n
        if tuple(stack) in expected:
            clean += n
            seen[stack[2]] += n
        else:
            others[tuple(stack)] += n
    check_samples_match_cpu(name, total, cpu_seconds, FREQUENCY)
    # Each of the two spins half the time; the clock read between them is the rest.
    check(f"{name}: >= 95% of samples end at the assembly frame, cut, both kinds seen",
          total >= MIN_SAMPLES and clean >= 0.95 * total and len(seen) == 2,
          f"{clean}/{total} {dict(seen)}; most common others: {others.most_common(2)}")
    refused = counter(err, r"(\d+) refused \(broken chain\)")
    check(f"{name}: the refusals are counted", refused >= max(clean, 1),
          f"{refused} for {clean} samples cut")


def check_jit_reaches_main(name, p, pid, is_function, main, what):
    """Checks that >= 95% of pid's samples holding a frame of the JIT
    function (is_function(frame)) reach main (the runtime's: node's and
    python's main jump to it) and _start, uncut. Returns how many did."""
    below_main = [main] + START
    total = complete = 0
    others = collections.Counter()
    for n, stack in sample_stacks(p, pid):
        frames = [i for i, frame in enumerate(stack) if is_function(frame)]
        if not frames:
            continue
        total += n
        if stack[-len(below_main):] == below_main and not any(
                frame.startswith("[truncated") for frame in stack):
            complete += n
        else:
            others[tuple(stack[frames[-1]:])] += n
    print(f"# {name}: {complete}/{total} samples of {what} complete down to main")
    check(f"{name}: {MIN_SAMPLES}+ samples hold {what}, named from the perf map",
          total >= MIN_SAMPLES, total)
    check(f"{name}: >= 95% of them reach the runtime's main and _start",
          total >= MIN_SAMPLES and complete >= 0.95 * total,
          f"{complete}/{total}; most common others below it: {others.most_common(2)}")
    return complete


# V8 marks a function's tier before its name: * optimised, ~ interpreted, ^ or + baseline.
JS_FUNCTION = re.compile(r"JS:[*~^+]?kiln_fib ")
NODE_SCRIPT = """
// A hot recursive function, optimised after a few calls and named from the
// perf map node writes: JS:*kiln_fib.
function kiln_fib(n) { return n < 2 ? n : kiln_fib(n - 1) + kiln_fib(n - 2); }
const end = Date.now() + Number(process.argv[2]) * 1000;
let sink = 0;
while (Date.now() < end) sink += kiln_fib(22);
if (sink < 0) console.log(sink);
"""


def test_node():
    """node --perf-basic-prof: JS frames in JIT code, V8's builtins without
    CFI in node's .text, node's C++ with CFI. The samples that hold the JS
    function reach node's main (a jump to node::Start, so node::Start is the
    frame) and _start, complete."""
    name = "node"
    node = shutil.which("node")
    if not node:
        print(f"skip {name}: node is not installed")
        return
    directory = tmpdir()
    script = os.path.join(directory, "workload.js")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    # 2 s to start and optimise kiln_fib before the window opens. The perf map
    # makes V8 log too: into the temporary directory, not the current one.
    p, pid, _, _ = profile([node, "--perf-basic-prof", "--no-logfile-per-isolate",
                              "--logfile=" + os.path.join(directory, "v8.log"), script, "20"],
                             name, settle=2, seconds="5")
    if not p:
        return
    check_jit_reaches_main(name, p, pid, JS_FUNCTION.match, "node::Start(int, char**)",
                           "the JS function")


PYTHON_SCRIPT = """
import sys, time
def kiln_fib(n):
    return n if n < 2 else kiln_fib(n - 1) + kiln_fib(n - 2)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    kiln_fib(20)
"""


def python_with_perf_trampolines():
    """A Python 3.12 or later, or None: -X perf came with 3.12. On PATH, or
    one pyenv installed (its shims run only the versions it selected)."""
    for name in ("python3.13", "python3.12"):
        path = shutil.which(name)
        if path and "/shims/" not in path:
            return path
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", "3.1[2-9]*", "bin", "python3.1[2-9]")))
    return found[-1] if found else None


def test_python_perf_trampolines():
    """python -X perf: each Python call goes through a trampoline in
    anonymous memory, named py::FUNCTION in the perf map, with neither CFI
    nor a frame pointer. The samples that hold the Python function reach
    Py_BytesMain (python's main jumps to it) and _start, complete."""
    name = "python -X perf"
    python = python_with_perf_trampolines()
    if not python:
        print(f"skip {name}: no python3.12 or later")
        return
    script = os.path.join(tmpdir(), "workload.py")
    with open(script, "w") as f:
        f.write(PYTHON_SCRIPT)
    p, pid, err, _ = profile([python, "-X", "perf", script, "20"], name, settle=1, seconds="5")
    if not p:
        return
    # Measured 99.0-99.4%: a sample inside a trampoline itself is cut.
    print(f"# {name}: {python}")
    complete = check_jit_reaches_main(name, p, pid,
                                      lambda frame: frame.startswith("py::kiln_fib:"),
                                      "Py_BytesMain", "the Python function")
    trampolines = counter(err, r"(\d+) through CPython trampolines")
    check(f"{name}: the trampoline frames are counted", trampolines >= max(complete, 1),
          f"{trampolines} for {complete} complete samples")


if __name__ == "__main__":
    require_root()
    test_assembly_without_cfi()
    test_broken_frame_pointer_chain()
    test_node()
    test_python_perf_trampolines()
    finish()
