"""``hdc experiment NAME``: forgetting, bit errors, sparsity and ablations (JSON + Markdown + PNG).

  hdc experiment forgetting --quick --out exp-forgetting      # a few minutes on 2 cores
  hdc experiment biterror --seeds 5 --fractions 0,0.1,0.2 --out exp-biterror
  hdc experiment all --quick --out exp-quick                  # every experiment, one folder each
  hdc experiment ablation --quick --workers 1                 # one process (default: one per core)

Needs the torch extra, scikit-learn, matplotlib and tqdm. See docs/experiments.md.
"""
import argparse
import pathlib
import shlex

NAMES = ("forgetting", "biterror", "sparsity", "ablation")


def _fractions(value):
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {value!r}") from None


def add_parser(subparsers):
    p = subparsers.add_parser("experiment", help="run a seeded experiment: " + ", ".join(NAMES),
                              description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help=f"one of {', '.join(NAMES)}, or 'all'")
    p.add_argument("--quick", action="store_true", help="smaller models and grids (minutes, not an hour)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: hdc-experiment-NAME)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. N-1; default 3)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.add_argument("--fractions", type=_fractions, metavar="LIST",
                   help="biterror: flip fractions in [0, 1] (default 0,0.01,0.02,0.05,0.1,0.2,0.3)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes for the independent (model, seed) jobs (default: one per core); "
                        "the numbers do not depend on it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _plan(args):
    """Validate everything before any work: [(name, kwargs)]."""
    from hdc.experiments._common import check_fractions, prepare_out
    if args.name != "all" and args.name not in NAMES:
        raise ValueError(f"unknown experiment {args.name!r}; expected one of {', '.join(NAMES)} or 'all'")
    names = list(NAMES) if args.name == "all" else [args.name]
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.fractions is not None and "biterror" not in names:
        raise ValueError("--fractions applies to the biterror experiment only")
    root = pathlib.Path(args.out or ("hdc-experiments" if args.name == "all" else f"hdc-experiment-{args.name}"))
    plan = []
    for name in names:
        out = root / name if args.name == "all" else root
        kw = dict(quick=args.quick, seeds=args.seeds, out=out, force=args.force, progress=not args.no_progress,
                  workers=args.workers)
        if name == "biterror" and args.fractions is not None:
            kw["fractions"] = check_fractions(args.fractions, "--fractions")
        prepare_out(out, args.force)
        argv = ["hdc", "experiment", name] + ["--quick"] * args.quick + ["--seeds", str(args.seeds)]
        if "fractions" in kw:
            argv += ["--fractions", ",".join(f"{f:g}" for f in kw["fractions"])]
        kw["command"] = shlex.join(argv)
        plan.append((name, kw))
    return plan


def run(args):
    from hdc import experiments
    for name, kw in _plan(args):
        result = experiments.run(name, **kw)
        files = result["files"]
        print(f"hdc experiment {name}: {result['seconds']:.0f} s; wrote {', '.join(files[:2])}"
              + (f" and {len(files) - 2} plot(s)" if len(files) > 2 else ""))
        for target, value in result.get("targets", {}).items():
            print(f"  target {'met' if value['met'] else 'MISSED'}: {target}")
    return 0
