"""BinaryHV: layout, conversions, indexing, operators and constructor checks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hdc
from hdc import BinaryHV


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 300), shape=st.lists(st.integers(0, 3), max_size=2).map(tuple), seed=st.integers(0, 99))
def test_layout_is_little_endian_packbits(dim, shape, seed):
    x = np.random.default_rng(seed).integers(0, 2, size=shape + (dim,)).astype(bool)
    hv = BinaryHV.from_bool(x)
    assert hv.words.shape == shape + ((dim + 63) // 64,) and hv.words.dtype == np.uint64
    np.testing.assert_array_equal(hv.to_bool(), x)
    packed = np.packbits(x, axis=-1, bitorder="little")
    np.testing.assert_array_equal(hv.to_packed(), packed)
    padded = np.zeros(shape + (hv.n_words * 8,), np.uint8)
    padded[..., : packed.shape[-1]] = packed
    np.testing.assert_array_equal(hv.words, padded.view("<u8"))
    assert BinaryHV.from_packed(packed, dim) == hv if shape == () else (BinaryHV.from_packed(packed, dim) == hv).all()


def test_element_i_is_bit_i_mod_64_of_word_i_div_64():
    x = np.zeros(130, bool)
    x[[0, 63, 64, 129]] = True
    w = BinaryHV.from_bool(x).words
    assert w.tolist() == [1 | (1 << 63), 1, 2]


def test_bytes_roundtrip():
    hv = hdc.random(5, 77, seed=1)
    back = BinaryHV.from_bytes(hv.to_bytes(), 77)
    assert (back == hv).all()
    with pytest.raises(ValueError, match="multiple"):
        BinaryHV.from_bytes(b"\x00" * 7, 77)


def test_indexing_returns_contiguous_binaryhv():
    hv = hdc.random((4, 5), 100, seed=0)
    assert hv[1].shape == (5,)
    assert hv[1, 2].shape == ()
    sub = hv[:, ::2]
    assert sub.shape == (4, 3) and sub.words.flags.c_contiguous
    assert (hv[[0, 2]] == BinaryHV.stack([hv[0], hv[2]])).all()
    assert hv[np.array([True, False, True, False])].shape == (2, 5)
    assert hv[..., 0].shape == (4,)
    with pytest.raises(IndexError):
        hv[0, 0, 0]
    with pytest.raises(IndexError):
        hv[9]


def test_operators():
    a, b = hdc.random(2, 1000, seed=3)
    assert (a ^ b) == hdc.bind(a, b)
    inv = ~a
    assert int(hdc.hamming(a, inv)) == 1000
    assert not np.any(inv.words[-1] >> np.uint64(1000 % 64))
    assert a != b
    assert len(hdc.random(7, 10, seed=0)) == 7
    with pytest.raises(TypeError):
        len(a)
    assert "dim=1000" in repr(a)
    with pytest.raises(TypeError):
        hash(a)


def test_concatenate_and_stack():
    a, b = hdc.random(3, 70, seed=1), hdc.random(2, 70, seed=2)
    c = BinaryHV.concatenate([a, b])
    assert c.shape == (5,) and (c[3:] == b).all()
    with pytest.raises(ValueError, match="dim"):
        BinaryHV.concatenate([a, hdc.random(2, 71, seed=2)])
    with pytest.raises(ValueError, match="at least one"):
        BinaryHV.stack([])


def test_constructor_rejects_bad_words():
    with pytest.raises(TypeError, match="uint64"):
        BinaryHV(np.zeros((2, 2), np.int64), 100)
    with pytest.raises(TypeError, match="ndarray"):
        BinaryHV([[0, 0]], 100)
    with pytest.raises(ValueError, match="n_words"):
        BinaryHV(np.zeros((2, 3), np.uint64), 100)
    with pytest.raises(ValueError, match="contiguous"):
        BinaryHV(np.zeros((2, 4), np.uint64)[:, ::2], 100)
    misaligned = np.zeros(17, np.uint8)[1:].view(np.uint64).reshape(1, 2)
    with pytest.raises(ValueError, match="aligned"):
        BinaryHV(misaligned, 100)
    bad = np.zeros((1, 2), np.uint64)
    bad[0, 1] = np.uint64(1) << np.uint64(40)
    with pytest.raises(ValueError, match="padding"):
        BinaryHV(bad, 100)
    with pytest.raises(ValueError, match="dim"):
        BinaryHV(np.zeros((1, 1), np.uint64), 0)
    with pytest.raises(TypeError, match="dim"):
        BinaryHV(np.zeros((1, 1), np.uint64), 3.5)


@pytest.mark.parametrize("bad,exc", [
    (np.array([[np.nan, 1.0]]), ValueError), (np.array([[2, 0]]), ValueError), (np.zeros((2, 0)), ValueError),
    (np.array(["a", "b"]), TypeError), (np.array([[-1, 0]]), ValueError),
])
def test_from_bool_rejects(bad, exc):
    with pytest.raises(exc):
        BinaryHV.from_bool(bad)


def test_from_packed_rejects_bits_past_dim():
    with pytest.raises(ValueError, match="past dim"):
        BinaryHV.from_packed(np.array([0xFF], np.uint8), 5)
    with pytest.raises(TypeError, match="uint8"):
        BinaryHV.from_packed(np.array([1], np.int16), 5)
