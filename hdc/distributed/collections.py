"""Out-of-core encoding and training on Dask collections.

Encoding is a map over partitions: ``encode(encoder, X)`` returns a lazy ``dask.array`` of words,
shape ``(n, ceil(dim / 64))`` uint64, one block per input partition. Training adds up exact
per-class counts: each partition is counted on its own, and the per-class counts are summed by a
tree reduction, so :func:`fit` on a Dask collection gives exactly the model that in-process
``fit`` gives on the same rows (integer sums do not depend on order); for sparse block codes the
counts are a :class:`hdc.BlockAccumulator`'s, per class. The encoders' and
``CentroidClassifier``'s own methods call these when handed a Dask collection.

>>> import dask.array as da, numpy as np, hdc
>>> X = da.from_array(np.random.default_rng(0).random((1000, 8)), chunks=250)
>>> y = da.from_array(np.arange(1000) % 3, chunks=250)
>>> enc = hdc.RecordEncoder(4096, n_features=8, seed=0)
>>> words = enc.encode(X)                      # lazy: a dask.array (1000, 64) uint64
>>> clf = hdc.CentroidClassifier(4096, epochs=0).fit(words, y)
>>> same = hdc.CentroidClassifier(4096, epochs=0).fit(enc.encode(X.compute()), y.compute())
>>> np.array_equal(clf.prototypes_.words, same.prototypes_.words), clf.classes_.tolist()
(True, [0, 1, 2])
"""
import sys

import numpy as np

import dask
import dask.array as da
import dask.bag as db

from .._validate import n_words
from ..accumulator import Accumulator
from ..block_accumulator import BlockAccumulator
from ..encoders import ItemMemory, NGramEncoder, RandomProjection, RecordEncoder
from ..hv import BinaryHV
from ..sparse import SparseHV, index_dtype

__all__ = ["encode", "fit", "partial_fit", "predict"]

_ROWS_2D = (RecordEncoder, RandomProjection)  # inputs (n, features): one row per hypervector
_FAN_IN = 8  # partitions merged per step of the count reduction


def _row_layout(encoder):
    """(row width, dtype) of an encoder's (or classifier's) rows: words, or block indices."""
    block_size = getattr(encoder, "block_size", None)
    if block_size is None:
        return n_words(encoder.dim), np.dtype(np.uint64)
    return encoder.dim // block_size, index_dtype(block_size)


def _encode_block(block, encoder):
    out = encoder.encode(block)
    if isinstance(out, SparseHV):
        return out.indices.reshape(-1, out.blocks)
    return out.words.reshape(-1, out.n_words)


def _encode_partition(items, encoder):
    items = list(items)
    if not items:
        return np.empty((0, _row_layout(encoder)[0]), _row_layout(encoder)[1])
    return _encode_block(items, encoder)


def encode(encoder, X):
    """Encode a Dask collection lazily, partition by partition: a ``dask.array`` of words ``(n, W)``
    uint64, or for a sparse encoder (``block_size=L``) of block indices ``(n, dim // L)`` in the
    smallest unsigned dtype holding ``L`` (wrap a block with ``hdc.SparseHV(block, L)``).

    ``X``: a ``dask.bag`` of items (strings or token lists for ``NGramEncoder``, symbols for
    ``ItemMemory``, numbers for the scalar encoders), or a ``dask.array`` of inputs with one row
    per hypervector (``(n,)`` for scalar encoders and ``ItemMemory``, ``(n, n_features)`` for
    ``RecordEncoder`` and ``RandomProjection``, ``(n, length)`` int tokens for ``NGramEncoder``).
    Row ``i`` of the result is ``encoder.encode(...)`` of row ``i`` of ``X``: wrap a computed block
    with ``hdc.BinaryHV(block, encoder.dim)``.
    """
    w, dtype = _row_layout(encoder)
    if isinstance(encoder, ItemMemory) and encoder.grow:
        raise ValueError("an ItemMemory with grow=True numbers new symbols in the order it meets them, which "
                         "partitions encoded apart cannot share: build it with all its symbols (grow=False)")
    if isinstance(X, db.Bag):
        enc = dask.delayed(encoder, pure=True)
        parts = [da.from_delayed(dask.delayed(_encode_partition)(p, enc), shape=(np.nan, w), dtype=dtype)
                 for p in X.to_delayed()]
        return da.concatenate(parts, axis=0)
    if isinstance(X, da.Array):
        rows_2d = isinstance(encoder, _ROWS_2D + (NGramEncoder,))
        if X.ndim != (2 if rows_2d else 1):
            want = "(n, features)" if rows_2d else "(n,)"
            raise ValueError(f"X must be a dask.array of shape {want} for {type(encoder).__name__} (one row per "
                             f"hypervector), got shape {X.shape}")
        if rows_2d:
            X = X.rechunk({1: -1})
            return X.map_blocks(_encode_block, encoder, chunks=(X.chunks[0], (w,)), dtype=dtype)
        return X.map_blocks(_encode_block, encoder, chunks=(X.chunks[0], (w,)), new_axis=1, dtype=dtype)
    raise TypeError(f"X must be a dask.bag or a dask.array, got {type(X).__name__}")


# ---- training --------------------------------------------------------------------------------
def _row_blocks(X, clf):
    """Delayed row blocks of ``X``, a dask.array of words (dense) or block indices (sparse)."""
    w, dtype = _row_layout(clf)
    what = "hypervector words" if clf.block_size is None else f"block indices (block_size {clf.block_size})"
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array of {what} (n, {w}) {dtype}, as encode() returns, got "
                        f"{type(X).__name__}")
    if X.ndim != 2 or X.shape[1] != w or X.dtype != dtype:
        raise ValueError(f"X must be a dask.array of {what} of shape (n, {w}) {dtype} for dim {clf._dim}, "
                         f"got shape {X.shape} {X.dtype}")
    X = X.rechunk({1: -1})
    return X, list(X.to_delayed().ravel()), X.chunks[0]


def _wrap_rows(rows, dim, block_size):
    """A BinaryHV of words or SparseHV of block indices; checked (a partition is untrusted input)."""
    rows = np.ascontiguousarray(rows)
    return BinaryHV(rows, dim) if block_size is None else SparseHV(rows, block_size)


def _label_blocks(y, n_blocks, row_chunks):
    """Delayed label blocks of ``y`` matching the word blocks."""
    if isinstance(y, db.Bag):
        parts = y.to_delayed()
    elif isinstance(y, da.Array):
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per row of X), got shape {y.shape}")
        known = not any(np.isnan(row_chunks)) and not any(np.isnan(y.chunks[0]))
        if known:
            if y.shape[0] != sum(row_chunks):
                raise ValueError(f"y must have one label per row of X ({sum(row_chunks)}), got {y.shape[0]}")
            y = y.rechunk((row_chunks,))
        parts = list(y.to_delayed().ravel())
    else:
        y = np.asarray(y)
        if any(np.isnan(row_chunks)):
            raise ValueError("y must be a dask collection partitioned like X when X's partition sizes are "
                             "unknown (X encoded from a dask.bag: pass the labels as a dask.bag too)")
        if y.ndim != 1 or y.shape[0] != sum(row_chunks):
            raise ValueError(f"y must have shape ({int(sum(row_chunks))},) (one label per row of X), got {y.shape}")
        bounds = np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)
        parts = [y[bounds[i]:bounds[i + 1]] for i in range(len(row_chunks))]
    if len(parts) != n_blocks:
        raise ValueError(f"y must be partitioned like X: X has {n_blocks} partitions, y {len(parts)}")
    return parts


def _class_counts(rows, labels, dim, block_size, part):
    """Exact per-class counts of one partition: {label: (counts int64, n)}; counts ``(dim,)`` for
    words, ``(blocks, block_size)`` for block indices."""
    y = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
    if y.shape != (rows.shape[0],):
        raise ValueError(f"partition {part}: X has {rows.shape[0]} rows, y has {y.shape[0] if y.ndim else 1} "
                         "labels; they must match row for row")
    X = _wrap_rows(rows, dim, block_size)
    out = {}
    for label in np.unique(y):
        acc = Accumulator(dim) if block_size is None else BlockAccumulator(dim // block_size, block_size)
        acc.add(X[y == label])
        out[label.item() if hasattr(label, "item") else label] = (acc.counts.copy(), acc.n)
    return out


def _sum_counts(*parts):
    total = {}
    for part in parts:
        for label, (counts, n) in part.items():
            if label in total:
                total[label] = (total[label][0] + counts, total[label][1] + n)
            else:
                total[label] = (counts, n)
    return total


def _tree(blocks):
    """Sum the per-partition counts pairwise-up in a tree of fan-in ``_FAN_IN``."""
    level = blocks
    while len(level) > 1:
        level = [dask.delayed(_sum_counts)(*level[i:i + _FAN_IN]) for i in range(0, len(level), _FAN_IN)]
    return level[0]


def _compute(obj, progress):
    """Compute a delayed object with the active scheduler, with a progress bar if asked."""
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        future = client.compute(obj)
        if progress:
            from distributed import progress as show

            show(future)
        return future.result()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return obj.compute()
    return obj.compute()


def _counts(clf, X, y, progress):
    _, blocks, row_chunks = _row_blocks(X, clf)
    labels = _label_blocks(y, len(blocks), row_chunks)
    counted = [dask.delayed(_class_counts)(b, lab, clf._dim, clf.block_size, i)
               for i, (b, lab) in enumerate(zip(blocks, labels))]
    return _compute(_tree(counted), progress)


def _install(clf, totals, classes=None):
    def new():
        return Accumulator(clf._dim) if clf.block_size is None else clf._new_block_accumulator()

    for label in [] if classes is None else list(classes):
        clf._acc.setdefault(label, new())
    for label, (counts, n) in totals.items():
        clf._acc.setdefault(label, new())._add_counts(counts, n)
    clf._prototypes = None


def fit(clf, X, y, progress=None):
    """``clf.fit(X, y)`` with ``X`` a dask.array of words, or of block indices for a classifier with
    ``block_size`` (``encode``'s output either way), ``y`` labels as a dask.array, dask.bag or NumPy
    array partitioned like ``X``. Returns ``clf``.

    Exactly the in-process model (the same counts, prototypes and classes) of a classifier that
    does not retrain: ``epochs=0`` (or a sparse classifier, which never retrains). Retraining is
    refused, not approximated: in process, each epoch visits all samples one at a time in one
    seeded permutation, and a sample misclassified (or within the margin) moves two prototypes
    before the next sample is classified, so every correction depends on all samples before it
    in that global order. Partitions worked on apart (a map and a sum per epoch) would be batch
    retraining, another model. ``epochs=None`` means 20 epochs for a dense classifier, so it is
    refused too. Fit with ``epochs=0`` here, then ``clf.retrain(X, y, epochs)`` on samples in
    memory. ``temperature_`` stays 1 (uncalibrated: in process it is fitted on all of ``X``).
    ``progress``: a progress bar (Dask's; default: when stderr is a terminal).
    """
    clf._setup()
    if clf._epochs:
        raise ValueError(
            f"epochs must be 0 to fit a dense CentroidClassifier on a Dask collection (got epochs={clf.epochs!r}"
            f"{', which means 20 retraining epochs' if clf.epochs is None else ''}): in-process retraining is "
            "sequential (each epoch visits all samples in one seeded global order, and each misclassified sample "
            "moves two prototypes before the next sample is classified), so no map over partitions gives the same "
            "model. Use CentroidClassifier(..., epochs=0) here, then clf.retrain(X, y, epochs) on samples in memory")
    totals = _counts(clf, X, y, progress)
    if not totals:
        raise ValueError("X is empty; fit needs at least one sample")
    _install(clf, totals)
    return clf


def partial_fit(clf, X, y, classes=None, progress=None):
    """``clf.partial_fit(X, y, classes)`` on Dask collections (as :func:`fit`); returns ``clf``."""
    if not hasattr(clf, "_acc"):
        clf._setup()
    _install(clf, _counts(clf, X, y, progress), classes)
    return clf


def _predict_block(rows, clf):
    return clf.predict(_wrap_rows(rows, clf._dim, clf.block_size))


def predict(clf, X):
    """``clf.predict(X)`` on a dask.array of words (or block indices): a lazy dask.array of labels."""
    clf._check_fitted()
    X = _row_blocks(X, clf)[0]
    return X.map_blocks(_predict_block, clf, drop_axis=1, dtype=clf.classes_.dtype)
