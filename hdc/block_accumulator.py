"""``BlockAccumulator``: exact per-block index counts of sparse block codes."""
import numpy as np

from ._validate import check_int
from .ops import WEIGHT_TOTAL_LIMIT, _check_weights
from .sparse import MAX_BLOCKS, MAX_DENSE_DIM, SparseHV, check_block_size, index_dtype
from .backend import kernels
from .sparse_ops import check_sparse, tie_indices


class BlockAccumulator:
    """Running counts of the index chosen in each block by every added sparse code.

    ``counts[b, l]`` is the total weight of the added codes whose block ``b`` is ``l``. The
    thinned read-out :meth:`majority` keeps the most frequent index per block (the sparse bundle);
    :meth:`similarity` reads the counts themselves, which keeps the capacity that thinning to one
    index per block throws away; :meth:`unbind` unbinds a key from the whole trace exactly.

    Shapes: ``counts`` is ``(blocks, block_size)`` int64; ``add(x)`` takes a single code or a
    1-D batch.

    >>> import hdc
    >>> keys = hdc.random_sparse(50, 100, 1024, seed=1)
    >>> values = hdc.random_sparse(50, 100, 1024, seed=2)
    >>> trace = hdc.BlockAccumulator(100, 1024)
    >>> trace.add(hdc.bind(keys, values))
    >>> scores = trace.unbind(keys[7]).similarity(values)     # recall the value bound to key 7
    >>> int(scores.argmax())
    7
    """

    def __init__(self, blocks, block_size):
        self._blocks = check_int(blocks, "blocks", low=1, high=MAX_BLOCKS)
        self._block_size = check_block_size(block_size)
        if self._blocks * self._block_size > MAX_DENSE_DIM:
            raise ValueError(f"blocks * block_size = {self._blocks * self._block_size} counts are more than "
                             f"{MAX_DENSE_DIM}; a BlockAccumulator holds one int64 per element")
        self._counts = np.zeros((self._blocks, self._block_size), np.int64)
        self._n = 0

    @property
    def blocks(self):
        return self._blocks

    @property
    def block_size(self):
        return self._block_size

    @property
    def n(self):
        """Total weight added so far (the number of codes when unweighted)."""
        return self._n

    @property
    def counts(self):
        """Per-block index counts, int64 ``(blocks, block_size)`` (a read-only view)."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    def __repr__(self):
        return f"BlockAccumulator(blocks={self._blocks}, block_size={self._block_size}, n={self._n})"

    def _check(self, x, name="x"):
        check_sparse(x, name)
        if (x.blocks, x.block_size) != (self._blocks, self._block_size):
            raise ValueError(f"{name} must have blocks={self._blocks}, block_size={self._block_size}, "
                             f"got blocks={x.blocks}, block_size={x.block_size}")
        if x.ndim > 1:
            raise ValueError(f"{name} must be a single code or a 1-D batch, got batch shape {x.shape}")
        return x.indices.reshape(-1, self._blocks)

    def _update(self, x, weights, sign):
        rows = self._check(x)
        if rows.shape[0] == 0:
            return 0
        if weights is None:
            w = np.full(rows.shape[0], sign, np.int64)
            total = rows.shape[0]
        else:
            w = _check_weights(np.atleast_1d(weights), rows.shape[0])
            if w.dtype != np.int64:
                raise TypeError("weights must be integers for a BlockAccumulator (its counts are exact)")
            total = int(w.sum())
            w = w * sign
        kernels().sparse_block_counts(rows, self._block_size, w, self._counts)
        return sign * total

    def add(self, x, weights=None):
        """Count ``x`` (a code or a batch), each with integer ``weights`` (default 1)."""
        self._n += self._update(x, weights, 1)

    def _add_counts(self, counts, n):
        """Internal: add the int64 ``(blocks, block_size)`` ``counts`` of ``n`` codes counted by another
        BlockAccumulator (:mod:`hdc.distributed` sums partitions' counts this way)."""
        counts = np.asarray(counts)
        shape = (self._blocks, self._block_size)
        if counts.shape != shape or counts.dtype != np.int64 or n < 0 or np.any(counts < 0) or \
                np.any(counts.sum(axis=1) != n):
            raise ValueError(f"counts must be int64 {shape}, non-negative, each block summing to n={n}, got "
                             f"{counts.dtype} {counts.shape}")
        if self._n + n >= WEIGHT_TOTAL_LIMIT:
            raise ValueError(f"too many additions: the total weight must stay below 2**62, got {self._n + n}")
        self._counts += counts
        self._n += int(n)

    def remove(self, x, weights=None):
        """Un-count ``x``; it must have been added before (counts never go negative)."""
        delta = self._update(x, weights, -1)
        if self._n + delta < 0 or np.any(self._counts < 0):
            self._update(x, weights, 1)  # undo, so a failed remove leaves the counts as they were
            raise ValueError("remove: x was not added to this BlockAccumulator (counts would go negative)")
        self._n += delta

    def majority(self, tie=None, seed=None):
        """The sparse bundle of everything added: per block the index of the highest count.

        Ties go to ``tie``'s index when it is among the highest, else to the first of them counting
        up from it modulo ``block_size`` (as :func:`hdc.bundle`); ``tie=None`` draws it from ``seed``.
        """
        if self._n == 0:
            raise ValueError("BlockAccumulator is empty; add codes before taking the majority")
        ties = tie_indices(tie, seed, self._blocks, self._block_size, ()).astype(np.int64)
        best = self._counts.max(axis=1, keepdims=True)
        step = (np.arange(self._block_size, dtype=np.int64)[None, :] - ties[:, None]) % self._block_size
        step = np.where(self._counts == best, step, np.iinfo(np.int64).max).min(axis=1)
        indices = (ties + step) % self._block_size
        return SparseHV._wrap(indices.astype(index_dtype(self._block_size)), self._block_size)

    def unbind(self, key):
        """The accumulator of the trace unbound from ``key``: ``counts[b, (l + key[b]) % block_size]``.

        Exact (no thinning): ``acc.unbind(k).similarity(x) == acc.similarity(hdc.bind(x, k))``.
        """
        rows = self._check(key, "key")
        if rows.shape[0] != 1 or key.ndim != 0:
            raise ValueError(f"key must be a single code (batch shape ()), got batch shape {key.shape}")
        shift = rows[0].astype(np.int64)
        columns = (np.arange(self._block_size, dtype=np.int64)[None, :] + shift[:, None]) % self._block_size
        out = BlockAccumulator.__new__(BlockAccumulator)
        out._blocks, out._block_size, out._n = self._blocks, self._block_size, self._n
        out._counts = np.ascontiguousarray(np.take_along_axis(self._counts, columns, axis=1))
        return out

    def similarity(self, x):
        """Count-weighted overlap of each candidate: ``sum_b counts[b, x[b]]``, int64 of ``x``'s batch shape."""
        check_sparse(x, "x")
        if (x.blocks, x.block_size) != (self._blocks, self._block_size):
            raise ValueError(f"x must have blocks={self._blocks}, block_size={self._block_size}, "
                             f"got blocks={x.blocks}, block_size={x.block_size}")
        return self._counts[np.arange(self._blocks), x.indices].sum(axis=-1)

    def copy(self):
        out = BlockAccumulator.__new__(BlockAccumulator)
        out._blocks, out._block_size, out._n = self._blocks, self._block_size, self._n
        out._counts = self._counts.copy()
        return out

    def reset(self):
        self._counts[:] = 0
        self._n = 0
