"""``Shard``: one shard of a :class:`~hdc.distributed.ShardedMemory`, living in a Dask actor.

A shard is an :class:`hdc.AssociativeMemory` (it does the storing, searching and file format)
plus, per stored row, its *global position*: the insertion number the coordinator gave it.
Rows are stored in insertion order, so positions increase along a shard and the memory's own
tie order (smaller local index first) is the global one (smaller position first). The shard
knows nothing about the other shards; the coordinator owns the numbering and the merge.

Every method runs on the shard's own single thread, so calls to one shard are serialised
(one writer, no torn reads) while shards on the same worker run in parallel: Dask runs all
actors of a worker on one shared thread, which would serialise them.
"""
import asyncio
import os
import re
import struct
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _env
from .._validate import n_words
from ..backend import get_num_threads, thread_limit
from ..hv import BinaryHV
from ..memory import AssociativeMemory, write_file_atomic
from ..ops import topk
from ..sparse import SparseHV, index_dtype
from ..sparse_ops import topk as sparse_topk
from ._handoff import SharedQueries, can_read

# An mmapped shard is scanned in blocks of this many payload bytes; after each block its pages
# are dropped from the worker's resident set (they stay in the page cache), so a memory-mapped
# shard larger than the worker's memory_limit never counts against it.
_SCAN_BYTES = 64 << 20
# The names save() gives shard files: shard-<index>-<save tag>.hdcm and its positions file.
SHARD_FILE = re.compile(r"shard-\d{5}-[0-9a-f]{12}\.hdcm(\.pos)?")


def row_bytes(dim, block_size=None):
    """Bytes one stored row takes: packed words (binary) or ``blocks`` indices (sparse)."""
    if block_size is None:
        return n_words(dim) * 8
    return dim // block_size * index_dtype(block_size).itemsize


def kind_of(block_size):
    """The manifest's name for the kind of hypervector a memory holds."""
    return "dense" if block_size is None else "sparse"


def _raw(x):
    """The row array of a BinaryHV (words) or SparseHV (indices)."""
    return x.indices if isinstance(x, SparseHV) else x.words


class ShardLostError(RuntimeError):
    """A shard's worker died or left: its data is not reachable until :meth:`ShardedMemory.recover`."""


def header_crc(path):
    """The ``header_crc`` field of a ``.hdcm`` file: a checksum that covers, through the checksums
    in the header, every byte of the file."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20:
        raise ValueError(f"{path}: truncated: shorter than the file header")
    return struct.unpack_from("<I", head, 16)[0]


def _file_crc(path):
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


class Shard:
    """One shard: an AssociativeMemory plus the global position of each row.

    ``Shard(dim)`` starts empty (``block_size=L``: sparse block codes); ``Shard(dim, entry=...,
    directory=..., mmap=...)`` loads the files a manifest entry names (from this worker's disk)
    and checks them against the entry. ``owner_pid``: the coordinator's process; a shard in
    another process applies ``HDC_NUM_THREADS`` (:func:`_use_worker_threads`).
    """

    def __init__(self, dim, entry=None, directory=None, mmap=False, block_size=None, owner_pid=None):
        if owner_pid is not None and owner_pid != os.getpid():
            _use_worker_threads()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hdc-shard")
        self._label_cache = None
        # Drawn here, so a copy of this actor that Dask re-created (a worker restarted at the same
        # address re-runs the task) has another token and refuses calls meant for the lost one.
        self.token = uuid.uuid4().hex
        if entry is None:
            self._mem = AssociativeMemory(dim, block_size=block_size)
            self._pos = np.empty(0, np.int64)
        else:
            self._mem, self._pos = _load_entry(dim, block_size, entry, directory, mmap)
        self._block_size = block_size

    async def _run(self, token, fn, *args):
        if token != self.token:
            raise ShardLostError("this shard was re-created empty after its worker was lost")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def submit(self, token, method, *args):
        """Run actor method ``method``'s work on the shard's thread: a ``concurrent.futures.Future``.

        For a coordinator in this worker's own process (a threaded cluster): the same work, on the
        same single thread, as calling the actor through Dask, without the round trip through the
        event loops (see :meth:`ShardedMemory._call <hdc.distributed.ShardedMemory>`).
        """
        if token != self.token:
            raise ShardLostError("this shard was re-created empty after its worker was lost")
        work = _discard if method == "discard" else getattr(self, "_" + method)
        return self._pool.submit(work, *args)

    # ---- the actor's methods: each checks the caller's token, then works on the shard's thread
    async def hello(self, probe_file=None):
        """``(token, pid, shares)``: the token the coordinator must present on every later call, this
        worker's pid, and whether it reads the coordinator's ``/dev/shm`` probe file
        (:mod:`hdc.distributed._handoff`)."""
        return self.token, os.getpid(), can_read(probe_file)

    async def info(self, token):
        """(count, in-RAM payload bytes, memory-mapped?, pid)."""
        return await self._run(token, self._info)

    async def add(self, token, x, labels, positions):
        return await self._run(token, self._add, x, labels, positions)

    async def search(self, token, queries, k, labels=True, share=1):
        return await self._run(token, self._search, queries, k, labels, share)

    async def holding(self, token, targets):
        return await self._run(token, self._holding, targets)

    async def remove(self, token, targets):
        return await self._run(token, self._remove, targets)

    async def save(self, token, path):
        return await self._run(token, self._save, path)

    async def discard(self, token, directory, keep):
        return await self._run(token, _discard, directory, keep)

    # ---- the work ---------------------------------------------------------------------------
    def _info(self):
        payload = len(self._mem) * row_bytes(self._mem.dim, self._block_size)
        mapped = self._mem.mapped
        return len(self._mem), 0 if mapped else payload, mapped, os.getpid()

    def _labels(self):
        if self._label_cache is None:
            self._label_cache = self._mem.labels
        return self._label_cache

    def _add(self, x, labels, positions):
        self._label_cache = None
        self._mem.add(_aligned(x), labels=labels)
        self._pos = np.concatenate([self._pos, positions])
        return len(self._mem)

    def _search(self, queries, k, labels=True, share=1):
        """The shard's ``min(k, len)`` nearest rows per query: (distances, positions, labels).

        ``queries``: hypervectors, or a :class:`~hdc.distributed._handoff.SharedQueries` to read.
        ``labels=False``: labels None (the coordinator knows every label is its position).
        ``share``: how many shards of this process search at once; the kernels then run on this
        process's threads divided by it (:func:`hdc.backend.thread_limit`), so concurrent shard
        searches split the cores instead of contending for the one C thread pool.
        """
        with thread_limit(max(1, get_num_threads() // share) if share > 1 else 0):
            return self._search_rows(queries, k, labels)

    def _search_rows(self, queries, k, labels):
        if isinstance(queries, SharedQueries):
            queries = queries.read()
        n = len(self._mem)
        k = min(k, n)
        nq = 1 if queries.ndim == 0 else len(queries)
        if k == 0:
            return (np.empty((nq, 0), np.int32), np.empty((nq, 0), np.int64),
                    np.empty((nq, 0), np.int64) if labels else None)
        queries = _aligned(queries[None] if queries.ndim == 0 else queries)
        if not self._mem.mapped:  # the memory's own search path (a large sparse memory's inverted index)
            dist, idx = self._mem.search_rows(queries, k)
        else:
            dist, idx = self._scan_mapped(queries, k)
        return dist, self._pos[idx], self._labels()[idx] if labels else None

    def _scan_mapped(self, queries, k):
        """Blockwise search of a memory-mapped shard, dropping each scanned block from RSS."""
        stored = self._mem.vectors
        scan = topk if self._block_size is None else sparse_topk
        raw = _raw(stored)
        rows = max(k, _SCAN_BYTES // (raw.shape[1] * raw.itemsize))
        best_d = best_i = None
        for start in range(0, len(stored), rows):
            stop = min(len(stored), start + rows)
            d, i = scan(queries, stored[start:stop], min(k, stop - start))
            i = i + start
            if best_d is None:
                best_d, best_i = d, i
            else:  # merge on (distance, index): block indices are all larger than the best's
                d_all = np.concatenate([best_d, d], axis=1)
                i_all = np.concatenate([best_i, i], axis=1)
                order = np.lexsort((i_all, d_all), axis=1)[:, :k]
                best_d = np.take_along_axis(d_all, order, 1)
                best_i = np.take_along_axis(i_all, order, 1)
            self._mem.release_rows(start, stop)
        return best_d, best_i

    def _holding(self, targets):
        return np.array([t in self._mem for t in targets], bool)

    def _remove(self, targets):
        if not targets:
            return len(self._mem)
        self._label_cache = None
        drop = self._mem.rows_with(targets)
        removed = self._mem.remove(targets)
        if removed != int(drop.sum()):  # the two masks follow one rule; never keep a skewed table
            raise RuntimeError(f"shard remove dropped {removed} rows, its position table {int(drop.sum())}")
        self._pos = self._pos[~drop]
        return len(self._mem)

    def _save(self, path):
        """Write ``path`` (the .hdcm file) and ``path + '.pos'`` (positions); return the manifest entry."""
        order = path + ".pos"
        self._mem.save(path)
        write_file_atomic(order, self._pos.astype("<i8").tobytes())
        pos = self._pos
        return {"file": os.path.basename(path), "positions_file": os.path.basename(order),
                "count": len(self._mem), "dim": self._mem.dim, "kind": kind_of(self._block_size),
                "block_size": self._block_size,
                "bytes": os.path.getsize(path), "header_crc": header_crc(path),
                "positions_crc": _file_crc(order),
                "position_range": [int(pos[0]), int(pos[-1])] if pos.size else None,
                "host": os.uname().nodename}


def _use_worker_threads():
    """In a worker process: run the kernels on the threads ``HDC_NUM_THREADS`` asks for now.

    hdc reads ``HDC_NUM_THREADS`` when it is imported, and a worker process that
    multiprocessing's spawn starts imports the client's main module (and with it hdc) before
    Dask sets the worker's environment (``LocalCluster(env=...)``, as ShardedMemory's own
    cluster does): measured, such workers ran the kernels on every core (2 kernel threads per
    1-thread worker), not the 1 they were given.
    """
    from .. import backend

    n = _env.num_threads()
    if n is not None and n != backend.get_num_threads():
        backend.set_num_threads(n)


def _aligned(x):
    """``x`` with aligned words (indices): Dask's wire format can hand over arrays at odd addresses."""
    if _raw(x).flags.aligned:
        return x
    if isinstance(x, SparseHV):
        return SparseHV._wrap(x.indices.copy(), x.block_size)
    return BinaryHV._wrap(x.words.copy(), x.dim)


def _discard(directory, keep):
    """Delete shard files in ``directory`` (on this worker's disk) that the manifest does not name."""
    for name in os.listdir(directory):
        if SHARD_FILE.fullmatch(name) and name not in keep:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def _load_entry(dim, block_size, entry, directory, mmap):
    """Load a shard's files and check them against its manifest entry; ValueError naming the file."""
    path = os.path.join(directory, entry["file"])
    order = os.path.join(directory, entry["positions_file"])
    for p in (path, order):
        if not os.path.exists(p):
            raise FileNotFoundError(f"shard file {p} is missing on {os.uname().nodename}")
    crc = header_crc(path)
    if crc != entry["header_crc"]:
        raise ValueError(f"{path}: the file does not match the manifest (header checksum {crc:#010x}, "
                         f"manifest {entry['header_crc']:#010x}): it was replaced or is corrupted")
    mem = AssociativeMemory.load(path, mmap=mmap, kind="binary" if block_size is None else "sparse")
    if mem.dim != dim:
        raise ValueError(f"{path}: the shard has dim {mem.dim}, the manifest says {dim}")
    if getattr(mem, "block_size", None) != block_size:
        raise ValueError(f"{path}: the shard has block_size {mem.block_size}, the manifest says {block_size}")
    if len(mem) != entry["count"]:
        raise ValueError(f"{path}: the shard holds {len(mem)} vectors, the manifest says {entry['count']}")
    if _file_crc(order) != entry["positions_crc"]:
        raise ValueError(f"{order}: checksum mismatch with the manifest: the positions file is corrupted")
    pos = np.fromfile(order, "<i8").astype(np.int64)
    if pos.size != len(mem) or (pos.size > 1 and np.any(np.diff(pos) <= 0)) or (pos.size and pos[0] < 0):
        raise ValueError(f"{order}: malformed: {pos.size} positions for {len(mem)} vectors, or not increasing")
    if mmap and len(mem):
        mem.verify(release=True)  # in blocks dropped from RSS: a shard larger than memory_limit is safe
    return mem, pos
