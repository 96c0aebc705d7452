"""Query batches for shards on the client's host, handed over through one file in shared memory.

Dask sends a call's arguments to every actor over its comms: a batch of 1,024 queries of 10,000
bits (1.25 MiB) is pickled, written to a socket and read back once per worker process, which
costs each side about a millisecond of CPU per shard. Worker processes on the client's own host
read one copy from ``/dev/shm`` instead: the client writes the batch there once per search and
each shard gets a :class:`SharedQueries` (a file name and a shape) in place of the rows.

Whether a shard's worker sees the client's ``/dev/shm`` is probed once, when the shard is
created (:func:`probe` / :func:`can_read`): a worker on another host, or in a container with its
own ``/dev/shm``, keeps getting the rows over Dask. Shards in the client's own process (a
threaded cluster) get the rows themselves: Dask passes them by reference there.

Shapes: :meth:`QueryFiles.share` takes a batch ``(nq,)`` of BinaryHV or SparseHV; ``SharedQueries.read()``
gives back an equal batch.

>>> import hdc
>>> files = QueryFiles()
>>> q = hdc.random(100, 10_000, seed=0)
>>> with files.share(q) as ref:
...     bool(ref is None or (ref.read().words == q.words).all())
True
>>> files.close()
"""
import contextlib
import os
import threading
import uuid

import numpy as np

from .._validate import padding_mask
from ..hv import BinaryHV
from ..memory import _pid_alive
from ..sparse import SparseHV

SHARED_DIR = "/dev/shm"
# Below this many bytes a batch goes inline: one small message costs less than a file.
MIN_SHARED_BYTES = 64 << 10
_PREFIX = "hdc-queries-"


def available():
    """Whether this host has a writable shared-memory folder."""
    return os.path.isdir(SHARED_DIR) and os.access(SHARED_DIR, os.W_OK | os.X_OK)


class SharedQueries:
    """A batch of queries in a file under ``/dev/shm``: what a shard receives instead of the rows."""

    __slots__ = ("path", "shape", "dtype", "dim", "block_size")

    def __init__(self, path, shape, dtype, dim, block_size):
        self.path, self.shape, self.dtype, self.dim, self.block_size = path, shape, dtype, dim, block_size

    def __reduce__(self):
        return SharedQueries, (self.path, self.shape, self.dtype, self.dim, self.block_size)

    def read(self):
        """The batch, as a BinaryHV or SparseHV; ValueError if the file is not the batch it names."""
        count = self.shape[0] * self.shape[1]
        try:
            rows = np.fromfile(self.path, np.dtype(self.dtype), count=count)
        except OSError as exc:
            raise ValueError(f"{self.path}: cannot read the query batch the client wrote ({exc})") from None
        if rows.size != count:
            raise ValueError(f"{self.path}: holds {rows.size} values, the query batch {self.shape} needs {count}")
        rows = rows.reshape(self.shape)
        if self.block_size is not None:
            if rows.size and int(rows.max()) >= self.block_size:
                raise ValueError(f"{self.path}: a query index is >= block_size {self.block_size}")
            return SparseHV._wrap(rows, self.block_size)
        if self.dim % 64 and rows.size and np.any(rows[:, -1] & ~padding_mask(self.dim)):
            raise ValueError(f"{self.path}: nonzero padding bits past dim={self.dim}")
        return BinaryHV._wrap(rows, self.dim)


def _new_path():
    return os.path.join(SHARED_DIR, f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")


def _create(path):
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rows(queries):
    """(row array, dim or None, block_size or None) of a BinaryHV or SparseHV batch."""
    if isinstance(queries, SparseHV):
        return queries.indices, None, queries.block_size
    return queries.words, queries.dim, None


class QueryFiles:
    """Files under ``/dev/shm`` that carry query batches to the shards: one per search in flight.

    A file is rewritten in place by the next search (its pages stay allocated: rewriting 1.25 MiB
    costs a tenth of what writing a new file does), so a memory keeps as many files as it had
    searches running at once, each as large as its largest batch up to ``MAX_KEPT_BYTES``; larger
    batches get a file of their own, deleted after the search. :meth:`close` deletes them all.
    """

    MAX_KEPT_BYTES = 64 << 20

    def __init__(self):
        self._free = []  # (path, fd) not in use
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def share(self, queries):
        """Context manager: ``queries`` (a 1-D batch) written to a file, as a :class:`SharedQueries`.

        Gives None (send the rows inline) below ``MIN_SHARED_BYTES``, without a shared-memory folder,
        or when the batch cannot be written there (the folder is full).
        """
        rows, dim, block_size = _rows(queries)
        if queries.ndim != 1 or rows.nbytes < MIN_SHARED_BYTES or not available():
            yield None
            return
        keep = rows.nbytes <= self.MAX_KEPT_BYTES
        slot = self._take(keep)
        data = np.ascontiguousarray(rows)
        if slot is not None and not _write_all(slot[1], data):
            _drop(slot)   # /dev/shm full, or no room for a new file: this batch goes inline
            slot = None
        if slot is None:
            yield None
            return
        try:
            yield SharedQueries(slot[0], rows.shape, rows.dtype.str, dim, block_size)
        finally:
            with self._lock:
                if keep and not self._closed:
                    self._free.append(slot)
                    slot = None
            if slot is not None:
                _drop(slot)

    def _take(self, keep):
        """A free (path, fd), or a new one; None if no file can be created."""
        with self._lock:
            if keep and self._free:
                return self._free.pop()
        path = _new_path()
        try:
            return path, _create(path)
        except OSError:
            return None

    def close(self):
        """Delete every file (searches still running delete theirs when they end)."""
        with self._lock:
            self._closed = True
            slots, self._free = self._free, []
        for slot in slots:
            _drop(slot)


def _write_all(fd, data):
    """Write ``data`` at the start of file ``fd``; False when it does not fit (ENOSPC, a short write)."""
    try:
        return os.pwrite(fd, data.data, 0) == data.nbytes
    except OSError:
        return False


def _drop(slot):
    path, fd = slot
    os.close(fd)
    _unlink(path)


@contextlib.contextmanager
def probe():
    """Context manager: a small file under ``/dev/shm`` with random content, as ``(path, content)``;
    None where there is no shared-memory folder. Pass it to :func:`can_read` on a worker."""
    if not available():
        yield None
        return
    remove_stale()
    path, content = _new_path(), uuid.uuid4().bytes
    try:
        fd = _create(path)
        with open(fd, "wb") as f:
            f.write(content)
        yield path, content
    finally:
        _unlink(path)


def can_read(probe_file):
    """On a worker: whether it sees the client's probe file (so it shares the client's /dev/shm)."""
    if probe_file is None:
        return False
    path, content = probe_file
    try:
        with open(path, "rb") as f:
            return f.read(len(content) + 1) == content
    except OSError:
        return False


def remove_stale():
    """Delete query files that clients killed mid-search left behind (their pid is gone)."""
    try:
        names = os.listdir(SHARED_DIR)
    except OSError:
        return
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            _unlink(os.path.join(SHARED_DIR, name))
