"""Sparsity: the fraction of units that matter, layer by layer, against the dense twin.

- ``voters``: stand-alone :class:`hdc.nn.VoterHead` digit classifiers (4 output bits) over a grid
  of voters ``M`` and temperatures ``tau`` (the head mixes ``softmax(tau * vote)``, so larger
  ``tau`` is sharper; the default is ``0.05 * M``): voters per bit whose weight exceeds
  ``threshold`` (``VoterHead.active_voters``), and how many voters hold 90% of a bit's weight;
- ``attention``: the HD-transformer on the character LM with k-WTA attention and its dense twin
  (same size, seed and steps): per layer, the fraction of visible keys each query attends to
  (k-WTA: its winners; dense: every key gets weight) and the fraction of keys that hold 90% of
  the attention weight;
- ``hidden``: per layer, the fraction of feed-forward hidden units that are active (GELU output
  > 0, as read by the second FFN layer) and the fraction holding 90% of the activation mass, for
  both twins and, where ``HDTransformer`` has ``ffn_topk`` (issue 13), a third twin with a k-WTA
  feed-forward (else that row says "pending"); and the digits MLP (ReLU) against its k-WTA twin.

>>> from hdc.experiments import sparsity
>>> res = sparsity.run(quick=True, seeds=1, parts=["voters"], progress=False)
>>> sorted(res["voters"])[:2]
['M=16', 'M=4']
"""
import numpy as np

from . import data, models as zoo
from ._common import (Timer, check_seeds, check_workers, environment, figure, fmt, md_header, md_table, prepare_out,
                      progress_bar, resolve_sizes, run_jobs, summarize, use_one_torch_thread, write_outputs)

__all__ = ["run", "PARTS", "mass_fraction"]

PARTS = ("voters", "attention", "hidden")
SIZES = {True: dict(voters=(4, 16), tau_factors=(0.01, 0.05, 0.5), lm_steps=150, mlp_epochs=20, epochs=30),
         False: dict(voters=(4, 16, 64), tau_factors=(0.01, 0.05, 0.2, 1.0), lm_steps=400, mlp_epochs=30,
                     epochs=60)}
THRESHOLD = 1e-2


def mass_fraction(weights, share=0.9):
    """Mean over rows of the fraction of entries needed to hold ``share`` of the row's total.

    ``weights`` ``(..., n)`` non-negative. Rows with total 0 count as 0.

    >>> float(mass_fraction(np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])))
    0.75
    """
    w = np.asarray(weights, np.float64)
    w = w.reshape(-1, w.shape[-1])
    total = w.sum(-1, keepdims=True)
    s = -np.sort(-w, axis=-1).cumsum(-1)
    need = (s < share * total - 1e-12 * total).sum(-1) + 1
    return float(np.mean(np.where(total[:, 0] > 0, need / w.shape[-1], 0.0)))


def _voters(seed, size):
    d = data.digits(seed)
    rows = {}
    for M in size["voters"]:
        for f in size["tau_factors"]:
            m = zoo.VoterClassifier(M, temperature=f * M, seed=seed, epochs=size["epochs"]).learn(d["Xtr"], d["ytr"])
            w = m.net.vote_weights().detach().numpy()
            rows[(f"M={M}", f"tau={f:g}M")] = {"accuracy": m.score(d["Xte"], d["yte"]),
                                               "active_voters": m.net.active_voters(THRESHOLD),
                                               "active_fraction": m.net.active_voters(THRESHOLD) / M,
                                               "mass90_fraction": mass_fraction(w)}
    return rows


def _lm_stats(model, task):
    """Per layer: attended-key fraction, 90%-mass key fraction, FFN active and 90%-mass fractions."""
    import torch
    captured = {}
    hooks = []
    for i, block in enumerate(model.blocks):        # the inputs of the attention and of the 2nd FFN layer
        for name, module in (("att", block.attn), ("ff", block.ff2)):
            hooks.append(module.register_forward_pre_hook(
                lambda mod, args, key=(name, i): captured.__setitem__(key, args[0])))
    x = torch.from_numpy(task.eval_batches()[0][0][:16])
    try:
        with torch.no_grad():
            model(x)
            rows = []
            for i, block in enumerate(model.blocks):
                att, h = block.attn, captured[("att", i)]
                weights = _attention_weights(att, h).numpy()             # (B, H, L, L), rows sum to 1
                L = weights.shape[-1]
                visible = np.arange(1, L + 1)[:, None] >= np.arange(1, L + 1)[None, :]
                n_visible = visible.sum(-1)
                attended = ((weights > 0) & visible).sum(-1) / n_visible
                mass = [mass_fraction(weights[..., q, :q + 1]) for q in range(L)]
                hidden = captured[("ff", i)].numpy()               # what the second FFN layer reads
                rows.append({"keys_attended": float(attended.mean()), "keys_mass90": float(np.mean(mass)),
                             "ffn_active": float((hidden > 0).mean()),
                             "ffn_mass90": mass_fraction(np.abs(hidden))})
    finally:
        for hk in hooks:
            hk.remove()
    return rows


def _attention_weights(att, x):
    """The attention weights ``(B, H, L, L)`` of ``HammingKWTAAttention`` ``att`` on its input ``x``."""
    import torch
    from hdc.nn.modules import kwta_select, ste_sign
    n = x.shape[1]
    q, k = att._split(att.q_proj(x), att.code_bits), att._split(att.k_proj(x), att.code_bits)
    if att.attention == "dense":
        scores = q @ k.transpose(-1, -2) / att.code_bits ** 0.5
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        return scores.softmax(-1)
    scores = (att.code_bits + ste_sign(q) @ ste_sign(k).transpose(-1, -2)) * 0.5
    idx, valid = kwta_select(scores, att.topk, att.causal)
    temp = att.log_temperature.exp().view(1, -1, 1, 1) if att.learn_temperature else att.temperature
    picked = (scores.gather(-1, idx.clamp(min=0)) / temp).masked_fill(~valid, float("-inf")).softmax(-1)
    return torch.zeros_like(scores).scatter_add(-1, idx.clamp(min=0), picked * valid)


def _attention_hidden(seed, size):
    from hdc.nn import training
    from hdc.nn.tasks import CharLM
    task = CharLM(text=data.text("python-docs", 200_000), seq_len=64, seed=seed, max_eval_chars=4096)
    rows = {}
    for variant, extra in _lm_variants():
        model = training.build_model(task, variant.split("+")[0], d_model=64, n_layers=2, n_heads=2, code_bits=64,
                                     topk=8, seed=seed)
        if extra:                       # the k-WTA feed-forward twin: same seed, one more setting
            import torch
            from hdc.nn import HDTransformer
            torch.manual_seed(seed)
            model = HDTransformer(**{**model.config, **extra})
        training.train(model, task, steps=size["lm_steps"], batch_size=32, warmup=20, seed=seed, progress=False)
        bpc = training.evaluate(model, task)["bpc"]
        for layer, stats in enumerate(_lm_stats(model, task)):
            rows[(variant, f"layer {layer}")] = {"bpc": bpc, **stats}
    return rows


def _lm_variants():
    """k-WTA, its dense twin and, when this build's HDTransformer has ``ffn_topk``, k-WTA with a
    k-WTA feed-forward (the 32 largest of 256 hidden units per token)."""
    import inspect
    from hdc.nn import HDTransformer
    variants = [("kwta", None), ("dense", None)]
    if "ffn_topk" in inspect.signature(HDTransformer.__init__).parameters:
        variants.append(("kwta+ffn_topk", {"ffn_topk": 32}))
    return variants


def _mlp_hidden(seed, size):
    import torch
    d = data.digits(seed)
    rows = {}
    for name, kwta in (("mlp", None), ("mlp_kwta", 8)):
        m = zoo.MLP(hidden=64, kwta=kwta, seed=seed, epochs=size["mlp_epochs"]).learn(d["Xtr"], d["ytr"])
        with torch.no_grad():
            h = m.hidden(m._inputs(d["Xte"])).numpy()
        rows[(name, "hidden")] = {"accuracy": m.score(d["Xte"], d["yte"]), "active": float((h > 0).mean()),
                                  "mass90": mass_fraction(h)}
    return rows


def _call(fn, seed, size):
    """One job: ``fn(seed, size)`` (a module-level function, so that it pickles into a worker)."""
    return fn(seed, size)


def run(quick=False, seeds=3, out=None, force=False, progress=True, parts=None, sizes=None, command=None,
        workers=1):
    """Run the sparsity experiment; returns the result dict (and writes it to ``out`` if given).

    ``parts``: a subset of :data:`PARTS`; ``workers``: processes for the (part, seed) jobs (None:
    one per core); the numbers do not depend on it.
    """
    seeds = check_seeds(seeds)
    parts = list(PARTS if parts is None else parts)
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty list from {PARTS}, got {parts}")
    out = prepare_out(out, force)
    use_one_torch_thread()
    size = resolve_sizes(SIZES, quick, sizes)
    jobs = [("voters", _voters)] * ("voters" in parts) + [("attention", _attention_hidden)] * (
        "attention" in parts or "hidden" in parts) + [("hidden_mlp", _mlp_hidden)] * ("hidden" in parts)
    workers = check_workers(workers)
    runs = sorted(((part, fn, seed) for part, fn in jobs for seed in range(seeds)),   # the transformers first
                  key=lambda run: run[0] != "attention")
    with Timer() as timer, progress_bar(len(runs), "sparsity", progress) as bar:
        rows = run_jobs(_call, [(fn, seed, size) for _, fn, seed in runs], workers, bar,
                        describe=lambda job: f"{job[0].__name__.strip('_')} seed {job[1]}")
    raw = {}
    by_seed = {(part, seed): part_rows for (part, _, seed), part_rows in zip(runs, rows)}
    for seed in range(seeds):
        for part, _ in jobs:
            for key, values in by_seed[part, seed].items():
                for metric, v in values.items():
                    raw.setdefault(part, {}).setdefault(key[0], {}).setdefault(key[1], {}).setdefault(
                        metric, []).append(v)
    result = {"experiment": "sparsity", "quick": bool(quick), "seeds": seeds, "workers": workers,
              "command": command or f"hdc experiment sparsity{' --quick' if quick else ''} --seeds {seeds}",
              "config": {**{k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
                         "parts": parts, "threshold": THRESHOLD},
              "seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "environment": environment()}
    if "attention" in raw and "kwta+ffn_topk" not in raw["attention"]:
        result["ffn_topk"] = "pending: this build's HDTransformer has no ffn_topk (issue 13)"
    for part, groups in raw.items():
        result[part] = {g: {row: {m: summarize(v) for m, v in metrics.items()} for row, metrics in rows.items()}
                        for g, rows in groups.items()}
    result["files"] = [str(p) for p in write_outputs(result, out, markdown, plot)]
    return result


def markdown(result):
    lines = [md_header(result)]
    if "voters" in result:
        lines += [f"\n## Voters per bit that matter (weight > {result['config']['threshold']:g}), digits\n",
                  md_table(["M", "tau", "accuracy", "active voters", "active / M", "voters for 90% weight / M"],
                           [[M, tau, fmt(r["accuracy"]), fmt(r["active_voters"], 2), fmt(r["active_fraction"]),
                             fmt(r["mass90_fraction"])] for M, rows in result["voters"].items()
                            for tau, r in rows.items()])]
    if "attention" in result:
        lines += ["\n## HD-transformer on the character LM: k-WTA against the dense twin\n",
                  md_table(["attention", "layer", "bpc", "keys attended", "keys for 90% weight",
                            "FFN units active", "FFN units for 90% mass"],
                           [[a, layer, fmt(r["bpc"]), fmt(r["keys_attended"]), fmt(r["keys_mass90"]),
                             fmt(r["ffn_active"]), fmt(r["ffn_mass90"])] for a, rows in result["attention"].items()
                            for layer, r in rows.items()])
                  + (f"\n| kwta+ffn_topk | all | {result['ffn_topk']} | | | | |" if "ffn_topk" in result else "")]
    if "hidden_mlp" in result:
        lines += ["\n## Digits MLP hidden layer: ReLU against k-WTA (8 of 64)\n",
                  md_table(["model", "accuracy", "hidden units active", "units for 90% mass"],
                           [[name, fmt(r["accuracy"]), fmt(r["active"]), fmt(r["mass90"])]
                            for name, rows in result["hidden_mlp"].items() for r in rows.values()])]
    return "\n".join(lines) + "\n"


def plot(result, out):
    paths = []
    if "voters" in result:
        path = out / "sparsity_voters.png"
        with figure(path, ncols=2) as (fig, (a1, a2)):
            for M, rows in result["voters"].items():
                taus = list(rows)
                a1.plot(taus, [rows[t]["active_fraction"]["mean"] for t in taus], marker="o", label=M)
                a2.plot(taus, [rows[t]["accuracy"]["mean"] for t in taus], marker="o", label=M)
            a1.set(ylabel="active voters / M", xlabel="temperature", ylim=(0, 1.05), title="voters that matter")
            a2.set(ylabel="test accuracy", xlabel="temperature", title="digits accuracy")
            a1.legend()
        paths.append(path)
    if "attention" in result:
        path = out / "sparsity_layers.png"
        with figure(path, ncols=2) as (fig, (a1, a2)):
            for a, rows in result["attention"].items():
                layers = list(rows)
                a1.plot(layers, [rows[l]["keys_mass90"]["mean"] for l in layers], marker="o", label=f"{a}: 90% weight")
                a1.plot(layers, [rows[l]["keys_attended"]["mean"] for l in layers], marker="s", ls="--",
                        label=f"{a}: attended")
                a2.plot(layers, [rows[l]["ffn_mass90"]["mean"] for l in layers], marker="o", label=f"{a}: 90% mass")
                a2.plot(layers, [rows[l]["ffn_active"]["mean"] for l in layers], marker="s", ls="--",
                        label=f"{a}: active")
            a1.set(ylabel="fraction of visible keys", title="attention", ylim=(0, 1.05))
            a2.set(ylabel="fraction of FFN units", title="feed-forward", ylim=(0, 1.05))
            a1.legend(fontsize=7)
            a2.legend(fontsize=7)
        paths.append(path)
    return paths
