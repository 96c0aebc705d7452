"""SparseDistributedMemory: write/read recovery, noisy-address recall, capacity vs analysis."""
import numpy as np
import pytest

import hdc


def test_write_read_recovers_few_patterns():
    sdm = hdc.SparseDistributedMemory(512, n_locations=3000, radius=230, seed=0)
    keys, values = hdc.random(30, 512, seed=1), hdc.random(30, 512, seed=2)
    sdm.write(keys, values)
    assert sdm.n_writes == 30
    assert bool((sdm.read(keys) == values).all())
    single = sdm.read(keys[4])
    assert single.shape == () and bool(single == values[4])


def test_batch_write_equals_single_writes():
    a = hdc.SparseDistributedMemory(200, 500, 90, seed=3)
    b = hdc.SparseDistributedMemory(200, 500, 90, seed=3)
    keys, values = hdc.random(12, 200, seed=4), hdc.random(12, 200, seed=5)
    a.write(keys, values)
    for k, v in zip(keys, values):
        b.write(k, v)
    assert np.array_equal(a.counters, b.counters)


def test_counters_follow_definition():
    sdm = hdc.SparseDistributedMemory(100, 300, 45, seed=6)
    keys, values = hdc.random(5, 100, seed=7), hdc.random(5, 100, seed=8)
    sdm.write(keys, values)
    d = hdc.cdist(keys, sdm.locations)
    expected = np.zeros((300, 100), np.int64)
    signed = 2 * values.to_bool().astype(np.int64) - 1
    for i in range(5):
        expected[d[i] <= 45] += signed[i]
    assert np.array_equal(sdm.counters, expected)
    sums, n_active = sdm.read_sums(keys)
    assert n_active.tolist() == (d <= 45).sum(axis=1).tolist()
    assert np.array_equal(sums, np.stack([expected[d[i] <= 45].sum(axis=0) for i in range(5)]))


def test_autoassociative_recall_from_noisy_address():
    dim = 256
    sdm = hdc.SparseDistributedMemory(dim, 4000, 111, seed=9)
    patterns = hdc.random(40, dim, seed=10)
    sdm.write(patterns, patterns)
    rng = np.random.default_rng(11)
    flips = np.zeros((40, dim), bool)
    for i in range(40):
        flips[i, rng.choice(dim, 20, replace=False)] = True   # 20 of 256 bits wrong
    noisy = patterns ^ hdc.BinaryHV.from_bool(flips)
    out = sdm.read(noisy)
    # one read pulls the noisy cue towards the stored pattern
    assert np.mean(hdc.hamming(out, patterns)) < 0.5 * np.mean(hdc.hamming(noisy, patterns))


@pytest.mark.parametrize("radius,n_writes", [(108, 500), (108, 1000), (111, 500), (111, 1000), (115, 200), (115, 500)])
def test_capacity_matches_analytic_expectation(radius, n_writes):
    dim, n_locations = 256, 2000
    sdm = hdc.SparseDistributedMemory(dim, n_locations, radius, seed=0)
    keys, values = hdc.random(n_writes, dim, seed=1), hdc.random(n_writes, dim, seed=2)
    sdm.write(keys, values)
    measured = float(np.mean(hdc.hamming(sdm.read(keys[:300]), values[:300]))) / dim
    expected = sdm.expected_bit_error(n_writes)
    assert 0.02 < expected < 0.35
    assert abs(measured - expected) < 0.15 * expected + 0.005, (measured, expected)


def test_error_grows_with_load():
    sdm = hdc.SparseDistributedMemory(256, 2000, 111, seed=0)
    errors = [sdm.expected_bit_error(t) for t in (10, 100, 400, 1600)]
    assert errors == sorted(errors) and errors[0] < 1e-6 and errors[-1] > 0.15
    assert 0.01 < sdm.activation_probability() < 0.03


def test_errors():
    sdm = hdc.SparseDistributedMemory(128, 100, 20, seed=0)
    x = hdc.random(3, 128, seed=1)
    with pytest.raises(ValueError, match="no hard location lies within radius 20"):
        sdm.read(x)
    with pytest.raises(ValueError, match="same length"):
        sdm.write(x, x[:2])
    with pytest.raises(ValueError, match="dim 128"):
        sdm.write(hdc.random(1, 64, seed=0), hdc.random(1, 64, seed=0))
    with pytest.raises(ValueError, match="radius must be <= 128"):
        hdc.SparseDistributedMemory(128, 10, 500)
    with pytest.raises(ValueError, match="n_locations must be >= 1"):
        hdc.SparseDistributedMemory(128, 0, 5)
    with pytest.raises(TypeError, match="address must be a hdc.BinaryHV"):
        sdm.read(np.zeros(2, np.uint64))
