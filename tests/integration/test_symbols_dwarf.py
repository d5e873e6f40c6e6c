# SPDX-License-Identifier: Apache-2.0
"""Symbols people can read, end to end: kiln profiles a C++ program whose hot
loop is an always_inline helper inside a method of a class template in a
namespace (tests/progs/inline_hot.cc), and `go tool pprof -raw` must show the
demangled method and the helper as its own inlined frame, each with its
file, line and function start line, as the source's MARK comments say."""
import os
import re

from kilntest import (MIN_SAMPLES, ROOT, ChildCpuTimes, check, check_samples_match_cpu, finish,
                      prog, profile_process, require_root)

SOURCE = os.path.join(ROOT, "tests", "progs", "inline_hot.cc")
METHOD = "ns::Type<double>::method(int)"
METHOD_MANGLED = "_ZN2ns4TypeIdE6methodEi"
HELPER = "ns::accumulate(double, int)"
FREQUENCY = 199


def source_lines():
    """MARK name -> line, and the declaration lines of the helper and the method."""
    marks = {}
    with open(SOURCE) as source:
        for number, text in enumerate(source, 1):
            match = re.search(r"MARK:(\w+)", text)
            if match:
                marks[match.group(1)] = number
            if "inline double accumulate(" in text:
                marks["helper_decl"] = number
            if "T method(int rounds)" in text:
                marks["method_decl"] = number
    return marks


def raw_lines(profile):
    """Location id -> its lines as `pprof -raw` prints them:
    (function, file, line, start line, system name or None), innermost first."""
    pattern = re.compile(r"^(.*) (\S+):(\d+) s=(\d+)(?:\((.*)\))?$")
    lines, current = {}, None
    section = False
    for text in profile.raw.splitlines():
        if text.startswith("Locations"):
            section = True
            continue
        if text.startswith("Mappings"):
            break
        if not section:
            continue
        match = re.match(r"\s*(\d+): 0x[0-9a-f]+(?: M=\d+)?\s*(.*)$", text)
        if match:
            current = lines.setdefault(int(match.group(1)), [])
            text = match.group(2)
        text = text.strip()
        line = pattern.match(text)
        if line and current is not None:
            current.append((line.group(1), line.group(2), int(line.group(3)),
                            int(line.group(4)), line.group(5)))
    return lines


def test_program(program):
    marks = source_lines()
    name = f"symbols {program}"
    with ChildCpuTimes() as cpu:
        p, pid, _ = profile_process([prog(program), "6"],
                                    ["--frequency", str(FREQUENCY), "--duration", "3"], name)
    if not p:
        return
    lines = raw_lines(p)
    samples = sum(sample["values"][0] for sample in p.samples)
    check_samples_match_cpu(name, samples, cpu.in_window(pid, p), FREQUENCY)
    in_method = exact = 0
    example = None
    for sample in p.samples:
        leaf = lines.get(sample["locations"][0]) if sample["locations"] else None
        count = sample["values"][0]
        if not leaf or not any(line[0] == METHOD for line in leaf):
            continue
        in_method += count
        # The helper inlined into the method: two lines in one location.
        if (len(leaf) == 2 and leaf[0][0] == HELPER and leaf[1][0] == METHOD and
                leaf[0][1] == SOURCE and leaf[1][1] == SOURCE and
                leaf[0][2] in (marks["hot"] - 1, marks["hot"]) and
                leaf[0][3] == marks["helper_decl"] and
                leaf[1][2] == marks["call"] and leaf[1][3] == marks["method_decl"] and
                leaf[1][4] in (None, METHOD_MANGLED)):
            exact += count
        elif example is None:
            example = leaf
    # Only the clock read between calls is outside it: measured 99.7-100%.
    check(f"{name}: >= 95% of samples in {METHOD}",
          in_method >= MIN_SAMPLES and in_method >= 0.95 * samples, f"{in_method}/{samples}")
    # Addresses outside the loop (the call, the return) are a small share.
    check(f"{name}: >= 90% of them in the inlined helper at its loop's lines, "
          f"called from the method's line {marks['call']}", exact >= 0.9 * in_method,
          f"{exact}/{in_method}; other leaf: {example}")
    check(f"{name}: the method's frame keeps its mangled name as system name",
          f"({METHOD_MANGLED})" in p.raw, "no system name in pprof -raw")


def main():
    test_program("inline_hot")
    test_program("inline_hot_nofp")
    finish()


if __name__ == "__main__":
    require_root()
    main()
