"""Packed Hamming k-WTA attention vs torch float32 scaled_dot_product_attention, same threads.

    python benchmarks/attention_vs_sdpa.py                       # issue 5's case: L=4096, 4 heads,
                                                                 # 256-bit codes, topk=32, dv=64
    python benchmarks/attention_vs_sdpa.py --L 1024 2048 4096 --json out.json
    python benchmarks/attention_vs_sdpa.py --long --plot docs/attention_long_context.png
                                                                 # issue 13: L = 1,024 .. 65,536,
                                                                 # sparse-code event-driven kernel
    python benchmarks/attention_vs_sdpa.py --replot a.json b.json --plot out.png   # plot saved runs
    python benchmarks/attention_vs_sdpa.py --isas all             # the C kernel on every SIMD path

Runs are interleaved (one repeat of every variant per round) so background load hits them
alike; medians over rounds are reported, with ratios to SDPA taken in the same run, both of
wall-clock time and of process CPU time (all threads; less sensitive to other processes
competing for the cores). Each timed call follows ``--settle`` seconds of idle: torch's OpenMP
team and the Numba / hdc pools spin-wait after a call, and without the pause the previous
variant's spinning threads take cores from the next (this cost the C kernel 10-30% at L=4096).
Variants: ``kwta_attention`` on each backend (C: SIMD scan with a running bound; Numba: fused
kernel; NumPy: the reference, only up to L = 2048), the majority aggregate (C), and torch SDPA
(causal, head dim 64) as the float baseline. ``--long`` (issue 13) keeps four variants, over
L = 1,024 .. 65,536 with fewer rounds as L grows: the event-driven sparse-code kernel (C) on
random sparse block codes of a fixed shape (``--blocks`` x ``--block-size``) and of a shape that
grows with L (``--blocks`` x ``L / --block-size-ratio``; ratio 0: not timed), the dense-code C
kernel and SDPA; it records the fraction of causal query-key pairs each sparse code touched, and
``--plot`` draws wall and CPU time against L on log-log axes with each variant's fitted slope.
A fixed code touches a constant fraction of the pairs, so its time is quadratic like SDPA's
(with a small constant); the growing code keeps about ``ratio`` keys per bucket and its time
grows about linearly.
"""
import argparse
import json
import statistics
import time

import numpy as np


def sparse_name(blocks, block_size=None, ratio=None):
    """The label of a ``--long`` sparse-code variant: a fixed shape, or ``block_size = L / ratio``."""
    if ratio:
        return f"kwta sparse {blocks} x L/{ratio}, grows with L (c)"
    return f"kwta sparse {blocks} x {block_size}, fixed (c)"


def _variants(L, heads, bits, topk, dv, threads, long=False, blocks=8, block_size=1024, touched=None,
              sparse_only=False, isas=(), block_size_ratio=0):
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

    if long:
        def sparse(size, name):
            sq = hdc.random_sparse((heads, L), blocks, size, seed=4)
            sk = hdc.random_sparse((heads, L), blocks, size, seed=5)

            def f():
                with hdc.use_backend("c"):
                    _, n = attention.kwta_attention(sq, sk, v, topk, causal=True, return_touched=True)
                touched[name] = n
            return f
        out = {}
        if block_size:
            out[sparse_name(blocks, block_size)] = sparse(block_size, sparse_name(blocks, block_size))
        if block_size_ratio:
            name = sparse_name(blocks, ratio=block_size_ratio)
            out[name] = sparse(max(1, L // block_size_ratio), name)
        if not sparse_only:
            out.update({"kwta dense codes (c)": on("c", v), "torch sdpa float32": sdpa})
        return out

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


def measure(L, heads=4, bits=256, topk=32, dv=64, threads=2, rounds=7, settle=0.2, long=False,
            blocks=8, block_size=1024, sparse_only=False, isas=(), block_size_ratio=0):
    """Interleaved medians of every variant at sequence length L (``isas``: extra C variants, one
    per SIMD path; ``long``: sparse codes ``blocks`` x ``block_size`` (0: none) and
    ``blocks`` x ``L // block_size_ratio`` (0: none))."""
    touched = {}
    variants = _variants(L, heads, bits, topk, dv, threads, long, blocks, block_size, touched,
                         sparse_only, isas, block_size_ratio)
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
    base = med.get("torch sdpa float32", float("nan"))
    base_cpu = med_cpu.get("torch sdpa float32", float("nan"))
    extra = {}
    if long:
        sizes = {sparse_name(blocks, block_size): block_size} if block_size else {}
        if block_size_ratio:
            sizes[sparse_name(blocks, ratio=block_size_ratio)] = max(1, L // block_size_ratio)
        extra = {"blocks": blocks, "sparse_block_size": sizes,
                 "pairs_touched_fraction": {n: touched[n] / (heads * L * (L + 1) // 2) for n in sizes},
                 "sparse_key_cache_bytes_per_token": {n: heads * blocks * (1 if b <= 256 else 2 if b <= 65536 else 4)
                                                      for n, b in sizes.items()}}
    return {**extra, "L": L, "heads": heads, "code_bits": bits, "topk": topk, "dv": dv, "threads": threads,
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
    ap.add_argument("--long", action="store_true",
                    help="issue 13: sparse-code event-driven kernel vs dense-code kernel vs SDPA, "
                         "L = 1,024 .. 65,536 unless --L is given")
    ap.add_argument("--blocks", type=int, default=8, help="--long: blocks per sparse code")
    ap.add_argument("--block-size", type=int, default=1024,
                    help="--long: elements per block of the fixed sparse code (0: not timed)")
    ap.add_argument("--block-size-ratio", type=int, metavar="R", default=32,
                    help="--long: also time a sparse code with block_size = L // R (each (block, index) "
                         "bucket then holds about R keys whatever L: constant work per query; 0: not "
                         "timed; default 32)")
    ap.add_argument("--sparse-only", action="store_true", help="--long: time the sparse kernels only")
    ap.add_argument("--plot", metavar="PNG", help="--long / --replot: log-log plot of time against L")
    ap.add_argument("--replot", nargs="+", metavar="JSON",
                    help="plot saved --long --json results (merged by L, later files win) instead of "
                         "measuring")
    ap.add_argument("--isas", default="", metavar="LIST",
                    help="also time the C kernel on these SIMD paths (comma-separated, or 'all')")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot PNG")
        results = merge([json.load(open(path)) for path in args.replot])
        plot(results, args.plot)
        for kind, fit in (("wall", slopes(results)), ("CPU", slopes(results, "median_cpu_ms"))):
            print(f"{kind} exponents: " + ", ".join(f"{n} {e:.2f}" for n, e in fit.items()))
        return 0
    if args.block_size < 0 or args.block_size_ratio < 0:
        ap.error("--block-size and --block-size-ratio must be >= 0")
    if args.long and not (args.block_size or args.block_size_ratio):
        ap.error("--long needs a sparse code: --block-size or --block-size-ratio above 0")
    import hdc
    isas = hdc.available_isas() if args.isas == "all" else tuple(filter(None, args.isas.split(",")))
    for isa in isas:
        if isa not in hdc.available_isas():
            ap.error(f"--isas: {isa!r} is not available here ({', '.join(hdc.available_isas())})")
    if args.long and args.L == [4096]:
        args.L = [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    results = []
    for L in args.L:
        # long contexts: SDPA takes seconds per call at L = 32,768 and beyond
        rounds = args.rounds if not args.long else max(1, min(args.rounds, int(2 * 16384 / L) + 1))
        if args.sparse_only:
            rounds = args.rounds
        r = measure(L, args.heads, args.bits, args.topk, args.dv, args.threads, rounds, args.settle,
                    args.long, args.blocks, args.block_size, args.sparse_only, isas,
                    args.block_size_ratio if args.long else 0)
        results.append(r)
        print(f"\nL={L}, {args.heads} heads, {args.bits}-bit codes, topk={args.topk}, dv={args.dv}, "
              f"{args.threads} threads, median of {rounds} interleaved rounds")
        if args.long:
            for name, size in r["sparse_block_size"].items():
                print(f"{name}: {args.blocks} blocks x {size}; pairs touched: "
                      f"{r['pairs_touched_fraction'][name]:.4f} of the causal pairs")
        print("| variant | median wall ms | speed-up vs SDPA | median CPU ms | CPU-time ratio vs SDPA |")
        print("|---|---:|---:|---:|---:|")
        for name, ms in r["median_ms"].items():
            print(f"| {name} | {ms:.1f} | {r['speedup_vs_sdpa'][name]:.2f}x | {r['median_cpu_ms'][name]:.1f} | "
                  f"{r['cpu_ratio_vs_sdpa'][name]:.2f}x |")
        kc = r["key_cache_bytes_per_token"]
        print(f"key cache per token: {kc['kwta packed codes']} B packed vs "
              f"{kc['float32 keys (head dim 64)']} B float32 "
              f"({kc['float32 keys (head dim 64)'] / kc['kwta packed codes']:.0f}x smaller)")
        if args.long:
            print("sparse codes: " + ", ".join(f"{b} B" for b in r["sparse_key_cache_bytes_per_token"].values())
                  + " per token (one index per block)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.plot:
        plot(results, args.plot)
    return 0


def merge(runs):
    """One result per L from several saved runs (lists of :func:`measure` results): the variants'
    medians of all runs at that L, a later run's figure winning for the same variant."""
    by_l = {}
    for run in runs:
        for r in run:
            m = by_l.setdefault(r["L"], {"L": r["L"], "median_ms": {}, "median_cpu_ms": {}})
            for key in ("median_ms", "median_cpu_ms"):
                m[key].update(r[key])
    return [by_l[L] for L in sorted(by_l)]


def slopes(results, key="median_ms"):
    """``{variant: exponent}``: least-squares slope of log(time) against log(L) (``key``:
    ``median_ms`` wall or ``median_cpu_ms`` CPU time), over the lengths where it was timed."""
    out = {}
    names = dict.fromkeys(n for r in results for n in r[key])
    for name in names:
        pts = [(r["L"], r[key][name]) for r in results if name in r[key]]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            out[name] = float(np.polyfit(x, y, 1)[0])
    return out


def plot(results, path):
    """Log-log plots of median wall time and median CPU time against L, one line per variant,
    each labelled with its fitted slope (the exponent of L)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, what in ((axes[0], "median_ms", "wall"), (axes[1], "median_cpu_ms", "CPU (all threads)")):
        for name, slope in slopes(results, key).items():
            pts = [(r["L"], r[key][name]) for r in results if name in r[key]]
            ax.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{name}: slope {slope:.2f}")
        ax.set_xlabel("sequence length L (causal, 4 heads)")
        ax.set_ylabel(f"median {what} time per call (ms)")
        ax.set_title(f"{what} time against L")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
