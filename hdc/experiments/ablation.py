"""Ablations: voters ``M`` x temperature of the voter head, and depth, code width and ``topk`` of
the HD-transformer's k-WTA attention.

- ``voters``: stand-alone :class:`hdc.nn.VoterHead` digit classifiers (4 output bits over the 80
  features), ``M`` in 1, 2, 4, ..., 128 and temperatures ``tau`` (the head mixes
  ``softmax(tau * vote)``): ``tau -> 0`` (1e-6: a plain average of the voters), ``0.05 * M`` (the
  default), ``0.5 * M`` and ``tau -> infinity`` (1e6: a hard argmax, one voter per bit): test
  accuracy and active voters per bit (weight > 1e-2).
- ``depth``, ``code_bits``, ``topk``: the HD-transformer on the character LM (Python's docs, 64
  characters of context), one setting changed at a time from the base (2 layers, 64 code bits,
  top-8, d_model 64, 2 heads); ``topk`` also runs the dense twin. Metric: held-out bits per
  character (lower is better).

>>> from hdc.experiments import ablation
>>> res = ablation.run(quick=True, seeds=1, axes=["voters"], sizes=dict(voters=[4], epochs=3), progress=False)
>>> list(res["voters"]["M=4"])
['tau=0 (mean)', 'tau=0.05M (default)', 'tau=0.5M', 'tau=inf (argmax)']
"""
from . import data, models as zoo
from .._validate import check_int
from ._common import (Timer, check_seeds, check_workers, environment, figure, fmt, md_header, md_table, prepare_out,
                      progress_bar, resolve_sizes, run_jobs, summarize, use_one_torch_thread, write_outputs)
from .sparsity import THRESHOLD

__all__ = ["run", "AXES"]

AXES = ("voters", "depth", "code_bits", "topk")
TAUS = {"tau=0 (mean)": lambda M: 1e-6, "tau=0.05M (default)": lambda M: 0.05 * M,
        "tau=0.5M": lambda M: 0.5 * M, "tau=inf (argmax)": lambda M: 1e6}
BASE = dict(n_layers=2, code_bits=64, topk=8, attention="kwta")
SIZES = {True: dict(voters=(1, 4, 16, 64), depth=(1, 2), code_bits=(16, 64), topk=(1, 4, 8, "dense"),
                    lm_steps=120, epochs=30),
         False: dict(voters=(1, 2, 4, 8, 16, 32, 64, 128), depth=(1, 2, 3), code_bits=(16, 32, 64, 128),
                     topk=(1, 2, 4, 8, 16, "dense"), lm_steps=300, epochs=60)}
_PARAM = {"depth": "n_layers", "code_bits": "code_bits", "topk": "topk"}


def _voter_rows(seed, size):
    d = data.digits(seed)
    rows = {}
    for M in size["voters"]:
        for label, tau in TAUS.items():
            m = zoo.VoterClassifier(M, temperature=tau(M), seed=seed, epochs=size["epochs"]).learn(d["Xtr"], d["ytr"])
            rows[(f"M={M}", label)] = {"accuracy": m.score(d["Xte"], d["yte"]),
                                       "active_voters": m.net.active_voters(THRESHOLD)}
    return rows


def _lm_configs(axes, size):
    """Distinct transformer settings needed by ``axes``: {(axis, value): config}."""
    configs = {}
    for axis in axes:
        if axis == "voters":
            continue
        for value in size[axis]:
            cfg = dict(BASE)
            if value == "dense":
                cfg["attention"] = "dense"
            else:
                cfg[_PARAM[axis]] = value
            configs[(axis, str(value))] = cfg
    return configs


def _lm_bpc(cfg, seed, size):
    """One job: bpc and parameter count of the character LM ``cfg`` trained from seed ``seed``."""
    from hdc.nn import training
    from hdc.nn.tasks import CharLM
    task = CharLM(text=data.text("python-docs", 200_000), seq_len=64, seed=seed, max_eval_chars=8192)
    model = training.build_model(task, cfg["attention"], d_model=64, n_layers=cfg["n_layers"], n_heads=2,
                                 code_bits=cfg["code_bits"], topk=cfg["topk"], seed=seed)
    training.train(model, task, steps=size["lm_steps"], batch_size=32, warmup=20, seed=seed, progress=False)
    return {"bpc": training.evaluate(model, task)["bpc"], "parameters": model.n_parameters()}


def _job(kind, seed, size, cfg=None):
    """One job: the voter rows (``kind="voters"``) or one LM config's numbers, for one seed."""
    return _voter_rows(seed, size) if kind == "voters" else _lm_bpc(cfg, seed, size)


def run(quick=False, seeds=3, out=None, force=False, progress=True, axes=None, sizes=None, command=None,
        workers=1):
    """Run the ablations; returns the result dict (and writes it to ``out`` if given).

    ``axes``: a subset of :data:`AXES`; ``sizes``: overrides of :data:`SIZES` (e.g. the values of
    ``voters``, default 1, 2, 4, ..., 128; quick: 1, 4, 16, 64); ``workers``: processes for the
    (setting, seed) jobs (None: one per core); the numbers do not depend on it.
    """
    seeds = check_seeds(seeds)
    workers = check_workers(workers)
    axes = list(AXES if axes is None else axes)
    if not axes or any(a not in AXES for a in axes):
        raise ValueError(f"axes must be a non-empty list from {AXES}, got {axes}")
    size = resolve_sizes(SIZES, quick, sizes)
    size["voters"] = tuple(check_int(m, "voters", low=1, high=4096) for m in size["voters"])
    out = prepare_out(out, force)
    use_one_torch_thread()
    configs = _lm_configs(axes, size)
    distinct = {tuple(sorted(c.items())): c for c in configs.values()}      # the shared base runs once
    jobs = [("lm", seed, size, cfg) for cfg in distinct.values() for seed in range(seeds)]
    jobs += [("voters", seed, size) for seed in range(seeds)] if "voters" in axes else []
    with Timer() as timer, progress_bar(len(jobs), "ablation", progress) as bar:
        done = run_jobs(_job, jobs, workers, bar,
                        describe=lambda job: f"{job[0]} seed {job[1]}")
    lm = {(tuple(sorted(job[3].items())), job[1]): out for job, out in zip(jobs, done) if job[0] == "lm"}
    voters = {job[1]: out for job, out in zip(jobs, done) if job[0] == "voters"}
    raw = {}
    for seed in range(seeds):
        if "voters" in axes:
            for (M, tau), values in voters[seed].items():
                for metric, v in values.items():
                    raw.setdefault("voters", {}).setdefault(M, {}).setdefault(tau, {}).setdefault(
                        metric, []).append(v)
        for (axis, value), cfg in configs.items():
            for metric, v in lm[tuple(sorted(cfg.items())), seed].items():
                raw.setdefault(axis, {}).setdefault(value, {}).setdefault(metric, []).append(v)
    result = {"experiment": "ablation", "quick": bool(quick), "seeds": seeds, "workers": workers,
              "command": command or f"hdc experiment ablation{' --quick' if quick else ''} --seeds {seeds}",
              "config": {"axes": axes, "base": BASE, **{k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in size.items()}},
              "seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "environment": environment()}
    for axis, groups in raw.items():
        if axis == "voters":
            result[axis] = {M: {tau: {m: summarize(v) for m, v in ms.items()} for tau, ms in taus.items()}
                            for M, taus in groups.items()}
        else:
            result[axis] = {value: {m: summarize(v) for m, v in ms.items()} for value, ms in groups.items()}
    result["files"] = [str(p) for p in write_outputs(result, out, markdown, plot)]
    return result


def markdown(result):
    lines = [md_header(result)]
    if "voters" in result:
        taus = list(TAUS)
        lines += ["\n## Voter head: test accuracy (active voters per bit) on digits\n",
                  md_table(["M"] + taus, [[M] + [f"{fmt(r[t]['accuracy'])} ({r[t]['active_voters']['mean']:.1f})"
                                                 for t in taus] for M, r in result["voters"].items()])]
    for axis in ("depth", "code_bits", "topk"):
        if axis in result:
            lines += [f"\n## {axis}: held-out bits per character (base: {result['config']['base']})\n",
                      md_table([axis, "bpc", "parameters"],
                               [[v, fmt(r["bpc"]), f"{r['parameters']['mean']:,.0f}"]
                                for v, r in result[axis].items()])]
    return "\n".join(lines) + "\n"


def plot(result, out):
    paths = []
    if "voters" in result:
        path = out / "ablation_voters.png"
        with figure(path, ncols=2) as (fig, (a1, a2)):
            Ms = list(result["voters"])
            x = [int(M.split("=")[1]) for M in Ms]
            for tau in TAUS:
                a1.plot(x, [result["voters"][M][tau]["accuracy"]["mean"] for M in Ms], marker="o", label=tau)
                a2.plot(x, [result["voters"][M][tau]["active_voters"]["mean"] for M in Ms], marker="o", label=tau)
            a1.set(xscale="log", xlabel="voters M", ylabel="test accuracy", title="voter head (digits)")
            a2.set(xscale="log", yscale="log", xlabel="voters M", ylabel="active voters per bit")
            a1.legend(fontsize=7)
        paths.append(path)
    lm_axes = [a for a in ("depth", "code_bits", "topk") if a in result]
    if lm_axes:
        path = out / "ablation_transformer.png"
        with figure(path, ncols=len(lm_axes), size=(3.6, 3.0)) as (fig, axes):
            for ax, axis in zip(axes, lm_axes):
                values = list(result[axis])
                mean = [result[axis][v]["bpc"]["mean"] for v in values]
                std = [result[axis][v]["bpc"]["std"] for v in values]
                ax.errorbar(range(len(values)), mean, yerr=std, marker="o", capsize=2)
                ax.set(xticks=range(len(values)), xticklabels=values, xlabel=axis, title=axis)
            axes[0].set_ylabel("held-out bpc")
        paths.append(path)
    return paths
