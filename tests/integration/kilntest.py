# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for kiln's integration tests: run kiln and the ground-truth
programs, and read profiles back with an independent reader, `go tool pprof`."""
import atexit
import bisect
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
KILN = os.path.join(BUILD, "kiln")
PROGS = os.path.join(BUILD, "tests", "progs")

_results = {"passed": 0, "failed": 0}
_temporary_dirs = []


def _remove_temporary_dirs():
    for directory in _temporary_dirs:
        shutil.rmtree(directory, ignore_errors=True)


atexit.register(_remove_temporary_dirs)
# tests/run.sh's timeout ends a hung file with SIGTERM, which would end
# Python without running atexit: exit through SystemExit instead, so the
# temporary directories go then too.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def prog(name):
    return os.path.join(PROGS, name)


def check(name, condition, detail=""):
    """Records one test outcome as an 'ok'/'FAIL' line, as tests/run.sh counts them."""
    if condition:
        _results["passed"] += 1
        print(f"ok   {name}")
    else:
        _results["failed"] += 1
        print(f"FAIL {name}: {detail}")
    sys.stdout.flush()
    return condition


def finish():
    print(f"{_results['passed']} passed, {_results['failed']} failed")
    sys.exit(1 if _results["failed"] else 0)


def require_root():
    """Ends a test file that loads BPF programs with a "skip" line, not a
    failure, when not run as root: there is nothing it can check."""
    if os.geteuid() != 0:
        name = os.path.basename(sys.argv[0])
        print(f"skip {name}: needs root (it loads BPF programs)")
        sys.exit(0)


def tmpdir(prefix="kiln-test-"):
    """A new temporary directory, removed with all it holds when the test
    file exits, whether its checks passed, failed or raised."""
    directory = tempfile.mkdtemp(prefix=prefix)
    _temporary_dirs.append(directory)
    return directory


def run_kiln(args, timeout=120, env=None):
    """Runs kiln to completion; returns (exit code, stderr)."""
    proc = subprocess.run([KILN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stderr


def profile_process(argv, kiln_args, name, others=(), settle=0.3, kind=None):
    """Starts argv (plus the `others`, unfiltered), profiles it with
    `kiln --pid` for one window and reads the profile back. Records a check
    that kiln exited 0 with exactly one profile. Returns (profile or None,
    pid, kiln's stderr)."""
    out = tmpdir()
    workload = start(argv)
    bystanders = [start(other) for other in others]
    try:
        time.sleep(settle)
        code, err = run_kiln(["--pid", str(workload.pid), "--iterations", "1",
                              "--output-dir", out] + kiln_args)
    finally:
        for proc in [workload] + bystanders:
            stop(proc)
    kind = kind or ("offcpu" if "--no-cpu" in kiln_args else "cpu")
    files = profiles(out, kind)
    if not check(f"{name}: kiln exits 0 and writes one profile", code == 0 and len(files) == 1,
                 f"exit {code}, files {files}, stderr: {err}"):
        return None, workload.pid, err
    return read_profile(files[0]), workload.pid, err


def start_kiln(args, env=None):
    return subprocess.Popen([KILN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_sampling(kiln):
    """Reads kiln's stderr until it says it samples (its programs are
    attached: its window has begun); returns what it read, for the caller
    to put before the rest. Loading takes 1 s alone but many more seconds
    beside CPU-bound jobs: a test that sleeps a fixed time instead may find
    its workload done before kiln looks."""
    head = []
    for line in kiln.stderr:
        head.append(line)
        if line.startswith("kiln: info: sampling ") or "measuring off-CPU time" in line:
            break
    return "".join(head)


def start(argv, **kwargs):
    return subprocess.Popen(argv, **kwargs)


def stop(proc, sig=signal.SIGKILL):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def profiles(directory, kind="cpu"):
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if f.startswith(kind + "-") and f.endswith(".pb.gz"))


class Profile:
    """A profile as `go tool pprof -raw` prints it."""

    def __init__(self):
        self.period_type = None
        self.period = None
        self.duration = None
        self.sample_types = []
        self.samples = []  # dicts: values, locations (ids), labels {key: [str]}, numlabels
        self.locations = {}  # id -> dict(address, mapping, lines [(function, file:line)])
        self.mappings = {}  # id -> line text
        self.comments = []
        self.raw = ""

    def stack(self, sample):
        """Function names of a sample, leaf first, every inlined line included."""
        names = []
        for loc in sample["locations"]:
            location = self.locations.get(loc)
            if location is None:
                names.append("?")
            elif not location["lines"]:
                # Unsymbolized: named by its file, as pprof's tools show it.
                mapping = self.mappings.get(location["mapping"], "").split()
                names.append("[%s]" % os.path.basename(mapping[1]) if len(mapping) > 1
                             else "0x%x" % location["address"])
            else:
                names.extend(function for function, _ in location["lines"])
        return names


    def user_frames(self, sample):
        """One name per unwound user frame, leaf first: the function the
        address is in (a location's outermost line), its inlined calls left out."""
        kernel = self.kernel_mapping_ids()
        names = []
        for loc in sample["locations"]:
            location = self.locations.get(loc)
            if location is not None and location["mapping"] in kernel:
                continue
            single = dict(sample, locations=[loc])
            names.append(self.stack(single)[-1])
        return names

    def kernel_mapping_ids(self):
        return {i for i, text in self.mappings.items() if "[kernel.kallsyms]" in text}

    def user_stack(self, sample):
        """Like stack(), without the kernel's frames."""
        kernel = self.kernel_mapping_ids()
        user = dict(sample)
        user["locations"] = [loc for loc in sample["locations"]
                             if self.locations.get(loc, {}).get("mapping") not in kernel]
        return self.stack(user)


def read_profile(path):
    env = dict(os.environ)
    home = tempfile.mkdtemp(prefix="kiln-pprof-home-")
    env.update(HOME=home, PPROF_TMPDIR=home, GOCACHE=os.path.join(home, "gocache"))
    try:
        out = subprocess.run(["go", "tool", "pprof", "-symbolize=none", "-raw", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, timeout=120)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"go tool pprof -raw {path} failed: {out.stderr.strip()}")
    return parse_raw(out.stdout)


_LABEL = re.compile(r"(\S+?):\[([^\]]*)\]")


def parse_raw(text):
    profile = Profile()
    profile.raw = text
    section = None
    current_location = None
    for line in text.splitlines():
        if line.startswith("Comment:"):
            profile.comments.append(line.split(":", 1)[1].strip())
        elif line.startswith("PeriodType:"):
            profile.period_type = line.split(":", 1)[1].strip()
        elif line.startswith("Period:"):
            profile.period = int(line.split(":", 1)[1])
        elif line.startswith("Duration:"):
            profile.duration = line.split(":", 1)[1].strip()
        elif line.startswith("Samples:"):
            section = "samples-header"
        elif line.startswith("Locations"):
            section = "locations"
        elif line.startswith("Mappings"):
            section = "mappings"
        elif section == "samples-header":
            profile.sample_types = line.split()
            section = "samples"
        elif section == "samples":
            match = re.match(r"\s*([-\d\s]+):\s*(.*)$", line)
            if match and not _LABEL.search(line):
                values = [int(v) for v in match.group(1).split()]
                locations = [int(v) for v in match.group(2).split()]
                profile.samples.append({"values": values, "locations": locations,
                                        "labels": {}})
            elif profile.samples and line.strip():
                for key, value in _LABEL.findall(line):
                    profile.samples[-1]["labels"][key] = value.split()
        elif section == "locations":
            # A location in no mapping prints no "M=".
            match = re.match(r"\s*(\d+): (0x[0-9a-f]+)(?: M=(\d+))?\s*(.*)$", line)
            if match:
                current_location = {"address": int(match.group(2), 16),
                                    "mapping": int(match.group(3) or 0), "lines": []}
                profile.locations[int(match.group(1))] = current_location
                rest = match.group(4).strip()
                if rest:
                    current_location["lines"].append(_parse_line(rest))
            elif line.strip() and current_location is not None:
                current_location["lines"].append(_parse_line(line.strip()))
        elif section == "mappings":
            match = re.match(r"\s*(\d+): (.*)$", line)
            if match:
                profile.mappings[int(match.group(1))] = match.group(2)
    return profile


def _parse_line(text):
    # "function file:line s=start[(system name)]": the function name may contain
    # spaces (C++), the file does not; the system name follows only when it differs.
    text = re.sub(r"\s+s=\d+(\(.*\))?$", "", text)
    parts = text.rsplit(" ", 1)
    if len(parts) == 2 and re.search(r":-?\d+$", parts[1]):
        return parts[0], parts[1]
    return text, ""


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


_kernel_features = None


def kernel_refuses(feature):
    """Why this kernel refuses a BPF feature kiln probes (`kiln --probe-kernel`,
    a line starting with `feature`), or None when it allows it."""
    global _kernel_features
    if _kernel_features is None:
        out = subprocess.run([KILN, "--probe-kernel"], stdout=subprocess.PIPE, text=True,
                             timeout=60).stdout
        _kernel_features = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    for name, answer in _kernel_features.items():
        if name.startswith(feature):
            return None if answer == "yes" else re.sub(r"^no \((.*)\)$", r"\1", answer)
    raise KeyError(f"kiln --probe-kernel has no {feature!r}: {_kernel_features}")


def kiln_bpf_programs():
    """Names of loaded BPF programs that are kiln's."""
    out = subprocess.run(["bpftool", "prog", "show"], stdout=subprocess.PIPE, text=True)
    names = re.findall(r"^\d+: \S+\s+name (\S+)", out.stdout, re.M)
    # The kernel keeps 15 characters of a name: sched_switch_sys_exit is sched_switch_sy.
    kiln = ("sample_cpu", "process_exec", "sched_switch", "syscall_return", "thread_exit",
            "blocked_tasks")
    return [n for n in names if n.startswith(kiln)]


# --- Samples against the CPU time a process used ---------------------------------
#
# A fixed minimum of samples assumes the workload had a whole CPU, which a
# loaded machine does not give it. The ground truth is the CPU time the
# kernel accounted to it: a cpu-clock event at F Hz on every CPU samples a
# process that ran T CPU-seconds about T * F times, whatever else ran.

# Fewer samples than this make a share checked on them mean little.
MIN_SAMPLES = 50


class ChildCpuTimes:
    """CPU time (utime + stime of all threads, /proc/PID/stat) of every child
    of this test, read every `interval` seconds by a thread of its own, so
    that the CPU time a child used within a profile's window can be asked
    afterwards. Use as a context manager around starting the children."""

    def __init__(self, interval=0.02):
        self._interval = interval
        self._readings = {}  # pid -> [(unix time, CPU seconds)]
        self._tick = os.sysconf("SC_CLK_TCK")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def _children(self):
        pids = set()
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as f:
                    pids.update(int(pid) for pid in f.read().split())
            except OSError:
                pass  # a thread that just ended
        return pids

    def _cpu_seconds(self, pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                # utime and stime are fields 14 and 15; the name before them may hold spaces.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick

    def _run(self):
        while not self._done.is_set():
            for pid in self._children():
                before = time.time()
                seconds = self._cpu_seconds(pid)
                if seconds is not None:
                    when = (before + time.time()) / 2
                    self._readings.setdefault(pid, []).append((when, seconds))
            self._done.wait(self._interval)

    def _at(self, pid, when):
        """CPU seconds pid had used at `when`, interpolated between readings."""
        readings = self._readings.get(pid, [])
        if not readings:
            return 0.0
        times = [t for t, _ in readings]
        i = bisect.bisect_left(times, when)
        if i == 0:
            return readings[0][1]
        if i == len(readings):
            return readings[-1][1]
        (t0, c0), (t1, c1) = readings[i - 1], readings[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0)

    def in_window(self, pid, profile):
        """CPU seconds pid used within the profile's window, from its
        Time for its Duration as `go tool pprof -raw` prints them."""
        start, end = profile_window(profile)
        return self._at(pid, end) - self._at(pid, start)


GO_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6,
                     "ns": 1e-9}


def go_duration_seconds(text):
    """Seconds in a profile's Duration as go tool pprof -raw prints it: a
    bare number of seconds ("3.00"), or a Go duration under a second or
    past a minute ("180ns", "500ms", "2m3.5s"); None if it is neither."""
    if re.fullmatch(r"\d+(\.\d+)?", (text or "").strip()):
        return float(text)
    parts = re.findall(r"([\d.]+)(h|ms|us|µs|ns|m|s)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * GO_DURATION_UNITS[u] for n, u in parts)


def profile_window(profile):
    """(start, end) of a profile's window in Unix seconds."""
    # "Time: 2026-12-01 21:33:14.062380829 +0000 UTC": Python parses microseconds only.
    found = re.search(r"^Time: (\S+ \d+:\d+:\d+)(\.\d+)? ([+-]\d{4})", profile.raw, re.M)
    stamp = datetime.datetime.strptime(f"{found.group(1)} {found.group(3)}",
                                       "%Y-%m-%d %H:%M:%S %z")
    start = stamp.timestamp() + float(found.group(2) or 0)
    return start, start + (go_duration_seconds(profile.duration) or 0)


def check_samples_match_cpu(name, samples, cpu_seconds, frequency, tolerance=0.15,
                            floor=MIN_SAMPLES):
    """Records that `samples` is at least `floor` (enough for the shares
    checked on them to mean something) and within `tolerance` of the
    CPU time x the sampling frequency: missing samples fail it, as do
    samples counted twice or given to the wrong process."""
    expected = cpu_seconds * frequency
    # On every run, not only on failure: the margin under load is worth seeing.
    print(f"# {name}: {samples} samples for {cpu_seconds:.2f} CPU-s x {frequency} Hz "
          f"= {expected:.0f}")
    return check(f"{name}: {floor}+ samples, within {tolerance:.0%} of its CPU time x "
                 f"{frequency} Hz",
                 samples >= floor and abs(samples - expected) <= tolerance * expected,
                 f"{samples} samples; {cpu_seconds:.2f} CPU-s x {frequency} Hz = {expected:.0f}")


def make_certificates():
    """A CA, a server certificate for 127.0.0.1 and a client certificate, by openssl."""
    d = tmpdir("kiln-tls-")
    path = lambda name: os.path.join(d, name)  # noqa: E731

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"),
            "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=kiln test CA")
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("client", "kiln-client", "extendedKeyUsage=clientAuth")):
        with open(path(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path(name + ".key"),
                "-out", path(name + ".csr"), "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.pem"), "-CAkey",
                path("ca.key"), "-CAcreateserial", "-out", path(name + ".pem"), "-days", "2",
                "-extfile", path(name + ".ext"))
    return path
