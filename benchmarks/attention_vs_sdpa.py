"""Packed Hamming k-WTA attention vs torch float32 scaled_dot_product_attention, same threads.

    python benchmarks/attention_vs_sdpa.py                       # issue 5's case: L=4096, 4 heads,
                                                                 # 256-bit codes, topk=32, dv=64
    python benchmarks/attention_vs_sdpa.py --L 1024 2048 4096 --json out.json
    python benchmarks/attention_vs_sdpa.py --isas all             # the C kernel on every SIMD path

Runs are interleaved (one repeat of every variant per round) so background load hits them
alike; medians over rounds are reported, with ratios to SDPA taken in the same run, both of
wall-clock time and of process CPU time (all threads; less sensitive to other processes
competing for the cores). Each timed call follows ``--settle`` seconds of idle: torch's OpenMP
team and the Numba / hdc pools spin-wait after a call, and without the pause the previous
variant's spinning threads take cores from the next (this cost the C kernel 10-30% at L=4096).
Variants: ``kwta_attention`` on each backend (C: SIMD scan with a running bound; Numba: fused
kernel; NumPy: the reference, only up to L = 2048), the majority aggregate (C), and torch SDPA
(causal, head dim 64) as the float baseline.
"""
import argparse
import json
import statistics
import time

import numpy as np


def _variants(L, heads, bits, topk, dv, threads, isas=()):
    import torch

    import hdc
    from hdc import attention

    torch.set_num_threads(threads)
    hdc.set_num_threads(threads)
    q = hdc.random((heads, L), bits, seed=1)
    k = hdc.random((heads, L), bits, seed=2)
    v = np.random.default_rng(0).standard_normal((heads, L, dv)).astype(np.float32)
    vb = hdc.random((heads, L), bits, seed=3)
    tq, tk, tv = (torch.randn(1, heads, L, 64) for _ in range(3))

    def on(name, values, aggregate="softmax", isa=None):
        def f():
            with hdc.use_backend(name):
                if isa is not None:
                    hdc.set_isa(isa)
                attention.kwta_attention(q, k, values, topk, causal=True, aggregate=aggregate)
        return f

    def sdpa():
        with torch.no_grad():
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

    out = {f"kwta ({name})": on(name, v) for name in hdc.backends()
           if name != "numpy" or L <= 2048}      # the NumPy reference is slow at 4096
    if "c" in hdc.backends():
        out["kwta majority (c)"] = on("c", vb, "majority", hdc.get_isa() if isas else None)
        for isa in isas:
            out[f"kwta (c, {isa})"] = on("c", v, isa=isa)
        if isas:  # the plain variants run on the best path
            best = hdc.available_isas()[-1]
            out["kwta (c)"] = on("c", v, isa=best)
            out["kwta majority (c)"] = on("c", vb, "majority", best)
    out["torch sdpa float32"] = sdpa
    return out


def measure(L, heads=4, bits=256, topk=32, dv=64, threads=2, rounds=7, settle=0.2, isas=()):
    """Interleaved medians of every variant at sequence length L (``isas``: extra C variants, one
    per SIMD path)."""
    variants = _variants(L, heads, bits, topk, dv, threads, isas)
    for f in variants.values():        # warm up (compiles the Numba kernel)
        f()
    times = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for _ in range(rounds):
        for name, f in variants.items():
            # let the previous variant's idle threads (torch's OpenMP team, the Numba and hdc
            # pools spin-wait after a call) park, so they do not compete with this one
            time.sleep(settle)
            c, t = time.process_time(), time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    med_cpu = {name: statistics.median(ts) * 1e3 for name, ts in cpu.items()}
    base, base_cpu = med["torch sdpa float32"], med_cpu["torch sdpa float32"]
    return {"L": L, "heads": heads, "code_bits": bits, "topk": topk, "dv": dv, "threads": threads,
            "rounds": rounds, "settle_s": settle, "median_ms": med, "speedup_vs_sdpa": {n: base / m for n, m in med.items()},
            "median_cpu_ms": med_cpu, "cpu_ratio_vs_sdpa": {n: base_cpu / m for n, m in med_cpu.items()},
            "key_cache_bytes_per_token": {"kwta packed codes": heads * bits // 8,
                                          "float32 keys (head dim 64)": heads * 64 * 4}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, nargs="+", default=[4096])
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--bits", type=int, default=256)
    ap.add_argument("--topk", type=int, default=32)
    ap.add_argument("--dv", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds of idle before each timed call (default 0.2)")
    ap.add_argument("--isas", default="", metavar="LIST",
                    help="also time the C kernel on these SIMD paths (comma-separated, or 'all')")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    import hdc
    isas = hdc.available_isas() if args.isas == "all" else tuple(filter(None, args.isas.split(",")))
    for isa in isas:
        if isa not in hdc.available_isas():
            ap.error(f"--isas: {isa!r} is not available here ({', '.join(hdc.available_isas())})")
    results = []
    for L in args.L:
        r = measure(L, args.heads, args.bits, args.topk, args.dv, args.threads, args.rounds, args.settle,
                    isas)
        results.append(r)
        print(f"\nL={L}, {args.heads} heads, {args.bits}-bit codes, topk={args.topk}, dv={args.dv}, "
              f"{args.threads} threads, median of {args.rounds} interleaved rounds")
        print("| variant | median wall ms | speed-up vs SDPA | median CPU ms | CPU-time ratio vs SDPA |")
        print("|---|---:|---:|---:|---:|")
        for name, ms in r["median_ms"].items():
            print(f"| {name} | {ms:.1f} | {r['speedup_vs_sdpa'][name]:.2f}x | {r['median_cpu_ms'][name]:.1f} | "
                  f"{r['cpu_ratio_vs_sdpa'][name]:.2f}x |")
        kc = r["key_cache_bytes_per_token"]
        print(f"key cache per token: {kc['kwta packed codes']} B packed vs "
              f"{kc['float32 keys (head dim 64)']} B float32 "
              f"({kc['float32 keys (head dim 64)'] / kc['kwta packed codes']:.0f}x smaller)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
