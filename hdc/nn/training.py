"""Training, evaluation and measurements of the HD-transformer (behind ``hdc train`` / ``hdc compare``).

>>> from hdc.nn import tasks, training
>>> task = tasks.MQAR(vocab_size=16, seq_len=24, n_pairs=4, n_eval=8)
>>> model = training.build_model(task, "kwta", d_model=32, n_layers=1, n_heads=2, topk=4, seed=0)
>>> info = training.train(model, task, steps=2, batch_size=4, progress=False)
>>> sorted(training.evaluate(model, task))
['accuracy', 'loss']
"""
import copy
import math
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

from .modules import HDTransformer, index_bits
from .tasks import MQAR, CharLM

__all__ = ["make_task", "build_model", "train", "evaluate", "measure", "run", "attention_density",
           "long_context_touched"]

TASKS = ("mqar", "charlm")


def make_task(name, seed=0, text=None, vocab_size=256, seq_len=128, n_pairs=16, n_eval=256):
    """``MQAR`` or ``CharLM`` from command-line style arguments."""
    if name == "mqar":
        return MQAR(vocab_size=vocab_size, seq_len=seq_len, n_pairs=n_pairs, seed=seed, n_eval=n_eval)
    if name == "charlm":
        return CharLM(path=text, seq_len=seq_len, seed=seed)
    raise ValueError(f"task must be one of {TASKS}, got {name!r}")


def build_model(task, attention, d_model=128, n_layers=2, n_heads=4, code_bits=64, topk=8, head="linear",
                n_voters=8, temperature=None, learn_temperature=False, seed=0, code="dense", blocks=None,
                block_size=None, ffn_topk=None, balance=0.0, overlap=0.0, token_shift=True):
    """An :class:`HDTransformer` sized for ``task``, initialised from ``seed``."""
    torch.manual_seed(seed)
    return HDTransformer(task.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                         code_bits=code_bits, topk=topk, attention=attention, max_len=task.seq_len,
                         temperature=temperature, head=head, n_voters=n_voters,
                         learn_temperature=learn_temperature, code=code, blocks=blocks,
                         block_size=block_size, ffn_topk=ffn_topk, balance=balance, overlap=overlap,
                         token_shift=token_shift)


def _loss_and_stats(model, out, y, mask):
    """Mean training loss over masked positions, and per-position (nll in bits, correct)."""
    m = mask.reshape(-1)
    yt = y.reshape(-1)[m]
    if model.config["head"] == "linear":
        logits = out.reshape(-1, out.shape[-1])[m]
        nll = F.cross_entropy(logits, yt, reduction="none")
        correct = logits.argmax(-1) == yt
        return nll.mean(), nll / math.log(2), correct
    p = out.reshape(-1, out.shape[-1])[m]
    bits = index_bits(yt, model.n_bits)
    bce = F.binary_cross_entropy(p, bits, reduction="none").sum(-1)
    pred = ((p > 0.5).long() << torch.arange(model.n_bits)).sum(-1)
    return bce.mean() / model.n_bits, bce / math.log(2), pred == yt


class _Progress:
    """tqdm when installed, else a line every 10%."""

    def __init__(self, total, enabled, desc):
        self.total, self.enabled, self.n, self.bar = total, enabled, 0, None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                self.desc = desc

    def update(self, **postfix):
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            if postfix and self.n % 20 == 0:
                self.bar.set_postfix(postfix, refresh=False)
        elif self.enabled and (self.n % max(1, self.total // 10) == 0 or self.n == self.total):
            print(f"{self.desc}: step {self.n}/{self.total} " + " ".join(f"{k}={v}" for k, v in postfix.items()),
                  file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(model, task, steps=1000, batch_size=32, lr=3e-3, weight_decay=0.01, warmup=100, seed=0,
          progress=True, checkpoint=None, checkpoint_every=0, desc="train", eval_every=0, log=None,
          overlap_start=0.5, overlap_ramp=0.1):
    """AdamW with linear warm-up and cosine decay; returns ``{"train_seconds", "steps", "final_loss"}``.

    A model with ``overlap > 0`` gets its overlap penalty only from ``overlap_start`` of the
    budget on, ramped linearly to full weight over the next ``overlap_ramp`` (fractions of
    ``steps``): from the first step the penalty separates queries from keys before the task has
    made the right keys winners (MQAR, weight 1: no pair shared a block, chance accuracy).

    ``checkpoint``: path written (``model.save``) every ``checkpoint_every`` steps and at the end.
    ``eval_every``: evaluate every that many steps and pass ``(step, metrics)`` to ``log``
    (default: print to stderr); the history is returned under ``"history"``.
    """
    for name, value in (("overlap_start", overlap_start), ("overlap_ramp", overlap_ramp)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    history = []
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    model.train()
    bar = _Progress(steps, progress, desc)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        x, y, mask = (torch.from_numpy(a) for a in task.batch(batch_size, rng))
        if getattr(model, "overlap_scale", None) is not None:
            done = step / max(1, steps) - overlap_start
            model.overlap_scale = min(1.0, max(0.0, done / overlap_ramp if overlap_ramp else float(done >= 0)))
        out = model(x)
        loss, _, _ = _loss_and_stats(model, out, y, mask)
        aux = model.aux_loss()                        # sparse codes' load balancing, or None
        opt.zero_grad(set_to_none=True)
        (loss if aux is None else loss + aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.update(loss=f"{np.mean(losses[-20:]):.3f}")
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            metrics = evaluate(model, task)
            model.train()
            metrics["seconds"] = time.perf_counter() - start
            history.append({"step": step + 1, **metrics})
            (log or (lambda s, m: print(f"{desc} step {s}: {m}", file=sys.stderr, flush=True)))(step + 1, metrics)
        if checkpoint and checkpoint_every and (step + 1) % checkpoint_every == 0:
            model.save(checkpoint, step=step + 1)
    bar.close()
    if getattr(model, "overlap_scale", None) is not None:
        model.overlap_scale = 1.0
    seconds = time.perf_counter() - start
    if checkpoint:
        model.save(checkpoint, step=steps)
    model.eval()
    return {"train_seconds": seconds, "steps": steps, "history": history,
            "final_loss": float(np.mean(losses[-50:])) if losses else float("nan")}


@torch.no_grad()
def evaluate(model, task):
    """``{"loss", "accuracy"}`` on MQAR query positions, ``{"loss", "bpc", "accuracy"}`` on CharLM."""
    model.eval()
    bits, correct = [], []
    for x, y, mask in task.eval_batches():
        out = model(torch.from_numpy(x))
        _, nll_bits, ok = _loss_and_stats(model, out, torch.from_numpy(y), torch.from_numpy(mask))
        bits.append(nll_bits)
        correct.append(ok)
    bits, correct = torch.cat(bits), torch.cat(correct)
    result = {"loss": float(bits.mean() * math.log(2)), "accuracy": float(correct.float().mean())}
    if task.kind == "charlm":
        result["bpc"] = float(bits.mean())
    return result


def _packed_metric(packed, task, batches, **flip):
    """Task metric of the exported model (accuracy or bpc) on ``batches``."""
    bits, correct = [], []
    for x, y, mask in batches:
        out = packed(x, **flip)
        if packed.config["head"] == "linear":
            z = out - out.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0] / math.log(2)
            ok = out.argmax(-1) == y
        else:
            tb = (y[..., None] >> np.arange(packed.n_bits)) & 1
            nll = -(tb * np.log2(out) + (1 - tb) * np.log2(1 - out)).sum(-1)
            ok = ((out > 0.5).astype(np.int64) << np.arange(packed.n_bits)).sum(-1) == y
        bits.append(nll[mask])
        correct.append(ok[mask])
    if task.kind == "charlm":
        return float(np.concatenate(bits).mean())
    return float(np.concatenate(correct).mean())


def attention_density(model, seq_len, winners=None):
    """Mean fraction of visible keys each query attends to (causal).

    Dense attention: 1. k-WTA: ``min(topk, i + 1) / (i + 1)`` averaged over positions ``i``, or,
    with ``winners`` (the per-layer ``(B, H, L, topk)`` winners of ``model(x, return_winners=True)``,
    -1 padded), the measured fraction: a sparse-code query may have fewer winners than ``topk``.
    """
    if model.config["attention"] == "dense":
        return 1.0
    visible = np.arange(1, seq_len + 1)
    if winners is None:
        return float(np.mean(np.minimum(model.config["topk"], visible) / visible))
    counts = np.stack([(np.asarray(w) >= 0).sum(-1) for w in winners])       # (layers, B, H, L)
    return float(np.mean(counts / visible[:counts.shape[-1]]))


@torch.no_grad()
def long_context_touched(model, task, length=4096):
    """Fraction of causal query-key pairs the event-driven kernel touches on the trained sparse
    codes at sequence length ``length`` (None for other models).

    The model's codes of ``length // seq_len`` consecutive evaluation windows are concatenated
    into one sequence per layer and head (the model cannot attend past ``max_len``, but its codes
    are what a long key cache would hold) and passed to :func:`hdc.attention.kwta_select`; the
    touched pairs of every layer and head over their causal pairs. None also when the task has
    fewer than ``length // seq_len`` evaluation windows.
    """
    if model.config["code"] != "sparse":
        return None
    from ..attention import kwta_select
    from ..sparse import SparseHV
    c = model.config
    windows = np.concatenate([x for x, _, _ in task.eval_batches()])
    per_seq = max(1, length // windows.shape[1])
    n_seq = windows.shape[0] // per_seq
    if n_seq == 0:
        return None
    logits = {}
    hooks = [getattr(b.attn, f"{name}_proj").register_forward_hook(
        lambda mod, inp, out, key=(i, name): logits.__setitem__(key, out))
        for i, b in enumerate(model.blocks) for name in ("q", "k")]
    model.eval()
    touched = pairs = 0
    try:
        for s in range(n_seq):
            model(torch.from_numpy(windows[s * per_seq:(s + 1) * per_seq]))
            for i in range(len(model.blocks)):
                codes = []
                for name in ("q", "k"):         # (windows, L, H * blocks * block_size) -> (H, n, blocks)
                    t = logits[(i, name)].unflatten(-1, (c["n_heads"], c["blocks"], c["block_size"]))
                    idx = t.argmax(-1).permute(2, 0, 1, 3).reshape(c["n_heads"], -1, c["blocks"])
                    codes.append(SparseHV(idx.numpy().astype(np.uint32), c["block_size"]))
                n = codes[0].indices.shape[1]
                _, _, t = kwta_select(codes[0], codes[1], min(c["topk"], n), causal=True,
                                      return_touched=True)
                touched += t
                pairs += c["n_heads"] * n * (n + 1) // 2
    finally:
        for h in hooks:
            h.remove()
    return touched / pairs


def measure(model, task, train_info=None, flips=(0.01, 0.05, 0.1), n_robust=16):
    """Everything ``hdc train`` reports: quality, size, time, density, cache, export, robustness."""
    metrics = dict(evaluate(model, task))
    metrics["parameters"] = model.n_parameters()
    if train_info:
        metrics.update(train_info)
    metrics["key_cache_bytes_per_token"] = model.key_cache_bytes_per_token()
    metrics["active_voters_per_bit"] = model.head.active_voters() if model.config["head"] == "voter" else None
    x, y, mask = task.eval_batches()[0]
    xs, ys, ms = x[:n_robust], y[:n_robust], mask[:n_robust]
    xt = torch.from_numpy(xs)
    with torch.no_grad():
        model(xt[:1])                                 # warm-up: first calls allocate and dispatch
        t0 = time.perf_counter()
        ref, win = model(xt, return_winners=True)
        metrics["torch_inference_ms_per_seq"] = (time.perf_counter() - t0) * 1e3 / len(xs)
        metrics["attention_density"] = attention_density(model, xs.shape[1], win)
        ref64, win64 = copy.deepcopy(model).double()(xt, return_winners=True)
    packed = model.export()
    packed(xs[:1])                                    # compile the kernels before timing
    t0 = time.perf_counter()
    out, pwin = packed(xs, return_winners=True)
    metrics["packed_inference_ms_per_seq"] = (time.perf_counter() - t0) * 1e3 / len(xs)
    work = {}
    packed(xs, stats=work)
    metrics["pairs_touched_fraction"] = work["pairs_touched_fraction"]
    metrics["ffn_density"] = work["ffn_density"]
    metrics["pairs_touched_fraction_4096"] = long_context_touched(model, task, 4096)
    # the packed model computes in float64: exact against the float64 evaluation of the weights;
    # against the float32 forward a projection within rounding of 0 can flip a code bit
    metrics["export_max_abs_diff"] = float(np.abs(out - ref64.numpy()).max())
    metrics["export_winners_identical"] = all(
        (a is None and b is None) or (a is not None and b is not None and np.array_equal(a.numpy(), b))
        for a, b in zip(win64, pwin))
    metrics["export_max_abs_diff_float32"] = float(np.abs(out - ref.numpy()).max())
    same = [(a.numpy() == b).mean() for a, b in zip(win, pwin) if a is not None]
    metrics["export_winner_agreement_float32"] = float(np.mean(same)) if same else None
    robust = {}
    batches = [(xs, ys, ms)]
    robust["clean"] = _packed_metric(packed, task, batches)
    if model.config["attention"] == "kwta":
        for f in flips:
            robust[f"key_bits_{f:g}"] = _packed_metric(packed, task, batches, key_flip=f)
    if model.config["head"] == "voter":
        for f in flips:
            robust[f"voters_{f:g}"] = _packed_metric(packed, task, batches, voter_flip=f)
    metrics["robustness"] = robust
    metrics["robustness_metric"] = task.metric
    return metrics


def run(task, attention, steps, batch_size=32, lr=3e-3, seed=0, progress=True, checkpoint=None,
        checkpoint_every=0, **model_kw):
    """Build, train and measure one model; returns ``(model, metrics)``."""
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    model = build_model(task, attention, seed=seed, **model_kw)
    info = train(model, task, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=progress,
                 checkpoint=checkpoint, checkpoint_every=checkpoint_every, desc=f"{task.kind}/{attention}")
    metrics = measure(model, task, info)
    metrics["model"] = dict(model.config)
    return model, metrics
