"""cffi builder for the C kernels (out-of-line API mode): ``hdc._kernels._hdc_c``.

The cdef is csrc/hdc.h itself with the preprocessor lines removed, so the header stays the one
description of the C API. Used by setup.py (``cffi_modules=["csrc/_build.py:ffi"]``); running
this file directly builds the extension in place, for development.
"""
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rel(*parts):
    # setuptools wants source paths relative to the project root
    return os.path.relpath(os.path.join(HERE, *parts), ROOT if os.getcwd() == ROOT else os.getcwd())


# Shared files at the top (limits.c: the XOR-reduce hdc bench measures limits with); one folder
# per op family: its driver (ISA-independent) and, for the
# families with per-ISA tables (internal.h), one file per SIMD path.
SHARED = ["dispatch.c", "pool.c", "limits.c"]
FAMILIES = ["elementwise", "hamming", "search", "bundle", "kwta", "kwta_sparse", "sparse"]


def _sources():
    found = list(SHARED)
    for family in FAMILIES:
        found += sorted(os.path.join(family, f) for f in os.listdir(os.path.join(HERE, family))
                        if f.endswith(".c"))
    return found


SOURCES = _sources()


def _headers():
    """Every .h and .inc under csrc/: a change to one rebuilds the extension (setuptools `depends`)."""
    return sorted(os.path.relpath(os.path.join(d, f), HERE) for d, _, files in os.walk(HERE)
                  for f in files if f.endswith((".h", ".inc")))


HEADERS = _headers()

# portable: no -march=native; each ISA file sets its own target
# -ffp-contract=off: no fused multiply-add, so float results are the same on every ISA path
COMPILE_ARGS = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-ffp-contract=off", "-pthread"]
LINK_ARGS = ["-pthread"]


def cdef_from_header(path):
    """The header's declarations, without preprocessor lines (cffi's cdef does not take them)."""
    with open(path) as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


ffi = FFI()
ffi.cdef(cdef_from_header(os.path.join(HERE, "hdc.h")))
ffi.set_source(
    "hdc._kernels._hdc_c",
    '#include "hdc.h"',
    sources=[_rel(s) for s in SOURCES],
    include_dirs=[_rel()],
    depends=[_rel(h) for h in HEADERS],
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
    libraries=["m"],
)

if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(os.system(f"{sys.executable} setup.py build_ext --inplace"))
