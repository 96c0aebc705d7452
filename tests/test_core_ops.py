"""Every core op on every backend and SIMD path against the unpacked model (tests/model.py)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdc
import model

ODD_DIMS = [1, 5, 63, 64, 65, 127, 128, 129, 1000, 8191]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
dims = st.one_of(st.sampled_from(ODD_DIMS), st.integers(1, 300))
seeds = st.integers(0, 2**32 - 1)
batch_shapes = st.lists(st.integers(0, 4), min_size=0, max_size=2).map(tuple)


def bits(seed, shape, dim):
    return np.random.default_rng(seed).integers(0, 2, size=shape + (dim,)).astype(bool)


def pack(b):
    return hdc.BinaryHV.from_bool(b)


def assert_padding_zero(hv):
    if hv.dim % 64:
        assert not np.any(hv.words[..., -1] >> np.uint64(hv.dim % 64))


@SETTINGS
@given(dim=dims, shape=batch_shapes, seed=seeds)
def test_bind_matches_xor(kernel_path, dim, shape, seed):
    a, b = bits(seed, shape, dim), bits(seed + 1, shape, dim)
    out = hdc.bind(pack(a), pack(b))
    np.testing.assert_array_equal(out.to_bool(), model.bind(a, b))
    assert_padding_zero(out)


@pytest.mark.parametrize("shape_a,shape_b", [((3, 1), (1, 4)), ((), (5,)), ((2, 3), (3,)), ((4,), ())])
def test_bind_broadcasts(kernel_path, shape_a, shape_b):
    a, b = bits(1, shape_a, 130), bits(2, shape_b, 130)
    out = hdc.bind(pack(a), pack(b))
    assert out.shape == np.broadcast_shapes(shape_a, shape_b)
    np.testing.assert_array_equal(out.to_bool(), a ^ b)


@SETTINGS
@given(dim=dims, shape=batch_shapes, seed=seeds, shift=st.integers(-3000, 3000))
def test_permute_matches_roll(kernel_path, dim, shape, seed, shift):
    x = bits(seed, shape, dim)
    out = hdc.permute(pack(x), shift)
    np.testing.assert_array_equal(out.to_bool(), model.permute(x, shift))
    assert_padding_zero(out)
    np.testing.assert_array_equal(hdc.permute(out, -shift).to_bool(), x)


@pytest.mark.parametrize("dim", ODD_DIMS)
def test_permute_every_shift_near_word_edges(kernel_path, dim):
    x = bits(dim, (3,), dim)
    hv = pack(x)
    for shift in sorted({1, 2, 31, 32, 63, 64, 65, 127, 128, 129, dim - 1, dim, dim + 1} - {0}):
        np.testing.assert_array_equal(hdc.permute(hv, shift).to_bool(), np.roll(x, shift, -1))


@SETTINGS
@given(dim=dims, shape=batch_shapes, seed=seeds)
def test_popcount_hamming_similarity(kernel_path, dim, shape, seed):
    a, b = bits(seed, shape, dim), bits(seed + 7, shape, dim)
    np.testing.assert_array_equal(hdc.popcount(pack(a)), a.sum(-1))
    h = hdc.hamming(pack(a), pack(b))
    np.testing.assert_array_equal(h, model.hamming(a, b))
    np.testing.assert_allclose(hdc.similarity(pack(a), pack(b)), 1 - 2 * model.hamming(a, b) / dim)


@pytest.mark.parametrize("shape_a,shape_b", [((3, 1), (1, 4)), ((), (6,)), ((6,), ()), ((2, 3), (3,))])
def test_hamming_broadcasts(kernel_path, shape_a, shape_b):
    a, b = bits(3, shape_a, 200), bits(4, shape_b, 200)
    np.testing.assert_array_equal(hdc.hamming(pack(a), pack(b)), model.hamming(a, b))


@SETTINGS
@given(dim=dims, n_a=st.integers(0, 9), n_b=st.integers(0, 40), seed=seeds)
def test_cdist_matches_model(kernel_path, dim, n_a, n_b, seed):
    a, b = bits(seed, (n_a,), dim), bits(seed + 3, (n_b,), dim)
    out = hdc.cdist(pack(a), pack(b))
    assert out.dtype == np.int32 and out.shape == (n_a, n_b)
    np.testing.assert_array_equal(out, model.cdist(a, b))


def test_cdist_large_blocks(kernel_path):
    a, b = bits(5, (37,), 1000), bits(6, (5000,), 1000)
    np.testing.assert_array_equal(hdc.cdist(pack(a), pack(b)), model.cdist(a, b))


@SETTINGS
@given(dim=dims, n_q=st.integers(1, 6), n_m=st.integers(1, 60), seed=seeds, data=st.data())
def test_topk_order_and_ties(kernel_path, dim, n_q, n_m, seed, data):
    m = bits(seed, (n_m,), dim)
    dup = data.draw(st.lists(st.integers(0, n_m - 1), max_size=5))
    m[dup] = m[0]  # exact duplicates: ties must be broken by smaller index
    q = np.concatenate([m[:1], bits(seed + 1, (n_q,), dim)])
    k = data.draw(st.integers(1, n_m))
    dist, idx = hdc.topk(pack(q), pack(m), k)
    want_d, want_i = model.topk(q, m, k)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(dist, want_d)


def test_topk_large_memory_and_single_query(kernel_path):
    m = bits(8, (20000,), 256)
    q = bits(9, (3,), 256)
    dist, idx = hdc.topk(pack(q), pack(m), 10)
    want_d, want_i = model.topk(q, m, 10)
    np.testing.assert_array_equal(idx, want_i)
    d1, i1 = hdc.topk(pack(q)[0], pack(m), 10)
    assert d1.shape == (10,)
    np.testing.assert_array_equal(i1, want_i[0])


@SETTINGS
@given(dim=dims, n=st.integers(1, 40), rest=st.lists(st.integers(1, 3), max_size=1).map(tuple), seed=seeds,
       tie=st.sampled_from(["zero", "one", "vector"]))
def test_bundle_majority_and_ties(kernel_path, dim, n, rest, seed, tie):
    x = bits(seed, (n,) + rest, dim)
    tie_bits = {"zero": np.zeros(dim, bool), "one": np.ones(dim, bool), "vector": bits(seed + 2, (), dim)}[tie]
    tie_arg = {"zero": 0, "one": 1, "vector": pack(tie_bits)}[tie]
    out = hdc.bundle(pack(x), tie=tie_arg)
    assert out.shape == rest
    np.testing.assert_array_equal(out.to_bool(), model.bundle(x, tie_bits=tie_bits))
    assert_padding_zero(out)


def test_bundle_integral_float_weights_above_2_53_count_exactly(kernel_path):
    """Integral float weights of 2**53 and more are integers: summed in float64 they round
    (2**53 + (2**53 - 1) is not representable), so they must count as exact integers
    (a failure the public-API fuzzer found)."""
    x = hdc.random(3, 127, seed=1)
    w = [1.0, 2.0 ** 53, 2.0 ** 53 - 1]
    bits = x.to_bool().astype(object)
    counts = sum(int(wi) * bits[i] for i, wi in enumerate(w))
    total = sum(int(v) for v in w)
    for tie in (0, 1):
        want = (2 * counts > total) | ((2 * counts == total) & bool(tie))
        np.testing.assert_array_equal(hdc.bundle(x, weights=w, tie=tie).to_bool(), want.astype(bool))


@SETTINGS
@given(dim=dims, n=st.integers(1, 20), seed=seeds, integer=st.booleans())
def test_bundle_weighted(kernel_path, dim, n, seed, integer):
    x = bits(seed, (n,), dim)
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 5, n) if integer else rng.random(n) * 3
    if w.sum() == 0:
        w[0] = 1
    tie_bits = bits(seed + 5, (), dim)
    out = hdc.bundle(pack(x), weights=w, tie=pack(tie_bits))
    np.testing.assert_array_equal(out.to_bool(), model.bundle(x, w, tie_bits))


@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 255, 256, 1001])
def test_bundle_counts_at_carry_boundaries(kernel_path, n):
    """Bit-sliced counters carry at powers of two: check counts just around them."""
    x = bits(n, (n,), 200)
    x[:, :8] = np.arange(n)[:, None] < (n // 2 + np.arange(-4, 4))  # counts around n/2
    out = hdc.bundle(pack(x), tie=0)
    np.testing.assert_array_equal(out.to_bool(), model.bundle(x, tie_bits=np.zeros(200, bool)))


def test_bundle_random_tie_is_seeded(kernel_path):
    x = pack(bits(11, (10,), 777))
    a = hdc.bundle(x, seed=3)
    assert a == hdc.bundle(x, seed=3)
    tie_bits = hdc.random(1, 777, seed=3)[0]
    assert a == hdc.bundle(x, tie=tie_bits)


@SETTINGS
@given(dim=dims, n=st.integers(1, 30), seed=seeds)
def test_accumulator_matches_bundle(kernel_path, dim, n, seed):
    x = bits(seed, (n,), dim)
    acc = hdc.Accumulator(dim)
    acc.add(pack(x[: n // 2]))
    acc.add(pack(x[n // 2:]))
    np.testing.assert_array_equal(acc.counts, x.sum(0))
    assert acc.n == n
    np.testing.assert_array_equal(acc.majority(tie=1).to_bool(), model.bundle(x, tie_bits=np.ones(dim, bool)))
    acc.remove(pack(x[:1]))
    np.testing.assert_array_equal(acc.counts, x[1:].sum(0))
    acc.add(pack(x[0]), weights=3)
    np.testing.assert_array_equal(acc.counts, x[1:].sum(0) + 3 * x[0])


def test_accumulator_remove_unknown_raises_and_keeps_state(kernel_path):
    acc = hdc.Accumulator(100)
    x = hdc.random(3, 100, seed=0)
    acc.add(x[:2])
    before = acc.counts.copy()
    with pytest.raises(ValueError, match="not added"):
        acc.remove(x)
    np.testing.assert_array_equal(acc.counts, before)
    assert acc.n == 2


def test_random_is_reproducible_and_fair(kernel_path):
    a = hdc.random((2, 3), 1000, seed=5)
    assert a.shape == (2, 3) and (a == hdc.random((2, 3), 1000, seed=5)).all()
    assert not (hdc.random(1, 1000, seed=6)[0] == a[0, 0])
    big = hdc.random(100, 10_000, seed=1)
    assert abs(hdc.popcount(big).mean() / 10_000 - 0.5) < 0.01
    assert_padding_zero(hdc.random(4, 65, seed=1))


def test_random_same_on_every_backend():
    words = []
    for name in hdc.backends():
        with hdc.use_backend(name):
            words.append(hdc.random(4, 1000, seed=7).words.copy())
    for w in words[1:]:
        np.testing.assert_array_equal(w, words[0])


def test_ops_are_bit_identical_across_backends():
    x = hdc.random(301, 4097, seed=2)
    results = {}
    for name in hdc.backends():
        with hdc.use_backend(name):
            results[name] = (hdc.bundle(x, tie=0).words, hdc.permute(x, 1000).words, hdc.cdist(x[:5], x),
                             hdc.topk(x[:5], x, 17)[1])
    first = results[hdc.backends()[-1]]
    for got in results.values():
        for g, f in zip(got, first):
            np.testing.assert_array_equal(g, f)


def test_dim_100k(kernel_path):
    x = bits(1, (3,), 100_000)
    hv = pack(x)
    np.testing.assert_array_equal(hdc.permute(hv, 12345).to_bool(), np.roll(x, 12345, -1))
    np.testing.assert_array_equal(hdc.bundle(hv).to_bool(), x.sum(0) >= 2)
    np.testing.assert_array_equal(hdc.cdist(hv, hv), model.cdist(x, x))
