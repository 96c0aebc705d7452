"""``SparseHV``: an array of sparse block codes (SBC).

A sparse block code of ``blocks`` blocks of ``block_size`` elements has exactly one active
element per block, so it is stored as one index per block: ``dim = blocks * block_size`` elements,
``blocks`` indices. The indices are the truth; the dense view (:meth:`SparseHV.to_dense`, a
:class:`~hdc.BinaryHV` with element ``b * block_size + indices[b]`` set) is derived on demand.
"""
import numbers

import numpy as np

from ._validate import as_rng, check_int, n_words
from .hv import BinaryHV

#: ``block_size`` is at most this (indices are stored as uint32 at most).
MAX_BLOCK_SIZE = 1 << 32
#: ``blocks`` is at most this, so the Hamming distance ``2 * blocks`` fits an int32.
MAX_BLOCKS = (1 << 30) - 1
#: The dense expansion's ``dim`` is at most this (the dense dim limit).
MAX_DENSE_DIM = (1 << 31) - 1


def index_dtype(block_size):
    """The smallest unsigned dtype that holds indices ``0 .. block_size - 1``.

    >>> index_dtype(256), index_dtype(257), index_dtype(70_000)
    (dtype('uint8'), dtype('uint16'), dtype('uint32'))
    """
    block_size = check_block_size(block_size)
    return np.dtype(np.uint8 if block_size <= 1 << 8 else np.uint16 if block_size <= 1 << 16 else np.uint32)


def check_block_size(block_size, name="block_size"):
    return check_int(block_size, name, low=1, high=MAX_BLOCK_SIZE)


def _batch_key(key):
    """An index over batch axes only: a trailing full slice keeps the block axis whole.

    With ``...`` in ``key`` the Ellipsis then spans batch axes only, so ``x[..., None]`` adds a
    batch axis before the blocks instead of after them.
    """
    parts = key if isinstance(key, tuple) else (key,)
    return parts + (slice(None),)


class SparseHV:
    """An array of sparse block codes: one active element in each of ``blocks`` blocks.

    Shapes: ``indices`` is ``batch_shape + (blocks,)``, C-contiguous, dtype the smallest of
    uint8 / uint16 / uint32 holding ``block_size`` (see :func:`index_dtype`); ``shape`` is
    ``batch_shape``; ``dim = blocks * block_size``.

    >>> import hdc
    >>> x = hdc.SparseHV([[3, 0, 7], [1, 1, 1]], block_size=8)
    >>> x.shape, x.blocks, x.dim, x.indices.dtype
    ((2,), 3, 24, dtype('uint8'))
    >>> x.to_dense().to_bool()[0].nonzero()[0].tolist()
    [3, 8, 23]
    """

    __slots__ = ("_indices", "_block_size")
    __array_priority__ = 100  # so `ndarray == SparseHV` defers to SparseHV

    def __init__(self, indices, block_size):
        block_size = check_block_size(block_size)
        dtype = index_dtype(block_size)
        if isinstance(indices, np.ndarray):
            array = indices
        else:
            try:
                array = np.asarray(indices)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"indices must be an array of integers, got {type(indices).__name__}: {exc}") from None
        if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"indices must have an integer dtype, got {array.dtype}")
        if array.ndim < 1 or array.shape[-1] < 1:
            raise ValueError(f"indices must have at least one block on its last axis, got shape {array.shape}")
        check_int(array.shape[-1], "blocks (indices.shape[-1])", high=MAX_BLOCKS)
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < 0:
                raise ValueError(f"indices must be >= 0, got {low}")
            if high >= block_size:
                raise ValueError(f"indices must be < block_size={block_size}, got {high}")
        # a private copy: the checks above keep holding whatever the caller does to its array
        self._indices = np.array(array, dtype=dtype, order="C", copy=True)
        self._block_size = block_size

    @classmethod
    def _wrap(cls, indices, block_size):
        """Internal: wrap indices known to be valid (right dtype, C-contiguous, < block_size)."""
        hv = cls.__new__(cls)
        hv._indices = indices
        hv._block_size = block_size
        return hv

    # ---- attributes ---------------------------------------------------------------------------
    @property
    def indices(self):
        """The active index of every block, ``batch_shape + (blocks,)``, a read-only view.

        To edit, copy: ``SparseHV(x.indices.copy(), x.block_size)`` checks the new indices.
        """
        view = self._indices.view()
        view.flags.writeable = False
        return view

    @property
    def block_size(self):
        """Elements per block."""
        return self._block_size

    @property
    def blocks(self):
        """Blocks per hypervector (``indices.shape[-1]``)."""
        return self._indices.shape[-1]

    @property
    def dim(self):
        """Elements per hypervector, ``blocks * block_size``."""
        return self.blocks * self._block_size

    @property
    def shape(self):
        """The batch shape (``indices.shape[:-1]``)."""
        return self._indices.shape[:-1]

    @property
    def ndim(self):
        return self._indices.ndim - 1

    @property
    def nbytes(self):
        """Bytes of index storage."""
        return self._indices.nbytes

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a single hypervector (batch shape ())")
        return self._indices.shape[0]

    def __getitem__(self, key):
        indices = self._indices[_batch_key(key)]
        return SparseHV._wrap(np.ascontiguousarray(indices), self._block_size)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"SparseHV(shape={self.shape}, blocks={self.blocks}, block_size={self._block_size})"

    def copy(self):
        return SparseHV._wrap(self._indices.copy(), self._block_size)

    def reshape(self, *shape):
        """A view with a new batch shape."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        return SparseHV._wrap(self._indices.reshape(tuple(shape) + (self.blocks,)), self._block_size)

    def __eq__(self, other):
        """Equality of whole hypervectors: a bool array of the broadcast batch shape."""
        if not isinstance(other, SparseHV):
            return NotImplemented
        if other.block_size != self.block_size or other.blocks != self.blocks:
            return np.zeros(np.broadcast_shapes(self.shape, other.shape), bool)
        return np.all(self._indices == other._indices, axis=-1)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else ~result

    __hash__ = None

    # ---- conversions --------------------------------------------------------------------------
    def to_dense(self):
        """The dense expansion: a ``BinaryHV`` of ``dim`` elements, ``b * block_size + indices[b]`` set.

        >>> SparseHV([1, 0], block_size=3).to_dense().to_bool().astype(int).tolist()
        [0, 1, 0, 1, 0, 0]
        """
        dim = self.dim
        if dim > MAX_DENSE_DIM:
            raise ValueError(f"to_dense: dim = blocks * block_size = {dim} is above the dense limit {MAX_DENSE_DIM}")
        rows = self._indices.reshape(-1, self.blocks)
        positions = np.arange(self.blocks, dtype=np.int64) * self._block_size + rows
        words = np.zeros((rows.shape[0], n_words(dim)), np.uint64)
        row_of = np.broadcast_to(np.arange(rows.shape[0])[:, None], positions.shape)
        np.bitwise_or.at(words, (row_of, positions >> 6), np.uint64(1) << (positions & 63).astype(np.uint64))
        return BinaryHV._wrap(words.reshape(self.shape + (n_words(dim),)), dim)

    @classmethod
    def from_dense(cls, hv, block_size):
        """From a ``BinaryHV`` with exactly one 1 in each block of ``block_size`` elements.

        >>> import hdc
        >>> x = hdc.random_sparse(4, 10, 16, seed=0)
        >>> bool((SparseHV.from_dense(x.to_dense(), 16) == x).all())
        True
        """
        if not isinstance(hv, BinaryHV):
            raise TypeError(f"hv must be a hdc.BinaryHV, got {type(hv).__name__}")
        block_size = check_block_size(block_size)
        if hv.dim % block_size:
            raise ValueError(f"hv.dim={hv.dim} is not a multiple of block_size={block_size}")
        blocks = hv.dim // block_size
        bits = hv.to_bool().reshape(hv.shape + (blocks, block_size))
        per_block = bits.sum(-1)
        if np.any(per_block != 1):
            bad = np.argwhere(per_block != 1)[0]
            raise ValueError(f"hv must have exactly one 1 per block of block_size={block_size}; "
                             f"block {tuple(int(i) for i in bad)} has {int(per_block[tuple(bad)])}")
        return cls._wrap(np.ascontiguousarray(bits.argmax(-1), dtype=index_dtype(block_size)), block_size)

    def to_torchhd(self):
        """A ``torchhd.BSBCTensor`` (int64 indices, same ``block_size``), shape ``batch_shape + (blocks,)``."""
        import torch
        import torchhd

        tensor = torch.from_numpy(self._indices.astype(np.int64)).as_subclass(torchhd.BSBCTensor)
        tensor.block_size = self._block_size
        return tensor

    @classmethod
    def from_torchhd(cls, tensor, block_size=None):
        """From a torchhd BSBC tensor (its ``block_size`` unless one is given), index for index."""
        import torch

        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
        if block_size is None:
            block_size = getattr(tensor, "block_size", None)
            if block_size is None:
                raise ValueError("tensor has no block_size attribute (not a torchhd BSBCTensor); pass block_size=")
        values = tensor.detach().cpu().as_subclass(torch.Tensor).numpy()
        return cls(values, block_size)

    def to_bytes(self):
        """The indices as little-endian bytes (see :meth:`from_bytes`)."""
        return self._indices.astype(self._indices.dtype.newbyteorder("<"), copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data, blocks, block_size, shape=None):
        """From :meth:`to_bytes` output; ``shape`` is the batch shape (default: a 1-D batch)."""
        blocks = check_int(blocks, "blocks", low=1, high=MAX_BLOCKS)
        dtype = index_dtype(block_size).newbyteorder("<")
        row = blocks * dtype.itemsize
        data = bytes(data)
        if len(data) % row:
            raise ValueError(f"data has {len(data)} bytes, not a multiple of blocks * itemsize = {row}")
        shape = (len(data) // row,) if shape is None else tuple(shape)
        if int(np.prod(shape, dtype=np.int64)) * row != len(data):
            raise ValueError(f"shape {shape} needs {int(np.prod(shape, dtype=np.int64)) * row} bytes, data has {len(data)}")
        return cls(np.frombuffer(data, dtype).reshape(shape + (blocks,)), block_size)

    @classmethod
    def concatenate(cls, items, axis=0):
        """Join sparse hypervectors of one ``blocks`` and ``block_size`` along a batch axis."""
        items = check_same_kind(items)
        ndim = items[0].ndim
        if not -ndim <= axis < max(ndim, 1):
            raise ValueError(f"axis {axis} is out of range for batch ndim {ndim}")
        axis = axis % max(ndim, 1)
        indices = np.concatenate([item._indices[None] if ndim == 0 else item._indices for item in items], axis=axis)
        return cls._wrap(indices, items[0].block_size)

    @classmethod
    def stack(cls, items):
        """Stack sparse hypervectors of one ``blocks``, ``block_size`` and batch shape on a new first axis."""
        items = check_same_kind(items)
        return cls._wrap(np.stack([item._indices for item in items]), items[0].block_size)


def check_same_kind(items):
    """``items`` as a non-empty list of SparseHV of one ``blocks`` and ``block_size``."""
    items = list(items)
    if not items:
        raise ValueError("items must contain at least one SparseHV")
    for i, item in enumerate(items):
        if not isinstance(item, SparseHV):
            raise TypeError(f"items[{i}] must be a SparseHV, got {type(item).__name__}")
        if (item.blocks, item.block_size) != (items[0].blocks, items[0].block_size):
            raise ValueError(f"items[{i}] has blocks={item.blocks}, block_size={item.block_size}; expected "
                             f"blocks={items[0].blocks}, block_size={items[0].block_size}")
    return items


def random_sparse(n, blocks, block_size, seed=None):
    """Uniform random sparse block codes, reproducible for a seed on every backend and machine.

    Shapes: ``n`` an int or a shape tuple -> SparseHV of batch shape ``(n,)`` or ``n``, ``blocks``
    indices each.

    >>> import hdc
    >>> x = hdc.random_sparse(3, 100, 1024, seed=0)
    >>> x.shape, x.dim, x.nbytes
    ((3,), 102400, 600)
    """
    blocks = check_int(blocks, "blocks", low=1, high=MAX_BLOCKS)
    block_size = check_block_size(block_size)
    if isinstance(n, tuple):
        shape = tuple(check_int(s, "n", low=0) for s in n)
    elif isinstance(n, numbers.Integral):
        shape = (check_int(n, "n", low=0),)
    else:
        raise TypeError(f"n must be an int or a tuple of ints, got {type(n).__name__}")
    rng = as_rng(seed)
    count = int(np.prod(shape, dtype=np.int64)) * blocks
    # random_raw is the bit generator's own stream (stable across NumPy versions); the high 32 bits
    # times block_size, shifted down, map it onto [0, block_size) (Lemire's multiply-shift)
    raw = rng.bit_generator.random_raw(count).astype(np.uint64, copy=False)
    indices = ((raw >> np.uint64(32)) * np.uint64(block_size)) >> np.uint64(32)
    return SparseHV._wrap(indices.astype(index_dtype(block_size)).reshape(shape + (blocks,)), block_size)
