# SPDX-License-Identifier: Apache-2.0
"""Files a process controls, made to attack kiln, which reads them as root:
a perf map that is a FIFO, a symlink to a root-only file, another user's
file, a character device or a 1 GiB sparse file, and a container whose
build-id directory and .gnu_debuglink lead outside its root. Each is
refused, counted by reason in kiln's -v report, and kiln keeps writing its
windows on time. A root-only canary (mode 0600, lines that parse as a perf
map covering every address) must never show in any profile, pushed body or
log line. The JIT workload (tests/progs/jit_loop) runs as nobody and writes
its own perf map, which the tests replace before kiln starts."""
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from kilntest import (check, finish, prog, profiles, read_profile, require_root, start,
                      start_kiln, stop, tmpdir, wait_for)

SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers")
NOBODY = 65534
OTHER_USER = 4242  # no such user: an owner that is neither the process nor root
CANARY = "CANARY_SECRET_k1ln_7f3a"
DURATION = 2
WINDOWS = 3
# Only the host's debug file names this function: the container's binary is stripped.
DEBUG_ONLY_NAME = "spin_named_by_debuginfod"


class Pyroscope:
    """The loopback Pyroscope stand-in: every pushed body is searched too."""

    def __init__(self):
        self.out = tmpdir("kiln-hostile-push-")
        self.proc = subprocess.Popen([sys.executable, os.path.join(SERVERS, "pyroscope_server.py"),
                                      "--out", self.out], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"pyroscope server did not start: {line}")
        self.url = f"http://127.0.0.1:{line[1]}"

    def bodies(self):
        return [os.path.join(self.out, name) for name in sorted(os.listdir(self.out))
                if name.endswith(".pb.gz")]

    def stop(self):
        stop(self.proc, signal.SIGTERM)


def make_canary():
    """A root-only file in a directory anyone may enter: only its mode keeps it."""
    directory = tmpdir("kiln-canary-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "secret")
    with open(path, "w") as f:
        f.write("".join(f"0 ffffffffffff {CANARY}_{i}\n" for i in range(16)))
    os.chmod(path, 0o600)
    return path


def decompressed(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return gzip.decompress(data).decode("latin-1")
    except OSError:
        return data.decode("latin-1")


def leaks(run, secret):
    """Where secret shows: kiln's log, its profiles (raw bytes and pprof's
    reading), the bodies pushed so far."""
    found = []
    if secret in run["log"]:
        found.append("kiln's log")
    for path in run["files"]:
        if secret in decompressed(path) or secret in read_profile(path).raw:
            found.append(os.path.basename(path))
    for path in run["pushed"]:
        if secret in decompressed(path):
            found.append("pushed " + os.path.basename(path))
    return found


def run_kiln(pid, server, timeout=90):
    """kiln -v on pid for WINDOWS windows, files and pushes; the run's outcome."""
    out, spool = tmpdir("kiln-hostile-out-"), tmpdir("kiln-hostile-spool-")
    before = set(server.bodies())
    began = time.monotonic()
    kiln = start_kiln(["--pid", str(pid), "--frequency", "199", "--duration", str(DURATION),
                       "--iterations", str(WINDOWS), "-v", "--output-dir", out,
                       "--remote-store", server.url, "--spool-dir", spool,
                       "--remote-drain-timeout", "5"])
    try:
        stdout, log = kiln.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(kiln)
        stdout, log = kiln.communicate()
        log = f"timed out after {timeout} s\n" + log
    files = profiles(out)
    pushed = [path for path in server.bodies() if path not in before]
    return {"pushed": pushed, "code": kiln.returncode, "log": stdout + log, "files": files,
            "seconds": time.monotonic() - began, "server": server,
            "stamps": sorted(os.path.getmtime(path) for path in files)}


def refused(log, text):
    """The last -v count of a refusal reason ("% symlinks" and the like)."""
    counts = re.findall(r"refused files: .*?(\d+) " + re.escape(text), log)
    return int(counts[-1]) if counts else 0


def check_run(name, run):
    """Every window written, on time, kiln exiting 0."""
    gaps = [b - a for a, b in zip(run["stamps"], run["stamps"][1:])]
    check(f"{name}: kiln exits 0 after its {WINDOWS} windows",
          run["code"] == 0 and len(run["files"]) == WINDOWS,
          f"exit {run['code']}, {len(run['files'])} profiles: {run['log'][-2000:]}")
    # Generous: a window late by seconds is a stall, not a noisy machine.
    check(f"{name}: each window on time (within {DURATION} s + 8 s of the last)",
          all(gap < DURATION + 8 for gap in gaps), gaps)


def jit_names(run):
    """Names of the leaf frames in anonymous memory: what perf maps named."""
    names = {}
    for path in run["files"]:
        p = read_profile(path)
        kernel = p.kernel_mapping_ids()
        for sample in p.samples:
            for loc in sample["locations"]:
                location = p.locations.get(loc)
                if not location or location["mapping"] in kernel:
                    continue
                mapping = p.mappings.get(location["mapping"], "")
                if "jit_loop" not in mapping and "libc" not in mapping:
                    stack = p.stack(dict(sample, locations=[loc]))
                    names[stack[0]] = names.get(stack[0], 0) + sample["values"][0]
                break
    return names


def start_jit():
    """jit_loop as nobody, once it wrote its own /tmp/perf-PID.map."""
    program = start(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                     "--", prog("jit_loop"), "60"], stdout=subprocess.DEVNULL)
    path = f"/tmp/perf-{program.pid}.map"
    wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10)
    return program, path


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def perf_map_attack(name, server, canary, replace, reason):
    """Replaces a running JIT's perf map with replace(path), profiles it, and
    checks: windows on time, the refusal counted under reason, no canary."""
    program, path = start_jit()
    try:
        replace(path, canary)
        run = run_kiln(program.pid, server)
    finally:
        stop(program)
        remove(path)
    check_run(name, run)
    if reason:
        check(f"{name}: counted in -v as '{reason}'", refused(run["log"], reason) >= 1,
              re.findall(r".*refused files.*", run["log"]))
    where = leaks(run, CANARY)
    check(f"{name}: the canary is nowhere (profiles, pushes, log)", not where, where)
    return run


def test_own_perf_map(server, canary):
    """The control: a map the process wrote itself is read, so a test that
    finds nothing in a hostile one found nothing for the right reason."""
    run = perf_map_attack("own perf map", server, canary, lambda path, canary: None, None)
    names = jit_names(run)
    check("own perf map: its JIT frames are named from it", names.get("jit_hot_loop", 0) > 20,
          names)
    check("own perf map: nothing refused",
          not re.search(r"refused files: .*[1-9]", run["log"]),
          re.findall(r".*refused files.*", run["log"]))


def fifo(path, canary):
    remove(path)
    os.mkfifo(path, 0o644)
    os.chown(path, NOBODY, NOBODY)


def symlink_to_canary(path, canary):
    remove(path)
    os.symlink(canary, path)
    os.lchown(path, NOBODY, NOBODY)


def foreign_owner(path, canary):
    """Readable by all, lines that parse: only its owner says it is not the process's."""
    remove(path)
    shutil.copy(canary, path)
    os.chmod(path, 0o644)
    os.chown(path, OTHER_USER, OTHER_USER)


def char_device(path, canary):
    remove(path)
    os.mknod(path, 0o644 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    os.chown(path, NOBODY, NOBODY)


def sparse_gigabyte(path, canary):
    """The process's own file, lines first, then a hole to 1 GiB."""
    remove(path)
    with open(path, "w") as f:
        f.write(f"0 ffffffffffff {CANARY}_sparse\n")
        f.truncate(1 << 30)
    os.chown(path, NOBODY, NOBODY)


# --- A container whose debug links lead out of its root ----------------------


def libraries(binary):
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True, check=True).stdout
    return re.findall(r"(/\S+) \(0x", out)


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


def make_container(debug_file):
    """A root directory with a stripped stripped_spin (a .gnu_debuglink to
    stripped_spin.debug) and its libraries; the full debug file stays on
    the host, in debug_file's place, readable by anyone: only the root's
    bounds keep it out of reach. Returns (root, build id)."""
    root = tmpdir("kiln-container-")
    os.chmod(root, 0o755)
    app = os.path.join(root, "app")
    os.makedirs(app, mode=0o755)
    binary = os.path.join(app, "stripped_spin")
    shutil.copy(prog("stripped_spin"), binary)
    subprocess.run(["objcopy", "--only-keep-debug", binary, debug_file], check=True)
    os.chmod(debug_file, 0o644)
    subprocess.run(["strip", "--strip-all", "--remove-section=.gnu_debuglink", binary], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug_file}", binary], check=True)
    for library in libraries(binary):
        inside = os.path.join(root, library.lstrip("/"))
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        shutil.copy(library, inside)
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    return root, build_id(binary)


def link(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def run_container(name, server, root):
    """stripped_spin as nobody in a mount namespace whose root is root
    (pivot_root, as container runtimes do: the paths in its maps are the
    container's, and /proc/PID/root is root)."""
    script = (f"mount --bind {root} {root} && cd {root} && mkdir -p .host && "
              f"pivot_root . .host && exec /.host/usr/sbin/chroot --userspec={NOBODY}:{NOBODY} "
              "/ /app/stripped_spin 30")
    outer = start(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    try:
        wait_for(lambda: os.path.realpath(f"/proc/{outer.pid}/exe").endswith("stripped_spin"),
                 10)
        run = run_kiln(outer.pid, server)
    finally:
        stop(outer)
    check_run(name, run)
    return run


def function_names(run):
    names = set()
    for path in run["files"]:
        p = read_profile(path)
        for sample in p.samples:
            names.update(p.user_stack(sample))
    return names


def test_container(server):
    host = tmpdir("kiln-host-debug-")
    os.chmod(host, 0o755)
    debug_file = os.path.join(host, "stripped_spin.debug")
    root, bid = make_container(debug_file)
    build_id_link = os.path.join(root, "usr/lib/debug/.build-id", bid[:2], bid[2:] + ".debug")

    # Its build-id link is the host's debug file by absolute path: inside
    # its root, that path does not exist.
    link(debug_file, build_id_link)
    run = run_container("container build-id link out", server, root)
    check("container build-id link out: the host's debug file names nothing",
          DEBUG_ONLY_NAME not in function_names(run), sorted(function_names(run))[:20])
    check("container build-id link out: nothing of the host's file anywhere",
          not leaks(run, DEBUG_ONLY_NAME), leaks(run, DEBUG_ONLY_NAME))
    os.unlink(build_id_link)

    # Its debuglink's name next to the binary: the host's file by absolute path.
    debuglink = os.path.join(root, "app", "stripped_spin.debug")
    link(debug_file, debuglink)
    run = run_container("container debuglink out", server, root)
    check("container debuglink out: the host's debug file names nothing",
          DEBUG_ONLY_NAME not in function_names(run), sorted(function_names(run))[:20])
    os.unlink(debuglink)

    # The controls: the same file inside its root names the function, by
    # its debuglink name, and by build id through an absolute link, as
    # distributions lay build-id links out.
    shutil.copy(debug_file, debuglink)
    run = run_container("container debuglink inside", server, root)
    check("container debuglink inside: its own debug file names the function",
          DEBUG_ONLY_NAME in function_names(run), sorted(function_names(run))[:20])
    os.unlink(debuglink)

    os.makedirs(os.path.join(root, "debug"), mode=0o755)
    shutil.copy(debug_file, os.path.join(root, "debug", "stripped_spin.debug"))
    link("/debug/stripped_spin.debug", build_id_link)
    run = run_container("container build-id link inside", server, root)
    check("container build-id link inside: its own debug file names the function",
          DEBUG_ONLY_NAME in function_names(run), sorted(function_names(run))[:20])


def test_truncated_library(server):
    """A library its owner truncates while kiln holds it: a file mapped as it
    is would fault kiln (SIGBUS) at its next read of a page past the new end.
    kiln reads such files (anyone's but root's) from a sealed copy."""
    directory = tmpdir("kiln-truncate-")
    library = os.path.join(directory, "lib.so")
    shutil.copy(prog("libspinlib_nofp.so"), library)
    os.chown(directory, NOBODY, NOBODY)
    os.chown(library, NOBODY, NOBODY)
    os.chmod(directory, 0o755)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    workload = start(as_nobody + [prog("dlopen_spin_nofp"), "0", library, "60"])
    # Truncated once kiln has read it (its first window), before the last window.
    timer = threading.Timer(DURATION + 1.5, lambda: subprocess.run(
        as_nobody + ["truncate", "-s", "0", library], check=False))
    try:
        time.sleep(0.5)
        timer.start()
        run = run_kiln(workload.pid, server)
    finally:
        timer.cancel()
        stop(workload)
    check_run("truncated library", run)
    copied = [int(n) for n in re.findall(r"(\d+) of them copied", run["log"])]
    check("truncated library: read from a sealed copy, counted",
          copied and copied[-1] >= 1, run["log"][-1500:])
    check("truncated library: the file really was truncated",
          os.path.getsize(library) == 0, os.path.getsize(library))


if __name__ == "__main__":
    require_root()
    server = Pyroscope()
    try:
        canary = make_canary()
        test_own_perf_map(server, canary)
        perf_map_attack("FIFO perf map", server, canary, fifo, "not regular")
        perf_map_attack("symlinked perf map", server, canary, symlink_to_canary, "symlinks")
        perf_map_attack("another user's perf map", server, canary, foreign_owner,
                        "owned by another user")
        perf_map_attack("character device perf map", server, canary, char_device,
                        "not regular")
        perf_map_attack("1 GiB sparse perf map", server, canary, sparse_gigabyte, "too large")
        test_container(server)
        test_truncated_library(server)
        bodies = server.bodies()
        check("pushes: profiles arrived, none with the canary",
              bodies and not [b for b in bodies if CANARY in decompressed(b)], len(bodies))
    finally:
        server.stop()
    finish()
