"""``hdc demo``: encode a data set, search it, classify it and time hdc against NumPy float32.

Uses scikit-learn's bundled 8x8 digits (no download). Prints accuracy, vectors per second,
bytes per vector and speedups measured in the same run; takes well under a minute.

  hdc demo
  hdc demo --dim 4096 --backend numba
"""
import argparse
import time

import numpy as np

# the speed comparison: stored vectors searched, bundled vectors, bound pairs
SEARCH_N, BUNDLE_N, BIND_N = 10_000, 1_001, 10_000


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="a one-minute tour: encode, search, classify, speed",
                                   description=__doc__.splitlines()[0],
                                   epilog="\n".join(__doc__.splitlines()[1:]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=10_000, help="hypervector dimension (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the encoder and the split")
    parser.add_argument("--backend", default=None, help="hdc backend (default: the fastest available)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats in the speed section")
    parser.add_argument("--search-n", type=int, default=SEARCH_N, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)
    return parser


def _rate(n, seconds):
    return f"{n / seconds:,.0f}" if seconds > 0 else "inf"


def _speed_section(dim, repeats, search_n, seed):
    """Time hdc against NumPy float32 on the same +-1 data, interleaved; returns table rows."""
    import hdc
    from hdc.bench.impls import bipolar
    from hdc.bench.report import fmt_time
    from hdc.bench.timing import time_interleaved

    mem = hdc.random(search_n, dim, seed=seed + 10)
    q256 = hdc.random(256, dim, seed=seed + 11)
    mem_f = bipolar(mem.to_bool())
    q256_f = bipolar(q256.to_bool())
    q1, q1_f = q256[:1], q256_f[0]
    n_bundle = min(BUNDLE_N, search_n - (search_n % 2 == 0))   # odd: no ties to break
    n_bind = min(BIND_N, search_n)
    bun, bun_f = mem[:n_bundle], mem_f[:n_bundle]
    a, b = mem[:n_bind], hdc.random(n_bind, dim, seed=seed + 12)
    a_f, b_f = mem_f[:n_bind], bipolar(b.to_bool())

    def np_topk(sims, k=10):
        part = np.argpartition(-sims, k - 1, axis=-1)[..., :k]
        return np.take_along_axis(part, np.argsort(-np.take_along_axis(sims, part, -1), axis=-1), -1)

    tests = [
        (f"top-10 search, 1 query vs {search_n:,}", "matvec",
         lambda: hdc.topk(q1, mem, 10), lambda: np_topk(mem_f @ q1_f)),
        (f"top-10 search, 256 queries vs {search_n:,}", "matmul",
         lambda: hdc.topk(q256, mem, 10), lambda: np_topk(q256_f @ mem_f.T)),
        (f"bundle {n_bundle:,} vectors", "sign(sum)",
         lambda: hdc.bundle(bun), lambda: np.sign(bun_f.sum(axis=0))),
        (f"bind {n_bind:,} pairs", "multiply",
         lambda: hdc.bind(a, b), lambda: a_f * b_f),
    ]
    rows = []
    for label, np_name, fn_hdc, fn_np in tests:
        st = time_interleaved({"hdc": fn_hdc, "numpy": fn_np}, repeats=repeats, min_sample_s=0.01, budget_s=2.0)
        for side in ("hdc", "numpy"):
            if "error" in st[side]:
                raise st[side]["error"]
        t_h, t_n = st["hdc"]["median_s"], st["numpy"]["median_s"]
        rows.append((label, fmt_time(t_h), f"{fmt_time(t_n)} ({np_name})", t_n / t_h))
    return rows


def run(args):
    import hdc
    from hdc.bench.accuracy import load_digits_split
    from hdc.bench.report import fmt_time

    if args.dim < 64:
        raise ValueError(f"--dim must be >= 64, got {args.dim}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if args.search_n < 256:
        raise ValueError(f"--search-n must be >= 256, got {args.search_n}")
    if args.backend is not None:
        hdc.set_backend(args.backend)
    t0 = time.perf_counter()
    dim = args.dim
    try:
        Xtr, ytr, Xte, yte = load_digits_split(seed=args.seed)
    except ImportError:
        raise ValueError("hdc demo needs scikit-learn for its bundled digits data set: "
                         "pip install 'hdc[learn]'") from None
    backend_name = hdc.get_backend()
    isa = ""
    if backend_name == "c":
        isa = f", SIMD {hdc.get_isa()}"
    print(f"hdc {hdc.__version__} demo: dim {dim:,}, backend {backend_name}{isa}, "
          f"{hdc.get_num_threads()} threads")
    n_all = len(ytr) + len(yte)
    print(f"  data      scikit-learn digits: {n_all:,} 8x8 images (64 features, values 0..16), "
          f"10 classes; {len(ytr):,} train / {len(yte):,} test")

    enc = hdc.RecordEncoder(dim, n_features=Xtr.shape[1], levels=17, low=0.0, high=16.0, seed=args.seed)
    enc.encode(Xtr[:2])  # first call compiles (Numba) or loads the cache; not what we time
    start = time.perf_counter()
    htr, hte = enc.encode(Xtr), enc.encode(Xte)
    t_enc = time.perf_counter() - start
    bpv = htr.words.shape[-1] * 8
    print(f"  encode    RecordEncoder (feature id XOR level, bundled): {n_all:,} vectors in "
          f"{fmt_time(t_enc)} = {_rate(n_all, t_enc)} vectors/s")
    print(f"  size      {bpv:,} bytes per vector; NumPy float32 +-1 needs {4 * dim:,} "
          f"({4 * dim / bpv:.1f}x more), torchhd BSC {dim:,} ({dim / bpv:.1f}x more)")

    mem = hdc.AssociativeMemory(dim)
    mem.add(htr, labels=ytr)
    mem.search(hte[:1], k=1)
    start = time.perf_counter()
    _, labels = mem.search(hte, k=1)
    t_search = time.perf_counter() - start
    pred = np.asarray(labels).reshape(len(yte), -1)[:, 0]
    print(f"  memory    AssociativeMemory of {len(mem):,} vectors, 1-nearest neighbour: accuracy "
          f"{np.mean(pred == yte):.1%}, {_rate(len(yte), t_search)} queries/s")

    for what, options in (("majority prototypes", {"epochs": 0}),
                          ("defaults: + 20 retraining epochs with margin 0.03", {})):
        start = time.perf_counter()
        clf = hdc.CentroidClassifier(dim, seed=args.seed, **options).fit(htr, ytr)
        t_fit = time.perf_counter() - start
        acc = clf.score(hte, yte)
        print(f"  classify  CentroidClassifier ({what}): accuracy {acc:.1%}, fit {fmt_time(t_fit)}")

    print(f"  speed     hdc vs NumPy float32 on the same +-1 vectors (median of {args.repeats} "
          f"interleaved runs):")
    rows = _speed_section(dim, args.repeats, args.search_n, args.seed)
    width = max(len(r[0]) for r in rows)
    for label, t_h, t_n, ratio in rows:
        print(f"            {label:<{width}}  hdc {t_h:>9}   numpy {t_n:<20} {ratio:6.1f}x faster")
    print(f"  done in {time.perf_counter() - t0:.1f} s. More: `hdc bench --quick`, `hdc info`.")
    return 0
