"""The aarch64 build: csrc/ and tests/c/driver.c cross-compiled with aarch64-linux-gnu-gcc and run
under qemu-user, so the neon path is checked against the driver's plain references (and the
scalar path) on every CI run without ARM hardware.

Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user (.ci/run installs them).
"""
import os
import shutil
import subprocess

from test_c_sanitizers import CSRC, ROOT, c_sources

from hdc._kernels import c_kernels

SYSROOT = "/usr/aarch64-linux-gnu"


def test_neon_path_under_qemu(tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    assert cc and qemu, ("the aarch64 cross toolchain is needed: apt-get install "
                         "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user")
    exe = tmp_path / "hdc_driver_aarch64"
    cmd = [cc, "-std=gnu11", "-O2", "-Wall", "-ffp-contract=off", "-pthread", "-I", CSRC,
           *c_sources(), os.path.join(ROOT, "tests", "c", "driver.c"), "-o", str(exe), "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "warning" not in build.stderr, build.stderr
    run = subprocess.run([qemu, "-L", SYSROOT, str(exe)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert "OK (0 mismatches)" in run.stdout
    neon, scalar = c_kernels.ISA_NAMES.index("neon"), c_kernels.ISA_NAMES.index("scalar")
    for isa in (scalar, neon):
        for threads in (1, 2):
            assert f"isa {isa} threads {threads}: done" in run.stdout, run.stdout
