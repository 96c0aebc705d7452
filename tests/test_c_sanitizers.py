"""Build csrc/ with tests/c/driver.c under AddressSanitizer + UndefinedBehaviorSanitizer and run it,
and tests/c/pool_stress.c under ThreadSanitizer.

The driver calls every kernel on every ISA path this CPU supports, 1 and 2 threads, at odd sizes,
with buffers allocated exactly to size, and compares with plain references; any out-of-bounds
access or undefined behaviour aborts it with a sanitizer report.
"""
import glob
import os
import shutil
import subprocess

from hdc._kernels import c_kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")


def c_sources():
    return sorted(glob.glob(os.path.join(CSRC, "*.c")) + glob.glob(os.path.join(CSRC, "*", "*.c")))


def test_driver_under_asan_and_ubsan(tmp_path):
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc) is needed to build the sanitizer driver"
    exe = tmp_path / "hdc_driver"
    cmd = [cc, "-std=gnu11", "-O1", "-g", "-fno-omit-frame-pointer", "-ffp-contract=off",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-pthread",
           "-I", CSRC, *c_sources(), os.path.join(ROOT, "tests", "c", "driver.c"), "-o", str(exe), "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1")
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=env)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-5000:]
    assert "ERROR: AddressSanitizer" not in report and "runtime error" not in report, report[-5000:]
    assert "OK (0 mismatches)" in run.stdout
    # the driver really covered every path this CPU runs
    for isa in c_kernels.available_isas():
        assert f"isa {c_kernels.ISA_NAMES.index(isa)} threads 2: done" in run.stdout, isa


def test_thread_pool_under_tsan(tmp_path):
    """Back-to-back threaded calls: no data race, and the same results as one thread."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc) is needed to build the sanitizer driver"
    exe = tmp_path / "hdc_pool_stress"
    cmd = [cc, "-std=gnu11", "-O1", "-g", "-fsanitize=thread", "-pthread", "-I", CSRC,
           *c_sources(), os.path.join(ROOT, "tests", "c", "pool_stress.c"), "-o", str(exe), "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TSAN_OPTIONS="halt_on_error=1"))
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-5000:]
    assert "ThreadSanitizer" not in report and "OK (0 mismatches)" in run.stdout, report[-5000:]
