"""``AssociativeMemory`` of sparse block codes: what ``hdc.AssociativeMemory(dim, block_size=L)`` builds.

The same API, labels, removal, file format family (version 2 files carry ``block_size``) and
checks as the binary memory (:mod:`hdc.memory`); search ranks by overlap (Hamming distance
``2 * (blocks - overlap)`` of the dense expansions), equal overlaps in insertion order. Exact
search runs by scan, or, for large memories, by an inverted index ``(block, index) -> rows``
that gives exactly the scan's answer, ties included.
"""
import threading

import numpy as np

from ._validate import check_int
from .backend import kernels
from .memory import AssociativeMemory
from .sparse import SparseHV, check_block_size, index_dtype
from .sparse_ops import check_pair, check_sparse

#: memories of at least this many codes are searched through the inverted index (``index="auto"``)
INDEX_MIN_ROWS = 100_000
#: rows per segment of the inverted index: a query counts one segment at a time, in a counter per
#: row that stays in L2 (128 KiB), and the postings are segment-local uint16 row numbers
INDEX_SEGMENT = 1 << 16
# the index's offsets table has segments * blocks * block_size + 1 entries: at most this many
_INDEX_MAX_KEYS = 1 << 26


class SparseAssociativeMemory(AssociativeMemory):
    """Labelled sparse block codes searched exactly by overlap (see :class:`hdc.AssociativeMemory`).

    ``index``: ``"auto"`` (the inverted index from :data:`INDEX_MIN_ROWS` stored codes on),
    ``True`` or ``False``; either way only while its offsets table, ``ceil(rows / 65536) * blocks
    * block_size`` entries, stays within ``2**26`` (e.g. 43 million rows of 100 blocks of 1024).
    The index is rebuilt on the first search after a change (a counting sort per segment of
    :data:`INDEX_SEGMENT` rows, O(rows x blocks)); its answers equal the scan's.

    Shapes: ``add(x)`` SparseHV ``()`` or ``(n,)``; ``search(queries, k)`` -> ``(distances int32,
    labels)``, each ``(nq, k)`` (or ``(k,)`` for one query).

    >>> import hdc
    >>> mem = hdc.AssociativeMemory(102_400, block_size=1024)
    >>> codes = hdc.random_sparse(3, 100, 1024, seed=0)
    >>> mem.add(codes, labels=["cat", "dog", "cow"])
    >>> d, labels = mem.search(codes[1], k=2)
    >>> labels[0], int(d[0])
    ('dog', 0)
    """

    def __init__(self, dim, block_size=None, index="auto"):
        block_size = check_block_size(block_size)
        if dim % block_size:
            raise ValueError(f"dim must be a multiple of block_size, got dim={dim}, block_size={block_size}")
        super().__init__(dim)
        if index not in ("auto", True, False):
            raise ValueError(f"index must be 'auto', True or False, got {index!r}")
        self._block_size = block_size
        self._w = dim // block_size
        self._row_dtype = index_dtype(block_size)
        self._words = np.empty((0, self._w), self._row_dtype)
        self._index_mode = index
        self._index = None          # (version, offsets, postings) of the last build
        self._version = 0           # bumped by every add / remove
        self._index_lock = threading.Lock()

    @property
    def blocks(self):
        return self._w

    @property
    def block_size(self):
        return self._block_size

    def __repr__(self):
        where = ", mmap" if self._source is not None else ""
        return (f"AssociativeMemory(dim={self._dim}, block_size={self._block_size}, len={self._n}{where})")

    # ---- the hooks of AssociativeMemory ----------------------------------------------------
    def _wrap(self, rows):
        return SparseHV._wrap(rows, self._block_size)

    def _check_hv(self, x, name):
        check_sparse(x, name)
        check_pair(x, SparseHV._wrap(self._words[:0], self._block_size), name, "the memory")

    def _rows_of(self, x):
        if x.ndim > 1:
            raise ValueError(f"x must be a 1-D batch of hypervectors, got batch shape {x.shape}")
        return x.indices.reshape(-1, self._w)

    def _check_rows(self, rows, path):
        if rows.size and int(rows.max()) >= self._block_size:
            raise ValueError(f"{path}: malformed payload: an index >= block_size={self._block_size}")

    def _format(self):
        from .memory import _SPARSE_FIELDS
        return 2, self._w, _SPARSE_FIELDS.pack(1, self._row_dtype.itemsize, self._block_size)

    def _use_index(self):
        if self._index_keys() > _INDEX_MAX_KEYS:
            return False
        return self._index_mode is True or (self._index_mode == "auto" and self._n >= INDEX_MIN_ROWS)

    def _topk(self, queries, k, stored):
        if not self._use_index():
            return super()._topk(queries, k, stored)
        return self.index_search(queries, k)

    def add(self, x, labels=None):
        super().add(x, labels)
        self._version += 1

    def remove(self, labels):
        removed = super().remove(labels)
        self._version += 1
        return removed

    # ---- the inverted index ----------------------------------------------------------------
    def _index_keys(self):
        return -(-max(self._n, 1) // INDEX_SEGMENT) * self._w * self._block_size

    def _current_index(self):
        """(offsets, postings) for the stored rows, rebuilt when the rows changed since."""
        rows = self._payload()[:self._n]
        with self._index_lock:
            built = self._index
            if built is None or built[0] != self._version:
                offsets = np.empty(self._index_keys() + 1, np.int64)
                postings = np.empty(self._n * self._w, np.uint16)
                kernels().sparse_index_build(np.ascontiguousarray(rows), self._block_size, INDEX_SEGMENT,
                                             offsets, postings)
                self._index = built = (self._version, offsets, postings)
        return built[1], built[2]

    def index_search(self, queries, k=1):
        """:meth:`search` through the inverted index, whatever the size: ``(distances, row numbers)``."""
        self._check_hv(queries, "queries")
        if self._n == 0:
            raise ValueError("the memory is empty; add vectors before searching")
        if self._index_keys() > _INDEX_MAX_KEYS:
            raise ValueError(f"the inverted index of {self._n} rows of {self._w} blocks of {self._block_size} "
                             f"would need more than {_INDEX_MAX_KEYS} offsets; search by scan (index=False)")
        k = check_int(k, "k", low=1, high=self._n)
        if queries.ndim > 1:
            raise ValueError(f"queries must be a 1-D batch of hypervectors, got batch shape {queries.shape}")
        offsets, postings = self._current_index()
        q = queries.indices.reshape(-1, self._w)
        ov = np.empty((q.shape[0], k), np.int32)
        idx = np.empty((q.shape[0], k), np.int64)
        if q.shape[0]:
            kernels().sparse_index_topk(q, self._block_size, INDEX_SEGMENT, offsets, postings, self._n, k, ov, idx)
        dist = (2 * (self._w - ov)).astype(np.int32)
        return (dist[0], idx[0]) if queries.ndim == 0 else (dist, idx)
