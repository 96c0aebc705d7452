"""File-format fuzzing: every single-byte flip and every truncation of a saved AssociativeMemory and
of an exported packed model is refused with a ValueError or loads to something equal to the
original (0 silent differences)."""
import numpy as np
import pytest

import hdc
from hdc.nn.packed import PackedModel


def _flips_and_truncations(data, masks):
    for i in range(len(data)):
        for mask in masks:
            damaged = bytearray(data)
            damaged[i] ^= mask
            yield f"byte {i} ^ {mask:#04x}", bytes(damaged)
    for n in range(len(data)):
        yield f"truncated to {n} bytes", data[:n]


def _fuzz_file(tmp_path, original, load, equal, masks=(0x01, 0xFF)):
    path = tmp_path / "damaged"
    refused = same = 0
    for what, data in _flips_and_truncations(original, masks):
        path.write_bytes(data)
        try:
            loaded = load(path)
        except ValueError:
            refused += 1
            continue
        assert equal(loaded), f"{what}: loaded silently to something different"
        same += 1
    return refused, same


def _load_verified(path, mmap):
    mem = hdc.AssociativeMemory.load(path, mmap=mmap)
    mem.verify()  # an mmap load checks the payload checksums on first access: do it now
    return mem


def _memory_equal(mem):
    def equal(loaded):
        return (loaded.labels.tolist() == mem.labels.tolist() and loaded._next_label == mem._next_label
                and len(loaded) == len(mem) and bool((loaded.vectors == mem.vectors).all()))
    return equal


@pytest.mark.parametrize("labels", [None, ["cat", 7, "dög"]])
@pytest.mark.parametrize("mmap", [False, True])
def test_memory_file_every_flip_and_truncation(tmp_path, labels, mmap):
    mem = hdc.AssociativeMemory(100)
    mem.add(hdc.random(3, 100, seed=0), labels=labels)
    mem.save(tmp_path / "m.hdc")
    original = (tmp_path / "m.hdc").read_bytes()
    refused, same = _fuzz_file(tmp_path, original, lambda p: _load_verified(p, mmap),
                               _memory_equal(mem))
    assert refused + same == 3 * len(original)
    print(f"memory file ({len(original)} bytes, mmap={mmap}): {refused} refused, {same} loaded equal, 0 silent differences")


def _packed():
    cfg = dict(vocab_size=5, d_model=8, n_layers=0, n_heads=2, code_bits=64, topk=2, attention="kwta",
               max_len=4, d_ff=16, temperature=None, head="linear", n_voters=8, voter_temperature=None,
               token_shift=False)
    rng = np.random.default_rng(0)
    w = {"tok.weight": rng.standard_normal((5, 8)), "pos.weight": rng.standard_normal((4, 8)),
         "ln_f.weight": np.ones(8), "ln_f.bias": np.zeros(8), "head.weight": rng.standard_normal((5, 8)),
         "head.bias": np.zeros(5)}
    return PackedModel(cfg, w)


def test_packed_model_file_every_flip_and_truncation(tmp_path):
    model = _packed()
    model.save(tmp_path / "m.npz")
    original = (tmp_path / "m.npz").read_bytes()

    def equal(loaded):
        return (loaded.config == model.config and loaded.arrays.keys() == model.arrays.keys()
                and all(np.array_equal(loaded.arrays[k], v) for k, v in model.arrays.items()))

    refused, same = _fuzz_file(tmp_path, original, lambda p: PackedModel.load(p), equal, masks=(0xFF,))
    assert refused + same == 2 * len(original)
    print(f"packed model file ({len(original)} bytes): {refused} refused, {same} loaded equal, 0 silent differences")
