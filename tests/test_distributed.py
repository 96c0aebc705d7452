"""hdc.distributed.ShardedMemory: equal to one in-process AssociativeMemory; persistence; faults.

One threaded local cluster serves the module; the worker-kill test starts its own two worker
processes (the only test here that needs processes).
"""
import json
import os
import signal
import time
import warnings

import distributed
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdc
from hdc.distributed import ShardedMemory, ShardLostError
from hdc.distributed import _handoff, _shard
from hdc.distributed.sharded import _route
from hdc.memory import LabelNotFound


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


def same(mem, ref, queries, k):
    d, lab = mem.search(queries, k)
    want_d, want_lab = ref.search(queries, k)
    np.testing.assert_array_equal(d, want_d)
    assert d.dtype == want_d.dtype
    assert lab.tolist() == want_lab.tolist()


def test_route_fills_smallest_shards_first():
    assert _route([0, 0, 0], 7).tolist() == [3, 2, 2]
    assert _route([5, 0, 2], 4).tolist() == [0, 3, 1]
    assert _route([5, 0, 2], 0).tolist() == [0, 0, 0]
    assert _route([4, 4], 1).tolist() == [1, 0]
    assert sum(_route([9, 1, 3, 3], 100)) == 100


# Operations: ("add", n, from_pool, str_labels) or ("remove", how_many).
_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 40), st.booleans(), st.booleans()),
    st.tuples(st.just("remove"), st.integers(1, 5))), min_size=1, max_size=6)


@settings(max_examples=int(os.environ.get("HDC_DIST_EXAMPLES", 25)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_shards=st.sampled_from([1, 2, 3, 7]), dim=st.sampled_from([1, 63, 65, 200]), ops=_ops,
       k_frac=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_equal_to_in_process_memory(client, n_shards, dim, ops, k_frac, seed):
    """Adds (duplicates from a small pool, str or default labels), removes, then every k from 1 to len."""
    rng = np.random.default_rng(seed)
    pool = hdc.random(6, dim, seed=seed)
    fresh = hdc.random(300, dim, seed=seed + 1)
    ref = hdc.AssociativeMemory(dim)
    used = 0
    with ShardedMemory(dim, n_shards, client=client) as mem:
        for op in ops:
            if op[0] == "add":
                _, n, from_pool, str_labels = op
                x = pool[rng.integers(0, 6, n)] if from_pool else fresh[used:used + n]
                used += n
                labels = [f"s{v}" for v in rng.integers(0, 10, n)] if str_labels else None
                mem.add(x, labels=labels)
                ref.add(x, labels=labels)
            elif len(ref):
                victims = list(dict.fromkeys(rng.choice(ref.labels, min(op[1], len(ref))).tolist()))
                assert mem.remove(victims) == ref.remove(victims)
            assert len(mem) == len(ref) and mem.shard_sizes and sum(mem.shard_sizes) == len(ref)
        if len(ref):
            queries = hdc.BinaryHV.stack([pool[0], pool[3], fresh[0], hdc.random(1, dim, seed=seed + 2)[0]])
            k = 1 + int(k_frac * (len(ref) - 1))
            same(mem, ref, queries, k)
            same(mem, ref, queries, len(ref))
            d, lab = mem.search(queries[1], k)
            want_d, want_lab = ref.search(queries[1], k)
            assert d.shape == (k,) and lab.tolist() == want_lab.tolist()
            first = ref.labels[0]
            assert (first in mem) and ("absent" not in mem) and ([1] not in mem)


def test_k_larger_than_a_shard_and_empty_shards(client):
    items = hdc.random(5, 300, seed=0)
    ref = hdc.AssociativeMemory(300)
    ref.add(items)
    with ShardedMemory(300, 7, client=client) as mem:
        mem.add(items)
        assert sorted(mem.shard_sizes) == [0, 0, 1, 1, 1, 1, 1]
        same(mem, ref, items, 5)


def test_errors_name_the_argument(client):
    with ShardedMemory(128, 2, client=client) as mem:
        with pytest.raises(ValueError, match="empty"):
            mem.search(hdc.random(1, 128, seed=0), 1)
        mem.add(hdc.random(10, 128, seed=0))
        with pytest.raises(ValueError, match="dim 128"):
            mem.add(hdc.random(1, 64, seed=0))
        with pytest.raises(TypeError, match="x must be a hdc.BinaryHV"):
            mem.add(np.zeros((1, 2), np.uint64))
        with pytest.raises(ValueError, match="k must be <= 10"):
            mem.search(hdc.random(1, 128, seed=0), 11)
        with pytest.raises(ValueError, match="k must be >= 1"):
            mem.search(hdc.random(1, 128, seed=0), 0)
        with pytest.raises(ValueError, match="queries must have dim 128"):
            mem.search(hdc.random(1, 129, seed=0), 1)
        with pytest.raises(LabelNotFound, match="99"):
            mem.remove([1, 99])
        assert len(mem) == 10 and 1 in mem  # nothing removed
        with pytest.raises(ValueError, match="one label per vector"):
            mem.add(hdc.random(2, 128, seed=0), labels=[1])
    with pytest.raises(ValueError, match="closed"):
        mem.search(hdc.random(1, 128, seed=0), 1)
    with pytest.raises(TypeError, match="client must be"):
        ShardedMemory(128, 2, client="tcp://nowhere")
    with pytest.raises(ValueError, match="n_shards must be >= 1"):
        ShardedMemory(128, 0, client=client)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_roundtrip(client, tmp_path, mmap):
    items = hdc.random(500, 1000, seed=1)
    ref = hdc.AssociativeMemory(1000)
    with ShardedMemory(1000, 3, client=client) as mem:
        for part, labels in ((items[:200], None), (items[200:], [f"x{i}" for i in range(300)])):
            mem.add(part, labels=labels)
            ref.add(part, labels=labels)
        mem.remove(["x5", 7])
        ref.remove(["x5", 7])
        mem.save(tmp_path)
        mem.add(items[:3])      # after the save: the next save replaces the first one's files
        mem.save(tmp_path)
        ref.add(items[:3])
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 7 and "manifest.json" in names  # 3 shards x (.hdcm, .pos) + manifest
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["count"] == len(ref) == sum(e["count"] for e in manifest["shards"])
    assert manifest["next_label"] == 503 and manifest["dim"] == 1000
    with ShardedMemory.load(tmp_path, client=client, mmap=mmap) as back:
        assert len(back) == len(ref) and back.dim == 1000
        same(back, ref, items[::7], 9)
        back.add(items[:4])     # default labels continue where the saved memory stopped
        ref.add(items[:4])
        same(back, ref, items[:4], 2)


def _saved(client, path, n=60, dim=256):
    with ShardedMemory(dim, 3, client=client) as mem:
        mem.add(hdc.random(n, dim, seed=2))
        mem.save(path)


def test_bad_manifest_and_shard_files(client, tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        ShardedMemory.load(tmp_path, client=client)
    _saved(client, tmp_path)
    good = (tmp_path / "manifest.json").read_text()
    manifest = json.loads(good)

    def load_with(change, match, exc=ValueError):
        m = json.loads(good)
        change(m)
        (tmp_path / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(exc, match=match):
            ShardedMemory.load(tmp_path, client=client)
        (tmp_path / "manifest.json").write_text(good)

    load_with(lambda m: m["shards"][1].update(dim=128), "different dim")
    load_with(lambda m: m["shards"][1].update(kind="sparse"), "different kinds")
    load_with(lambda m: m["shards"][0].update(count=m["shards"][0]["count"] + 1), "add up to")
    load_with(lambda m: m.update(count=m["count"] + 1, next_position=m["count"] + 1) or
              m["shards"][0].update(count=m["shards"][0]["count"] + 1), "manifest says")
    load_with(lambda m: m["shards"][2].update(file="../evil.hdcm"), "plain file name")
    load_with(lambda m: m["shards"][2].update(header_crc=m["shards"][2]["header_crc"] ^ 1), "does not match")
    load_with(lambda m: m.update(version=99), "newer")
    (tmp_path / "manifest.json").write_text(good[:-20])
    with pytest.raises(ValueError, match="not valid JSON"):
        ShardedMemory.load(tmp_path, client=client)
    (tmp_path / "manifest.json").write_text(good)

    shard = tmp_path / manifest["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x10                                    # a payload bit: caught by the chunk checksum
    shard.write_bytes(bytes(data))
    for mmap in (False, True):
        with pytest.raises(ValueError, match="checksum mismatch in payload"):
            ShardedMemory.load(tmp_path, client=client, mmap=mmap)
    data[-1] ^= 0x10
    shard.write_bytes(bytes(data))
    pos = tmp_path / manifest["shards"][1]["positions_file"]
    raw = pos.read_bytes()
    pos.write_bytes(raw[:-8])
    with pytest.raises(ValueError, match="positions file is corrupted"):
        ShardedMemory.load(tmp_path, client=client)
    pos.write_bytes(raw)
    shard.unlink()
    with pytest.raises(ValueError, match=f"no worker can read {manifest['shards'][1]['file']}"):
        ShardedMemory.load(tmp_path, client=client)


def test_a_failed_save_keeps_the_previous_one(client, tmp_path, monkeypatch):
    from hdc.distributed import sharded

    items = hdc.random(40, 128, seed=3)
    with ShardedMemory(128, 2, client=client) as mem:
        mem.add(items[:20])
        mem.save(tmp_path)
        mem.add(items[20:])

        def crash(path, data):
            raise OSError("disk full (simulated)")

        monkeypatch.setattr(sharded, "_write_atomic", crash)
        with pytest.raises(OSError, match="simulated"):
            mem.save(tmp_path)
        monkeypatch.undo()
        with ShardedMemory.load(tmp_path, client=client) as back:
            assert len(back) == 20                       # the previous save, complete
        mem.save(tmp_path)                               # and the failed save's files are cleaned up
        assert len(os.listdir(tmp_path)) == 5


@pytest.fixture
def no_memory_monitor():
    """Threaded workers with tiny memory limits: the limit is what is tested, not Dask's pausing."""
    import dask

    off = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause", "terminate")}
    with dask.config.set(off):
        yield


def test_memory_budget_is_enforced(tmp_path, no_memory_monitor):
    """Room on a worker = 70% of memory_limit less what it uses (threaded workers: this process)."""
    import psutil

    dim, row = 64_000, 8_000

    def cluster(room_mib, n_workers=1):
        limit = int((psutil.Process().memory_info().rss + room_mib * 2**20) / 0.7)
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False,
                                        dashboard_address=":0", memory_limit=limit)

    big, pair = tmp_path / "big", tmp_path / "pair"
    with cluster(10) as cl, distributed.Client(cl, set_as_default=False) as c:
        with ShardedMemory(dim, 2, client=c) as mem:
            mem.add(hdc.random(100, dim, seed=0))              # 0.8 MB: fits in ~10 MiB of room
            with pytest.raises(ValueError, match="would pass 70% of its memory_limit"):
                mem.add(hdc.random(3000, dim, seed=1))         # 24 MB: refused before anything is sent
            assert len(mem) == 100
    with ShardedMemory(dim, 1, processes=False, n_workers=1, memory_limit=0) as mem:
        mem.add(hdc.random(3200, dim, seed=0))                 # one 25.6 MB shard
        mem.save(big)
    with ShardedMemory(dim, 2, processes=False, n_workers=1, memory_limit=0) as mem:
        mem.add(hdc.random(1600, dim, seed=0))                 # two shards of 6.4 MB
        mem.save(pair)
    with cluster(10) as cl, distributed.Client(cl, set_as_default=False) as c:
        with pytest.raises(ValueError, match="shards placed on worker .* need 12.2 MiB"):
            ShardedMemory.load(pair, client=c)                 # each fits the room, both do not
        with pytest.raises(ValueError, match="does not fit in RAM on any worker.*mmap=True"):
            ShardedMemory.load(big, client=c)
        with ShardedMemory.load(big, client=c, mmap=True) as mem:   # memory-mapped: fine, and exact
            ref = hdc.AssociativeMemory.load(big / json.loads((big / "manifest.json").read_text())["shards"][0]["file"])
            same(mem, ref, hdc.random(5, dim, seed=0), 3)


def test_threaded_shards_are_called_directly(client, monkeypatch):
    """Shards whose worker runs in this process get their calls on their own thread without Dask's
    round trip (Shard.submit), with the same answers as through Dask; a released actor is not."""
    from hdc.distributed import _shard, sharded

    items = hdc.random(60, 256, seed=5)
    calls = []
    submit = _shard.Shard.submit
    monkeypatch.setattr(_shard.Shard, "submit", lambda self, *a: calls.append(a[1]) or submit(self, *a))
    with ShardedMemory(256, 3, client=client) as mem:
        assert all(s["local"] is not None for s in mem._shards)
        mem.add(items)
        direct = mem.search(items[::7], 4)
        assert calls.count("add") == 3 and calls.count("search") == 3
        monkeypatch.setattr(sharded, "_LOCAL_CALLS", False)
        through_dask = mem.search(items[::7], 4)
        assert calls.count("search") == 3
        np.testing.assert_array_equal(direct[0], through_dask[0])
        np.testing.assert_array_equal(direct[1], through_dask[1])
        ref, key = mem._shards[0]["local"]
        assert isinstance(sharded._local_shard(mem._shards[0]), _shard.Shard)
        # an actor its worker no longer holds (released, or the worker closed) gets Dask's path
        assert sharded._local_shard({"local": (ref, key + "-released")}) is None


def test_shards_in_one_process_split_its_kernel_threads(client, monkeypatch):
    """Shards searching at once in one process each run the kernels on its threads // their count
    (a thread-local cap, so the one C pool is not contended); one busy shard keeps them all."""
    from hdc.distributed import _shard, sharded

    items = hdc.random(40, 256, seed=6)
    limits = []
    search_rows = _shard.Shard._search_rows
    monkeypatch.setattr(_shard.Shard, "_search_rows", lambda self, *a: limits.append(
        hdc.backend.kernels().get_thread_limit()) or search_rows(self, *a))
    before = hdc.get_num_threads()
    hdc.set_num_threads(4)
    try:
        with ShardedMemory(256, 3, client=client) as mem:
            mem.add(items)
            assert sharded._co_searching(mem._shards, [0, 1, 2]) == {0: 3, 1: 3, 2: 3}
            assert sharded._co_searching([{"local": None, "worker": "a"}, {"local": None, "worker": "b"},
                                          {"local": None, "worker": "a"}], [0, 1, 2]) == {0: 2, 1: 1, 2: 2}
            mem.search(items[:5], 3)
            assert limits == [1, 1, 1]
            mem.remove(list(range(14, 40)))          # shards 1 and 2 empty: shard 0 alone
            limits.clear()
            mem.search(items[:5], 3)
            assert limits == [0]
            assert hdc.backend.kernels().get_thread_limit() == 0
    finally:
        hdc.set_num_threads(before)


def test_labels_equal_to_positions_are_not_sent(client, tmp_path, monkeypatch):
    """Without labels= in any add, every label is its position: shards answer without labels (the
    merged positions are the labels); the manifest keeps that; labels= in an add ends it."""
    items = hdc.random(50, 128, seed=1)
    ref = hdc.AssociativeMemory(128)
    ref.add(items)
    asked = []
    search = _shard.Shard._search
    monkeypatch.setattr(_shard.Shard, "_search", lambda self, q, k, labels=True, share=1: asked.append(labels) or
                        search(self, q, k, labels, share))
    with ShardedMemory(128, 3, client=client) as mem:
        mem.add(items)
        same(mem, ref, items[::5], 4)
        same(mem, ref, items[7], 3)
        assert asked == [False] * 6
        mem.save(tmp_path)
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert manifest["positional_labels"] is True
        with ShardedMemory.load(tmp_path, client=client) as back:
            asked.clear()
            same(back, ref, items[::5], 4)
            assert asked == [False] * 3
        del manifest["positional_labels"]                  # a manifest that does not say: labels are sent
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
        with ShardedMemory.load(tmp_path, client=client) as back:
            asked.clear()
            same(back, ref, items[::5], 4)
            assert asked == [True] * 3
        mem.add(items[:2], labels=[3, "x"])
        ref.add(items[:2], labels=[3, "x"])
        asked.clear()
        same(mem, ref, items[:3], 4)
        assert asked == [True] * 3


def test_a_recreated_shard_refuses_calls(client):
    """A worker restarted at the same address re-runs the actor's task: an empty shard, not ours."""
    with ShardedMemory(64, 2, client=client) as mem:
        mem.add(hdc.random(4, 64, seed=0))
        mem._shards[1]["token"] = "an-older-incarnation"
        with pytest.raises(ShardLostError, match=r"lost shard 1 .*re-created empty"):
            mem.search(hdc.random(1, 64, seed=0), 1)


def test_owned_cluster_closes():
    mem = ShardedMemory(64, 2)
    cluster = mem._cluster
    # the cluster it owns runs without Dask's 10 ms stack sampler
    assert not any(mem.client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks).values())
    mem.add(hdc.random(3, 64, seed=0))
    mem.close()
    assert cluster.status.name == "closed"


def test_dead_worker_is_named_and_recovered(tmp_path):
    items = hdc.random(300, 512, seed=4)
    with ShardedMemory(512, 3, processes=True, n_workers=2, threads_per_worker=1) as mem:
        mem.add(items)
        mem.save(tmp_path)
        mem.add(items[:10], labels=[f"late{i}" for i in range(10)])
        pids = [s["actor"].info(s["token"]).result()[3] for s in mem._shards]
        assert len(set(pids)) == 2 and pids[0] == pids[2] != pids[1]
        # shards in other processes go through Dask, not straight to the Shard object
        assert all(s["local"] is None for s in mem._shards)
        # worker processes on this host read a large query batch from one /dev/shm file
        assert all(s["shares"] for s in mem._shards) == _handoff.available()
        ref = hdc.AssociativeMemory(512)
        ref.add(items)
        ref.add(items[:10], labels=[f"late{i}" for i in range(10)])
        big = hdc.random(_handoff.MIN_SHARED_BYTES // 64 + 7, 512, seed=9)
        same(mem, ref, big, 4)
        same(mem, ref, big[:5], 4)   # small batches go inline
        os.kill(pids[1], signal.SIGKILL)
        deadline = time.monotonic() + 20
        with pytest.raises(ShardLostError, match=r"lost shard 1 \(on tcp://.*103 vectors\).*recover\(\)"):
            while time.monotonic() < deadline:   # the kill may land between two calls
                mem.search(items[:3], 2)
        with pytest.raises(ShardLostError, match="shard 1"):
            len(mem) and mem.search(items[:3], 2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert mem.recover() == [1]
        assert "shard 1 was restored to its last save: 100 vectors, 103 before" in str(caught[0].message)
        d, lab = mem.search(items[:50], 1)   # the originals (saved) come before their late duplicates
        assert d[:, 0].tolist() == [0] * 50 and lab[:, 0].tolist() == list(range(50))
        assert len(mem) == 307 and mem.shard_sizes[1] == 100


def test_worker_processes_run_the_kernels_on_their_threads(tmp_path):
    """A script that imports hdc: spawn re-imports it in each worker process before Dask sets the
    worker's HDC_NUM_THREADS, so the shards apply it (1-thread workers ran 2 kernel threads)."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text("import hdc\nfrom hdc.distributed import ShardedMemory\n\n"
                      "if __name__ == '__main__':\n"
                      "    with ShardedMemory(64, 2, processes=True, n_workers=2, threads_per_worker=1) as mem:\n"
                      "        print('threads', sorted(mem.client.run(hdc.get_num_threads).values()))\n")
    env = {k: v for k, v in os.environ.items() if k != "HDC_NUM_THREADS"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "threads [1, 1]" in out.stdout


def test_docstrings_docs_and_example_run(tmp_path):
    """The modules' doctests, docs/distributed.md's local examples and examples/sharded_memory.py."""
    import doctest
    import pathlib
    import re
    import subprocess
    import sys

    from hdc.bench import distributed as bench_section
    from hdc.distributed import collections, sharded

    for module in (sharded, collections, _handoff, bench_section):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__
    root = pathlib.Path(__file__).resolve().parent.parent
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs" / "distributed.md").read_text(), flags=re.S)
    local = [b for b in blocks if "tcp://" not in b]
    assert len(local) == 3
    for block in local:
        block = block.replace("/tmp/hdc-sharded-doc", str(tmp_path / "doc"))
        exec(compile(block, "docs/distributed.md", "exec"),
             {"__name__": "docs"})
    out = subprocess.run([sys.executable, str(root / "examples" / "sharded_memory.py"), "--n", "3000", "--dim", "256",
                          "--dir", str(tmp_path / "example")], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "same answers: True" in out.stdout and "expected [0, 1500, 2999]" in out.stdout


# ---- sparse block codes ----------------------------------------------------------------------
@settings(max_examples=int(os.environ.get("HDC_DIST_EXAMPLES", 10)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_shards=st.sampled_from([2, 5]), shape=st.sampled_from([(1, 4), (8, 3), (16, 300)]), ops=_ops,
       k_frac=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_sparse_equal_to_in_process_memory(client, n_shards, shape, ops, k_frac, seed):
    """Sparse block codes: highest overlap first, ties by global position, as one in-process memory.

    Few blocks and small block sizes make overlap ties frequent, so the tie order is exercised."""
    blocks, block_size = shape
    rng = np.random.default_rng(seed)
    pool = hdc.random_sparse(6, blocks, block_size, seed=seed)
    fresh = hdc.random_sparse(300, blocks, block_size, seed=seed + 1)
    ref = hdc.AssociativeMemory(blocks * block_size, block_size=block_size)
    used = 0
    with ShardedMemory(blocks * block_size, n_shards, client=client, block_size=block_size) as mem:
        for op in ops:
            if op[0] == "add":
                _, n, from_pool, str_labels = op
                x = pool[rng.integers(0, 6, n)] if from_pool else fresh[used:used + n]
                used += n
                labels = [f"s{v}" for v in rng.integers(0, 10, n)] if str_labels else None
                mem.add(x, labels=labels)
                ref.add(x, labels=labels)
            elif len(ref):
                victims = list(dict.fromkeys(rng.choice(ref.labels, min(op[1], len(ref))).tolist()))
                assert mem.remove(victims) == ref.remove(victims)
            assert len(mem) == len(ref) == sum(mem.shard_sizes)
        if len(ref):
            queries = hdc.SparseHV.stack([pool[0], pool[3], fresh[0]])
            same(mem, ref, queries, 1 + int(k_frac * (len(ref) - 1)))
            same(mem, ref, queries, len(ref))
            d, lab = mem.search(queries[1], 1)
            assert d.shape == (1,) and lab.tolist() == ref.search(queries[1], 1)[1].tolist()


@pytest.mark.parametrize("mmap", [False, True])
def test_sparse_save_load_roundtrip(client, tmp_path, mmap):
    codes = hdc.random_sparse(400, 32, 1024, seed=3)   # uint16 indices
    ref = hdc.AssociativeMemory(32 * 1024, block_size=1024)
    with ShardedMemory(32 * 1024, 3, client=client, block_size=1024) as mem:
        assert (mem.blocks, mem.block_size) == (32, 1024) and "block_size=1024" in repr(mem)
        mem.add(codes[:300])
        mem.add(codes[300:], labels=[f"c{i}" for i in range(100)])
        mem.remove([4, "c9"])
        mem.save(tmp_path)
    ref.add(codes[:300])
    ref.add(codes[300:], labels=[f"c{i}" for i in range(100)])
    ref.remove([4, "c9"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["kind"], manifest["block_size"], manifest["version"]) == ("sparse", 1024, 2)
    assert all((e["kind"], e["block_size"]) == ("sparse", 1024) for e in manifest["shards"])
    with ShardedMemory.load(tmp_path, client=client, mmap=mmap) as back:
        assert back.block_size == 1024 and len(back) == len(ref)
        same(back, ref, codes[::9], 7)
        back.add(codes[:5])
        ref.add(codes[:5])
        same(back, ref, codes[:5], 3)


def test_sparse_errors_and_mixed_shards(client, tmp_path):
    with pytest.raises(ValueError, match="multiple of block_size"):
        ShardedMemory(100, 2, client=client, block_size=64)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        ShardedMemory(128, 2, client=client, block_size=0)
    with ShardedMemory(1024, 2, client=client, block_size=64) as mem:
        with pytest.raises(TypeError, match="x must be a hdc.SparseHV, got a BinaryHV"):
            mem.add(hdc.random(2, 1024, seed=0))
        with pytest.raises(ValueError, match="same blocks and block_size"):
            mem.add(hdc.random_sparse(2, 32, 32, seed=0))
        mem.add(hdc.random_sparse(20, 16, 64, seed=0))
        with pytest.raises(TypeError, match="queries must be a hdc.SparseHV"):
            mem.search(hdc.random(1, 1024, seed=0), 1)
        mem.save(tmp_path)
    good = (tmp_path / "manifest.json").read_text()
    for change, match in ((lambda m: m["shards"][1].update(block_size=32), "different block sizes"),
                          (lambda m: m["shards"][0].update(kind="dense", block_size=None), "different kinds"),
                          (lambda m: m.update(block_size=48), "block_size 48 is not an int"),
                          (lambda m: m.update(kind="dense"), "dense memory has block_size")):
        m = json.loads(good)
        change(m)
        (tmp_path / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(ValueError, match=match):
            ShardedMemory.load(tmp_path, client=client)
    # a shard file of the other kind, renamed over one the manifest names: refused, named
    m = json.loads(good)
    dense = hdc.AssociativeMemory(1024)
    dense.add(hdc.random(m["shards"][0]["count"], 1024, seed=1))
    dense.save(tmp_path / m["shards"][0]["file"])
    m["shards"][0]["header_crc"] = _shard.header_crc(tmp_path / m["shards"][0]["file"])
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="holds binary hypervectors, expected sparse"):
        ShardedMemory.load(tmp_path, client=client)


def test_hdc_bench_distributed_writes_the_overhead_table(tmp_path, capsys):
    """`hdc bench --distributed --smoke`: both cluster kinds, identical answers, each target stated."""
    from hdc.cli.main import main

    assert main(["bench", "--distributed", "--smoke", "--out", str(tmp_path)]) == 0
    assert "wrote distributed.json, distributed.md" in capsys.readouterr().out
    res = json.loads((tmp_path / "distributed.json").read_text())
    for kind in ("threads", "processes"):
        rows = res["clusters"][kind]
        assert [r["queries"] for r in rows] == [1, 64] and all(r["identical"] and r["rounds"] == 5 for r in rows)
        assert all(r["in_process_s"] > 0 and r["sharded_cpu_s"] >= 0 for r in rows)
    table = (tmp_path / "distributed.md").read_text()
    assert table.count("| threads |") == 2 and table.count("| processes |") == 2
    assert "<= 2 ms" in table and "<= 5 ms" in table


def test_calls_slower_than_the_poll_interval_still_answer_exactly(client, monkeypatch):
    """A fan-out that outlasts one poll interval falls back to waiting shard by shard (checking for
    lost workers each interval): same answers, every call made once."""
    from hdc.distributed import sharded

    items = hdc.random(40, 100, seed=3)
    ref = hdc.AssociativeMemory(100)
    ref.add(items)
    with ShardedMemory(100, 3, client=client) as mem:
        monkeypatch.setattr(sharded, "_LOCAL_CALLS", False)   # through Dask's actor calls, not straight to the shards
        monkeypatch.setattr(sharded, "_POLL_SECONDS", 1e-4)
        waited = []
        one_by_one = ShardedMemory._result
        monkeypatch.setattr(ShardedMemory, "_result", lambda self, i, fut: waited.append(i) or one_by_one(self, i, fut))
        mem.add(items)
        assert len(mem) == 40 and sum(mem.shard_sizes) == 40
        same(mem, ref, items[::3], 5)
        assert mem.remove([0, 5]) == ref.remove([0, 5]) == 2
        same(mem, ref, items[::3], 5)
    assert waited
