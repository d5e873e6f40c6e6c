# SPDX-License-Identifier: Apache-2.0
"""Debug files from a real debuginfod server (elfutils' `debuginfod -F`) on
loopback: a stripped program's function is named once its debug file has
been fetched, and a server that is down or hung never costs a window."""
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

from kilntest import (check, finish, prog, profiles, read_profile, require_root, run_kiln, start,
                      stop, tmpdir)

FUNCTION = "spin_named_by_debuginfod"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE, text=True).stdout
    match = re.search(r"Build ID: ([0-9a-f]+)", out)
    return match.group(1) if match else None


def stripped_program():
    """A copy of stripped_spin without .symtab or .gnu_debuglink, and its
    debug file in a directory of its own, for the server. Returns (program,
    directory of the debug file, build id)."""
    work = tmpdir("kiln-debuginfod-")
    program = os.path.join(work, "stripped_spin")
    serve = os.path.join(work, "serve")
    os.mkdir(serve)
    shutil.copy(prog("stripped_spin"), program)
    # Compressed, as distributions' debug files are (and so served by their debuginfod).
    subprocess.run(["objcopy", "--only-keep-debug", "--compress-debug-sections=zlib-gabi",
                    program, os.path.join(serve, "stripped_spin.debug")], check=True)
    subprocess.run(["strip", "--strip-all", "--remove-section=.gnu_debuglink", program],
                   check=True)
    return program, serve, build_id(program)


def kiln_env():
    """Only --debuginfod-urls names servers, and the client cache is the test's own."""
    env = dict(os.environ)
    env.pop("DEBUGINFOD_URLS", None)
    env["DEBUGINFOD_CACHE_PATH"] = tmpdir("kiln-debuginfod-cache-")
    return env


def start_server(serve, wanted_build_id):
    """Starts debuginfod on serve and waits until it has scanned it: until it
    answers 200 for the debug file. Returns (process, port) or (None, None)."""
    port = free_port()
    server = start(["debuginfod", "-F", "-p", str(port), "-d", ":memory:", serve],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/buildid/{wanted_build_id}/debuginfo"
    deadline = time.time() + 60
    while time.time() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return server, port
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    stop(server)
    return None, None


def fetch_counts(err):
    """The last per-window debuginfod line: (requested, succeeded, failed, under way)."""
    lines = re.findall(r"debuginfod: (\d+) fetches requested, (\d+) succeeded, (\d+) failed, "
                       r"\d+ dropped with the queue full, (\d+) under way", err)
    return tuple(int(n) for n in lines[-1]) if lines else None


def leaf_names(p, pid):
    """Samples of the process by the name of their user leaf frame."""
    counts = {}
    for s in p.samples:
        if s["labels"].get("pid") != [str(pid)]:
            continue
        stack = p.user_stack(s)
        leaf = stack[0] if stack else "?"
        counts[leaf] = counts.get(leaf, 0) + s["values"][0]
    return counts


def profile_stripped(program, urls, windows, env):
    """Runs the program and kiln --pid on it for `windows` one-second windows.
    Returns (exit code, stderr, profiles, pid)."""
    out = tmpdir()
    workload = start([program, str(windows + 20)])
    try:
        time.sleep(0.3)
        code, err = run_kiln(["--pid", str(workload.pid), "--duration", "1", "--iterations",
                              str(windows), "--frequency", "99", "--output-dir", out,
                              "--debuginfod-urls", urls], timeout=120, env=env)
    finally:
        stop(workload)
    return code, err, [read_profile(f) for f in profiles(out)], workload.pid


def test_fetched_debug_file_names_the_function():
    program, serve, program_build_id = stripped_program()
    nm = subprocess.run(["nm", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    sections = subprocess.run(["readelf", "-S", program], stdout=subprocess.PIPE,
                              text=True).stdout
    check("debuginfod: the program is stripped (no symbols, no debuglink), with a build id",
          FUNCTION not in nm.stdout and ".gnu_debuglink" not in sections and
          ".symtab" not in sections and program_build_id, nm.stdout + nm.stderr)

    # Without a server, nothing can name it: the ground truth is only on the server.
    code, err, ps, pid = profile_stripped(program, "", 1, kiln_env())
    named = sum(leaf_names(p, pid).get(FUNCTION, 0) for p in ps)
    check("debuginfod: without a server the function has no name",
          code == 0 and len(ps) == 1 and named == 0 and sum(leaf_names(ps[0], pid).values()),
          f"exit {code}, {len(ps)} profiles, {named} named samples: {err}")

    server, port = start_server(serve, program_build_id)
    if not check("debuginfod: server up and serving the debug file", server is not None):
        return
    env = kiln_env()
    try:
        code, err, ps, pid = profile_stripped(program, f"http://127.0.0.1:{port}", 4, env)
    finally:
        stop(server)
    check("debuginfod: kiln exits 0 and writes every window", code == 0 and len(ps) == 4,
          f"exit {code}, {len(ps)} profiles: {err}")
    if not ps:
        return
    last = leaf_names(ps[-1], pid)
    total = sum(last.values())
    check("debuginfod: within a few windows the function is named",
          total > 0 and last.get(FUNCTION, 0) >= 0.9 * total, f"{last}; {err}")
    # Its DWARF too: the leaf's file and lines are the function's, in its source.
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "progs",
                          "stripped_spin.c")
    source_lines = open(source).read().splitlines()
    first = next(i for i, l in enumerate(source_lines, 1) if FUNCTION + "(" in l)
    last = next(i for i, l in enumerate(source_lines, 1) if l.startswith("int main"))
    leaf_lines = {}
    for sample in ps[-1].samples:
        location = ps[-1].locations.get(sample["locations"][0]) if sample["locations"] else None
        if sample["labels"].get("pid") == [str(pid)] and location and location["lines"]:
            function, file_line = location["lines"][0]
            if function == FUNCTION:
                leaf_lines[file_line] = leaf_lines.get(file_line, 0) + sample["values"][0]
    in_body = sum(n for fl, n in leaf_lines.items()
                  if fl.rsplit(":", 1)[0].endswith("/stripped_spin.c")
                  and first < int(fl.rsplit(":", 1)[1]) < last)
    check("debuginfod: the fetched (compressed) DWARF gives the leaf's source file and lines",
          leaf_lines and in_body == sum(leaf_lines.values()),
          f"lines {first}..{last} of stripped_spin.c wanted: {leaf_lines}")
    # libc and the loader may be asked for too, where no local debug package has them.
    counts = fetch_counts(err)
    check("debuginfod: the fetch is counted as succeeded, once",
          counts and counts[1] == 1 and counts[0] == counts[1] + counts[2] + counts[3], counts)
    cached = os.path.join(env["DEBUGINFOD_CACHE_PATH"], program_build_id, "debuginfo")
    check("debuginfod: the file is in the client's cache",
          os.path.isfile(cached) and os.path.getsize(cached) > 0, cached)


def test_server_down():
    """Nothing listens: every window is written, profiling goes on, the failure is reported."""
    program, _, _ = stripped_program()
    code, err, ps, pid = profile_stripped(program, f"http://127.0.0.1:{free_port()}", 3,
                                          kiln_env())
    check("server down: kiln exits 0 and writes every window", code == 0 and len(ps) == 3,
          f"exit {code}, {len(ps)} profiles: {err}")
    check("server down: every window has the process's samples",
          ps and all(sum(leaf_names(p, pid).values()) > 0 for p in ps),
          [leaf_names(p, pid) for p in ps])
    counts = fetch_counts(err)
    check("server down: the failure is counted and its reason logged",
          counts and counts[0] >= 1 and counts[2] == counts[0] and "Connection refused" in err,
          err)


def test_hung_server():
    """A server that accepts and never answers: windows are written on time
    all the same, and kiln exits without waiting for the fetch."""
    program, _, _ = stripped_program()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code, err, ps, pid = profile_stripped(program, f"http://127.0.0.1:{port}", 3,
                                              kiln_env())
    check("hung server: kiln exits 0 and writes every window", code == 0 and len(ps) == 3,
          f"exit {code}, {len(ps)} profiles: {err}")
    check("hung server: every window has the process's samples",
          ps and all(sum(leaf_names(p, pid).values()) > 0 for p in ps))
    counts = fetch_counts(err)
    check("hung server: the fetch is still under way when kiln stops",
          counts and counts[3] >= 1 and counts[1] == 0 and counts[2] == 0, counts)


def test_command_line():
    code, err = run_kiln(["--debuginfod-urls", "ftp://example.org", "--iterations", "1"])
    check("cli: --debuginfod-urls with a non-HTTP URL exits 2 naming the flag",
          code == 2 and "--debuginfod-urls" in err, f"exit {code}: {err}")
    help_text = subprocess.run([os.path.join(os.environ.get("BUILD", "build"), "kiln"),
                                "--help"], stdout=subprocess.PIPE, text=True).stdout
    check("cli: --help lists --debuginfod-urls", "--debuginfod-urls" in help_text)


if __name__ == "__main__":
    require_root()
    test_command_line()
    test_fetched_debug_file_names_the_function()
    test_server_down()
    test_hung_server()
    finish()
