"""The C k-WTA attention kernel alone, per SIMD path: select / softmax / majority, CPU ms.

    PYTHONPATH=. python benchmarks/kwta_kernel_paths.py [threads] [isa,isa,...]

L = 4,096 causal, 4 heads, 256-bit codes, top-32, dv 64 (the case of attention_vs_sdpa.py),
calling the kernels of hdc._kernels.kwta.c directly with preallocated outputs; 7 interleaved
rounds, medians of wall and process CPU time. For an A/B of two builds, run it alternately with
PYTHONPATH pointing at each checkout (each built with `python setup.py build_ext --inplace`).
"""
import statistics
import sys
import time

import numpy as np

import hdc
from hdc._kernels.kwta import c as kc

H, L, BITS, K, DV = 4, 4096, 256, 32, 64


def main(argv):
    threads = int(argv[0]) if argv else 1
    isas = argv[1].split(",") if len(argv) > 1 else hdc.available_isas()
    hdc.set_num_threads(threads)
    w = BITS // 64
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2 ** 63, (H, L, w), dtype=np.uint64)
    keys = rng.integers(0, 2 ** 63, (H, L, w), dtype=np.uint64)
    v = rng.standard_normal((H, L, DV)).astype(np.float32)
    vb = rng.integers(0, 2 ** 63, (H, L, 4), dtype=np.uint64)
    n_visible = np.arange(1, L + 1, dtype=np.int64)
    idx, dist = np.empty((H, L, K), np.int64), np.empty((H, L, K), np.int32)
    out, out_bits = np.empty((H, L, DV), np.float32), np.empty((H, L, 4), np.uint64)
    cases = {
        "select": lambda: kc.kwta_select(q, keys, K, n_visible, dist, idx),
        "softmax": lambda: kc.kwta_softmax(q, keys, K, n_visible, v, 1.0, out, idx),
        "majority": lambda: kc.kwta_majority(q, keys, K, n_visible, vb, out_bits, idx),
    }
    times = {}
    for _ in range(7):
        for isa in isas:
            hdc.set_isa(isa)
            for name, call in cases.items():
                time.sleep(0.05)
                t0, c0 = time.perf_counter(), time.process_time()
                call()
                times.setdefault((isa, name), []).append(
                    ((time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3))
    for (isa, name), xs in times.items():
        print(f"{isa:14s} {name:9s} wall {statistics.median(x[0] for x in xs):7.2f} ms  "
              f"cpu {statistics.median(x[1] for x in xs):7.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
