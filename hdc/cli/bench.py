"""``hdc bench``: the benchmark suite; writes results.json, report.md and PNG plots to --out.

  hdc bench --quick --out bench-quick        # under 2 minutes
  hdc bench --out bench-full                 # the full run, under 20 minutes
  hdc bench --quick --backends c,numba --threads 2 --ops topk,cdist
  hdc bench --sparse --out bench-sparse      # sparse block codes: capacity, speed, accuracy
  hdc bench --distributed --quick            # ShardedMemory fan-out overhead (starts local Dask clusters)
"""
import argparse
import shlex
import time


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bench", help="benchmark hdc against NumPy float32, torchhd and faiss",
        description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (< 2 minutes)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes (seconds): checks that everything runs")
    parser.add_argument("--out", default="hdc-bench", metavar="DIR", help="output folder (default: hdc-bench)")
    parser.add_argument("--backends", type=_csv, default=None, metavar="LIST",
                        help="hdc backends to measure, e.g. c,numba (default: c,numba,numpy; "
                             "unavailable ones are reported as missing)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for hdc, torch, faiss and BLAS (default: library defaults)")
    parser.add_argument("--ops", type=_csv, default=None, metavar="LIST",
                        help="ops to run (default: bind,permute,bundle,cdist,topk,encode,attention)")
    parser.add_argument("--no-baselines", action="store_true", help="measure hdc's backends only")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy-at-equal-task section")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("--no-limits", action="store_true",
                        help="skip measuring the machine's limits and every SIMD path against them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--mem-limit", type=float, default=None, metavar="GB",
                        help="largest memory one implementation may use in a case (default: 40%% of available)")
    parser.add_argument("--max-call", type=float, default=None, metavar="SECONDS",
                        help="skip an implementation when a call is predicted to take longer")
    parser.add_argument("--sparse", action="store_true",
                        help="run the sparse block code section only (hdc.bench.sparse): capacity, bytes per "
                             "item, topk vs torchhd BSBC, inverted index vs scan, accuracy")
    parser.add_argument("--distributed", action="store_true",
                        help="run the distributed section only (hdc.bench.distributed): ShardedMemory search "
                             "overhead over one in-process memory on local Dask clusters (needs hdc[distributed])")
    parser.add_argument("--rerender", action="store_true",
                        help="only rewrite report.md and the plots in --out from its results.json")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from hdc import backend
    from hdc.bench import run as run_bench
    from hdc.bench.report import fmt_time
    from hdc.bench.suite import OPS
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.backends is not None:
        bad = [b for b in args.backends if b not in backend._MODULES]
        if bad:
            raise ValueError(f"--backends must be among {sorted(backend._MODULES)}, got {bad}")
    if args.ops is not None:
        bad = [op for op in args.ops if op not in OPS]
        if bad:
            raise ValueError(f"--ops must be among {list(OPS)}, got {bad}")
    if args.rerender:
        from hdc.bench import rerender
        res = rerender(args.out, plots=not args.no_plots)
        print(f"wrote {', '.join(res['files'][1:])} to {res['out_dir']}")
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.sparse:
        from hdc.bench.sparse import run_sparse
        if args.threads is not None:
            backend.set_num_threads(args.threads)
        res = run_sparse(mode, args.out, plots=not args.no_plots)
        print(f"hdc bench --sparse ({mode}): wrote {', '.join(['sparse.json', 'sparse.md'] + res['files'])}")
        return 0
    if args.distributed:
        return _run_distributed(args, mode)
    command = _rebuild_command(args, mode)
    start = time.perf_counter()
    res = run_bench(mode, args.out, plots=not args.no_plots, ops=args.ops, backends=args.backends,
                    baselines=not args.no_baselines, threads=args.threads, accuracy=not args.no_accuracy,
                    mem_limit_gb=args.mem_limit, max_call_s=args.max_call, progress=not args.no_progress,
                    command=command, machine_limits=not args.no_limits)
    print(f"hdc bench ({mode}): {len(res['cases'])} cases in {time.perf_counter() - start:.0f} s")
    for t in res.get("targets", []):
        if t["value"] is not None:
            met = ("met" if t["met"] else "NOT met") if t["threshold"] is not None else "runs"
            unit = t["unit"]
            val = fmt_time(t["value"] * 1e-6) if unit == "us" else f"{t['value']:.3g} {unit}"
            note = f"; {t['note']}" if t.get("note") else ""
            print(f"  {t['target']} [{t['implementation']}]: {val} ({met}{note})")
        elif t.get("note"):
            print(f"  {t['target']} [{t['implementation']}]: {t['note']}")
    if res.get("plots_status"):
        print(f"  plots: {res['plots_status']}")
    print(f"wrote {', '.join(res['files'])} to {res['out_dir']}")
    return 0


def _run_distributed(args, mode):
    from hdc import backend
    from hdc.bench.distributed import run_distributed
    if args.threads is not None:
        backend.set_num_threads(args.threads)
    res = run_distributed(mode, args.out)
    print(f"hdc bench --distributed ({mode}): wrote {', '.join(res['files'])} to {args.out}")
    return 0


def _rebuild_command(args, mode):
    parts = ["hdc", "bench"]
    if mode != "full":
        parts.append(f"--{mode}")
    parts += ["--out", shlex.quote(args.out)]
    for flag, value in (("--backends", args.backends), ("--ops", args.ops)):
        if value:
            parts += [flag, ",".join(value)]
    for flag, value in (("--threads", args.threads), ("--mem-limit", args.mem_limit), ("--max-call", args.max_call)):
        if value is not None:
            parts += [flag, str(value)]
    for flag in ("no_baselines", "no_accuracy", "no_plots", "no_limits"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    return " ".join(parts)
