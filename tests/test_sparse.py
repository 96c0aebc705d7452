"""Sparse block codes: SparseHV, the functional API on them and BlockAccumulator, on every backend
and SIMD path, against an unpacked model (one-hot bool arrays of the dense expansion)."""
import numpy as np
import pytest
import torchhd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdc
from hdc._kernels.sparse import numpy_ref
from hdc.sparse import index_dtype

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# (blocks, block_size): one block, odd sizes, each index dtype, the histogram/sort split of bundle
SIZES = st.sampled_from([(1, 1), (1, 2), (3, 7), (5, 256), (64, 257), (100, 1024), (7, 65536), (4, 65537),
                         (3, 70000)])
seeds = st.integers(0, 2 ** 32 - 1)


def one_hot(indices, block_size):
    """The model: bool ``batch + (blocks * block_size,)``."""
    idx = np.asarray(indices, np.int64)
    out = np.zeros(idx.shape + (block_size,), bool)
    np.put_along_axis(out, idx[..., None], True, axis=-1)
    return out.reshape(idx.shape[:-1] + (idx.shape[-1] * block_size,))


def draw(rng, shape, blocks, block_size, alphabet=None):
    high = block_size if alphabet is None else min(block_size, alphabet)
    return hdc.SparseHV(rng.integers(0, high, size=shape + (blocks,), dtype=np.int64), block_size)


# ---- the container ------------------------------------------------------------------------------

@pytest.mark.parametrize("block_size, dtype", [(1, np.uint8), (256, np.uint8), (257, np.uint16),
                                               (65536, np.uint16), (65537, np.uint32), (1 << 32, np.uint32)])
def test_index_dtype_is_the_smallest_that_holds_block_size(block_size, dtype):
    x = hdc.SparseHV(np.array([[block_size - 1, 0]], np.uint64), block_size)
    assert x.indices.dtype == dtype and x.indices.flags.c_contiguous
    assert x.indices.tolist() == [[block_size - 1, 0]]


def test_attributes_len_and_equality():
    x = hdc.random_sparse((2, 3), 10, 16, seed=0)
    assert (x.shape, x.ndim, x.blocks, x.block_size, x.dim, x.nbytes, len(x)) == ((2, 3), 2, 10, 16, 160, 60, 2)
    assert (x == x.copy()).all() and x.shape == (x == x).shape
    changed = x.indices.copy()
    changed[1, 2, 0] ^= 1
    y = hdc.SparseHV(changed, 16)
    with pytest.raises(ValueError, match="read-only"):
        x.indices[0, 0, 0] = 1
    assert (x == y).tolist() == [[True] * 3, [True, True, False]]
    assert (x != y).sum() == 1
    assert not (x == hdc.SparseHV(x.indices, 17)).any()          # another block size is never equal
    with pytest.raises(TypeError, match="len"):
        len(x[0, 0])


def test_indexing_stays_on_batch_axes():
    x = hdc.random_sparse((4, 5), 6, 9, seed=1)
    ref = x.indices
    mask = x.indices[..., 0] > 4
    cases = [(1, ref[1]), (slice(1, 3), ref[1:3]), (Ellipsis, ref), (None, ref[None]),
             ((Ellipsis, None), ref[:, :, None]), ((Ellipsis, 2), ref[:, 2]), ((1, Ellipsis), ref[1]),
             (np.array([3, 0]), ref[[3, 0]]), (mask, ref[mask]), ((None, 0, Ellipsis, None), ref[None, 0, :, None])]
    for key, want in cases:
        got = x[key]
        assert isinstance(got, hdc.SparseHV) and got.indices.flags.c_contiguous
        np.testing.assert_array_equal(got.indices, want, err_msg=str(key))
    np.testing.assert_array_equal(x[..., None].shape, (4, 5, 1))
    with pytest.raises(IndexError):
        x[0, 0, 0]
    assert [v.shape for v in x] == [(5,)] * 4


def test_bytes_dense_and_torchhd_round_trips(rng):
    for blocks, size in [(10, 8), (100, 1024), (3, 70000)]:
        x = draw(rng, (4,), blocks, size)
        assert (hdc.SparseHV.from_bytes(x.to_bytes(), blocks, size) == x).all()
        assert (hdc.SparseHV.from_bytes(x.to_bytes(), blocks, size, shape=(2, 2)) == x.reshape(2, 2)).all()
        dense = x.to_dense()
        assert dense.dim == blocks * size
        np.testing.assert_array_equal(dense.to_bool(), one_hot(x.indices, size))
        assert (hdc.SparseHV.from_dense(dense, size) == x).all()
        t = x.to_torchhd()
        assert isinstance(t, torchhd.BSBCTensor) and t.block_size == size
        assert (hdc.SparseHV.from_torchhd(t) == x).all()
    t = torchhd.random(3, 12, "BSBC", block_size=64)
    s = hdc.SparseHV.from_torchhd(t)
    np.testing.assert_allclose(hdc.similarity(s, s[0]), torchhd.cosine_similarity(t[0], t).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(hdc.permute(s, 5).indices, torchhd.permute(t, shifts=5).numpy())


def test_random_sparse_is_seeded_uniform_and_shaped():
    a = hdc.random_sparse(2000, 50, 10, seed=3)
    assert (a == hdc.random_sparse(2000, 50, 10, seed=3)).all()
    assert not (a == hdc.random_sparse(2000, 50, 10, seed=4)).all()
    freq = np.bincount(a.indices.ravel(), minlength=10) / a.indices.size
    assert np.abs(freq - 0.1).max() < 0.01
    assert hdc.random_sparse((2, 3), 4, 1 << 32, seed=0).shape == (2, 3)
    assert hdc.random_sparse(0, 4, 5).shape == (0,)


@pytest.mark.parametrize("make, error, match", [
    (lambda: hdc.SparseHV([[5, 1]], block_size=4), ValueError, "block_size=4"),
    (lambda: hdc.SparseHV([[-1, 1]], block_size=4), ValueError, ">= 0"),
    (lambda: hdc.SparseHV([[0]], block_size=0), ValueError, "block_size"),
    (lambda: hdc.SparseHV([[0]], block_size=(1 << 32) + 1), ValueError, "block_size"),
    (lambda: hdc.SparseHV([[0.0, 1.0]], block_size=4), TypeError, "integer dtype"),
    (lambda: hdc.SparseHV([[True]], block_size=4), TypeError, "integer dtype"),
    (lambda: hdc.SparseHV(np.zeros((2, 0), int), block_size=4), ValueError, "at least one block"),
    (lambda: hdc.SparseHV([[0]], block_size=2.0), TypeError, "block_size"),
    (lambda: hdc.SparseHV.from_bytes(b"\x00" * 5, 2, 4), ValueError, "multiple"),
    (lambda: hdc.SparseHV.from_bytes(b"\x09\x00", 2, 4), ValueError, "block_size=4"),
    (lambda: hdc.SparseHV.from_dense(hdc.random(1, 10, seed=0), 3), ValueError, "multiple"),
    (lambda: hdc.SparseHV.from_dense(hdc.BinaryHV.from_bool([0, 0, 1, 1]), 2), ValueError, "one 1 per block"),
    (lambda: hdc.SparseHV.from_dense(np.zeros(4), 2), TypeError, "BinaryHV"),
    (lambda: hdc.random_sparse(1, 0, 4), ValueError, "blocks"),
    (lambda: hdc.random_sparse(1.5, 2, 4), TypeError, "n"),
    (lambda: hdc.SparseHV([1], 1 << 31).to_dense(), ValueError, "dense limit"),
])
def test_bad_input_is_a_clear_error(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---- the functional API, every backend and path --------------------------------------------------

@SETTINGS
@given(size=SIZES, n=st.integers(1, 5), seed=seeds, shift=st.integers(-300, 300))
def test_elementwise_ops_match_the_model(kernel_path, size, n, seed, shift):
    blocks, L = size
    rng = np.random.default_rng(seed)
    a, b = draw(rng, (n,), blocks, L), draw(rng, (n,), blocks, L, alphabet=rng.integers(1, 4))
    a_, b_ = a.indices.astype(np.int64), b.indices.astype(np.int64)
    np.testing.assert_array_equal(hdc.bind(a, b).indices, (a_ + b_) % L)
    np.testing.assert_array_equal(hdc.unbind(a, b).indices, (a_ - b_) % L)
    assert (hdc.unbind(hdc.bind(a, b), b) == a).all()
    np.testing.assert_array_equal(hdc.permute(a, shift).indices, np.roll(a_, shift, axis=-1))
    assert (hdc.permute(hdc.permute(a, shift), -shift) == a).all()
    dense_a, dense_b = one_hot(a_, L), one_hot(b_, L)
    ov = hdc.overlap(a, b)
    assert ov.dtype == np.int32
    np.testing.assert_array_equal(ov, (dense_a & dense_b).sum(-1))
    ham = hdc.hamming(a, b)
    assert ham.dtype == np.int32
    np.testing.assert_array_equal(ham, (dense_a != dense_b).sum(-1))
    np.testing.assert_allclose(hdc.similarity(a, b), (dense_a & dense_b).sum(-1) / blocks)
    # broadcasting: a single code against a batch, and (n, 1) against (n,)
    np.testing.assert_array_equal(hdc.overlap(a[0], b), (dense_a[0] & dense_b).sum(-1))
    np.testing.assert_array_equal(hdc.overlap(a[:, None], b), (dense_a[:, None] & dense_b[None]).sum(-1))
    np.testing.assert_array_equal(hdc.bind(a[:, None], b).indices, (a_[:, None] + b_[None]) % L)


@SETTINGS
@given(size=SIZES, n_a=st.integers(0, 6), n_b=st.integers(0, 50), seed=seeds)
def test_cdist_matches_the_model(kernel_path, size, n_a, n_b, seed):
    blocks, L = size
    rng = np.random.default_rng(seed)
    a, b = draw(rng, (n_a,), blocks, L, alphabet=3), draw(rng, (n_b,), blocks, L, alphabet=3)
    d = hdc.cdist(a, b)
    assert d.dtype == np.int32 and d.shape == (n_a, n_b)
    np.testing.assert_array_equal(d, (one_hot(a.indices, L)[:, None] != one_hot(b.indices, L)[None]).sum(-1))


@SETTINGS
@given(size=SIZES, n_q=st.integers(1, 5), n_m=st.integers(1, 80), seed=seeds, data=st.data())
def test_topk_highest_overlap_first_ties_by_index(kernel_path, size, n_q, n_m, seed, data):
    blocks, L = size
    rng = np.random.default_rng(seed)
    m = draw(rng, (n_m,), blocks, L, alphabet=int(rng.integers(1, 4)))   # small alphabets: many ties
    q = m[rng.integers(0, n_m, n_q)]
    k = data.draw(st.integers(1, n_m))
    dist = (one_hot(q.indices, L)[:, None] != one_hot(m.indices, L)[None]).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(n_m), dist.shape), dist), axis=-1)[:, :k]
    d, i = hdc.topk(q, m, k)
    assert d.dtype == np.int32 and i.dtype == np.int64
    np.testing.assert_array_equal(i, order)
    np.testing.assert_array_equal(d, np.take_along_axis(dist, order, -1))
    d0, i0 = hdc.topk(q[0], m, k)
    np.testing.assert_array_equal(i0, order[0])
    radius = int(rng.integers(0, 2 * blocks + 1))
    lims, wd, wi = hdc.within(q, m, radius, flat=True)
    for j in range(n_q):
        hits = order_all = np.lexsort((np.arange(n_m), dist[j]))
        hits = order_all[dist[j][order_all] <= radius]
        np.testing.assert_array_equal(wi[lims[j]:lims[j + 1]], hits)
        np.testing.assert_array_equal(wd[lims[j]:lims[j + 1]], dist[j][hits])


def model_bundle(x, weights, tie, L):
    """Per column the weighted mode; tied maxima: the first at or after tie counting up mod L."""
    n, c = x.shape
    out = np.empty(c, np.int64)
    for j in range(c):
        values, inverse = np.unique(x[:, j], return_inverse=True)
        counts = np.zeros(values.size, weights.dtype)
        np.add.at(counts, inverse, weights)
        best = values[counts == counts.max()]
        out[j] = best[np.argmin((best - tie[j]) % L)]
    return out


@SETTINGS
@given(size=SIZES, n=st.integers(1, 12), rest=st.sampled_from([(), (2,)]), seed=seeds,
       weighted=st.sampled_from(["none", "int", "float"]))
def test_bundle_weighted_mode_with_ties(kernel_path, size, n, rest, seed, weighted):
    blocks, L = size
    rng = np.random.default_rng(seed)
    x = draw(rng, (n,) + rest, blocks, L, alphabet=int(rng.integers(1, 5)))
    tie = draw(rng, rest, blocks, L)
    weights = {"none": None, "int": rng.integers(0, 4, n) + (np.arange(n) == 0),
               "float": rng.random(n) + 0.5}[weighted]
    got = hdc.bundle(x, weights=weights, tie=tie)
    w = np.ones(n, np.int64) if weights is None else weights
    want = model_bundle(x.indices.reshape(n, -1).astype(np.int64), w,
                        np.broadcast_to(tie.indices, rest + (blocks,)).ravel().astype(np.int64), L)
    np.testing.assert_array_equal(got.indices.ravel(), want)
    assert got.shape == rest and got.indices.dtype == index_dtype(L)
    assert (hdc.bundle(x, seed=5) == hdc.bundle(x, seed=5)).all()


def test_bundle_recovers_its_members_and_matches_torchhd_bind(kernel_path):
    xs = hdc.random_sparse(9, 1000, 64, seed=2)
    m = hdc.bundle(xs, seed=0)
    others = hdc.random_sparse(50, 1000, 64, seed=3)
    assert hdc.similarity(m, xs).min() > hdc.similarity(m, others).max()
    t = xs.to_torchhd()
    np.testing.assert_array_equal(hdc.bind(xs[0], xs[1]).indices, torchhd.bind(t[0], t[1]).numpy())


def test_mixing_kinds_or_block_sizes_names_both(kernel_path):
    s4 = hdc.SparseHV([[1, 2]], block_size=4)
    s8 = hdc.SparseHV([[1, 2]], block_size=8)
    dense = hdc.random(1, 8, seed=0)
    for fn in (hdc.bind, hdc.unbind, hdc.overlap, hdc.hamming, hdc.similarity, hdc.cdist):
        with pytest.raises(ValueError, match=r"a is a SparseHV \(blocks=2, block_size=4\).*b is a SparseHV "
                                             r"\(blocks=2, block_size=8\)"):
            fn(s4, s8)
        with pytest.raises(TypeError, match=r"a is a SparseHV.*b is a BinaryHV \(dim=8\)"):
            fn(s4, dense)
        with pytest.raises(TypeError, match=r"a is a BinaryHV.*b is a SparseHV"):
            fn(dense, s4)
    with pytest.raises(TypeError, match="memory is a BinaryHV"):
        hdc.topk(s4, dense, 1)
    with pytest.raises(ValueError, match="k must be <= 1"):
        hdc.topk(s4, s4, 2)
    with pytest.raises(TypeError, match="tie must be None or a SparseHV"):
        hdc.bundle(s4, tie=1)
    with pytest.raises(ValueError, match="tie must have"):
        hdc.bundle(s4, tie=s8[0])
    with pytest.raises(ValueError, match="weights must"):
        hdc.bundle(s4, weights=[-1])


def test_largest_block_size(kernel_path):
    a, b = hdc.random_sparse(3, 4, 1 << 32, seed=1), hdc.random_sparse(5, 4, 1 << 32, seed=2)
    a_, b_ = a.indices.astype(np.int64), b.indices.astype(np.int64)
    np.testing.assert_array_equal(hdc.bind(a, b[:3]).indices, (a_ + b_[:3]) % (1 << 32))
    np.testing.assert_array_equal(hdc.unbind(a, b[:3]).indices, (a_ - b_[:3]) % (1 << 32))
    m = hdc.SparseHV.concatenate([a, b])
    d, i = hdc.topk(a, m, 2)
    np.testing.assert_array_equal(i[:, 0], [0, 1, 2])
    np.testing.assert_array_equal(hdc.cdist(a, m)[:, :3], 8 - 8 * np.eye(3, dtype=int))
    assert (hdc.bundle(hdc.SparseHV.stack([a[0], a[0], b[0]])) == a[0])


def test_dense_overlap_and_unbind(kernel_path):
    a, b = hdc.random(2, 1000, seed=4), hdc.random(3, 1000, seed=5)
    np.testing.assert_array_equal(hdc.overlap(a[:, None], b), (a.to_bool()[:, None] & b.to_bool()[None]).sum(-1))
    assert (hdc.unbind(a[0], b[0]) == hdc.bind(a[0], b[0]))


# ---- BlockAccumulator ----------------------------------------------------------------------------

@SETTINGS
@given(size=SIZES.filter(lambda s: s[0] * s[1] <= 1 << 20), n=st.integers(1, 12), seed=seeds)
def test_block_accumulator_counts_unbind_similarity_majority(kernel_path, size, n, seed):
    blocks, L = size
    rng = np.random.default_rng(seed)
    x = draw(rng, (n,), blocks, L, alphabet=4)
    w = rng.integers(1, 4, n)
    acc = hdc.BlockAccumulator(blocks, L)
    acc.add(x[: n // 2], weights=w[: n // 2])
    acc.add(x[n // 2:], weights=w[n // 2:])
    counts = np.zeros((blocks, L), np.int64)
    for i in range(n):
        counts[np.arange(blocks), x.indices[i]] += w[i]
    np.testing.assert_array_equal(acc.counts, counts)
    assert acc.n == w.sum()
    tie = draw(rng, (), blocks, L)
    assert (acc.majority(tie=tie) == hdc.bundle(x, weights=w, tie=tie))
    key, cand = draw(rng, (), blocks, L), draw(rng, (5,), blocks, L)
    un = acc.unbind(key)
    np.testing.assert_array_equal(un.counts, counts[np.arange(blocks)[:, None],
                                                    (np.arange(L)[None] + key.indices[:, None].astype(np.int64)) % L])
    np.testing.assert_array_equal(un.similarity(cand), acc.similarity(hdc.bind(cand, key)))
    np.testing.assert_array_equal(acc.similarity(cand), counts[np.arange(blocks), cand.indices].sum(-1))
    acc.remove(x[0], weights=w[0])
    counts[np.arange(blocks), x.indices[0]] -= w[0]
    np.testing.assert_array_equal(acc.counts, counts)


def test_block_accumulator_errors_and_failed_remove_keeps_counts():
    acc = hdc.BlockAccumulator(3, 5)
    with pytest.raises(ValueError, match="empty"):
        acc.majority()
    x = hdc.SparseHV([1, 2, 3], 5)
    acc.add(x)
    with pytest.raises(ValueError, match="not added"):
        acc.remove(hdc.SparseHV([0, 2, 3], 5))
    np.testing.assert_array_equal(acc.counts.sum(1), [1, 1, 1])
    with pytest.raises(ValueError, match="blocks=3, block_size=5"):
        acc.add(hdc.SparseHV([1, 2, 3], 6))
    with pytest.raises(TypeError, match="SparseHV"):
        acc.add(hdc.random(1, 15, seed=0))
    with pytest.raises(TypeError, match="integers"):
        acc.add(x, weights=[0.5])
    with pytest.raises(ValueError, match="single code"):
        acc.unbind(hdc.SparseHV([[1, 2, 3]], 5))
    with pytest.raises(ValueError, match="counts"):
        hdc.BlockAccumulator(1 << 20, 1 << 20)
    with pytest.raises(ValueError, match="block_size"):
        hdc.BlockAccumulator(3, 0)
    with pytest.raises(ValueError, match="read-only"):
        acc.counts[0, 0] = 5


# ---- encoders and the classifier -----------------------------------------------------------------

def test_sparse_encoders_shapes_seeds_and_similarity_structure(kernel_path):
    mem = hdc.ItemMemory(1000, ["a", "b", "c"], seed=1, block_size=10)
    assert isinstance(mem, hdc.ItemMemory) and isinstance(mem["a"], hdc.SparseHV)
    assert (mem.vectors.shape, mem["a"].blocks, mem["a"].block_size) == ((3,), 100, 10)
    grown = hdc.ItemMemory(1000, ["a"], seed=1, grow=True, block_size=10)
    assert (grown.encode(["a", "b", "c"]) == mem.vectors).all()          # rows depend on (seed, i) only
    lev = hdc.LevelEncoder(1000, levels=11, seed=2, block_size=10)
    sims = hdc.similarity(lev(0.0), lev(np.linspace(0, 1, 11)))
    np.testing.assert_allclose(sims, 1 - np.arange(11) / 10)             # exactly linear, ends share none
    rec = hdc.RecordEncoder(1200, n_features=3, levels=5, seed=3, block_size=4)
    X = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, 0.75], [1.0, 0.0, 0.0]])
    codes = rec(X)
    assert codes.shape == (3,) and codes.blocks == 300 and (rec(X[0]) == codes[0])
    s = hdc.similarity(codes[0], codes)
    assert s[0] == 1 and s[1] > s[2]
    # the record is the sparse bundle of bind(id[f], level(x[f])) with the encoder's tie vector
    pairs = hdc.bind(rec.ids, rec.level_encoder(X[1]))
    assert (codes[1] == hdc.bundle(pairs, tie=rec.tie))
    ngram = hdc.NGramEncoder(1024, n=(1, 3), seed=4, block_size=16)
    a, b, c = ngram(["the cat sat on the mat", "the cat sat on a mat", "zwölf Boxkämpfer jagen"])
    assert a.blocks == 64 and hdc.similarity(a, b) > hdc.similarity(a, c)
    # n-gram p = bind_j permute(item[t[p + j]], n - 1 - j); the text is their sparse bundle
    items = ngram.item_vectors([ord(ch) for ch in "abcd"])
    grams = [items[i] for i in range(4)]
    grams += [hdc.bind(hdc.bind(hdc.permute(items[p], 2), hdc.permute(items[p + 1], 1)), items[p + 2])
              for p in range(2)]
    assert (ngram("abcd") == hdc.bundle(hdc.SparseHV.stack(grams), tie=ngram.tie))
    with pytest.raises(ValueError, match="block_size must be <= dim"):
        hdc.ItemMemory(10, 3, block_size=11)
    with pytest.raises(ValueError, match="block_size"):
        hdc.LevelEncoder(10, 3, block_size=0)


def test_sparse_centroid_classifier_on_digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    enc = hdc.RecordEncoder(2048, n_features=64, levels=17, low=0, high=16, seed=0, block_size=8)
    codes = enc(X[:600])
    clf = hdc.CentroidClassifier(2048, block_size=8).fit(codes[:400], y[:400])
    assert clf.prototypes_.shape == (10,) and clf.prototypes_.blocks == 256
    dense_enc = hdc.RecordEncoder(2048, n_features=64, levels=17, low=0, high=16, seed=0)
    dense = hdc.CentroidClassifier(2048, epochs=0).fit(dense_enc(X[:400]), y[:400]).score(dense_enc(X[400:600]), y[400:600])
    assert clf.score(codes[400:], y[400:600]) > max(0.7, dense - 0.05)
    counts, totals = clf.counts_
    assert counts.shape == (10, 256, 8) and totals.sum() == 400
    scores = clf.decision_function(codes[400:403])
    want = counts[:, np.arange(256), codes[400:403].indices].sum(-1).T / totals
    np.testing.assert_allclose(scores, want)
    with pytest.raises(TypeError, match="block_size=8"):
        clf.predict(hdc.random(3, 2048, seed=0))
    with pytest.raises(ValueError, match="epochs must be 0"):
        hdc.CentroidClassifier(2048, block_size=8, epochs=2).fit(codes[:10], y[:10])


# ---- AssociativeMemory of sparse codes -----------------------------------------------------------

@SETTINGS
@given(size=st.sampled_from([(1, 2), (5, 3), (40, 256), (17, 300)]), n=st.integers(1, 120), seed=seeds,
       data=st.data())
def test_sparse_memory_index_equals_scan_ties_included(kernel_path, size, n, seed, data):
    blocks, L = size
    rng = np.random.default_rng(seed)
    codes = draw(rng, (n,), blocks, L, alphabet=int(rng.integers(1, 4)))
    scan = hdc.AssociativeMemory(blocks * L, block_size=L, index=False)
    indexed = hdc.AssociativeMemory(blocks * L, block_size=L, index=True)
    for mem in (scan, indexed):
        mem.add(codes[: n // 2])
        mem.add(codes[n // 2:])
    queries = hdc.SparseHV.concatenate([codes[rng.integers(0, n, 3)], draw(rng, (2,), blocks, L, alphabet=3)])
    k = data.draw(st.integers(1, n))
    d_scan, l_scan = scan.search(queries, k)
    d_index, l_index = indexed.search(queries, k)
    want_d, want_i = hdc.topk(queries, codes, k)
    np.testing.assert_array_equal(l_scan, want_i)
    np.testing.assert_array_equal(d_scan, want_d)
    np.testing.assert_array_equal(l_index, want_i)
    np.testing.assert_array_equal(d_index, want_d)
    # the index follows removals and additions
    indexed.remove([0])
    indexed.add(codes[:1], labels=[n])
    d2, l2 = indexed.search(queries, k)
    scan.remove([0])
    scan.add(codes[:1], labels=[n])
    np.testing.assert_array_equal(l2, scan.search(queries, k)[1])


def test_sparse_memory_save_load_and_hostile_files(tmp_path):
    import struct
    import zlib

    from hdc.memory import _HEADER, _HEADER_SIZE
    codes = hdc.random_sparse(50, 30, 300, seed=0)
    mem = hdc.AssociativeMemory(9000, block_size=300)
    mem.add(codes, labels=[f"c{i}" for i in range(50)])
    assert repr(mem) == "AssociativeMemory(dim=9000, block_size=300, len=50)"
    path = tmp_path / "sparse.hdc"
    mem.save(path)
    for mmap in (False, True):
        back = hdc.AssociativeMemory.load(path, mmap=mmap)
        assert isinstance(back.vectors, hdc.SparseHV) and (back.vectors == codes).all()
        assert back.search(codes[7], 1)[1][0] == "c7"
    with pytest.raises(ValueError, match="holds sparse block codes .*expected binary"):
        hdc.AssociativeMemory.load(path, kind="binary")
    with pytest.raises(TypeError, match="BinaryHV"):
        mem.add(hdc.random(1, 9000, seed=0))
    with pytest.raises(ValueError, match="block_size=300"):
        mem.search(hdc.random_sparse(1, 30, 301, seed=0), 1)
    # a file whose payload holds an index >= block_size, with every checksum made right
    raw = bytearray(path.read_bytes())
    fields = list(_HEADER.unpack_from(raw))
    payload_offset, chunk_bytes = fields[15], fields[8]
    raw[payload_offset] = 0xFF
    raw[payload_offset + 1] = 0xFF                               # uint16 index 65535 >= 300
    payload = bytes(raw[payload_offset:])
    crcs = np.array([zlib.crc32(payload[i:i + chunk_bytes]) for i in range(0, len(payload), chunk_bytes)], "<u4")
    raw[_HEADER_SIZE:_HEADER_SIZE + crcs.nbytes] = crcs.tobytes()
    struct.pack_into("<I", raw, 76, zlib.crc32(crcs.tobytes()))
    struct.pack_into("<I", raw, 16, 0)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:_HEADER_SIZE])))
    hostile = tmp_path / "hostile.hdc"
    hostile.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="index >= block_size=300"):
        hdc.AssociativeMemory.load(hostile)
    lazy = hdc.AssociativeMemory.load(hostile, mmap=True)
    with pytest.raises(ValueError, match="index >= block_size=300"):
        lazy.search(codes[0], 1)
    # a header claiming another block size is refused before any allocation
    raw = bytearray(path.read_bytes())
    struct.pack_into("<IIQ", raw, 112, 1, 2, 1 << 40)
    struct.pack_into("<I", raw, 16, 0)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:_HEADER_SIZE])))
    hostile.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="block_size .* out of range"):
        hdc.AssociativeMemory.load(hostile)
    with pytest.raises(ValueError, match="multiple of block_size"):
        hdc.AssociativeMemory(1000, block_size=300)


def test_sparse_bench_smoke_writes_report_and_plots(tmp_path):
    from hdc.bench.sparse import dense_recall, run_sparse, sbc_recall
    res = run_sparse("smoke", out_dir=str(tmp_path), log=None)
    for name in ("sparse.json", "sparse.md", "sparse_capacity.png", "sparse_speed.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert res["bytes_per_item"]["sbc"] == 20 and len(res["speed"]["rows"]) == 2
    one, many = res["speed"]["rows"]
    assert not one["torchhd_scaled"] and one["torchhd_timed_items"] == 5000   # one chunk: all items
    assert many["torchhd_chunk_items"] == (1 << 28) // (256 * 20) or not many["torchhd_scaled"]
    # the read-outs recall a few pairs perfectly and fail when overloaded
    assert sbc_recall(5, 50, 64, probes=5) == 1.0 and dense_recall(5, 2048, probes=5) == 1.0
    assert dense_recall(400, 256, probes=50) < 0.5


@pytest.mark.parametrize("alphabet", [2, 256])
def test_sparse_memory_index_many_and_few_candidates(alphabet):
    rng = np.random.default_rng(alphabet)
    codes = draw(rng, (3000,), 40, 256, alphabet=alphabet)   # 2: every row counted, many ties; 256: few rows
    mem = hdc.AssociativeMemory(40 * 256, block_size=256, index=True)
    mem.add(codes)
    queries = hdc.SparseHV.concatenate([codes[[5, 2999]], draw(rng, (3,), 40, 256)])
    for k in (1, 7, 300):
        d, i = mem.search(queries, k)
        want_d, want_i = hdc.topk(queries, codes, k)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(d, want_d)


@SETTINGS
@given(size=st.sampled_from([(1, 2), (3, 7), (64, 257), (100, 1024), (300, 3), (7, 70000)]),
       n_q=st.integers(4, 40), n_m=st.integers(1, 200), seed=seeds, data=st.data())
def test_topk_query_blocking_matches_the_model(kernel_path, size, n_q, n_m, seed, data):
    # >= 4 queries: transposed tiles of 64 rows (partial tiles, query groups with remainders, more
    # than 255 blocks in several chunks), against the unpacked model
    blocks, L = size
    rng = np.random.default_rng(seed)
    m = draw(rng, (n_m,), blocks, L, alphabet=int(rng.integers(1, 4)))
    q = hdc.SparseHV.concatenate([m[rng.integers(0, n_m, n_q // 2)], draw(rng, (n_q - n_q // 2,), blocks, L, 3)])
    k = data.draw(st.integers(1, n_m))
    dist = (one_hot(q.indices, L)[:, None] != one_hot(m.indices, L)[None]).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(n_m), dist.shape), dist), axis=-1)[:, :k]
    d, i = hdc.topk(q, m, k)
    np.testing.assert_array_equal(i, order)
    np.testing.assert_array_equal(d, np.take_along_axis(dist, order, -1))


def test_topk_query_blocking_large(kernel_path):
    # sizes where the kernels split queries or rows over threads
    rng = np.random.default_rng(7)
    m = draw(rng, (6000,), 100, 1024, alphabet=40)
    q = hdc.SparseHV.concatenate([m[rng.integers(0, 6000, 40)], draw(rng, (24,), 100, 1024, alphabet=40)])
    for queries in (q, q[:3]):
        want_o = np.empty((len(queries), 9), np.int32)
        want_i = np.empty((len(queries), 9), np.int64)
        numpy_ref.sparse_topk(queries.indices, m.indices, 9, want_o, want_i)
        d, i = hdc.topk(queries, m, 9)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(d, 2 * (100 - want_o))


@SETTINGS
@given(size=st.sampled_from([(1, 2), (5, 3), (40, 256), (17, 300), (300, 2)]), n=st.integers(1, 150),
       segment=st.sampled_from([1, 3, 64, 1 << 16]), seed=seeds, data=st.data())
def test_index_kernels_segmented_equal_the_scan(kernel_path, size, n, segment, seed, data):
    blocks, L = size
    rng = np.random.default_rng(seed)
    x = draw(rng, (n,), blocks, L, alphabet=int(rng.integers(1, 4))).indices
    q = np.concatenate([x[rng.integers(0, n, 3)], draw(rng, (2,), blocks, L).indices])
    k = data.draw(st.integers(1, n))
    keys = -(-n // segment) * blocks * L + 1
    want = [np.empty(keys, np.int64), np.empty(n * blocks, np.uint16)]
    numpy_ref.sparse_index_build(x, L, segment, *want)
    offsets, postings = np.empty(keys, np.int64), np.empty(n * blocks, np.uint16)
    kernels = hdc.backend.kernels()
    kernels.sparse_index_build(x, L, segment, offsets, postings)
    np.testing.assert_array_equal(offsets, want[0])      # one layout: an index built by one backend
    np.testing.assert_array_equal(postings, want[1])     # serves every other
    ov, idx = np.empty((5, k), np.int32), np.empty((5, k), np.int64)
    kernels.sparse_index_topk(q, L, segment, offsets, postings, n, k, ov, idx)
    want_o, want_i = np.empty_like(ov), np.empty_like(idx)
    numpy_ref.sparse_topk(q, x, k, want_o, want_i)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(ov, want_o)


def test_index_kernels_refuse_bad_indices_and_damaged_indexes(kernel_path):
    rng = np.random.default_rng(3)
    x = draw(rng, (50,), 6, 300).indices
    kernels = hdc.backend.kernels()
    offsets, postings = np.empty(2 * 6 * 300 + 1, np.int64), np.empty(300, np.uint16)
    bad_x = x.copy()
    bad_x[7, 2] = 300
    with pytest.raises(ValueError, match="block_size"):
        kernels.sparse_index_build(bad_x, 300, 32, offsets, postings)
    kernels.sparse_index_build(x, 300, 32, offsets, postings)
    ov, idx = np.empty((1, 3), np.int32), np.empty((1, 3), np.int64)
    bad_q = x[:1].copy()
    bad_q[0, 5] = 301
    with pytest.raises(ValueError, match="index"):
        kernels.sparse_index_topk(bad_q, 300, 32, offsets, postings, 50, 3, ov, idx)
    for damage in ("row", "offset"):
        o, p = offsets.copy(), postings.copy()
        if damage == "row":
            p[:] = 40000                       # a row number past its segment
        else:
            o[1:-1] = 10 ** 12                 # lists reaching past the postings
        with pytest.raises(ValueError, match="damaged"):
            kernels.sparse_index_topk(x[:1], 300, 32, o, p, 50, 3, ov, idx)


@pytest.mark.parametrize("block_size, n", [(1, 3), (4, 3), (16, (2, 4)), (300, 1), (70000, 2)])
def test_ngram_bundle_kernel_matches_the_reference(kernel_path, block_size, n):
    # one kernel call per batch: small blocks count every (block, index) of a text, large ones go
    # block by block; both as numpy_ref (per text, the bundle of its n-gram codes)
    rng = np.random.default_rng(block_size)
    texts = ["".join(rng.choice(list("abcdefgh é"), int(rng.integers(4, 80)))) for _ in range(30)]
    dim = block_size * (3 if block_size > 1000 else max(1, 1500 // block_size))
    enc = hdc.NGramEncoder(dim, n=n, seed=5, block_size=block_size)
    got = enc(texts)
    values, lengths, _ = enc._tokens(texts)
    cols = enc._columns(values)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    want = np.empty((len(texts), enc.blocks), got.indices.dtype)
    numpy_ref.sparse_ngram_bundle(cols, offsets, enc._table, np.asarray(enc.sizes, np.int64), block_size,
                                  enc.tie.indices, want)
    np.testing.assert_array_equal(got.indices, want)
    assert (enc(texts[7]) == got[7]).all()


def test_bench_torchhd_baseline_in_chunks_finds_the_same_nearest():
    # the torchhd side of hdc bench --sparse: chunked similarity + top-k, merged across chunks
    from hdc.bench.sparse import torchhd_topk
    items = hdc.random_sparse(500, 30, 64, seed=4)
    queries = items[[3, 250, 499]]
    for chunk in (7, 64, 500):
        _, idx = torchhd_topk(queries.to_torchhd(), items.to_torchhd(), 1, chunk)
        assert idx[:, 0].tolist() == [3, 250, 499]
