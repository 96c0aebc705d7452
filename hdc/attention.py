"""Packed Hamming k-winner-take-all attention (no torch needed).

Each query code scores every visible key code by ``score = dim - hamming(q, k)`` and keeps only
its ``topk`` best keys; the output mixes the winners' values only. Selection streams over the
keys of one query at a time, so memory is O(L x topk) plus O(L) per thread, never O(L^2).

**Winner order (the tie rule).** Winners are listed highest score first; equal scores are
ordered by the smaller key index. The torch module :class:`hdc.nn.HammingKWTAAttention` selects
with the same rule, so exported models pick identical winners.

**Kernels.** Each backend has its own (``hdc.backend.kernels().kwta_*``): on ``"c"`` a SIMD
scan over transposed keys that keeps only keys nearer than a running bound, then the winners'
mix (csrc/attention.c); on ``"numba"`` a fused distance / selection / mixing kernel; on
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

def _prepare(q, k, topk, causal):
    _check_codes(q, k)
    lead = q.shape[:-1]
    n_q, n_k, w = q.shape[-1], k.shape[-1], q.n_words
    topk = min(check_int(topk, "topk", low=1), n_k)  # no query can have more winners than keys
    n_h = int(np.prod(lead, dtype=np.int64))
    qw = np.ascontiguousarray(q.words.reshape(n_h, n_q, w))
    kw = np.ascontiguousarray(k.words.reshape(n_h, n_k, w))
    n_visible = _visible(n_q, n_k, bool(causal))
    return lead, n_q, n_k, topk, qw, kw, n_visible


def kwta_select(q, k, topk, causal=True):
    """The winners only: ``(scores, indices)`` of each query's ``topk`` best visible keys.

    Shapes: q ``(..., Lq)``, k ``(..., Lk)`` codes -> scores int32 and indices int64
    ``(..., Lq, min(topk, Lk))``; highest score first, ties by smaller key index; slots past the
    visible count hold score -1 and index -1.

    >>> import hdc
    >>> c = hdc.random(5, 128, seed=0)
    >>> s, i = kwta_select(c, c, 2, causal=False)
    >>> i[:, 0].tolist(), s[:, 0].tolist()            # each code is its own best match
    ([0, 1, 2, 3, 4], [128, 128, 128, 128, 128])
    """
    lead, n_q, n_k, topk, qw, kw, n_visible = _prepare(q, k, topk, causal)
    n_h = qw.shape[0]
    dist = np.empty((n_h, n_q, topk), np.uint32)
    idx = np.empty((n_h, n_q, topk), np.int64)
    backend.kernels().kwta_select(qw, kw, topk, n_visible, dist, idx)
    scores = np.where(idx >= 0, q.dim - dist.astype(np.int64), -1).astype(np.int32)
    return scores.reshape(lead + (n_q, topk)), idx.reshape(lead + (n_q, topk))


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
    ``(..., Lq, min(topk, Lk))``, padded with -1 (a ``topk`` above ``Lk`` keeps every visible key).

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
    idx = np.empty((n_h, n_q, topk), np.int64)
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
        out = np.empty((n_h, n_q, v.shape[-1]), out_dtype)
        backend.kernels().kwta_softmax(qw, kw, topk, n_visible, vh, 1.0 / temperature, out, idx)
        out = out.reshape(lead + (n_q, v.shape[-1]))
    else:
        if not isinstance(v, BinaryHV):
            raise TypeError(f"v must be a hdc.BinaryHV (..., Lk) for aggregate='majority', "
                            f"got {type(v).__name__}")
        if v.shape != lead + (n_k,):
            raise ValueError(f"v must have batch shape {lead + (n_k,)}, got {v.shape}")
        vw = np.ascontiguousarray(v.words.reshape(n_h, n_k, v.n_words))
        words = np.empty((n_h, n_q, v.n_words), np.uint64)
        backend.kernels().kwta_majority(qw, kw, topk, n_visible, vw, words, idx)
        out = BinaryHV._wrap(np.ascontiguousarray(words.reshape(lead + (n_q, v.n_words))), v.dim)
    if return_indices:
        return out, idx.reshape(lead + (n_q, topk))
    return out
