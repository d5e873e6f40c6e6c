# SPDX-License-Identifier: Apache-2.0
"""A damaged section of a profiled program costs only that section. One C
program with a known profile (main -> chain_outer -> chain_middle ->
chain_leaf, -O2 without frame pointers so only CFI unwinds it, -rdynamic so
.dynsym names the chain) is built once intact and once per damaged
section, each copy with its own build id, and damaged by
tests/fixtures/corrupt_section.py. kiln profiles each; `go tool pprof -raw`
reads the profile back. What the damaged section carried may go (names from
.symtab, unwinding from .eh_frame, lines from .debug_info or .debug_line);
everything the other sections carry must still be there, the loss must be
counted and warned of, and kiln must neither crash nor fail."""
import os
import re
import subprocess

from kilntest import (MIN_SAMPLES, ROOT, check, finish, profile_process, require_root, tmpdir)

SOURCE = os.path.join(ROOT, "tests", "fixtures", "section_chain.c")
CORRUPT = os.path.join(ROOT, "tests", "fixtures", "corrupt_section.py")
CHAIN = ["chain_leaf", "chain_middle", "chain_outer", "main"]
# What glibc's startup adds below main: the stack is complete when it ends so.
START = ["__libc_start_call_main", "__libc_start_main", "_start"]

# name: (section, damage, what it costs); each copy has its own build id.
CASES = {
    "intact": (None, None, set()),
    "symtab": (".symtab", "offset", set()),
    "strtab": (".strtab", "offset", set()),
    "eh_frame": (".eh_frame", "garbage", {"unwinding"}),
    "debug_info": (".debug_info", "garbage", {"lines"}),
    "debug_line": (".debug_line", "garbage", {"lines"}),
}


def build(directory, name, index):
    """The program as `name`, with the damage its case names; its path."""
    path = os.path.join(directory, f"chain_{name}")
    build_id = "0x12%038x" % (index + 1)
    subprocess.run(["cc", "-O2", "-g", "-fomit-frame-pointer", "-rdynamic",
                    f"-Wl,--build-id={build_id}", SOURCE, "-o", path], check=True)
    section, damage, _ = CASES[name]
    if section:
        subprocess.run(["python3", CORRUPT, path, path, section, damage], check=True)
    return path


def leaf_samples(p):
    """(count, user frames leaf first, the leaf location's lines) of each
    sample whose leaf is in the program's hot loop."""
    kernel = p.kernel_mapping_ids()
    for sample in p.samples:
        frames = p.user_frames(sample)
        if not frames or frames[0] != "chain_leaf":
            continue
        user = [p.locations.get(loc, {}) for loc in sample["locations"]]
        user = [location for location in user if location.get("mapping") not in kernel]
        yield sample["values"][0], frames, user[0].get("lines", [])


def has_line(lines):
    return any(re.search(r"section_chain\.c:[1-9]\d*$", where) for _, where in lines)


def check_case(directory, name, index):
    section, _, costs = CASES[name]
    path = build(directory, name, index)
    p, _, err = profile_process([path, "6"], ["-v", "--frequency", "199", "--duration", "3"],
                                name)
    check(f"{name}: kiln logs no crash or error",
          not re.search(r"Segmentation|Aborted|AddressSanitizer|kiln: error", err), err[-2000:])
    if not p:
        return
    total = sum(s["values"][0] for s in p.samples)
    leaf = list(leaf_samples(p))
    named = sum(n for n, _, _ in leaf)
    check(f"{name}: the hot function is named (from the sections left)",
          total >= MIN_SAMPLES and named >= 0.9 * total, f"{named} of {total} samples")
    complete = sum(n for n, frames, _ in leaf
                   if frames[:len(CHAIN)] == CHAIN and frames[-len(START):] == START)
    if "unwinding" in costs:
        # Its table is gone: kiln walks it with frame pointers, which it has none of.
        check(f"{name}: no complete stack from a file without CFI", complete < 0.5 * named,
              f"{complete} of {named}")
    else:
        check(f"{name}: every stack unwinds main -> chain_outer -> chain_middle -> chain_leaf",
              named and complete >= 0.99 * named, f"{complete} of {named}; e.g. "
              f"{[frames for _, frames, _ in leaf[:2]]}")
    with_lines = sum(n for n, _, lines in leaf if has_line(lines))
    if "lines" in costs:
        check(f"{name}: no source lines", with_lines == 0, f"{with_lines} of {named}")
    else:
        check(f"{name}: source lines kept", named and with_lines == named,
              f"{with_lines} of {named}; e.g. {[lines for _, _, lines in leaf[:1]]}")
    counters = re.findall(r"damaged ELF files[^\n]*", err)
    warnings = re.findall(r"kiln: warning: [^\n]*: skipped [^\n]*", err)
    if section:
        others = [f"1 {s}" for s, _, _ in CASES.values() if s and s != section]
        check(f"{name}: the loss is counted for {section} alone",
              len(counters) == 1 and re.search(rf"\b1 {re.escape(section)}\b", counters[0])
              and not any(re.search(rf"\b{re.escape(o)}\b", counters[0]) for o in others),
              f"{counters}")
        check(f"{name}: one warning names the file and the section",
              len(warnings) == 1 and f"{path}: skipped damaged {section};" in warnings[0],
              f"{warnings}")
    else:
        check(f"{name}: no loss reported", not counters and not warnings,
              f"{counters} {warnings}")


def main():
    require_root()
    directory = tmpdir("kiln-corrupt-")
    for index, name in enumerate(CASES):
        check_case(directory, name, index)
    finish()


if __name__ == "__main__":
    main()
