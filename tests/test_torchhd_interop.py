"""BinaryHV <-> torchhd BSC, and agreement with torchhd's own ops (the `torch` extra)."""
import numpy as np
import pytest
import torch
import torchhd

import hdc


@pytest.mark.parametrize("dim", [1, 63, 64, 65, 1000, 10_000])
def test_conversion_and_ops_match_torchhd(kernel_path, dim):
    t = torchhd.random(9, dim, "BSC", generator=torch.Generator().manual_seed(dim))
    x = hdc.BinaryHV.from_torchhd(t)
    np.testing.assert_array_equal(x.to_bool(), t.numpy().astype(bool))
    back = x.to_torchhd()
    assert isinstance(back, torchhd.BSCTensor) and torch.equal(back.bool(), t.bool())
    a, b = x[:4], x[4:8]
    np.testing.assert_array_equal(hdc.bind(a, b).to_bool(), torchhd.bind(t[:4], t[4:8]).numpy().astype(bool))
    for s in (1, 5, -7, dim + 3):
        np.testing.assert_array_equal(hdc.permute(a, s).to_bool(),
                                      torchhd.permute(t[:4], shifts=s).numpy().astype(bool))
    np.testing.assert_array_equal(hdc.bundle(x).to_bool(), torchhd.multiset(t).numpy().astype(bool))
    want = dim - torchhd.hamming_similarity(t[:4], t[4:8]).numpy()
    np.testing.assert_array_equal(hdc.cdist(a, b).astype(np.int64), want.astype(np.int64))


def test_from_torchhd_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        hdc.BinaryHV.from_torchhd(np.zeros((2, 3)))
