"""Packed Hamming k-winner-take-all attention (no torch needed).

Each query code scores every visible key code by ``score = dim - hamming(q, k)`` and keeps only
its ``topk`` best keys; the output mixes the winners' values only. Selection streams over the
keys of one query at a time (a distance row, a score histogram and the winners), so memory is
O(L x topk) plus one row of L distances per thread, never O(L^2).

**Winner order (the tie rule).** Winners are listed highest score first; equal scores are
ordered by the smaller key index. The torch module :class:`hdc.nn.HammingKWTAAttention` selects
with the same rule, so exported models pick identical winners.

**Kernels.** On the ``"numpy"`` backend, selection is the backend kernel
``hdc.backend.kernels().topk`` (with causal visibility) and values are mixed with vectorised
NumPy: the readable reference. On the other backends (``"numba"``, ``"c"``) a fused Numba kernel
does distance, selection and softmax mixing (or the majority count) in one pass, in parallel over heads and queries
(``hdc.set_num_threads`` sets the threads). Both give identical winners.

>>> import numpy as np, hdc
>>> from hdc.attention import kwta_attention
>>> q = hdc.random((2, 16), 256, seed=0)          # (heads, L) codes
>>> k = hdc.random((2, 16), 256, seed=1)
>>> v = np.random.default_rng(0).standard_normal((2, 16, 8)).astype(np.float32)
>>> out, idx = kwta_attention(q, k, v, topk=4, return_indices=True)
>>> out.shape, idx.shape, idx[0, 0].tolist()       # query 0 only sees key 0
((2, 16, 8), (2, 16, 4), [0, -1, -1, -1])
"""
import numpy as np

from . import backend
from ._validate import check_int
from .hv import BinaryHV

__all__ = ["kwta_attention", "kwta_select"]

_AGGREGATES = ("softmax", "majority")


# ---- validation --------------------------------------------------------------------------------

def _check_codes(q, k):
    for name, x in (("q", q), ("k", k)):
        if not isinstance(x, BinaryHV):
            raise TypeError(f"{name} must be a hdc.BinaryHV of codes with batch shape (..., L), "
                            f"got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError(f"{name} must have batch shape (..., L), got a single hypervector")
    if q.dim != k.dim:
        raise ValueError(f"q and k must have the same dim, got {q.dim} and {k.dim}")
    if q.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"q and k must have the same leading (head/batch) axes, got {q.shape[:-1]} "
                         f"and {k.shape[:-1]}")
    if k.shape[-1] == 0:
        raise ValueError("k is empty; attention needs at least one key")


def _check_temperature(temperature):
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a positive float, got {temperature!r}") from None
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite float, got {temperature!r}")
    return t


def _visible(n_q, n_k, causal):
    """Visible key count per query: query i sees keys [0, n_k - n_q + i] when causal."""
    if not causal:
        return None
    if n_k < n_q:
        raise ValueError(f"causal attention needs at least as many keys as queries, got {n_k} keys "
                         f"for {n_q} queries")
    return np.minimum(np.arange(n_q, dtype=np.int64) + (n_k - n_q) + 1, n_k)


# ---- selection ---------------------------------------------------------------------------------

# "auto": the fused kernel unless the active backend is "numpy"; "fused" / "reference" force one
# path (tests compare them).
_KERNEL = "auto"


def _use_fused():
    if _KERNEL == "reference":
        return False
    if _KERNEL == "auto" and backend.get_backend() == "numpy":
        return False
    return _fused() is not None


def _select_reference(qw, kw, topk, n_visible):
    """Winners with the backend topk kernel, one head at a time: (dist uint32, idx int64) (H, Lq, topk)."""
    n_h, n_q, _ = qw.shape
    n_k = kw.shape[1]
    kk = min(topk, n_k)
    dist = np.full((n_h, n_q, topk), np.iinfo(np.uint32).max, np.uint32)
    idx = np.full((n_h, n_q, topk), -1, np.int64)
    kernels = backend.kernels()
    d = np.empty((n_q, kk), np.uint32)
    i = np.empty((n_q, kk), np.int64)
    for h in range(n_h):
        if n_q:
            kernels.topk(qw[h], kw[h], kk, n_visible, d, i)
        dist[h, :, :kk] = d
        idx[h, :, :kk] = i
    return dist, idx


def _prepare(q, k, topk, causal):
    _check_codes(q, k)
    topk = check_int(topk, "topk", low=1)
    lead = q.shape[:-1]
    n_q, n_k, w = q.shape[-1], k.shape[-1], q.n_words
    qw = np.ascontiguousarray(q.words.reshape(-1, n_q, w))
    kw = np.ascontiguousarray(k.words.reshape(-1, n_k, w))
    n_visible = _visible(n_q, n_k, bool(causal))
    return lead, n_q, n_k, topk, qw, kw, n_visible


def kwta_select(q, k, topk, causal=True):
    """The winners only: ``(scores, indices)`` of each query's ``topk`` best visible keys.

    Shapes: q ``(..., Lq)``, k ``(..., Lk)`` codes -> scores int32 and indices int64
    ``(..., Lq, topk)``; highest score first, ties by smaller key index; slots past the visible
    count hold score -1 and index -1.

    >>> import hdc
    >>> c = hdc.random(5, 128, seed=0)
    >>> s, i = kwta_select(c, c, 2, causal=False)
    >>> i[:, 0].tolist(), s[:, 0].tolist()            # each code is its own best match
    ([0, 1, 2, 3, 4], [128, 128, 128, 128, 128])
    """
    lead, n_q, n_k, topk, qw, kw, n_visible = _prepare(q, k, topk, causal)
    if _use_fused():
        dist, idx = _fused_select(qw, kw, topk, n_visible)
    else:
        dist, idx = _select_reference(qw, kw, topk, n_visible)
    scores = np.where(idx >= 0, q.dim - dist.astype(np.int64), -1).astype(np.int32)
    return scores.reshape(lead + (n_q, topk)), idx.reshape(lead + (n_q, topk))


# ---- mixing ------------------------------------------------------------------------------------

def _mix_softmax(scores, idx, v, temperature):
    """out[h, i] = softmax(score / T over valid winners) @ v[h, winners]; scores/idx (H, Lq, k)."""
    valid = idx >= 0
    s = np.where(valid, scores.astype(np.float64) / temperature, -np.inf)
    s_max = s[..., :1]  # winners are sorted, so the first is the maximum (always valid)
    w = np.where(valid, np.exp(s - s_max), 0.0)
    w /= w.sum(-1, keepdims=True)
    gathered = v[np.arange(v.shape[0])[:, None, None], np.where(valid, idx, 0)]   # (H, Lq, k, dv)
    return np.einsum("hqk,hqkd->hqd", w, gathered, optimize=False)


def _mix_majority(idx, vw):
    """Majority of the winners' value words; even counts tie to the best winner's bit."""
    n_h, n_q, kk = idx.shape
    valid = idx >= 0
    count = valid.sum(-1)                                    # (H, Lq), always >= 1
    gathered = vw[np.arange(n_h)[:, None, None], np.where(valid, idx, 0)]   # (H, Lq, k, W)
    bits = np.unpackbits(gathered.astype("<u8").view(np.uint8), axis=-1, bitorder="little")
    bits = bits * valid[..., None]
    ones = bits.sum(-2, dtype=np.int64)                      # (H, Lq, W*64)
    twice = 2 * ones
    first = np.unpackbits(gathered[:, :, 0].astype("<u8").view(np.uint8), axis=-1, bitorder="little")
    n = count[..., None]
    out_bits = (twice > n) | ((twice == n) & (first == 1))
    packed = np.packbits(out_bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").astype(np.uint64, copy=False))


def kwta_attention(q, k, v, topk, causal=True, aggregate="softmax", temperature=1.0,
                   return_indices=False):
    """Hamming k-WTA attention on packed codes.

    ``score[i, j] = dim - hamming(q_i, k_j)``; query ``i`` sees keys ``j <= i + Lk - Lq`` when
    ``causal`` (so ``Lq < Lk`` is a query block at the end of a key cache) and every key otherwise;
    it keeps its ``topk`` best visible keys (fewer when fewer are visible), highest score first,
    ties by smaller key index.

    - ``aggregate="softmax"``: ``out_i = sum_w softmax(score / temperature)_w v_w`` over the
      winners only; ``v`` is a float array ``(..., Lk, dv)``; the output is ``(..., Lq, dv)``
      (float64 for float64 values, else float32).
    - ``aggregate="majority"``: ``v`` is a BinaryHV ``(..., Lk)``; the output is the BinaryHV
      ``(..., Lq)`` elementwise majority of the winners' values. With an even number of winners,
      a tied element takes the bit of the best winner's value.

    Shapes: q ``(..., Lq)``, k ``(..., Lk)`` BinaryHV codes with the same leading (head/batch)
    axes and dim. With ``return_indices=True`` also returns the winners, int64
    ``(..., Lq, topk)``, padded with -1.

    >>> import numpy as np, hdc
    >>> c = hdc.random((4, 32), 256, seed=0)           # 4 heads, 32 tokens
    >>> v = np.ones((4, 32, 16), np.float32)
    >>> out = kwta_attention(c, c, v, topk=8)
    >>> out.shape, bool(np.allclose(out, 1))
    ((4, 32, 16), True)
    """
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {aggregate!r}")
    temperature = _check_temperature(temperature)
    lead, n_q, n_k, topk, qw, kw, n_visible = _prepare(q, k, topk, causal)
    n_h = qw.shape[0]
    if aggregate == "softmax":
        if isinstance(v, BinaryHV):
            raise TypeError("v must be a float array (..., Lk, dv) for aggregate='softmax'; "
                            "use aggregate='majority' for BinaryHV values")
        v = np.asarray(v)
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise TypeError(f"v must be a float array, got dtype {v.dtype}")
        if v.shape[:-1] != lead + (n_k,) or v.ndim != len(lead) + 2:
            raise ValueError(f"v must have shape {lead + (n_k,)} + (dv,), got {v.shape}")
        out_dtype = np.float64 if v.dtype == np.float64 else np.float32
        vh = np.ascontiguousarray(v.reshape(n_h, n_k, v.shape[-1]), dtype=out_dtype)
        if _use_fused():
            out, idx = _fused_softmax(qw, kw, vh, topk, n_visible, q.dim, temperature)
        else:
            dist, idx = _select_reference(qw, kw, topk, n_visible)
            scores = q.dim - dist.astype(np.int64)
            out = _mix_softmax(scores, idx, vh, temperature).astype(out_dtype)
        out = out.reshape(lead + (n_q, v.shape[-1]))
    else:
        if not isinstance(v, BinaryHV):
            raise TypeError(f"v must be a hdc.BinaryHV (..., Lk) for aggregate='majority', "
                            f"got {type(v).__name__}")
        if v.shape != lead + (n_k,):
            raise ValueError(f"v must have batch shape {lead + (n_k,)}, got {v.shape}")
        vw = v.words.reshape(n_h, n_k, v.n_words)
        if _use_fused():
            words, idx = _fused_majority(qw, kw, vw, topk, n_visible)
        else:
            _, idx = _select_reference(qw, kw, topk, n_visible)
            words = _mix_majority(idx, vw)[..., :v.n_words]
        out = BinaryHV._wrap(np.ascontiguousarray(words.reshape(lead + (n_q, v.n_words))), v.dim)
    if return_indices:
        return out, idx.reshape(lead + (n_q, topk))
    return out


# ---- fused Numba kernel (compiled on first use, cached on disk) ---------------------------------

_FUSED = []
_N_CHUNKS = 64  # queries are dealt to chunks round-robin, so causal rows balance across threads


def _fused():
    """The compiled kernels ``(select, softmax, majority)``, or None when numba is unavailable."""
    if _FUSED:
        return _FUSED[0]
    try:
        import numba
        from numba import types
        from numba.extending import intrinsic
        from llvmlite import ir
    except ImportError:
        _FUSED.append(None)
        return None

    @intrinsic
    def popcnt(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])
        return types.uint64(types.uint64), codegen

    jit = numba.njit(cache=True, nogil=True, boundscheck=False)

    @intrinsic
    def cttz(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
        return types.uint64(types.uint64), codegen

    @jit
    def count_le(dbuf, n, t):
        c = 0
        for j in range(n):
            c += dbuf[j] <= t
        return c

    @jit
    def winners(qrow, kt, nvis, kk, guess, dbuf, flags, fw, win_d, win_i):
        """win_d/win_i[:kk] = the kk nearest of keys [0, nvis), nearest first, ties by index.

        1. vectorised popcount passes (four key words each) fill the distance row ``dbuf``;
        2. the cut-off t (the k-th smallest distance: #(d < t) < kk <= #(d <= t)) is searched
           from ``guess`` (the previous query's) with vectorised counts;
        3. a vectorised pass writes the byte flags (d <= t); read 8 at a time as words, zero
           words skipped and set bytes found with tzcnt, they give the keys with d < t and the
           first kk - #(d < t) keys with d == t (ties: smaller index first);
        4. those are sorted by (distance, index) by insertion.
        Returns t, the next query's guess.
        """
        n_w = kt.shape[0]
        w = 0
        while w < n_w:                        # four key words per pass over the distance row
            if n_w - w >= 4:
                ka, kb, kc, kd = kt[w], kt[w + 1], kt[w + 2], kt[w + 3]
                qa, qb, qc, qd = qrow[w], qrow[w + 1], qrow[w + 2], qrow[w + 3]
                if w == 0:
                    for j in range(nvis):
                        dbuf[j] = (popcnt(qa ^ ka[j]) + popcnt(qb ^ kb[j])
                                   + popcnt(qc ^ kc[j]) + popcnt(qd ^ kd[j]))
                else:
                    for j in range(nvis):
                        dbuf[j] += (popcnt(qa ^ ka[j]) + popcnt(qb ^ kb[j])
                                    + popcnt(qc ^ kc[j]) + popcnt(qd ^ kd[j]))
                w += 4
            else:
                ka = kt[w]
                qa = qrow[w]
                if w == 0:
                    for j in range(nvis):
                        dbuf[j] = popcnt(qa ^ ka[j])
                else:
                    for j in range(nvis):
                        dbuf[j] += popcnt(qa ^ ka[j])
                w += 1
        # exact cut-off: lo has fewer than kk keys at or below it, hi at least kk
        dmax = n_w * 64
        t = min(max(guess, 0), dmax)
        if count_le(dbuf, nvis, np.uint64(t)) >= kk:
            hi = t
            step = 1
            lo = t - step
            while lo >= 0 and count_le(dbuf, nvis, np.uint64(lo)) >= kk:
                hi = lo
                step *= 2
                lo = hi - step
            lo = max(lo, -1)
        else:
            lo = t
            step = 1
            hi = t + step
            while hi < dmax and count_le(dbuf, nvis, np.uint64(hi)) < kk:
                lo = hi
                step *= 2
                hi = lo + step
            hi = min(hi, dmax)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if count_le(dbuf, nvis, np.uint64(mid)) >= kk:
                hi = mid
            else:
                lo = mid
        t = np.uint64(hi)
        n_less = count_le(dbuf, nvis, np.uint64(hi - 1)) if hi > 0 else 0
        need_eq = kk - n_less
        n = 0
        n_eq = 0
        # flags[j] = (d_j <= t), one vectorised pass; then 8 flags per word, zero words skipped
        for j in range(nvis):                 # flags is a uint8 view of the words fw
            flags[j] = dbuf[j] <= t
        n_fw = (nvis + 7) // 8
        for j in range(nvis, n_fw * 8):
            flags[j] = 0
        for wi in range(n_fw):
            x = fw[wi]
            while x:
                byte = np.int64(cttz(x)) >> 3
                x &= ~(np.uint64(0xFF) << np.uint64(8 * byte))
                j = wi * 8 + byte
                d = dbuf[j]
                if d < t:
                    p = n
                    while p > 0 and win_d[p - 1] > d:
                        win_d[p] = win_d[p - 1]
                        win_i[p] = win_i[p - 1]
                        p -= 1
                    win_d[p] = d
                    win_i[p] = j
                    n += 1
                elif n_eq < need_eq:
                    # ties at the cut-off go after every nearer key, in index order
                    win_d[kk - need_eq + n_eq] = d
                    win_i[kk - need_eq + n_eq] = j
                    n_eq += 1
            if n == n_less and n_eq == need_eq:
                break
        return np.int64(hi)

    @numba.njit(cache=True, parallel=True, boundscheck=False)
    def select(qw, kt, topk, nvis_arr, dim, out_dist, out_idx):
        n_h, n_q, _ = qw.shape
        n_k = kt.shape[2]
        total = n_h * n_q
        for c in numba.prange(_N_CHUNKS):
            dbuf = np.empty(n_k, np.uint64)
            fw = np.empty(n_k // 8 + 1, np.uint64)
            flags = fw.view(np.uint8)
            guess = dim // 2
            win_d = np.empty(topk, np.uint64)
            win_i = np.empty(topk, np.int64)
            for t in range(c, total, _N_CHUNKS):
                h = t // n_q
                i = t - h * n_q
                nvis = nvis_arr[i]
                kk = min(topk, nvis)
                guess = winners(qw[h, i], kt[h], nvis, kk, guess, dbuf, flags, fw, win_d, win_i)
                for r in range(kk):
                    out_idx[h, i, r] = win_i[r]
                    out_dist[h, i, r] = win_d[r]
                for r in range(kk, topk):
                    out_idx[h, i, r] = -1
                    out_dist[h, i, r] = 0xFFFFFFFF

    @numba.njit(cache=True, parallel=True, boundscheck=False, fastmath=False)
    def softmax(qw, kt, v, topk, nvis_arr, dim, inv_temp, out, out_idx):
        n_h, n_q, _ = qw.shape
        n_k = kt.shape[2]
        dv = v.shape[2]
        total = n_h * n_q
        # distances are integers: the softmax weights exp(-delta / T) come from a table
        table = np.empty(dim + 1, np.float64)
        for delta in range(dim + 1):
            table[delta] = np.exp(-(delta * inv_temp))
        for c in numba.prange(_N_CHUNKS):
            dbuf = np.empty(n_k, np.uint64)
            fw = np.empty(n_k // 8 + 1, np.uint64)
            flags = fw.view(np.uint8)
            guess = dim // 2
            win_d = np.empty(topk, np.uint64)
            win_i = np.empty(topk, np.int64)
            acc = np.empty(dv, np.float64)
            for t in range(c, total, _N_CHUNKS):
                h = t // n_q
                i = t - h * n_q
                nvis = nvis_arr[i]
                kk = min(topk, nvis)
                guess = winners(qw[h, i], kt[h], nvis, kk, guess, dbuf, flags, fw, win_d, win_i)
                acc[:] = 0.0
                d0 = win_d[0]
                total_w = 0.0
                for r in range(kk):
                    j = win_i[r]
                    out_idx[h, i, r] = j
                    wgt = table[win_d[r] - d0]     # exp((score_j - score_0) / T), score_j - score_0 = d0 - d_j
                    total_w += wgt
                    vj = v[h, j]
                    for e in range(dv):
                        acc[e] += wgt * vj[e]
                for r in range(kk, topk):
                    out_idx[h, i, r] = -1
                scale = 1.0 / total_w
                for e in range(dv):
                    out[h, i, e] = acc[e] * scale

    @numba.njit(cache=True, parallel=True, boundscheck=False)
    def majority(qw, kt, vw, topk, nvis_arr, dim, out, out_idx):
        n_h, n_q, _ = qw.shape
        n_k = kt.shape[2]
        n_vw = vw.shape[2]
        total = n_h * n_q
        for c in numba.prange(_N_CHUNKS):
            dbuf = np.empty(n_k, np.uint64)
            fw = np.empty(n_k // 8 + 1, np.uint64)
            flags = fw.view(np.uint8)
            guess = dim // 2
            win_d = np.empty(topk, np.uint64)
            win_i = np.empty(topk, np.int64)
            counts = np.empty(64, np.int64)
            for t in range(c, total, _N_CHUNKS):
                h = t // n_q
                i = t - h * n_q
                nvis = nvis_arr[i]
                kk = min(topk, nvis)
                guess = winners(qw[h, i], kt[h], nvis, kk, guess, dbuf, flags, fw, win_d, win_i)
                for r in range(kk):
                    out_idx[h, i, r] = win_i[r]
                for r in range(kk, topk):
                    out_idx[h, i, r] = -1
                best = win_i[0]
                for w in range(n_vw):
                    counts[:] = 0
                    for r in range(kk):
                        word = vw[h, win_i[r], w]
                        for b in range(64):
                            counts[b] += (word >> np.uint64(b)) & np.uint64(1)
                    tie_word = vw[h, best, w]
                    res = np.uint64(0)
                    for b in range(64):
                        twice = 2 * counts[b]
                        if twice > kk or (twice == kk and (tie_word >> np.uint64(b)) & np.uint64(1)):
                            res |= np.uint64(1) << np.uint64(b)
                    out[h, i, w] = res

    _FUSED.append((select, softmax, majority))
    return _FUSED[0]


def _fused_inputs(qw, kw, n_visible):
    n_q, n_k = qw.shape[1], kw.shape[1]
    kt = np.ascontiguousarray(kw.transpose(0, 2, 1))    # (H, W, Lk): key words streamed per word
    nvis = np.full(n_q, n_k, np.int64) if n_visible is None else n_visible
    return kt, nvis


def _fused_select(qw, kw, topk, n_visible):
    select = _fused()[0]
    kt, nvis = _fused_inputs(qw, kw, n_visible)
    n_h, n_q = qw.shape[:2]
    dist = np.empty((n_h, n_q, topk), np.uint32)
    idx = np.empty((n_h, n_q, topk), np.int64)
    if n_q:
        select(qw, kt, topk, nvis, qw.shape[2] * 64, dist, idx)
    return dist, idx


def _fused_softmax(qw, kw, v, topk, n_visible, dim, temperature):
    softmax = _fused()[1]
    kt, nvis = _fused_inputs(qw, kw, n_visible)
    n_h, n_q = qw.shape[:2]
    out = np.empty((n_h, n_q, v.shape[2]), v.dtype)
    idx = np.empty((n_h, n_q, topk), np.int64)
    if n_q:
        softmax(qw, kt, v, topk, nvis, qw.shape[2] * 64, 1.0 / temperature, out, idx)
    return out, idx


def _fused_majority(qw, kw, vw, topk, n_visible):
    majority = _fused()[2]
    kt, nvis = _fused_inputs(qw, kw, n_visible)
    n_h, n_q = qw.shape[:2]
    out = np.empty((n_h, n_q, vw.shape[2]), np.uint64)
    idx = np.empty((n_h, n_q, topk), np.int64)
    if n_q:
        majority(qw, kt, np.ascontiguousarray(vw), topk, nvis, qw.shape[2] * 64, out, idx)
    return out, idx
