"""pytest-benchmark: packed k-WTA attention vs torch float32 SDPA (issue 5's speed case).

    pytest benchmarks/test_attention_bench.py --benchmark-only --benchmark-group-by=group

Group ``attention-L{L}``: ``kwta_attention`` on each compiled backend (C, Numba) and torch
``scaled_dot_product_attention`` (causal, head dim 64) with the same threads. The
``benchmarks/attention_vs_sdpa.py`` script prints the same comparison as a table with ratios.
"""
import numpy as np
import pytest
import torch

import hdc
from hdc import attention

HEADS, BITS, TOPK, DV = 4, 256, 32, 64


@pytest.fixture(scope="module", params=[1024, 4096], ids=lambda L: f"L{L}")
def inputs(request):
    L = request.param
    torch.set_num_threads(2)
    hdc.set_num_threads(2)
    q = hdc.random((HEADS, L), BITS, seed=1)
    k = hdc.random((HEADS, L), BITS, seed=2)
    v = np.random.default_rng(0).standard_normal((HEADS, L, DV)).astype(np.float32)
    t = [torch.randn(1, HEADS, L, 64) for _ in range(3)]
    return L, q, k, v, t


@pytest.mark.parametrize("name", [b for b in hdc.backends() if b != "numpy"])
def test_kwta(benchmark, inputs, name):
    L, q, k, v, _ = inputs
    benchmark.group = f"attention-L{L}"
    with hdc.use_backend(name):
        out = benchmark(attention.kwta_attention, q, k, v, TOPK)
    assert out.shape == (HEADS, L, DV)


def test_torch_sdpa(benchmark, inputs):
    L, _, _, _, (tq, tk, tv) = inputs
    benchmark.group = f"attention-L{L}"
    with torch.no_grad():
        out = benchmark(torch.nn.functional.scaled_dot_product_attention, tq, tk, tv, is_causal=True)
    assert out.shape == (1, HEADS, L, 64)
