"""Regression tests for the reliability report (issue 10): one test per row, each failing before its fix."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import hdc
from hdc.attention import kwta_attention, kwta_select


# ---- row 2: indexing only touches batch axes --------------------------------------------------
_E, _ALL = Ellipsis, slice(None)


@pytest.mark.parametrize("key,bits_key", [
    ((_E, 1), (_ALL, _ALL, 1)), ((_E, None), (_ALL, _ALL, _ALL, None)), ((_E, slice(1, None)), (_ALL, _ALL, slice(1, None))),
    ((0, _E), (0,)), ((_E, 1, 2), (_ALL, 1, 2)), ((_ALL, None, 1), (_ALL, None, 1)), ((None, _E, 0), (None, _ALL, _ALL, 0)),
    (([1, 0],), ([1, 0],)), ((np.array([True, False]), _E, 3), (np.array([True, False]), _ALL, 3))])
def test_index_with_ellipsis_matches_numpy_on_batch_axes(key, bits_key, kernel_path):
    x = hdc.random((2, 3, 4), 70, seed=0)
    got = x[key]
    assert got.dim == 70 and got.words.shape[-1] == 2
    np.testing.assert_array_equal(got.to_bool(), x.to_bool()[bits_key + (_ALL,)])
    y = hdc.bind(got, got)   # used to read out of bounds on numba when the words were short
    assert not y.to_bool().any()


def test_two_d_mask_on_one_d_batch_is_an_index_error():
    with pytest.raises(IndexError, match="too many indices"):
        hdc.random(4, 70, seed=0)[np.ones((2, 2), bool)]


def test_two_d_mask_on_two_d_batch():
    x = hdc.random((2, 3), 70, seed=0)
    mask = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(x[mask].to_bool(), x.to_bool()[mask])


# ---- row 3: level index overflow --------------------------------------------------------------
def test_record_encoder_extreme_range_does_not_overflow(kernel_path):
    enc = hdc.RecordEncoder(64, 1, levels=4, low=-1e308, high=1e308, seed=0)
    np.testing.assert_array_equal(enc.index([[1e308], [-1e308], [0.0]]).ravel(), [3, 0, 2])
    assert enc.encode([[1e308]]).shape == (1,)


@pytest.mark.parametrize("cls,levels,want", [(hdc.LevelEncoder, 5, [0, 2, 4]),
                                              (hdc.CircularEncoder, 4, [0, 2, 0])])
def test_scalar_encoders_extreme_range(cls, levels, want):
    enc = cls(64, levels, low=-1e308, high=1e308, seed=0)
    np.testing.assert_array_equal(enc.index([-1e308, 0.0, 1e308]), want)


def test_record_kernel_refuses_out_of_range_level():
    from hdc._kernels.encode import numba as ek   # the C backend's encoders run these kernels too

    enc = hdc.RecordEncoder(64, 1, levels=4, seed=0)
    with pytest.raises(IndexError, match="codebook"):
        ek.record_majority(np.array([[-2 ** 31]], np.int32), enc.ids.words, enc.level_encoder.codebook.words,
                           enc.tie.words, np.empty((1, 1), np.uint64))


# ---- row 6: weighted sums never wrap --------------------------------------------------------
@pytest.mark.parametrize("weights", [[1, 2 ** 62, 2 ** 62], [1e308, 1e308, 0.5], np.array([2 ** 63] * 3, np.uint64)])
def test_bundle_refuses_weight_totals_that_overflow(weights):
    with pytest.raises(ValueError, match="too large"):
        hdc.bundle(hdc.random(3, 100, seed=0), weights=weights)


def test_accumulator_refuses_running_total_that_overflows():
    acc = hdc.Accumulator(100)
    x = hdc.random(1, 100, seed=0)[0]
    acc.add(x, weights=2 ** 61)
    with pytest.raises(ValueError, match="2\\*\\*62"):
        acc.add(x, weights=2 ** 61)
    assert acc.n == 2 ** 61 and bool(acc.majority() == x)


def test_large_exact_weights_still_bundle_exactly():
    x = hdc.random(3, 100, seed=0)
    got = hdc.bundle(x, weights=[2 ** 60, 1, 2 ** 60 + 2])
    assert bool(got == x[2])


# ---- row 7, 8, 10, 11: arguments ---------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [-1, 0])
def test_random_projection_batch_size_checked(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        hdc.RandomProjection(4, 64, seed=0).encode(np.ones((3, 4)), batch_size=batch_size)


def test_sdm_expected_bit_error_at_usual_dimensions():
    sdm = hdc.SparseDistributedMemory(10_000, 200, 4_900, seed=0)
    p = sdm.activation_probability()
    assert 0.02 < p < 0.03   # P(Bin(10000, 1/2) <= 4900) = 0.0228
    assert 0.0 <= sdm.expected_bit_error(10) < 0.5


@pytest.mark.parametrize("call,exc,match", [
    (lambda: hdc.BinaryHV.from_bytes(5, 8), TypeError, "bytes"),
    (lambda: hdc.BinaryHV.from_bytes(10 ** 13, 8), TypeError, "bytes"),
    (lambda: hdc.BinaryHV.from_bytes(b"", 0), ValueError, "dim"),
    (lambda: hdc.BinaryHV.from_bytes(b"\x00" * 4, 8, shape=(3,)), ValueError, "shape"),
    (lambda: hdc.set_num_threads(2 ** 31), ValueError, "<= 1024"),
    (lambda: hdc.set_num_threads(1.5), TypeError, "int"),
])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_thread_count_accepts_numpy_ints_and_stays_usable():
    before = hdc.get_num_threads()
    try:
        hdc.set_num_threads(np.int64(2))
        assert hdc.get_num_threads() == 2
        with pytest.raises(ValueError):
            hdc.set_num_threads(2 ** 31)
        assert hdc.hamming(hdc.random(2, 64, seed=0), hdc.random(2, 64, seed=1)).shape == (2,)
    finally:
        hdc.set_num_threads(before)


# ---- row 9: allocations sized by what exists --------------------------------------------------
def test_kwta_topk_far_above_key_count_allocates_by_keys(kernel_path):
    k = hdc.random(4, 64, seed=0)
    scores, idx = kwta_select(k, k, 50_000_000)
    assert idx.shape == (4, 4) and scores.shape == (4, 4)
    out, idx = kwta_attention(k, k, np.ones((4, 3), np.float32), 50_000_000, return_indices=True)
    assert idx.shape == (4, 4) and np.allclose(out, 1)
    np.testing.assert_array_equal(idx[0], [0, -1, -1, -1])


def test_kwta_zero_queries(kernel_path):
    q, k = hdc.random(0, 64, seed=0), hdc.random(3, 64, seed=1)
    assert kwta_select(q, k, 2, causal=False)[1].shape == (0, 2)
    assert kwta_attention(q, k, np.ones((3, 4)), 2, causal=False).shape == (0, 4)


def _packed_model():
    from hdc.nn.packed import PackedModel

    cfg = dict(vocab_size=5, d_model=8, n_layers=0, n_heads=2, code_bits=64, topk=2, attention="kwta",
               max_len=4, d_ff=16, temperature=None, head="linear", n_voters=8, voter_temperature=None,
               token_shift=False)
    rng = np.random.default_rng(0)
    w = {"tok.weight": rng.standard_normal((5, 8)), "pos.weight": rng.standard_normal((4, 8)),
         "ln_f.weight": np.ones(8), "ln_f.bias": np.zeros(8), "head.weight": rng.standard_normal((5, 8)),
         "head.bias": np.zeros(5)}
    return PackedModel(cfg, w)


def _write_npz(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, array in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            z.writestr(name + ".npy", buf.getvalue())


def test_packed_model_config_beyond_limits_refused_fast(tmp_path):
    from hdc.nn.packed import FORMAT, PackedModel

    model = _packed_model()
    for key, value in (("n_layers", 2_000_000), ("vocab_size", 10 ** 12), ("d_model", -1), ("topk", 1.5)):
        cfg = dict(model.config, **{key: value})
        members = {"__format__": np.frombuffer(FORMAT.encode(), np.uint8),
                   "__config__": np.frombuffer(json.dumps(cfg).encode(), np.uint8), **model.arrays}
        _write_npz(tmp_path / "m.npz", members)
        with pytest.raises(ValueError, match=key):
            PackedModel.load(tmp_path / "m.npz")


def test_packed_model_more_layers_than_weights_refused(tmp_path):
    from hdc.nn.packed import FORMAT, PackedModel

    model = _packed_model()
    cfg = dict(model.config, n_layers=1000)
    members = {"__format__": np.frombuffer(FORMAT.encode(), np.uint8),
               "__config__": np.frombuffer(json.dumps(cfg).encode(), np.uint8), **model.arrays}
    _write_npz(tmp_path / "m.npz", members)
    with pytest.raises(ValueError, match="n_layers=1000"):
        PackedModel.load(tmp_path / "m.npz")


def test_packed_model_deflate_bomb_refused_before_inflating(tmp_path):
    from hdc.nn.packed import FORMAT, PackedModel

    model = _packed_model()
    members = {"__format__": np.frombuffer(FORMAT.encode(), np.uint8),
               "__config__": np.frombuffer(json.dumps(model.config).encode(), np.uint8), **model.arrays,
               "bomb": np.zeros(1 << 27, np.uint8)}   # 128 MiB of zeros deflate to ~130 KiB
    _write_npz(tmp_path / "m.npz", members, zipfile.ZIP_DEFLATED)
    assert os.path.getsize(tmp_path / "m.npz") < 1 << 20
    with pytest.raises(ValueError, match="bomb"):
        PackedModel.load(tmp_path / "m.npz")


def test_packed_model_round_trip(tmp_path):
    from hdc.nn.packed import PackedModel

    model = _packed_model()
    model.save(tmp_path / "m.npz")
    again = PackedModel.load(tmp_path / "m.npz")
    tokens = np.array([[0, 1, 2, 3]])
    np.testing.assert_array_equal(again(tokens), model(tokens))


# ---- row 12: clear errors -----------------------------------------------------------------------
def test_item_memory_uint64_symbol_is_not_a_phantom():
    mem = hdc.ItemMemory(64, 3, grow=True, seed=0)
    mem.encode(np.array([2 ** 64 - 1], np.uint64))
    assert mem.symbols == [0, 1, 2, 2 ** 64 - 1] and -1 not in mem


def test_nan_label_in_fit():
    x = hdc.random(4, 64, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        hdc.CentroidClassifier(64).fit(x, [0, 1, np.nan, 1])


def test_memory_save_and_load_bytes_path(tmp_path):
    mem = hdc.AssociativeMemory(64)
    mem.add(hdc.random(2, 64, seed=0))
    path = os.fsencode(tmp_path / "m.hdc")
    mem.save(path)
    assert len(hdc.AssociativeMemory.load(path)) == 2
    with pytest.raises(TypeError, match="path"):
        mem.save(3.5)


def test_bind_zero_batch_with_one_batch(kernel_path):
    assert hdc.bind(hdc.random(0, 64), hdc.random(1, 64)).shape == (0,)
    assert hdc.hamming(hdc.random(0, 64), hdc.random(1, 64)).shape == (0,)


# ---- row 13: shared state is read-only; files that change under us ------------------------------
def test_words_and_codebooks_are_read_only():
    x = hdc.random(2, 70, seed=0)
    for words in (x.words, hdc.ItemMemory(70, 3, seed=0).vectors.words,
                  hdc.LevelEncoder(70, 4, seed=0).codebook.words):
        with pytest.raises(ValueError, match="read-only"):
            words[..., -1] = ~np.uint64(0)
    assert float(hdc.similarity(x[0], x[0])) == 1.0


@pytest.mark.parametrize("fn,args", [("get_bit", (128,)), ("get_bit", (-1,)), ("set_bit", (128, 1))])
def test_primitives_bit_index_checked(fn, args):
    from hdc import primitives

    with pytest.raises(IndexError, match="outside the row"):
        getattr(primitives, fn)(np.zeros(2, np.uint64), *args)


def test_mmap_memory_refuses_a_truncated_file(tmp_path):
    path = tmp_path / "m.hdc"
    mem = hdc.AssociativeMemory(4096)
    mem.add(hdc.random(64, 4096, seed=0))
    mem.save(path)
    mapped = hdc.AssociativeMemory.load(path, mmap=True, verify=False)
    os.truncate(path, 4096)   # another process shortens the file: reading the pages would SIGBUS
    with pytest.raises(ValueError, match="shrank"):
        mapped.search(mem.vectors[0])


def test_load_of_a_fifo_does_not_block(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with pytest.raises(ValueError, match="not a regular file"):
        hdc.AssociativeMemory.load(path)


def test_next_label_near_int64_max(tmp_path):
    mem = hdc.AssociativeMemory(64)
    mem.add(hdc.random(1, 64, seed=0)[0], labels=5)
    mem._next_label = 2 ** 63 - 2
    mem.add(hdc.random(1, 64, seed=1)[0])
    assert mem.labels.tolist() == [5, 2 ** 63 - 2]
    with pytest.raises(ValueError, match="int64"):
        mem.add(hdc.random(2, 64, seed=2))
    assert len(mem) == 2


def test_memory_pickles():
    mem = hdc.AssociativeMemory(100)
    mem.add(hdc.random(5, 100, seed=0), labels=list("abcde"))
    clone = pickle.loads(pickle.dumps(mem))
    assert clone.labels.tolist() == list("abcde") and clone.search(mem.vectors[2])[1][0] == "c"
    clone.add(hdc.random(1, 100, seed=1)[0])
    assert len(clone) == 6 and len(mem) == 5


def test_memory_within_gives_labels():
    mem = hdc.AssociativeMemory(256)
    x = hdc.random(10, 256, seed=0)
    mem.add(x, labels=[f"v{i}" for i in range(10)])
    d, labels = mem.within(x[[2, 5]], radius=0)
    assert [list(ls) for ls in labels] == [["v2"], ["v5"]] and [list(v) for v in d] == [[0], [0]]
    d, labels = mem.within(x[3], radius=256)
    assert labels[0] == "v3" and len(labels) == 10
