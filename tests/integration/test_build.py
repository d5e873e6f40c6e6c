# SPDX-License-Identifier: Apache-2.0
"""The build beyond this host: the BPF objects come from the committed
bpf/x86/vmlinux.h, never from the running kernel's BTF; a user's CFLAGS
changes the optimisation, not kiln's own flags; unit tests build without the
BPF toolchain. Every build goes to a temporary BUILD directory, removed
afterwards; one directory serves all, so the library is compiled once."""
import glob
import os
import shutil
import subprocess

from kilntest import ROOT, check, finish, tmpdir

NO_BTF = "/nonexistent/btf/vmlinux"
VMLINUX_H = os.path.join(ROOT, "bpf", "x86", "vmlinux.h")


def make(build, *args, timeout=900):
    """Runs make in the tree into `build`; returns (exit code, output).
    Variables of an enclosing make (`make check`) are kept out."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    proc = subprocess.run(["make", "--no-print-directory", "-j2", f"BUILD={build}"] + list(args),
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout


def compile_lines(output, build, bpf):
    """The compiler command lines of a `make V=1` output, user space or BPF."""
    return [line for line in output.splitlines()
            if " -c " in line and f"-o {build}/" in line and ("-target bpf" in line) == bpf]


def test_make_reads_no_btf():
    build = tmpdir("kiln-build-n-")
    try:
        code, out = make(build, "-n", "all", "test-build", "check-headers")
        check("vmlinux.h: make -n plans a build", code == 0 and "-target bpf" in out, out[-2000:])
        check("vmlinux.h: no planned command reads /sys/kernel/btf or dumps BTF",
              "/sys/kernel/btf" not in out and "btf dump" not in out,
              [line for line in out.splitlines() if "btf" in line][:3])
    finally:
        shutil.rmtree(build, ignore_errors=True)


def test_unit_tests_without_bpf_toolchain(build):
    """CLANG and BPFTOOL that always fail: any BPF step would stop the build."""
    units = [os.path.join(build, os.path.relpath(src, ROOT)[:-2])
             for src in glob.glob(os.path.join(ROOT, "tests", "unit", "*", "test_*.c"))]
    tools = [os.path.join(build, os.path.relpath(src, ROOT)[:-2])
             for src in glob.glob(os.path.join(ROOT, "tests", "tools", "*.c"))]
    code, out = make(build, "CLANG=false", "BPFTOOL=false", "CFLAGS=-O0", "V=1", *units, *tools)
    check("unit tests: build with CLANG=false BPFTOOL=false", code == 0, out[-3000:])
    check("unit tests: every unit test and test tool built",
          units and all(os.access(path, os.X_OK) for path in units + tools),
          [path for path in units + tools if not os.access(path, os.X_OK)])
    bpf_artefacts = glob.glob(os.path.join(build, "bpf", "*"))
    check("unit tests: no BPF object or skeleton made", not bpf_artefacts, bpf_artefacts)
    return out


def test_cflags(build, outputs):
    """make CFLAGS=-O0: every compile of kiln's code takes -O0 and keeps kiln's flags."""
    lines = [line for out in outputs for line in compile_lines(out, build, bpf=False)]
    check("CFLAGS=-O0: compile lines seen", len(lines) > 20, len(lines))
    required = ("-O0", "-std=gnu11", "-D_GNU_SOURCE", "-Werror", "-I. ", "-MMD")
    missing = [line for line in lines
               if any(flag not in line for flag in required) or "-O2" in line]
    check("CFLAGS=-O0: every compile line has -O0 and kiln's own flags, none -O2",
          not missing, missing[:2])


def test_kiln_from_committed_vmlinux(build):
    """kiln whole, with VMLINUX_BTF naming nothing: only the committed header serves."""
    code, out = make(build, "CFLAGS=-O0", f"VMLINUX_BTF={NO_BTF}", "V=1", f"{build}/kiln")
    check("vmlinux.h: kiln builds with VMLINUX_BTF pointing nowhere", code == 0, out[-3000:])
    bpf_lines = compile_lines(out, build, bpf=True)
    objects = sorted(glob.glob(os.path.join(ROOT, "bpf", "*.bpf.c")))
    check("vmlinux.h: every BPF object compiled against bpf/x86/",
          len(bpf_lines) == len(objects) >= 3 and all("-Ibpf/x86/" in line for line in bpf_lines),
          (objects, bpf_lines))
    check("vmlinux.h: the build read no BTF",
          "btf dump" not in out and "/sys/kernel/btf" not in out and NO_BTF not in out)
    proc = subprocess.run([os.path.join(build, "kiln"), "--help"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=30)
    check("CFLAGS=-O0: the kiln built runs", proc.returncode == 0, proc.stdout[-500:])
    return out


def test_vmlinux_target_without_btf(build):
    before = os.stat(VMLINUX_H).st_mtime_ns
    code, out = make(build, f"VMLINUX_BTF={NO_BTF}", "vmlinux")
    check("vmlinux.h: make vmlinux fails without BTF and leaves the header as it was",
          code != 0 and os.stat(VMLINUX_H).st_mtime_ns == before, out[-1000:])


if __name__ == "__main__":
    test_make_reads_no_btf()
    shared = tmpdir("kiln-build-")
    try:
        unit_output = test_unit_tests_without_bpf_toolchain(shared)
        kiln_output = test_kiln_from_committed_vmlinux(shared)
        test_cflags(shared, [unit_output, kiln_output])
        test_vmlinux_target_without_btf(shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    finish()
