# SPDX-License-Identifier: Apache-2.0
"""OTLP's bytes on the wire against pprof's, for the same host windows: the
realistic host of issue 13 (bench/hostmix.py), profiled whole at 99 Hz by two
kilns side by side, one pushing OTLP/HTTP (one request a window, one
dictionary for every process), one pushing to Pyroscope (one gzip-compressed
pprof a process), both also writing the whole window's pprof file locally.
Receivers are tests/integration/servers' stand-ins, counting only. Reports
per window: the local pprof file, the OTLP request and the per-process pprof
profiles, gzip-compressed as sent, and OTLP's conversion and encoding time
from kiln's log. Environment: OTLP_WINDOWS (4), OTLP_WINDOW (10 s).
Prints Markdown."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostmix  # noqa: E402
from hostmix import HostMix, KilnWatch  # noqa: E402

SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration",
                       "servers")
WINDOWS = int(os.environ.get("OTLP_WINDOWS", "4"))
WINDOW = int(os.environ.get("OTLP_WINDOW", "10"))


def server(script, *args):
    out = tempfile.mkdtemp(prefix="kiln-bench-otlp-")
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(SERVERS, script), "--out", out,
                             "--discard"] + list(args), stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    return proc, out, f"http://127.0.0.1:{port}"


def stats(out):
    with open(os.path.join(out, "stats.json")) as f:
        return json.load(f)


def local_sizes(directory):
    return {name: os.path.getsize(os.path.join(directory, name))
            for name in sorted(os.listdir(directory)) if name.startswith("cpu-")}


def main():
    mix = HostMix()
    servers = []
    try:
        mix.start()
        time.sleep(8)
        otlp, otlp_out, otlp_url = server("otlp_server.py", "--transport", "http")
        pyro, pyro_out, pyro_url = server("pyroscope_server.py")
        servers = [otlp, pyro]
        outs = [tempfile.mkdtemp(prefix="kiln-bench-otlp-out-") for _ in range(2)]
        common = ["--frequency", "99", "--duration", str(WINDOW), "--iterations", str(WINDOWS),
                  "--verbose", "--remote-drain-timeout", "60"]
        kilns = [
            KilnWatch(common + ["--output-dir", outs[0], "--remote-store", otlp_url,
                                "--remote-protocol", "otlp", "--spool-dir",
                                tempfile.mkdtemp()]),
            KilnWatch(common + ["--output-dir", outs[1], "--remote-store", pyro_url,
                                "--spool-dir", tempfile.mkdtemp()]),
        ]
        for kiln in kilns:
            kiln.proc.wait()
            kiln.stop()
        load = hostmix.loadavg()
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait()
        mix.stop()
    otlp_stats, pyro_stats = stats(otlp_out), stats(pyro_out)
    encode_ms = [float(m) for m in re.findall(
        r"CPU window: OTLP request of \d+ processes, \d+ bytes gzip-compressed, converted and "
        r"encoded in ([\d.]+) ms of CPU", kilns[0].log())]
    processes = [int(m) for m in re.findall(r"CPU window: OTLP request of (\d+) processes",
                                            kilns[0].log())]
    local = [sum(local_sizes(out).values()) / max(len(local_sizes(out)), 1) for out in outs]
    otlp_window = otlp_stats["wire_bytes"] / max(otlp_stats["accepted"], 1)
    pyro_window = pyro_stats["bytes"] / WINDOWS
    print("## OTLP against pprof: bytes on the wire (issue 16)\n")
    print("The realistic host (bench/hostmix.py) whole at 99 Hz, two kilns side by side: one "
          "pushing OTLP/HTTP\n(one request a window, one dictionary for all its processes), "
          "one pushing to Pyroscope (one\npprof a process); both also write the window's "
          "pprof file. Receivers count only.\n")
    print(f"kiln {hostmix.kiln_commit()}, {WINDOWS} windows of {WINDOW} s, load {load}; "
          f"OTLP requests: {otlp_stats['accepted']}, processes each: {processes}; "
          f"Pyroscope profiles: {pyro_stats['accepted']}\n")
    print("| per CPU window, gzip-compressed | bytes | / local pprof file |")
    print("| --- | --- | --- |")
    print(f"| local pprof file, the whole window (kiln A; kiln B) | {local[0]:.0f}; "
          f"{local[1]:.0f} | 1 |")
    print(f"| OTLP/HTTP request (one dictionary) | {otlp_window:.0f} | "
          f"{otlp_window / local[0]:.2f} |")
    print(f"| pprof per process, as pushed to Pyroscope | {pyro_window:.0f} | "
          f"{pyro_window / local[1]:.2f} |")
    print(f"| decoded OTLP request (not compressed) | "
          f"{otlp_stats['bytes'] / max(otlp_stats['accepted'], 1):.0f} | |")
    print()
    cpu = [max((line[1] for line in kiln.lines if line[1] is not None), default=0)
           for kiln in kilns]
    print(f"kiln's CPU over the run (start-up included): {cpu[0]:.2f} s pushing OTLP, "
          f"{cpu[1]:.2f} s pushing to Pyroscope\n")
    if encode_ms:
        print(f"OTLP conversion and encoding per window, kiln's CPU: {min(encode_ms):.1f}-"
              f"{max(encode_ms):.1f} ms (mean {sum(encode_ms) / len(encode_ms):.1f} ms)")


if __name__ == "__main__":
    main()
