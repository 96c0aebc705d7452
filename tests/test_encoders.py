"""Encoders: similarity structure, seeds, batch == loop, n-grams vs a slow reference, errors."""
import math

import numpy as np
import pytest

import hdc


# ---- scalar encoders ------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1000, 10_000, 4099])
def test_level_neighbours_close_ends_orthogonal(dim):
    enc = hdc.LevelEncoder(dim, levels=21, low=-1, high=1, seed=3)
    book = enc.codebook
    d = hdc.cdist(book, book).astype(np.int64)
    step = (dim // 2) / 20
    # distance grows linearly with the level gap, exactly (flips are nested prefixes of one order)
    for i in range(21):
        for j in range(21):
            assert abs(d[i, j] - abs(i - j) * step) <= 1
    assert abs(float(hdc.similarity(book[0], book[20]))) < 0.01
    assert float(hdc.similarity(book[0], book[1])) > 0.9


def test_level_value_mapping_and_shapes():
    enc = hdc.LevelEncoder(512, levels=5, low=0, high=4, seed=0)
    assert enc.index([0, 0.4, 0.6, 2, 4]).tolist() == [0, 0, 1, 2, 4]
    x = enc(np.arange(6).reshape(2, 3) % 5)
    assert x.shape == (2, 3)
    assert enc(2.0).shape == ()
    assert bool(enc(3) == enc.codebook[3])


def test_thermometer_counts_and_order():
    enc = hdc.ThermometerEncoder(1000, levels=5, low=0, high=1, seed=1)
    book = enc.codebook
    assert hdc.popcount(book).tolist() == [0, 250, 500, 750, 1000]
    # each level's ones contain the previous level's ones
    bits = book.to_bool()
    assert np.all(bits[1:] >= bits[:-1])
    assert float(hdc.similarity(book[0], book[-1])) == -1.0
    # the fill order is seeded, not the first positions
    assert not np.array_equal(bits[1], np.arange(1000) < 250)


def test_circular_wraps():
    levels, dim = 12, 12_000
    enc = hdc.CircularEncoder(dim, levels=levels, low=0, high=2 * math.pi, seed=5)
    book = enc.codebook
    d = hdc.cdist(book, book).astype(np.int64)
    for i in range(levels):
        for j in range(levels):
            circ = min(abs(i - j), levels - abs(i - j))
            assert abs(d[i, j] - circ * dim / levels) <= 1
    # the period wraps: high is the same point as low, values near high are near low
    assert bool(enc(2 * math.pi) == enc(0.0))
    assert float(hdc.similarity(enc(0.0), enc(2 * math.pi - 0.5))) > 0.8
    assert abs(float(hdc.similarity(enc(0.0), enc(math.pi)))) < 0.01


def test_circular_odd_levels():
    enc = hdc.CircularEncoder(9000, levels=3, low=0, high=3, seed=0)
    d = hdc.cdist(enc.codebook, enc.codebook)
    assert d[0, 1] == d[1, 2] == d[0, 2] == 3000


@pytest.mark.parametrize("cls", [hdc.LevelEncoder, hdc.ThermometerEncoder, hdc.CircularEncoder])
def test_scalar_seeds_and_errors(cls):
    a, b, c = (cls(777, levels=8, low=0, high=1, seed=s) for s in (1, 1, 2))
    assert bool((a.codebook == b.codebook).all())
    assert not bool((a.codebook == c.codebook).all())
    with pytest.raises(ValueError, match="values must lie in"):
        a([0.5, 1.5])
    with pytest.raises(ValueError, match="finite"):
        a([0.5, float("nan")])
    with pytest.raises(ValueError, match="low must be < high"):
        cls(64, levels=4, low=1, high=1)
    with pytest.raises(ValueError, match="levels must be >= 2"):
        cls(64, levels=1)
    with pytest.raises(TypeError, match="dim must be an int"):
        cls(64.0, levels=4)
    # padding bits stay zero at an odd dim
    assert not np.any(a.codebook.words[:, -1] >> np.uint64(777 % 64))


# ---- item memory ----------------------------------------------------------------------------------
def test_item_memory_lookup_and_growth():
    mem = hdc.ItemMemory(1000, ["a", "b", "c"], seed=4)
    assert len(mem) == 3 and "b" in mem and "z" not in mem
    x = mem(["c", "a"])
    assert x.shape == (2,) and bool(x[0] == mem["c"])
    assert mem(np.array([["a", "b"], ["c", "a"]])).shape == (2, 2)
    with pytest.raises(ValueError, match="unknown symbol 'z'"):
        mem("z")
    grown = hdc.ItemMemory(1000, ["a"], seed=4, grow=True)
    grown(["b", "c", "d"])
    assert grown.symbols == ["a", "b", "c", "d"]
    # growing symbol by symbol gives the rows of a memory built at full size
    assert bool((grown.vectors[:3] == mem.vectors).all())
    full = hdc.ItemMemory(1000, 200, seed=4)
    step = hdc.ItemMemory(1000, 70, seed=4, grow=True)
    step(list(range(70, 200)))
    assert bool((full.vectors == step.vectors).all())
    # distinct symbols are quasi-orthogonal
    s = hdc.similarity(full.vectors[0], full.vectors[1:])
    assert np.all(np.abs(s) < 0.2)


def test_item_memory_errors():
    with pytest.raises(TypeError, match="string"):
        hdc.ItemMemory(64, "abc")
    with pytest.raises(TypeError, match="hashable"):
        hdc.ItemMemory(64, [[1], [2]])
    with pytest.raises(ValueError, match="symbols_or_size must be >= 0"):
        hdc.ItemMemory(64, -1)


# ---- record encoder -------------------------------------------------------------------------------
def _record_reference(enc, x):
    levels = enc.level_encoder.codebook[enc.index(x)]
    return hdc.bundle(hdc.bind(enc.ids, levels), tie=enc.tie)


@pytest.mark.parametrize("n_features,dim", [(1, 64), (2, 100), (7, 1000), (16, 4096), (31, 130), (64, 10_000)])
def test_record_matches_reference(n_features, dim, rng):
    enc = hdc.RecordEncoder(dim, n_features, levels=9, low=-2, high=3, seed=n_features)
    X = rng.uniform(-2, 3, (5, n_features))
    batch = enc(X)
    for i in range(5):
        ref = _record_reference(enc, X[i])
        assert bool(batch[i] == ref)
        assert bool(enc(X[i]) == ref)


def test_record_similarity_and_ranges(rng):
    enc = hdc.RecordEncoder(10_000, 8, levels=10, low=np.zeros(8), high=np.arange(1, 9), seed=0)
    x = rng.uniform(0, 1, 8) * np.arange(1, 9)
    near = np.clip(x + 0.02 * np.arange(1, 9), 0, np.arange(1, 9))
    far = np.arange(1, 9) - x
    s = hdc.similarity(enc(x), enc(np.stack([near, far])))
    assert s[0] > s[1]
    with pytest.raises(ValueError, match="outside"):
        enc(np.full(8, 5.0))
    with pytest.raises(ValueError, match="finite"):
        enc(np.full(8, np.nan))
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        enc(np.zeros((2, 7)))
    assert bool((hdc.RecordEncoder(500, 3, seed=9)(np.full(3, 0.3)) ==
                 hdc.RecordEncoder(500, 3, seed=9)(np.full(3, 0.3))))


# ---- n-gram encoder -------------------------------------------------------------------------------
def _ngram_reference(enc, symbols):
    """Slow reference from hdc.permute / bind / bundle."""
    items = enc.item_vectors(symbols)
    grams = []
    for n in enc.sizes:
        for p in range(len(symbols) - n + 1):
            g = hdc.permute(items[p], n - 1)
            for j in range(1, n):
                g = hdc.bind(g, hdc.permute(items[p + j], n - 1 - j))
            grams.append(g)
    return hdc.bundle(hdc.BinaryHV.stack(grams), tie=enc.tie)


@pytest.mark.parametrize("n", [1, 2, 3, 4, (1, 2, 3), (2, 5)])
@pytest.mark.parametrize("dim", [63, 64, 1000])
def test_ngram_matches_slow_reference(n, dim):
    enc = hdc.NGramEncoder(dim, n=n, seed=11)
    texts = ["hello world", "aaaaa", "Grüße, мир! ☃ 𝄞 ok", "abcdefghijklmnopqrstuvwxyz" * 3]
    batch = enc(texts)
    for i, t in enumerate(texts):
        ref = _ngram_reference(enc, [ord(c) for c in t])
        assert bool(batch[i] == ref), (n, dim, t)
        assert bool(enc(t) == ref)


def test_ngram_tokens_equal_code_points():
    enc = hdc.NGramEncoder(2000, n=3, seed=0)
    text = "token sequences"
    codes = [ord(c) for c in text]
    assert bool(enc(text) == enc(codes))
    assert bool(enc(np.array(codes)) == enc(text))
    two = enc(np.array([codes[:8], codes[7:15]]))
    assert two.shape == (2,) and bool(two[0] == enc(text[:8]))
    mixed = enc([codes, np.array([5, 10**12, 7, 5]), [1, 2, 3]])
    assert bool(mixed[1] == _ngram_reference(enc, [5, 10**12, 7, 5]))


def test_ngram_seed_and_order_independence():
    a = hdc.NGramEncoder(3000, n=3, seed=1)
    b = hdc.NGramEncoder(3000, n=3, seed=1)
    texts = ["xyz abc", "the quick brown fox", "ЖЖЖ жжж"]
    a(texts[::-1])  # a different order of first sight must not change the vectors
    assert bool((a(texts) == b(texts)).all())
    assert not bool(hdc.NGramEncoder(3000, n=3, seed=2)(texts[1]) == a(texts[1]))


def test_ngram_similarity_structure():
    enc = hdc.NGramEncoder(10_000, n=3, seed=0)
    a, b, c = enc(["the cat sat on the mat", "the cat sat on a mat", "völlig andere Wörter hier"])
    assert hdc.similarity(a, b) > 0.5 > hdc.similarity(a, c)


def test_ngram_errors():
    enc = hdc.NGramEncoder(256, n=3, seed=0)
    with pytest.raises(ValueError, match="empty"):
        enc("")
    with pytest.raises(ValueError, match=r"texts\[1\] is 2 symbols long"):
        enc(["abcd", "ab"])
    with pytest.raises(ValueError, match="non-negative"):
        enc([1, -2, 3])
    with pytest.raises(TypeError, match="string or a 1-D integer token sequence"):
        enc([[1.5, 2.0, 3.0]])
    with pytest.raises(TypeError, match="dtype"):
        enc(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="n must be"):
        hdc.NGramEncoder(256, n=())
    with pytest.raises(ValueError, match="n must be >= 1"):
        hdc.NGramEncoder(256, n=0)


# ---- random projection ----------------------------------------------------------------------------
def test_random_projection_tracks_angle(rng):
    proj = hdc.RandomProjection(32, 20_000, seed=0)
    base = rng.standard_normal(32)
    other = rng.standard_normal(32)
    other -= other @ base / (base @ base) * base
    for theta in (0.1, 0.5, 1.0, 2.0, 3.0):
        v = math.cos(theta) * base / np.linalg.norm(base) + math.sin(theta) * other / np.linalg.norm(other)
        codes = proj(np.stack([base, v]))
        frac = int(hdc.hamming(codes[0], codes[1])) / 20_000
        assert abs(frac - theta / math.pi) < 0.02, theta
    # scale invariance; seeds
    assert bool(proj(base) == proj(5 * base))
    assert bool(hdc.RandomProjection(32, 100, seed=3)(base) == hdc.RandomProjection(32, 100, seed=3)(base))
    with pytest.raises(ValueError, match="finite"):
        proj(np.full(32, np.nan))
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        proj(np.zeros(31))


def test_random_projection_batch_equals_singles(rng):
    proj = hdc.RandomProjection(5, 130, seed=2)
    X = rng.standard_normal((9, 5))
    batch = proj.encode(X, batch_size=4)
    for i in range(9):
        assert bool(batch[i] == proj(X[i]))


def test_item_memory_vectorised_lookup_matches_dictionary(rng):
    mem = hdc.ItemMemory(256, 1000, seed=1)
    idx = rng.integers(0, 1000, (50, 40))
    x = mem(idx)
    assert x.shape == (50, 40) and np.array_equal(mem.index(idx), idx)
    assert bool((x[3, 7] == mem.vectors[idx[3, 7]]))
    with pytest.raises(ValueError, match="unknown symbol 1000"):
        mem(np.array([5, 1000]))
    words = hdc.ItemMemory(256, ["x", "y", 3, ("t", 1)], seed=2)
    assert words.index(["y", "x", "y"]).tolist() == [1, 0, 1]
    assert words.index([3, ("t", 1), "x"]).tolist() == [2, 3, 0]   # mixed types: no str coercion
    with pytest.raises(ValueError, match="unknown symbol '3'"):
        words.index(["3"])
    grown = hdc.ItemMemory(256, 3, seed=1, grow=True)
    assert grown.index(np.array([0, 5, 2])).tolist() == [0, 3, 2]   # 5 becomes row 3
    assert grown.symbols == [0, 1, 2, 5] and bool(grown[5] == hdc.ItemMemory(256, 4, seed=1).vectors[3])
    big = hdc.ItemMemory(64, 200_000, seed=0)   # building and looking up many symbols stays fast
    assert len(big) == 200_000 and big.index(np.arange(199_990, 200_000)).tolist()[0] == 199_990
