"""Forgetting: does a model keep old tasks after learning new ones?

Scenarios (see :mod:`hdc.experiments.data`):

- ``split``: class-incremental split digits, 5 tasks of 2 classes; every prediction is among all
  10 classes (no task id at test time);
- ``permuted``: permuted digits, ``n_permuted`` tasks of all 10 classes, each under its own fixed
  input permutation (task 0 unpermuted);
- ``languages``: the character LM trained on one text, then on another (default: Python's docs,
  then German manual pages), with one shared character vocabulary; the accuracy is next-character
  accuracy on each text's held-out tail (bits per character are reported too).

Models (digits): ``hdc_majority`` (centroid classifier, majority of exact counts: old prototypes
never change), ``hdc_retrained`` (the same plus 2 retraining epochs, margin 0, on each new task's data),
``hdc_clusters`` (8 prototypes per class from k-means in Hamming space within the class; a task
only adds prototypes), all with :data:`~hdc.experiments.models.HDC_DIM` bits,
``mlp`` (80-64-10 ReLU, float32), ``mlp_kwta`` (the same with k-WTA, 8 of 64 hidden units),
``transformer_linear`` / ``transformer_voter`` (HD-transformer with k-WTA attention on the 64
pixel tokens, linear or voter head). Languages: the two transformers. Each model trains on a
task's data only, with a fresh optimiser per task. Metrics: :func:`continual_metrics` (ACC, BWT,
F) per seed, then mean and spread over seeds; the accuracy matrix ``R`` is kept.

>>> from hdc.experiments import forgetting
>>> res = forgetting.run(quick=True, seeds=1, scenarios=["split"], models=["hdc_majority"],
...                      progress=False)
>>> m = res["scenarios"]["split"]["hdc_majority"]["metrics"]
>>> m["ACC"]["mean"] > 0.8
True
"""
import numpy as np

from . import data, models as zoo
from ._common import (Timer, check_seeds, check_workers, environment, figure, fmt, md_header, md_table, prepare_out,
                      progress_bar, resolve_sizes, run_jobs, summarize, use_one_torch_thread, write_outputs)
from .metrics import continual_metrics

__all__ = ["run", "SCENARIOS", "DIGIT_MODELS", "LANGUAGE_MODELS"]

SCENARIOS = ("split", "permuted", "languages")
DIGIT_MODELS = ("hdc_majority", "hdc_retrained", "hdc_clusters", "mlp", "mlp_kwta", "transformer_linear",
                "transformer_voter")
LANGUAGE_MODELS = ("transformer_linear", "transformer_voter")
SIZES = {True: dict(mlp_epochs=15, transformer_steps=60, lm_steps=100, lm_chars=60_000, n_permuted=5),
         False: dict(mlp_epochs=30, transformer_steps=200, lm_steps=400, lm_chars=200_000, n_permuted=5)}


def _digit_model(name, seed, size):
    if name == "hdc_majority":
        return zoo.HDCCentroid(seed=seed)
    if name == "hdc_retrained":
        return zoo.HDCCentroid(epochs=2, seed=seed)
    if name == "hdc_clusters":
        return zoo.HDCClusters(per_class=8, seed=seed)
    if name == "mlp":
        return zoo.MLP(hidden=64, seed=seed, epochs=size["mlp_epochs"])
    if name == "mlp_kwta":
        return zoo.MLP(hidden=64, kwta=8, seed=seed, epochs=size["mlp_epochs"])
    head = name.split("_")[1]
    return zoo.DigitTransformer(head=head, n_voters=16, seed=seed, steps=size["transformer_steps"])


def _digits_matrix(name, scenario, seed, size):
    d = data.digits(seed)
    tasks = data.split_tasks(d) if scenario == "split" else data.permuted_tasks(d, size["n_permuted"], seed)
    inputs = data.task_pixels if name.startswith("transformer") else data.task_inputs
    model = _digit_model(name, seed, size)
    R = np.zeros((len(tasks), len(tasks)))
    for i, task in enumerate(tasks):
        model.learn(*inputs(d, task, "train"))
        for j, other in enumerate(tasks):
            R[i, j] = model.score(*inputs(d, other, "test"))
    return R, None


def _language_matrix(name, texts, seed, size):
    from hdc.nn import training
    from hdc.nn.tasks import CharLM
    corpora = [data.text(t, size["lm_chars"]) for t in texts]
    chars = sorted(set("".join(corpora)))
    tasks = [CharLM(text=c, seq_len=64, seed=seed, chars=chars, max_eval_chars=8192) for c in corpora]
    model = training.build_model(tasks[0], "kwta", d_model=64, n_layers=2, n_heads=2, code_bits=64, topk=8,
                                 head=name.split("_")[1], n_voters=16, seed=seed)
    R, B = np.zeros((len(tasks),) * 2), np.zeros((len(tasks),) * 2)
    for i, task in enumerate(tasks):
        training.train(model, task, steps=size["lm_steps"], batch_size=32, lr=3e-3, warmup=20,
                       seed=seed * 100 + i, progress=False)
        for j, other in enumerate(tasks):
            m = training.evaluate(model, other)
            R[i, j], B[i, j] = m["accuracy"], m["bpc"]
    return R, B


def _matrix(scenario, name, seed, size, texts):
    """One job: the accuracy matrix ``R`` (and bits per character, or None) of one model and seed."""
    if scenario == "languages":
        return _language_matrix(name, texts, seed, size)
    return _digits_matrix(name, scenario, seed, size)


def _check(seeds, scenarios, models):
    seeds = check_seeds(seeds)
    scenarios = list(SCENARIOS if scenarios is None else scenarios)
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad or not scenarios:
        raise ValueError(f"scenarios must be a non-empty list from {SCENARIOS}, got {scenarios}")
    models = list(DIGIT_MODELS if models is None else models)
    bad = [m for m in models if m not in DIGIT_MODELS]
    if bad or not models:
        raise ValueError(f"models must be a non-empty list from {DIGIT_MODELS}, got {models}")
    return seeds, scenarios, models


def run(quick=False, seeds=3, out=None, force=False, progress=True, scenarios=None, models=None,
        texts=("python-docs", "german-man"), sizes=None, command=None, workers=1):
    """Run the forgetting experiment; returns the result dict (and writes it to ``out`` if given).

    ``workers``: processes for the (scenario, model, seed) jobs (None: one per core); the
    numbers do not depend on it.

    ``scenarios`` / ``models``: subsets of :data:`SCENARIOS` / :data:`DIGIT_MODELS` (the
    languages scenario runs the transformer models among them). ``texts``: two or more names from
    :data:`hdc.experiments.data.TEXTS`, learned in that order.
    """
    seeds, scenarios, models = _check(seeds, scenarios, models)
    workers = check_workers(workers)
    texts = list(texts)
    if len(texts) < 2 or any(t not in data.TEXTS for t in texts):
        raise ValueError(f"texts must name at least two corpora from {data.TEXTS}, got {texts}")
    out = prepare_out(out, force)
    size = resolve_sizes(SIZES, quick, sizes)
    jobs = [(s, m) for s in scenarios for m in models if s != "languages" or m in LANGUAGE_MODELS]
    if not jobs:
        raise ValueError(f"the languages scenario needs a model from {LANGUAGE_MODELS}, got {models}")
    result = {"experiment": "forgetting", "quick": bool(quick), "seeds": seeds,
              "command": command or f"hdc experiment forgetting{' --quick' if quick else ''} --seeds {seeds}",
              "config": {**size, "scenarios": scenarios, "models": models, "texts": texts},
              "scenarios": {s: {} for s in scenarios}}
    use_one_torch_thread()
    # longest first (texts, then transformers), so that the last jobs to start are short ones
    order = sorted(((s, m, seed) for s, m in jobs for seed in range(seeds)),
                   key=lambda job: (job[0] != "languages", not job[1].startswith("transformer")))
    with Timer() as timer, progress_bar(len(order), "forgetting", progress) as bar:
        matrices = run_jobs(_matrix, [(s, m, seed, size, tuple(texts)) for s, m, seed in order], workers, bar,
                            describe=lambda job: f"{job[0]}/{job[1]} seed {job[2]}")
    done = dict(zip(order, matrices))
    for scenario, name in jobs:
        runs = [{"R": R.tolist(), "bpc": None if B is None else B.tolist(), "metrics": continual_metrics(R)}
                for R, B in (done[scenario, name, seed] for seed in range(seeds))]
        result["scenarios"][scenario][name] = _summarize_runs(runs)
    result["seconds"], result["cpu_seconds"], result["workers"] = timer.seconds, timer.cpu_seconds, workers
    result["environment"] = environment()
    result["targets"] = _targets(result)
    result["files"] = [str(p) for p in write_outputs(result, out, markdown, plot)]
    return result


def _summarize_runs(runs):
    R = np.array([r["R"] for r in runs])
    entry = {"R_mean": R.mean(0).tolist(), "R_std": (R.std(0, ddof=1) if len(runs) > 1 else 0 * R[0]).tolist(),
             "metrics": {k: summarize([r["metrics"][k] for r in runs]) for k in ("ACC", "BWT", "F")},
             "runs": runs}
    if runs[0]["bpc"] is not None:
        entry["bpc_mean"] = np.mean([r["bpc"] for r in runs], 0).tolist()
    return entry


def _targets(result):
    """The issue's split-digits target, checked on every seed, for each binary HDC model run."""
    split = result["scenarios"].get("split", {})
    if "mlp" not in split:
        return {}
    targets = {}
    for name in (n for n in DIGIT_MODELS if n.startswith("hdc_") and n in split):
        runs = [r["metrics"] for r in split[name]["runs"]]
        worst_acc, worst_bwt = min(r["ACC"] for r in runs), max(abs(r["BWT"]) for r in runs)
        targets[f"split: {name} ACC >= 0.90 and abs(BWT) <= 0.05 on every seed"] = {
            "min_ACC": worst_acc, "max_abs_BWT": worst_bwt, "met": worst_acc >= 0.90 and worst_bwt <= 0.05}
    bwt = split["mlp"]["metrics"]["BWT"]["mean"]
    targets["split: mlp shows forgetting (BWT <= -0.5) in the same run"] = {"BWT": bwt, "met": bwt <= -0.5}
    return targets


def markdown(result):
    lines = [md_header(result)]
    for scenario, entries in result["scenarios"].items():
        lines.append(f"\n## {scenario}\n")
        rows = [[name, fmt(e["metrics"]["ACC"]), fmt(e["metrics"]["BWT"]), fmt(e["metrics"]["F"]),
                 " / ".join(f"{v:.2f}" for v in e["R_mean"][-1])] for name, e in entries.items()]
        lines.append(md_table(["model", "ACC", "BWT", "F", "final accuracy per task"], rows))
        bpc = [(n, e["bpc_mean"]) for n, e in entries.items() if "bpc_mean" in e]
        if bpc:
            lines.append("\nBits per character, row = after training on text i, column = text j (mean):\n")
            lines.append(md_table(["model", "bpc matrix"],
                                  [[n, "; ".join(" ".join(f"{v:.2f}" for v in row) for row in B)] for n, B in bpc]))
    if result["targets"]:
        lines.append("\n## Targets\n")
        lines.append(md_table(["target", "measured", "met"],
                              [[k, ", ".join(f"{a} {b:.3f}" for a, b in v.items() if a != "met"), v["met"]]
                               for k, v in result["targets"].items()]))
    return "\n".join(lines) + "\n"


def plot(result, out):
    """One PNG per scenario: accuracy on each task after each task, one panel per model."""
    paths = []
    for scenario, entries in result["scenarios"].items():
        path = out / f"forgetting_{scenario}.png"
        names = list(entries)
        ncols = min(3, len(names))
        nrows = -(-len(names) // ncols)
        with figure(path, ncols, nrows, size=(3.6, 2.8)) as (fig, axes):
            for ax, name in zip(axes, names):
                R = np.array(entries[name]["R_mean"])
                T = len(R)
                for j in range(T):
                    ax.plot(range(j, T), R[j:, j], marker="o", ms=3, label=f"task {j}")
                seen = [R[i, :i + 1].mean() for i in range(T)]
                ax.plot(range(T), seen, "k--", lw=2, label="mean over seen")
                ax.set(title=name, xlabel="after task", ylim=(-0.02, 1.02), xticks=range(T))
            axes[0].set_ylabel("accuracy")
            axes[0].legend(fontsize=6)
            for ax in axes[len(names):]:
                ax.axis("off")
            fig.suptitle(f"forgetting: {scenario}")
        paths.append(path)
    return paths
