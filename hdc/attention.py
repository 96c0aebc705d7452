"""Packed Hamming k-winner-take-all attention (no torch needed).

Each query code scores every visible key code by ``score = dim - hamming(q, k)`` and keeps only
its ``topk`` best keys; the output mixes the winners' values only. Selection streams over the
keys of one query at a time, so memory is O(L x topk) plus O(L) per thread, never O(L^2).

**Winner order (the tie rule).** Winners are listed highest score first; equal scores are
ordered by the smaller key index. The torch module :class:`hdc.nn.HammingKWTAAttention` selects
with the same rule, so exported models pick identical winners.

**Kernels.** Each backend has its own (``hdc.backend.kernels().kwta_*``): on ``"c"`` a SIMD
scan over transposed keys that keeps only keys nearer than a running bound, then the winners'
mix (csrc/kwta/kwta.c); on ``"numba"`` a fused distance / selection / mixing kernel; on
``"numpy"`` the readable reference (backend ``topk`` plus vectorised mixing). All three give the
same winners and the same output bits (softmax weights are summed in float64 in winner order);
``hdc.set_num_threads`` sets the threads.

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
from .sparse import SparseHV

__all__ = ["kwta_attention", "kwta_select"]

_AGGREGATES = ("softmax", "majority")


# ---- validation --------------------------------------------------------------------------------

def _is_sparse(x):
    return isinstance(x, SparseHV)


def _check_codes(q, k):
    if _is_sparse(q) != _is_sparse(k):
        raise TypeError(f"q and k must be codes of the same kind (both BinaryHV or both "
                        f"SparseHV), got q {type(q).__name__} and k {type(k).__name__}")
    if _is_sparse(q):
        return _check_sparse_codes(q, k)
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


def _check_sparse_codes(q, k):
    for name, x in (("q", q), ("k", k)):
        if x.indices.ndim < 2:
            raise ValueError(f"{name} must have batch shape (..., L), got a single hypervector")
    if q.block_size != k.block_size:
        raise ValueError(f"q and k must have the same block_size, got {q.block_size} and "
                         f"{k.block_size}")
    if q.indices.shape[-1] != k.indices.shape[-1]:
        raise ValueError(f"q and k must have the same number of blocks, got "
                         f"{q.indices.shape[-1]} and {k.indices.shape[-1]}")
    if q.indices.shape[:-2] != k.indices.shape[:-2]:
        raise ValueError(f"q and k must have the same leading (head/batch) axes, got "
                         f"{q.indices.shape[:-2]} and {k.indices.shape[:-2]}")
    if k.indices.shape[-2] == 0:
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

class _Codes:
    """Validated q/k as kernel arrays: (H, L, W) uint64 words, or (H, L, B) uint32 indices."""

    def __init__(self, q, k, topk, causal):
        _check_codes(q, k)
        self.topk = check_int(topk, "topk", low=1)
        self.sparse = _is_sparse(q)
        if self.sparse:
            qa, ka = q.indices, k.indices
            self.block_size = q.block_size
            self.max_score = qa.shape[-1]
            if self.topk > ka.shape[-2]:
                raise ValueError(f"topk must be <= the number of keys ({ka.shape[-2]}) for sparse "
                                 f"codes, got {self.topk}")
        else:
            qa, ka = q.words, k.words
            self.max_score = q.dim
        self.lead = qa.shape[:-2]
        self.n_q, self.n_k = qa.shape[-2], ka.shape[-2]
        dtype = np.uint32 if self.sparse else np.uint64
        self.q = np.ascontiguousarray(qa.reshape(-1, self.n_q, qa.shape[-1]), dtype=dtype)
        self.k = np.ascontiguousarray(ka.reshape(-1, self.n_k, ka.shape[-1]), dtype=dtype)
        self.n_h = self.q.shape[0]
        self.n_visible = _visible(self.n_q, self.n_k, bool(causal))

    def out_shape(self, last):
        return self.lead + (self.n_q, last)

    def run(self, mode, *args):
        """Call kernel ``mode`` ('select', 'softmax' or 'majority') of the active backend.

        Returns the number of query-key pairs touched: for sparse codes the kernel's count, for
        dense codes every visible pair (the scan scores them all)."""
        if self.sparse:
            return getattr(backend.kernels(), "kwta_sparse_" + mode)(
                self.q, self.k, self.block_size, self.topk, self.n_visible, *args)
        getattr(backend.kernels(), "kwta_" + mode)(self.q, self.k, self.topk, self.n_visible,
                                                    *args)
        per_head = self.n_q * self.n_k if self.n_visible is None else int(self.n_visible.sum())
        return self.n_h * per_head


def kwta_select(q, k, topk, causal=True, return_touched=False):
    """The winners only: ``(scores, indices)`` of each query's ``topk`` best visible keys.

    Shapes: q ``(..., Lq)``, k ``(..., Lk)`` codes -> scores int32 and indices int64
    ``(..., Lq, topk)``; highest score first, ties by smaller key index; empty slots (fewer
    visible keys, or for sparse codes fewer keys with overlap >= 1) hold score -1 and index -1.
    With ``return_touched=True`` also returns the number of query-key pairs touched.

    >>> import hdc
    >>> c = hdc.random(5, 128, seed=0)
    >>> s, i = kwta_select(c, c, 2, causal=False)
    >>> i[:, 0].tolist(), s[:, 0].tolist()            # each code is its own best match
    ([0, 1, 2, 3, 4], [128, 128, 128, 128, 128])
    """
    c = _Codes(q, k, topk, causal)
    idx = np.empty((c.n_h, c.n_q, c.topk), np.int64)
    if c.sparse:
        scores = np.empty((c.n_h, c.n_q, c.topk), np.int32)
        touched = c.run("select", scores, idx)
    else:
        dist = np.empty((c.n_h, c.n_q, c.topk), np.int32)
        touched = c.run("select", dist, idx)
        scores = np.where(idx >= 0, c.max_score - dist.astype(np.int64), -1).astype(np.int32)
    result = scores.reshape(c.out_shape(c.topk)), idx.reshape(c.out_shape(c.topk))
    return result + (touched,) if return_touched else result


def kwta_attention(q, k, v, topk, causal=True, aggregate="softmax", temperature=1.0,
                   return_indices=False, return_touched=False):
    """Hamming k-WTA attention on packed dense or sparse block codes.

    Dense codes (``BinaryHV``): ``score[i, j] = dim - hamming(q_i, k_j)``. Sparse block codes
    (``SparseHV``): ``score[i, j] = overlap(q_i, k_j)``, the number of equal blocks, and a key
    with overlap 0 never wins, so a query may get fewer than ``topk`` winners. Query ``i`` sees
    keys ``j <= i + Lk - Lq`` when ``causal`` (so ``Lq < Lk`` is a query block at the end of a key
    cache) and every key otherwise; it keeps its ``topk`` best visible keys (fewer when fewer are
    visible), highest score first, ties by smaller key index.

    - ``aggregate="softmax"``: ``out_i = sum_w softmax(score / temperature)_w v_w`` over the
      winners only; ``v`` is a float array ``(..., Lk, dv)``; the output is ``(..., Lq, dv)``
      (float64 for float64 values, else float32); a query with no winner gets zeros.
    - ``aggregate="majority"``: ``v`` is a BinaryHV ``(..., Lk)``; the output is the BinaryHV
      ``(..., Lq)`` elementwise majority of the winners' values. With an even number of winners,
      a tied element takes the bit of the best winner's value; no winner: all zeros.

    ``topk`` larger than the number of keys is an error for sparse codes; dense codes accept it
    (every visible key wins), as the dense contract always has. With sparse codes the C and
    Numba kernels are event-driven: an inverted index over the keys' ``(block, index)`` pairs
    means a query only visits keys that share a block with it.

    Shapes: q ``(..., Lq)``, k ``(..., Lk)`` codes of one kind with the same leading (head/batch)
    axes and dim (and block size). With ``return_indices=True`` also returns the winners, int64
    ``(..., Lq, topk)``, padded with -1; with ``return_touched=True`` also (last) the number of
    query-key pairs the kernel touched (every visible pair for dense codes).

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
    c = _Codes(q, k, topk, causal)
    n_h, n_k, lead = c.n_h, c.n_k, c.lead
    idx = np.empty((n_h, c.n_q, c.topk), np.int64)
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
        out = np.empty((n_h, c.n_q, v.shape[-1]), out_dtype)
        touched = c.run("softmax", vh, 1.0 / temperature, out, idx)
        out = out.reshape(c.out_shape(v.shape[-1]))
    else:
        if not isinstance(v, BinaryHV):
            raise TypeError(f"v must be a hdc.BinaryHV (..., Lk) for aggregate='majority', "
                            f"got {type(v).__name__}")
        if v.shape != lead + (n_k,):
            raise ValueError(f"v must have batch shape {lead + (n_k,)}, got {v.shape}")
        vw = np.ascontiguousarray(v.words.reshape(n_h, n_k, v.n_words))
        words = np.empty((n_h, c.n_q, v.n_words), np.uint64)
        touched = c.run("majority", vw, words, idx)
        out = BinaryHV._wrap(np.ascontiguousarray(words.reshape(c.out_shape(v.n_words))), v.dim)
    result = (out,)
    if return_indices:
        result += (idx.reshape(c.out_shape(c.topk)),)
    if return_touched:
        result += (touched,)
    return result[0] if len(result) == 1 else result
