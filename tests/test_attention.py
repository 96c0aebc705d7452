"""hdc.attention.kwta_attention against a brute-force reference, on every backend and SIMD path."""
import numpy as np
import pytest

import hdc
from conftest import PATHS, on_path
from hdc import attention


def brute(qb, kb, topk, causal):
    """Scores (Lq, Lk) and winners (Lq, topk) by a stable sort, padded with -1."""
    n_q, n_k, dim = qb.shape[0], kb.shape[0], qb.shape[1]
    s = dim - (qb[:, None, :] != kb[None, :, :]).sum(-1)
    idx = np.full((n_q, topk), -1, np.int64)
    for i in range(n_q):
        vis = np.arange(n_k) if not causal else np.arange(min(n_k, i + n_k - n_q + 1))
        order = vis[np.argsort(-s[i, vis], kind="stable")][:topk]
        idx[i, :len(order)] = order
    return s, idx


def brute_softmax(s, idx, v, temp):
    out = np.zeros((idx.shape[0], v.shape[1]))
    for i in range(idx.shape[0]):
        win = idx[i][idx[i] >= 0]
        w = np.exp((s[i, win] - s[i, win].max()) / temp)
        out[i] = (w / w.sum()) @ v[win]
    return out


@pytest.mark.parametrize("dim,n_q,n_k,topk,causal", [
    (1, 7, 7, 3, True), (63, 20, 20, 4, True), (64, 33, 33, 40, True), (65, 17, 30, 5, True),
    (256, 50, 50, 8, False), (130, 12, 40, 6, False), (1000, 64, 64, 16, True)])
def test_softmax_matches_brute_force(kernel_path, dim, n_q, n_k, topk, causal):
    rng = np.random.default_rng(dim + n_q)
    qb = rng.integers(0, 2, (2, n_q, dim)).astype(bool)
    kb = rng.integers(0, 2, (2, n_k, dim)).astype(bool)
    if dim > 1:
        kb[:, 3] = kb[:, 1]   # exact ties between keys
    v = rng.standard_normal((2, n_k, 5)).astype(np.float32)
    out, idx = attention.kwta_attention(hdc.BinaryHV.from_bool(qb), hdc.BinaryHV.from_bool(kb), v, topk,
                                        causal=causal, temperature=3.0, return_indices=True)
    slots = min(topk, n_k)  # a topk above the key count keeps every key, in min(topk, n_k) slots
    assert out.shape == (2, n_q, 5) and out.dtype == np.float32 and idx.shape == (2, n_q, slots)
    for h in range(2):
        s, want_idx = brute(qb[h], kb[h], slots, causal)
        np.testing.assert_array_equal(idx[h], want_idx)
        np.testing.assert_allclose(out[h], brute_softmax(s, want_idx, v[h], 3.0), atol=1e-5)


def test_tie_order_is_smaller_index_first(kernel_path):
    k = hdc.random(1, 128, seed=0)
    keys = hdc.BinaryHV.concatenate([k] * 6)              # six identical keys
    q = keys[:1]
    scores, idx = attention.kwta_select(q, keys, 4, causal=False)
    assert idx.tolist() == [[0, 1, 2, 3]]
    assert scores.tolist() == [[128] * 4]


def test_causal_sees_fewer_keys_and_pads(kernel_path):
    c = hdc.random(5, 64, seed=1)
    scores, idx = attention.kwta_select(c, c, 3)
    assert idx[0].tolist() == [0, -1, -1] and scores[0].tolist() == [64, -1, -1]
    assert (idx[1] >= 0).sum() == 2 and idx[1, 0] == 1    # itself is the best match
    assert all((idx[i][idx[i] >= 0] <= i).all() for i in range(5))


def test_query_block_at_end_of_key_cache(kernel_path):
    """Lq < Lk with causal: query i sees keys up to Lk - Lq + i (incremental decoding)."""
    keys = hdc.random(10, 64, seed=2)
    q = keys[7:]
    full = attention.kwta_select(keys, keys, 4)[1][7:]
    block = attention.kwta_select(q, keys, 4)[1]
    np.testing.assert_array_equal(full, block)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits,dv", [(256, 16), (1000, 16), (256, 139)])
def test_backends_give_the_same_bits(dtype, bits, dv):
    """Every backend and SIMD path: identical winners and bit-identical softmax outputs, with
    1 and 2 threads (the C scan and the Numba kernel against the NumPy reference). dv = 139
    takes every column loop of the vector mixes (blocks of 8 vectors, single vectors, columns)."""
    q = hdc.random((3, 300), bits, seed=3)
    k = hdc.random((3, 300), bits, seed=4)
    v = np.random.default_rng(0).standard_normal((3, 300, dv)).astype(dtype)
    vb = hdc.random((3, 300), 130, seed=5)

    def run():
        soft = attention.kwta_attention(q, k, v, 32, temperature=8.0, return_indices=True)
        maj = attention.kwta_attention(q, k, vb, 7, aggregate="majority")
        return soft, maj

    with on_path("numpy"):
        want = run()
    assert want[0][0].dtype == dtype
    for name, isa in PATHS:
        for threads in (1, 2):
            old = hdc.get_num_threads()
            hdc.set_num_threads(threads)
            try:
                with on_path(name, isa):
                    (out, idx), maj = run()
            finally:
                hdc.set_num_threads(old)
            np.testing.assert_array_equal(idx, want[0][1], err_msg=f"{name} {isa} winners")
            np.testing.assert_array_equal(out, want[0][0], err_msg=f"{name} {isa} softmax bits")
            np.testing.assert_array_equal(maj.words, want[1].words, err_msg=f"{name} {isa} majority")


def test_structured_codes_need_the_rescan(kernel_path):
    """Consecutive queries with very different distance profiles: the C scan's bound guessed from
    the previous query is too tight (or too loose) and must fall back to a full rescan; ties galore
    (codes from a few prototypes) exercise the smaller-index rule at the cut-off."""
    rng = np.random.default_rng(11)
    protos = rng.integers(0, 2, (4, 192)).astype(bool)
    pick = rng.integers(0, 4, 600)
    noise = rng.random((600, 192)) < np.where(np.arange(600) % 2, 0.02, 0.45)[:, None]
    codes = protos[pick] ^ noise
    qb, kb = codes[None, :, :], codes[None, ::-1, :].copy()
    for topk, causal in [(16, True), (40, False), (300, True)]:
        _, idx = attention.kwta_select(hdc.BinaryHV.from_bool(qb), hdc.BinaryHV.from_bool(kb), topk,
                                       causal=causal)
        _, want = brute(qb[0], kb[0], topk, causal)
        np.testing.assert_array_equal(idx[0], want)


@pytest.mark.parametrize("dim", [192, 255, 256])
@pytest.mark.parametrize("causal", [False, True])
def test_far_keys_are_counted_exactly(kernel_path, dim, causal):
    """Keys at distance up to dim, all of them winners (no bound ever applies): the nibble-table
    scans count in bytes that saturate at 255 and must recount the keys at 255 and 256."""
    rng = np.random.default_rng(dim)
    qb = rng.integers(0, 2, (1, 150, dim)).astype(bool)
    kb = np.repeat(~qb[:, :1], 150, axis=1)       # query 0's complement, distance dim ...
    for j in range(150):
        kb[0, j, :j % 3] ^= True                  # ... dim - 1 and dim - 2, interleaved
    kb[0, 100:150:2] = ~qb[0, 100:150:2]          # later queries' complements too
    kb[0, 10:20] = qb[0, 10:20]                   # distance 0
    scores, idx = attention.kwta_select(hdc.BinaryHV.from_bool(qb), hdc.BinaryHV.from_bool(kb),
                                        150, causal=causal)
    s, want = brute(qb[0], kb[0], 150, causal)
    np.testing.assert_array_equal(idx[0], want)
    np.testing.assert_array_equal(scores[0], np.where(want >= 0, np.take_along_axis(s, want, 1), -1))


@pytest.mark.parametrize("bits", [64, 200, 256, 320])
def test_any_visible_counts(kernel_path, bits):
    """The kernels' n_visible need not be causal: zeros, jumps past a scan chunk, counts above the
    key count and decreasing runs (the C scan groups queries whose counts are close)."""
    from hdc.backend import kernels
    n_q, n_k, k = 40, 700, 9
    q = hdc.random((2, n_q), bits, seed=bits).words
    keys = hdc.random((2, n_k), bits, seed=bits + 1).words
    vis = np.random.default_rng(bits).choice([0, 1, 5, 63, 64, 65, 255, 256, 257, 300, 511, 699,
                                              700, 5000], n_q).astype(np.int64)
    vis[10:20] = np.arange(300, 290, -1)
    got = np.empty((2, n_q, k), np.int32), np.empty((2, n_q, k), np.int64)
    kernels().kwta_select(q, keys, k, vis, *got)
    want = np.empty_like(got[0]), np.empty_like(got[1])
    with on_path("numpy"):
        kernels().kwta_select(q, keys, k, vis, *want)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_majority_matches_bundle_of_winners(kernel_path):
    q = hdc.random((2, 25), 200, seed=5)
    k = hdc.random((2, 25), 200, seed=6)
    v = hdc.random((2, 25), 200, seed=7)
    out, idx = attention.kwta_attention(q, k, v, 4, aggregate="majority", return_indices=True)
    assert isinstance(out, hdc.BinaryHV) and out.shape == (2, 25) and out.dim == 200
    for h in range(2):
        for i in range(25):
            win = idx[h, i][idx[h, i] >= 0]
            want = hdc.bundle(v[h][win], tie=v[h][int(win[0])])   # even counts: best winner's bit
            assert out[h, i] == want


def test_leading_axes_and_single_head():
    q = hdc.random(9, 64, seed=8)
    v = np.ones((9, 3))
    out = attention.kwta_attention(q, q, v, 2)
    assert out.shape == (9, 3) and np.allclose(out, 1)
    q4 = hdc.random((2, 3, 9), 64, seed=9)
    assert attention.kwta_attention(q4, q4, np.zeros((2, 3, 9, 4)), 2).shape == (2, 3, 9, 4)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(topk=0), ValueError), (dict(topk=1.5), TypeError), (dict(temperature=0.0), ValueError),
    (dict(temperature="hot"), TypeError), (dict(aggregate="mean"), ValueError)])
def test_bad_arguments(kwargs, exc):
    q = hdc.random((1, 4), 64, seed=0)
    args = dict(topk=2)
    args.update(kwargs)
    with pytest.raises(exc):
        attention.kwta_attention(q, q, np.zeros((1, 4, 2)), **args)


def test_bad_inputs():
    q = hdc.random((1, 4), 64, seed=0)
    with pytest.raises(TypeError, match="q must be"):
        attention.kwta_attention(q.words, q, np.zeros((1, 4, 2)), 2)
    with pytest.raises(ValueError, match="same dim"):
        attention.kwta_attention(q, hdc.random((1, 4), 65, seed=0), np.zeros((1, 4, 2)), 2)
    with pytest.raises(ValueError, match="leading"):
        attention.kwta_attention(q, hdc.random((2, 4), 64, seed=0), np.zeros((1, 4, 2)), 2)
    with pytest.raises(ValueError, match="v must have shape"):
        attention.kwta_attention(q, q, np.zeros((1, 5, 2)), 2)
    with pytest.raises(TypeError, match="majority"):
        attention.kwta_attention(q, q, q, 2)
    with pytest.raises(TypeError, match="BinaryHV"):
        attention.kwta_attention(q, q, np.zeros((1, 4, 2)), 2, aggregate="majority")
    with pytest.raises(ValueError, match="at least as many keys"):
        attention.kwta_attention(q, q[:, :2], np.zeros((1, 2, 2)), 2)
    with pytest.raises(ValueError, match="empty"):
        attention.kwta_attention(q[:, :0], q[:, :0], np.zeros((1, 0, 2)), 2)


def test_attention_imports_without_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "import hdc, numpy as np\nfrom hdc import attention\n"
            "from hdc.nn import packed, tasks\n"
            "c = hdc.random((1, 8), 64, seed=0)\n"
            "print(attention.kwta_attention(c, c, np.ones((1, 8, 2)), 2).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 8, 2)"
