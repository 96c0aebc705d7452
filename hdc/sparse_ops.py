"""The functional API on :class:`~hdc.SparseHV`: what ``hdc.bind`` & co. do for sparse block codes.

``hdc.bind``, ``unbind``, ``permute``, ``overlap``, ``similarity``, ``hamming``, ``cdist``,
``topk``, ``within`` and ``bundle`` hand a ``SparseHV`` argument to the function of the same name
here. Semantics (blocks ``K``, block size ``L``):

- ``bind``: ``(a + b) mod L`` per block; ``unbind``: ``(a - b) mod L``; ``permute``: rolls blocks.
- ``overlap``: number of equal blocks; ``similarity = overlap / K``; ``hamming`` / ``cdist``: the
  Hamming distance of the dense expansions, ``2 * (K - overlap)`` (int32).
- ``topk`` / ``within``: highest overlap first, equal overlaps by smaller index.
- ``bundle``: per block the weighted most frequent index; ties broken by ``tie`` / ``seed``.
"""
import numpy as np

from ._kernels.sparse import numpy_ref as sparse_reference
from .backend import kernels
from ._validate import check_int
from .hv import BinaryHV
from .ops import _check_weights
from .sparse import SparseHV, random_sparse

# Rows gathered at a time when broadcasting, to bound temporary memory.
_GATHER_ROWS = 1 << 14
# Bytes of the (queries, rows) overlap block held at a time by ``within``.
_WITHIN_BLOCK_BYTES = 1 << 22
_WIDER = {np.dtype(np.uint8): np.uint16, np.dtype(np.uint16): np.uint32, np.dtype(np.uint32): np.uint64}


def _describe(x):
    if isinstance(x, SparseHV):
        return f"a SparseHV (blocks={x.blocks}, block_size={x.block_size})"
    if isinstance(x, BinaryHV):
        return f"a BinaryHV (dim={x.dim})"
    return f"a {type(x).__name__}"


def check_sparse(x, name):
    if not isinstance(x, SparseHV):
        raise TypeError(f"{name} must be a hdc.SparseHV, got {_describe(x)}")
    return x


def check_pair(a, b, name_a="a", name_b="b"):
    """Both SparseHV of one ``blocks`` and ``block_size``; the error names both otherwise."""
    if not (isinstance(a, SparseHV) and isinstance(b, SparseHV)):
        raise TypeError(f"{name_a} and {name_b} must be the same kind of hypervector: {name_a} is {_describe(a)}, "
                        f"{name_b} is {_describe(b)} (convert with SparseHV.to_dense / SparseHV.from_dense)")
    if (a.blocks, a.block_size) != (b.blocks, b.block_size):
        raise ValueError(f"{name_a} and {name_b} must have the same blocks and block_size: {name_a} is {_describe(a)}, "
                         f"{name_b} is {_describe(b)}")


def _rows(x):
    return x.indices.reshape(-1, x.blocks)


def _as_batch(x, name):
    if x.ndim > 1:
        raise ValueError(f"{name} must be a 1-D batch of hypervectors, got batch shape {x.shape}")
    return _rows(x)


def _broadcast_indices(a, b):
    """``a.indices`` and ``b.indices`` broadcast to one batch shape (views, not copies)."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    return np.broadcast_to(a.indices, shape + (a.blocks,)), np.broadcast_to(b.indices, shape + (b.blocks,))


def bind(a, b):
    """Blockwise ``(a + b) mod block_size``, broadcasting over batch shapes."""
    check_pair(a, b)
    x, y = _broadcast_indices(a, b)
    total = np.add(x, y, dtype=_WIDER[x.dtype])
    np.subtract(total, a.block_size, out=total, where=total >= a.block_size)
    return SparseHV._wrap(total.astype(x.dtype), a.block_size)


def unbind(a, b):
    """Blockwise ``(a - b) mod block_size``: ``unbind(bind(x, y), y) == x``."""
    check_pair(a, b)
    x, y = _broadcast_indices(a, b)
    diff = np.add(x, a.block_size, dtype=_WIDER[x.dtype])
    diff -= y
    np.subtract(diff, a.block_size, out=diff, where=diff >= a.block_size)
    return SparseHV._wrap(diff.astype(x.dtype), a.block_size)


def permute(x, shifts=1):
    """Rolls the blocks: ``out[..., (j + shifts) % blocks] = x[..., j]`` (as torchhd BSBC)."""
    check_sparse(x, "x")
    shift = check_int(shifts, "shifts") % x.blocks
    return SparseHV._wrap(np.ascontiguousarray(np.roll(x.indices, shift, axis=-1)), x.block_size)


def overlap(a, b):
    """Number of equal blocks, int32 of the broadcast batch shape."""
    check_pair(a, b)
    k = kernels()
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = np.empty(shape, np.int32)
    if a.shape == b.shape:
        k.sparse_overlap(_rows(a), _rows(b), out.reshape(-1))
    elif a.ndim == 0 or b.ndim == 0:
        single, many = (a, b) if a.ndim == 0 else (b, a)
        k.sparse_cdist(_rows(single), _rows(many.reshape(-1)), out.reshape(1, -1))
    else:
        x, y = _broadcast_indices(a, b)
        x, y, flat = x.reshape(-1, a.blocks), y.reshape(-1, a.blocks), out.reshape(-1)
        for start in range(0, flat.size, _GATHER_ROWS):
            stop = min(flat.size, start + _GATHER_ROWS)
            k.sparse_overlap(np.ascontiguousarray(x[start:stop]), np.ascontiguousarray(y[start:stop]), flat[start:stop])
    return out


def hamming(a, b):
    """Hamming distance of the dense expansions, ``2 * (blocks - overlap)``, int32."""
    ov = overlap(a, b)
    return (2 * (a.blocks - ov)).astype(np.int32)


def similarity(a, b):
    """``overlap / blocks`` in [0, 1] (float64): torchhd BSBC's cosine similarity."""
    return overlap(a, b) / float(a.blocks)


def cdist(a, b):
    """Hamming distances of all pairs, int32 ``(len(a), len(b))``; a single vector is a batch of one."""
    check_pair(a, b)
    ra, rb = _as_batch(a, "a"), _as_batch(b, "b")
    out = np.empty((ra.shape[0], rb.shape[0]), np.int32)
    if out.size:
        kernels().sparse_cdist(ra, rb, out)
    return (2 * (a.blocks - out)).astype(np.int32, copy=False)


def topk(queries, memory, k):
    """The ``k`` stored codes of highest overlap with each query: ``(distances int32, indices int64)``.

    Distances are ``2 * (blocks - overlap)``; equal overlaps are ordered by smaller index.
    """
    check_pair(queries, memory, "queries", "memory")
    rq = _as_batch(queries, "queries")
    if memory.ndim != 1:
        raise ValueError(f"memory must be a 1-D batch of hypervectors, got batch shape {memory.shape}")
    rm = _rows(memory)
    if rm.shape[0] == 0:
        raise ValueError("memory is empty; topk needs at least one stored vector")
    k = check_int(k, "k", low=1, high=rm.shape[0])
    ov = np.empty((rq.shape[0], k), np.int32)
    idx = np.empty((rq.shape[0], k), np.int64)
    if rq.shape[0]:
        kernels().sparse_topk(rq, rm, k, ov, idx)
    dist = (2 * (memory.blocks - ov)).astype(np.int32, copy=False)
    if queries.ndim == 0:
        return dist[0], idx[0]
    return dist, idx


def within(queries, memory, radius, *, flat=False):
    """Every stored code within Hamming distance ``radius`` of each query (see :func:`hdc.within`)."""
    check_pair(queries, memory, "queries", "memory")
    if memory.ndim != 1:
        raise ValueError(f"memory must be a 1-D batch of hypervectors, got batch shape {memory.shape}")
    radius = check_int(radius, "radius", low=0)
    rq, rm = _as_batch(queries, "queries"), _rows(memory)
    # distance 2 * (K - ov) <= radius  <=>  ov >= K - radius // 2
    need = memory.blocks - radius // 2
    k = kernels()
    rows = max(1, min(rm.shape[0], _WITHIN_BLOCK_BYTES // (4 * max(1, rq.shape[0]))))
    qs, ids, ovs = [], [], []
    for j in range(0, rm.shape[0] if rq.shape[0] else 0, rows):
        stop = min(rm.shape[0], j + rows)
        ov = np.empty((rq.shape[0], stop - j), np.int32)
        k.sparse_cdist(rq, rm[j:stop], ov)
        qi, mi = np.nonzero(ov >= need)
        qs.append(qi)
        ids.append(mi + j)
        ovs.append(ov[qi, mi])
    q_of = np.concatenate(qs).astype(np.int64) if qs else np.empty(0, np.int64)
    idx = np.concatenate(ids).astype(np.int64) if ids else np.empty(0, np.int64)
    ov = np.concatenate(ovs) if ovs else np.empty(0, np.int32)
    # per query: highest overlap first, equal overlaps by smaller index
    order = np.lexsort((idx, -ov.astype(np.int64), q_of))
    q_of, idx, dist = q_of[order], idx[order], (2 * (memory.blocks - ov[order])).astype(np.int32)
    n_q = rq.shape[0]
    lims = np.zeros(n_q + 1, np.int64)
    np.cumsum(np.bincount(q_of, minlength=n_q), out=lims[1:])
    if flat:
        return lims, dist, idx
    if queries.ndim == 0:
        return dist, idx
    out_d, out_i = np.empty(n_q, object), np.empty(n_q, object)
    for i in range(n_q):
        out_d[i], out_i[i] = dist[lims[i]:lims[i + 1]], idx[lims[i]:lims[i + 1]]
    return out_d, out_i


def tie_indices(tie, seed, blocks, block_size, rest_shape):
    """The tie-breaking indices of a sparse bundle, ``rest_shape + (blocks,)``."""
    if tie is None:
        indices = random_sparse(1, blocks, block_size, seed).indices[0]
    elif isinstance(tie, SparseHV):
        if (tie.blocks, tie.block_size) != (blocks, block_size):
            raise ValueError(f"tie must have blocks={blocks}, block_size={block_size}, got {_describe(tie)}")
        indices = tie.indices
    else:
        raise TypeError(f"tie must be None or a SparseHV for a sparse bundle, got {_describe(tie)}")
    try:
        return np.ascontiguousarray(np.broadcast_to(indices, rest_shape + (blocks,)))
    except ValueError:
        raise ValueError(f"tie has batch shape {indices.shape[:-1]}, which does not broadcast to {rest_shape}") from None


def bundle(x, weights=None, tie=None, seed=None):
    """Per block the weighted most frequent index over the first batch axis.

    Ties (several indices with the highest count) go to ``tie``'s index when it is among them,
    else to the first of them counting up from it modulo ``block_size``; ``tie=None`` draws the tie
    vector from ``seed``. Weights: non-negative ints or floats, one per bundled vector.
    """
    check_sparse(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have a batch axis to bundle over, got a single hypervector")
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty; bundle needs at least one hypervector")
    rest = x.shape[1:]
    w = None if weights is None else _check_weights(weights, n)
    ties = tie_indices(tie, seed, x.blocks, x.block_size, rest).reshape(-1)
    columns = x.indices.reshape(n, -1)
    out = np.empty(rest + (x.blocks,), x.indices.dtype)
    if w is not None and w.dtype != np.int64:
        # float weights: one shared NumPy path, so every backend agrees to the bit
        sparse_reference.sparse_bundle(columns, x.block_size, w, ties, out.reshape(-1))
    else:
        kernels().sparse_bundle(columns, x.block_size, w, ties, out.reshape(-1))
    return SparseHV._wrap(out, x.block_size)
