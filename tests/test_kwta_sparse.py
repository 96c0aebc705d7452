"""Sparse-code k-WTA attention (hdc.attention with SparseHV q/k) against a brute-force model,
on every backend and SIMD path: winners, scores, outputs and the touched-pair count."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdc
from hdc import attention, backend

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def model(qi, ki, topk, causal):
    """(scores, winners (Lq, topk), pairs touched) of one head by sorting every overlap."""
    n_q, n_k = qi.shape[0], ki.shape[0]
    s = (qi[:, None, :] == ki[None, :, :]).sum(-1)
    idx = np.full((n_q, topk), -1, np.int64)
    touched = 0
    for i in range(n_q):
        vis = np.arange(n_k if not causal else i + n_k - n_q + 1)
        live = vis[s[i, vis] > 0]                       # overlap 0 never fires
        touched += len(live)
        order = live[np.lexsort((live, -s[i, live]))][:topk]
        idx[i, :len(order)] = order
    return s, idx, touched


def codes(rng, shape, blocks, block_size, spread):
    """Sparse codes whose indices come from the first `spread` values: many overlaps and ties."""
    return hdc.SparseHV(rng.integers(0, min(spread, block_size), shape + (blocks,)), block_size)


def check_against_model(q, k, v, vb, topk, causal, temp):
    out, idx, touched = attention.kwta_attention(q, k, v, topk, causal=causal, temperature=temp,
                                                 return_indices=True, return_touched=True)
    maj, idx2 = attention.kwta_attention(q, k, vb, topk, causal=causal, aggregate="majority",
                                         return_indices=True)
    scores, idx3 = attention.kwta_select(q, k, topk, causal=causal)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(idx3, idx)
    total = 0
    vbits = vb.to_bool()
    for h in range(q.shape[0]):
        s, want, t = model(q.indices[h].astype(np.int64), k.indices[h].astype(np.int64), topk, causal)
        total += t
        np.testing.assert_array_equal(idx[h], want)
        live = want >= 0
        want_scores = np.where(live, np.take_along_axis(s, np.maximum(want, 0), 1), -1)
        np.testing.assert_array_equal(scores[h], want_scores)
        for i in range(want.shape[0]):
            win = want[i][live[i]]
            if len(win) == 0:
                assert not out[h, i].any() and not maj[h, i].to_bool().any()
                continue
            w = np.exp((s[i, win] - s[i, win].max()) / temp)
            np.testing.assert_allclose(out[h, i], (w / w.sum()) @ v[h, win], atol=1e-5)
            twice = 2 * vbits[h, win].sum(0)
            bits = (twice > len(win)) | ((twice == len(win)) & vbits[h, win[0]])
            np.testing.assert_array_equal(maj[h, i].to_bool(), bits)
    assert touched == total
    return out, idx


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 40), st.integers(0, 10), st.integers(1, 9),
       st.sampled_from([1, 2, 5, 16, 300]), st.integers(1, 12), st.booleans(), st.integers(0, 2**32 - 1))
def test_matches_model(kernel_path, heads, n_q, extra_keys, blocks, block_size, topk, causal, seed):
    rng = np.random.default_rng(seed)
    n_k = n_q + extra_keys
    topk = min(topk, n_k)
    q = codes(rng, (heads, n_q), blocks, block_size, 4)
    k = codes(rng, (heads, n_k), blocks, block_size, 4)
    v = rng.standard_normal((heads, n_k, 3)).astype(np.float32)
    vb = hdc.random((heads, n_k), 70, seed=seed)
    check_against_model(q, k, v, vb, topk, causal, temp=0.7)


@pytest.mark.parametrize("block_size", [64, 100_000])   # counting-sort index / sorted-pair index
def test_backends_identical_at_size(block_size):
    rng = np.random.default_rng(block_size)
    q = codes(rng, (2, 300), 8, block_size, 24)
    k = codes(rng, (2, 300), 8, block_size, 24)
    v = rng.standard_normal((2, 300, 16))
    results = []
    for name in hdc.backends():
        with hdc.use_backend(name):
            results.append(attention.kwta_attention(q, k, v, 8, return_indices=True,
                                                    return_touched=True))
    for out, idx, touched in results[1:]:
        np.testing.assert_array_equal(idx, results[0][1])
        np.testing.assert_array_equal(out, results[0][0])        # the same bits
        assert touched == results[0][2]
    assert 0 < results[0][2] < 2 * 300 * 301 // 2


@pytest.mark.parametrize("block_size", [16, 100_000])
def test_long_cache_many_blocks_identical(kernel_path, block_size):
    """A query block at the end of a 9,000-key cache (the C kernel's touched-key bitmap spans
    several summary words) with 70 blocks (more than one group of 64 bucket lookups) and many
    ties: every backend and SIMD path against the NumPy reference, softmax and majority."""
    rng = np.random.default_rng(block_size)
    q, k = codes(rng, (2, 48), 70, block_size, 12), codes(rng, (2, 9000), 70, block_size, 12)
    v = rng.standard_normal((2, 9000, 5))
    vb = hdc.random((2, 9000), 300, seed=4)
    got = attention.kwta_attention(q, k, v, 40, return_indices=True, return_touched=True)
    got_maj = attention.kwta_attention(q, k, vb, 40, aggregate="majority")
    with hdc.use_backend("numpy"):
        want = attention.kwta_attention(q, k, v, 40, return_indices=True, return_touched=True)
        want_maj = attention.kwta_attention(q, k, vb, 40, aggregate="majority")
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got_maj.words, want_maj.words)
    assert (got[1] >= 0).all() and got[2] > 0.5 * 2 * 48 * 9000


def test_c_threads_give_the_same_result():
    ck = backend._require("c")
    rng = np.random.default_rng(5)
    q, k = codes(rng, (3, 200), 6, 32, 12), codes(rng, (3, 200), 6, 32, 12)
    v = rng.standard_normal((3, 200, 4)).astype(np.float32)
    with hdc.use_backend("c"):
        want = attention.kwta_attention(q, k, v, 5, return_indices=True, return_touched=True)
        old = ck.lib.hdc_set_parallel_threshold(0)
        try:
            got = attention.kwta_attention(q, k, v, 5, return_indices=True, return_touched=True)
        finally:
            ck.lib.hdc_set_parallel_threshold(old)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


def test_query_block_at_end_of_cache(kernel_path):
    rng = np.random.default_rng(2)
    q, k = codes(rng, (1, 5), 4, 8, 3), codes(rng, (1, 20), 4, 8, 3)
    v = rng.standard_normal((1, 20, 2))
    out, idx = check_against_model(q, k, v, hdc.random((1, 20), 64, seed=1), 6, True, 1.0)
    assert idx.max() <= 19 and (idx[0, 0] <= 15).all()


def test_no_shared_block_means_no_winner(kernel_path):
    q = hdc.SparseHV(np.zeros((3, 4), np.uint8), 8)
    k = hdc.SparseHV(np.ones((3, 4), np.uint8), 8)
    out, idx, touched = attention.kwta_attention(q, k, np.ones((3, 2)), 2, return_indices=True,
                                                 return_touched=True)
    assert (idx == -1).all() and not out.any() and touched == 0


def test_bad_input():
    q = hdc.random_sparse((2, 6), 4, 8, seed=0)
    with pytest.raises(ValueError, match="topk"):
        attention.kwta_attention(q, q, np.ones((2, 6, 3)), 0)
    with pytest.raises(ValueError, match="topk must be <= the number of keys"):
        attention.kwta_attention(q, q, np.ones((2, 6, 3)), 7)
    with pytest.raises(TypeError, match="topk"):
        attention.kwta_select(q, q, 2.5)
    with pytest.raises(TypeError, match="same kind"):
        attention.kwta_attention(q, hdc.random((2, 6), 32, seed=0), np.ones((2, 6, 3)), 2)
    with pytest.raises(ValueError, match="block_size"):
        attention.kwta_select(q, hdc.random_sparse((2, 6), 4, 16, seed=0), 2)
    with pytest.raises(ValueError, match="number of blocks"):
        attention.kwta_select(q, hdc.random_sparse((2, 6), 5, 8, seed=0), 2)
    with pytest.raises(ValueError, match="leading"):
        attention.kwta_select(q, hdc.random_sparse((3, 6), 4, 8, seed=0), 2)
    with pytest.raises(ValueError, match="single hypervector"):
        attention.kwta_select(q[0, 0], q[0, 0], 1)
    big = hdc.random_sparse((1, 2), 65536, 2, seed=0)
    with pytest.raises(ValueError, match="at most 65535 blocks"):
        attention.kwta_select(big, big, 1)
    # dense codes keep accepting topk > keys (every visible key wins, in min(topk, keys) slots)
    d = hdc.random((2, 6), 64, seed=0)
    assert attention.kwta_select(d, d, 9)[1].shape == (2, 6, 6)


def test_c_kernel_rejects_indices_out_of_range():
    fam = __import__("hdc._kernels.kwta_sparse.c", fromlist=["kwta_sparse_select"])
    q = np.zeros((1, 2, 3), np.uint32)
    q[0, 1, 2] = 8
    score, idx = np.empty((1, 2, 1), np.int32), np.empty((1, 2, 1), np.int64)
    with pytest.raises(ValueError, match="block_size"):
        fam.kwta_sparse_select(q, q, 8, 1, None, score, idx)
