"""Shared fixtures: every kernel test runs on every backend and, for C, every SIMD path.

The parameter list holds what this machine can run. CI sets HDC_REQUIRE_BACKENDS and
HDC_REQUIRE_ISAS so that a backend or path that fails to load fails the run
(tests/test_backends.py) instead of silently shrinking the matrix.
"""
import contextlib

import numpy as np
import pytest

import hdc
from hdc import backend


def _paths():
    paths = []
    for name in backend.backends():
        if name == "c":
            module = backend._require("c")
            paths += [("c", isa) for isa in module.available_isas()]
        else:
            paths.append((name, None))
    return paths


PATHS = _paths()


@contextlib.contextmanager
def on_path(name, isa=None):
    """Use backend ``name`` (and, for C, SIMD path ``isa``) inside the block."""
    with hdc.use_backend(name):
        if isa is None:
            yield
        else:
            with hdc.use_isa(isa):
                yield


@pytest.fixture(params=PATHS, ids=[name if isa is None else f"{name}-{isa}" for name, isa in PATHS])
def kernel_path(request):
    """Run the test on one backend (and SIMD path), restoring the previous choice after."""
    name, isa = request.param
    with on_path(name, isa):
        yield name if isa is None else f"{name}-{isa}"


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
