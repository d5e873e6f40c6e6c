# SPDX-License-Identifier: Apache-2.0
"""The systemd service: `make install` puts kiln, its unit and the README
under DESTDIR and PREFIX; systemd-analyze accepts the unit; and kiln run as
the unit runs it (root with only the unit's capability bounding set, no new
privileges, its default flags) profiles another user's process with user
and kernel frames named. No systemd is PID 1 here, so the unit's sandboxing
itself is not exercised."""
import os
import re
import shlex
import subprocess

from kilntest import check, finish, prog, read_profile, require_root, start, stop, tmpdir

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PREFIX = "/opt/kiln-test"


def install():
    destdir = tmpdir("kiln-install-")
    proc = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install",
                           f"DESTDIR={destdir}", f"PREFIX={PREFIX}"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout, destdir


def unit_settings(text):
    """Key=value lines of the unit (the last of a repeated key wins; Environment= gathered)."""
    settings, environment = {}, {}
    for line in text.splitlines():
        if "=" not in line or line.startswith(("#", "[")):
            continue
        key, value = line.split("=", 1)
        if key == "Environment":
            for item in shlex.split(value):
                name, _, val = item.partition("=")
                environment[name] = val
        else:
            settings[key] = value
    return settings, environment


def run_as_unit(binary, settings, environment, caps, out, pid_args):
    """kiln as the unit starts it: root, the bounding set, no new privileges,
    the unit's KILN_ARGS with the output directory moved to `out`."""
    args = shlex.split(environment["KILN_ARGS"])
    args[args.index("--output-dir") + 1] = out
    bounding = "-all," + ",".join("+" + c.lower().replace("cap_", "") for c in caps)
    argv = ["setpriv", "--bounding-set", bounding, "--inh-caps", "-all"]
    if settings.get("NoNewPrivileges") == "yes":
        argv.append("--no-new-privs")
    argv += [binary] + args + ["--duration", "2", "--iterations", "1"] + pid_args
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)
    return proc.returncode, proc.stderr


def named_kernel_frames(profile):
    kernel = profile.kernel_mapping_ids()
    return {name for loc in profile.locations.values() if loc["mapping"] in kernel
            for name, _ in loc["lines"]}


def test_install_and_unit():
    code, output, destdir = install()
    binary = os.path.join(destdir, PREFIX.lstrip("/"), "bin", "kiln")
    unit_path = os.path.join(destdir, "etc", "systemd", "system", "kiln.service")
    readme = os.path.join(destdir, PREFIX.lstrip("/"), "share", "doc", "kiln", "README.md")
    check("install: make install puts kiln, the unit and the README under DESTDIR/PREFIX",
          code == 0 and os.access(binary, os.X_OK) and os.path.isfile(unit_path) and
          os.path.isfile(readme), output)
    if not os.path.isfile(unit_path):
        return
    text = open(unit_path).read()
    settings, environment = unit_settings(text)
    check("install: the unit starts the installed kiln with the flags in KILN_ARGS",
          settings.get("ExecStart") == f"{PREFIX}/bin/kiln $KILN_ARGS" and
          "KILN_ARGS" in environment, settings.get("ExecStart"))

    # systemd-analyze checks the unit, pointed at the binary where it really is.
    checkable = os.path.join(destdir, "kiln.service")
    with open(checkable, "w") as f:
        f.write(text.replace(f"{PREFIX}/bin/kiln", binary))
    verify = subprocess.run(["systemd-analyze", "verify", checkable], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    check("unit: systemd-analyze verify accepts it, without a warning",
          verify.returncode == 0 and not verify.stdout.strip(), verify.stdout)

    caps = settings.get("CapabilityBoundingSet", "").split()
    check("unit: a capability bounding set without CAP_SYS_MODULE or CAP_NET_ADMIN",
          caps and "CAP_SYS_MODULE" not in caps and "CAP_NET_ADMIN" not in caps, caps)
    nobody = start(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    prog("split"), "30"])
    try:
        out = tmpdir()
        code, err = run_as_unit(binary, settings, environment, caps, out,
                                ["--pid", str(nobody.pid)])
        files = sorted(os.listdir(out))
        check("unit's capabilities: kiln exits 0 and writes a CPU and an off-CPU profile",
              code == 0 and len(files) == 2, f"exit {code}, {files}: {err}")
        cpu = [f for f in files if f.startswith("cpu-")]
        if cpu:
            p = read_profile(os.path.join(out, cpu[0]))
            stacks = [p.user_stack(s) for s in p.samples
                      if s["labels"].get("pid") == [str(nobody.pid)]]
            whole = [s for s in stacks if "main" in s and "run_round" in s]
            check("unit's capabilities: another user's process, its user frames named",
                  stacks and len(whole) >= 0.9 * len(stacks), stacks[:5])
        # Whole host, off-CPU: blocked threads' kernel stacks need kallsyms' addresses.
        out = tmpdir()
        code, err = run_as_unit(binary, settings, environment, caps, out, [])
        off = [f for f in os.listdir(out) if f.startswith("offcpu-")]
        names = named_kernel_frames(read_profile(os.path.join(out, off[0]))) if off else set()
        check("unit's capabilities: kernel frames named (kallsyms readable)",
              code == 0 and "do_syscall_64" in names, f"exit {code}, {sorted(names)[:20]}: {err}")
        # The control: without CAP_SYSLOG kallsyms hides its addresses, and the same check fails.
        out = tmpdir()
        code, err = run_as_unit(binary, settings, environment,
                                [c for c in caps if c != "CAP_SYSLOG"], out, [])
        off = [f for f in os.listdir(out) if f.startswith("offcpu-")]
        names = named_kernel_frames(read_profile(os.path.join(out, off[0]))) if off else set()
        check("unit's capabilities: without CAP_SYSLOG kernel frames are not named (control)",
              code == 0 and off and "do_syscall_64" not in names, f"exit {code}, {err}")
    finally:
        stop(nobody)


if __name__ == "__main__":
    require_root()
    test_install_and_unit()
    finish()
