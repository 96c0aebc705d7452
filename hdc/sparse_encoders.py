"""Sparse forms of the encoders: what ``ItemMemory``, ``LevelEncoder``, ``RecordEncoder`` and
``NGramEncoder`` build when given ``block_size=``.

Each produces :class:`~hdc.SparseHV` codes of ``blocks = dim // block_size`` blocks and is a
subclass of its dense encoder (same arguments, same seeding scheme, same input forms):

- ``SparseItemMemory``: seeded random codes; row ``i`` depends only on ``(seed, i)``.
- ``SparseLevelEncoder``: level 0 random; level ``k`` replaces the first
  ``round(k * blocks / (levels - 1))`` blocks of a seeded random block order with other indices,
  so neighbouring levels share all but ``blocks / (levels - 1)`` blocks and the ends share none.
- ``SparseRecordEncoder``: per block the most frequent index of ``bind(id[f], level(x[f]))`` over
  the features (the sparse bundle), ties from ``self.tie``.
- ``SparseNGramEncoder``: n-gram ``bind_j permute(item[t[p + j]], n - 1 - j)`` (blockwise modular
  sums of block-rolled items), bundled per text the same way.

>>> import hdc
>>> enc = hdc.NGramEncoder(10_000, n=3, seed=0, block_size=16)
>>> a, b, c = enc(["the cat sat on the mat", "the cat sat on a mat", "zwölf Boxkämpfer jagen"])
>>> a.blocks, a.block_size, bool(hdc.similarity(a, b) > hdc.similarity(a, c))
(625, 16, True)
"""
import numpy as np

from . import _dask
from ._validate import as_rng, check_int
from .encoders import (ItemMemory, LevelEncoder, NGramEncoder, RecordEncoder, _BLOCK, _DENSE_KEYS, _stream)
from .sparse import SparseHV, check_block_size, index_dtype, random_sparse
from .backend import kernels


def _blocks(dim, block_size):
    """``dim // block_size`` blocks; at least one."""
    block_size = check_block_size(block_size)
    if block_size > dim:
        raise ValueError(f"block_size must be <= dim, got block_size={block_size}, dim={dim}")
    return dim // block_size, block_size


def _keyed_sparse_rows(entropy, tag, keys, blocks, block_size):
    """Sparse rows for non-negative integer ``keys``, as ``encoders._keyed_rows`` for dense rows."""
    keys = np.asarray(keys, np.int64)
    out = np.empty((keys.size, blocks), index_dtype(block_size))
    dense = keys < _DENSE_KEYS
    group = keys // _BLOCK
    for g in np.unique(group[dense]):
        rows = random_sparse(_BLOCK, blocks, block_size, seed=_stream(entropy, tag, g)).indices
        sel = dense & (group == g)
        out[sel] = rows[keys[sel] % _BLOCK]
    for i in np.flatnonzero(~dense):
        out[i] = random_sparse(1, blocks, block_size, seed=_stream(entropy, tag, 1, keys[i])).indices[0]
    return out


class SparseItemMemory(ItemMemory):
    """:class:`hdc.ItemMemory` with sparse block codes (``block_size=`` given).

    >>> import hdc
    >>> mem = hdc.ItemMemory(10_000, ["a", "b"], seed=0, block_size=100)
    >>> mem.vectors.shape, mem["a"].blocks
    ((2,), 100)
    """

    def __init__(self, dim, symbols_or_size, seed=None, grow=False, block_size=None):
        self.blocks, self.block_size = _blocks(check_int(dim, "dim", low=1), block_size)
        super().__init__(dim, symbols_or_size, seed, grow)

    def _rows(self, keys):
        return _keyed_sparse_rows(self.seed, 0, keys, self.blocks, self.block_size)

    def _wrap(self, rows):
        return SparseHV._wrap(rows, self.block_size)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, block_size={self.block_size})"


class SparseLevelEncoder(LevelEncoder):
    """:class:`hdc.LevelEncoder` with sparse block codes: neighbouring levels share most blocks.

    >>> import hdc
    >>> enc = hdc.LevelEncoder(10_000, levels=11, seed=0, block_size=100)
    >>> v = enc([0.0, 0.1, 1.0])
    >>> [float(s) for s in hdc.similarity(v[0], v)]
    [1.0, 0.9, 0.0]
    """

    def __init__(self, dim, levels, low=0.0, high=1.0, seed=None, block_size=None):
        self.blocks, self.block_size = _blocks(check_int(dim, "dim", low=1), block_size)
        super().__init__(dim, levels, low, high, seed)

    def _build(self):
        rng = as_rng(_stream(self.seed, 1))
        base = random_sparse(1, self.blocks, self.block_size, seed=_stream(self.seed, 0)).indices[0].astype(np.int64)
        order = rng.permutation(self.blocks)
        # a different index for every block (the same only when block_size is 1)
        other = (base + 1 + rng.integers(0, max(1, self.block_size - 1), self.blocks)) % self.block_size
        out = np.empty((self.levels, self.blocks), index_dtype(self.block_size))
        for k in range(self.levels):
            row = base.copy()
            changed = order[:int(round(k * self.blocks / (self.levels - 1)))]
            row[changed] = other[changed]
            out[k] = row
        return out

    def _wrap(self, rows):
        return SparseHV._wrap(rows, self.block_size)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, block_size={self.block_size})"


class SparseRecordEncoder(RecordEncoder):
    """:class:`hdc.RecordEncoder` with sparse block codes: the sparse bundle of ``bind(id[f], level(x[f]))``.

    >>> import hdc, numpy as np
    >>> enc = hdc.RecordEncoder(10_000, n_features=4, levels=10, seed=0, block_size=16)
    >>> X = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.5], [0.9, 0.7, 0.0, 0.0]])
    >>> s = hdc.similarity(enc(X[0]), enc(X))
    >>> bool(s[1] > s[2])
    True
    """

    def __init__(self, dim, n_features, levels=16, low=0.0, high=1.0, seed=None, block_size=None):
        self.dim = check_int(dim, "dim", low=1)
        self.blocks, self.block_size = _blocks(self.dim, block_size)
        self.n_features = check_int(n_features, "n_features", low=1)
        super().__init__(dim, n_features, levels, low, high, seed)
        self.level_encoder = SparseLevelEncoder(self.dim, self.levels, 0.0, 1.0, seed=_stream(self.seed, 1),
                                                block_size=self.block_size)
        self.ids = random_sparse(self.n_features, self.blocks, self.block_size, seed=_stream(self.seed, 0))
        self.tie = random_sparse(1, self.blocks, self.block_size, seed=_stream(self.seed, 2))[0]

    def encode(self, X):
        """Encode feature vectors: ``X (n, n_features)`` -> SparseHV ``(n,)``; ``(n_features,)`` -> ``()``."""
        if _dask.is_collection(X):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, X)
        idx = self.index(X)
        rows = np.ascontiguousarray(np.atleast_2d(idx))
        out = np.empty((rows.shape[0], self.blocks), index_dtype(self.block_size))
        if rows.shape[0]:
            kernels().sparse_record_bundle(rows, self.ids.indices, self.level_encoder._codebook, self.block_size,
                                    self.tie.indices, out)
        return SparseHV._wrap(out if idx.ndim == 2 else out[0], self.block_size)

    __call__ = encode

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, block_size={self.block_size})"


class SparseNGramEncoder(NGramEncoder):
    """:class:`hdc.NGramEncoder` with sparse block codes (see the module docstring).

    >>> import hdc
    >>> enc = hdc.NGramEncoder(10_000, n=3, seed=0, block_size=16)
    >>> x = enc(["Привет, мир", "hello world"])
    >>> x.shape, bool(enc("hello world") == x[1])
    ((2,), True)
    """

    def __init__(self, dim, n=3, seed=None, block_size=None):
        self.blocks, self.block_size = _blocks(check_int(dim, "dim", low=1), block_size)
        super().__init__(dim, n, seed)
        self.tie = random_sparse(1, self.blocks, self.block_size, seed=_stream(self.seed, 0))[0]
        self._table = np.empty((self.sizes[-1], 0, self.blocks), index_dtype(self.block_size))

    def item_vectors(self, symbols):
        """Item codes of symbol values (ints >= 0, code points for characters), SparseHV ``(n,)``."""
        keys = np.asarray(symbols, np.int64).reshape(-1)
        if np.any(keys < 0):
            raise ValueError("symbols must be non-negative integers")
        return SparseHV._wrap(_keyed_sparse_rows(self.seed, 1, keys, self.blocks, self.block_size), self.block_size)

    def _shifted_items(self, values):
        items = self.item_vectors(values).indices
        return np.stack([np.roll(items, s, axis=-1) for s in range(self.sizes[-1])])

    def encode(self, texts):
        """Encode one text / token sequence or a batch: -> SparseHV ``()`` or ``(n,)``."""
        if _dask.is_collection(texts):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, texts)
        values, lengths, single = self._tokens(texts)
        short = np.flatnonzero(lengths < self.sizes[0])
        if short.size:
            i = int(short[0])
            raise ValueError(f"texts[{i}] has {int(lengths[i])} symbols; each text needs at least "
                             f"n={self.sizes[0]} symbols to have an n-gram")
        cols = self._columns(values)
        offsets = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out = np.empty((lengths.size, self.blocks), index_dtype(self.block_size))
        kernels().sparse_ngram_bundle(cols, offsets, self._table, np.asarray(self.sizes, np.int64), self.block_size,
                                      self.tie.indices, out)
        return SparseHV._wrap(out[0] if single else out, self.block_size)

    __call__ = encode

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, block_size={self.block_size})"
