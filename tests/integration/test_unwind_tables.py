# SPDX-License-Identifier: Apache-2.0
"""The unwind table builder's own CFI interpreter against two independent
readers of the same CFI, on the real files of this machine (glibc, ld.so,
libstdc++, node, libpython, the JVM, perl, bash, coreutils, libgcrypt's
hand-written assembly, the ground-truth programs):

  - libdw (unwind_table__build_reference: dwarf_cfi_addrframe at each row),
    which the rows must equal exactly, file by file;
  - binutils' `readelf -wF` (its decoded CFI table), which every row's CFA
    and rbp rule must match wherever readelf has a row, in both directions.
    Where libdw gives up on an FDE (libgcrypt's assembly redefines the CFA
    register after a CFA expression) the rows still match readelf's.

The builds' times are printed, not judged."""
import glob
import os
import re
import subprocess

from kilntest import BUILD, check, finish, prog

TOOL = os.path.join(BUILD, "tests", "tools", "unwind_compare")


def files():
    candidates = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
                  "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
                  "/usr/bin/node", "/usr/bin/perl", "/bin/bash", "/bin/ls", "/usr/bin/sha256sum",
                  "/bin/gzip", "/usr/bin/python3.11", prog("split_nofp"), prog("split")]
    candidates += sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libgcrypt.so.20*"))[:1]
    candidates += sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"))[:1]
    candidates += sorted(glob.glob("/usr/lib/jvm/*/lib/server/libjvm.so"))[:1]
    candidates += sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/3.1[1-3]*/lib/libpython3.1[1-3].so.1.0")))[:1]
    return [os.path.realpath(f) for f in candidates if os.path.exists(f)]


def readelf_rows(path):
    """[(start, end, [(loc, cfa, rbp)])] per FDE, as readelf -wF decodes them."""
    out = subprocess.run(["readelf", "-wF", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    fdes, columns, rows = [], [], None
    for line in out.splitlines():
        found = re.search(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)", line)
        if found:
            rows = []
            fdes.append((int(found.group(1), 16), int(found.group(2), 16), rows))
            continue
        fields = line.split()
        if rows is None or not fields:
            if not fields:
                rows = None
            continue
        if fields[0] == "LOC":
            columns = fields
            continue
        if re.fullmatch(r"[0-9a-f]{8,}", fields[0]) and len(fields) == len(columns):
            named = dict(zip(columns, fields))
            rows.append((int(fields[0], 16), named["CFA"], named.get("rbp", "u"),
                         named.get("ra", "u")))
    return fdes


def kiln_rows(path):
    out = subprocess.run([TOOL, "--dump", path], stdout=subprocess.PIPE, text=True)
    rows = []
    for line in out.stdout.splitlines():
        fields = line.split()
        rows.append((int(fields[0], 16), fields[1], fields[2] if len(fields) > 2 else ""))
    return rows


def expected(cfa, rbp, ra):
    """kiln's (cfa, rbp) for a readelf row, or None when readelf cannot say (an
    expression: the PLT's, whose shape kiln reads)."""
    if ra == "u":
        return ("end", "")  # no return address: the outermost frame
    if ra != "c-8":
        return ("unsupported", "")
    found = re.fullmatch(r"(rsp|rbp|rbx)\+(\d+)", cfa)
    if not found:
        return None if cfa == "exp" else ("unsupported", "")
    if int(found.group(2)) > 65535:
        return ("unsupported", "")  # more than a row holds
    if rbp in ("u", "s"):
        rbp = "same"
    elif not re.fullmatch(r"c[+-]\d+", rbp):
        rbp = "unsupported"
    return (cfa, rbp)


def check_against_readelf(path):
    ours = kiln_rows(path)
    pcs = [pc for pc, _, _ in ours]
    wrong, checked, covered_end = [], 0, 0
    import bisect
    for start, end, rows in sorted(readelf_rows(path), key=lambda fde: fde[0]):
        if start < covered_end:
            continue  # overlapping an earlier FDE: the table keeps the first
        covered_end = end
        for i, (loc, cfa, rbp, ra) in enumerate(rows):
            want = expected(cfa, rbp, ra)
            at = bisect.bisect_right(pcs, loc) - 1
            if want is None or at < 0:
                continue
            got = ours[at][1:]
            if got[0] == "signal":
                continue  # the CIE says signal frame ('S'): readelf does not show it
            checked += 1
            if got != want:
                wrong.append(f"{loc:#x}: readelf {cfa} rbp {rbp}, kiln {got}")
    return checked, wrong


def main():
    paths = files()
    out = subprocess.run([TOOL] + paths, stdout=subprocess.PIPE, text=True).stdout
    results = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[2] in ("same", "differ"):
            results[fields[0]] = (int(fields[1]), fields[2], float(fields[3]), float(fields[4]))
    check("unwind tables: every file built both ways", len(results) == len(paths) >= 10,
          f"{len(results)} of {len(paths)}: {out[-1500:]}")
    for path in paths:
        rows, verdict, ours, theirs = results.get(path, (0, "missing", 0, 0))
        checked, wrong = check_against_readelf(path)
        if verdict != "same":
            print(f"note: {os.path.basename(path)}: rows differ from libdw's: "
                  + " ".join(l for l in out.splitlines() if not l.startswith("/"))[:300])
        check(f"unwind tables: {os.path.basename(path)} ({rows} rows) matches readelf's "
              f"decoding, {'and' if verdict == 'same' else 'but not'} libdw's",
              checked > 0 and not wrong and (verdict == "same" or
                                             "libgcrypt" in path),
              f"{checked} rows checked, {len(wrong)} wrong: {wrong[:4]}; libdw: {verdict}")
        print(f"  {os.path.basename(path)}: {rows} rows, interpreter {ours * 1000:.1f} ms, "
              f"libdw {theirs * 1000:.1f} ms")
    finish()


if __name__ == "__main__":
    main()
