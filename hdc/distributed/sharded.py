"""``ShardedMemory``: an AssociativeMemory split over Dask actors, one shard per actor.

The coordinator (this object, in the client process) owns the global numbering: every added
vector gets the next *global position* (its row in one in-process memory that received the same
adds), and default labels as ``AssociativeMemory`` gives them. Shards store vectors, labels and
positions; a search asks every non-empty shard for its ``min(k, len(shard))`` nearest rows and
merges them per query on ``(distance, position)``, so the answer equals, bit for bit and in tie
order, the answer of one in-process memory holding the same items in the same order.
"""
import asyncio
import concurrent.futures
import contextlib
import json
import os
import uuid
import warnings
import weakref

import numpy as np
from distributed.core import Status

from .._validate import check_dim, check_int
from ..memory import LabelNotFound, _labels_array
from ..memory import write_file_atomic as _write_atomic
from ..ops import as_hv
from ..sparse import MAX_BLOCK_SIZE, SparseHV, check_block_size, index_dtype
from ..sparse_ops import check_pair, check_sparse
from . import _handoff
from ._shard import Shard, ShardLostError, _discard, kind_of, row_bytes

MANIFEST = "manifest.json"
_FORMAT = "hdc-sharded-memory"
_VERSION = 2  # 2: sparse block codes (kind "sparse", block_size); a dense memory is still written as 1
# A worker may hold in RAM shards up to this fraction of its memory_limit: Dask pauses a worker
# at 80% by default (distributed.worker.memory.pause) and kills it at 95%.
MEMORY_FRACTION = 0.7
# How often a call waiting on a shard checks that the shard's worker is still alive.
_POLL_SECONDS = 1.0
# Calls to shards whose worker runs in this process (a threaded cluster) go straight to the shard's
# thread (Shard.submit) instead of through Dask's actor round trip; False: always through Dask.
_LOCAL_CALLS = True


def _route(counts, n):
    """How many of ``n`` new vectors each shard takes: fill the smallest shards first.

    Water-filling: the result makes the shard sizes as even as possible; among shards of equal
    size the lower shard index is filled first.
    """
    counts = np.asarray(counts, np.int64)
    order = np.argsort(counts, kind="stable")
    c = counts[order]
    take = np.zeros(len(c), np.int64)
    left = n
    for i in range(len(c)):
        width = i + 1
        step = (c[i + 1] - c[i]) * width if i + 1 < len(c) else None
        if step is None or left <= step:
            level, extra = divmod(left, width)
            take[:width] = c[i] + level - c[:width]
            take[:extra] += 1
            break
        left -= step
        take[:width] = c[i + 1] - c[:width]
    out = np.empty_like(take)
    out[order] = take
    return out


def _merge(parts, k, object_labels):
    """Per query, the ``k`` best of all shards' answers on (distance, position).

    ``parts``: per shard ``(distances, positions, labels)``, labels None when every label is its
    position (then the labels are the merged positions). Positions below 2**32 (every memory of
    fewer than 4 billion adds) sort as one int64 key, ``distance << 32 | position`` (distances
    are int32 and >= 0); larger ones by np.lexsort.
    """
    dist = np.concatenate([p[0] for p in parts], axis=1)
    pos = np.concatenate([p[1] for p in parts], axis=1)
    if parts[0][2] is None:
        labels = pos
    else:
        labels = [p[2] for p in parts]
        if object_labels or any(lab.dtype == object for lab in labels):
            labels = [lab.astype(object) for lab in labels]
        labels = np.concatenate(labels, axis=1)
    if len(parts) == 1:
        return dist[:, :k], labels[:, :k]
    if pos.size and int(pos.max()) < 1 << 32:
        # each shard's part is sorted already: the stable sort (timsort) merges the runs
        order = np.argsort((dist.astype(np.int64) << 32) | pos, axis=1, kind="stable")[:, :k]
    else:
        order = np.lexsort((pos, dist), axis=1)[:, :k]
    flat = order + np.arange(0, dist.size, dist.shape[1])[:, None]   # one take on the flat arrays
    return dist.take(flat), labels.take(flat)


async def _fan_out(calls, wait_s):
    """Make every actor call from the client's event loop (one wake-up of the loop for all shards,
    not one per call) and wait up to ``wait_s`` for the answers: ``(futures, results)``, results
    None on timeout, else each answer or the exception it raised."""
    futures = [method(*args) for method, args in calls]
    try:
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), wait_s)
    except asyncio.TimeoutError:
        results = None
    return futures, results


def _in_process_worker(address, key):
    """A weak reference to the worker at ``address`` if it runs in this process and holds actor
    ``key`` (a threaded cluster), else None."""
    from distributed import Worker

    for worker in list(Worker._instances):
        if worker.address == address and key in worker.state.actors:
            return weakref.ref(worker), key
    return None


def _local_shard(shard):
    """The ``Shard`` object of ``shard`` when its worker runs in this process and still holds it
    (running, the actor not released), else None: such calls then go through Dask."""
    if shard["local"] is None:
        return None
    ref, key = shard["local"]
    worker = ref()
    if worker is None or worker.status != Status.running:
        return None
    return worker.state.actors.get(key)


def _co_searching(shards, busy):
    """Per shard in ``busy``: how many of them run in its process (the client's for shards called
    directly, else its worker's), each searching at once; a shard splits its process's kernel
    threads by that count (``Shard._search``'s ``share``)."""
    where = {i: "local" if shards[i]["local"] is not None else shards[i]["worker"] for i in busy}
    counts = {}
    for w in where.values():
        counts[w] = counts.get(w, 0) + 1
    return {i: counts[w] for i, w in where.items()}


def _targets(labels):
    """The labels ``remove`` was given, as a list (AssociativeMemory.remove's rule)."""
    if not isinstance(labels, (list, tuple, set, frozenset, range, np.ndarray)):
        return [labels]
    return list(np.asarray(labels).tolist() if isinstance(labels, np.ndarray) else labels)


class ShardedMemory:
    """The :class:`hdc.AssociativeMemory` API over ``n_shards`` Dask actors (one per shard).

    Each shard lives in an actor pinned to one worker (shards go round-robin over the workers),
    in RAM or memory-mapped from that worker's disk (``load(..., mmap=True)``). ``add`` routes a
    batch by size: it is cut into contiguous runs that fill the smallest shards first, so shards
    stay within one vector of each other when only adds happen. ``search`` fans the queries out
    to every non-empty shard and merges per query on (distance, global position): the result is
    identical, bit for bit and in tie order, to one in-process ``AssociativeMemory`` that got the
    same ``add`` and ``remove`` calls. ``remove`` asks every shard which labels it holds.

    ``block_size=L`` holds sparse block codes (:class:`hdc.SparseHV` of ``dim // L`` blocks), as
    ``hdc.AssociativeMemory(dim, block_size=L)`` does: search ranks by overlap (distance
    ``2 * (blocks - overlap)``), highest overlap first, ties by global position, exactly as that
    in-process memory answers.

    ``client=None`` starts a ``LocalCluster`` (threads by default; ``processes=True`` for worker
    processes, ``n_workers`` and ``threads_per_worker`` as in Dask) and closes it on
    :meth:`close` or when the ``with`` block ends. With a ``client`` you pass, the cluster is
    yours and stays up.

    A worker that dies takes its shards with it: the next call raises :class:`ShardLostError`
    naming them (never a partial answer), and :meth:`recover` reloads each from its last
    :meth:`save` on a live worker. Shards held in RAM must fit in ``MEMORY_FRACTION`` (0.7) of
    their worker's ``memory_limit``, less what the worker process already uses; ``add`` and
    ``load`` refuse what does not fit (a ValueError, not an out-of-memory kill). Memory-mapped
    shards are scanned in blocks and do not count.

    Shapes: as ``AssociativeMemory``: ``search(queries (nq,), k)`` -> ``(nq, k)`` distances and
    labels; a single query gives ``(k,)``.

    >>> import hdc
    >>> from hdc.distributed import ShardedMemory
    >>> items = hdc.random(1000, 1024, seed=0)
    >>> with ShardedMemory(1024, n_shards=3) as mem:
    ...     mem.add(items)
    ...     d, labels = mem.search(items[[5, 500]], k=2)
    ...     print(len(mem), labels[:, 0].tolist(), d[:, 0].tolist())
    1000 [5, 500] [0, 0]
    """

    def __init__(self, dim, n_shards, client=None, *, block_size=None, processes=False, n_workers=None,
                 threads_per_worker=None, memory_limit="auto"):
        self._dim = check_dim(dim)
        if block_size is not None:
            block_size = check_block_size(block_size)
            if self._dim % block_size:
                raise ValueError(f"dim must be a multiple of block_size, got dim={dim}, block_size={block_size}")
        self._block_size = block_size
        n_shards = check_int(n_shards, "n_shards", low=1)
        self._query_files = _handoff.QueryFiles()
        self._start(client, n_shards, processes, n_workers, threads_per_worker, memory_limit)
        self._next_label = 0
        self._next_pos = 0
        self._object_labels = False
        # True while no add gave labels: every label is then its position (both count the adds),
        # so searches need no labels from the shards
        self._positional = True
        self._saved = [None] * n_shards
        self._shards = []
        try:
            workers = self._workers()
            for i in range(n_shards):
                self._shards.append(self._spawn(i, workers[i % len(workers)]))
        except BaseException:
            self.close()
            raise

    # ---- cluster --------------------------------------------------------------------------
    def _start(self, client, n_shards, processes, n_workers, threads_per_worker, memory_limit):
        import dask
        from distributed import Client, LocalCluster

        self._cluster = None
        if client is not None:
            if not isinstance(client, Client):
                raise TypeError(f"client must be a distributed.Client or None, got {type(client).__name__}")
            self._client = client
            return
        cores = os.cpu_count() or 1
        if n_workers is None:
            n_workers = min(n_shards, cores)
        n_workers = check_int(n_workers, "n_workers", low=1)
        if threads_per_worker is None:
            threads_per_worker = max(1, cores // n_workers)
        threads_per_worker = check_int(threads_per_worker, "threads_per_worker", low=1)
        kwargs = dict(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=bool(processes),
                      memory_limit=memory_limit, dashboard_address=":0")
        if processes:  # each worker process runs the kernels on its own threads only
            kwargs["env"] = {"HDC_NUM_THREADS": str(threads_per_worker)}
        # Dask's statistical profiler samples every worker thread's stack every 10 ms (holding the
        # GIL, in a threaded cluster the client's too) for the dashboard: off in the cluster we own
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            self._cluster = LocalCluster(**kwargs)
        try:
            self._client = Client(self._cluster, set_as_default=False, direct_to_workers=True)
        except BaseException:
            self._cluster.close()
            raise

    @property
    def client(self):
        """The ``distributed.Client`` the shards run on."""
        return self._client

    def _worker_info(self):
        try:
            return self._client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # distributed before 2025 lists every worker without being asked
            return self._client.scheduler_info()["workers"]

    def _workers(self):
        workers = sorted(self._worker_info())
        if not workers:
            raise RuntimeError("the Dask cluster has no workers")
        return workers

    def _budgets(self):
        """Per worker: (bytes it may still take in RAM, its memory now, its memory_limit); no limit -> inf.

        The room is ``MEMORY_FRACTION`` of the limit minus what the worker process uses now (as
        its last heartbeat reported), so the worker's own footprint counts too.
        """
        out = {}
        for addr, w in self._worker_info().items():
            limit = w.get("memory_limit") or 0
            used = (w.get("metrics") or {}).get("memory") or 0
            out[addr] = (MEMORY_FRACTION * limit - used if limit else float("inf"), used, limit)
        return out

    def _spawn(self, i, worker, entry=None, directory=None, mmap=False):
        """Create shard ``i``'s actor on ``worker`` (empty, or loaded from a manifest entry)."""
        with self._client.as_current():
            return self._spawn_current(i, worker, entry, directory, mmap)

    def _spawn_current(self, i, worker, entry, directory, mmap):
        future = self._client.submit(Shard, self._dim, entry, directory, mmap, self._block_size, os.getpid(), actor=True,
                                     workers=[worker],
                                     allow_other_workers=False, pure=False,
                                     key=f"hdc-shard-{i}-{uuid.uuid4().hex}")
        while True:  # a worker paused by Dask's memory monitor never runs the task: say so, do not hang
            try:
                actor = future.result(timeout=_POLL_SECONDS)
                break
            except TimeoutError:
                status = self._worker_info().get(worker, {}).get("status")
                if status in (None, "paused", "closing", "closed"):
                    future.release()
                    raise RuntimeError(f"cannot place shard {i} on worker {worker}: the worker is "
                                       f"{status or 'gone'} (Dask pauses a worker over 80% of its memory_limit)") \
                        from None
        count = 0 if entry is None else entry["count"]
        with _handoff.probe() as probe_file:
            token, pid, shares = actor.hello(probe_file).result()
        # a shard in this process gets query rows by reference (and direct calls: see _call); one
        # that reads our /dev/shm, a file
        local = _in_process_worker(worker, future.key) if pid == os.getpid() else None
        return {"future": future, "actor": actor, "token": token, "worker": worker, "count": count,
                "mapped": mmap and count > 0, "shares": shares and pid != os.getpid(), "local": local}

    def close(self):
        """Release the shards; close the local cluster if this object started it."""
        for shard in getattr(self, "_shards", []):
            shard["future"].release()
        self._shards = []
        if getattr(self, "_query_files", None) is not None:
            self._query_files.close()
        if getattr(self, "_cluster", None) is not None:
            self._client.close()
            self._cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- calling the shards ----------------------------------------------------------------
    def _check_open(self):
        if not self._shards:
            raise ValueError("this ShardedMemory is closed")

    def _lost(self):
        return [i for i, s in enumerate(self._shards) if s.get("lost") or s["future"].status != "finished"]

    def _raise_lost(self, lost, cause=None, reason=None):
        for i in lost:
            self._shards[i]["lost"] = True
        names = ", ".join(f"shard {i} (on {self._shards[i]['worker']}, {self._shards[i]['count']} vectors)"
                          for i in lost)
        detail = f" ({cause})" if isinstance(cause, ShardLostError) else f" ({reason})" if reason else ""
        raise ShardLostError(f"lost {names}: its worker died or left the cluster{detail}. Call recover() to "
                             "reload lost shards from their last save()") from cause

    def _call(self, method, args_of, shards=None):
        """Call ``method`` on the given shards (all by default) at once; results in shard order."""
        self._check_open()
        lost = self._lost()
        if lost:
            self._raise_lost(lost, reason="found before the call")
        shards = range(len(self._shards)) if shards is None else shards
        local = [_local_shard(self._shards[i]) for i in shards] if _LOCAL_CALLS else [None]
        if all(shard is not None for shard in local):
            # every shard lives in this process (a threaded cluster): hand the work to each shard's
            # own thread directly, as its actor method would, without the event-loop round trips
            futures = []
            try:
                for shard, i in zip(local, shards):
                    futures.append(shard.submit(self._shards[i]["token"], method, *args_of(i)))
            except ShardLostError as exc:
                concurrent.futures.wait(futures)
                self._raise_lost([shards[len(futures)]], exc)
            concurrent.futures.wait(futures)
            return [fut.result() for fut in futures]
        with self._client.as_current():  # actor handles find their client through it
            calls = [(getattr(self._shards[i]["actor"], method), (self._shards[i]["token"], *args_of(i)))
                     for i in shards]
        futures, results = self._client.sync(_fan_out, calls, _POLL_SECONDS)
        if results is None or any(isinstance(r, BaseException) for r in results):
            # slow, or failed: wait shard by shard, checking for lost workers; raises the first error
            return [self._result(i, fut) for i, fut in zip(shards, futures)]
        return results

    def _result(self, i, fut):
        """Shard ``i``'s answer; ShardLostError if its worker dies meanwhile (checked each second)."""
        while True:
            try:
                return fut.result(timeout=_POLL_SECONDS)
            except ShardLostError as exc:
                self._raise_lost([i], exc)
            except (ValueError, TypeError, KeyError):
                raise
            except Exception as exc:
                timed_out = isinstance(exc, (TimeoutError, asyncio.TimeoutError))
                reason = self._wait_lost(i, timeout=_POLL_SECONDS if timed_out else 5.0, settle=timed_out)
                if reason:
                    self._raise_lost([i], None if timed_out else exc, reason)
                if not timed_out:
                    raise

    def _lost_reason(self, i):
        """Why shard ``i`` is unreachable, or None: its worker left, or its actor's task is not held."""
        shard = self._shards[i]
        if shard.get("lost"):
            return "lost earlier"
        status = shard["future"].status
        if status in ("lost", "error", "cancelled"):
            return f"its actor's task is {status}"
        if shard["worker"] not in self._worker_info():
            return "its worker is no longer in the cluster"
        if status != "finished":
            return f"its actor's task is {status}"
        return None

    def _wait_lost(self, i, timeout=5.0, settle=False):
        """Whether (and why) shard ``i`` is lost. Waits up to ``timeout`` for the scheduler to notice a
        failure; with ``settle``, a loss must still show after ``timeout`` (no transient states)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            reason = self._lost_reason(i)
            if reason and not settle or not reason and settle:
                return reason
            if time.monotonic() > deadline:
                return reason
            time.sleep(0.05 if not settle else timeout)

    # ---- AssociativeMemory API ---------------------------------------------------------------
    @property
    def dim(self):
        return self._dim

    @property
    def block_size(self):
        """Indices per block of the sparse block codes held; None for binary hypervectors."""
        return self._block_size

    @property
    def blocks(self):
        """Blocks per sparse code (``dim // block_size``); None for binary hypervectors."""
        return None if self._block_size is None else self._dim // self._block_size

    @property
    def n_shards(self):
        return len(self._shards)

    @property
    def shard_sizes(self):
        """Vectors per shard, a list in shard order."""
        return [s["count"] for s in self._shards]

    def __len__(self):
        return sum(s["count"] for s in self._shards)

    def __repr__(self):
        sparse = "" if self._block_size is None else f", block_size={self._block_size}"
        return f"ShardedMemory(dim={self._dim}{sparse}, n_shards={len(self._shards)}, len={len(self)})"

    def __contains__(self, label):
        try:
            hash(label)
        except TypeError:
            return False
        return any(bool(h[0]) for h in self._call("holding", lambda i: ([label],)))

    def _check_fits(self, extra):
        """ValueError if adding ``extra[i]`` vectors to shard ``i`` overfills a worker's RAM budget."""
        row = row_bytes(self._dim, self._block_size)
        budgets = self._budgets()
        new = {}
        for i, s in enumerate(self._shards):
            if extra[i]:  # a memory-mapped shard is copied into RAM by its first add
                new[s["worker"]] = new.get(s["worker"], 0) + (extra[i] + (s["count"] if s["mapped"] else 0)) * row
        for worker, size in new.items():
            room, used, limit = budgets.get(worker, (float("inf"), 0, 0))
            if size > room:
                raise ValueError(f"adding {size / 2**20:.1f} MiB to the shards on worker {worker} (using "
                                 f"{used / 2**20:.1f} MiB now) would pass {MEMORY_FRACTION:.0%} of its memory_limit "
                                 f"({limit / 2**20:.1f} MiB); use more shards or workers, or a larger memory_limit")

    def _check_hv(self, x, name):
        """TypeError/ValueError unless ``x`` is the kind of hypervector this memory holds, of its shape."""
        if self._block_size is None:
            as_hv(x, name)
            if x.dim != self._dim:
                raise ValueError(f"{name} must have dim {self._dim} (the memory's), got {x.dim}")
        else:
            check_sparse(x, name)
            check_pair(x, SparseHV._wrap(np.empty((0, self.blocks), index_dtype(self._block_size)), self._block_size),
                       name, "the memory")

    def add(self, x, labels=None):
        """Store hypervector(s) ``x`` (one or a 1-D batch) with optional labels (as AssociativeMemory)."""
        self._check_open()
        self._check_hv(x, "x")
        if x.ndim > 1:
            raise ValueError(f"x must be a 1-D batch of hypervectors, got batch shape {x.shape}")
        n = 1 if x.ndim == 0 else len(x)
        if labels is None:
            new = np.arange(self._next_label, self._next_label + n, dtype=np.int64)
        elif x.ndim == 0:
            new = _labels_array([labels], 1)
        else:
            new = _labels_array(labels, n)
        if n == 0:
            return
        rows = x[None] if x.ndim == 0 else x
        take = _route(self.shard_sizes, n)
        self._check_fits(take)
        starts = np.concatenate([[0], np.cumsum(take)])
        targets = [i for i in range(len(self._shards)) if take[i]]
        positions = np.arange(self._next_pos, self._next_pos + n, dtype=np.int64)

        def args(i):
            a, b = int(starts[i]), int(starts[i + 1])
            return rows[a:b], new[a:b], positions[a:b]

        counts = self._call("add", args, targets)
        for i, c in zip(targets, counts):
            self._shards[i]["count"] = c
            self._shards[i]["mapped"] = False
        self._object_labels |= new.dtype == object
        self._positional &= labels is None
        self._next_label += n
        self._next_pos += n

    def search(self, queries, k=1):
        """The ``k`` stored vectors nearest each query: ``(distances, labels)`` as AssociativeMemory.

        Nearest first; equal distances in insertion order, across shards too. ``1 <= k <= len(self)``.
        """
        self._check_open()
        self._check_hv(queries, "queries")
        if queries.ndim > 1:
            raise ValueError(f"queries must be a 1-D batch of hypervectors, got batch shape {queries.shape}")
        total = len(self)
        if total == 0:
            raise ValueError("the memory is empty; add vectors before searching")
        k = check_int(k, "k", low=1, high=total)
        busy = [i for i, s in enumerate(self._shards) if s["count"]]
        shares = any(self._shards[i]["shares"] for i in busy)
        together = _co_searching(self._shards, busy)
        with self._query_files.share(queries) if shares else contextlib.nullcontext() as shared:
            parts = self._call("search", lambda i: (shared if shared and self._shards[i]["shares"] else queries, k,
                                                    not self._positional, together[i]), busy)
        dist, labels = _merge(parts, k, self._object_labels)
        if queries.ndim == 0:
            return dist[0], labels[0]
        return dist, labels

    def remove(self, labels):
        """Delete every vector whose label is in ``labels``; returns how many (as AssociativeMemory).

        Raises :class:`hdc.LabelNotFound` naming labels no shard holds; nothing is removed then.
        """
        targets = _targets(labels)
        held = self._call("holding", lambda i: (targets,))
        anywhere = np.logical_or.reduce(held) if targets else np.zeros(0, bool)
        missing = [t for t, h in zip(targets, anywhere) if not h]
        if missing:
            raise LabelNotFound(f"labels not in the memory: {missing[:10]!r}"
                                + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        busy = [i for i in range(len(self._shards)) if held[i].any()]
        before = len(self)
        counts = self._call("remove", lambda i: ([t for t, h in zip(targets, held[i]) if h],), busy)
        for i, c in zip(busy, counts):
            self._shards[i]["count"] = c
            self._shards[i]["mapped"] = False
        return before - len(self)

    # ---- persistence and recovery ----------------------------------------------------------
    def save(self, directory):
        """Write one ``.hdcm`` file (and a positions file) per shard, then ``manifest.json``.

        Shard files get names new to this save; the manifest is written last through a temporary
        file and an atomic rename, and only then are the previous save's shard files deleted. A
        save killed at any moment leaves the previous manifest pointing at complete files.
        Each worker writes its shards to ``directory`` on its own disk; the manifest goes to
        ``directory`` on the client's. On one machine, or a shared filesystem, that is one folder.
        """
        directory = os.path.abspath(os.fspath(directory))
        os.makedirs(directory, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        paths = [os.path.join(directory, f"shard-{i:05d}-{tag}.hdcm") for i in range(len(self._shards))]
        entries = self._call("save", lambda i: (paths[i],))
        manifest = {"format": _FORMAT, "version": 1 if self._block_size is None else _VERSION, "dim": self._dim,
                    "kind": kind_of(self._block_size), "block_size": self._block_size, "count": len(self), "next_label": self._next_label, "next_position": self._next_pos,
                    "object_labels": bool(self._object_labels), "positional_labels": bool(self._positional),
                    "shards": entries}
        _write_atomic(os.path.join(directory, MANIFEST), json.dumps(manifest, indent=1).encode())
        self._saved = [(directory, e) for e in entries]
        # only now that the manifest names the new files: drop older saves' (and failed saves') files
        keep = {e[key] for e in entries for key in ("file", "positions_file")}
        self._call("discard", lambda i: (directory, keep))
        _discard(directory, keep)

    @classmethod
    def load(cls, directory, client=None, *, mmap=False, processes=False, n_workers=None,
             threads_per_worker=None, memory_limit="auto"):
        """Open a memory written by :meth:`save`; each worker reads its shards from its own disk.

        ``mmap=True`` memory-maps the shard files on the workers (payload checksums are checked
        once at load). Shards go round-robin over the workers; a worker that lacks a shard's files
        passes it to the next one. Raises ValueError when the manifest or a shard file is missing,
        corrupted, or does not match the other (dim, kind, count, checksums), and when a shard
        to be held in RAM does not fit in any worker's memory budget.
        """
        directory = os.path.abspath(os.fspath(directory))
        manifest = _read_manifest(directory)
        self = cls.__new__(cls)
        self._dim = manifest["dim"]
        self._block_size = manifest["block_size"]
        self._shards = []
        self._query_files = _handoff.QueryFiles()
        self._start(client, len(manifest["shards"]), processes, n_workers, threads_per_worker, memory_limit)
        try:
            self._next_label = manifest["next_label"]
            self._next_pos = manifest["next_position"]
            self._object_labels = manifest["object_labels"]
            self._positional = manifest["positional_labels"]
            self._saved = [(directory, e) for e in manifest["shards"]]
            workers = self._workers()
            self._refuse_unfit(manifest["shards"], mmap, workers)
            for i, entry in enumerate(manifest["shards"]):
                self._shards.append(self._place(i, entry, directory, mmap, workers, workers[i % len(workers)]))
        except BaseException:
            self.close()
            raise
        return self

    def _refuse_unfit(self, entries, mmap, workers):
        """ValueError if a shard to be held in RAM fits no worker, or the planned placement overfills one."""
        if mmap:
            return
        budgets = self._budgets()
        row = row_bytes(self._dim, self._block_size)
        room = {w: budgets.get(w, (float("inf"),))[0] for w in workers}
        largest = max(room.values())
        need = {}
        for i, e in enumerate(entries):
            size = e["count"] * row
            if size > largest:
                raise ValueError(f"shard {i} ({e['file']}, {size / 2**20:.1f} MiB) does not fit in RAM on any worker "
                                 f"(the most room is {largest / 2**20:.1f} MiB: {MEMORY_FRACTION:.0%} of memory_limit "
                                 "less what the worker uses); load it with mmap=True or use workers with more memory")
            worker = workers[i % len(workers)]
            need[worker] = need.get(worker, 0) + size
        for worker, size in need.items():
            if size > room[worker]:
                raise ValueError(f"the shards placed on worker {worker} need {size / 2**20:.1f} MiB in RAM, over its "
                                 f"room of {room[worker] / 2**20:.1f} MiB ({MEMORY_FRACTION:.0%} of memory_limit less "
                                 "what it uses); load with mmap=True, or on more workers")

    def _place(self, i, entry, directory, mmap, workers, default):
        """Create shard ``i`` from its files on ``default``, or the next worker that has them."""
        errors = []
        for worker in dict.fromkeys([default, *workers]):
            try:
                return self._spawn(i, worker, entry, directory, mmap)
            except FileNotFoundError as exc:
                errors.append(str(exc))
        raise ValueError(f"shard {i}: no worker can read {entry['file']} in {directory}: " + "; ".join(errors[:3]))

    def recover(self):
        """Reload every lost shard from its last save (or load) on a live worker.

        Returns the indices of the shards reloaded. A recovered shard is as it was at that save:
        a RuntimeWarning says how many vectors it held before the loss and holds now. A lost shard
        that was never saved cannot come back: ShardLostError names it (after the others are
        reloaded), and the memory keeps refusing calls until it is closed.
        """
        self._check_open()
        lost = [i for i in range(len(self._shards)) if self._lost_reason(i)]
        workers = self._workers()
        done, never = [], []
        for i in lost:
            if self._saved[i] is None:
                never.append(i)
                continue
            directory, entry = self._saved[i]
            before = self._shards[i]["count"]
            self._shards[i]["future"].release()
            busy = {s["worker"] for j, s in enumerate(self._shards) if j not in lost}
            default = next((w for w in workers if w not in busy), workers[i % len(workers)])
            self._shards[i] = self._place(i, entry, directory, self._shards[i]["mapped"] or False, workers, default)
            if entry["count"] != before:
                warnings.warn(f"shard {i} was restored to its last save: {entry['count']} vectors, {before} before "
                              "it was lost", RuntimeWarning, stacklevel=2)
            done.append(i)
        if never:
            self._raise_lost(never)
        return done


def _read_manifest(directory):
    """Parse and check ``manifest.json``; ValueError naming what is wrong."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no manifest: {directory} is not a saved ShardedMemory")
    try:
        with open(path, "rb") as f:
            m = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupted manifest (not valid JSON: {exc})") from None

    def bad(msg):
        return ValueError(f"{path}: malformed manifest: {msg}")

    if not isinstance(m, dict) or m.get("format") != _FORMAT:
        raise bad(f"format is not {_FORMAT!r}")
    if not isinstance(m.get("version"), int) or m["version"] > _VERSION:
        raise ValueError(f"{path}: manifest version {m.get('version')!r} is newer than this hdc reads ({_VERSION})")
    for key in ("dim", "count", "next_label", "next_position"):
        if not isinstance(m.get(key), int) or isinstance(m.get(key), bool):
            raise bad(f"{key} is not an int")
    if m["dim"] < 1 or m["count"] < 0 or m["next_position"] < m["count"]:
        raise bad("dim, count or next_position out of range")
    if m.get("kind") not in ("dense", "sparse"):
        raise bad(f"kind {m.get('kind')!r} is not 'dense' or 'sparse'")
    m.setdefault("block_size", None)  # version 1 manifests: dense only
    size = m["block_size"]
    if m["kind"] == "dense" and size is not None:
        raise bad(f"a dense memory has block_size {size!r}, expected null")
    if m["kind"] == "sparse" and (not isinstance(size, int) or isinstance(size, bool) or
                                  not 1 <= size <= MAX_BLOCK_SIZE or m["dim"] % size):
        raise bad(f"block_size {size!r} is not an int in [1, {MAX_BLOCK_SIZE}] dividing dim {m['dim']}")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        raise bad("shards is not a non-empty list")
    total = 0
    for i, e in enumerate(shards):
        if not isinstance(e, dict):
            raise bad(f"shard {i} is not an object")
        for key in ("file", "positions_file"):
            if not isinstance(e.get(key), str) or os.path.basename(e[key]) != e[key] or e[key] in ("", ".", ".."):
                raise bad(f"shard {i}: {key} is not a plain file name")
        for key in ("count", "header_crc", "positions_crc", "dim"):
            if not isinstance(e.get(key), int) or isinstance(e.get(key), bool) or e[key] < 0:
                raise bad(f"shard {i}: {key} is not a non-negative int")
        if e["dim"] != m["dim"]:
            raise ValueError(f"{path}: shard {i} ({e['file']}) has dim {e['dim']}, the memory {m['dim']}: "
                             "shards of different dim cannot form one memory")
        if e.get("kind") != m["kind"]:
            raise ValueError(f"{path}: shard {i} ({e['file']}) holds {e.get('kind')!r} hypervectors, the memory "
                             f"{m['kind']!r}: shards of different kinds cannot form one memory")
        if e.get("block_size") != size:
            raise ValueError(f"{path}: shard {i} ({e['file']}) has block_size {e.get('block_size')!r}, the memory "
                             f"{size!r}: shards of different block sizes cannot form one memory")
        total += e["count"]
    if total != m["count"]:
        raise bad(f"the shard counts add up to {total}, the manifest says {m['count']}")
    m["object_labels"] = bool(m.get("object_labels", False))
    # written since labels equal to positions are not sent with search answers; absent: not known
    m["positional_labels"] = m.get("positional_labels", False) is True and m["next_label"] == m["next_position"]
    return m
