# SPDX-License-Identifier: Apache-2.0
"""Symbols for the hard targets: JIT code named by perf maps, binaries seen
only inside their own mount namespace, binaries deleted while they run, and
bursts of processes that live 50 ms. Ground truth from tests/progs, profiles
read back with `go tool pprof -raw`."""
import os
import re
import shutil
import signal
import subprocess
import time

from kilntest import (ROOT, check, finish, prog, profiles, read_profile, require_root, start,
                      start_kiln, stop, tmpdir, wait_for, wait_sampling)

# What glibc's startup adds below main.
START = ["__libc_start_call_main", "__libc_start_main", "_start"]
HOT = ("hot_a", "hot_b", "hot_c")


def label(sample, key):
    values = sample["labels"].get(key)
    return values[0] if values else None


def leaf_location(p, sample):
    """The sample's innermost user location (kernel frames skipped)."""
    kernel = p.kernel_mapping_ids()
    for loc in sample["locations"]:
        location = p.locations.get(loc)
        if location and location["mapping"] not in kernel:
            return location
    return None


def kiln_wait(kiln, timeout=90):
    try:
        _, err = kiln.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(kiln)
        _, err = kiln.communicate()
        err = "timeout: " + err
    return err


def profile_running(pids, name, seconds="4", extra=()):
    """Profiles running processes for one window with kiln --pid; returns
    (profile or None, kiln's stderr)."""
    out = tmpdir()
    args = [arg for pid in pids for arg in ("--pid", str(pid))]
    kiln = start_kiln(args + ["--frequency", "199", "--duration", seconds, "--iterations", "1",
                              "--output-dir", out] + list(extra))
    err = kiln_wait(kiln)
    files = profiles(out)
    if not check(f"{name}: one profile", kiln.returncode == 0 and len(files) == 1, err):
        return None, err
    return read_profile(files[0]), err


def split_share(p, pid, name):
    """Checks that pid's samples in hot_* are exact down to main, and returns (exact, total)."""
    exact = total = 0
    bad = {}
    for s in p.samples:
        if label(s, "pid") != str(pid):
            continue
        stack = p.user_stack(s)
        n = s["values"][0]
        if not stack or stack[0] not in HOT:
            continue
        total += n
        if stack[1:3] == ["run_round", "main"]:
            exact += n
        else:
            bad[tuple(stack)] = bad.get(tuple(stack), 0) + n
    worst = sorted(bad.items(), key=lambda kv: -kv[1])[:2]
    check(f"{name}: >= 99% of samples exact hot_* <- run_round <- main",
          total > 200 and exact >= 0.99 * total, f"{exact}/{total}; others: {worst}")
    return exact, total


def mapping_of(p, path):
    """The profile's mapping lines for a file path."""
    return [text for text in p.mappings.values() if path in text.split()]


def build_id_of(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE, text=True).stdout
    found = re.search(r"Build ID: ([0-9a-f]+)", out)
    return found.group(1) if found else ""


# --- JIT code named by /tmp/perf-PID.map ---------------------------------------


def perf_map_entries(path):
    entries = {}
    with open(path) as f:
        for line in f:
            start, size, name = line.rstrip("\n").split(" ", 2)
            entries[name] = (int(start, 16), int(start, 16) + int(size, 16))
    return entries


def check_jit_profile(name, p, function, code, min_samples):
    """The samples whose leaf lies in the code of `function` (its perf map
    range) must all be named so, and reach main through run_jit."""
    low, high = code
    total = in_code = named = to_main = 0
    names = {}
    for s in p.samples:
        n = s["values"][0]
        total += n
        leaf = leaf_location(p, s)
        if not leaf or not low <= leaf["address"] < high:
            continue
        in_code += n
        stack = p.user_stack(s)
        names[stack[0]] = names.get(stack[0], 0) + n
        named += n if stack[0] == function else 0
        to_main += n if stack[:3] == [function, "run_jit", "main"] else 0
    print(f"# {name}: {in_code}/{total} samples in the code of '{function}', {named} named so, "
          f"{to_main} reach main")
    check(f"{name}: samples in '{function}'", in_code >= min_samples(total),
          f"{in_code}/{total}")
    check(f"{name}: every sample in its code is named '{function}'",
          in_code > 0 and named == in_code, names)
    check(f"{name}: >= 95% of them reach main: {function} <- run_jit <- main",
          in_code > 0 and to_main >= 0.95 * in_code, f"{to_main}/{in_code}")
    check(f"{name}: the older overlapping line never names a frame",
          all("stale_jit_code" not in p.stack(s) for s in p.samples))


def check_jit(unwind):
    """Two windows: the first names jit_hot_loop from the map; after it is
    written, the program adds a function in a memfd and appends its line,
    so the second window names it only if kiln re-reads the grown map."""
    name = f"jit ({unwind})"
    out = tmpdir()
    program = start([prog("jit_loop"), "60"], stdout=subprocess.PIPE, text=True)
    map_path = f"/tmp/perf-{program.pid}.map"
    try:
        wait_for(lambda: os.path.exists(map_path) and os.path.getsize(map_path) > 0, 5)
        kiln = start_kiln(["--pid", str(program.pid), "--frequency", "199", "--duration", "3",
                           "--iterations", "2", "--unwind", unwind, "--output-dir", out])
        wait_for(lambda: len(profiles(out)) >= 1, 30)
        program.send_signal(signal.SIGUSR1)
        switched = program.stdout.readline().strip() == "phase 2"
        err = kiln_wait(kiln)
        entries = perf_map_entries(map_path)
    finally:
        stop(program)
        if os.path.exists(map_path):
            os.unlink(map_path)
    files = profiles(out)
    if not check(f"{name}: kiln exits 0 with two profiles, the program switched",
                 kiln.returncode == 0 and len(files) == 2 and switched,
                 f"exit {kiln.returncode}, {files}, switched {switched}: {err}"):
        return
    check_jit_profile(f"{name} window 1", read_profile(files[0]), "jit_hot_loop",
                      entries["jit_hot_loop"], lambda total: 0.8 * total)
    # Window 2 begins with the samples taken before the program switched.
    check_jit_profile(f"{name} window 2", read_profile(files[1]), "jit memfd loop (tier 2)",
                      entries["jit memfd loop (tier 2)"], lambda total: 30)


def test_jit_in_container():
    """A JIT in pid and mount namespaces of its own, as in a container: it is
    pid 1 there and writes /tmp/perf-1.map into a /tmp only it sees."""
    # The binary is copied into that /tmp through an fd opened before the
    # mount: the build tree itself may be under /tmp.
    script = (f"exec 3<{prog('jit_loop')} && mount -t tmpfs kiln-tmp /tmp && "
              "cat <&3 >/tmp/jit_loop && exec 3<&- && chmod +x /tmp/jit_loop && "
              "exec /tmp/jit_loop 20")
    outer = start(["unshare", "--pid", "--fork", "--mount", "--propagation", "private",
                   "sh", "-c", script])
    pid = p = None
    try:
        def find_child():
            nonlocal pid
            try:
                with open(f"/proc/{outer.pid}/task/{outer.pid}/children") as f:
                    children = f.read().split()
                pid = int(children[0]) if children else None
                return pid and os.readlink(f"/proc/{pid}/exe").startswith("/tmp/jit_loop")
            except (OSError, ValueError):
                return False
        wait_for(find_child, 10)
        inside = f"/proc/{pid}/root/tmp/perf-1.map"
        wait_for(lambda: os.path.exists(inside) and os.path.getsize(inside) > 0, 5)
        entries = perf_map_entries(inside)
        check("jit in a container: its map is /tmp/perf-1.map inside only",
              not os.path.exists("/tmp/perf-1.map") and not os.path.exists(f"/tmp/perf-{pid}.map"),
              "a perf map with its pid is visible outside")
        p, _ = profile_running([pid], "jit in a container", seconds="3")
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)  # pid 1 of its namespace: the rest go with it
            except ProcessLookupError:
                pass
        stop(outer)
    if p:
        check_jit_profile("jit in a container", p, "jit_hot_loop", entries["jit_hot_loop"],
                          lambda total: 0.8 * total)


def test_jit_frame_pointers():
    check_jit("fp")


def test_jit_dwarf():
    check_jit("dwarf")


# --- Mount namespaces and deleted binaries ------------------------------------


def start_in_namespace(program, seconds):
    """Runs program from a tmpfs mounted in a new mount namespace only: the
    file does not exist at that path outside. Returns (process, path)."""
    directory = tmpdir("kiln-ns-")
    inside = os.path.join(directory, os.path.basename(program))
    script = (f"mount -t tmpfs kiln-ns {directory} && cp {program} {inside} && "
              f"exec {inside} {seconds}")
    proc = start(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    # The pid is the program's once sh has exec'd it.
    wait_for(lambda: os.path.realpath(f"/proc/{proc.pid}/exe").startswith(inside) or
             proc.poll() is not None, 10)
    return proc, inside


def test_mount_namespace():
    """A binary that exists only in the process's own mount namespace: its
    symbols and its unwind tables are read through /proc/PID."""
    proc, inside = start_in_namespace(prog("split_nofp"), 15)
    try:
        check("mount namespace: the binary is invisible outside", not os.path.exists(inside),
              inside)
        time.sleep(0.3)
        p, _ = profile_running([proc.pid], "mount namespace")
    finally:
        stop(proc)
    if not p:
        return
    split_share(p, proc.pid, "mount namespace")
    mappings = mapping_of(p, inside)
    check("mount namespace: its mapping names the path inside, with its build id",
          mappings and all(build_id_of(prog("split_nofp")) in m for m in mappings), mappings)


def test_deleted_binary():
    """A binary deleted while it runs is read through /proc/PID/map_files."""
    directory = tmpdir("kiln-deleted-")
    path = os.path.join(directory, "split_deleted")
    shutil.copy(prog("split_nofp"), path)
    proc = start([path, "15"])
    try:
        time.sleep(0.3)
        os.unlink(path)
        p, _ = profile_running([proc.pid], "deleted binary")
    finally:
        stop(proc)
    if p:
        split_share(p, proc.pid, "deleted binary")


def elf_files_opened(err):
    found = re.findall(r"ELF files (\d+) opened", err)
    return int(found[-1]) if found else None


def process_build_ids(pid):
    """Build ids of the ELF files a process maps executable (read independently with readelf)."""
    ids = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and "x" in fields[1] and fields[5].startswith("/"):
                ids.add(build_id_of(f"/proc/{pid}/map_files/{fields[0]}"))
    return ids


def test_same_binary_two_namespaces():
    """One binary copied into two mount namespaces (two inodes, one build
    id) is read once, and both processes are symbolized."""
    first, first_path = start_in_namespace(prog("split_nofp"), 15)
    second, second_path = start_in_namespace(prog("split_nofp"), 15)
    try:
        time.sleep(0.3)
        copies = {(os.stat(f"/proc/{proc.pid}/exe").st_dev,
                   os.stat(f"/proc/{proc.pid}/exe").st_ino) for proc in (first, second)}
        expected = process_build_ids(first.pid) | process_build_ids(second.pid)
        p, err = profile_running([first.pid, second.pid], "two namespaces", extra=["--verbose"])
    finally:
        stop(first)
        stop(second)
    if not p:
        return
    check("two namespaces: the copies are two files", len(copies) == 2, copies)
    opened = elf_files_opened(err)
    check(f"two namespaces: ELF files opened == {len(expected)} distinct build ids",
          opened == len(expected), f"opened {opened}; build ids {sorted(expected)}")
    split_share(p, first.pid, "two namespaces, first")
    split_share(p, second.pid, "two namespaces, second")


# --- Short-lived processes ----------------------------------------------------


def burst(program, count, milliseconds, parallel=2):
    pids = []
    for _ in range(count // parallel):
        batch = [start([prog(program), str(milliseconds)]) for _ in range(parallel)]
        for proc in batch:
            proc.wait()
            pids.append(proc.pid)
    return pids


def check_burst(program, unwind, min_share):
    """Whole host: processes of 50 ms each must be symbolized as well as a
    long-lived one: short_hot <- main. A C++ compile starts with the burst,
    as a build would: reading clang's and LLVM's large files keeps kiln's
    main thread busy for a while, and the burst must not wait for it."""
    name = f"burst {program} ({unwind})"
    out = tmpdir()
    # The window runs from kiln's start to the burst's end, however long
    # either takes on a busy machine: a fixed sleep and window let the first
    # processes run before kiln sampled, or the last after its window.
    kiln = start_kiln(["--frequency", "499", "--duration", "600", "--iterations", "1",
                       "--unwind", unwind, "--output-dir", out])
    head = wait_sampling(kiln)
    compile_job = start(["clang++", "-O2", "-c", os.path.join(ROOT, "tests", "progs",
                                                             "templates.cc"),
                         "-o", os.devnull])
    pids = burst(program, 40, 50)
    compile_job.wait()
    kiln.send_signal(signal.SIGTERM)
    err = head + kiln_wait(kiln)
    files = profiles(out)
    if not check(f"{name}: one profile", kiln.returncode == 0 and len(files) == 1, err):
        return
    p = read_profile(files[0])
    pids = {str(pid) for pid in pids}
    total = leaf_named = hot = hot_to_main = 0
    seen = set()
    unnamed = {}
    for s in p.samples:
        if label(s, "pid") not in pids or label(s, "comm") != program:
            continue
        stack = p.user_stack(s)
        if not stack:
            continue  # in the kernel for exec or exit, no user frames
        n = s["values"][0]
        total += n
        seen.add(label(s, "pid"))
        # Unnamed frames read "0x..." (no mapping) or "[file]" (no symbol).
        if stack[0].startswith("0x") or stack[0].startswith("["):
            unnamed[tuple(stack[:3])] = unnamed.get(tuple(stack[:3]), 0) + n
        else:
            leaf_named += n
        if stack[0] == "short_hot":
            hot += n
            hot_to_main += n if stack[1:2] == ["main"] else 0
    worst = sorted(unnamed.items(), key=lambda kv: -kv[1])[:3]
    print(f"# {name}: {total} samples from {len(seen)}/{len(pids)} processes: "
          f"{leaf_named} with a named leaf, {hot} in short_hot, {hot_to_main} of them "
          f"short_hot <- main; unnamed {worst}")
    check(f"{name}: samples from most of the processes", total > 300 and len(seen) >= 30,
          f"{total} samples, {len(seen)} processes")
    check(f"{name}: >= {min_share:.0%} of samples have their function named",
          total > 0 and leaf_named >= min_share * total,
          f"{leaf_named}/{total}; unnamed {worst}")
    # Ground truth: 50 ms of CPU in short_hot against about 2 ms of start-up.
    check(f"{name}: >= 90% of samples in short_hot",
          total > 0 and hot >= 0.9 * total, f"{hot}/{total}")
    check(f"{name}: >= 99% of short_hot's samples read short_hot <- main",
          hot > 0 and hot_to_main >= 0.99 * hot, f"{hot_to_main}/{hot}")


def test_burst_frame_pointers():
    check_burst("short_spin", "fp", 0.95)


def test_burst_dwarf():
    check_burst("short_spin", "dwarf", 0.95)


if __name__ == "__main__":
    require_root()
    test_jit_frame_pointers()
    test_jit_dwarf()
    test_jit_in_container()
    test_mount_namespace()
    test_deleted_binary()
    test_same_binary_two_namespaces()
    test_burst_frame_pointers()
    test_burst_dwarf()
    finish()
