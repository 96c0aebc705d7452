"""Work run in multiprocessing children by tests/test_processes.py (importable by spawn children)."""
import numpy as np

import hdc


def every_backend(seed):
    """Results of the core ops, encoders and a memory search on every backend, as plain lists."""
    out = {}
    x, y = hdc.random(64, 1000, seed=seed), hdc.random(64, 1000, seed=seed + 1)
    texts = ["the quick brown fox", "jumps over the lazy dog", "hypervectors in a pool"] * 4
    for name in hdc.backends():
        with hdc.use_backend(name):
            mem = hdc.AssociativeMemory(1000)
            mem.add(y)
            out[name] = [hdc.bind(x, y).words.tolist(), hdc.cdist(x, y).tolist(),
                         hdc.bundle(x, seed=seed).words.tolist(), hdc.topk(x, y, 3)[1].tolist(),
                         hdc.NGramEncoder(1000, 3, seed=seed)(texts).words.tolist(),
                         hdc.RecordEncoder(1000, 8, seed=seed)(np.linspace(0, 1, 64).reshape(8, 8)).words.tolist(),
                         mem.search(x, k=2)[1].tolist()]
    return out
