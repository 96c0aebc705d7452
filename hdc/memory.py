"""``AssociativeMemory``: labelled hypervectors with exact Hamming search and a safe file format.

File format (version 1), all integers little-endian. Sections in file order::

    offset  size  field
    0       8     magic b"HDCAMEM\\x00"
    8       4     u32 version (1: binary hypervectors; 2: sparse block codes)
    12      4     u32 header_size (128)
    16      4     u32 header_crc: CRC-32 of the 128 header bytes, this field read as 0
    20      4     u32 label_kind: 0 = every label an int64, 1 = tagged (int64 or UTF-8 str)
    24      8     u64 dim (version 2: blocks, the indices per stored code)
    32      8     u64 count (stored vectors)
    40      8     i64 next_label (the default label the next add() would give)
    48      8     u64 chunk_bytes (payload bytes per checksum chunk)
    56      8     u64 labels_offset
    64      8     u64 labels_nbytes
    72      4     u32 labels_crc: CRC-32 of the label table
    76      4     u32 chunks_crc: CRC-32 of the chunk checksum table
    80      8     u64 chunks_offset (= 128)
    88      8     u64 n_chunks = ceil(payload_nbytes / chunk_bytes)
    96      8     u64 payload_offset (a multiple of 64)
    104     8     u64 payload_nbytes = count * ceil(dim / 64) * 8 (version 2: count * blocks * itemsize)
    112     16    version 1: reserved, zero; version 2: u32 vector_kind (1 = sparse block codes),
                  u32 itemsize of an index (1, 2 or 4, the smallest holding block_size),
                  u64 block_size
    128           chunk checksum table: n_chunks u32 CRC-32s, one per chunk_bytes of payload
    labels_offset (8-aligned)  label table:
                  kind 0: count i64 labels
                  kind 1: count u8 tags (0 = int, 1 = str), zero padding to a multiple of 8,
                          count + 1 u64 byte offsets into the data, then the data
                          (an int label is its 8 bytes i64, a str label its UTF-8 bytes)
    payload_offset  the words, count rows of ceil(dim / 64) u64, row-major (version 2: count rows
                  of blocks indices, each < block_size); zero padding before it, nothing after
                  it (file size = payload_offset + payload_nbytes)

Every byte is covered by a checksum: the header by ``header_crc``, the chunk table by
``chunks_crc``, the labels by ``labels_crc``, the payload by the chunk table; the zero padding
between sections is checked to be zero. The magic, version and ``header_crc`` sit at fixed
offsets in every version and the checksummed header is always the first 128 bytes (a later
version would add sections, not grow it), so a newer file is told apart from a damaged one.
"""
import contextlib
import errno
import mmap as _mmap
import os
import stat
import socket
import struct
import sys
import threading
import time
import uuid
import zlib

import numpy as np

from ._validate import MAX_DIM, check_dim, n_words, padding_mask
from .hv import BinaryHV
from .ops import _as_batch, as_hv, topk

MAGIC = b"HDCAMEM\x00"
FORMAT_VERSION = 2   # the newest version read; binary memories are written as version 1
_SPARSE_FIELDS = struct.Struct("<IIQ")  # the 16 bytes at offset 112 of a version 2 header
_HEADER = struct.Struct("<8sIIIIQQqQQQIIQQQQ16s")
_HEADER_SIZE = 128
_CRC_OFFSET = 16
_CHUNK_BYTES = 16 << 20
_TMP_MARK = ".hdc-tmp-"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
assert _HEADER.size == _HEADER_SIZE


class LabelNotFound(KeyError, ValueError):
    """A label given to ``remove`` is not stored (a KeyError and a ValueError)."""


def _align(n, a):
    return (n + a - 1) // a * a


def _is_int_label(label):
    return isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_))


def _labels_array(labels, n):
    """``labels`` (a sequence of ``n`` hashables) as an int64 array if all are int64, else object."""
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.shape[0] == n:
        if labels.dtype.kind == "i" or labels.dtype.kind == "u" and (n == 0 or labels.max() <= _INT64_MAX):
            return labels.astype(np.int64)
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"labels must be a sequence of {n} labels (one per vector), got {type(labels).__name__}")
    items = list(labels)
    if len(items) != n:
        raise ValueError(f"labels must have one label per vector ({n}), got {len(items)}")
    if all(_is_int_label(v) and _INT64_MIN <= int(v) <= _INT64_MAX for v in items):
        return np.array([int(v) for v in items], np.int64).reshape(n)
    out = np.empty(n, object)
    for i, v in enumerate(items):
        try:
            hash(v)
        except TypeError:
            raise TypeError(f"labels[{i}] must be hashable, got {type(v).__name__}") from None
        out[i] = int(v) if _is_int_label(v) else v
    return out


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms without directory fds (Windows): os.replace is already atomic there
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


_LOCK_TYPE, _RLOCK_TYPE = type(threading.Lock()), type(threading.RLock())
_LOCK_TYPES = (_LOCK_TYPE, _RLOCK_TYPE)
_active_tmp = set()
_active_lock = threading.Lock()


# A temp file untouched this long is stale even if its pid is alive (the pid was reused) or
# belongs to another host sharing the directory (whose processes this one cannot see).
_STALE_SECONDS = 3600


def _host_tag():
    """A short tag of this machine's name, so pids are only judged on the host that owns them."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _remove_stale_temps(directory, base):
    """Delete temp files that killed saves of ``base`` left behind.

    Temp names are ``.<base>.hdc-tmp-<pid>-<host>-<random>``. One is stale when its process (on
    this host) is gone, or when it has not been written to for an hour. Saves in progress in
    this process or in other live processes keep theirs.
    """
    prefix = f".{base}{_TMP_MARK}"
    try:
        names = os.listdir(directory)
    except OSError:
        return
    host, now = _host_tag(), time.time()
    for name in names:
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split("-")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        path = os.path.join(directory, name)
        with _active_lock:
            if path in _active_tmp:
                continue
        try:
            age = now - os.stat(path).st_mtime
        except OSError:
            continue
        gone = parts[1] == host and (pid == os.getpid() or not _pid_alive(pid))
        if gone or age > _STALE_SECONDS:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _rows_with(labels, targets):
    """Which of ``labels`` (n,) are in ``targets`` (a list): the rule ``remove`` applies."""
    if labels.dtype != object and all(_is_int_label(t) for t in targets):
        return np.isin(labels, np.array([int(t) for t in targets], np.int64))
    wanted = set(targets)
    return np.fromiter((v in wanted for v in labels.tolist()), bool, labels.shape[0])


_PAGE = _mmap.PAGESIZE
# verify(release=True) checks, and then drops from RSS, a memory-mapped payload in runs of this many bytes
_RELEASE_BYTES = 64 << 20


def _release(mapping, words, start, stop):
    """Drop bytes ``[start, stop)`` of ``words`` (a view of the read-only ``mapping``) from RSS."""
    base = words.__array_interface__["data"][0] - np.frombuffer(mapping, np.uint8, 1).__array_interface__["data"][0]
    lo = (base + start) // _PAGE * _PAGE
    mapping.madvise(_mmap.MADV_DONTNEED, lo, base + stop - lo)


@contextlib.contextmanager
def atomic_file(path):
    """Context manager: a binary file whose contents replace ``path`` atomically when the block ends.

    The file is written under a temporary name in ``path``'s directory (``.<name>.hdc-tmp-<pid>-
    <host>-<random>``), then flushed, fsynced and renamed over ``path``, and the directory is
    fsynced: a writer killed at any moment leaves the previous ``path`` intact. An exception in
    the block deletes the temporary file. Temporary files of killed writers (their process gone,
    or untouched for an hour) are deleted first.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> with atomic_file(path) as f:
    ...     _ = f.write(b"abc")
    >>> open(path, "rb").read()
    b'abc'
    """
    directory, base = os.path.split(os.path.abspath(path))
    _remove_stale_temps(directory, base)
    tmp = os.path.join(directory, f".{base}{_TMP_MARK}{os.getpid()}-{_host_tag()}-{uuid.uuid4().hex}")
    with _active_lock:
        _active_tmp.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        with _active_lock:
            _active_tmp.discard(tmp)


def write_file_atomic(path, data):
    """Write the bytes ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        f.write(data)


class AssociativeMemory:
    """Labelled binary hypervectors searched by exact Hamming distance.

    ``add`` appends (amortised O(1) per vector: capacity grows geometrically), ``search`` returns
    the ``k`` nearest stored vectors' distances and labels (nearest first, ties by insertion
    order), ``cleanup`` the nearest stored vectors themselves, ``remove`` deletes by label.

    Labels: any hashable. Without labels, a vector's label is its insertion index (the number of
    vectors added before it, removed ones included). Duplicate labels are allowed: search returns
    the label of each matching row, ``remove(label)`` deletes every row with it. Search returns
    labels as an int64 array when every label is an int, otherwise as an object array.
    ``save`` accepts int (int64 range) and str labels only.

    Thread safety: one writer and many readers at once (and several writers, one at a time).
    Mutations hold the memory's lock; readers and ``save`` take a consistent snapshot of the
    stored rows and labels under it, and ``remove`` never compacts rows a reader may hold (it
    writes new arrays), so a search or a save running beside ``add`` / ``remove`` sees the
    memory as it was before or after each call, never in between. Pickling copies the stored
    vectors and labels (an mmap-loaded memory becomes an in-RAM one).

    >>> import hdc
    >>> mem = hdc.AssociativeMemory(1024)
    >>> items = hdc.random(3, 1024, seed=0)
    >>> mem.add(items, labels=["cat", "dog", "cow"])
    >>> d, labels = mem.search(items[1], k=2)
    >>> labels[0], int(d[0])
    ('dog', 0)
    >>> "cow" in mem, len(mem)
    (True, 3)
    """

    _row_dtype = np.dtype(np.uint64)

    def __new__(cls, dim=None, block_size=None, **sparse_options):
        if block_size is not None and cls is AssociativeMemory:
            from .sparse_memory import SparseAssociativeMemory
            cls = SparseAssociativeMemory
        return super().__new__(cls)

    def __init__(self, dim, block_size=None):
        self._dim = check_dim(dim)
        self._w = n_words(self._dim)
        self._words = np.empty((0, self._w), np.uint64)
        self._labels = np.empty(0, np.int64)
        self._n = 0
        self._next_label = 0
        self._label_set = None
        self._pending = None   # payload checksums still to check (a lazily verified mmap load)
        self._lock = threading.RLock()  # held by every mutation and every snapshot
        self._source = None    # the mmap the words live in, if any

    # ---- basic protocol -------------------------------------------------------------------
    @property
    def dim(self):
        return self._dim

    def __len__(self):
        return self._n

    def __repr__(self):
        where = ", mmap" if self._source is not None else ""
        return f"AssociativeMemory(dim={self._dim}, len={self._n}{where})"

    def __contains__(self, label):
        try:
            hash(label)
        except TypeError:
            return False
        with self._lock:
            if self._label_set is None:
                self._label_set = set(self._labels[:self._n].tolist())
            return label in self._label_set

    @property
    def labels(self):
        """The stored labels in row order (a copy): int64 array, or object array if not all ints."""
        return self._snapshot()[1].copy()

    @property
    def vectors(self):
        """The stored vectors in row order, a read-only ``BinaryHV`` view ``(len,)``."""
        words = self._snapshot()[0].view()
        words.flags.writeable = False
        return self._wrap(words)

    @property
    def mapped(self):
        """Whether the stored rows are read from a memory-mapped file (``load(..., mmap=True)``)."""
        return self._source is not None

    def rows_with(self, labels):
        """Which stored rows have a label in ``labels`` (a sequence): a bool array ``(len,)``.

        The rule :meth:`remove` applies (ints match ints of equal value, anything else by ``==``
        and hash). Labels that are not stored match nothing.

        >>> import hdc
        >>> mem = hdc.AssociativeMemory(64)
        >>> mem.add(hdc.random(3, 64, seed=0), labels=["a", "b", "a"])
        >>> mem.rows_with(["a"]).tolist()
        [True, False, True]
        """
        return _rows_with(self._snapshot()[1], list(labels))

    def release_rows(self, start, stop):
        """Drop the pages of rows ``[start, stop)`` from this process's resident memory.

        For a memory-mapped memory (:attr:`mapped`): the pages stay in the OS page cache and are
        read back on the next access, so scanning a file larger than RAM block by block, releasing
        each block after it, keeps the process's resident set at one block. A no-op for a memory
        in RAM. Shapes: row numbers as in :attr:`vectors`.
        """
        with self._lock:
            mapping, words = self._source, self._words
        if mapping is None or stop <= start:
            return
        row = words.shape[1] * words.itemsize
        _release(mapping, words, start * row, stop * row)

    # ---- what differs between binary and sparse memories (overridden in hdc.sparse_memory) --
    def _wrap(self, rows):
        return BinaryHV._wrap(rows, self._dim)

    def _check_hv(self, x, name):
        as_hv(x, name)
        if x.dim != self._dim:
            raise ValueError(f"{name} must have dim {self._dim} (the memory's), got {x.dim}")

    def _check_rows(self, rows, path):
        """ValueError unless payload rows read from ``path`` are valid vectors."""
        if self._dim % 64 and rows.shape[0] and np.any(rows[:, -1] & ~padding_mask(self._dim)):
            raise ValueError(f"{path}: malformed payload: nonzero padding bits past dim={self._dim}")

    def _format(self):
        """(version, dim field, the 16 bytes at offset 112) of this memory's file header."""
        return 1, self._dim, bytes(16)

    def _snapshot(self):
        """``(words (n, W), labels (n,), next_label)``: one consistent state of the memory.

        Rows below ``n`` are never written again (add appends past them, remove writes new
        arrays), so the views stay valid while other threads add or remove.
        """
        words = self._payload()
        with self._lock:
            words, n = self._words, self._n
            if self._source is not None and self._source.size() < self._source_size:
                raise ValueError(f"the file this memory was mmap-loaded from shrank from {self._source_size} "
                                 f"to {self._source.size()} bytes (truncated by another process?); "
                                 "load it again")
            return words[:n], self._labels[:n], self._next_label

    def __getstate__(self):
        """A copy of one snapshot: the rows, labels and settings; locks and mappings are not kept."""
        words, labels, next_label = self._snapshot()
        with self._lock:
            state = {k: v for k, v in self.__dict__.items() if not isinstance(v, _LOCK_TYPES)}
            locks = {k: isinstance(v, _RLOCK_TYPE) for k, v in self.__dict__.items() if isinstance(v, _LOCK_TYPES)}
        state.update(_words=words.copy(), _labels=labels.copy(), _n=words.shape[0], _next_label=next_label,
                     _source=None, _pending=None, _label_set=None, _locks=locks)
        return state

    def __setstate__(self, state):
        state = dict(state)
        for name, reentrant in state.pop("_locks").items():
            state[name] = threading.RLock() if reentrant else threading.Lock()
        self.__dict__.update(state)

    # ---- mutation -------------------------------------------------------------------------
    def _reserve(self, extra):
        need = self._n + extra
        cap = self._words.shape[0]
        if need <= cap and self._words.flags.writeable:
            return
        new_cap = max(need, cap + cap // 2 + 16)
        words = np.empty((new_cap, self._w), self._row_dtype)
        words[:self._n] = self._payload()[:self._n]
        labels = np.empty(new_cap, self._labels.dtype)
        labels[:self._n] = self._labels[:self._n]
        self._words, self._labels, self._source = words, labels, None

    def add(self, x, labels=None):
        """Store hypervector(s) ``x`` (a single one or a 1-D batch) with optional labels.

        ``labels``: None (insertion indices), one hashable for a single vector, or a sequence
        with one label per vector.
        """
        self._check_hv(x, "x")
        rows = self._rows_of(x)
        n = rows.shape[0]
        if labels is not None:
            new = _labels_array([labels], 1) if x.ndim == 0 else _labels_array(labels, n)
        with self._lock:
            self._add(rows, None if labels is None else new)

    def _add(self, rows, new):
        n = rows.shape[0]
        if new is None:
            if self._next_label + n - 1 > _INT64_MAX:
                raise ValueError(f"default labels would pass the int64 limit (next label {self._next_label}, "
                                 f"{n} vectors); pass labels= explicitly")
            new = np.arange(self._next_label, self._next_label + n, dtype=np.int64)
        if n == 0:
            return
        self._payload()
        self._reserve(n)
        if new.dtype == object and self._labels.dtype != object:
            self._labels = self._labels.astype(object)
        self._words[self._n:self._n + n] = rows
        self._labels[self._n:self._n + n] = new
        if self._label_set is not None:
            self._label_set.update(new.tolist())
        self._n += n  # published last: a reader never sees a row before it is written
        self._next_label = min(self._next_label + n, _INT64_MAX)

    def remove(self, labels):
        """Delete every stored vector whose label is in ``labels`` (one label or a sequence).

        A list, tuple, set or array is a sequence of labels; to remove a tuple label, wrap it:
        ``remove([("a", 1)])``.
        Returns the number of vectors removed. Raises :class:`LabelNotFound` (a KeyError and a
        ValueError) naming the labels that are not stored; nothing is removed then.
        """
        if not isinstance(labels, (list, tuple, set, frozenset, range, np.ndarray)):
            targets = [labels]
        else:
            targets = list(np.asarray(labels).tolist() if isinstance(labels, np.ndarray) else labels)
        with self._lock:
            return self._remove(targets)

    def _remove(self, targets):
        missing = [t for t in targets if t not in self]
        if missing:
            raise LabelNotFound(f"labels not in the memory: {missing[:10]!r}"
                                + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        current = self._labels[:self._n]
        drop = _rows_with(current, targets)
        keep = ~drop
        # new arrays, never a compaction in place: readers may hold views of the old rows
        words = np.ascontiguousarray(self._payload()[:self._n][keep])
        labels = np.ascontiguousarray(current[keep])
        self._words, self._labels, self._n, self._source = words, labels, words.shape[0], None
        self._label_set = None
        return int(drop.sum())

    # ---- search ---------------------------------------------------------------------------
    def _payload(self, release=False):
        """The word buffer, after verifying its checksums if a lazy load left that pending
        (``release``: in blocks, each dropped from resident memory once checked)."""
        if self._pending is not None:
            with self._lock:
                if self._pending is not None:
                    path, crcs, chunk = self._pending
                    words, n = self._words, self._n
                    if not (release and self._source is not None):
                        _verify_payload(words, crcs, chunk, path)
                        self._check_rows(words[:n], path)
                    else:
                        source = self._source
                        _verify_payload(words, crcs, chunk, path, lambda a, b: _release(source, words, a, b))
                        step = max(1, _RELEASE_BYTES // (words.shape[1] * words.itemsize))
                        for r0 in range(0, n, step):
                            self._check_rows(words[r0:min(n, r0 + step)], path)
                            self.release_rows(r0, min(n, r0 + step))
                    self._pending = None
        return self._words

    def _stored(self):
        """(stored vectors BinaryHV (n,), labels (n,)) of one snapshot; error when empty."""
        words, labels, _ = self._snapshot()
        if words.shape[0] == 0:
            raise ValueError("the memory is empty; add vectors before searching")
        return self._wrap(words), labels

    def search(self, queries, k=1):
        """The ``k`` stored vectors nearest each query: ``(distances int32, labels)``.

        Shapes: queries ``(nq,)`` -> ``(nq, k)`` each; a single query gives ``(k,)``. Nearest
        first; equal distances in insertion order. ``1 <= k <= len(self)``.
        """
        self._check_hv(queries, "queries")
        stored, labels = self._stored()
        dist, idx = self._topk(queries, k, stored)
        return dist, labels[idx]

    def search_rows(self, queries, k=1):
        """:meth:`search` with row numbers in place of labels: ``(distances int32, rows int64)``.

        Rows count stored vectors in insertion order (as :attr:`vectors` and :attr:`labels` do), so
        the answer is ordered by (distance, row). Shapes as :meth:`search`.

        >>> import hdc
        >>> mem = hdc.AssociativeMemory(256)
        >>> items = hdc.random(4, 256, seed=0)
        >>> mem.add(items, labels=["a", "b", "c", "d"])
        >>> d, rows = mem.search_rows(items[[2, 0]], k=1)
        >>> rows[:, 0].tolist(), mem.labels[rows[:, 0]].tolist()
        ([2, 0], ['c', 'a'])
        """
        self._check_hv(queries, "queries")
        stored, _ = self._stored()
        return self._topk(queries, k, stored)

    def within(self, queries, radius):
        """Every stored vector within Hamming distance ``radius`` (inclusive) of each query.

        Returns ``(distances, labels)`` as :func:`hdc.within` does with indices: for a 1-D batch
        of ``nq`` queries two object arrays of length ``nq`` (entry ``i``: query ``i``'s distances
        and labels, nearest first, ties in insertion order); for a single query two 1-D arrays.

        >>> import hdc
        >>> mem = hdc.AssociativeMemory(256)
        >>> mem.add(hdc.random(3, 256, seed=0), labels=["a", "b", "c"])
        >>> d, labels = mem.within(mem.vectors[1], radius=10)
        >>> labels.tolist(), d.tolist()
        (['b'], [0])
        """
        from .search import within

        self._check_hv(queries, "queries")
        words, labels, _ = self._snapshot()
        dist, idx = within(queries, self._wrap(words), radius)
        if queries.ndim == 0:
            return dist, labels[idx]
        out = np.empty(len(idx), object)
        for i, rows in enumerate(idx):
            out[i] = labels[rows]
        return dist, out

    def cleanup(self, x):
        """The stored vector nearest each of ``x``: a BinaryHV of ``x``'s batch shape."""
        self._check_hv(x, "x")
        stored, _ = self._stored()
        _, idx = self._topk(x, 1, stored)
        return stored[idx[..., 0]]

    def _topk(self, queries, k, stored):
        """``topk`` of ``queries`` in ``stored`` (a snapshot of the rows, see :meth:`_stored`)."""
        return topk(queries, stored, k)

    def _rows_of(self, x):
        return _as_batch(x, "x")

    def verify(self, release=False):
        """Check the payload checksums now if they are still pending (a lazily verified mmap).

        Raises ValueError if the file's payload is corrupted. A memory built in RAM, or one
        whose payload was verified already, passes at once. ``release=True`` checks a
        memory-mapped payload in blocks of 64 MB and drops each from resident memory once
        checked (:meth:`release_rows`), so checking a file larger than RAM stays within a block.
        """
        self._payload(release)

    # ---- persistence ----------------------------------------------------------------------
    @staticmethod
    def _label_table(labels):
        """(kind, bytes) of the label table of ``labels`` (n,); TypeError if one cannot be saved."""
        n = labels.shape[0]
        if labels.dtype != object:
            return 0, labels.astype("<i8").tobytes()
        tags = np.empty(n, np.uint8)
        parts = []
        for i, v in enumerate(labels.tolist()):
            if isinstance(v, str):
                tags[i] = 1
                try:
                    parts.append(v.encode("utf-8"))
                except UnicodeEncodeError as exc:
                    raise TypeError(f"label {v!r} (row {i}) is not valid Unicode, so it cannot be "
                                    f"saved as UTF-8: {exc}") from None
            elif _is_int_label(v):
                if not _INT64_MIN <= int(v) <= _INT64_MAX:
                    raise TypeError(f"label {v!r} (row {i}) is outside the int64 range; save stores "
                                    "int labels as int64")
                tags[i] = 0
                parts.append(struct.pack("<q", int(v)))
            else:
                raise TypeError(f"save stores labels that are int or str only; label {v!r} (row {i}) "
                                f"is a {type(v).__name__}")
        offsets = np.zeros(n + 1, "<u8")
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        pad = bytes(_align(n, 8) - n)
        return 1, b"".join([tags.tobytes(), pad, offsets.tobytes(), *parts])

    def save(self, path):
        """Write the memory to ``path`` atomically (format in the module docstring).

        The file is written to a temporary name in the same directory, fsynced and renamed over
        ``path``, then the directory is fsynced: a save killed at any moment leaves the previous
        file intact, and the next save deletes the temporary files killed saves left behind
        (those whose process is gone, or untouched for an hour).
        Raises TypeError if a label is not an int (int64) or a str.
        """
        path = _check_path(path)
        words, labels, next_label = self._snapshot()  # one consistent state, even while add runs
        kind, table = self._label_table(labels)
        payload_nbytes = words.nbytes
        n_chunks = -(-payload_nbytes // _CHUNK_BYTES)
        labels_offset = _align(_HEADER_SIZE + 4 * n_chunks, 8)
        payload_offset = _align(labels_offset + len(table), 64)
        with atomic_file(path) as f:
            f.write(bytes(labels_offset))        # header and chunk table, written last
            f.write(table)
            f.write(bytes(payload_offset - labels_offset - len(table)))
            flat = words.reshape(-1)
            if sys.byteorder != "little":
                flat = flat.astype(self._row_dtype.newbyteorder("<"))
            raw = memoryview(flat).cast("B") if flat.size else memoryview(b"")
            crcs = np.empty(n_chunks, "<u4")
            for c in range(n_chunks):
                part = raw[c * _CHUNK_BYTES:(c + 1) * _CHUNK_BYTES]
                crcs[c] = zlib.crc32(part)
                f.write(part)
            chunk_table = crcs.tobytes()
            version, dim_field, kind_fields = self._format()
            fields = [MAGIC, version, _HEADER_SIZE, 0, kind, dim_field, words.shape[0],
                      next_label, _CHUNK_BYTES, labels_offset, len(table), zlib.crc32(table),
                      zlib.crc32(chunk_table), _HEADER_SIZE, n_chunks, payload_offset, payload_nbytes,
                      kind_fields]
            header = bytearray(_HEADER.pack(*fields))
            struct.pack_into("<I", header, _CRC_OFFSET, zlib.crc32(header))
            f.seek(0)
            f.write(header)
            f.write(chunk_table)

    @classmethod
    def load(cls, path, mmap=False, verify=True, kind=None):
        """Read a memory written by :meth:`save`: binary or sparse, as the file says.

        ``kind``: None (either), ``"binary"`` or ``"sparse"``: a file of the other kind is refused
        with a ValueError naming both.

        ``mmap=False`` reads everything into RAM and checks every checksum. ``mmap=True`` maps
        the payload read-only (searches run on the mapping without copying; ``add``/``remove``
        copy it into RAM first) and checks the header, label table and file size at once; with
        ``verify=True`` the payload checksums are checked once, on the first access to the
        vectors (search, cleanup, vectors, save, or :meth:`verify`), so opening stays fast and
        no result is ever computed from a corrupted payload. ``verify=False`` skips the payload
        checksums (the header and labels are always checked).

        Raises ValueError saying what is wrong: wrong magic, newer version, truncated file,
        checksum mismatch (header, label table, chunk table or payload chunk), malformed fields.
        Nothing from the file is executed: labels are int64 or UTF-8 data.
        """
        path = _check_path(path)
        # O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files are read
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ValueError(f"{path}: not a regular file (a directory, FIFO or device); expected a file "
                             "written by AssociativeMemory.save")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            size = info.st_size
            meta = _read_meta(f, size, path)
            held = "binary" if meta["block_size"] is None else "sparse"
            if kind not in (None, "binary", "sparse"):
                raise ValueError(f"kind must be None, 'binary' or 'sparse', got {kind!r}")
            if kind is not None and kind != held:
                what = ("binary hypervectors" if held == "binary" else
                        f"sparse block codes (blocks={meta['dim']}, block_size={meta['block_size']})")
                raise ValueError(f"{path}: the file holds {what}, expected {kind} codes")
            if held == "binary":
                mem = AssociativeMemory(meta["dim"])
            else:
                mem = AssociativeMemory(meta["dim"] * meta["block_size"], block_size=meta["block_size"])
            mem._next_label = meta["next_label"]
            mem._labels = meta["labels"]
            mem._n = count = meta["count"]
            w = mem._w
            if mmap and count:
                mapping = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
                little = mem._row_dtype.newbyteorder("<")
                words = np.frombuffer(mapping, little, count * w, meta["payload_offset"]).reshape(count, w)
                if words.dtype != mem._row_dtype:  # a big-endian machine: the file order needs a copy
                    words = words.astype(mem._row_dtype)
                mem._words, mem._source, mem._source_size = words, mapping, size
                if verify:
                    mem._pending = (path, meta["crcs"], meta["chunk_bytes"])
            else:
                words = np.empty((count, w), mem._row_dtype)
                raw = memoryview(words.reshape(-1)).cast("B") if count else memoryview(bytearray())
                f.seek(meta["payload_offset"])
                got = f.readinto(raw) if count else 0
                if got != len(raw):
                    raise ValueError(f"{path}: truncated: the payload ends after {got} of {len(raw)} bytes")
                if sys.byteorder != "little":
                    words.byteswap(inplace=True)
                if verify:
                    _verify_payload(words, meta["crcs"], meta["chunk_bytes"], path)
                    mem._check_rows(words, path)
                mem._words = words
        return mem


def _check_path(path):
    """``path`` (str, bytes or os.PathLike) as a str; TypeError naming what was given otherwise."""
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str, bytes or os.PathLike, got {type(path).__name__}") from None


def _verify_payload(words, crcs, chunk, path, checked=None):
    """Check the chunk CRCs of the payload; ValueError if not. ``checked(start, stop)`` is called
    after each run of about ``_RELEASE_BYTES`` payload bytes checked."""
    flat = words.reshape(-1)
    if sys.byteorder != "little":
        flat = flat.astype(flat.dtype.newbyteorder("<"))
    raw = memoryview(flat).cast("B") if flat.size else memoryview(b"")
    group, first = max(1, _RELEASE_BYTES // chunk), 0
    for c, want in enumerate(crcs.tolist()):
        got = zlib.crc32(raw[c * chunk:(c + 1) * chunk])
        if got != want:
            start = c * chunk
            raise ValueError(f"{path}: checksum mismatch in payload bytes [{start}, "
                             f"{min(start + chunk, len(raw))}) (chunk {c}): the file is corrupted")
        if checked is not None and ((c + 1) % group == 0 or c + 1 == len(crcs)):
            checked(first * chunk, min(len(raw), (c + 1) * chunk))
            first = c + 1


def _read_exact(f, offset, n, size, path, what):
    if offset + n > size:
        raise ValueError(f"{path}: truncated: the {what} needs bytes [{offset}, {offset + n}) "
                         f"but the file has {size} bytes")
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated while reading the {what}")
    return data


def _read_meta(f, size, path):
    """Parse and check everything but the payload; a dict of the fields, labels and chunk CRCs."""
    head = f.read(_HEADER_SIZE)
    if head[:len(MAGIC)] != MAGIC[:len(head)] or len(head) >= len(MAGIC) and head[:8] != MAGIC:
        raise ValueError(f"{path}: not an hdc AssociativeMemory file (wrong magic {head[:8]!r}, "
                         f"expected {MAGIC!r})")
    if len(head) < _HEADER_SIZE:
        raise ValueError(f"{path}: truncated: {size} bytes, shorter than the {_HEADER_SIZE}-byte header")
    version, header_size, header_crc = struct.unpack_from("<III", head, 8)
    header = bytearray(head)
    struct.pack_into("<I", header, _CRC_OFFSET, 0)
    if zlib.crc32(header) != header_crc:
        raise ValueError(f"{path}: checksum mismatch in the header: the file is corrupted")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: file format version {version} is newer than this hdc reads "
                         f"(up to {FORMAT_VERSION}); upgrade hdc to load it")
    if version < 1:
        raise ValueError(f"{path}: unsupported file format version {version}")
    (_, _, _, _, kind, dim, count, next_label, chunk_bytes, labels_offset, labels_nbytes, labels_crc,
     chunks_crc, chunks_offset, n_chunks, payload_offset, payload_nbytes, reserved) = _HEADER.unpack(head)

    def bad(msg):
        return ValueError(f"{path}: malformed header: {msg}")

    if header_size != _HEADER_SIZE:
        raise bad(f"header_size {header_size} is not {_HEADER_SIZE}")
    block_size = None
    if version == 1:
        if reserved != bytes(16):
            raise bad("reserved bytes are not zero")
        if not 1 <= dim <= MAX_DIM:
            raise bad(f"dim {dim} is not in [1, 2**31 - 1]")
        row_bytes = n_words(dim) * 8
    else:
        from .sparse import MAX_BLOCK_SIZE, MAX_BLOCKS, index_dtype
        vector_kind, itemsize, block_size = _SPARSE_FIELDS.unpack(reserved)
        if vector_kind != 1:
            raise bad(f"vector_kind {vector_kind} is not 1 (sparse block codes)")
        if not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise bad(f"block_size {block_size} out of range [1, {MAX_BLOCK_SIZE}]")
        if itemsize != index_dtype(block_size).itemsize:
            raise bad(f"index itemsize {itemsize} does not match block_size {block_size}")
        if not 1 <= dim <= MAX_BLOCKS:
            raise bad(f"blocks {dim} out of range [1, {MAX_BLOCKS}]")
        row_bytes = dim * itemsize
    if kind not in (0, 1):
        raise bad(f"label_kind {kind} is not 0 or 1")
    if next_label < 0:
        raise bad(f"next_label {next_label} is negative")
    if payload_nbytes != count * row_bytes:
        raise bad(f"payload_nbytes {payload_nbytes} != count {count} x {row_bytes} bytes per row")
    if not 8 <= chunk_bytes <= 1 << 40 or chunk_bytes % 8:
        raise bad(f"chunk_bytes {chunk_bytes} is not a multiple of 8 in [8, 2**40]")
    if n_chunks != -(-payload_nbytes // chunk_bytes) or chunks_offset != _HEADER_SIZE:
        raise bad("chunk table position or length is inconsistent with the payload size")
    if labels_offset != _align(chunks_offset + 4 * n_chunks, 8):
        raise bad(f"labels_offset {labels_offset} is not right after the chunk table")
    if payload_offset != _align(labels_offset + labels_nbytes, 64):
        raise bad(f"payload_offset {payload_offset} is not the first 64-byte boundary after the labels")
    expected = payload_offset + payload_nbytes
    if size < expected:
        raise ValueError(f"{path}: truncated: the file has {size} bytes, its header says {expected}")
    if size > expected:
        raise ValueError(f"{path}: corrupted: {size - expected} unexpected bytes after the payload")
    if kind == 0 and labels_nbytes != 8 * count:
        raise bad(f"labels_nbytes {labels_nbytes} != 8 x count {count} for int64 labels")
    if kind == 1 and labels_nbytes < _align(count, 8) + 8 * (count + 1):
        raise bad(f"labels_nbytes {labels_nbytes} is too small for {count} tagged labels")
    chunk_table = _read_exact(f, chunks_offset, 4 * n_chunks, size, path, "chunk table")
    if zlib.crc32(chunk_table) != chunks_crc:
        raise ValueError(f"{path}: checksum mismatch in the payload checksum table: the file is corrupted")
    gap = _read_exact(f, chunks_offset + 4 * n_chunks, labels_offset - chunks_offset - 4 * n_chunks,
                      size, path, "padding")
    table = _read_exact(f, labels_offset, labels_nbytes, size, path, "label table")
    if zlib.crc32(table) != labels_crc:
        raise ValueError(f"{path}: checksum mismatch in the label table: the file is corrupted")
    gap += _read_exact(f, labels_offset + labels_nbytes, payload_offset - labels_offset - labels_nbytes,
                       size, path, "padding")
    if gap.strip(b"\x00"):
        raise ValueError(f"{path}: corrupted: nonzero bytes in the padding between sections")
    labels = _parse_labels(kind, table, count, path)
    return {"dim": dim, "block_size": block_size, "count": count, "next_label": next_label, "labels": labels,
            "chunk_bytes": chunk_bytes, "crcs": np.frombuffer(chunk_table, "<u4").astype(np.uint32),
            "payload_offset": payload_offset}


def _parse_labels(kind, table, count, path):
    def bad(msg):
        return ValueError(f"{path}: malformed label table: {msg}")

    if kind == 0:
        return np.frombuffer(table, "<i8", count).astype(np.int64)
    tags = np.frombuffer(table, np.uint8, count)
    if np.any(tags > 1):
        raise bad("a tag is not 0 (int) or 1 (str)")
    start = _align(count, 8)
    if table[count:start].strip(b"\x00"):
        raise bad("nonzero padding after the tags")
    offsets = np.frombuffer(table, "<u8", count + 1, start).astype(np.int64)
    data = memoryview(table)[start + 8 * (count + 1):]
    if offsets[0] != 0 or offsets[-1] != len(data) or np.any(np.diff(offsets) < 0):
        raise bad("string offsets are not increasing from 0 to the data length")
    lengths = np.diff(offsets)
    if np.any(lengths[tags == 0] != 8):
        raise bad("an int label does not have 8 bytes")
    out = np.empty(count, object)
    data = bytes(data)
    for i, (tag, a, b) in enumerate(zip(tags.tolist(), offsets[:-1].tolist(), offsets[1:].tolist())):
        if tag:
            try:
                out[i] = data[a:b].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise bad(f"label {i} is not valid UTF-8 ({exc.reason})") from None
        else:
            out[i] = int.from_bytes(data[a:b], "little", signed=True)
    if kind == 1 and np.all(tags == 0):
        return out.astype(np.int64)
    return out
