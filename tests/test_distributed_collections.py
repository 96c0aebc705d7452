"""Encoders and CentroidClassifier on Dask collections: the same vectors and the same model as in process."""
import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest

import hdc


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


TEXTS = ["the cat sat on the mat", "ein Hund lief über die Straße", "zwölf Boxkämpfer", "abc", "le chat",
         "Привет, мир", "hello world", "x" * 50] * 5


def test_ngram_encoder_on_a_bag_is_a_map():
    enc = hdc.NGramEncoder(1000, n=3, seed=0)
    bag = db.from_sequence(TEXTS, npartitions=4)
    words = enc.encode(bag)
    assert isinstance(words, da.Array) and words.dtype == np.uint64
    got = words.compute()
    np.testing.assert_array_equal(got, hdc.NGramEncoder(1000, n=3, seed=0).encode(TEXTS).words)


@pytest.mark.parametrize("make", [
    lambda: (hdc.RecordEncoder(300, n_features=5, levels=8, seed=1), np.random.default_rng(0).random((97, 5))),
    lambda: (hdc.RandomProjection(5, 300, seed=2), np.random.default_rng(0).standard_normal((97, 5))),
    lambda: (hdc.LevelEncoder(300, levels=10, seed=3), np.random.default_rng(0).random(97)),
    lambda: (hdc.ItemMemory(300, 10, seed=4), np.random.default_rng(0).integers(0, 10, 97)),
    lambda: (hdc.NGramEncoder(300, n=2, seed=5), np.random.default_rng(0).integers(0, 50, (97, 6))),
])
def test_encoders_on_arrays_match_in_process(make):
    enc, data = make()
    chunks = (30,) + data.shape[1:]
    got = enc.encode(da.from_array(data, chunks=chunks))
    assert got.chunks[0] == (30, 30, 30, 7)
    np.testing.assert_array_equal(got.compute(), enc.encode(data).words)


def test_encoder_input_errors():
    with pytest.raises(ValueError, match=r"shape \(n, features\) for RecordEncoder"):
        hdc.RecordEncoder(64, n_features=3).encode(da.zeros(10, chunks=5))
    with pytest.raises(ValueError, match="grow=True"):
        hdc.ItemMemory(64, 3, grow=True).encode(db.from_sequence([0, 1]))
    bad = hdc.RecordEncoder(64, n_features=2).encode(da.from_array(np.array([[0.5, 2.0]]), chunks=1))
    with pytest.raises(ValueError, match="outside"):  # the encoder's own check, raised at compute
        bad.compute()


@pytest.mark.parametrize("labels_as", ["array", "numpy", "bag"])
def test_fit_on_collections_equals_in_process_fit(labels_as):
    rng = np.random.default_rng(1)
    X = rng.random((403, 6))
    y = np.array(["a", "b", "c"])[(X[:, 0] * 3).astype(int)]
    enc = hdc.RecordEncoder(2000, n_features=6, levels=12, seed=0)
    words = enc.encode(da.from_array(X, chunks=50))
    ys = {"array": da.from_array(y, chunks=50), "numpy": y,
          "bag": db.from_sequence(y.tolist(), partition_size=50)}[labels_as]
    if labels_as == "bag":
        words = enc.encode(da.from_array(X, chunks=50)).rechunk(((50,) * 8 + (3,), -1))
    clf = hdc.CentroidClassifier(2000, epochs=0, seed=3).fit(words, ys)
    ref = hdc.CentroidClassifier(2000, epochs=0, seed=3).fit(enc.encode(X), y)
    assert clf.classes_.tolist() == ref.classes_.tolist()
    np.testing.assert_array_equal(clf.counts_[0], ref.counts_[0])
    np.testing.assert_array_equal(clf.counts_[1], ref.counts_[1])
    np.testing.assert_array_equal(clf.prototypes_.words, ref.prototypes_.words)
    pred = clf.predict(words)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.predict(enc.encode(X)))


def test_fit_on_a_bag_of_texts_and_partial_fit():
    labels = [t[0] for t in TEXTS]
    bag = db.from_sequence(TEXTS, npartitions=3)
    enc = hdc.NGramEncoder(1024, n=3, seed=1)
    clf = hdc.CentroidClassifier(1024, epochs=0).fit(enc.encode(bag), db.from_sequence(labels, npartitions=3))
    ref = hdc.CentroidClassifier(1024, epochs=0).fit(enc.encode(TEXTS), np.array(labels))
    np.testing.assert_array_equal(clf.prototypes_.words, ref.prototypes_.words)
    part = hdc.CentroidClassifier(1024, epochs=0)
    for i in range(2):  # two Dask partial fits then one in process: counts add up
        part.partial_fit(enc.encode(db.from_sequence(TEXTS[i::3], npartitions=2)),
                         db.from_sequence(labels[i::3], npartitions=2), classes=["q"])
    part.partial_fit(enc.encode(TEXTS[2::3]), np.array(labels[2::3]))
    whole = hdc.CentroidClassifier(1024, epochs=0).partial_fit(enc.encode(TEXTS), np.array(labels), classes=["q"])
    np.testing.assert_array_equal(part.counts_[0], whole.counts_[0])
    assert part.classes_.tolist() == whole.classes_.tolist()


def test_fit_errors():
    X = da.from_array(hdc.random(20, 128, seed=0).words, chunks=(10, 2))
    with pytest.raises(ValueError, match="epochs must be 0.*got epochs=2.*retraining is sequential"):
        hdc.CentroidClassifier(128, epochs=2).fit(X, np.zeros(20))
    # the default, epochs=None, is 20 retraining epochs for dense codes in process: refused too,
    # not silently fitted without them (that would not be the in-process model)
    with pytest.raises(ValueError, match="got epochs=None, which means 20 retraining epochs"):
        hdc.CentroidClassifier(128).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match=r"shape \(n, 2\) uint64 for dim 128"):
        hdc.CentroidClassifier(128, epochs=0).fit(X[:, :1], np.zeros(20))
    with pytest.raises(ValueError, match=r"shape \(20,\) \(one label per row of X\)"):
        hdc.CentroidClassifier(128, epochs=0).fit(X, np.zeros(19))
    with pytest.raises(ValueError, match="partitioned like X"):
        hdc.CentroidClassifier(128, epochs=0).fit(X, db.from_sequence(range(20), npartitions=3))
    with pytest.raises(ValueError, match="partition 1: X has 10 rows, y has 9"):
        hdc.CentroidClassifier(128, epochs=0).fit(X, db.from_sequence(list(range(19)), partition_size=10))
    with pytest.raises(ValueError, match="empty"):
        hdc.CentroidClassifier(128, epochs=0).fit(X[:0], np.zeros(0))
    padded = da.from_array(np.full((4, 2), np.uint64(2**63)), chunks=2)
    with pytest.raises(ValueError, match="padding"):
        hdc.CentroidClassifier(100, epochs=0).fit(padded, np.zeros(4))


def test_fit_on_a_distributed_client_with_progress(capsys):
    import distributed

    from hdc.distributed import fit

    X = hdc.random(300, 256, seed=5)
    y = np.arange(300) % 4
    words = da.from_array(X.words, chunks=(64, -1))
    ref = hdc.CentroidClassifier(256, epochs=0).fit(X, y)
    got = fit(hdc.CentroidClassifier(256, epochs=0), words, da.from_array(y, chunks=64), progress=True)
    np.testing.assert_array_equal(got.counts_[0], ref.counts_[0])
    assert "100%" in capsys.readouterr().out                      # dask.diagnostics.ProgressBar
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"):
        got = hdc.CentroidClassifier(256, epochs=0).fit(words, y)             # runs on the default client
        np.testing.assert_array_equal(got.prototypes_.words, ref.prototypes_.words)


@pytest.mark.parametrize("make", [
    lambda: (hdc.RecordEncoder(4096, n_features=5, levels=8, seed=1, block_size=16),
             np.random.default_rng(0).random((97, 5))),
    lambda: (hdc.LevelEncoder(3000, levels=10, seed=3, block_size=300), np.random.default_rng(0).random(97)),
    lambda: (hdc.ItemMemory(1000, 10, seed=4, block_size=10), np.random.default_rng(0).integers(0, 10, 97)),
    lambda: (hdc.NGramEncoder(65536, n=2, seed=5, block_size=1024), np.random.default_rng(0).integers(0, 50, (97, 6))),
])
def test_sparse_encoders_on_arrays_match_in_process(make):
    enc, data = make()
    got = enc.encode(da.from_array(data, chunks=(30,) + data.shape[1:]))
    want = enc.encode(data)
    assert got.chunks[0] == (30, 30, 30, 7) and got.shape == (97, want.blocks)
    assert got.dtype == want.indices.dtype
    computed = got.compute()
    np.testing.assert_array_equal(computed, want.indices)
    assert np.all(hdc.SparseHV(computed, enc.block_size) == want)


def test_sparse_ngram_encoder_on_a_bag():
    enc = hdc.NGramEncoder(10_000, n=3, seed=0, block_size=100)
    got = enc.encode(db.from_sequence(TEXTS, npartitions=4))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got.compute(), enc.encode(TEXTS).indices)


@pytest.mark.parametrize("labels_as", ["array", "bag"])
def test_sparse_fit_on_collections_equals_in_process_fit(labels_as):
    """Block codes: per-class BlockAccumulator counts summed over partitions give the in-process model."""
    rng = np.random.default_rng(5)
    X = rng.random((301, 3))
    y = (X[:, 0] * 4).astype(int)
    enc = hdc.RecordEncoder(4096, n_features=3, levels=10, seed=0, block_size=16)
    codes = enc.encode(da.from_array(X, chunks=40))
    ys = da.from_array(y, chunks=40) if labels_as == "array" else db.from_sequence(y.tolist(), partition_size=40)
    clf = hdc.CentroidClassifier(4096, block_size=16, seed=2).fit(codes, ys)
    ref = hdc.CentroidClassifier(4096, block_size=16, seed=2).fit(enc.encode(X), y)
    assert clf.classes_.tolist() == ref.classes_.tolist() == [0, 1, 2, 3]
    for got, want in zip(clf.counts_, ref.counts_):   # (counts, n per class)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clf.prototypes_.indices, ref.prototypes_.indices)
    pred = clf.predict(codes)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.predict(enc.encode(X)))
    part = hdc.CentroidClassifier(4096, block_size=16, seed=2)
    part.partial_fit(codes[:120], y[:120], classes=[9])     # Dask, then in process: counts add up
    part.partial_fit(enc.encode(X[120:]), y[120:])
    whole = hdc.CentroidClassifier(4096, block_size=16, seed=2).partial_fit(enc.encode(X), y, classes=[9])
    for got, want in zip(part.counts_, whole.counts_):
        np.testing.assert_array_equal(got, want)


def test_sparse_fit_errors():
    codes = da.from_array(hdc.random_sparse(20, 256, 16, seed=0).indices, chunks=(10, 256))
    with pytest.raises(ValueError, match=r"block indices \(block_size 16\) of shape \(n, 256\) uint8"):
        hdc.CentroidClassifier(4096, block_size=16).fit(codes[:, :100], np.zeros(20))
    with pytest.raises(ValueError, match=r"shape \(n, 64\) uint64"):     # dense classifier, sparse codes
        hdc.CentroidClassifier(4096, epochs=0).fit(codes, np.zeros(20))
    bad = da.from_array(np.full((4, 256), 16, np.uint8), chunks=2)     # index == block_size: refused
    with pytest.raises(ValueError, match="block_size"):
        hdc.CentroidClassifier(4096, block_size=16).fit(bad, np.zeros(4))


def test_merging_counts_checks_them():
    acc, block = hdc.Accumulator(10), hdc.BlockAccumulator(2, 4)
    with pytest.raises(ValueError, match=r"int64 \(10,\)"):
        acc._add_counts(np.ones(9, np.int64), 1)
    with pytest.raises(ValueError, match=r"in \[0, n\]"):
        acc._add_counts(np.full(10, 3, np.int64), 2)
    with pytest.raises(ValueError, match="each block summing to n=2"):
        block._add_counts(np.array([[1, 1, 0, 0], [1, 0, 0, 0]], np.int64), 2)
    block._add_counts(np.array([[1, 1, 0, 0], [2, 0, 0, 0]], np.int64), 2)
    assert block.n == 2 and block.counts.tolist() == [[1, 1, 0, 0], [2, 0, 0, 0]]
