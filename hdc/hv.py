"""``BinaryHV``: an array of bit-packed binary hypervectors.

Element ``i`` of a ``dim``-element hypervector is bit ``i % 64`` of word ``i // 64``
(little-endian within the word, the layout of ``np.packbits(x, bitorder="little")``).
Padding bits past ``dim`` are always 0.
"""
import numpy as np

from ._validate import check_dim, n_words, padding_mask


def _index_key(key, ndim):
    """Check that an index only touches batch axes (never the word axis)."""
    parts = key if isinstance(key, tuple) else (key,)
    used = sum(1 for p in parts if p is not None and p is not Ellipsis
               and not (isinstance(p, np.ndarray) and p.dtype == bool and p.ndim > 1))
    used += sum(p.ndim - 1 for p in parts if isinstance(p, np.ndarray) and p.dtype == bool and p.ndim > 1)
    if used > ndim:
        raise IndexError(f"too many indices: BinaryHV has {ndim} batch axes, got {used}")
    if any(p is Ellipsis for p in parts):
        return parts
    return parts + (Ellipsis,)


class BinaryHV:
    """An array of binary hypervectors, 64 elements per ``uint64`` word.

    Shapes: ``words`` is ``batch_shape + (n_words,)`` with ``n_words = ceil(dim / 64)``;
    ``shape`` is ``batch_shape``.

    >>> import hdc
    >>> x = hdc.BinaryHV.from_bool([[1, 0, 1], [0, 0, 1]])
    >>> x.shape, x.dim, x.words.ravel().tolist()
    ((2,), 3, [5, 4])
    """

    __slots__ = ("_words", "_dim")
    __array_priority__ = 100  # so `ndarray == BinaryHV` defers to BinaryHV

    def __init__(self, words, dim):
        dim = check_dim(dim)
        if not isinstance(words, np.ndarray):
            raise TypeError(f"words must be a numpy.ndarray of uint64, got {type(words).__name__}")
        if words.dtype != np.uint64:
            raise TypeError(f"words must have dtype uint64, got {words.dtype}")
        if words.ndim < 1 or words.shape[-1] != n_words(dim):
            raise ValueError(f"words must have last axis n_words = ceil({dim} / 64) = {n_words(dim)}, "
                             f"got shape {words.shape}")
        if not words.flags.c_contiguous or not words.flags.aligned:
            raise ValueError("words must be C-contiguous and aligned; pass np.ascontiguousarray(words)")
        if dim % 64 and np.any(words[..., -1] & ~padding_mask(dim)):
            raise ValueError(f"words has nonzero padding bits (elements >= dim={dim} in the last word)")
        self._words = words
        self._dim = dim

    @classmethod
    def _wrap(cls, words, dim):
        """Internal: wrap words known to be valid, without checks."""
        hv = cls.__new__(cls)
        hv._words = words
        hv._dim = dim
        return hv

    # ---- attributes ---------------------------------------------------------------------------
    @property
    def words(self):
        """The packed words, ``batch_shape + (n_words,)`` uint64."""
        return self._words

    @property
    def dim(self):
        """Number of elements per hypervector."""
        return self._dim

    @property
    def shape(self):
        """The batch shape (``words.shape[:-1]``)."""
        return self._words.shape[:-1]

    @property
    def ndim(self):
        return self._words.ndim - 1

    @property
    def n_words(self):
        return self._words.shape[-1]

    @property
    def nbytes(self):
        """Bytes of packed storage."""
        return self._words.nbytes

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a single hypervector (batch shape ())")
        return self._words.shape[0]

    def __getitem__(self, key):
        words = self._words[_index_key(key, self.ndim)]
        return BinaryHV._wrap(np.ascontiguousarray(words), self._dim)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"BinaryHV(shape={self.shape}, dim={self._dim})"

    def copy(self):
        return BinaryHV._wrap(self._words.copy(), self._dim)

    def reshape(self, *shape):
        """A view with a new batch shape."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        return BinaryHV._wrap(self._words.reshape(tuple(shape) + (self.n_words,)), self._dim)

    # ---- operators ----------------------------------------------------------------------------
    def __eq__(self, other):
        """Elementwise equality of whole hypervectors: a bool array of the broadcast batch shape."""
        if not isinstance(other, BinaryHV):
            return NotImplemented
        if other.dim != self.dim:
            return np.zeros(np.broadcast_shapes(self.shape, other.shape), bool)
        return np.all(self._words == other._words, axis=-1)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else ~result

    __hash__ = None

    def __xor__(self, other):
        from .ops import bind
        return bind(self, other)

    def __invert__(self):
        out = ~self._words
        out[..., -1] &= padding_mask(self._dim)
        return BinaryHV._wrap(out, self._dim)

    # ---- conversions --------------------------------------------------------------------------
    @classmethod
    def from_bool(cls, array):
        """Pack an array of 0/1 (or bool) values, shape ``batch_shape + (dim,)``.

        >>> BinaryHV.from_bool([1, 1, 0]).words.tolist()
        [3]
        """
        x = np.asarray(array)
        if x.dtype == object or not (x.dtype == bool or np.issubdtype(x.dtype, np.number)):
            raise TypeError(f"array must be boolean or numeric 0/1, got dtype {x.dtype}")
        if x.ndim < 1 or x.shape[-1] < 1:
            raise ValueError(f"array must have at least one element on its last axis, got shape {x.shape}")
        if x.dtype != bool:
            if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
                raise ValueError("array contains NaN; expected 0/1 values")
            if not np.isin(x, (0, 1)).all():
                raise ValueError("array must contain only 0 and 1 (or booleans)")
            x = x.astype(bool)
        packed = np.packbits(x, axis=-1, bitorder="little")
        return cls.from_packed(packed, x.shape[-1])

    @classmethod
    def from_packed(cls, packed, dim):
        """From ``np.packbits(bits, axis=-1, bitorder="little")`` bytes, shape ``batch + (ceil(dim/8),)``."""
        dim = check_dim(dim)
        packed = np.asarray(packed)
        if packed.dtype != np.uint8:
            raise TypeError(f"packed must have dtype uint8, got {packed.dtype}")
        n_bytes = (dim + 7) // 8
        if packed.ndim < 1 or packed.shape[-1] != n_bytes:
            raise ValueError(f"packed must have last axis ceil({dim} / 8) = {n_bytes}, got shape {packed.shape}")
        if dim % 8 and np.any(packed[..., -1] >> (dim % 8)):
            raise ValueError(f"packed has nonzero bits past dim={dim} in its last byte")
        buf = np.zeros(packed.shape[:-1] + (n_words(dim) * 8,), np.uint8)
        buf[..., :n_bytes] = packed
        words = buf.view("<u8").astype(np.uint64, copy=False)
        return cls._wrap(np.ascontiguousarray(words), dim)

    @classmethod
    def from_bytes(cls, data, dim, shape=None):
        """From raw bytes in the packed layout (``to_bytes`` output); ``shape`` is the batch shape."""
        dim = check_dim(dim)
        packed = np.frombuffer(bytes(data), np.uint8)
        n_bytes = (dim + 7) // 8
        if packed.size % n_bytes:
            raise ValueError(f"data has {packed.size} bytes, not a multiple of ceil(dim / 8) = {n_bytes}")
        shape = (packed.size // n_bytes,) if shape is None else tuple(shape)
        return cls.from_packed(packed.reshape(shape + (n_bytes,)), dim)

    def to_packed(self):
        """``np.packbits(self.to_bool(), axis=-1, bitorder="little")``, without unpacking."""
        n_bytes = (self._dim + 7) // 8
        as_bytes = self._words.astype("<u8", copy=False).view(np.uint8)
        return np.ascontiguousarray(as_bytes[..., :n_bytes])

    def to_bytes(self):
        """The packed layout as ``bytes`` (see :meth:`from_bytes`)."""
        return self.to_packed().tobytes()

    def to_bool(self):
        """Unpack to a bool array of shape ``batch_shape + (dim,)``."""
        bits = np.unpackbits(self.to_packed(), axis=-1, count=self._dim, bitorder="little")
        return bits.astype(bool)

    def to_torchhd(self):
        """A ``torchhd.BSCTensor`` (one bool per element), shape ``batch_shape + (dim,)``."""
        import torch
        import torchhd

        return torchhd.BSCTensor(torch.from_numpy(self.to_bool()))

    @classmethod
    def from_torchhd(cls, tensor):
        """From a torchhd BSC tensor (or any 0/1 torch tensor), element for element."""
        import torch

        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
        return cls.from_bool(tensor.detach().cpu().as_subclass(torch.Tensor).numpy())

    @classmethod
    def concatenate(cls, items, axis=0):
        """Join hypervectors of one ``dim`` along a batch axis."""
        items = list(items)
        if not items:
            raise ValueError("items must contain at least one BinaryHV")
        for i, item in enumerate(items):
            if not isinstance(item, BinaryHV):
                raise TypeError(f"items[{i}] must be a BinaryHV, got {type(item).__name__}")
            if item.dim != items[0].dim:
                raise ValueError(f"items[{i}] has dim {item.dim}, expected {items[0].dim}")
        ndim = items[0].ndim
        if not -ndim <= axis < max(ndim, 1):
            raise ValueError(f"axis {axis} is out of range for batch ndim {ndim}")
        axis = axis % max(ndim, 1)
        words = np.concatenate([np.atleast_2d(item._words) if ndim == 0 else item._words for item in items],
                               axis=axis)
        return cls._wrap(words, items[0].dim)

    @classmethod
    def stack(cls, items):
        """Stack hypervectors of one ``dim`` and batch shape along a new first axis."""
        items = list(items)
        if not items:
            raise ValueError("items must contain at least one BinaryHV")
        for i, item in enumerate(items):
            if not isinstance(item, BinaryHV):
                raise TypeError(f"items[{i}] must be a BinaryHV, got {type(item).__name__}")
            if item.dim != items[0].dim:
                raise ValueError(f"items[{i}] has dim {item.dim}, expected {items[0].dim}")
        return cls._wrap(np.stack([item._words for item in items]), items[0].dim)
