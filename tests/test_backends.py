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


def test_thread_limit_caps_the_calling_thread_only():
    """hdc.backend.thread_limit: a cap for the calling thread on every backend, restored on exit;
    other threads keep theirs, and results are the same bits under any cap (concurrent callers too)."""
    import threading

    from hdc._kernels import _numba_threads

    m, q = hdc.random(700, 1000, seed=0), hdc.random(70, 1000, seed=1)
    want = {}
    for name in hdc.backends():
        with hdc.use_backend(name):
            want[name] = hdc.topk(q, m, 5)
    modules = {name: backend._require(name) for name in hdc.backends()}
    seen = {}

    def other():
        seen.update({name: mod.get_thread_limit() for name, mod in modules.items()})

    before = hdc.get_num_threads()
    hdc.set_num_threads(2)
    try:
        with backend.thread_limit(1):
            assert modules["c"].get_thread_limit() == 1
            if "numba" in modules:
                assert modules["numba"].get_thread_limit() == 1 and _numba_threads.get_num_threads() == 1
            t = threading.Thread(target=other)
            t.start()
            t.join()
            results = {}

            def search(name):
                with hdc.use_backend(name), backend.thread_limit(1):
                    results[name] = hdc.topk(q, m, 5)

            threads = [threading.Thread(target=search, args=(name,)) for name in modules]
            for t in threads:
                t.start()
            for name in modules:
                with hdc.use_backend(name):
                    d, i = hdc.topk(q, m, 5)
                assert (d == want[name][0]).all() and (i == want[name][1]).all()
            for t in threads:
                t.join()
            for name, (d, i) in results.items():
                assert (d == want[name][0]).all() and (i == want[name][1]).all()
        assert all(v == 0 for v in seen.values()), seen
        assert all(mod.get_thread_limit() == 0 for name, mod in modules.items())
        if "numba" in modules:
            assert _numba_threads.get_num_threads() == 2 or _numba_threads._MAX_THREADS < 2
    finally:
        hdc.set_num_threads(before)
    with pytest.raises(ValueError, match="n"):
        with backend.thread_limit(-1):
            pass
