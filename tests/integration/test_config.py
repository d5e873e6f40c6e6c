# SPDX-License-Identifier: Apache-2.0
"""--config: a YAML file of settings drives a real run (what it sets shows in
the profile, read back with go tool pprof), a flag on the command line wins
over it, and a bad file exits 2 naming file, line and setting."""
import os
import re
import signal
import subprocess

from kilntest import (KILN, check, finish, prog, profiles, read_profile, require_root, run_kiln,
                      start, stop, tmpdir, wait_for)


def write_config(directory, text):
    path = os.path.join(directory, "kiln.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_settings_and_flags():
    """The file sets the frequency, window and output; -F on the command line replaces it."""
    out = tmpdir()
    workload = start([prog("split_nofp"), "30"])
    try:
        path = write_config(out, f"""# a kiln config
frequency: 97
duration: 2
iterations: 1
output-dir: {out}/from-config
pid: [{workload.pid}]
relabel_configs:
  - source_labels: [__meta_process_comm]
    target_label: comm_copy
""")
        code, err = run_kiln(["--config", path])
        files = profiles(f"{out}/from-config")
        check("config: kiln runs from the file alone and writes to its output-dir",
              code == 0 and len(files) == 1, f"exit {code}, {files}: {err[-800:]}")
        if files:
            p = read_profile(files[0])
            pids = {s["labels"].get("pid", ["?"])[0] for s in p.samples}
            # pprof's period is the sampling period in nanoseconds: 1e9 / 97.
            check("config: the file's frequency and pid filter are the run's",
                  p.period == 1000000000 // 97 and pids == {str(workload.pid)},
                  f"period {p.period}, pids {pids}")
            copies = {s["labels"].get("comm_copy", ["?"])[0] for s in p.samples}
            meta = {k for s in p.samples for k in s["labels"] if k.startswith("__meta_")}
            check("config: a relabel rule's label is on every sample, no __meta_* one",
                  p.samples and copies == {"split_nofp"} and not meta,
                  f"comm_copy {copies}, {sorted(meta)[:3]}")

        code, err = run_kiln(["--config", path, "-F", "41", "--output-dir", f"{out}/flags"])
        files = profiles(f"{out}/flags")
        p = read_profile(files[0]) if files else None
        check("config: flags win over the file (frequency, output-dir)",
              code == 0 and p is not None and p.period == 1000000000 // 41 and
              len(profiles(f"{out}/from-config")) == 1,
              f"exit {code}, period {p.period if p else None}: {err[-500:]}")
    finally:
        stop(workload)


def test_relabel_drop():
    """Two programs side by side: a drop rule on one's executable leaves its
    samples out, the other is kept and named by a replace rule; each
    process's labels are read once, from /proc."""
    out = tmpdir()
    dropped = start([prog("split"), "30"])
    kept = start([prog("split_nofp"), "30"])
    try:
        path = write_config(out, f"""frequency: 97
duration: 4
iterations: 1
verbose: true
output-dir: {out}/profiles
pid: [{dropped.pid}, {kept.pid}]
relabel_configs:
  - action: drop
    source_labels: [__meta_process_executable_name]
    regex: split
  - source_labels: [__meta_process_executable_name]
    target_label: service_name
  - source_labels: [__meta_process_ppid, __meta_process_pid]
    separator: "/"
    target_label: lineage
""")
        code, err = run_kiln(["--config", path])
        files = profiles(f"{out}/profiles")
        if not check("relabel: kiln exits 0 with one profile", code == 0 and len(files) == 1,
                     f"exit {code}, {files}: {err[-800:]}"):
            return
        p = read_profile(files[0])
        by_pid = {}
        for s in p.samples:
            pid = int(s["labels"].get("pid", ["0"])[0])
            by_pid[pid] = by_pid.get(pid, 0) + s["values"][0]
        names = {s["labels"].get("service_name", ["?"])[0] for s in p.samples}
        lineage = {s["labels"].get("lineage", ["?"])[0] for s in p.samples}
        check("relabel: the dropped program has no samples, the kept one has",
              dropped.pid not in by_pid and by_pid.get(kept.pid, 0) >= 20, f"{by_pid}")
        check("relabel: the kept one is named by the rule", names == {"split_nofp"}, f"{names}")
        check("relabel: labels joined from two sources", lineage == {f"{os.getpid()}/{kept.pid}"},
              f"{lineage}")
        # Read at kiln's start, the dropped process is skipped in BPF from
        # then on: no samples of it reach a window, nor a count of them.
        said = re.findall(r"(\d+) samples of processes relabeling dropped", err)
        check("relabel: BPF skips the dropped process: none of its samples reach the agent",
              f"pid {dropped.pid}: dropped by relabel_configs, no longer sampled" in err and
              all(n == "0" for n in said), f"{said}: {err[-800:]}")
        # Nor its cost: BPF unwound the kept program's stacks only (both
        # burn a CPU each; unwinding the dropped one too would double it).
        unwound = sum(int(n) for n in re.findall(r"unwind: (\d+) user stacks from CFI", err))
        kept_samples = by_pid.get(kept.pid, 0)
        check("relabel: BPF unwinds no stack of the dropped process",
              0 < unwound <= kept_samples * 1.1 + 5,
              f"{unwound} stacks unwound, {kept_samples} samples kept: {err[-800:]}")
    finally:
        stop(dropped)
        stop(kept)


def test_bad_files():
    out = tmpdir()
    cases = [
        ("frequency: 99\nfrequncy: 9\n", "kiln.yaml:2: unknown setting 'frequncy'"),
        ("frequency: 0\n", "kiln.yaml:1: --frequency: 0 is out of range"),
        ("relabel_configs:\n  - action: keep\n    source_labels: [a]\n    regex: '[a-'\n",
         "kiln.yaml:4: relabel_configs[0].regex: '[a-' is not a valid regex"),
        ("frequency: [99\n", "kiln.yaml:2:"),
    ]
    for text, said in cases:
        path = write_config(out, text)
        proc = subprocess.run([KILN, "--config", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)
        check(f"config: bad file exits 2 saying {said!r}",
              proc.returncode == 2 and said in proc.stderr and path in proc.stderr,
              f"exit {proc.returncode}: {proc.stderr}")


def test_sighup_reload():
    """SIGHUP reads the rules again: a label changes from the next window on;
    a bad file is said and the rules in use stay; a drop rule read on SIGHUP
    leaves the process out (BPF skips it), and the next rules take it back."""
    out = tmpdir()
    workload = start([prog("split_nofp"), "90"])
    rules = {
        "one": "  - target_label: rules\n    replacement: one\n",
        "two": "  - target_label: rules\n    replacement: two\n",
        "bad": "  - target_label: rules\n    replacement: bad\n  - action: keep\n"
               "    source_labels: [a]\n    regex: '(unclosed'\n",
        "drop": "  - action: drop\n    source_labels: [__meta_process_executable_name]\n"
                "    regex: split_nofp\n",
        "three": "  - target_label: rules\n    replacement: three\n",
    }
    path = None

    def write(name):
        return write_config(out, "frequency: 97\nduration: 1\noutput-dir: "
                            f"{out}/profiles\nhttp-address: ''\nverbose: true\n"
                            f"pid: [{workload.pid}]\nrelabel_configs:\n{rules[name]}")
    try:
        path = write("one")
        kiln = subprocess.Popen([KILN, "--config", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        for name in ("two", "bad", "drop", "three"):
            seen = len(profiles(f"{out}/profiles")) if os.path.isdir(f"{out}/profiles") else 0
            wait_for(lambda: os.path.isdir(f"{out}/profiles") and
                     len(profiles(f"{out}/profiles")) >= seen + 2, timeout=60)
            write(name)
            kiln.send_signal(signal.SIGHUP)
        seen = len(profiles(f"{out}/profiles"))
        wait_for(lambda: len(profiles(f"{out}/profiles")) >= seen + 2, timeout=60)
        kiln.send_signal(signal.SIGTERM)
        _, err = kiln.communicate(timeout=60)
    finally:
        stop(workload)
    sequence = []
    for f in profiles(f"{out}/profiles"):
        p = read_profile(f)
        mine = [s for s in p.samples if s["labels"].get("pid") == [str(workload.pid)]]
        values = {v for s in mine for v in s["labels"].get("rules", ["(none)"])}
        value = "(no samples)" if not mine else ",".join(sorted(values))
        if not sequence or sequence[-1] != value:
            sequence.append(value)
    check("SIGHUP: kiln exits 0 after five readings of its file", kiln.returncode == 0,
          f"exit {kiln.returncode}: {err[-1500:]}")
    check("SIGHUP: each window has one reading's labels, in order; the bad file changed "
          "nothing; dropped, the process has no samples, then it is back",
          sequence == ["one", "two", "(no samples)", "three"], f"{sequence}: {err[-1500:]}")
    check("SIGHUP: the bad file is said with file and line, the rules in use kept",
          re.search(re.escape(path) + r":\d+: relabel_configs\[1\]\.regex: .*keeping the "
                    r"rules read before", err) is not None, err[-2000:])
    check("SIGHUP: the dropped process is skipped in BPF",
          f"pid {workload.pid}: dropped by relabel_configs, no longer sampled" in err, err[-1500:])
    reloads = re.findall(r"(\d+) config reloads, (\d+) failed", err)
    check("SIGHUP: reloads counted (3 read, 1 refused)", reloads and reloads[-1] == ("3", "1"),
          reloads[-1:])


if __name__ == "__main__":
    require_root()
    test_sighup_reload()
    test_bad_files()
    test_settings_and_flags()
    test_relabel_drop()
    finish()
