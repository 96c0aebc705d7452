"""The C backend against the NumPy reference: every ISA path, 1 and 2 threads, odd sizes.

Threaded code runs even on tiny inputs here: the fixture sets the C parallel threshold to 0.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from hdc._kernels import c_kernels as ck
from hdc._kernels import numpy_ref as ref

DIMS = (1, 63, 64, 65, 127, 129, 256, 1000, 8191)
ROWS = (0, 1, 7, 33)
ISAS = ck.available_isas()


def rand_words(rng, n, dim):
    w = (dim + 63) // 64
    x = rng.integers(0, 2 ** 64, size=(n, w), dtype=np.uint64)
    if dim % 64:
        x[:, -1] &= np.uint64((1 << (dim % 64)) - 1)
    return x


@pytest.fixture(params=[(isa, nt) for isa in ISAS for nt in (1, 2)],
                ids=lambda p: f"{p[0]}-{p[1]}t")
def path(request):
    isa, nt = request.param
    old_isa, old_nt = ck.get_isa(), ck.get_num_threads()
    old_thr = ck.lib.hdc_set_parallel_threshold(0)
    ck.set_isa(isa)
    ck.set_num_threads(nt)
    yield isa, nt
    ck.set_isa(old_isa)
    ck.set_num_threads(old_nt)
    ck.lib.hdc_set_parallel_threshold(old_thr)


def test_elementwise(path):
    rng = np.random.default_rng(1)
    for dim in DIMS:
        for n in ROWS:
            a, b = rand_words(rng, n, dim), rand_words(rng, n, dim)
            got, want = np.empty_like(a), np.empty_like(a)
            ck.bind(a.ravel(), b.ravel(), got.ravel())
            assert np.array_equal(got, a ^ b)
            for shift in {1, 5, 63, 64, 65, dim // 2, dim - 1, (3 * dim) // 4}:
                if not 0 < shift < dim:
                    continue
                ck.permute(a, dim, shift, got)
                ref.permute(a, dim, shift, want)
                assert np.array_equal(got, want), (dim, n, shift)
            g32, w32 = np.empty(n, np.int32), np.empty(n, np.int32)
            ck.popcount(a, g32), ref.popcount(a, w32)
            assert np.array_equal(g32, w32)
            ck.hamming(a, b, g32), ref.hamming(a, b, w32)
            assert np.array_equal(g32, w32)


def test_outputs_past_the_cache_use_streaming_stores_correctly():
    """bind and permute outputs of >= 2**20 words take the non-temporal store path: odd row
    lengths put rows at every 16-byte alignment; every ISA path, 1 and 2 threads."""
    rng = np.random.default_rng(11)
    dim = 61_001                      # 954 words per row: rows alternate 16-byte alignment
    a, b = rand_words(rng, 1100, dim), rand_words(rng, 1100, dim)
    want = {}
    for shift in (1, 64, 12_345):
        want[shift] = np.empty_like(a)
        ref.permute(a, dim, shift, want[shift])
    old_isa, old_nt = ck.get_isa(), ck.get_num_threads()
    try:
        for isa in ISAS:
            for nt in (1, 2):
                ck.set_isa(isa), ck.set_num_threads(nt)
                got = np.empty_like(a)
                ck.bind(a.ravel(), b.ravel(), got.ravel())
                assert np.array_equal(got, a ^ b), (isa, nt)
                for shift, expected in want.items():
                    ck.permute(a, dim, shift, got)
                    assert np.array_equal(got, expected), (isa, nt, shift)
    finally:
        ck.set_isa(old_isa), ck.set_num_threads(old_nt)


def test_cdist(path):
    rng = np.random.default_rng(2)
    for dim in DIMS:
        for n in ROWS:
            m = rand_words(rng, n, dim)
            for nq in (0, 1, 3, 9, 17):
                q = rand_words(rng, nq, dim)
                got, want = np.empty((nq, n), np.int32), np.empty((nq, n), np.int32)
                ck.cdist(q, m, got)
                ref.cdist(q, m, want)
                assert np.array_equal(got, want), (dim, n, nq)


def test_topk(path):
    rng = np.random.default_rng(3)
    for dim in DIMS:
        for n in ROWS[1:] + (300,):
            # few distinct rows: many equal distances, so the index tie order is exercised
            m = rand_words(rng, n, dim)
            m[::3] = m[0]
            for nq in (1, 4, 9, 19):
                q = rand_words(rng, nq, dim)
                q[0] = m[-1]
                for k in sorted({1, 2, min(5, n), n}):
                    vis_cases = [None, rng.integers(-2, n + 3, nq).astype(np.int64),
                                 np.arange(nq, dtype=np.int64) * n // max(nq, 1)]
                    for vis in vis_cases:
                        gd, gi = np.empty((nq, k), np.int32), np.empty((nq, k), np.int64)
                        wd, wi = np.empty_like(gd), np.empty_like(gi)
                        ck.topk(q, m, k, vis, gd, gi)
                        ref.topk(q, m, k, vis, wd, wi)
                        assert np.array_equal(gd, wd), (dim, n, nq, k)
                        assert np.array_equal(gi, wi), (dim, n, nq, k)


def test_topk_large_k_and_causal(path):
    rng = np.random.default_rng(4)
    dim, n = 200, 2500
    m = rand_words(rng, n, dim)
    q = rand_words(rng, 20, dim)
    vis = np.arange(1, 21, dtype=np.int64) * 120  # causal-style prefixes ending mid-tile
    for k in (64, 1000, n):
        for v in (None, vis):
            gd, gi = np.empty((20, k), np.int32), np.empty((20, k), np.int64)
            wd, wi = np.empty_like(gd), np.empty_like(gi)
            ck.topk(q, m, k, v, gd, gi)
            ref.topk(q, m, k, v, wd, wi)
            assert np.array_equal(gd, wd) and np.array_equal(gi, wi), (k, v is None)


def test_bundle_and_counts(path):
    rng = np.random.default_rng(5)
    for dim in DIMS:
        w = (dim + 63) // 64
        for n in (1, 2, 7, 16, 33, 64, 101):
            x = rand_words(rng, n, dim)
            tie = rand_words(rng, 1, dim)[0]
            got, want = np.empty(w, np.uint64), np.empty(w, np.uint64)
            ck.bundle(x, tie, got)
            ref.bundle(x, tie, want)
            assert np.array_equal(got, want), (dim, n)
            for weights in (None, rng.integers(0, 4, n), rng.integers(-7, 8, n),
                            np.full(n, -1), rng.integers(-2 ** 40, 2 ** 40, n)):
                weights = None if weights is None else weights.astype(np.int64)
                start = rng.integers(-50, 50, w * 64).astype(np.int64)
                g, r = start.copy(), start.copy()
                ck.column_counts(x, weights, g)
                ref.column_counts(x, weights, r)
                assert np.array_equal(g, r), (dim, n)


def test_bundle_rows_wider_than_stack_chunk(path):
    # rows of many words (batched bundles) go through several column chunks
    rng = np.random.default_rng(6)
    x = rand_words(rng, 300, 64 * 700)
    tie = rand_words(rng, 1, 64 * 700)[0]
    got, want = np.empty(700, np.uint64), np.empty(700, np.uint64)
    ck.bundle(x[:300], tie, got)
    ref.bundle(x[:300], tie, want)
    assert np.array_equal(got, want)


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(7)
    m, q = rand_words(rng, 5000, 1000), rand_words(rng, 37, 1000)
    old = ck.get_num_threads()
    results = []
    try:
        for nt in (1, 2, 3):
            ck.set_num_threads(nt)
            d, i = np.empty((37, 10), np.int32), np.empty((37, 10), np.int64)
            ck.topk(q, m, 10, None, d, i)
            c = np.empty((37, 5000), np.int32)
            ck.cdist(q, m, c)
            results.append((d, i, c))
    finally:
        ck.set_num_threads(old)
    for d, i, c in results[1:]:
        assert np.array_equal(d, results[0][0]) and np.array_equal(i, results[0][1])
        assert np.array_equal(c, results[0][2])


def test_isa_controls():
    assert ck.get_isa() in ISAS
    assert ISAS[0] == "scalar"
    old = ck.get_isa()
    try:
        for isa in ISAS:
            ck.set_isa(isa)
            assert ck.get_isa() == isa
        ck.set_isa("auto")
        assert ck.get_isa() == ISAS[-1]
        if "avx512vpopcnt" in ISAS:
            ck.set_isa("avx512")  # the first release's name of the same path
            assert ck.get_isa() == "avx512vpopcnt"
    finally:
        ck.set_isa(old)
    with pytest.raises(ValueError, match="isa must be one of .* available here"):
        ck.set_isa("sse9")
    for isa in set(ck.ISA_NAMES) - set(ISAS):
        with pytest.raises(ValueError, match=f"isa '{isa}' is not available: .*; available: "):
            ck.set_isa(isa)
    assert ck.lib.hdc_set_isa(7) == -1 and ck.lib.hdc_set_isa(-1) == -1
    assert ck.get_isa() == old


def test_paths_follow_cpu_features():
    """A path is available exactly when the CPU has every feature it needs; the error for a
    missing path names the missing feature."""
    features = ck.lib.hdc_cpu_features()
    compiled = ck.lib.hdc_isa_compiled()
    for i, isa in enumerate(ck.ISA_NAMES):
        needs = ck.lib.hdc_isa_needs(i)
        runnable = bool(compiled & (1 << i)) and needs & features == needs
        assert (isa in ISAS) == runnable, isa
        assert (ck.missing_features(isa) == []) == (needs & features == needs)
        if compiled & (1 << i) and not runnable:
            with pytest.raises(ValueError, match=ck.missing_features(isa)[0]):
                ck.set_isa(isa)
    assert ck.lib.hdc_isa_needs(ck.ISA_NAMES.index("avx512vpopcnt")) & ck.lib.HDC_CPU_AVX512VPOPCNTDQ
    assert not ck.lib.hdc_isa_needs(ck.ISA_NAMES.index("avx512bw")) & ck.lib.HDC_CPU_AVX512VPOPCNTDQ
    assert ck.lib.hdc_isa_needs(len(ck.ISA_NAMES)) == -1
    # the 512-bit paths need the OS to save the ZMM state, not just the CPUID bits
    assert ck.lib.hdc_isa_needs(ck.ISA_NAMES.index("avx512bw")) & ck.lib.HDC_CPU_OS_ZMM


def test_ci_isa_list_matches_dispatch():
    """.ci/cpu_isas (the kernel's CPU flags, what CI requires) and CPUID/XGETBV dispatch agree."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([os.path.join(root, ".ci", "cpu_isas")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ",".join(ISAS)


def _isa_in_subprocess(value):
    code = "import hdc; print(hdc.get_isa())"
    # the subprocess must import the same (installed) hdc as this test, not the source tree:
    # put its root first and run from there (`python -c` puts the working directory first)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(ck.__file__))))
    env = dict(os.environ, HDC_ISA=value,
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=root)


def test_hdc_isa_env_var():
    out = _isa_in_subprocess("scalar")
    assert out.returncode == 0 and out.stdout.strip() == "scalar", out.stderr
    out = _isa_in_subprocess("auto")
    assert out.returncode == 0 and out.stdout.strip() == ISAS[-1], out.stderr
    # an unknown name, or a path this CPU or build lacks: an error listing the available paths
    unavailable = [isa for isa in ck.ISA_NAMES if isa not in ISAS]
    for bad in ["bogus", *unavailable]:
        out = _isa_in_subprocess(bad)
        assert out.returncode != 0, bad
        assert f"ValueError: HDC_ISA={bad!r}" in out.stderr
        assert f"available: {ISAS}" in out.stderr or f"available here: {ISAS}" in out.stderr


def test_wrapper_rejects_bad_arrays():
    x = np.zeros((4, 2), np.uint64)
    out = np.empty((4, 2), np.uint64)
    with pytest.raises(ValueError, match="dtype"):
        ck.permute(x.astype(np.int64), 128, 1, out)
    with pytest.raises(ValueError, match="C-contiguous"):
        ck.permute(np.zeros((4, 4), np.uint64)[:, ::2], 128, 1, out)
    with pytest.raises(ValueError, match="shape"):
        ck.permute(x, 128, 1, np.empty((3, 2), np.uint64))
    with pytest.raises(ValueError, match="dim"):
        ck.permute(x, 200, 1, out)
    with pytest.raises(ValueError, match="shift"):
        ck.permute(x, 128, 128, out)
    with pytest.raises(ValueError, match="overlap"):
        ck.permute(x, 128, 1, x)
    with pytest.raises(ValueError, match="k must be"):
        ck.topk(x, x, 0, None, np.empty((4, 0), np.int32), np.empty((4, 0), np.int64))
    with pytest.raises(ValueError, match="out_idx"):
        ck.topk(x, x, 2, None, np.empty((4, 2), np.int32), np.empty((4, 3), np.int64))
    with pytest.raises(ValueError, match="n_visible"):
        ck.topk(x, x, 2, np.zeros(3, np.int64), np.empty((4, 2), np.int32),
                np.empty((4, 2), np.int64))
    with pytest.raises(ValueError, match="words per row"):
        ck.cdist(x, np.zeros((4, 3), np.uint64), np.empty((4, 4), np.int32))
    with pytest.raises(ValueError, match="counts"):
        ck.column_counts(x, None, np.zeros(100, np.int64))
    with pytest.raises(ValueError, match="writable"):
        ro = np.empty(8, np.uint64)
        ro.flags.writeable = False
        ck.bind(x.ravel(), x.ravel(), ro)
    with pytest.raises(TypeError, match="ndarray"):
        ck.bind([1, 2], x.ravel()[:2], out.ravel()[:2])
    with pytest.raises(ValueError, match="at least one row"):
        ck.bundle(np.zeros((0, 2), np.uint64), np.zeros(2, np.uint64), np.empty(2, np.uint64))


def test_gil_released_during_search():
    """A C search must let other Python threads run while it works."""
    rng = np.random.default_rng(8)
    m, q = rand_words(rng, 40_000, 2048), rand_words(rng, 16, 2048)
    d, i = np.empty((16, 5), np.int32), np.empty((16, 5), np.int64)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    old = ck.get_num_threads()
    ck.set_num_threads(1)
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        progress = 0
        for _ in range(5):
            before = counter[0]
            ck.topk(q, m, 5, None, d, i)
            progress = max(progress, counter[0] - before)
            if progress > 1000:
                break
    finally:
        stop.set()
        spinner.join()
        ck.set_num_threads(old)
    # with the GIL held the spinner could not run at all during the call
    assert progress > 1000


def test_searches_from_several_python_threads_agree():
    rng = np.random.default_rng(9)
    m = rand_words(rng, 20_000, 1000)
    queries = [rand_words(rng, 13, 1000) for _ in range(4)]
    expected = []
    for q in queries:
        d, i = np.empty((13, 7), np.int32), np.empty((13, 7), np.int64)
        ref.topk(q, m, 7, None, d, i)
        expected.append((d, i))
    results = [None] * 4

    def work(j):
        out = []
        for _ in range(3):
            d, i = np.empty((13, 7), np.int32), np.empty((13, 7), np.int64)
            ck.topk(queries[j], m, 7, None, d, i)
            out.append((d, i))
        results[j] = out

    threads = [threading.Thread(target=work, args=(j,)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in range(4):
        for d, i in results[j]:
            assert np.array_equal(d, expected[j][0]) and np.array_equal(i, expected[j][1])


def test_backend_registry_sees_c():
    import hdc
    assert "c" in hdc.backends()
    with hdc.use_backend("c"):
        xs = hdc.random(9, 1000, seed=0)
        assert hdc.get_isa() in ISAS
        with hdc.use_backend("numpy"):
            want = hdc.bundle(xs)
        assert hdc.bundle(xs) == want


def _child_search(conn):
    rng = np.random.default_rng(10)
    m, q = rand_words(rng, 30_000, 512), rand_words(rng, 3, 512)
    d, i = np.empty((3, 4), np.int32), np.empty((3, 4), np.int64)
    ck.set_num_threads(2)
    ck.topk(q, m, 4, None, d, i)
    wd, wi = np.empty_like(d), np.empty_like(i)
    ref.topk(q, m, 4, None, wd, wi)
    conn.send(bool(np.array_equal(d, wd) and np.array_equal(i, wi)))


def test_thread_pool_survives_fork():
    """A forked child (multiprocessing's default on Linux) gets a fresh pool, not a deadlock."""
    import multiprocessing as mp
    rng = np.random.default_rng(11)
    m, q = rand_words(rng, 30_000, 512), rand_words(rng, 3, 512)
    d, i = np.empty((3, 4), np.int32), np.empty((3, 4), np.int64)
    old = ck.get_num_threads()
    ck.set_num_threads(2)
    try:
        ck.topk(q, m, 4, None, d, i)  # starts the parent's workers
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child_search, args=(child,))
        proc.start()
        assert parent.poll(60), "the forked child did not finish its search"
        assert parent.recv() is True
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        ck.set_num_threads(old)
