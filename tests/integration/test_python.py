#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPython frames read in BPF (bpf/python.bpf.h) and named by the agent,
for every CPython this machine has: pyenv's 3.6 to 3.13 (shared libpython)
and Debian's /usr/bin/python3.11 (static, stripped). Ground-truth programs
print their code objects' addresses (id(code)); each sample's Python frames
must be the program's exact call chain, by name, file, line and code
address, in place of the evaluator's native frames, read back through
`go tool pprof`:
  split      6:3:1 across three functions calling one hot leaf
  recursion  a 100-deep Python recursion
  ccall      Python calling C calling Python: sorted(key=a Python function)
  sleeper    time.sleep under a Python function, in the off-CPU profile
Each scenario is a thread of one process per interpreter, so each thread's
samples carrying its own functions is checked too, and one kiln run does all.
"""
import ast
import glob
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kilntest as kt  # noqa: E402

# One program per interpreter, one thread per scenario: it prints its
# functions' code addresses and each thread its id, then runs until killed.
PROGRAM = '''import ctypes, sys, threading, time
libc = ctypes.CDLL(None)
shown = threading.Lock()
def show(name):
    # One whole line at a time: threads' print()s interleave text and newline.
    with shown:
        sys.stdout.write("tid %s %d\\n" % (name, libc.syscall(186)))  # SYS_gettid
        sys.stdout.flush()
def work(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
def a():
    return work(6000)  # L:a>work
def b():
    return work(3000)  # L:b>work
def c():
    return work(1000)  # L:c>work
def split():
    show("split")
    while True:
        a()  # L:split>a
        b()  # L:split>b
        c()  # L:split>c
def spin():
    x = 0
    while True:
        x += 1
def rec(n):
    if n == 0:
        spin()  # L:rec>spin
    rec(n - 1)  # L:rec>rec
def recursion():
    show("recursion")
    rec(100)  # L:recursion>rec
def key(v):
    x = 0
    for i in range(100):
        x += i
    return -v
def sorter(data):
    return sorted(data, key=key)  # L:sorter>key
def ccall():
    show("ccall")
    data = list(range(200))
    while True:
        sorter(data)  # L:ccall>sorter
def nap():
    while True:
        time.sleep(0.02)  # L:nap>sleep
def sleeper():
    show("sleeper")
    nap()  # L:sleeper>nap
functions = [work, a, b, c, split, spin, rec, recursion, key, sorter, ccall, nap, sleeper]
for f in functions:
    print("code", f.__name__, hex(id(f.__code__)))
threads = [threading.Thread(target=f) for f in (split, recursion, ccall, sleeper)]
for t in threads:
    t.start()
for t in threads:
    t.join()
'''

SHARE = 0.95
# Samples a thread needs for its checks to mean something.
MIN_SAMPLES = 8
# Where every thread's chain ends, outermost last: threading's own frames.
THREAD_FRAMES = ["run", "_bootstrap_inner", "_bootstrap"]


def interpreters():
    """(label, path) of each CPython to test, and the versions missing."""
    found, missing = [], []
    try:
        root = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL).stdout.strip()
    except OSError:
        root = os.path.expanduser("~/.pyenv")
    for minor in range(6, 14):
        paths = sorted(glob.glob(os.path.join(root, "versions", f"3.{minor}.*", "bin",
                                              f"python3.{minor}")))
        if paths:
            found.append((os.path.basename(os.path.dirname(os.path.dirname(paths[-1]))),
                          paths[-1]))
        else:
            missing.append(f"3.{minor}")
    if os.path.exists("/usr/bin/python3.11"):
        found.append(("debian-3.11", "/usr/bin/python3.11"))
    return found, missing


class Program:
    """One running ground-truth program: its lines, functions, code addresses and threads."""

    def __init__(self, label, directory, interpreter):
        self.label = label
        self.minor = int(label.replace("debian-", "").split(".")[1])
        self.stripped = label.startswith("debian")
        self.path = os.path.join(directory, "ground_truth.py")
        with open(self.path, "w") as f:
            f.write(PROGRAM)
        self.calls = {}  # "caller>callee" -> line of the call
        for number, text in enumerate(PROGRAM.splitlines(), 1):
            if "# L:" in text:
                self.calls[text.split("# L:")[1].strip()] = number
        self.ranges = {}
        for node in ast.walk(ast.parse(PROGRAM)):
            if isinstance(node, ast.FunctionDef):
                self.ranges[node.name] = (node.lineno, node.end_lineno)
        self.out = open(os.path.join(directory, "ground_truth.out"), "w+")
        self.proc = kt.start([interpreter, self.path], stdout=self.out)
        self.codes = {}
        self.tids = {}

    def read_output(self):
        self.out.seek(0)
        for line in self.out.read().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "code":
                self.codes[parts[1]] = int(parts[2], 16)
            elif len(parts) == 3 and parts[0] == "tid":
                self.tids[parts[1]] = parts[2]
        return len(self.tids) == 4


def python_mapping_ids(profile):
    return {i for i, text in profile.mappings.items() if "[python]" in text}


def frames(profile, sample):
    """A sample's user frames, leaf first: dicts with python, name, file, line, code."""
    python = python_mapping_ids(profile)
    kernel = profile.kernel_mapping_ids()
    result = []
    for loc in sample["locations"]:
        location = profile.locations.get(loc)
        if location is None or location["mapping"] in kernel:
            continue
        names = location["lines"] or [(None, "")]
        # The outermost line of a location is the function its address is in.
        function, place = names[-1]
        file, _, line = place.rpartition(":")
        entry = {"python": location["mapping"] in python, "name": function or "", "file": file,
                 "line": int(line) if line.lstrip("-").isdigit() else None,
                 "inlined": [n or "" for n, _ in names], "code": None}
        if entry["python"]:
            entry["code"] = (location["address"] & ((1 << 44) - 1)) << 3
        result.append(entry)
    return result


def short(name):
    """co_qualname (3.11+: Thread.run) or co_name (run): the last part."""
    return name.rsplit(".", 1)[-1]


def cut(stack):
    """The stack was cut at kiln's 256 frames: its outermost frames are missing."""
    return any("too deep" in n for f in stack for n in f["inlined"])


def chain_ok(program, chain, was_cut=False):
    """Whether Python frames (leaf first) are exactly the program's: its own
    in its file, each the function its code address is, a caller at the line
    of its call to the next, the leaf within its function; threading's below
    (unless the stack was cut before them)."""
    names = [short(f["name"]) for f in chain]
    own = chain
    if not was_cut:
        if names[-3:] != THREAD_FRAMES:
            return False, f"{names} does not end in threading's frames"
        for f in chain[-3:]:
            if not f["file"].endswith("threading.py"):
                return False, f"{f['name']} in {f['file']!r}, not threading.py"
        own = chain[:-3]
    for i, frame in enumerate(own):
        name = names[i]
        if frame["file"] != program.path:
            return False, f"frame {i} {frame['name']} in {frame['file']!r}"
        if program.codes.get(name) != frame["code"]:
            return False, f"frame {i} {name}: code {frame['code']:#x}, not {program.codes.get(name)}"
        if i == 0:
            low, high = program.ranges.get(name, (0, -1))
            if frame["line"] is None or not low <= frame["line"] <= high:
                return False, f"leaf {name} at line {frame['line']}, not in {low}-{high}"
        else:
            want = program.calls.get(f"{name}>{names[i - 1]}")
            if frame["line"] != want:
                return False, f"frame {i} {name} at line {frame['line']}, its call of {names[i - 1]} at {want}"
    return True, ""


def python_chain(stack):
    return [f for f in stack if f["python"]]


def evaluator_left(stack):
    """A native _PyEval_EvalFrameDefault left in the stack: its frames were not read."""
    return any("_PyEval_EvalFrameDefault" in n for f in stack if not f["python"]
               for n in f["inlined"])


def own_names(chain, was_cut):
    names = [short(f["name"]) for f in chain]
    return names if was_cut else names[:-3]


def split_shape(program, stack, chain, names, counts):
    ok = names in (["split"], ["a", "split"], ["b", "split"], ["c", "split"],
                   ["work", "a", "split"], ["work", "b", "split"], ["work", "c", "split"])
    if ok and len(names) == 3:
        counts[names[1]] = counts.get(names[1], 0) + 1
    return ok


def recursion_shape(program, stack, chain, names, counts):
    if names == ["spin"] + ["rec"] * 101 + ["recursion"]:
        return True
    # <= 3.10: each call has native frames of its own: 3.6-3.8's stacks pass 256 frames.
    return (program.minor <= 10 and cut(stack) and len(names) >= 40 and names[0] == "spin" and
            all(n == "rec" for n in names[1:]))


def ccall_shape(program, stack, chain, names, counts):
    if names in (["sorter", "ccall"], ["ccall"]):
        return True
    if names != ["key", "sorter", "ccall"]:
        return False
    counts["key"] = counts.get("key", 0) + 1
    # Between key and sorter: the C code of sorted(), which calls key.
    between = stack[stack.index(chain[0]) + 1:stack.index(chain[1])]
    return bool(between) and (program.stripped or
                              any("sort" in n for f in between for n in f["inlined"]))


def sleeper_shape(program, stack, chain, names, counts):
    # The leaf is the C code of time.sleep, in the kernel's wait.
    return names == ["nap", "sleeper"] and stack.index(chain[0]) > 0


SCENARIOS = {  # thread -> (profile, shape, what the check says)
    "split": ("cpu", split_shape, "work <- a|b|c <- split"),
    "recursion": ("cpu", recursion_shape, "spin <- 101 rec <- recursion"),
    "ccall": ("cpu", ccall_shape, "key <- [sorted's C] <- sorter <- ccall"),
    "sleeper": ("offcpu", sleeper_shape, "nap <- sleeper, off-CPU"),
}


def check_thread(program, scenario, profile):
    kind, shape, what = SCENARIOS[scenario]
    tid = program.tids[scenario]
    samples = [s for s in profile.samples if s["labels"].get("pid", [""])[0] ==
               str(program.proc.pid) and s["labels"].get("tid", [""])[0] == tid]
    good, total, counts, why = 0, 0, {}, ""
    for sample in samples:
        count = sample["values"][0]
        total += count
        stack = frames(profile, sample)
        chain = python_chain(stack)
        was_cut = scenario == "recursion" and program.minor <= 10 and cut(stack)
        ok, detail = chain_ok(program, chain, was_cut) if chain else (False, "no Python frames")
        if ok and shape(program, stack, chain, own_names(chain, was_cut), counts) and (
                program.minor < 11 or scenario == "recursion" or not evaluator_left(stack)):
            good += count
        elif not why:
            why = f"{[short(f['name']) for f in chain]}: {detail or 'not ' + what}"
    if program.minor < 11 and scenario == "recursion":
        what += " (or, cut at 256 frames, spin <- 40+ rec)"
    kt.check(f"{program.label} {scenario}: >= 95% of {total} {kind} samples carry {what}",
             total >= MIN_SAMPLES and good >= SHARE * total, f"{good} good; first bad: {why}")
    return counts


def check_split_ratio(program, counts):
    # 6:3:1 within four binomial standard deviations (at least 0.05).
    total = sum(counts.values())
    ok = total >= MIN_SAMPLES
    for name, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        bound = max(0.05, 4 * math.sqrt(share * (1 - share) / max(total, 1)))
        ok = ok and abs(counts.get(name, 0) / max(total, 1) - share) <= bound
    kt.check(f"{program.label} split: work's callers split 6:3:1", ok, f"{counts}")


def main():
    kt.require_root()
    found, missing = interpreters()
    for version in missing:
        print(f"skip CPython {version}: not installed (pyenv install {version})")
    only = os.environ.get("KILN_TEST_PYTHONS")
    if only:
        found = [(l, p) for l, p in found if any(l.startswith(o) for o in only.split(","))]
    directory, out = kt.tmpdir(), kt.tmpdir()
    programs = []
    for label, interpreter in found:
        os.mkdir(os.path.join(directory, label))
        programs.append(Program(label, os.path.join(directory, label), interpreter))
    try:
        kt.wait_for(lambda: all(p.read_output() for p in programs), timeout=120)
        for program in programs:
            kt.check(f"{program.label}: the program says its threads' ids", len(program.tids) == 4,
                     f"{program.tids}; its output: {open(program.out.name).read()[-500:]!r}")
        ready = [p for p in programs if len(p.tids) == 4]
        # One run for all: one busy process per interpreter (its threads share its GIL).
        args = ["--iterations", "1", "--duration", "8", "--frequency", "199", "--off-cpu",
                "--output-dir", out]
        for program in ready:
            args += ["--pid", str(program.proc.pid)]
        code, err = kt.run_kiln(args, timeout=600)
    finally:
        for program in programs:
            kt.stop(program.proc)
    cpu, offcpu = kt.profiles(out, "cpu"), kt.profiles(out, "offcpu")
    if kt.check("kiln writes a CPU and an off-CPU profile",
                code == 0 and len(cpu) == 1 and len(offcpu) == 1,
                f"exit {code}, {cpu} {offcpu}, stderr: {err[-3000:]}"):
        profiles = {"cpu": kt.read_profile(cpu[0]), "offcpu": kt.read_profile(offcpu[0])}
        for program in ready:
            for scenario in SCENARIOS:
                counts = check_thread(program, scenario, profiles[SCENARIOS[scenario][0]])
                if scenario == "split":
                    check_split_ratio(program, counts)
    kt.finish()


if __name__ == "__main__":
    main()
