"""Experiments on what sparse binary models keep and lose: ``hdc experiment NAME`` / ``hdc.experiments``.

- :mod:`~hdc.experiments.forgetting`: continual learning (split / permuted digits, sequential
  languages): ACC, BWT, F and accuracy-after-each-task curves;
- :mod:`~hdc.experiments.biterror`: accuracy when a fraction of stored bits flip;
- :mod:`~hdc.experiments.sparsity`: the fraction of units that matter, layer by layer;
- :mod:`~hdc.experiments.ablation`: voters x temperature, depth, code width and k-WTA ``topk``.

Each ``run(quick=False, seeds=3, out=None, force=False, progress=True, workers=1, ...)`` is
seeded and reproducible, reports mean and spread over seeds, returns a dict and, with ``out``,
writes ``NAME.json``, ``NAME.md`` and PNG plots there. Its independent (model, seed) jobs run in
``workers`` spawned processes (None: one per core) with the same numbers as in one process.
:func:`run` dispatches by name. Needs the ``torch`` extra, scikit-learn (digits) and
matplotlib / tqdm.

>>> import hdc.experiments
>>> hdc.experiments.EXPERIMENTS
('forgetting', 'biterror', 'sparsity', 'ablation')
"""
import importlib

__all__ = ["EXPERIMENTS", "run", "continual_metrics"]

EXPERIMENTS = ("forgetting", "biterror", "sparsity", "ablation")


def run(name, **kwargs):
    """Run experiment ``name`` (one of :data:`EXPERIMENTS`) with its keyword arguments."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {EXPERIMENTS}")
    return importlib.import_module(f"hdc.experiments.{name}").run(**kwargs)


def continual_metrics(R):
    """ACC, BWT and F of an accuracy matrix; see :mod:`hdc.experiments.metrics`."""
    from .metrics import continual_metrics as metrics
    return metrics(R)
