"""The functional core: random, bind, unbind, permute, bundle, popcount, overlap, hamming, similarity,
cdist, topk.

Each function validates its arguments, allocates the output and hands off to the active
backend's kernels (see :mod:`hdc.backend`). All backends give bit-identical results.
Given a :class:`~hdc.SparseHV`, a function hands the call to its sparse form in
:mod:`hdc.sparse_ops`.
"""
import functools
import math

import numpy as np

from . import backend
from ._validate import as_rng, check_dim, check_int, n_words, padding_mask
from .hv import BinaryHV
from .sparse import SparseHV

# More uint64 words than any allocation can hold (2**63 bytes).
_MAX_WORDS = 1 << 60
# Rows gathered at a time when broadcasting elementwise ops, to bound temporary memory.
_GATHER_ROWS = 1 << 14


def sparse_aware(fn):
    """Hand the call to :mod:`hdc.sparse_ops`' function of the same name when an argument is a SparseHV."""
    @functools.wraps(fn)
    def dispatch(*args, **kwargs):
        if any(isinstance(v, SparseHV) for v in args) or any(isinstance(v, SparseHV) for v in kwargs.values()):
            from . import sparse_ops
            return getattr(sparse_ops, fn.__name__)(*args, **kwargs)
        return fn(*args, **kwargs)
    return dispatch


def as_hv(x, name):
    """``x`` if it is a BinaryHV, else a TypeError naming the argument."""
    if not isinstance(x, BinaryHV):
        hint = ""
        if isinstance(x, (list, tuple)) and x and all(isinstance(i, BinaryHV) for i in x):
            hint = f"; to make one batch of the {len(x)} hypervectors use hdc.BinaryHV.stack({name})"
        elif type(x).__module__.split(".")[0] in ("torch", "torchhd"):
            hint = f"; convert a torch/torchhd tensor with hdc.BinaryHV.from_torchhd({name})"
        elif isinstance(x, np.ndarray):
            hint = f"; pack 0/1 arrays with hdc.BinaryHV.from_bool({name})"
        raise TypeError(f"{name} must be a hdc.BinaryHV, got {type(x).__name__}{hint}")
    return x


def check_same_dim(a, b, name_a="a", name_b="b"):
    if a.dim != b.dim:
        raise ValueError(f"{name_a} and {name_b} must have the same dim, got {a.dim} and {b.dim}")


def _rows(words):
    """A 2-D (rows, n_words) view of a contiguous word array."""
    return words.reshape(-1, words.shape[-1])


def _as_batch(x, name):
    """Words as (rows, n_words); a single hypervector counts as one row. Batches must be 1-D."""
    if x.ndim > 1:
        raise ValueError(f"{name} must be a 1-D batch of hypervectors, got batch shape {x.shape}")
    return _rows(x.words)


def random(n, dim, seed=None):
    """I.i.d. fair random hypervectors, reproducible for a seed on every backend and machine.

    Shapes: ``n`` an int or a shape tuple -> BinaryHV of batch shape ``(n,)`` or ``n``.

    >>> import hdc
    >>> hdc.random(3, 10_000, seed=0).shape
    (3,)
    """
    dim = check_dim(dim)
    shape = (check_int(n, "n", low=0),) if not isinstance(n, tuple) else tuple(
        check_int(s, "n", low=0) for s in n)
    rng = as_rng(seed)
    count = math.prod(shape) * n_words(dim)   # exact: a product past int64 must not wrap
    if count > _MAX_WORDS:
        raise ValueError(f"n={n!r} hypervectors of dim {dim} need {count} words, more than can be allocated")
    # random_raw is the bit generator's stream itself: stable across NumPy versions and machines
    words = rng.bit_generator.random_raw(count).astype(np.uint64, copy=False).reshape(shape + (n_words(dim),))
    if dim % 64:
        words[..., -1] &= padding_mask(dim)
    return BinaryHV._wrap(np.ascontiguousarray(words), dim)


def _broadcast_pairs(a, b, kernel, out_dtype, words_out):
    """Apply a row kernel to broadcast pairs of rows of ``a`` and ``b``.

    Equal batch shapes go straight to the kernel; otherwise rows are gathered in bounded chunks.
    ``words_out``: True when the kernel writes words (bind), False when one value per row.
    """
    shape = np.broadcast_shapes(a.shape, b.shape)
    w = a.n_words
    tail = (w,) if words_out else ()
    out = np.empty(shape + tail, out_dtype)
    if a.shape == b.shape:
        kernel(_rows(a.words), _rows(b.words), out.reshape((-1,) + tail))
        return out
    ia = np.broadcast_to(np.arange(int(np.prod(a.shape)), dtype=np.intp).reshape(a.shape), shape).ravel()
    ib = np.broadcast_to(np.arange(int(np.prod(b.shape)), dtype=np.intp).reshape(b.shape), shape).ravel()
    ra, rb, flat = _rows(a.words), _rows(b.words), out.reshape((-1,) + tail)
    for start in range(0, ia.size, _GATHER_ROWS):
        stop = min(ia.size, start + _GATHER_ROWS)
        chunk = np.empty((stop - start,) + tail, out_dtype)
        kernel(ra[ia[start:stop]], rb[ib[start:stop]], chunk)
        flat[start:stop] = chunk
    return out


@sparse_aware
def bind(a, b):
    """XOR binding with broadcasting over batch shapes; self-inverse.

    Shapes: ``a (*A, w)``, ``b (*B, w)`` -> ``broadcast(A, B)``.

    >>> import hdc
    >>> x, y = hdc.random(2, 1000, seed=1)
    >>> bool(hdc.bind(hdc.bind(x, y), y) == x)
    True
    """
    as_hv(a, "a"), as_hv(b, "b")
    check_same_dim(a, b)
    kernels = backend.kernels()

    def row_bind(x, y, out):
        kernels.bind(x.reshape(-1), y.reshape(-1), out.reshape(-1))

    return BinaryHV._wrap(_broadcast_pairs(a, b, row_bind, np.uint64, True), a.dim)


@sparse_aware
def unbind(a, b):
    """The inverse of :func:`bind`: for ``BinaryHV`` it is ``bind`` itself (XOR is self-inverse);
    for ``SparseHV`` blockwise ``(a - b) mod block_size``.

    >>> import hdc
    >>> x, y = hdc.random(2, 1000, seed=1)
    >>> bool(hdc.unbind(hdc.bind(x, y), y) == x)
    True
    """
    return bind(a, b)


@sparse_aware
def permute(x, shifts=1):
    """Cyclic rotation over the ``dim`` elements: ``out[(i + shifts) % dim] = x[i]``.

    The same as ``torch.roll(bits, shifts, -1)`` and torchhd's BSC ``permute``.

    >>> import hdc
    >>> x = hdc.BinaryHV.from_bool([1, 0, 0, 0, 0])
    >>> hdc.permute(x, 2).to_bool().astype(int).tolist()
    [0, 0, 1, 0, 0]
    """
    as_hv(x, "x")
    shift = check_int(shifts, "shifts") % x.dim
    if shift == 0:
        return x.copy()
    out = np.empty_like(x.words)
    backend.kernels().permute(_rows(x.words), x.dim, shift, _rows(out))
    return BinaryHV._wrap(out, x.dim)


def popcount(x):
    """Number of ones in each hypervector, int32 of the batch shape."""
    as_hv(x, "x")
    out = np.empty(x.shape, np.int32)
    backend.kernels().popcount(_rows(x.words), out.reshape(-1))
    return out


@sparse_aware
def overlap(a, b):
    """Active elements in common, int32 of the broadcast batch shape: ``popcount(a & b)`` for
    ``BinaryHV``, the number of equal blocks for ``SparseHV``.

    >>> import hdc
    >>> a, b = hdc.BinaryHV.from_bool([1, 1, 0, 1]), hdc.BinaryHV.from_bool([1, 0, 0, 1])
    >>> int(hdc.overlap(a, b))
    2
    """
    as_hv(a, "a"), as_hv(b, "b")
    check_same_dim(a, b)
    # |a & b| = (|a| + |b| - |a ^ b|) / 2, from the popcount and hamming kernels
    ones = popcount(a).astype(np.int64) + popcount(b).astype(np.int64)
    return ((ones - hamming(a, b)) // 2).astype(np.int32)


@sparse_aware
def hamming(a, b):
    """Hamming distance with broadcasting over batch shapes, int32 of the broadcast shape.

    For all pairs of two batches use :func:`cdist`.
    """
    as_hv(a, "a"), as_hv(b, "b")
    check_same_dim(a, b)
    kernels = backend.kernels()
    if a.ndim == 0 and b.ndim == 1 or b.ndim == 0 and a.ndim == 1:
        single, many = (a, b) if a.ndim == 0 else (b, a)
        out = np.empty((1, len(many)), np.int32)
        kernels.cdist(_rows(single.words), many.words, out)
        return out[0]
    return _broadcast_pairs(a, b, kernels.hamming, np.int32, False)


@sparse_aware
def similarity(a, b):
    """``1 - 2 * hamming / dim`` in [-1, 1] (float64), broadcasting like :func:`hamming`."""
    return 1.0 - 2.0 * hamming(a, b).astype(np.float64) / a.dim


@sparse_aware
def cdist(a, b):
    """Hamming distances of all pairs, int32 ``(len(a), len(b))``, computed in blocks.

    A single hypervector counts as a batch of one. Never materialises ``(len(a), len(b), dim)``.

    >>> import hdc
    >>> q, m = hdc.random(2, 256, seed=0), hdc.random(5, 256, seed=1)
    >>> hdc.cdist(q, m).shape
    (2, 5)
    """
    as_hv(a, "a"), as_hv(b, "b")
    check_same_dim(a, b)
    ra, rb = _as_batch(a, "a"), _as_batch(b, "b")
    out = np.empty((ra.shape[0], rb.shape[0]), np.int32)
    if out.size:
        backend.kernels().cdist(ra, rb, out)
    return out


@sparse_aware
def topk(queries, memory, k):
    """The ``k`` stored vectors nearest each query: ``(distances int32, indices int64)``.

    Shapes: queries ``(nq,)``, memory ``(n,)`` -> ``(nq, k)`` each, nearest first, equal distances
    ordered by smaller index. A single query gives ``(k,)`` arrays. ``1 <= k <= len(memory)``.

    >>> import hdc
    >>> mem = hdc.random(100, 1024, seed=0)
    >>> d, i = hdc.topk(mem[[7, 42]], mem, k=3)
    >>> i[:, 0].tolist(), d[:, 0].tolist()
    ([7, 42], [0, 0])
    """
    as_hv(queries, "queries"), as_hv(memory, "memory")
    check_same_dim(queries, memory, "queries", "memory")
    rq, rm = _as_batch(queries, "queries"), _as_batch(memory, "memory")
    if memory.ndim == 0:
        raise ValueError("memory must be a 1-D batch of hypervectors, got a single hypervector")
    if rm.shape[0] == 0:
        raise ValueError("memory is empty; topk needs at least one stored vector")
    k = check_int(k, "k", low=1, high=rm.shape[0])
    dist = np.empty((rq.shape[0], k), np.int32)
    idx = np.empty((rq.shape[0], k), np.int64)
    if rq.shape[0]:
        backend.kernels().topk(rq, rm, k, None, dist, idx)
    if queries.ndim == 0:
        return dist[0], idx[0]
    return dist, idx


def _tie_words(tie, seed, dim, rest_shape):
    """The tie-breaking words for bundle: broadcast to ``rest_shape + (n_words,)``."""
    w = n_words(dim)
    if tie is None:
        words = random(1, dim, seed).words[0]
    elif isinstance(tie, BinaryHV):
        if tie.dim != dim:
            raise ValueError(f"tie must have dim {dim}, got {tie.dim}")
        words = tie.words
    elif isinstance(tie, (bool, np.bool_, int, np.integer)) and int(tie) in (0, 1):
        words = np.full(w, ~np.uint64(0) if int(tie) else 0, np.uint64)
        words[-1] &= padding_mask(dim)
    else:
        raise ValueError(f"tie must be None, 0, 1 or a BinaryHV, got {tie!r}")
    try:
        return np.ascontiguousarray(np.broadcast_to(words, rest_shape + (w,)))
    except ValueError:
        raise ValueError(f"tie has batch shape {words.shape[:-1]}, which does not broadcast to "
                         f"{rest_shape}") from None


# Weighted counts are compared as ``2 * count`` against the total, so totals stay below 2**62.
WEIGHT_TOTAL_LIMIT = 1 << 62


def _check_weights(weights, n, already=0):
    """Weights as int64 when all are integers (with an exact total below 2**62), else float64;
    non-negative and finite.

    Refuses weights whose total (plus ``already``, a running total) could overflow the exact
    int64 counts (``>= 2**62``) or, for float weights, is not a finite float with room to double.
    """
    w = np.asarray(weights)
    if w.dtype == object or not (w.dtype == bool or np.issubdtype(w.dtype, np.number)):
        raise TypeError(f"weights must be numeric, got dtype {w.dtype}")
    if np.iscomplexobj(w):
        raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per bundled vector), got {w.shape}")
    if np.issubdtype(w.dtype, np.floating):
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite (no NaN or infinity)")
        # integral floats count exactly (a float of 2**53 or more is always an integer, and
        # summing such floats in float64 rounds), as long as the exact total fits the int64 counts
        if np.all(w == np.round(w)) and np.all(np.abs(w) < 2 ** 62):
            as_int = w.astype(np.int64)
            if sum(int(v) for v in as_int.tolist()) + already < WEIGHT_TOTAL_LIMIT:
                w = as_int
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    if not np.any(w > 0):
        raise ValueError("weights must have a positive sum")
    if np.issubdtype(w.dtype, np.floating):
        with np.errstate(over="ignore"):
            total = float(np.sum(w, dtype=np.float64))
        if not np.isfinite(2.0 * (total + already)):
            raise ValueError(f"weights are too large: their sum must be finite with room to double, "
                             f"got {total!r}")
        return w
    total = sum(int(v) for v in w.tolist()) + already  # exact, whatever the dtype
    if total >= WEIGHT_TOTAL_LIMIT:
        raise ValueError(f"weights are too large: the total weight must stay below 2**62 (exact int64 "
                         f"counts), got {total}")
    return w.astype(np.int64)


def majority_from_counts(counts, total, tie_words, dim):
    """Pack ``2 * counts > total`` (tie bits where equal) into words; counts ``(..., dim)``."""
    twice = 2 * counts
    ties = np.unpackbits(tie_words.astype("<u8").view(np.uint8), axis=-1, count=dim,
                         bitorder="little").astype(bool)
    bits = (twice > total) | ((twice == total) & ties)
    return BinaryHV.from_packed(np.packbits(bits, axis=-1, bitorder="little"), dim).words


@sparse_aware
def bundle(x, weights=None, tie=None, seed=None):
    """Elementwise (weighted) majority over the first batch axis.

    Element ``i`` is 1 when the weighted count of ones exceeds half the weighted total, 0 when
    below; ties take the bit of ``tie``: None (a random hypervector from ``seed``), 0, 1, or a
    BinaryHV broadcasting to the remaining batch shape.

    Shapes: ``x (n, *rest)`` -> ``(*rest)``; ``weights (n,)`` non-negative.

    >>> import hdc
    >>> xs = hdc.random(11, 10_000, seed=0)
    >>> m = hdc.bundle(xs)
    >>> bool((hdc.similarity(m, xs) > 0.1).all())
    True
    """
    as_hv(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have a batch axis to bundle over, got a single hypervector")
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty; bundle needs at least one hypervector")
    rest = x.shape[1:]
    w = x.n_words
    rows = x.words.reshape(n, -1)
    if weights is None:
        # an odd count can never tie, so no tie vector needs drawing
        ties = np.zeros(rows.shape[1], np.uint64) if n % 2 and tie is None else _tie_words(tie, seed, x.dim, rest).reshape(-1)
        out = np.empty(rest + (w,), np.uint64)
        backend.kernels().bundle(rows, ties, out.reshape(-1))
        return BinaryHV._wrap(out, x.dim)
    weights = _check_weights(weights, n)
    ties = _tie_words(tie, seed, x.dim, rest)
    if weights.dtype == np.int64:
        counts = np.zeros(rows.shape[1] * 64, np.int64)
        backend.kernels().column_counts(rows, weights, counts)
        total = int(weights.sum())
    else:
        # float weights: one shared NumPy path, so every backend agrees to the bit
        counts = np.zeros(rows.shape[1] * 64, np.float64)
        bits = np.unpackbits(rows.astype("<u8").view(np.uint8), axis=-1, bitorder="little")
        counts += weights @ bits
        total = float(weights.sum())
    counts = counts.reshape(rest + (w * 64,))[..., :x.dim]
    return BinaryHV._wrap(majority_from_counts(counts, total, ties, x.dim), x.dim)
