"""Bit errors: accuracy when a fraction ``p`` of a model's stored bits flip (digits, 70/30 split).

Models and what is flipped (``p`` of the stored bits, at distinct random positions unless noted):

- ``hdc_prototypes`` / ``hdc_prototypes_retrained``: the 10 class prototypes
  (:data:`~hdc.experiments.models.HDC_DIM` = 32,768 bits each) of the centroid classifier
  (majority; majority + 10 retraining epochs with margin 0.02); ``hdc_clusters``: the 80
  prototypes of :class:`~hdc.experiments.models.HDCClusters` (8 per class);
  ``hdc_prototypes_10k`` / ``_16k`` / ``_64k``: majority prototypes of 10,000 / 16,384 / 65,536
  bits, the width sweep (the flips' noise on a distance grows as ``sqrt(dim)``, the class gaps as
  ``dim``);
- ``assoc_memory``: the stored codes of an :class:`hdc.AssociativeMemory` holding every training
  sample (1-nearest-neighbour classification);
- ``packed_keys``: the key codes of the exported HD-transformer (``PackedModel(key_flip=p)``:
  each key-code bit flips independently with probability ``p`` in every forward pass);
- ``voters_M16`` / ``voters_M1``: the voters of the HD-transformer's voter head (``voter_flip=p``:
  each voter of each output bit inverted independently with probability ``p``), 16 voters per
  bit and a single voter per bit;
- ``voter_classifier_M16`` / ``voter_classifier_M1``: the same flips on a stand-alone
  :class:`hdc.nn.VoterHead` classifier over the 80 features;
- float baselines: ``mlp_float32_sign`` / ``_exponent`` / ``_mantissa``: a fraction ``p`` of the
  bits of that IEEE-754 field of every float32 weight and bias of the 80-64-10 MLP;
  ``binary_mlp_signs``: the sign bits of a binarised MLP (sign weights x per-layer scale).

Each seed trains every model once; accuracy at each ``p`` is the mean over ``repeats`` flip
draws. The tables give mean ± spread over seeds.

>>> from hdc.experiments import biterror
>>> res = biterror.run(quick=True, seeds=1, models=["hdc_prototypes"], fractions=[0, 0.2], progress=False)
>>> acc = res["models"]["hdc_prototypes"]["accuracy"]
>>> acc["0.2"]["mean"] > acc["0"]["mean"] - 0.05
True
"""
import copy

import numpy as np

import hdc

from . import data, models as zoo
from ._common import (Timer, check_fractions, check_seeds, check_workers, environment, figure, fmt, md_header,
                      md_table, prepare_out, progress_bar, resolve_sizes, run_jobs, summarize, use_one_torch_thread,
                      write_outputs)

__all__ = ["run", "MODELS", "FRACTIONS"]

FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
WIDTHS = {"hdc_prototypes_10k": 10_000, "hdc_prototypes_16k": 16_384, "hdc_prototypes": zoo.HDC_DIM,
          "hdc_prototypes_64k": 65_536}
MODELS = ("hdc_prototypes", "hdc_prototypes_retrained", "hdc_clusters", "hdc_prototypes_10k", "hdc_prototypes_16k",
          "hdc_prototypes_64k", "assoc_memory", "packed_keys",
          "voters_M16", "voters_M1",
          "voter_classifier_M16", "voter_classifier_M1", "mlp_float32_sign", "mlp_float32_exponent",
          "mlp_float32_mantissa", "binary_mlp_signs")
SIZES = {True: dict(repeats=3, transformer_steps=300, mlp_epochs=30),
         False: dict(repeats=10, transformer_steps=400, mlp_epochs=60)}


def _key(p):
    return f"{p:g}"


class _Curves:
    """Accuracy-vs-p functions for one seed; trained models are built once and shared."""

    def __init__(self, seed, size):
        self.seed, self.size, self.d = seed, size, data.digits(seed)
        self.cache = {}

    def _get(self, name, build):
        if name not in self.cache:
            self.cache[name] = build()
        return self.cache[name]

    def _train_xy(self):
        return self.d["Xtr"], self.d["ytr"]

    def curve(self, name, p, rng):
        d, size, seed = self.d, self.size, self.seed
        Xte, yte = d["Xte"], d["yte"]
        if name.startswith("hdc_prototypes"):
            epochs = 10 if name.endswith("retrained") else 0
            m = self._get(name, lambda: _hdc(seed, epochs, *self._train_xy(), dim=WIDTHS.get(name, zoo.HDC_DIM)))
            return m.score_with(zoo.flip_bits(m.clf.prototypes_, p, rng), Xte, yte)
        if name == "hdc_clusters":
            m = self._get(name, lambda: zoo.HDCClusters(seed=seed).learn(*self._train_xy()))
            return m.score_with(zoo.flip_bits(m.prototypes, p, rng), Xte, yte)
        if name == "assoc_memory":
            m = self._get("hdc_prototypes", lambda: _hdc(seed, 0, *self._train_xy()))
            Htr = self._get("codes", lambda: m.encode(d["Xtr"]))
            Hte = self._get("test_codes", lambda: m.encode(Xte))
            memory = hdc.AssociativeMemory(Htr.dim)
            memory.add(zoo.flip_bits(Htr, p, rng), labels=d["ytr"])
            return float(np.mean(memory.search(Hte, k=1)[1][:, 0] == yte))
        if name == "packed_keys" or name.startswith("voters_"):
            head, voters = ("linear", 1) if name == "packed_keys" else ("voter", int(name.split("_M")[1]))
            t, packed = self._get(name, lambda: _transformer(seed, head, voters, size, d))
            flip = {"key_flip": p} if head == "linear" else {"voter_flip": p}
            return t.score_packed(packed, d["pixels_te"], yte, seed=int(rng.integers(2 ** 31)), **flip)
        if name.startswith("voter_classifier"):
            voters = int(name.split("_M")[1])
            m = self._get(name, lambda: zoo.VoterClassifier(voters, seed=seed, epochs=size["mlp_epochs"])
                          .learn(*self._train_xy()))
            import torch
            mask = torch.as_tensor(rng.random((4, voters)) < p)
            return m.score(Xte, yte, voter_flip=mask)
        if name.startswith("mlp_float32"):
            m = self._get("mlp", lambda: zoo.MLP(seed=seed, epochs=size["mlp_epochs"]).learn(*self._train_xy()))
            return _score_float_flipped(m, name.rsplit("_", 1)[1], p, rng, Xte, yte)
        if name == "binary_mlp_signs":
            m = self._get(name, lambda: zoo.MLP(binary=True, seed=seed, epochs=size["mlp_epochs"])
                          .learn(*self._train_xy()))
            import torch
            m.sign_flips = [torch.as_tensor(zoo.flip_bits(_zeros_hv(layer.weight.shape), p, rng).to_bool()
                                            .reshape(layer.weight.shape)) for layer in m.net]
            try:
                return m.score(Xte, yte)
            finally:
                m.sign_flips = None
        raise ValueError(f"unknown model {name!r}")


def _zeros_hv(shape):
    """An all-zero BinaryHV with one row of ``prod(shape)`` bits (``flip_bits`` sets exact counts)."""
    n = int(np.prod(shape))
    return hdc.BinaryHV(np.zeros((1, (n + 63) // 64), np.uint64), n)


def _hdc(seed, epochs, X, y, dim=zoo.HDC_DIM):
    m = zoo.HDCCentroid(dim=dim, seed=seed)
    m.clf.set_params(epochs=epochs, margin=0.02 if epochs else 0.0)
    m.clf.fit(m.encode(X), y)
    return m


def _transformer(seed, head, voters, size, d):
    t = zoo.DigitTransformer(head=head, n_voters=voters, seed=seed, steps=size["transformer_steps"])
    t.learn(d["pixels_tr"], d["ytr"])
    return t, t.model.export()


def _score_float_flipped(mlp, field, p, rng, X, y):
    import torch
    saved = copy.deepcopy(mlp.net.state_dict())
    try:
        with torch.no_grad():
            for param in mlp.net.parameters():
                param.copy_(torch.as_tensor(zoo.flip_float_bits(param.numpy(), p, field, rng)))
        with np.errstate(all="ignore"):
            return mlp.score(X, y)
    finally:
        mlp.net.load_state_dict(saved)


def _groups(models):
    """``models`` as job groups: the models that share a trained model run in one job, the
    transformers (the longest to train) first."""
    shared = {"assoc_memory": "hdc_prototypes", "mlp_float32_exponent": "mlp", "mlp_float32_mantissa": "mlp",
              "mlp_float32_sign": "mlp"}
    groups = {}
    for name in models:
        groups.setdefault(shared.get(name, name), []).append(name)
    return sorted((tuple(g) for g in groups.values()),
                  key=lambda g: not (g[0] == "packed_keys" or g[0].startswith("voters_")))


def _curves(seed, names, size, fractions):
    """One job: ``{model: [accuracy at each p]}`` for one seed; each p averages ``repeats`` flip draws."""
    curves = _Curves(seed, size)
    out = {}
    for name in names:
        rng = np.random.default_rng([seed, 17, MODELS.index(name)])
        out[name] = [float(np.mean([curves.curve(name, p, rng) for _ in range(1 if p == 0 else size["repeats"])]))
                     for p in fractions]
    return out


def run(quick=False, seeds=3, out=None, force=False, progress=True, models=None, fractions=FRACTIONS,
        sizes=None, command=None, workers=1):
    """Run the bit-error experiment; returns the result dict (and writes it to ``out`` if given).

    ``models``: a subset of :data:`MODELS`; ``fractions``: flip fractions in [0, 1]; ``workers``:
    processes for the (seed, model) jobs (None: one per core); the numbers do not depend on it.
    """
    seeds = check_seeds(seeds)
    fractions = check_fractions(fractions)
    models = list(MODELS if models is None else models)
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise ValueError(f"models must be a non-empty list from {MODELS}, got {models}")
    workers = check_workers(workers)
    out = prepare_out(out, force)
    use_one_torch_thread()
    size = resolve_sizes(SIZES, quick, sizes)
    groups = _groups(models)
    jobs = [(seed, names, size, fractions) for names in groups for seed in range(seeds)]
    with Timer() as timer, progress_bar(len(jobs), "biterror", progress) as bar:
        curves = run_jobs(_curves, jobs, workers, bar, describe=lambda job: f"{job[1][0]} seed {job[0]}")
    raw = {m: {_key(p): [] for p in fractions} for m in models}
    for (seed, names, *_), accuracies in sorted(zip(jobs, curves), key=lambda pair: pair[0][0]):
        for name in names:
            for p, acc in zip(fractions, accuracies[name]):
                raw[name][_key(p)].append(acc)
    result = {"experiment": "biterror", "quick": bool(quick), "seeds": seeds, "workers": workers,
              "command": command or f"hdc experiment biterror{' --quick' if quick else ''} --seeds {seeds}",
              "config": {**size, "fractions": list(fractions), "models": models},
              "models": {m: {"accuracy": {k: summarize(v) for k, v in raw[m].items()}, "per_seed": raw[m]}
                         for m in models},
              "seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "environment": environment()}
    result["targets"] = _targets(result)
    result["files"] = [str(p) for p in write_outputs(result, out, markdown, plot)]
    return result


def _loss(result, model, p):
    """Mean over seeds of the accuracy lost at ``p`` against ``p = 0``, in points (percent)."""
    runs = result["models"][model]["per_seed"]
    return 100 * float(np.mean(np.subtract(runs["0"], runs[_key(p)])))


def _targets(result):
    have = result["models"]
    fr = set(result["config"]["fractions"])
    targets = {}
    if "voters_M16" in have and {0.0, 0.1} <= fr:
        loss = _loss(result, "voters_M16", 0.1)
        targets["voter head (M=16) loses <= 1 point at 10% voter flips"] = {"loss_points": loss, "met": loss <= 1}
    if {"voters_M16", "voters_M1"} <= set(have) and 0.2 in fr:
        gap = 100 * (have["voters_M16"]["accuracy"]["0.2"]["mean"] - have["voters_M1"]["accuracy"]["0.2"]["mean"])
        targets["voter head >= 10 points better than M=1 at 20%"] = {"gap_points": gap, "met": gap >= 10}
    if "hdc_prototypes" in have and {0.0, 0.2} <= fr:
        loss = _loss(result, "hdc_prototypes", 0.2)
        targets[f"HDC prototypes ({zoo.HDC_DIM:,} bits) lose <= 2 points at 20% flipped bits"] = {
            "loss_points": loss, "met": loss <= 2}
    return targets


def _widths(result):
    """``[(model, bits)]`` of the width sweep's models in this result, narrowest first (needs p = 0)."""
    if 0.0 not in result["config"]["fractions"]:
        return []
    return sorted(((n, d) for n, d in WIDTHS.items() if n in result["models"]), key=lambda item: item[1])


def markdown(result):
    fractions = result["config"]["fractions"]
    rows = [[name] + [fmt(e["accuracy"][_key(p)]) for p in fractions] for name, e in result["models"].items()]
    lines = [md_header(result), "\nAccuracy (digits test set) against the fraction p of flipped bits:\n",
             md_table(["model"] + [f"p={100 * p:g}%" for p in fractions], rows)]
    widths = _widths(result)
    if len(widths) > 1:
        flipped = [p for p in fractions if p > 0]
        lines += ["\nPrototype width: points of accuracy lost against p = 0 (mean over seeds; majority prototypes):\n",
                  md_table(["bits", "p=0% accuracy"] + [f"lost at p={100 * p:g}%" for p in flipped],
                           [[f"{dim:,}", fmt(result["models"][name]["accuracy"]["0"])]
                            + [f"{_loss(result, name, p):.2f}" for p in flipped] for name, dim in widths])]
    if result["targets"]:
        lines += ["\n## Targets\n", md_table(["target", "measured", "met"], [
            [k, ", ".join(f"{a} {b:.2f}" for a, b in v.items() if a != "met"), v["met"]]
            for k, v in result["targets"].items()])]
    return "\n".join(lines) + "\n"


def plot(result, out):
    path = out / "biterror.png"
    fractions = np.array(result["config"]["fractions"])
    with figure(path, size=(9.5, 5.0)) as (fig, (ax,)):
        import matplotlib
        colors = matplotlib.colormaps["tab20"]
        for i, (name, e) in enumerate(result["models"].items()):
            mean = [e["accuracy"][_key(p)]["mean"] for p in fractions]
            std = [e["accuracy"][_key(p)]["std"] for p in fractions]
            style = "--" if "mlp" in name else "-"
            ax.errorbar(100 * fractions, mean, yerr=std, marker="o", ms=3, ls=style, label=name, capsize=2,
                        color=colors(i % 20))
        ax.set(xlabel="flipped bits p (%)", ylabel="accuracy", title="bit errors (digits)", ylim=(0, 1.02))
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    widths = _widths(result)
    if len(widths) < 2:
        return [path]
    width_path = out / "biterror_widths.png"
    with figure(width_path) as (fig, (ax,)):
        for name, dim in widths:
            ax.plot(100 * fractions, [_loss(result, name, p) for p in fractions], marker="o", ms=3,
                    label=f"{dim:,} bits")
        ax.axhline(2, color="k", ls=":", lw=1, label="target: 2 points at 20%")
        ax.set(xlabel="flipped prototype bits p (%)", ylabel="accuracy lost (points)",
               title="majority prototypes: width vs bit errors")
        ax.legend(fontsize=7)
    return [path, width_path]
