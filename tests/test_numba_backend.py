"""The Numba backend against the NumPy reference, kernel by kernel, bit for bit.

Each kernel test runs with 1 thread (serial kernels) and with 2 threads and the parallel threshold
forced to 0 (the prange drivers, even on tiny inputs), so both paths meet the reference.
"""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hdc
from hdc._kernels import _numba_threads as nt
from hdc._kernels import numba_kernels as nk
from hdc._kernels import numpy_ref as ref
from hdc._kernels.bundle import numba as bundle_numba

DIMS = [1, 63, 64, 65, 127, 1000, 8191]
ROWS = [0, 1, 7, 33]
THREADS = [1, 2]


def words(rng, n, dim):
    """``n`` random rows of ``dim`` bits, padding zero (as every kernel may assume)."""
    w = (dim + 63) // 64
    x = rng.integers(0, 2 ** 64 - 1, size=(n, w), dtype=np.uint64, endpoint=True)
    if dim % 64:
        x[:, -1] &= np.uint64((1 << (dim % 64)) - 1)
    return x


@pytest.fixture(params=THREADS, ids=lambda t: f"threads{t}")
def threads(request, monkeypatch):
    """Serial kernels with 1 thread; with 2, the parallel drivers on every input size."""
    before = nk.get_num_threads()
    nk.set_num_threads(request.param)
    if request.param > 1:
        monkeypatch.setattr(nt, "_par_work", 0)
        monkeypatch.setattr(nt, "_MIN_PAR_WORK", 0)
    yield nk.get_num_threads()
    nk.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def both(kernel_name, *args, out_like):
    """Run a kernel on both backends into fresh outputs shaped like ``out_like``; return both."""
    outs = []
    for module in (ref, nk):
        out = [np.zeros_like(o) for o in out_like]
        getattr(module, kernel_name)(*args, *out)
        outs.append(out)
    return outs


@pytest.mark.parametrize("dim", DIMS)
def test_elementwise_kernels(dim, threads, rng):
    for n in ROWS:
        a, b = words(rng, n, dim), words(rng, n, dim)
        want, got = both("bind", a.reshape(-1), b.reshape(-1), out_like=[a.reshape(-1)])
        np.testing.assert_array_equal(got[0], want[0])
        counts = np.zeros(n, np.int32)
        want, got = both("popcount", a, out_like=[counts])
        np.testing.assert_array_equal(got[0], want[0])
        want, got = both("hamming", a, b, out_like=[counts])
        np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("dim", DIMS)
def test_permute_all_word_edges(dim, threads, rng):
    x = words(rng, 7, dim)
    shifts = {1, 2, dim - 1, dim - 2, dim // 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, dim - 63,
              dim - 64, dim - 65}
    for shift in sorted(s for s in shifts if 0 < s < dim):
        want, got = both("permute", x, dim, shift, out_like=[x])
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"dim={dim} shift={shift}")
        assert not dim % 64 or not np.any(got[0][:, -1] >> np.uint64(dim % 64))


@pytest.mark.parametrize("dim", DIMS)
def test_cdist_blocks_and_remainders(dim, threads, rng):
    # 33 queries = 4 blocks of 8 + 1; 7 = 4 + 3; stored rows around the tile size
    for n_a in ROWS:
        for n_b in (1, 7, 300):
            a, b = words(rng, n_a, dim), words(rng, n_b, dim)
            want, got = both("cdist", a, b, out_like=[np.zeros((n_a, n_b), np.int32)])
            np.testing.assert_array_equal(got[0], want[0])


def topk_both(q, m, k, n_visible):
    outs = [np.zeros((q.shape[0], k), np.int32), np.zeros((q.shape[0], k), np.int64)]
    return both("topk", q, m, k, n_visible, out_like=outs)


@pytest.mark.parametrize("dim", [1, 65, 1000, 8191])
def test_topk_duplicates_ties_and_visibility(dim, threads, rng):
    m = words(rng, 300, dim)
    m[[40, 41, 250, 299]] = m[3]          # equal distances: smaller index first
    q = words(rng, 33, dim)
    q[0] = m[3]
    q[5] = m[299]
    for k in (1, 3, 10, 300):
        for n_visible in (None, rng.integers(-2, 310, size=33).astype(np.int64),
                          np.array([0, 1, 2, 41, 299, 300, 5000] + [250] * 26, np.int64)):
            (want_d, want_i), (got_d, got_i) = topk_both(q, m, k, n_visible)
            np.testing.assert_array_equal(got_d, want_d)
            np.testing.assert_array_equal(got_i, want_i)
    # a visible count below k leaves the documented invisible slots
    (_, _), (got_d, got_i) = topk_both(q[:1], m, 5, np.array([2], np.int64))
    assert sorted(got_i[0, :2].tolist()) == [0, 1] and got_i[0, 2:].tolist() == [-1] * 3
    assert got_d[0, 2:].tolist() == [2 ** 31 - 1] * 3


def test_topk_dim_1_is_all_ties(threads):
    m = np.array([[1], [0], [1], [0], [0]], np.uint64)
    q = np.array([[0], [1]], np.uint64)
    (want_d, want_i), (got_d, got_i) = topk_both(q, m, 5, None)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)
    assert got_i.tolist() == [[1, 3, 4, 0, 2], [0, 2, 1, 3, 4]]


@pytest.mark.parametrize("dim", DIMS)
def test_bundle_odd_even_and_ties(dim, threads, rng):
    for n in (1, 2, 7, 8, 9, 16, 33, 34, 255, 256):
        x = words(rng, n, dim)
        tie = words(rng, 1, dim)[0]
        want, got = both("bundle", x, tie, out_like=[tie])
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"n={n}")
    # all ties: two complementary rows take every bit from the tie vector
    x = words(rng, 1, dim)
    pair = np.concatenate([x, ~x])
    if dim % 64:
        pair[1, -1] &= np.uint64((1 << (dim % 64)) - 1)
    tie = words(rng, 1, dim)[0]
    out = np.empty_like(tie)
    nk.bundle(pair, tie, out)
    np.testing.assert_array_equal(out, tie)


@pytest.mark.parametrize("dim", [1, 65, 1000, 8191])
def test_column_counts_signed_weights(dim, threads, rng):
    for n in (1, 7, 33, 200):
        x = words(rng, n, dim)
        extremes = np.array([-2 ** 63, 2 ** 63 - 1, -1, 0, 5], np.int64)   # int64 wraps like the reference
        cases = [None, np.full(n, -1, np.int64), np.full(n, 3, np.int64),
                 rng.integers(-3, 4, size=n).astype(np.int64),
                 rng.integers(-10 ** 9, 10 ** 9, size=n).astype(np.int64), np.zeros(n, np.int64),
                 rng.choice(extremes, size=n)]
        for weights in cases:
            start = rng.integers(-1000, 1000, size=x.shape[1] * 64).astype(np.int64)
            want, got = start.copy(), start.copy()
            ref.column_counts(x, weights, want)
            nk.column_counts(x, weights, got)
            np.testing.assert_array_equal(got, want)


def test_thread_counts_give_identical_results(rng, monkeypatch):
    """Serial and 2-thread parallel runs agree to the bit on inputs big enough to split."""
    m = words(rng, 2000, 1000)
    m[1500] = m[10]
    q = words(rng, 20, 1000)
    q[3] = m[10]
    x = words(rng, 301, 8191)
    tie = words(rng, 1, 8191)[0]
    vis = rng.integers(0, 2100, size=20).astype(np.int64)
    results = []
    before = nk.get_num_threads()
    monkeypatch.setattr(nt, "_par_work", 0)
    monkeypatch.setattr(nt, "_MIN_PAR_WORK", 0)
    try:
        for t in (1, 2):
            nk.set_num_threads(t)
            d, i = np.empty((20, 10), np.int32), np.empty((20, 10), np.int64)
            nk.topk(q, m, 10, vis, d, i)
            cd = np.empty((20, 2000), np.int32)
            nk.cdist(q, m, cd)
            b = np.empty_like(tie)
            nk.bundle(x, tie, b)
            c = np.zeros(x.shape[1] * 64, np.int64)
            nk.column_counts(x, None, c)
            results.append((d, i, cd, b, c))
    finally:
        nk.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 700), n_q=st.integers(1, 12), n_m=st.integers(1, 40), data=st.data())
def test_topk_and_cdist_property(dim, n_q, n_m, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    m = words(rng, n_m, dim)
    q = words(rng, n_q, dim)
    # few distinct rows, so ties are common
    m = m[rng.integers(0, max(1, n_m // 3), size=n_m)].copy()
    k = data.draw(st.integers(1, n_m))
    vis = data.draw(st.none() | st.just(rng.integers(-1, n_m + 2, size=n_q).astype(np.int64)))
    (want_d, want_i), (got_d, got_i) = topk_both(q, m, k, vis)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)
    want, got = both("cdist", q, m, out_like=[np.zeros((n_q, n_m), np.int32)])
    np.testing.assert_array_equal(got[0], want[0])


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 700), n=st.integers(1, 70), shift=st.integers(0, 10 ** 6), data=st.data())
def test_bundle_and_permute_property(dim, n, shift, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = words(rng, n, dim)
    tie = words(rng, 1, dim)[0]
    want, got = both("bundle", x, tie, out_like=[tie])
    np.testing.assert_array_equal(got[0], want[0])
    s = shift % dim
    if s:
        want, got = both("permute", x, dim, s, out_like=[x])
        np.testing.assert_array_equal(got[0], want[0])


def test_public_ops_on_numba_backend_match_numpy():
    x = hdc.random(9, 777, seed=1)
    m = hdc.random(50, 777, seed=2)
    results = {}
    for name in ("numpy", "numba"):
        with hdc.use_backend(name):
            results[name] = (hdc.bundle(x[:8], seed=3).words, hdc.bundle(x, weights=np.arange(1, 10)).words,
                             hdc.permute(x, -70).words, *hdc.topk(x, m, 4), hdc.cdist(x, m))
    for got, want in zip(results["numba"], results["numpy"]):
        np.testing.assert_array_equal(got, want)


def test_set_num_threads_clamps_and_validates():
    before = nk.get_num_threads()
    try:
        nk.set_num_threads(10 ** 6)
        assert nk.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        nk.set_num_threads(1)
        assert nk.get_num_threads() == 1 and numba.get_num_threads() == 1
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="n must be a positive int"):
                nk.set_num_threads(bad)
    finally:
        nk.set_num_threads(before)


def test_import_compiles_nothing():
    """Importing the backend (and hdc.primitives) must not compile: kernels compile on first use."""
    code = (
        "import sys, numba, hdc._kernels.numba_kernels, hdc.primitives\n"
        "from numba.core.registry import CPUDispatcher\n"
        "ms = [m for n, m in sys.modules.items() if n.startswith('hdc.')]\n"
        "ds = [f for m in ms for f in vars(m).values() if isinstance(f, CPUDispatcher)]\n"
        "assert len(ds) > 20, len(ds)\n"
        "print(sum(len(d.signatures) for d in ds))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(hdc.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


def test_column_counts_every_weight_plan_matches(rng):
    """Weighted counts go by weight value, by weight bits, or row by row: each plan is exact."""
    x = words(rng, 50, 200)
    extremes = np.array([-2 ** 63, 2 ** 63 - 1, -7, 0, 12345], np.int64)
    for weights in (rng.integers(-10 ** 12, 10 ** 12, size=50), rng.choice(extremes, size=50)):
        weights = weights.astype(np.int64)
        want = np.zeros(x.shape[1] * 64, np.int64)
        ref.column_counts(x, weights, want)
        (by_value, _), (by_bits, _), _ = bundle_numba._group_plans(weights)
        n_tiles = -(-x.shape[1] // 8)
        for plan in (by_value, by_bits):
            got = np.zeros_like(want)
            bundle_numba._counts_groups(x, *plan, got, 0, n_tiles, 8)
            np.testing.assert_array_equal(got, want)
        got = np.zeros_like(want)
        bundle_numba._counts_weighted_tiles(x, weights, got, 0, n_tiles, 8)
        np.testing.assert_array_equal(got, want)


def test_empty_inputs_are_no_ops(threads):
    empty, rows = np.zeros((0, 3), np.uint64), np.ones((4, 3), np.uint64)
    out = np.full((4, 0), 7, np.int32)
    nk.cdist(rows, empty, out)
    nk.cdist(empty, rows, np.zeros((0, 4), np.int32))
    nk.topk(empty, rows, 2, None, np.zeros((0, 2), np.int32), np.zeros((0, 2), np.int64))
    nk.popcount(empty, np.zeros(0, np.int32))
    nk.hamming(empty, empty, np.zeros(0, np.int32))
    nk.permute(empty, 130, 5, empty.copy())
    nk.bind(empty.ravel(), empty.ravel(), empty.ravel().copy())
    counts = np.arange(192, dtype=np.int64)
    nk.column_counts(empty, None, counts)
    np.testing.assert_array_equal(counts, np.arange(192))


def test_kernels_run_as_plain_python_with_jit_disabled():
    """NUMBA_DISABLE_JIT=1 (how coverage sees kernel bodies) still gives the reference results."""
    code = (
        "import numpy as np, hdc\n"
        "x, m = hdc.random(5, 130, seed=0), hdc.random(9, 130, seed=1)\n"
        "ops = lambda: [hdc.cdist(x, m), *hdc.topk(x, m, 3), hdc.bundle(x[:4], tie=1).words,\n"
        "               hdc.permute(x, 67).words, hdc.popcount(x), hdc.bundle(m, weights=np.arange(9), tie=0).words]\n"
        "with hdc.use_backend('numba'):\n"
        "    got = ops()\n"
        "with hdc.use_backend('numpy'):\n"
        "    want = ops()\n"
        "print(all(np.array_equal(g, w) for g, w in zip(got, want)))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(hdc.__file__)))
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
