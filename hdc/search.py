"""Radius search: every stored hypervector within a Hamming radius of each query.

``hdc.topk`` (k nearest) lives in :mod:`hdc.ops`; :func:`within` is its fixed-radius companion,
in the style of scikit-learn's ``radius_neighbors`` (per-query arrays) or, with ``flat=True``,
faiss's ``range_search`` (``lims, D, I``).
"""
import numpy as np

from . import backend
from ._validate import check_int
from .ops import _as_batch, as_hv, check_same_dim, sparse_aware

# Bytes of the (queries x stored) distance block held at a time: the memory bound of a search.
# 1 MiB keeps the block in L2 between the kernel writing it and the threshold reading it.
_BLOCK_BYTES = 1 << 20
# Queries handled per pass over the memory (bounds the block when there are very many queries).
_QUERY_CHUNK = 1024
_MIN_BLOCK_ROWS = 64


def _block_rows(n_queries, n_memory):
    rows = _BLOCK_BYTES // (4 * max(1, n_queries))
    return max(1, min(n_memory, max(_MIN_BLOCK_ROWS, rows)))


def _matches(rq, rm, radius):
    """(query, index, distance) of every pair with distance <= radius, in (query, index) order."""
    kernels = backend.kernels()
    n_q, n_m = rq.shape[0], rm.shape[0]
    chunk = min(n_q, _QUERY_CHUNK)
    rows = _block_rows(chunk, n_m)
    buf = np.empty(chunk * rows, np.int32)
    hit_buf = np.empty(chunk * rows, bool)
    qs, ids, ds = [], [], []
    for q0 in range(0, n_q, chunk):
        q1 = min(n_q, q0 + chunk)
        q_part = rq[q0:q1]
        hits_q, hits_i, hits_d = [], [], []
        for j in range(0, n_m, rows):
            stop = min(n_m, j + rows)
            size = (q1 - q0) * (stop - j)
            d = buf[:size].reshape(q1 - q0, stop - j)
            kernels.cdist(q_part, rm[j:stop], d)
            if d.min() > radius:  # a fast SIMD pass skips blocks without matches
                continue
            hit = hit_buf[:size].reshape(d.shape)
            np.less_equal(d, radius, out=hit)
            qi, mi = np.nonzero(hit)
            if qi.size:
                hits_q.append(qi)
                hits_i.append(mi + j)
                hits_d.append(d[qi, mi])
        if hits_q:
            q_all = np.concatenate(hits_q)
            # blocks come in index order: a stable sort by query keeps indices ascending per query
            order = np.argsort(q_all, kind="stable")
            qs.append(q_all[order] + q0)
            ids.append(np.concatenate(hits_i)[order])
            ds.append(np.concatenate(hits_d)[order])
    if not qs:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
    return (np.concatenate(qs).astype(np.int64, copy=False), np.concatenate(ids).astype(np.int64, copy=False),
            np.concatenate(ds).astype(np.int32, copy=False))


@sparse_aware
def within(queries, memory, radius, *, flat=False):
    """Every stored vector within Hamming distance ``radius`` (inclusive) of each query.

    Exact on every backend; per query the matches are ordered nearest first, equal distances by
    smaller index (the order of :func:`hdc.topk`). The memory is scanned in blocks with the
    backend's ``cdist`` kernel, so extra memory is one bounded block plus the matches.

    Returns ``(distances, indices)``, like scikit-learn's ``radius_neighbors``:

    - queries a 1-D batch ``(nq,)``: two object arrays of length ``nq``; entry ``i`` holds query
      ``i``'s ``int32`` distances and ``int64`` indices (possibly empty);
    - a single query (batch shape ``()``): two 1-D arrays.

    With ``flat=True`` returns ``(lims, distances, indices)`` like faiss ``range_search``:
    query ``i``'s matches are ``distances[lims[i]:lims[i + 1]]``; ``lims`` is int64 ``(nq + 1,)``
    (a single query counts as a batch of one). Note faiss's binary radius is exclusive
    (``< radius``); here it is inclusive (``<= radius``).

    >>> import hdc
    >>> mem = hdc.random(1000, 256, seed=0)
    >>> d, i = hdc.within(mem[[3, 9]], mem, radius=90)
    >>> int(i[0][0]), int(d[0][0]), int(i[1][0])
    (3, 0, 9)
    >>> lims, d, i = hdc.within(mem[3], mem, radius=0, flat=True)
    >>> lims.tolist(), d.tolist(), i.tolist()
    ([0, 1], [0], [3])
    """
    as_hv(queries, "queries"), as_hv(memory, "memory")
    check_same_dim(queries, memory, "queries", "memory")
    if memory.ndim == 0:
        raise ValueError("memory must be a 1-D batch of hypervectors, got a single hypervector")
    radius = check_int(radius, "radius", low=0)
    rq, rm = _as_batch(queries, "queries"), _as_batch(memory, "memory")
    n_q = rq.shape[0]
    if n_q and rm.shape[0]:
        q_of, idx, dist = _matches(rq, rm, radius)
    else:
        q_of, idx, dist = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
    if dist.size:
        # within a query, order by distance; the stable sort keeps smaller indices first on ties
        order = np.lexsort((dist, q_of))
        idx, dist = idx[order], dist[order]
    lims = np.zeros(n_q + 1, np.int64)
    np.cumsum(np.bincount(q_of, minlength=n_q), out=lims[1:])
    if flat:
        return lims, dist, idx
    if queries.ndim == 0:
        return dist, idx
    out_d = np.empty(n_q, object)
    out_i = np.empty(n_q, object)
    for i in range(n_q):
        out_d[i] = dist[lims[i]:lims[i + 1]]
        out_i[i] = idx[lims[i]:lims[i + 1]]
    return out_d, out_i
