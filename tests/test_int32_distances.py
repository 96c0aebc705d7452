"""Distances are int32 on every backend and path, and dim is limited to 2**31 - 1 everywhere a dim
is read, with an error that names dim, before anything is allocated."""
import numpy as np
import pytest

import hdc
from conftest import PATHS, on_path
from hdc._kernels import EMPTY_DISTANCE
from hdc._validate import MAX_DIM, check_dim
from test_persistence import rewrite_header

BIG = 2 ** 31


def test_max_dim_is_int32_max():
    assert MAX_DIM == np.iinfo(np.int32).max == EMPTY_DISTANCE
    assert check_dim(MAX_DIM) == MAX_DIM


@pytest.mark.parametrize("make", [
    lambda d: check_dim(d),
    lambda d: hdc.random(1, d, seed=0),
    lambda d: hdc.BinaryHV(np.zeros((1, 1), np.uint64), d),
    lambda d: hdc.BinaryHV.from_bytes(b"\x00" * 8, d),
    lambda d: hdc.BinaryHV.from_packed(np.zeros((1, 8), np.uint8), d),
    lambda d: hdc.Accumulator(d),
    lambda d: hdc.AssociativeMemory(d),
    lambda d: hdc.SparseDistributedMemory(d, 10, 5, seed=0),
    lambda d: hdc.ItemMemory(d, 4, seed=0),
    lambda d: hdc.LevelEncoder(d, 4, seed=0),
    lambda d: hdc.RecordEncoder(d, 3, seed=0),
    lambda d: hdc.NGramEncoder(d, 3, seed=0),
    lambda d: hdc.RandomProjection(3, d, seed=0),
], ids=["check_dim", "random", "BinaryHV", "from_bytes", "from_packed", "Accumulator",
        "AssociativeMemory", "SDM", "ItemMemory", "LevelEncoder", "RecordEncoder", "NGramEncoder",
        "RandomProjection"])
@pytest.mark.parametrize("dim", [BIG, 2 ** 32, 2 ** 40])
def test_dim_above_int32_is_refused_before_allocating(make, dim):
    with pytest.raises(ValueError, match=r"dim must be <= 2\*\*31 - 1"):
        make(dim)


@pytest.mark.parametrize("dim", [BIG, 2 ** 32 + 64])
def test_saved_memory_with_huge_dim_is_refused(tmp_path, dim):
    """A file whose (checksummed) header says dim >= 2**31 is refused with a message naming dim."""
    path = tmp_path / "m.hdcm"
    hdc.AssociativeMemory(64).save(path)
    path.write_bytes(rewrite_header(path.read_bytes(), dim=dim))
    with pytest.raises(ValueError, match=rf"dim {dim} is not in \[1, 2\*\*31 - 1\]"):
        hdc.AssociativeMemory.load(path)


@pytest.mark.parametrize("dim", [1, 64, 65, 1000])
def test_distances_are_int32_and_differences_do_not_wrap(kernel_path, dim):
    x = hdc.random(6, dim, seed=dim)
    ones = ~hdc.BinaryHV(np.zeros((1, -(-dim // 64)), np.uint64), dim)
    far = ~x
    for value in (hdc.hamming(x, far), hdc.hamming(x[0], x), hdc.cdist(x, far), hdc.popcount(ones),
                  hdc.topk(x, far, 2)[0]):
        assert value.dtype == np.int32
    assert (hdc.hamming(x, far) == dim).all() and hdc.popcount(ones)[0] == dim
    assert (hdc.similarity(x, far) == -1.0).all()
    # a difference of distances is negative when it should be (uint32 wrapped to ~4e9)
    d = hdc.cdist(x[:1], x)[0]
    assert (d - dim <= 0).all() and (d - dim)[0] == -dim


def test_invisible_top_k_slots_are_int32_max_on_every_path():
    """Slots that no visible row fills: distance INT32_MAX, index -1, on every backend."""
    q, m = hdc.random(3, 130, seed=1), hdc.random(5, 130, seed=2)
    vis = np.array([0, 2, 9], np.int64)
    for name, isa in PATHS:
        with on_path(name, isa):
            kern = hdc.backend.kernels()
            d, i = np.empty((3, 4), np.int32), np.empty((3, 4), np.int64)
            kern.topk(q.words, m.words, 4, vis, d, i)
            assert d[0].tolist() == [EMPTY_DISTANCE] * 4 and i[0].tolist() == [-1] * 4
            assert d[1, 2:].tolist() == [EMPTY_DISTANCE] * 2 and i[1, 2:].tolist() == [-1] * 2
            kd = np.empty((1, 3, 7), np.int32)
            ki = np.empty((1, 3, 7), np.int64)
            kern.kwta_select(q.words[None], m.words[None], 7, vis, kd, ki)
            assert kd[0, 2, 5:].tolist() == [EMPTY_DISTANCE] * 2 and ki[0, 2, 5:].tolist() == [-1] * 2
            np.testing.assert_array_equal(kd[0, :, :4], d)


def test_counts_of_a_long_all_ones_row_do_not_wrap(kernel_path):
    """2**27 set bits in one row (16 MiB): no narrow accumulator on any path wraps."""
    dim = 2 ** 27
    ones = np.full((1, dim // 64), ~np.uint64(0))
    zeros = np.zeros_like(ones)
    kern = hdc.backend.kernels()
    count, dist = np.empty(1, np.int32), np.empty((1, 1), np.int32)
    kern.popcount(ones, count)
    assert count[0] == dim
    kern.hamming(ones, zeros, count)
    assert count[0] == dim
    kern.cdist(ones, zeros, dist)
    assert dist[0, 0] == dim
    idx = np.empty((1, 1), np.int64)
    kern.topk(ones, zeros, 1, None, dist, idx)
    assert dist[0, 0] == dim and idx[0, 0] == 0
