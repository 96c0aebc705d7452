"""The environment variables hdc reads, each read here and nowhere else in Python.

=========================  ===================================================================
``HDC_BACKEND``            the default backend ('c', 'numba' or 'numpy'); unset: the fastest
``HDC_NUM_THREADS``        threads for every backend (a positive integer); unset: all cores
``HDC_ISA``                the C backend's SIMD path (see ``hdc.available_isas()``) or 'auto'
``HDC_REQUIRE_BACKENDS``   comma-separated backends that must load (CI: tests fail otherwise)
``HDC_REQUIRE_ISAS``       comma-separated SIMD paths that must be available (CI, likewise)
=========================  ===================================================================

(The C library also reads ``HDC_NUM_THREADS`` when it loads, csrc/dispatch.c, so that C programs
linking it directly honour it too. ``HDC_ISA`` is applied by :mod:`hdc.backend` when the C backend
loads, as a ValueError naming the missing CPU feature when this machine cannot run that path.)

>>> import hdc._env
>>> hdc._env.backend() in (None, "c", "numba", "numpy")
True
"""
import os

NAMES = ("HDC_BACKEND", "HDC_NUM_THREADS", "HDC_ISA", "HDC_REQUIRE_BACKENDS", "HDC_REQUIRE_ISAS")


def _get(name):
    return os.environ.get(name) or None


def backend():
    """``HDC_BACKEND``, or None when unset or empty (checked by :mod:`hdc.backend`)."""
    return _get("HDC_BACKEND")


def num_threads():
    """``HDC_NUM_THREADS`` as a positive int, or None when unset; ValueError when malformed."""
    value = _get("HDC_NUM_THREADS")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"HDC_NUM_THREADS must be a positive integer, got {value!r}")
    return int(value)


def isa():
    """``HDC_ISA``, or None when unset or empty (applied and checked by :mod:`hdc.backend`)."""
    return _get("HDC_ISA")


def _names(name):
    return tuple(part for part in (_get(name) or "").split(",") if part)


def required_backends():
    """``HDC_REQUIRE_BACKENDS`` as a tuple of names (empty when unset)."""
    return _names("HDC_REQUIRE_BACKENDS")


def required_isas():
    """``HDC_REQUIRE_ISAS`` as a tuple of names (empty when unset)."""
    return _names("HDC_REQUIRE_ISAS")
