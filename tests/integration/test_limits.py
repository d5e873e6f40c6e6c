# SPDX-License-Identifier: Apache-2.0
"""Full maps and deep stacks: every loss is counted, reported and visible in the
profile, never silent; kiln keeps running."""
import re

from kilntest import check, finish, prog, profile_process


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


if __name__ == "__main__":
    test_stacks_map_full()
    test_counts_map_full()
    test_deep_stacks_frame_pointers()
    test_deep_stacks_dwarf()
    finish()
