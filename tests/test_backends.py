"""Backend selection, the environment variables, and what `import hdc` loads."""
import os
import subprocess
import sys

import pytest

import hdc
from hdc import _env, backend


def run_python(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_required_backends_and_isas_are_present():
    """CI names what must load (HDC_REQUIRE_*), so a broken build fails instead of shrinking the matrix."""
    required = _env.required_backends() or ("numpy",)
    assert set(required) <= set(hdc.backends()), backend.unavailable()
    isas = _env.required_isas()
    if isas:
        # exactly: a path the CPU supports must have been built, and dispatch must not offer more
        assert set(isas) == set(backend._require("c").available_isas())


def test_use_backend_restores_and_set_backend_persists():
    before = hdc.get_backend()
    with hdc.use_backend("numpy"):
        assert hdc.get_backend() == "numpy"
    assert hdc.get_backend() == before
    try:
        hdc.set_backend("numpy")
        assert hdc.get_backend() == "numpy"
    finally:
        hdc.set_backend(before)


def test_default_is_fastest_available():
    assert hdc.get_backend() == hdc.backends()[0] or "HDC_BACKEND" in os.environ


def test_environment_variable_selects_backend():
    out = run_python("import hdc; print(hdc.get_backend())", HDC_BACKEND="numpy")
    assert out.stdout.strip() == "numpy", out.stderr
    bad = run_python("import hdc; hdc.get_backend()", HDC_BACKEND="fortran")
    assert bad.returncode != 0 and "HDC_BACKEND" in bad.stderr


def test_unavailable_backend_error_says_why_and_how(monkeypatch):
    monkeypatch.setitem(backend._errors, "c", "ImportError: the C extension was not built")
    monkeypatch.delitem(backend._loaded, "c", raising=False)
    with pytest.raises(ValueError, match="not built.*to fix"):
        hdc.set_backend("c")


def test_import_is_light():
    """`import hdc` must not import numba, torch or dask, nor compile anything."""
    out = run_python("import sys, hdc; print(sorted(m for m in ('numba', 'torch', 'torchhd', 'faiss', 'dask', "
                     "'distributed') if m in sys.modules))")
    assert out.stdout.strip() == "[]", out.stderr


def test_set_num_threads_roundtrip():
    before = hdc.get_num_threads()
    try:
        hdc.set_num_threads(1)
        assert hdc.get_num_threads() == 1
    finally:
        hdc.set_num_threads(before)
