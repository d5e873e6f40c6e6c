# SPDX-License-Identifier: Apache-2.0
"""What may differ between kiln's symbolizer and llvm-symbolizer without
either being wrong, and the functions to feed both, for the golden tests
and bench/symbolize.py."""
import re
import subprocess

# GCC's names for the parts it splits off or specializes: "f.cold", "f.isra.0",
# and in LLVM's demangled C++ " (.isra.0.cold)".
CLONE_SUFFIX = re.compile(r"(\.(cold|isra|part|constprop|lto_priv)(\.\d+)*)+$")
CPP_CLONE_SUFFIX = re.compile(r"( \((\.(cold|isra|part|constprop|lto_priv)(\.\d+)*)+\))+$")


def llvm_notation(name):
    """A name demangled by libiberty (kiln) in LLVM's notation:
    {lambda(int)#1} as 'lambda'(int), [clone .cold] as (.cold),
    "operator< <" as "operator<<"."""
    name = re.sub(r"\{lambda\(([^()]*)\)#(\d+)\}",
                  lambda m: "'lambda%s'(%s)" % ("" if m.group(2) == "1"
                                                else int(m.group(2)) - 2, m.group(1)), name)
    name = re.sub(r" \[clone (\.[^\]]+)\]", r" (\1)", name)
    return name.replace("operator< <", "operator<<")


def unsplit(name):
    """The function a GCC split-off part belongs to, by name."""
    return CPP_CLONE_SUFFIX.sub("", CLONE_SUFFIX.sub("", name))


def undouble(path):
    """LLVM 14 and addr2line prepend the compilation directory to DWARF 5's
    directory 0, which is that directory already: "./stdlib/./stdlib/x.c"."""
    return re.sub(r"^(.+?)/\1/", r"\1/", path)


def nm_functions(path):
    """(start, size, name) of every function symbol with a size, as nm lists them."""
    out = subprocess.run(["nm", "-S", "--defined-only", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    result = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTWi" and int(fields[1], 16) > 0:
            result.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    return result
