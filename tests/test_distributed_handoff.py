"""hdc.distributed._handoff: query batches carried to shards through files under /dev/shm."""
import os

import numpy as np
import pytest

import hdc
from hdc.distributed import _handoff


@pytest.fixture
def files():
    f = _handoff.QueryFiles()
    yield f
    f.close()


def _ours():
    prefix = f"{_handoff._PREFIX}{os.getpid()}-"
    return sorted(n for n in os.listdir(_handoff.SHARED_DIR) if n.startswith(prefix))


def test_shared_dir_is_there():
    """The machines this runs on are Linux hosts with /dev/shm (else every batch goes inline)."""
    assert _handoff.available()


@pytest.mark.parametrize("dim", [65, 512, 10_000])
def test_dense_batches_read_back_equal_and_files_are_reused(files, dim):
    rows = _handoff.MIN_SHARED_BYTES // (hdc.random(1, dim, seed=0).words.nbytes) + 3
    big, small = hdc.random(rows, dim, seed=1), hdc.random(rows // 2 + 1, dim, seed=2)
    with files.share(big) as ref:
        got = ref.read()
        assert got.dim == dim and np.array_equal(got.words, big.words)
        path = ref.path
    with files.share(small) as ref:   # the same file, rewritten; read only as far as this batch
        assert ref is None or ref.path == path
        if ref is not None:
            assert np.array_equal(ref.read().words, small.words)
    assert _ours() == [os.path.basename(path)]
    files.close()
    assert _ours() == []


def test_sparse_batches_read_back_equal(files):
    q = hdc.random_sparse(700, 100, 256, seed=3)
    with files.share(q) as ref:
        got = ref.read()
        assert isinstance(got, hdc.SparseHV) and got.block_size == 256
        assert np.array_equal(got.indices, q.indices)


def test_small_batches_and_single_queries_go_inline(files):
    for q in (hdc.random(3, 10_000, seed=0), hdc.random(1, 10_000, seed=0)[0]):
        with files.share(q) as ref:
            assert ref is None
    assert _ours() == []


def test_concurrent_searches_get_their_own_files(files):
    q = hdc.random(100, 10_000, seed=0)
    with files.share(q) as a, files.share(q) as b:
        assert a.path != b.path
    assert len(_ours()) == 2


def test_a_bad_file_is_refused(files):
    q = hdc.random(100, 10_000, seed=0)
    with files.share(q) as ref:
        short = _handoff.SharedQueries(ref.path, (200, q.words.shape[1]), ref.dtype, ref.dim, None)
        with pytest.raises(ValueError, match="holds .* values, the query batch"):
            short.read()
    sparse = hdc.random_sparse(700, 100, 256, seed=3)
    with files.share(sparse) as ref:
        with pytest.raises(ValueError, match="index is >= block_size 100"):
            _handoff.SharedQueries(ref.path, ref.shape, ref.dtype, None, 100).read()
    odd = hdc.random(100, 10_000, seed=0)
    with files.share(odd) as ref:
        with pytest.raises(ValueError, match="padding bits past dim=9990"):
            _handoff.SharedQueries(ref.path, ref.shape, ref.dtype, 9990, None).read()


def test_a_vanished_file_is_a_clear_error():
    gone = _handoff.SharedQueries(os.path.join(_handoff.SHARED_DIR, "hdc-queries-0-gone"), (2, 157), "<u8",
                                  10_000, None)
    with pytest.raises(ValueError, match="cannot read the query batch"):
        gone.read()


def test_probe_tells_who_shares_the_folder(tmp_path):
    with _handoff.probe() as probe:
        assert _handoff.can_read(probe)
        path, content = probe
        assert not _handoff.can_read((path, content[::-1]))
    assert not _handoff.can_read(probe)          # deleted after use
    assert not _handoff.can_read(None)


def test_files_of_dead_clients_are_removed():
    dead = 2**22 + 12345   # above Linux's default pid_max: no such process
    while _handoff._pid_alive(dead):
        dead += 1
    stale = os.path.join(_handoff.SHARED_DIR, f"{_handoff._PREFIX}{dead}-0123")
    live = os.path.join(_handoff.SHARED_DIR, f"{_handoff._PREFIX}{os.getpid()}-0123")
    for p in (stale, live):
        open(p, "wb").close()
    try:
        _handoff.remove_stale()
        assert not os.path.exists(stale) and os.path.exists(live)
    finally:
        for p in (stale, live):
            if os.path.exists(p):
                os.unlink(p)


def test_a_full_shared_folder_sends_the_batch_inline(files, monkeypatch):
    q = hdc.random(100, 10_000, seed=0)

    def full(fd, data, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_handoff.os, "pwrite", full)
    with files.share(q) as ref:
        assert ref is None
    monkeypatch.setattr(_handoff.os, "pwrite", lambda fd, data, offset: 10)   # a short write
    with files.share(q) as ref:
        assert ref is None
    assert _ours() == []     # nothing left behind
    monkeypatch.undo()
    with files.share(q) as ref:
        assert np.array_equal(ref.read().words, q.words)
