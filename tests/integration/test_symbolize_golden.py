# SPDX-License-Identifier: Apache-2.0
"""kiln's symbolizer alone against llvm-symbolizer, on every address of every
function of the DWARF fixtures (tests/fixtures/inline_*, by gcc and clang at
-O2 -g): function names, files, lines, declaration lines, and the whole
inline chain must agree. What may differ, and only that:
  - demangler notation: libiberty (kiln) writes {lambda(double, double)#1},
    [clone .cold] and "operator< <", LLVM 'lambda'(double, double), (.cold)
    and "operator<<";
  - LLVM 14 leaves some names mangled that libiberty demangles: there the
    raw names are compared;
  - the function part GCC splits off a function (f.cold, f.isra.0) is named
    after its function by kiln, after its local symbol by llvm-symbolizer."""
import glob
import json
import os
import random
import subprocess

from kilntest import BUILD, check, finish
from symbolcompare import llvm_notation, nm_functions, unsplit

FIXTURES = os.path.join(BUILD, "tests", "fixtures")
DRIVER = os.path.join(BUILD, "tests", "tools", "symbolize")
PROGRAMS = ["inline_c_gcc", "inline_c_clang", "inline_cpp_gcc", "inline_cpp_clang"]


def llvm_frames(path, addresses):
    out = subprocess.run(["llvm-symbolizer", "--output-style=JSON", "--obj=" + path],
                         input="".join("0x%x\n" % a for a in addresses),
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        symbols = json.loads(line)["Symbol"]
        result.append([{"function": s["FunctionName"], "file": s["FileName"],
                        "line": s["Line"], "start_line": s["StartLine"]}
                       for s in symbols if s["FunctionName"] != "??" or s["FileName"] != "??"])
    return result


def kiln_frames(path, addresses):
    out = subprocess.run([DRIVER, path], input="".join("%x\n" % a for a in addresses),
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return [json.loads(line)["frames"] for line in out.splitlines()]


def comparable(llvm, kiln):
    """Both chains as tuples, with the allowed differences taken out."""
    ours = []
    for i, frame in enumerate(kiln):
        name = llvm_notation(frame["function"])
        if i < len(llvm) and llvm[i]["function"].startswith("_Z") and \
                frame["system_name"] == llvm[i]["function"]:
            name = frame["system_name"]
        ours.append((name, frame["file"] or "", frame["line"], frame["start_line"]))
    theirs = [(f["function"], f["file"], f["line"], f["start_line"]) for f in llvm]
    if theirs:
        outer = theirs[-1][0]
        if ours and ours[-1][0] == unsplit(outer):
            theirs[-1] = (unsplit(outer),) + theirs[-1][1:]
    return theirs, ours


def test_program(program):
    path = os.path.join(FIXTURES, program)
    addresses = [a for start, size, _ in nm_functions(path) for a in range(start, start + size)]
    llvm = llvm_frames(path, addresses)
    kiln = kiln_frames(path, addresses)
    differ = []
    inlined = 0
    for address, theirs, ours in zip(addresses, llvm, kiln):
        theirs, ours = comparable(theirs, ours)
        inlined += len(ours) > 1
        if theirs != ours:
            differ.append("0x%x: llvm %s, kiln %s" % (address, theirs, ours))
    check(f"golden {program}: {len(addresses)} addresses agree with llvm-symbolizer",
          len(addresses) > 100 and len(llvm) == len(kiln) == len(addresses) and not differ,
          f"{len(differ)} differ; first: {differ[:3]}")
    # The fixtures exist for their inlined code: the comparison must have covered some.
    check(f"golden {program}: inlined frames among them", inlined > 20, inlined)


def executable_range(path):
    out = subprocess.run(["readelf", "-lW", path], stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD" and "E" in fields[6:]:
            return int(fields[2], 16), int(fields[5], 16)
    return None


def test_reader_reopened():
    """The daemon closes each file's DWARF reader at every window's end and
    finds a unit again, at its offset, when an address next falls in it:
    answers must not change. 20000 random addresses of a big library with
    DWARF of many units (pyenv's libpython), resolved in one reader and with
    a window ended every 250 addresses, must give byte-identical output."""
    candidates = sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/3.1[1-3]*/lib/libpython3.1[1-3].so.1.0")))
    if not candidates:
        print("note: no pyenv libpython here: reader reopening checked on the fixtures only")
    for path in candidates[:1] + [os.path.join(FIXTURES, "inline_cpp_gcc")]:
        span = executable_range(path)
        rng = random.Random(13)
        addresses = "".join("%x\n" % (span[0] + rng.randrange(span[1])) for _ in range(20000))
        runs = [subprocess.run([DRIVER] + extra + [path], input=addresses, text=True,
                               stdout=subprocess.PIPE, check=True).stdout
                for extra in ([], ["--end-window-every", "250"])]
        lines = runs[0].count('"line"')
        check(f"golden: {os.path.basename(path)}'s answers the same with its reader reopened "
              "80 times", runs[0] == runs[1] and lines > 1000,
              f"{lines} lines; outputs differ" if runs[0] != runs[1] else f"{lines} lines")


def main():
    if not check("golden: test driver built", os.access(DRIVER, os.X_OK),
                 f"{DRIVER} missing: run make check"):
        finish()
    for program in PROGRAMS:
        test_program(program)
    test_reader_reopened()
    finish()


if __name__ == "__main__":
    main()
