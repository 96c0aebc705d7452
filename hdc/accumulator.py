"""``Accumulator``: exact per-element counts for incremental bundling."""
import numpy as np

from . import backend
from ._validate import check_dim, n_words
from .hv import BinaryHV
from .ops import WEIGHT_TOTAL_LIMIT, _check_weights, _tie_words, as_hv, majority_from_counts


class Accumulator:
    """Running per-element counts of added hypervectors; ``majority()`` is their bundle.

    Adding a batch counts it with the backend's bit-sliced kernel, so building up a bundle
    incrementally costs about the same as bundling the batch in one call.

    Shapes: ``add(x)`` takes ``(n,)`` batches or single vectors; ``counts`` is ``(dim,)`` int64.

    >>> import hdc
    >>> xs = hdc.random(9, 1000, seed=0)
    >>> acc = hdc.Accumulator(1000)
    >>> acc.add(xs[:5]); acc.add(xs[5:])
    >>> bool(acc.majority() == hdc.bundle(xs)), acc.n
    (True, 9)
    """

    def __init__(self, dim):
        self._dim = check_dim(dim)
        self._counts = np.zeros(n_words(self._dim) * 64, np.int64)
        self._n = 0

    @property
    def dim(self):
        return self._dim

    @property
    def n(self):
        """Total weight added so far (the number of vectors when unweighted)."""
        return self._n

    @property
    def counts(self):
        """Per-element counts of ones, int64 ``(dim,)`` (a read-only view)."""
        view = self._counts[:self._dim]
        view.flags.writeable = False
        return view

    def _update(self, x, weights, sign):
        as_hv(x, "x")
        if x.dim != self._dim:
            raise ValueError(f"x must have dim {self._dim}, got {x.dim}")
        if x.ndim > 1:
            raise ValueError(f"x must be a single hypervector or a 1-D batch, got batch shape {x.shape}")
        rows = x.words.reshape(-1, x.n_words)
        if weights is None:
            w = None if sign > 0 else np.full(rows.shape[0], -1, np.int64)
            total = rows.shape[0]
            if sign > 0 and self._n + total >= WEIGHT_TOTAL_LIMIT:
                raise ValueError(f"too many additions: the total weight must stay below 2**62, got "
                                 f"{self._n + total}")
        elif rows.shape[0] == 0:
            if np.shape(np.atleast_1d(weights)) != (0,):
                raise ValueError(f"weights must have shape (0,) for an empty batch, got {np.shape(weights)}")
            return 0
        else:
            w = _check_weights(np.atleast_1d(weights), rows.shape[0], self._n if sign > 0 else 0)
            if w.dtype != np.int64:
                raise TypeError("weights must be integers for an Accumulator (its counts are exact)")
            total = int(w.sum())
            w = w * sign
        if rows.shape[0] == 0:
            return 0
        backend.kernels().column_counts(rows, w, self._counts)
        return sign * total

    def add(self, x, weights=None):
        """Count ``x`` (a vector or a batch), each with integer ``weights`` (default 1)."""
        self._n += self._update(x, weights, 1)

    def remove(self, x, weights=None):
        """Un-count ``x``; it must have been added before (counts never go negative)."""
        delta = self._update(x, weights, -1)
        if np.any(self._counts < 0) or self._n + delta < 0:
            # undo, so a failed remove leaves the accumulator as it was
            self._update(x, weights, 1)
            raise ValueError("remove: x was not added to this Accumulator (counts would go negative)")
        self._n += delta

    def _add_counts(self, counts, n):
        """Internal: add the int64 ``(dim,)`` ``counts`` of ``n`` vectors counted by another Accumulator
        (:mod:`hdc.distributed` sums partitions' counts this way)."""
        counts = np.asarray(counts)
        if counts.shape != (self._dim,) or counts.dtype != np.int64 or n < 0 or np.any(counts < 0) or \
                np.any(counts > n):
            raise ValueError(f"counts must be int64 ({self._dim},) in [0, n] with n >= 0, got {counts.dtype} "
                             f"{counts.shape}, n={n}")
        if self._n + n >= WEIGHT_TOTAL_LIMIT:
            raise ValueError(f"too many additions: the total weight must stay below 2**62, got {self._n + n}")
        self._counts[:self._dim] += counts
        self._n += int(n)

    def majority(self, tie=None, seed=None):
        """The bundle of everything added: 1 where count > n / 2; ties as in :func:`hdc.bundle`."""
        if self._n == 0:
            raise ValueError("Accumulator is empty; add hypervectors before taking the majority")
        ties = _tie_words(tie, seed, self._dim, ())
        words = majority_from_counts(self._counts[:self._dim], self._n, ties, self._dim)
        return BinaryHV._wrap(words, self._dim)

    def reset(self):
        self._counts[:] = 0
        self._n = 0
