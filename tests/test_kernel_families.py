"""The kernel layer as op family x backend: every facade has every family's kernels, and the
encode family (encoders', CentroidClassifier's and SDM's kernels) gives the NumPy reference's
bits on every backend and SIMD path, called directly and through the public classes."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hdc
from conftest import PATHS, on_path
from hdc import backend
from hdc._kernels import FAMILIES
from hdc._kernels import numpy_ref as ref

DIMS = (1, 63, 65, 200)


def words(rng, n, dim):
    x = rng.integers(0, 2 ** 64, size=(n, -(-dim // 64)), dtype=np.uint64)
    if dim % 64:
        x[:, -1] &= np.uint64((1 << (dim % 64)) - 1)
    return x


def test_a_built_c_extension_loads():
    """Where the extension is built, the C backend loads: a family module that imports a name
    the shared helpers lack must fail here, not silently drop the backend."""
    import glob
    import os

    import hdc._kernels

    built = glob.glob(os.path.join(os.path.dirname(hdc._kernels.__file__), "_hdc_c*.so"))
    if built:
        assert "c" in backend.backends(), backend.unavailable()


def test_every_backend_facade_has_every_family_kernel():
    for name in backend.backends():
        facade = backend._require(name)
        for family, kernels in FAMILIES.items():
            module = importlib.import_module(
                f"hdc._kernels.{family}.{'numpy_ref' if name == 'numpy' else name}")
            for kernel in kernels:
                assert getattr(facade, kernel) is getattr(module, kernel), (name, kernel)
        assert facade.get_num_threads() >= 1


@pytest.mark.parametrize("dim", DIMS)
def test_ngram_majority_matches_reference(kernel_path, rng, dim):
    """Texts of 0..40 tokens, n-gram sizes (1, 2, 3, 5): odd and even gram totals (ties)."""
    n_max, alphabet = 5, 7
    table = words(rng, n_max * alphabet, dim).reshape(n_max, alphabet, -1)
    lengths = np.array([0, 1, 2, 3, 4, 7, 16, 17, 40])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = rng.integers(0, alphabet, size=offsets[-1]).astype(np.int32)
    tie = words(rng, 1, dim)[0]
    for sizes in ((3,), (1, 2), (1, 2, 3, 5), (4,)):
        sizes = np.array(sizes, np.int64)
        want = np.empty((lengths.size, table.shape[2]), np.uint64)
        ref.ngram_majority(tokens, offsets, table, sizes, tie, want)
        got = np.full_like(want, 7)
        backend.kernels().ngram_majority(tokens, offsets, table, sizes, tie, got)
        np.testing.assert_array_equal(got, want, err_msg=f"sizes={sizes.tolist()}")


@pytest.mark.parametrize("n_features", [1, 2, 15, 16, 33])
def test_record_majority_matches_reference(kernel_path, rng, n_features):
    dim, levels = 129, 9
    ids, codebook = words(rng, n_features, dim), words(rng, levels, dim)
    lv = rng.integers(0, levels, size=(11, n_features)).astype(np.int32)
    tie = words(rng, 1, dim)[0]
    want = np.empty((11, ids.shape[1]), np.uint64)
    ref.record_majority(lv, ids, codebook, tie, want)
    got = np.full_like(want, 7)
    backend.kernels().record_majority(lv, ids, codebook, tie, got)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 300), n=st.integers(1, 40), classes=st.integers(1, 4),
       margin=st.integers(0, 20), lr=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_retrain_epoch_same_on_every_path(dim, n, classes, margin, lr, seed):
    rng = np.random.default_rng(seed)
    x = words(rng, n, dim)
    y = rng.integers(0, classes, size=n).astype(np.int64)
    counts = rng.integers(0, 5, size=(classes, dim)).astype(np.int64)
    totals = counts.max(axis=1) + rng.integers(0, 3, size=classes)
    protos, tie = words(rng, classes, dim), words(rng, 1, dim)[0]
    order = rng.permutation(n)
    results = []
    for name, isa in PATHS:
        c, t, p, moves = counts.copy(), totals.copy(), protos.copy(), np.empty(n, np.int64)
        with on_path(name, isa):
            backend.kernels().retrain_epoch(x, y, order, c, t, p, tie, lr, dim, margin, moves)
        results.append((c, t, p, moves))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64])
def test_sdm_write_and_read_match_reference(kernel_path, rng, dtype):
    dim, n_loc = 130, 50
    data = words(rng, 6, dim)
    ptr = np.array([0, 3, 3, 10, 11, 20, 25], np.int64)
    idx = np.concatenate([rng.choice(n_loc, size=k, replace=False) for k in np.diff(ptr)]).astype(np.int64)
    want = rng.integers(-50, 50, size=(n_loc, dim)).astype(dtype)
    got = want.copy()
    ref.sdm_write(want, ptr, idx, data, dim)
    backend.kernels().sdm_write(got, ptr, idx, data, dim)
    np.testing.assert_array_equal(got, want)
    sums_want, sums_got = np.empty((6, dim), np.int64), np.full((6, dim), 7, np.int64)
    ref.sdm_read(want, ptr, idx, sums_want)
    backend.kernels().sdm_read(got, ptr, idx, sums_got)
    np.testing.assert_array_equal(sums_got, sums_want)


def _public_results():
    """Encoders, classifier and SDM end to end on the active backend."""
    X = np.random.default_rng(0).uniform(0, 1, size=(30, 7))
    record = hdc.RecordEncoder(301, 7, levels=8, seed=1).encode(X)
    ngram = hdc.NGramEncoder(257, n=(1, 3), seed=2).encode(["hello world", "abc", "zz", "héllo"])
    clf = hdc.CentroidClassifier(301, epochs=3, seed=3).fit(record, np.arange(30) % 3)
    sdm = hdc.SparseDistributedMemory(128, n_locations=200, radius=55, seed=4)
    keys = hdc.random(10, 128, seed=5)
    sdm.write(keys, hdc.random(10, 128, seed=6))
    return [record.words, ngram.words, clf.prototypes_.words, sdm.counters, sdm.read_sums(keys)[0]]


def test_encoders_classifier_sdm_identical_on_every_path():
    """use_backend reaches the encode family: every path gives the NumPy reference's bits."""
    with hdc.use_backend("numpy"):
        want = _public_results()
    for name, isa in PATHS:
        with on_path(name, isa):
            got = _public_results()
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w, err_msg=f"{name}-{isa}")


def test_c_backend_runs_the_numba_encode_kernels_with_its_thread_count():
    from hdc._kernels import _numba_threads

    X = np.random.default_rng(1).uniform(size=(4, 3))
    before = hdc.get_num_threads()
    try:
        with hdc.use_backend("c"):
            for n in (1, 2):
                hdc.set_num_threads(n)
                hdc.RecordEncoder(128, 3, seed=0).encode(X)
                assert _numba_threads.get_num_threads() == min(n, _numba_threads._MAX_THREADS)
    finally:
        hdc.set_num_threads(before)
