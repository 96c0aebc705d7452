"""Continual-learning metrics from an accuracy matrix (NumPy only).

``R[i, j]`` is the test accuracy on task ``j`` after training on tasks ``0..i`` (``T x T``).
With ``T`` tasks (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory"; Chaudhry et al. 2018,
"Riemannian Walk"):

- average accuracy ``ACC = mean_j R[T-1, j]``;
- backward transfer ``BWT = mean_{j < T-1} (R[T-1, j] - R[j, j])`` (negative: forgetting);
- forgetting ``F = mean_{j < T-1} (max_{l < T-1} R[l, j] - R[T-1, j])`` (Chaudhry's ``f_j^T``
  averaged over the old tasks; >= 0 by construction up to the ``max`` including ``l < j``).

>>> import numpy as np
>>> R = np.array([[0.9, 0.1], [0.5, 0.8]])
>>> continual_metrics(R)
{'ACC': 0.65, 'BWT': -0.4, 'F': 0.4}
"""
import numpy as np

__all__ = ["continual_metrics"]


def continual_metrics(R):
    """``{"ACC", "BWT", "F"}`` of a square accuracy matrix ``R`` (rows: after task i; columns: task j)."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"R must be a square (T, T) accuracy matrix with T >= 1, got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        raise ValueError("R must be finite (no NaN or infinity)")
    T = R.shape[0]
    acc = float(R[-1].mean())
    if T == 1:
        return {"ACC": round(acc, 12), "BWT": 0.0, "F": 0.0}
    old = np.arange(T - 1)
    bwt = float(np.mean(R[-1, old] - R[old, old]))
    forgetting = float(np.mean(R[:-1, old].max(0) - R[-1, old]))
    return {"ACC": round(acc, 12), "BWT": round(bwt, 12), "F": round(forgetting, 12)}
