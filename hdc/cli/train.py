"""``hdc train`` and ``hdc compare``: train the HD-transformer (k-WTA or dense attention) on MQAR or
character-level LM, and compare both attention kinds with the same seed, size and step budget.

    hdc train mqar --attention kwta --topk 8 --steps 1000 --checkpoint mqar.pt --json m.json
    hdc compare charlm --text my.txt --json compare.json
    hdc compare mqar --variants dense,kwta,sparse,sparse_ffn --json compare.json

Needs torch (``pip install hdc[torch]``).
"""
import argparse
import json
import math
import os
import pathlib
import sys

# Defaults of `hdc compare` (and `hdc train`), chosen so that both variants together finish in
# about 15 minutes on 2 cores; see docs/transformer.md for what they reach.
DEFAULTS = {
    "mqar": dict(steps=1000, batch_size=32, lr=3e-3, d_model=64, n_layers=2, n_heads=4, code_bits=64,
                 topk=8, seq_len=128, vocab_size=256, n_pairs=16, learn_temperature=False,
                 blocks=8, block_size=64, ffn_topk=None, balance=0.05, overlap=0.0,
                 overlap_start=0.5, token_shift=2),
    "charlm": dict(steps=1200, batch_size=32, lr=3e-3, d_model=128, n_layers=2, n_heads=4, code_bits=256,
                   topk=16, seq_len=128, vocab_size=None, n_pairs=None, learn_temperature=True,
                   blocks=8, block_size=64, ffn_topk=None, balance=0.05, overlap=0.0,
                   overlap_start=0.5, token_shift=4),
}
# `hdc compare --variants`: attention kind, code kind, whether the feed-forward is k-WTA
VARIANTS = {"dense": ("dense", "dense", False), "kwta": ("kwta", "dense", False),
            "sparse": ("kwta", "sparse", False), "sparse_ffn": ("kwta", "sparse", True)}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where the help text already says it or there is none."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return action.help
        return super()._get_help_string(action)


def _task_default(key):
    """'(default: mqar X, charlm Y)' for a setting whose default depends on the task."""
    return "(default: " + ", ".join(f"{task} {DEFAULTS[task][key]}" for task in DEFAULTS) + ")"


def default_threads():
    """Threads that do not oversubscribe a busy machine: the cores the 1-minute load leaves free.

    On a 2-core machine already running one busy process this gives 1 (two threads there ran 4x
    slower than one: they fight the other process and each other).
    """
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows)
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def _add_common(p, require_attention):
    p.add_argument("task", choices=("mqar", "charlm"), help="multi-query associative recall or char-level LM")
    if require_attention:
        p.add_argument("--attention", choices=("kwta", "dense"), default="kwta",
                       help="Hamming k-WTA attention or the dense softmax baseline (default: kwta)")
        p.add_argument("--code", choices=("dense", "sparse"), default="dense",
                       help="k-WTA Q/K codes: dense bits or sparse block codes (default: dense)")
    p.add_argument("--text", metavar="FILE", help="charlm: UTF-8 text file (default: pydoc_data.topics)")
    p.add_argument("--steps", type=int, help="training steps " + _task_default("steps"))
    p.add_argument("--batch-size", type=int, help="sequences per step " + _task_default("batch_size"))
    p.add_argument("--lr", type=float, help="peak AdamW learning rate " + _task_default("lr"))
    p.add_argument("--d-model", type=int, help="model width " + _task_default("d_model"))
    p.add_argument("--layers", type=int, dest="n_layers", help="transformer blocks " + _task_default("n_layers"))
    p.add_argument("--heads", type=int, dest="n_heads", help="attention heads " + _task_default("n_heads"))
    p.add_argument("--code-bits", type=int, help="Q/K code bits per head " + _task_default("code_bits"))
    p.add_argument("--topk", type=int, help="winners per query (k-WTA) " + _task_default("topk"))
    p.add_argument("--learn-temperature", action=argparse.BooleanOptionalAction, default=None,
                   help="k-WTA: learn one softmax temperature per head " + _task_default("learn_temperature"))
    p.add_argument("--blocks", type=int, help="sparse codes: blocks per Q/K code " + _task_default("blocks"))
    p.add_argument("--block-size", type=int,
                   help="sparse codes: elements per block " + _task_default("block_size"))
    p.add_argument("--balance", type=float,
                   help="sparse codes: weight of the load-balancing loss on block indices (fewer keys "
                        "touched per query) " + _task_default("balance"))
    p.add_argument("--overlap", type=float,
                   help="sparse codes: weight of the penalty on blocks a query shares with keys it does not "
                        "select (below the touched fraction of random codes) " + _task_default("overlap"))
    p.add_argument("--overlap-start", type=float,
                   help="sparse codes: fraction of the steps before the overlap penalty starts (it then "
                        "ramps up over a tenth of them) " + _task_default("overlap_start"))
    p.add_argument("--ffn-topk", type=int, help="k-WTA feed-forward: hidden units kept per token "
                                                "(default for sparse_ffn: d_ff / 10)")
    p.add_argument("--token-shift", type=int, help="width of the causal token convolution at the input "
                                                   "(1: none; 2: the previous token too) "
                                                   + _task_default("token_shift"))
    p.add_argument("--seq-len", type=int, help="sequence length " + _task_default("seq_len"))
    p.add_argument("--vocab", type=int, dest="vocab_size",
                   help=f"mqar: vocabulary size (default: {DEFAULTS['mqar']['vocab_size']})")
    p.add_argument("--pairs", type=int, dest="n_pairs",
                   help=f"mqar: key-value pairs per sequence (default: {DEFAULTS['mqar']['n_pairs']})")
    p.add_argument("--head", choices=("linear", "voter"), default="linear", help="output layer")
    p.add_argument("--voters", type=int, default=8, help="voters per output bit (voter head)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and order")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and hdc threads (default: the cores the current load leaves free, at least 1)")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: at the end only)")
    p.add_argument("--json", metavar="PATH", help="write the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train the HD-transformer on mqar or charlm",
                              formatter_class=_HelpFormatter,
                              description="Train the HD-transformer (k-WTA or dense attention); prints the "
                                          "final metrics, writes a checkpoint and optionally JSON.")
    _add_common(p, True)
    p.add_argument("--checkpoint", metavar="PATH", default=argparse.SUPPRESS,
                   help="torch checkpoint (state_dict + config, weights-only loadable), written every "
                        "--checkpoint-every steps and at the end (default: hdc-TASK-ATTENTION.pt in the "
                        "current directory; --no-checkpoint to skip)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not write a checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: at the end only)")
    p.add_argument("--export", metavar="PATH", help="also write the packed torch-free model (.npz)")
    p.set_defaults(func=run)
    c = subparsers.add_parser("compare", help="train k-WTA and dense attention with the same budget",
                              formatter_class=_HelpFormatter,
                              description="Train both attention kinds with the same seed, size and step "
                                          "budget; print a side-by-side table and write JSON.")
    _add_common(c, False)
    c.add_argument("--variants", default="kwta,dense",
                   help=f"comma-separated variants of {sorted(VARIANTS)}: dense attention, dense-code "
                        f"k-WTA, sparse-code k-WTA, sparse-code k-WTA + k-WTA feed-forward "
                        f"(default: kwta,dense)")
    c.set_defaults(func=run_compare)
    return p


def _settings(args):
    s = dict(DEFAULTS[args.task])
    for key in s:
        value = getattr(args, key, None)
        if value is not None:
            s[key] = value
    for key in ("steps", "batch_size", "d_model", "n_layers", "n_heads", "code_bits", "topk", "seq_len",
                "blocks", "block_size", "token_shift"):
        if s[key] is None or s[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {s[key]}")
    if not (s["lr"] > 0 and math.isfinite(s["lr"])):
        raise ValueError(f"--lr must be a positive number, got {s['lr']}")
    for key in ("balance", "overlap"):
        if not (s[key] >= 0 and math.isfinite(s[key])):
            raise ValueError(f"--{key} must be a finite number >= 0, got {s[key]}")
    if not 0 <= s["overlap_start"] <= 1:
        raise ValueError(f"--overlap-start must be a fraction in [0, 1], got {s['overlap_start']}")
    if args.task == "mqar" and args.text:
        raise ValueError("--text applies to charlm only")
    return s


def keep_freed_memory():
    """Serve large allocations from the heap and keep freed memory for reuse (glibc; else no-op).

    A training step allocates and frees tensors of tens of MB; glibc maps every block above its
    mmap threshold (32 MB at most) afresh and unmaps it on free, so each step page-faults them in
    again: the sparse-code character LM spent 0.33 to 0.96 s of each step in the kernel.
    ``mallopt(M_MMAP_MAX, 0)`` and a 2 GB trim threshold stop that (the same effect as
    ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`` in the environment). It changes the
    whole process's allocator, so only the commands that own the process call it.
    Returns whether it applied.
    """
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):          # not glibc (macOS, Windows)
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2 ** 31 - 1))


def _require_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError("hdc train / hdc compare need torch: pip install 'hdc[torch]'") from None


def _task(args, s):
    _require_torch()
    from hdc.nn import training
    if args.task == "mqar":
        return training.make_task("mqar", seed=args.seed, vocab_size=s["vocab_size"], seq_len=s["seq_len"],
                                  n_pairs=s["n_pairs"])
    return training.make_task("charlm", seed=args.seed, text=args.text, seq_len=s["seq_len"])


def _train_one(args, s, task, attention, checkpoint=None, checkpoint_every=0, code="dense", ffn=None,
               name=None):
    """Train and measure one model; ``ffn``: k-WTA feed-forward (None: only with --ffn-topk)."""
    import torch
    from hdc.nn import training
    import hdc
    threads = default_threads() if args.threads is None else args.threads
    if threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads}")
    torch.set_num_threads(threads)
    hdc.set_num_threads(threads)
    keep_freed_memory()
    sparse = (dict(code_bits=None, blocks=s["blocks"], block_size=s["block_size"], balance=s["balance"],
                   overlap=s["overlap"])
              if code == "sparse" else {})
    ffn_topk = s["ffn_topk"]
    if ffn is True and ffn_topk is None:
        ffn_topk = max(1, 4 * s["d_model"] // 10)           # 10% of d_ff = 4 d_model
    elif ffn is False:
        ffn_topk = None
    model = training.build_model(task, attention, d_model=s["d_model"], n_layers=s["n_layers"],
                                 n_heads=s["n_heads"], topk=s["topk"], head=args.head, n_voters=args.voters,
                                 learn_temperature=s["learn_temperature"], seed=args.seed, code=code,
                                 ffn_topk=ffn_topk, token_shift=s["token_shift"],
                                 **{"code_bits": s["code_bits"], **sparse})
    info = training.train(model, task, steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"], seed=args.seed,
                          progress=not args.no_progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                          desc=f"{args.task}/{name or attention}", eval_every=args.eval_every,
                          overlap_start=s["overlap_start"])
    metrics = training.measure(model, task, info)
    metrics["model"] = dict(model.config)
    return model, metrics


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


_ROWS = ("accuracy", "bpc", "loss", "parameters", "train_seconds", "torch_inference_ms_per_seq",
         "packed_inference_ms_per_seq", "attention_density", "pairs_touched_fraction",
         "pairs_touched_fraction_4096", "ffn_density",
         "key_cache_bytes_per_token",
         "active_voters_per_bit", "export_max_abs_diff", "export_winners_identical",
         "export_max_abs_diff_float32", "export_winner_agreement_float32")


def _rows(metrics):
    rows = [(k, metrics.get(k)) for k in _ROWS if k in metrics and not (k == "bpc" and metrics.get(k) is None)]
    for k, v in metrics.get("robustness", {}).items():
        rows.append((f"{metrics.get('robustness_metric', 'metric')} {k}", v))
    return rows


def _write_json(path, obj):
    pathlib.Path(path).write_text(json.dumps(obj, indent=2, default=float) + "\n")


def run(args):
    s = _settings(args)
    task = _task(args, s)
    if args.no_checkpoint:
        args.checkpoint = None
    elif getattr(args, "checkpoint", None) is None:
        args.checkpoint = f"hdc-{args.task}-{args.attention}.pt"
    model, metrics = _train_one(args, s, task, args.attention, args.checkpoint, args.checkpoint_every,
                                code=args.code)
    config = {**task.config(), **{k: v for k, v in s.items() if v is not None}, "attention": args.attention,
              "code": args.code, "head": args.head, "seed": args.seed}
    for k, v in _rows(metrics):
        print(f"{k:40s} {_fmt(v)}")
    if args.export:
        model.export().save(args.export)
        print(f"packed model written to {args.export}")
    if args.checkpoint:
        print(f"checkpoint written to {args.checkpoint}")
    if args.json:
        _write_json(args.json, {"metrics": metrics, "config": config})
    return 0


def _variants(text):
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(f"--variants must be distinct names from {sorted(VARIANTS)}, got {text!r}")
    return names


def run_compare(args):
    s = _settings(args)
    variants = _variants(args.variants)
    task = _task(args, s)
    results = {}
    for name in variants:
        attention, code, ffn = VARIANTS[name]
        _, results[name] = _train_one(args, s, task, attention, code=code, ffn=ffn, name=name)
    config = {**task.config(), **{k: v for k, v in s.items() if v is not None}, "head": args.head,
              "seed": args.seed, "variants": variants}
    rows = {name: dict(_rows(m)) for name, m in results.items()}
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    print(f"{'metric':40s} " + " ".join(f"{name:>12s}" for name in variants))
    for k in keys:
        print(f"{k:40s} " + " ".join(f"{_fmt(rows[name].get(k, '-')):>12s}" for name in variants))
    if args.json:
        _write_json(args.json, {**results, "config": config})
        print(f"written to {args.json}", file=sys.stderr)
    return 0
