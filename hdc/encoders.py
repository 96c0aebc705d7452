"""Encoders: symbols, scalars, records, n-grams and float embeddings to binary hypervectors.

Every encoder is seeded (the same seed gives the same vectors on every machine), vectorised over
a batch, and has ``encode(...)`` and ``__call__`` (the same thing).

=====================================================  ==========================================
``ItemMemory(dim, symbols_or_size, seed, grow)``       random codebook, lookup by symbol
``LevelEncoder(dim, levels, low, high, seed)``         scalars; neighbours close, ends orthogonal
``ThermometerEncoder(dim, levels, low, high, seed)``   scalars; level k has k/(levels-1) ones
``CircularEncoder(dim, levels, low, high, seed)``      angles/periodic scalars; wraps around
``RecordEncoder(dim, n_features, levels, low, high)``  bundle of feature-id XOR level(value)
``NGramEncoder(dim, n=3, seed)``                       strings / token sequences, bundled n-grams
``RandomProjection(in_features, dim, seed)``           sign of a Gaussian projection
=====================================================  ==========================================

``ItemMemory``, ``LevelEncoder``, ``RecordEncoder`` and ``NGramEncoder`` also take ``block_size=``:
then they produce sparse block codes (:class:`~hdc.SparseHV` of ``dim // block_size`` blocks), see
:mod:`hdc.sparse_encoders`.

>>> import hdc
>>> enc = hdc.NGramEncoder(10_000, n=3, seed=0)
>>> a, b, c = enc(["the cat sat on the mat", "the cat sat on a mat", "zwölf Boxkämpfer jagen"])
>>> bool(hdc.similarity(a, b) > hdc.similarity(a, c))
True
"""
import numbers

import numpy as np

from . import _dask
from ._validate import as_rng, check_dim, check_finite_array, check_int, n_words
from .backend import kernels
from .hv import BinaryHV
from .ops import permute, random

__all__ = ["ItemMemory", "LevelEncoder", "ThermometerEncoder", "CircularEncoder", "RecordEncoder",
           "NGramEncoder", "RandomProjection"]

# Codebook rows are drawn in blocks of this many, each block from its own seed, so a codebook
# that grows gives the same rows as one built at full size.
_BLOCK = 64
_DENSE_KEYS = 1 << 21  # keys below this are drawn in blocks (all of Unicode fits)


def _entropy(seed):
    """An int entropy from ``seed`` (None draws fresh entropy): the root of every derived stream."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.entropy)
    return check_int(seed, "seed", low=0)


def _stream(entropy, *key):
    """An independent seed for one purpose (``key``) under one encoder seed."""
    return np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key))


def _keyed_rows(entropy, tag, keys, dim):
    """Rows for non-negative integer ``keys``: row ``k`` depends only on (entropy, tag, k), words (n, W).

    Keys below ``_DENSE_KEYS`` come from blocks of ``_BLOCK`` consecutive keys (one generator
    call per block); larger keys (hashed ids, rare code points) each from their own stream.
    """
    keys = np.asarray(keys, np.int64)
    out = np.empty((keys.size, n_words(dim)), np.uint64)
    dense = keys < _DENSE_KEYS
    blocks = keys // _BLOCK
    for block in np.unique(blocks[dense]):
        rows = random(_BLOCK, dim, seed=_stream(entropy, tag, block)).words
        sel = dense & (blocks == block)
        out[sel] = rows[keys[sel] % _BLOCK]
    for i in np.flatnonzero(~dense):
        out[i] = random(1, dim, seed=_stream(entropy, tag, 1, keys[i])).words[0]
    return out


class _SparseVariant:
    """Given ``block_size=``, construct the sparse subclass ``Sparse<Name>`` of :mod:`hdc.sparse_encoders`."""

    def __new__(cls, *args, block_size=None, **kwargs):
        if block_size is not None and not cls.__name__.startswith("Sparse"):
            from . import sparse_encoders
            cls = getattr(sparse_encoders, "Sparse" + cls.__name__)
        return super().__new__(cls)


def _check_levels(levels, name="levels"):
    return check_int(levels, name, low=2)


def _check_range(low, high, shape=None):
    """``low`` < ``high``, finite floats (scalars, or arrays broadcasting to ``shape``)."""
    lo = check_finite_array(low, "low")
    hi = check_finite_array(high, "high")
    if shape is not None:
        try:
            lo, hi = np.broadcast_to(lo, shape).copy(), np.broadcast_to(hi, shape).copy()
        except ValueError:
            raise ValueError(f"low and high must be scalars or have shape {shape}, got "
                             f"{np.shape(low)} and {np.shape(high)}") from None
    elif lo.ndim or hi.ndim:
        raise ValueError(f"low and high must be scalars, got shapes {lo.shape} and {hi.shape}")
    if np.any(lo >= hi):
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    return lo, hi


def _scalar_indices(values, low, high, levels, circular, name="values"):
    """Level index per value: nearest of ``levels`` points spanning [low, high] (circular: [low, high))."""
    x = check_finite_array(values, name)
    if np.any(x < low) or np.any(x > high):
        bad = x[(x < low) | (x > high)].ravel()[0]
        raise ValueError(f"{name} must lie in [low, high] = [{low}, {high}], got {bad}")
    frac = (x - low) / (high - low)
    if circular:
        return (np.rint(frac * levels).astype(np.int64)) % levels
    return np.rint(frac * (levels - 1)).astype(np.int64)


def _flip_rows(base, dim, positions, spans):
    """Rows ``base ^ (ones at positions[start:stop])`` for each (start, stop) span -> words (n, W)."""
    bits = np.zeros((len(spans), dim), bool)
    for r, (start, stop) in enumerate(spans):
        bits[r, positions[start:stop]] = True
    return np.ascontiguousarray(base[None, :] ^ BinaryHV.from_bool(bits).words)


class _ScalarEncoder:
    """Shared scalar machinery: a (levels, W) codebook and value -> index mapping."""

    _circular = False

    def __init__(self, dim, levels, low=0.0, high=1.0, seed=None):
        self.dim = check_dim(dim)
        self.levels = _check_levels(levels)
        lo, hi = _check_range(low, high)
        self.low, self.high = float(lo), float(hi)
        self.seed = _entropy(seed)
        self._codebook = self._build()

    def _wrap(self, rows):
        return BinaryHV._wrap(rows, self.dim)

    @property
    def codebook(self):
        """All level vectors, ``(levels,)``, level 0 first."""
        return self._wrap(self._codebook)

    def index(self, values):
        """Level index of each value (int64, the shape of ``values``); errors outside [low, high] or NaN."""
        return _scalar_indices(values, self.low, self.high, self.levels, self._circular)

    def encode(self, values):
        """Level vector of each value: ``values`` any shape -> BinaryHV of that batch shape."""
        if _dask.is_collection(values):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, values)
        idx = self.index(values)
        return self._wrap(self._codebook[idx])

    __call__ = encode

    def __repr__(self):
        return (f"{type(self).__name__}(dim={self.dim}, levels={self.levels}, low={self.low}, "
                f"high={self.high}, seed={self.seed})")


class LevelEncoder(_SparseVariant, _ScalarEncoder):
    """Scalars to level hypervectors: neighbouring levels are close, the two ends orthogonal.

    Level 0 is random; level ``k`` flips the first ``round(k * dim / (2 (levels - 1)))`` bits of
    a seeded random order, so ``hamming(level i, level j) ~ |i - j| / (levels - 1) * dim / 2``.
    A value maps to the nearest of ``levels`` evenly spaced points in ``[low, high]``.

    Shapes: ``encode(values)`` any shape ``S`` -> BinaryHV of batch shape ``S``.

    >>> import hdc
    >>> enc = hdc.LevelEncoder(10_000, levels=11, low=0, high=1, seed=0)
    >>> v = enc([0.0, 0.1, 1.0])
    >>> round(float(hdc.similarity(v[0], v[1])), 1), round(float(hdc.similarity(v[0], v[2])), 1)
    (0.9, 0.0)
    """

    def __init__(self, dim, levels, low=0.0, high=1.0, seed=None, block_size=None):
        super().__init__(dim, levels, low, high, seed)

    def _build(self):
        rng = as_rng(_stream(self.seed, 1))
        base = random(1, self.dim, seed=_stream(self.seed, 0)).words[0]
        order = rng.permutation(self.dim)
        half = self.dim // 2
        flips = [(0, int(round(k * half / (self.levels - 1)))) for k in range(self.levels)]
        return _flip_rows(base, self.dim, order, flips)


class ThermometerEncoder(_ScalarEncoder):
    """Scalars to thermometer codes: level ``k`` has ``round(k * dim / (levels - 1))`` ones.

    The ones fill a seeded random order of the positions, so level 0 is all zeros and the last
    level all ones (the ends are opposite, similarity -1); distance grows linearly with |i - j|.

    Shapes: ``encode(values)`` any shape ``S`` -> BinaryHV of batch shape ``S``.

    >>> import hdc
    >>> enc = hdc.ThermometerEncoder(1000, levels=5, low=0, high=4, seed=0)
    >>> hdc.popcount(enc([0, 1, 4])).tolist()
    [0, 250, 1000]
    """

    def _build(self):
        order = as_rng(_stream(self.seed, 1)).permutation(self.dim)
        zero = np.zeros(n_words(self.dim), np.uint64)
        fills = [(0, int(round(k * self.dim / (self.levels - 1)))) for k in range(self.levels)]
        return _flip_rows(zero, self.dim, order, fills)


class CircularEncoder(_ScalarEncoder):
    """Periodic scalars (angles, hours) to level vectors on a circle.

    ``levels`` points spaced evenly over one period ``[low, high)``; ``high`` maps to the same
    level as ``low``. Distance grows with the circular distance between levels, up to ``dim / 2``
    (orthogonal) for opposite points: ``hamming(i, j) ~ min(|i - j|, levels - |i - j|) * dim / levels``.

    Shapes: ``encode(values)`` any shape ``S`` -> BinaryHV of batch shape ``S``.

    >>> import hdc
    >>> enc = hdc.CircularEncoder(10_000, levels=12, low=0, high=24, seed=0)
    >>> v = enc([0, 2, 12, 22, 24])
    >>> [round(float(s), 1) for s in hdc.similarity(v[0], v)]
    [1.0, 0.8, 0.0, 0.8, 1.0]
    """

    _circular = True

    def _build(self):
        rng = as_rng(_stream(self.seed, 1))
        base = random(1, self.dim, seed=_stream(self.seed, 0)).words[0]
        order = rng.permutation(self.dim)
        half = self.dim // 2
        step = self.dim / self.levels  # bits flipped per level step
        spans = []
        for k in range(self.levels):
            if k <= self.levels / 2:
                spans.append((0, int(round(k * step))))
            else:
                spans.append((int(round((k - self.levels / 2) * step)), half))
        return _flip_rows(base, self.dim, order[:half], spans)


def _symbol_array(symbols):
    """A list / tuple of symbols as a 1-D array: str or int dtype when uniform, else object."""
    items = list(symbols)
    if items and all(isinstance(s, str) for s in items):
        return np.array(items)
    if items and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in items):
        return np.array(items, np.int64)
    arr = np.empty(len(items), object)
    for i, s in enumerate(items):
        arr[i] = s
    return arr


class ItemMemory(_SparseVariant):
    """A seeded random codebook: one hypervector per symbol, looked up by symbol.

    ``symbols_or_size``: an int ``n`` (the symbols are ``0 .. n-1``) or an iterable of hashable
    symbols. With ``grow=True``, looking up an unknown symbol adds it; otherwise it is an error.
    Row ``i`` depends only on ``(seed, i)``, so a memory grown symbol by symbol equals one built
    with all its symbols at once.

    Shapes: ``encode(symbols)`` one symbol -> BinaryHV ``()``; a list / array of ``n`` -> ``(n,)``
    (NumPy arrays of any shape keep their shape).

    >>> import hdc
    >>> mem = hdc.ItemMemory(10_000, ["a", "b", "c"], seed=0)
    >>> x = mem.encode(["a", "c"])
    >>> x.shape, bool(x[1] == mem["c"]), round(float(hdc.similarity(x[0], x[1])), 1)
    ((2,), True, 0.0)
    """

    def __init__(self, dim, symbols_or_size, seed=None, grow=False, block_size=None):
        self.dim = check_dim(dim)
        self.seed = _entropy(seed)
        self.grow = bool(grow)
        if isinstance(symbols_or_size, numbers.Integral) and not isinstance(symbols_or_size, bool):
            size = check_int(symbols_or_size, "symbols_or_size", low=0)
            symbols = list(range(size))
        elif isinstance(symbols_or_size, (str, bytes)):
            raise TypeError("symbols_or_size must be an int or an iterable of symbols, got a string "
                            "(pass list(text) for its characters)")
        else:
            try:
                symbols = list(symbols_or_size)
            except TypeError:
                raise TypeError("symbols_or_size must be an int or an iterable of symbols, got "
                                f"{type(symbols_or_size).__name__}") from None
        self._index = {}
        self._symbols = []
        self._is_range = True
        self._words = self._rows(np.empty(0, np.int64))
        self.add(symbols)

    def __len__(self):
        return len(self._symbols)

    def __contains__(self, symbol):
        try:
            return symbol in self._index
        except TypeError:
            return False

    @property
    def symbols(self):
        """The symbols in row order (a new list)."""
        return list(self._symbols)

    @property
    def vectors(self):
        """All rows, ``(len(self),)``."""
        return self._wrap(self._words)

    def _rows(self, keys):
        """The rows of symbol numbers ``keys``."""
        return _keyed_rows(self.seed, 0, keys, self.dim)

    def _wrap(self, rows):
        return BinaryHV._wrap(rows, self.dim)

    def add(self, symbols):
        """Add symbols not yet present (in order); returns their row indices (int64)."""
        symbols = list(symbols)
        new, seen = [], set()
        for s in symbols:
            try:
                if s not in self._index and s not in seen:
                    seen.add(s)
                    new.append(s)
            except TypeError:
                raise TypeError(f"symbols must be hashable, got {type(s).__name__}") from None
        if new:
            start = len(self._symbols)
            rows = self._rows(np.arange(start, start + len(new)))
            self._words = np.ascontiguousarray(np.concatenate([self._words, rows]))
            for i, s in enumerate(new):
                self._index[s] = start + i
            self._symbols.extend(new)
            # symbols 0..n-1 in order: integer lookups need no dictionary
            self._is_range = self._is_range and all(
                type(s) in (int, np.int64, np.int32) and s == start + i for i, s in enumerate(new))
        return np.array([self._index[s] for s in symbols], np.int64)

    def index(self, symbols):
        """Row index of each symbol (int64, shape like :meth:`encode`).

        Vectorised: a batch is reduced to its distinct symbols (``np.unique``) and only those are
        looked up; a memory built from a size takes integer arrays straight as row numbers.
        """
        if not isinstance(symbols, (list, tuple, np.ndarray)):
            return self._lookup([symbols])[0]
        arr = symbols if isinstance(symbols, np.ndarray) else _symbol_array(symbols)
        if arr.dtype.kind in "iu" and self._is_range:
            flat = arr.ravel().astype(np.int64)
            out = (flat < 0) | (flat >= len(self))
            if out.any():
                self._lookup(np.unique(flat[out]).tolist())  # grows, or raises for unknown symbols
            if self._is_range:
                return flat.reshape(arr.shape)
        flat = arr.ravel()
        try:
            uniq, inverse = np.unique(flat, return_inverse=True)
        except TypeError:  # symbols that do not sort: look each one up
            return self._lookup(flat.tolist()).reshape(arr.shape)
        return self._lookup(uniq.tolist())[inverse.reshape(-1)].reshape(arr.shape)

    def _lookup(self, symbols):
        """Row indices (int64) of a list of symbols; adds the unknown ones when growing."""
        missing = []
        for s in symbols:
            try:
                if s not in self._index:
                    missing.append(s)
            except TypeError:
                raise TypeError(f"symbols must be hashable, got {type(s).__name__}") from None
        if missing:
            if not self.grow:
                raise ValueError(f"unknown symbol {missing[0]!r} (not in this ItemMemory; "
                                 "create it with grow=True to add symbols on lookup)")
            self.add(missing)
        return np.fromiter((self._index[s] for s in symbols), np.int64, len(symbols))

    def encode(self, symbols):
        """The hypervector of each symbol (see the class docstring for shapes)."""
        if _dask.is_collection(symbols):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, symbols)
        idx = self.index(symbols)
        return self._wrap(self._words[idx])

    __call__ = encode

    def __getitem__(self, symbol):
        return self.encode(symbol)

    def __repr__(self):
        return f"ItemMemory(dim={self.dim}, size={len(self)}, seed={self.seed}, grow={self.grow})"


class RecordEncoder(_SparseVariant):
    """Feature vectors to hypervectors: bundle over features of ``id[f] XOR level(x[f])``.

    Feature ids are seeded random vectors; levels come from a :class:`LevelEncoder` with
    ``levels`` points over ``[low, high]`` (scalars, or one range per feature). With an even
    number of features, ties take the bits of a seeded random tie vector (``self.tie``).

    Shapes: ``encode(X)`` with ``X (n, n_features)`` -> BinaryHV ``(n,)``; ``(n_features,)`` -> ``()``.

    >>> import hdc, numpy as np
    >>> enc = hdc.RecordEncoder(10_000, n_features=4, levels=10, low=0, high=1, seed=0)
    >>> X = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.5], [0.9, 0.7, 0.0, 0.0]])
    >>> s = hdc.similarity(enc(X[0]), enc(X))
    >>> bool(s[1] > s[2])
    True
    """

    def __init__(self, dim, n_features, levels=16, low=0.0, high=1.0, seed=None, block_size=None):
        self.dim = check_dim(dim)
        self.n_features = check_int(n_features, "n_features", low=1)
        self.levels = _check_levels(levels)
        self.low, self.high = _check_range(low, high, (self.n_features,))
        self.seed = _entropy(seed)
        self.level_encoder = LevelEncoder(self.dim, self.levels, 0.0, 1.0, seed=_stream(self.seed, 1))
        self.ids = random(self.n_features, self.dim, seed=_stream(self.seed, 0))
        self.tie = random(1, self.dim, seed=_stream(self.seed, 2))[0]

    def index(self, X):
        """Level index of every value, int32 ``(n, n_features)``; errors outside [low, high] or NaN."""
        x = check_finite_array(X, "X")
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}) or ({self.n_features},), "
                             f"got {x.shape}")
        bad = (x < self.low) | (x > self.high)
        if np.any(bad):
            i = np.argwhere(bad)[0]
            f = int(i[-1])
            raise ValueError(f"X{list(map(int, i))} = {x[tuple(i)]} is outside [low, high] = "
                             f"[{self.low[f]}, {self.high[f]}] for feature {f}")
        frac = (x - self.low) / (self.high - self.low)
        return np.rint(frac * (self.levels - 1)).astype(np.int32)

    def encode(self, X):
        """Encode feature vectors (see the class docstring for shapes)."""
        if _dask.is_collection(X):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, X)
        idx = self.index(X)
        rows = np.ascontiguousarray(np.atleast_2d(idx))
        out = np.empty((rows.shape[0], n_words(self.dim)), np.uint64)
        if rows.shape[0]:
            kernels().record_majority(rows, self.ids.words, self.level_encoder.codebook.words,
                                      self.tie.words, out)
        return BinaryHV._wrap(out if idx.ndim == 2 else out[0], self.dim)

    __call__ = encode

    def __repr__(self):
        return (f"RecordEncoder(dim={self.dim}, n_features={self.n_features}, levels={self.levels}, "
                f"seed={self.seed})")


class NGramEncoder(_SparseVariant):
    """Strings (any Unicode) or integer token sequences to the bundle of their n-grams.

    The n-gram at position ``p`` is ``bind_j permute(item[t[p + j]], n - 1 - j)`` (torchhd's
    ``ngrams`` order); the text vector is the majority over all its n-grams (over all sizes when
    ``n`` is a tuple, e.g. ``(1, 2, 3)``). Item vectors depend only on ``(seed, symbol)``: the
    symbol of a character is its code point, of a token its integer value (>= 0). With an even
    number of n-grams, ties take the bits of ``self.tie``, a random vector drawn from the seed.
    Counting is bit-sliced and compiled (Numba), parallel over texts.

    Shapes: ``encode(text)`` -> BinaryHV ``()``; a list of ``n`` strings or token sequences (or a
    2-D int array) -> ``(n,)``. A 1-D int array or list of ints is one token sequence.

    >>> import hdc
    >>> enc = hdc.NGramEncoder(10_000, n=3, seed=0)
    >>> x = enc(["Привет, мир", "hello world"])
    >>> x.shape, bool(enc("hello world") == x[1])
    ((2,), True)
    """

    def __init__(self, dim, n=3, seed=None, block_size=None):
        self.dim = check_dim(dim)
        sizes = (n,) if isinstance(n, numbers.Integral) else tuple(n)
        if not sizes:
            raise ValueError("n must be a positive int or a non-empty tuple of them")
        self.sizes = tuple(sorted(set(check_int(s, "n", low=1) for s in sizes)))
        self.n = self.sizes[0] if len(self.sizes) == 1 else self.sizes
        self.seed = _entropy(seed)
        self.tie = random(1, self.dim, seed=_stream(self.seed, 0))[0]
        n_max = self.sizes[-1]
        self._symbols = np.empty(0, np.int64)   # symbol value of each table column
        self._lookup = np.full(128, -1, np.int32)  # symbol value -> column, for small values
        self._large = {}                          # symbol value -> column, for values >= 2**21
        self._table = np.empty((n_max, 0, n_words(self.dim)), np.uint64)

    def item_vectors(self, symbols):
        """Item vectors of symbol values (ints >= 0, code points for characters), BinaryHV ``(n,)``."""
        keys = np.asarray(symbols, np.int64).reshape(-1)
        if np.any(keys < 0):
            raise ValueError("symbols must be non-negative integers")
        return BinaryHV._wrap(_keyed_rows(self.seed, 1, keys, self.dim), self.dim)

    def _shifted_items(self, values):
        """Table columns of new symbol values: ``permute(item, s)`` rows, ``(n_max, len(values), W)``."""
        items = self.item_vectors(values)
        return np.stack([permute(items, s).words for s in range(self.sizes[-1])])

    def _grow(self, values):
        """Add table columns for new symbol values."""
        cols = self._shifted_items(values)
        start = self._symbols.size
        self._table = np.ascontiguousarray(np.concatenate([self._table, cols], axis=1))
        self._symbols = np.concatenate([self._symbols, values])
        small = values[values < (1 << 21)]
        if small.size and small.max() >= self._lookup.size:
            grown = np.full(max(int(small.max()) + 1, 2 * self._lookup.size), -1, np.int32)
            grown[:self._lookup.size] = self._lookup
            self._lookup = grown
        for i, v in enumerate(values.tolist()):
            if v < (1 << 21):
                self._lookup[v] = start + i
            else:
                self._large[v] = start + i

    def _columns(self, values):
        """Table column of each symbol value (int32), adding new symbols on the way."""
        if values.size == 0:
            return values.astype(np.int32)
        if values.min() < 0:
            raise ValueError("token ids must be non-negative integers")
        small = values < (1 << 21)
        cols = np.full(values.shape, -1, np.int32)
        sv = values[small]
        in_lut = sv < self._lookup.size
        cols_small = np.full(sv.shape, -1, np.int32)
        cols_small[in_lut] = self._lookup[sv[in_lut]]
        cols[small] = cols_small
        if not small.all():
            uniq, inverse = np.unique(values[~small], return_inverse=True)
            found = np.array([self._large.get(v, -1) for v in uniq.tolist()], np.int32)
            cols[~small] = found[inverse.reshape(-1)]
        if np.any(cols < 0):
            self._grow(np.unique(values[cols < 0]))
            return self._columns(values)
        return cols

    def _tokens(self, texts):
        """(values int64 (total,), lengths int64 (n,), single) from the accepted input forms."""
        if isinstance(texts, str):
            return self._tokens([texts])[:2] + (True,)
        if isinstance(texts, np.ndarray) and texts.dtype != object:
            if not np.issubdtype(texts.dtype, np.integer):
                raise TypeError(f"texts must be strings or integer token sequences, got dtype {texts.dtype}")
            if texts.ndim == 1:
                return texts.astype(np.int64), np.array([texts.size], np.int64), True
            if texts.ndim == 2:
                return (texts.astype(np.int64).ravel(), np.full(texts.shape[0], texts.shape[1], np.int64),
                        False)
            raise ValueError(f"texts as an array must be 1-D or 2-D, got shape {texts.shape}")
        try:
            items = list(texts)
        except TypeError:
            raise TypeError("texts must be a string, a token sequence or a list of them, got "
                            f"{type(texts).__name__}") from None
        if items and all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items):
            return np.asarray(items, np.int64), np.array([len(items)], np.int64), True
        if all(isinstance(t, str) for t in items):
            lengths = np.fromiter((len(t) for t in items), np.int64, len(items))
            values = np.frombuffer("".join(items).encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.int64)
            return values, lengths, False
        seqs = []
        for i, t in enumerate(items):
            arr = np.asarray(t)
            if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
                raise TypeError(f"texts[{i}] must be a string or a 1-D integer token sequence, got "
                                f"{type(t).__name__}")
            seqs.append(arr.astype(np.int64))
        lengths = np.fromiter((s.size for s in seqs), np.int64, len(seqs))
        values = np.concatenate(seqs) if seqs else np.empty(0, np.int64)
        return values, lengths, False

    def encode(self, texts):
        """Encode one text / token sequence or a batch (see the class docstring for shapes)."""
        if _dask.is_collection(texts):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, texts)
        values, lengths, single = self._tokens(texts)
        short = np.flatnonzero(lengths < self.sizes[0])
        if short.size:
            i = int(short[0])
            what = "empty" if lengths[i] == 0 else f"{int(lengths[i])} symbols long"
            raise ValueError(f"texts[{i}] is {what}; each text needs at least n={self.sizes[0]} symbols "
                             "to have an n-gram" if not single else
                             f"the text is {what}; it needs at least n={self.sizes[0]} symbols")
        cols = self._columns(values)
        offsets = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out = np.empty((lengths.size, n_words(self.dim)), np.uint64)
        if lengths.size:
            kernels().ngram_majority(cols, offsets, self._table, np.array(self.sizes, np.int64),
                                     self.tie.words, out)
        return BinaryHV._wrap(out[0] if single else out, self.dim)

    __call__ = encode

    def __repr__(self):
        return f"NGramEncoder(dim={self.dim}, n={self.n}, seed={self.seed})"


class RandomProjection:
    """Float vectors to binary codes: the sign of a seeded Gaussian projection (SimHash).

    Bit ``j`` of the code of ``x`` is ``x @ P[:, j] > 0`` with ``P`` i.i.d. standard normal of shape
    ``(in_features, dim)``. For two inputs at angle ``theta``, the expected Hamming distance is
    ``dim * theta / pi``.

    Shapes: ``encode(X)`` with ``X (n, in_features)`` -> BinaryHV ``(n,)``; ``(in_features,)`` -> ``()``.

    >>> import hdc, numpy as np
    >>> proj = hdc.RandomProjection(3, 10_000, seed=0)
    >>> codes = proj(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    >>> round(int(hdc.hamming(codes[0], codes[1])) / 10_000, 1)   # angle pi/2 -> 0.5
    0.5
    """

    def __init__(self, in_features, dim, seed=None, dtype=np.float32):
        self.in_features = check_int(in_features, "in_features", low=1)
        self.dim = check_dim(dim)
        self.seed = _entropy(seed)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        rng = as_rng(_stream(self.seed, 0))
        self.projection = rng.standard_normal((self.in_features, self.dim), dtype=self.dtype)

    def encode(self, X, batch_size=4096):
        """Binary codes of float vectors (see the class docstring for shapes)."""
        if _dask.is_collection(X):  # a Dask collection: a lazy map over its partitions
            return _dask.distributed().encode(self, X)
        x = check_finite_array(X, "X", dtype=self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_features:
            raise ValueError(f"X must have shape (n, {self.in_features}) or ({self.in_features},), "
                             f"got {x.shape}")
        rows = np.atleast_2d(x)
        packed = np.empty((rows.shape[0], (self.dim + 7) // 8), np.uint8)
        for start in range(0, rows.shape[0], batch_size):
            bits = rows[start:start + batch_size] @ self.projection > 0
            packed[start:start + batch_size] = np.packbits(bits, axis=-1, bitorder="little")
        words = BinaryHV.from_packed(packed, self.dim).words
        return BinaryHV._wrap(words if x.ndim == 2 else words[0], self.dim)

    __call__ = encode

    def __repr__(self):
        return f"RandomProjection(in_features={self.in_features}, dim={self.dim}, seed={self.seed})"
