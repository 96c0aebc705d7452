"""hdc.primitives called from a user's own @njit kernels (and from Python) against NumPy."""
import sys

import numba
import numpy as np
import pytest

import hdc
from hdc import primitives as p

DIMS = [1, 63, 64, 65, 127, 1000, 8191]


# ---- user kernels built on the primitives (compiled once per session) ------------------------

@numba.njit
def user_popcounts(words):
    out = np.empty(words.shape[0] * words.shape[1], np.int64)
    for r in range(words.shape[0]):
        for w in range(words.shape[1]):
            out[r * words.shape[1] + w] = p.popcount64(words[r, w])
    return out


@numba.njit
def user_row_counts(x, y):
    pop = np.empty(x.shape[0], np.int64)
    ham = np.empty(x.shape[0], np.int64)
    for r in range(x.shape[0]):
        pop[r] = p.popcount_row(x[r])
        ham[r] = p.hamming_row(x[r], y[r])
    return pop, ham


@numba.njit
def user_xor(x, y):
    out = np.empty_like(x)
    for r in range(x.shape[0]):
        p.xor_row(x[r], y[r], out[r])
    return out


@numba.njit
def user_unpack(row, dim):
    bits = np.empty(dim, np.int64)
    for i in range(dim):
        bits[i] = p.get_bit(row, i)
    return bits


@numba.njit
def user_pack(bits, n_words):
    row = np.full(n_words, np.uint64(0xAAAAAAAAAAAAAAAA))   # junk first: set_bit must clear too
    for i in range(bits.shape[0]):
        p.set_bit(row, i, bits[i])
    for i in range(bits.shape[0], n_words * 64):
        p.set_bit(row, i, 0)
    return row


@numba.njit
def user_rotate(x, dim, shift):
    out = np.empty_like(x)
    for r in range(x.shape[0]):
        p.rotate_row(x[r], dim, shift, out[r])
    return out


@p.jit(parallel=True)
def count_within(query, memory, radius):
    hits = 0
    for j in numba.prange(memory.shape[0]):
        if p.hamming_row(query, memory[j]) <= radius:
            hits += 1
    return hits


def bools(hv):
    return np.asarray(hv.to_bool(), dtype=bool)


@pytest.mark.parametrize("dim", DIMS)
def test_popcounts_and_hamming_in_user_kernel(dim):
    x, y = hdc.random(7, dim, seed=dim), hdc.random(7, dim, seed=dim + 1)
    np.testing.assert_array_equal(user_popcounts(x.words), np.bitwise_count(x.words).reshape(-1))
    pop, ham = user_row_counts(x.words, y.words)
    np.testing.assert_array_equal(pop, bools(x).sum(-1))
    np.testing.assert_array_equal(ham, (bools(x) != bools(y)).sum(-1))


def test_popcount64_edge_words():
    words = np.array([[0, 1, 2 ** 63, 2 ** 64 - 1, 0x5555555555555555, 0xF0F0]], np.uint64)
    assert user_popcounts(words).tolist() == [0, 1, 1, 64, 32, 8]
    assert p.popcount64(np.uint64(2 ** 64 - 1)) == 64
    assert p.popcount64(-1) == 64          # signed words count their 64-bit pattern


@pytest.mark.parametrize("dim", DIMS)
def test_xor_and_bits_in_user_kernel(dim):
    x, y = hdc.random(5, dim, seed=dim), hdc.random(5, dim, seed=3 * dim)
    np.testing.assert_array_equal(user_xor(x.words, y.words), (x ^ y).words)
    bits = bools(x[2])
    np.testing.assert_array_equal(user_unpack(x.words[2], dim), bits.astype(np.int64))
    np.testing.assert_array_equal(user_pack(bits.astype(np.int64), x.n_words), x.words[2])


@pytest.mark.parametrize("dim", DIMS)
def test_rotate_row_in_user_kernel(dim):
    x = hdc.random(4, dim, seed=dim)
    for shift in (0, 1, -1, 63, 64, 65, -130, dim - 1, dim, dim + 1, 3 * dim + 7, -5 * dim - 2):
        got = user_rotate(x.words, dim, shift)
        np.testing.assert_array_equal(got, hdc.BinaryHV.from_bool(np.roll(bools(x), shift, -1)).words,
                                      err_msg=f"dim={dim} shift={shift}")


def test_xor_row_may_alias():
    x, y = hdc.random(2, 300, seed=0)
    a = x.words.copy()
    p.xor_row(a, y.words, a)
    np.testing.assert_array_equal(a, (x ^ y).words)


def test_jit_helper_options_and_parallel_user_kernel():
    assert p.JIT_OPTIONS == {"cache": True, "nogil": True, "fastmath": False}
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    import hdc._kernels.numba_kernels  # noqa: F401 - loads every family's numba.py
    modules = [m for name, m in sys.modules.items() if name.startswith("hdc.")]
    kernels = [f for m in modules for f in vars(m).values() if isinstance(f, CPUDispatcher)]
    for kernel in kernels:
        assert kernel.targetoptions["nogil"] and not kernel.targetoptions.get("fastmath")
        assert not isinstance(kernel._cache, NullCache), kernel
    mem = hdc.random(500, 1000, seed=1)
    q = mem.words[7]
    d = (bools(mem) != bools(mem[7])).sum(-1)
    for radius in (0, 480, 500, 1000):
        assert count_within(q, mem.words, radius) == int((d <= radius).sum())
    assert count_within.targetoptions["parallel"]


def test_jit_without_source_file_falls_back_to_no_cache():
    namespace = {}
    exec("from hdc.primitives import jit\n@jit\ndef triple(x):\n    return 3 * x\n", namespace)
    assert namespace["triple"](5) == 15
