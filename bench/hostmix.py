# SPDX-License-Identifier: Apache-2.0
"""The realistic host of issue 13, shared by bench/host.py and bench/soak.py:
every runtime this machine has busy side by side (CPython, Node with
--perf-basic-prof, the JVM with -XX:+PreserveFramePointer, perl), a shell
loop of short-lived coreutils, and the ground-truth native programs (the
6:3:1 split with and without frame pointers, a churn of 20-50 ms processes
of one no-frame-pointer binary). Each process is known by pid and sorted
into a kind, so a profile's samples can be judged per kind however busy the
machine is with other people's programs. Also the independent readings:
complete stacks per kind from kiln's profiles (`go tool pprof -raw`) and
from `perf script`, and kiln's CPU, memory and BPF figures from /proc."""
import collections
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from kilntest import KILN, prog, read_profile  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The outermost frames a complete user stack reaches: the program's entry,
# or a thread's start in glibc.
ROOTS = {"_start", "main", "__libc_start_main", "__libc_start_call_main", "start_thread",
         "clone", "clone3", "__clone", "__clone3", "thread_start"}
# kiln's frames for a stack that was cut or lost (agent/profile/window_profile.c).
MARKER_PREFIXES = ("[truncated", "[stack", "[frame pointers")
# Kinds in the order the tables list them; the target is issue 13's, None for none.
KINDS = [
    ("native", "native (6:3:1 split, with and without frame pointers)", 0.99),
    ("short-lived", "short-lived native (20-50 ms processes, -O2 no frame pointers)", 0.97),
    ("coreutils", "coreutils churn (ls, sha256sum, gzip)", 0.97),
    ("shell", "the churn loops' bash", None),
    ("cpython", "CPython (pure-Python busy function)", None),
    ("node", "Node 20 --perf-basic-prof (busy JS function)", 0.95),
    ("jvm", "JVM (OpenJDK, busy Java method, -XX:+PreserveFramePointer)", None),
    ("perl", "perl (busy sub)", None),
]

NODE_SCRIPT = """
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
function work() { let sum = 0; for (;;) sum += fib(24); }
work();
"""
PYTHON_SCRIPT = """
def busy(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x
while True:
    busy(100000)
"""
PERL_SCRIPT = ("sub busy { my $x = 0; for my $i (1 .. 100000) { $x = ($x * 31 + $i) % 4294967296 }"
               " return $x } busy() while 1;")
JAVA_SOURCE = """
public class Busy {
    static long sink;
    static long busy(long n) {
        long x = sink;
        for (long i = 0; i < n; i++)
            x = x * 6364136223846793005L + 1442695040888963407L;
        return x;
    }
    public static void main(String[] args) {
        while (true)
            sink += busy(1000000);
    }
}
"""
# Each churn loop writes the pid of every child it starts to fd 3.
COREUTILS_LOOP = """
while :; do
    ls -l /usr/bin >/dev/null & echo $! >&3; wait $!
    sha256sum "$1" >/dev/null & echo $! >&3; wait $!
    gzip -c "$1" >/dev/null & echo $! >&3; wait $!
done
"""
SHORT_LOOP = """
while :; do
    "$1" $((20 + RANDOM % 31)) & echo $! >&3; wait $!
done
"""


NEEDED = ["split", "split_nofp", "short_spin_nofp"]


def check_built():
    """Exits with what to build when kiln or a ground-truth program is missing."""
    missing = [path for path in [KILN] + [prog(name) for name in NEEDED]
               if not os.path.exists(path)]
    if missing:
        sys.exit("build these first (make bench does): " + " ".join(missing))


def kiln_commit():
    """The commit kiln was built from, as far as the checkout says: `git describe`."""
    out = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                          "--always", "--dirty"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    return out.stdout.strip() or "unknown"


def loadavg():
    return open("/proc/loadavg").read().split()[0]


class HostMix:
    """The running mix: start() it, kinds() says which pid is which, stop() it."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="kiln-bench-host-")
        self.procs = []  # (kind, Popen)
        self.missing = []  # runtimes this machine does not have
        self.jvm_pid = None
        self.perf_map_pids = []

    def _start(self, kind, argv, pid_file=None, **kwargs):
        fd = None
        if pid_file:
            fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            kwargs["pass_fds"] = (fd,)
            # The loop's fd 3 is the pid file.
            argv = ["bash", "-c", f"exec 3>&{fd}; {argv[0]}", "loop"] + argv[1:]
        # In the work directory: node --perf-basic-prof writes isolate-*-v8.log files there.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                cwd=self.work, **kwargs)
        if fd is not None:
            os.close(fd)
        self.procs.append((kind, proc))
        return proc

    def start(self):
        check_built()
        path = lambda name: os.path.join(self.work, name)  # noqa: E731
        with open(path("small.txt"), "w") as f:
            f.write("kiln bench input line\n" * 700)  # 16 KiB
        for name in ("split", "split_nofp"):
            self._start("native", [prog(name), "86400"])
        self._start("shell", [SHORT_LOOP, prog("short_spin_nofp")], pid_file=path("short.pids"))
        self._start("shell", [COREUTILS_LOOP, path("small.txt")],
                    pid_file=path("coreutils.pids"))
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        self._start("cpython", [python, "-c", PYTHON_SCRIPT])
        if shutil.which("node"):
            with open(path("busy.js"), "w") as f:
                f.write(NODE_SCRIPT)
            self.perf_map_pids.append(
                self._start("node", ["node", "--perf-basic-prof", path("busy.js")]).pid)
        else:
            self.missing.append("node")
        if shutil.which("java") and shutil.which("javac"):
            with open(path("Busy.java"), "w") as f:
                f.write(JAVA_SOURCE)
            subprocess.run(["javac", "-d", self.work, path("Busy.java")], check=True)
            self.jvm_pid = self._start("jvm", ["java", "-XX:+PreserveFramePointer", "-Xmx64m",
                                               "-cp", self.work, "Busy"]).pid
            self.perf_map_pids.append(self.jvm_pid)
        else:
            self.missing.append("java")
        if shutil.which("perl"):
            self._start("perl", ["perl", "-e", PERL_SCRIPT])
        else:
            self.missing.append("perl")

    def write_jvm_perf_map(self):
        """No JVM perf-map agent is installed: JDK 17's own `jcmd PID
        Compiler.perfmap` writes /tmp/perf-PID.map, a snapshot of the code
        cache. Returns whether it did."""
        if not self.jvm_pid or not shutil.which("jcmd"):
            return False
        done = subprocess.run(["jcmd", str(self.jvm_pid), "Compiler.perfmap"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        return done.returncode == 0

    def kinds(self):
        """pid -> kind, churned children included."""
        kinds = {proc.pid: kind for kind, proc in self.procs}
        for kind, name in (("short-lived", "short.pids"), ("coreutils", "coreutils.pids")):
            try:
                for line in open(os.path.join(self.work, name)):
                    if line.strip().isdigit():
                        kinds[int(line)] = kind
            except OSError:
                pass
        return kinds

    def stop(self):
        # SIGTERM first: the JVM removes its hsperfdata file on the way out.
        for _, proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in self.perf_map_pids:
            for leftover in (f"/tmp/perf-{pid}.map", f"/tmp/hsperfdata_root/{pid}"):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass
        shutil.rmtree(self.work, ignore_errors=True)


def incomplete_cause(names):
    """An incomplete stack's kind of failure: kiln's marker, frames left
    unnamed (raw addresses: its process gone, or exec'd, before its mappings
    were read), or another outermost frame."""
    marker = next((n for n in names if n.startswith(MARKER_PREFIXES)), None)
    if marker:
        return marker
    if any(n.startswith("0x") for n in names):
        return "unnamed frames"
    return f"ends in {names[-1]}"


class Tally:
    """Samples per kind: complete, with a user stack, in all."""

    def __init__(self):
        self.counts = {kind: [0, 0, 0] for kind, _, _ in KINDS}
        self.incomplete = {kind: collections.Counter() for kind, _, _ in KINDS}
        self.causes = {kind: collections.Counter() for kind, _, _ in KINDS}

    def add(self, kind, names, weight=1):
        if kind not in self.counts:
            return
        c = self.counts[kind]
        c[2] += weight
        if not names:
            return  # kernel only: in execve, or exiting
        c[1] += weight
        if any(n in ROOTS for n in names) and not any(n.startswith(MARKER_PREFIXES)
                                                      for n in names):
            c[0] += weight
        else:
            # Leaf and outermost frames: where it went wrong, for --detail.
            self.incomplete[kind][" <- ".join(names[:3] + ["..."] + names[-3:])] += weight
            self.causes[kind][incomplete_cause(names)] += weight

    def share(self, kind):
        complete, with_user, _ = self.counts[kind]
        return complete / with_user if with_user else None

    def print_incomplete(self, title, top=int(os.environ.get("HOST_DETAIL_TOP", "5")),
                         file=sys.stderr):
        """Why stacks of each kind were incomplete, and the commonest of them."""
        for kind, causes in self.causes.items():
            for cause, n in causes.most_common():
                print(f"{title} {kind}: {n} x cause: {cause}", file=file)
        for kind, stacks in self.incomplete.items():
            for stack, n in stacks.most_common(top):
                print(f"{title} {kind}: {n} x {stack}", file=file)


def kiln_tally(paths, kinds):
    """Complete stacks per kind in kiln's profiles, read by go tool pprof."""
    tally = Tally()
    for path in paths:
        p = read_profile(path)
        for s in p.samples:
            pid = s["labels"].get("pid")
            if pid:
                tally.add(kinds.get(int(pid[0])), p.user_stack(s), s["values"][0])
    return tally


def perf_tally(data, kinds):
    """Complete stacks per kind in perf's samples, from perf script (which
    names JIT code from the same /tmp/perf-PID.map files)."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "pid,ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    tally = Tally()
    for block in out.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines or not lines[0].strip().isdigit():
            continue
        names = []
        for line in lines[1:]:
            fields = line.split()
            if len(fields) >= 2 and "[kernel.kallsyms]" not in line:
                names.append(fields[1])
        tally.add(kinds.get(int(lines[0])), names)
    return tally


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid, *keys):
    text = open(f"/proc/{pid}/status").read()
    return [int(re.search(rf"{key}:\s+(\d+)", text).group(1)) for key in keys]


def bpf_fdinfo(pid):
    """kiln's BPF programs and maps from its descriptors: ({prog id: (run ns,
    runs)}, {map id: memlock bytes}). bpf_stats must be on for run times."""
    progs, maps = {}, {}
    fd_dir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fd_dir):
        try:
            text = open(os.path.join(fd_dir, fd)).read()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\S+)", text, re.M))
        if "prog_id" in fields and "run_time_ns" in fields:
            progs[int(fields["prog_id"])] = (int(fields["run_time_ns"]), int(fields["run_cnt"]))
        elif "map_id" in fields:
            maps[int(fields["map_id"])] = int(fields["memlock"])
    return progs, maps


class KilnWatch:
    """Runs kiln and watches it: each stderr line timestamped with kiln's CPU
    and BPF time at that moment, and RSS, its anonymous part and BPF map
    memory polled every `poll` seconds."""

    def __init__(self, args, poll=0.5):
        self.t0 = time.monotonic()
        # KILN_EXTRA_ARGS (e.g. "--max-memory 32M") compares settings on the same mix.
        extra = shlex.split(os.environ.get("KILN_EXTRA_ARGS", ""))
        self.proc = subprocess.Popen([KILN] + args + extra, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []  # (seconds since start, cpu s, bpf ns, line)
        self.peak = {"hwm_kib": 0, "anon_kib": 0, "map_bytes": 0}
        self.polls = []  # (seconds, rss KiB, anon KiB, cpu s, map bytes)
        self.poll = poll
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._poller = threading.Thread(target=self._watch, daemon=True)
        self._reader.start()
        self._poller.start()

    def snapshot(self):
        try:
            progs, maps = bpf_fdinfo(self.proc.pid)
            return cpu_seconds(self.proc.pid), sum(ns for ns, _ in progs.values()), maps
        except (OSError, ValueError):
            return None, None, {}

    def _read(self):
        for line in self.proc.stderr:
            cpu, bpf, _ = self.snapshot()
            self.lines.append((time.monotonic() - self.t0, cpu, bpf, line.rstrip("\n")))

    def _watch(self):
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                rss, hwm, anon = status_kib(self.proc.pid, "VmRSS", "VmHWM", "RssAnon")
                cpu, _, maps = self.snapshot()
            except (OSError, AttributeError, ValueError):
                break
            map_bytes = sum(maps.values())
            self.peak["hwm_kib"] = max(self.peak["hwm_kib"], hwm)
            self.peak["anon_kib"] = max(self.peak["anon_kib"], anon)
            self.peak["map_bytes"] = max(self.peak["map_bytes"], map_bytes)
            self.polls.append((time.monotonic() - self.t0, rss, anon, cpu, map_bytes))
            self._stop.wait(self.poll)

    def wait_line(self, pattern, count=1, timeout=300):
        """The count-th stderr line matching pattern, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [entry for entry in self.lines if re.search(pattern, entry[3])]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"kiln never logged {pattern!r} (x{count}): "
                           + "\n".join(e[3] for e in self.lines[-20:]))

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        self._reader.join(timeout=10)
        self._poller.join(timeout=10)
        return self.proc.returncode

    def log(self):
        return "\n".join(entry[3] for entry in self.lines)


class BpfStats:
    """kernel.bpf_stats_enabled on for the duration, as it was afterwards."""

    def __enter__(self):
        self.old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.old)


def run_measured(argv, **kwargs):
    """Runs argv to completion; returns (user + system s, peak RSS KiB)."""
    proc = subprocess.Popen(argv, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss
