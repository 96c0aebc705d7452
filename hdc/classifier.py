"""``CentroidClassifier``: one majority prototype per class, nearest prototype by Hamming distance."""
import copy
import inspect

import numpy as np

from . import _dask
from ._validate import check_dim, check_int
from .accumulator import Accumulator
from .backend import kernels
from .hv import BinaryHV
from .ops import as_hv, cdist, random, topk
from .sparse import SparseHV, random_sparse

__all__ = ["CentroidClassifier", "NotFittedError"]

# Temperatures tried when calibrating predict_proba (similarities lie in [-1, 1]).
_TEMPERATURES = np.geomspace(0.5, 5000.0, 80)


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` / ``partial_fit``.

    A ValueError and an AttributeError, like scikit-learn's ``NotFittedError`` (so code written
    for scikit-learn estimators catches it the same way), without importing scikit-learn.
    """


class CentroidClassifier:
    """Scikit-learn style classifier on ``BinaryHV`` inputs: class prototypes are majority bundles.

    Each class keeps exact per-element counts (an :class:`hdc.Accumulator`); its prototype is
    their majority, with ties taken from a random vector drawn from ``seed``. ``predict`` returns
    the class of the nearest prototype (Hamming distance; equal distances go to the class that
    sorts first). With ``epochs > 0``, ``fit`` then retrains on the training set: each epoch
    visits the samples one at a time in a seeded random order; a misclassified sample is added
    (weight ``lr``) to its true class's counts and subtracted from the predicted class's counts
    (by adding its complement ``~x``: in majority terms that subtracts ``x``, and the counts stay
    exact and non-negative), and both prototypes change at once. With ``margin > 0`` (a fraction
    of ``dim``) a correctly classified sample is also moved when its nearest other class is fewer
    than ``margin * dim`` bits farther than its own (a perceptron with margin). The prototypes of
    the last epoch with the best training accuracy are kept.

    Defaults: ``epochs=None`` is 20 retraining epochs (for dense codes; sparse codes are not
    retrained) with margin 0.03, which out of the box reach what the tuned recipes reach (digits,
    language identification; see docs/learning.md); ``epochs=0`` gives plain majority prototypes.

    ``decision_function`` gives the similarity to each class prototype; ``predict_proba`` a
    softmax of those similarities with a temperature (``temperature_``) fitted on the training
    data in ``fit`` by minimising the log-loss, so the probabilities are calibrated there.

    Shapes: ``fit(X, y)`` with ``X`` BinaryHV ``(n,)`` and ``y`` ``(n,)`` labels; ``predict(X)`` ->
    ``(n,)`` labels; ``prototypes_`` BinaryHV ``(n_classes,)`` in the order of ``classes_``.

    With ``block_size``, inputs are sparse block codes (:class:`hdc.SparseHV` of ``dim // block_size``
    blocks): each class keeps a :class:`hdc.BlockAccumulator`, its prototype is the per-block most
    frequent index (``kneighbors`` searches them by overlap), and ``predict`` takes the class of
    highest count-weighted overlap (:meth:`decision_function`); retraining epochs are for dense
    codes only.

    >>> import hdc, numpy as np
    >>> centers = hdc.random(3, 2048, seed=0)
    >>> y = np.arange(60) % 3
    >>> r = hdc.random((3, 60), 2048, seed=1).words              # flip each bit w.p. 1/8:
    >>> X = centers[y] ^ hdc.BinaryHV(r[0] & r[1] & r[2], 2048)  # 60 noisy copies
    >>> clf = hdc.CentroidClassifier(2048).fit(X, y)
    >>> clf.classes_.tolist(), clf.score(X, y)
    ([0, 1, 2], 1.0)
    """

    def __init__(self, dim, epochs=None, lr=1, margin=0.03, seed=0, block_size=None):
        self.dim = dim
        self.block_size = block_size
        self.epochs = epochs
        self.lr = lr
        self.margin = margin
        self.seed = seed

    # ---- scikit-learn parameter protocol (no sklearn import needed) --------------------------
    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"invalid parameter {name!r} for CentroidClassifier; "
                                 f"expected one of {self._param_names()}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), requires_fit=True)

    _estimator_type = "classifier"

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"CentroidClassifier({args})"

    # ---- validation ----------------------------------------------------------------------------
    def _check_X(self, X):
        if self._sparse:
            if not isinstance(X, SparseHV) or (X.blocks, X.block_size) != (self._blocks, self.block_size):
                got = (f"SparseHV (blocks={X.blocks}, block_size={X.block_size})" if isinstance(X, SparseHV)
                       else type(X).__name__)
                raise TypeError(f"X must be a SparseHV with blocks={self._blocks}, block_size={self.block_size} "
                                f"(block_size was given), got {got}")
        else:
            as_hv(X, "X")
        if X.ndim != 1:
            raise ValueError(f"X must be a 1-D batch of hypervectors (n,), got batch shape {X.shape}")
        if not self._sparse and X.dim != self._dim:
            raise ValueError(f"X must have dim {self._dim}, got {X.dim}")
        return X

    def _check_Xy(self, X, y):
        X = self._check_X(X)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != len(X):
            raise ValueError(f"y must have shape ({len(X)},) (one label per row of X), got {y.shape}")
        if y.dtype.kind in "fc" and np.isnan(y).any() or y.dtype == object and any(v != v for v in y.tolist()):
            raise ValueError(f"y contains NaN at row {int(np.flatnonzero(y != y)[0])}; every sample needs a label")
        return X, y

    def _setup(self):
        self._dim = check_dim(self.dim)
        self._sparse = self.block_size is not None
        # None: 20 retraining epochs for dense codes; sparse codes are not retrained
        self._epochs = (0 if self._sparse else 20) if self.epochs is None else check_int(self.epochs, "epochs", low=0)
        check_int(self.lr, "lr", low=1)
        if self._sparse:
            if self._epochs:
                raise ValueError("epochs must be 0 with block_size (retraining is for dense codes only)")
            check_int(self.block_size, "block_size", low=1, high=self._dim)
            self._blocks = self._dim // self.block_size
            self._tie = random_sparse(1, self._blocks, self.block_size, seed=self.seed)[0]
        else:
            self._tie = random(1, self._dim, seed=self.seed)[0]
        self._acc = {}
        self._prototypes = None
        self.temperature_ = 1.0   # calibrated by fit / partial_fit

    # ---- fitting -------------------------------------------------------------------------------
    def partial_fit(self, X, y, classes=None):
        """Add samples to their classes' counts (classes may be new); returns self."""
        if _dask.is_collection(X, y):  # Dask collections: counted per partition, summed in a tree
            return _dask.distributed().partial_fit(self, X, y, classes)
        if not hasattr(self, "_acc"):
            self._setup()
        X, y = self._check_Xy(X, y)
        for label in ([] if classes is None else list(classes)) + list(np.unique(y)):
            if label not in self._acc:
                self._acc[label] = (self._new_block_accumulator() if self._sparse else Accumulator(self._dim))
        for label in np.unique(y):
            self._acc[label].add(X[y == label])
        self._prototypes = None
        if len(X):
            self._calibrate(X, y)
        return self

    def _calibrate(self, X, y):
        """Fit ``temperature_``: the softmax temperature with the least log-loss on ``(X, y)``."""
        sim = self._similarities(X)
        rows = np.arange(len(X))
        truth = np.searchsorted(self.classes_, y)
        z = sim[None, :, :] * _TEMPERATURES[:, None, None]
        z -= z.max(axis=2, keepdims=True)
        log_p = z[:, rows, truth] - np.log(np.exp(z).sum(axis=2))
        self.temperature_ = float(_TEMPERATURES[np.argmax(log_p.mean(axis=1))])
    def _new_block_accumulator(self):
        from .block_accumulator import BlockAccumulator
        return BlockAccumulator(self._blocks, self.block_size)

    def fit(self, X, y):
        """Reset, count every sample into its class, then retrain for ``epochs``; returns self.

        ``X`` and ``y`` may be Dask collections (see :func:`hdc.distributed.fit`): the same model,
        for ``epochs=0`` only (retraining is sequential over all samples, so it is refused there).
        """
        if _dask.is_collection(X, y):
            return _dask.distributed().fit(self, X, y)
        self._setup()
        X, y = self._check_Xy(X, y)
        if len(X) == 0:
            raise ValueError("X is empty; fit needs at least one sample")
        self.partial_fit(X, y)
        if not self._sparse:
            self.retrain(X, y, self._epochs)
        self._calibrate(X, y)
        return self

    def retrain(self, X, y, epochs=1):
        """Perceptron-style retraining epochs on ``(X, y)`` (see the class docstring); returns self.

        Each epoch visits the samples in a seeded random order and updates the two classes of a
        misclassified (or, with ``margin``, barely correct) sample at once (compiled loop). The
        counts and prototypes of the last epoch with the best accuracy on ``(X, y)`` are kept.
        ``train_accuracy_`` lists the accuracy before the first epoch and after each one.
        """
        self._check_fitted()
        if self._sparse:
            raise ValueError("retrain is for dense codes only (this classifier has block_size)")
        X, y = self._check_Xy(X, y)
        epochs = check_int(epochs, "epochs", low=0)
        lr = check_int(self.lr, "lr", low=1)
        margin = int(round(self._check_margin() * self._dim))
        classes = self.classes_
        known = np.isin(y, classes)
        if not known.all():
            raise ValueError(f"y contains labels never seen in fit/partial_fit: {np.unique(y[~known])[:5]}")
        y_idx = np.searchsorted(classes, y).astype(np.int64)
        history = [self.score(X, y)]
        best = (history[0], copy.deepcopy(self._acc))
        counts, totals = self.counts_
        counts, totals = counts.copy(), totals.copy()
        protos = self.prototypes_.words.copy()
        rng = np.random.default_rng(self.seed)
        moves = np.empty(len(X), np.int64)
        for _ in range(epochs):
            if history[-1] == 1.0 and margin == 0:
                break
            kernels().retrain_epoch(X.words, y_idx, rng.permutation(len(X)), counts, totals, protos,
                             self._tie.words, lr, self._dim, margin, moves)
            wrong = moves >= 0
            # replay the epoch's moves on the exact counts (sums commute: order does not matter)
            self._move(X[wrong], y[wrong], classes[moves[wrong]], lr)
            history.append(self.score(X, y))
            if history[-1] >= best[0]:
                best = (history[-1], copy.deepcopy(self._acc))
        self._acc = best[1]
        self._prototypes = None
        self.train_accuracy_ = history
        return self

    def _check_margin(self):
        margin = float(self.margin)
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1) (a fraction of dim), got {self.margin!r}")
        return margin

    def _move(self, X, y, pred, lr):
        """Add each ``X[i]`` (weight ``lr``) to class ``y[i]`` and subtract it from class ``pred[i]``."""
        weights = np.full(len(X), lr, np.int64)
        for label, acc in self._acc.items():
            into = y == label
            if into.any():
                acc.add(X[into], weights[into])
            out_of = pred == label
            if out_of.any():
                acc.add(~X[out_of], weights[out_of])
        self._prototypes = None

    # ---- prediction ----------------------------------------------------------------------------
    def _check_fitted(self):
        if not getattr(self, "_acc", None):
            raise NotFittedError("this CentroidClassifier is not fitted yet; call fit or partial_fit first")

    @property
    def classes_(self):
        """The class labels, sorted (the row order of ``prototypes_``)."""
        self._check_fitted()
        return np.array(sorted(self._acc))

    @property
    def prototypes_(self):
        """Majority prototype of each class, BinaryHV ``(n_classes,)`` (classes without samples: the tie vector)."""
        self._check_fitted()
        if self._prototypes is None:
            rows = [acc.majority(tie=self._tie) if acc.n else self._tie for acc in
                    (self._acc[c] for c in self.classes_)]
            self._prototypes = (SparseHV if self._sparse else BinaryHV).stack(rows)
        return self._prototypes

    @property
    def counts_(self):
        """Per-class element counts, int64 ``(n_classes, dim)`` (sparse: ``(n_classes, blocks, block_size)``),
        and their totals ``(n_classes,)``."""
        self._check_fitted()
        accs = [self._acc[c] for c in self.classes_]
        return np.stack([a.counts for a in accs]), np.array([a.n for a in accs], np.int64)

    def kneighbors(self, X, k=1):
        """The ``k`` nearest prototypes of each row: ``(distances (n, k), labels (n, k))``."""
        self._check_fitted()
        X = self._check_X(X)
        dist, idx = topk(X, self.prototypes_, k)
        return dist, self.classes_[idx]

    def predict(self, X):
        """Label of each row of ``X``, shape ``(n,)``: the nearest prototype (dense) or the class of
        highest :meth:`decision_function` score (sparse); ties go to the class that sorts first.
        Lazy (a dask.array) for a dask.array ``X``."""
        if _dask.is_collection(X):
            return _dask.distributed().predict(self, X)
        if getattr(self, "_sparse", False):
            self._check_fitted()
            return self.classes_[np.argmax(self._similarities(self._check_X(X)), axis=1)]
        return self.kneighbors(X, 1)[1][:, 0]

    def _similarities(self, X):
        """Per-class scores, float64 ``(n, n_classes)``, higher is closer.

        Dense: the similarity to each prototype, ``1 - 2 hamming / dim`` in [-1, 1]. Sparse: each
        class's count-weighted overlap (:meth:`hdc.BlockAccumulator.similarity`) divided by the
        class's total weight, in [0, blocks] (-inf for a class without samples): the read-out that keeps what thinning the counts to a prototype throws away.
        """
        if not self._sparse:
            return 1.0 - 2.0 * cdist(X, self.prototypes_).astype(np.float64) / self._dim
        accs = [self._acc[c] for c in self.classes_]
        return np.stack([a.similarity(X) / a.n if a.n else np.full(len(X), -np.inf)
                         for a in accs], axis=1)

    def decision_function(self, X):
        """Per-class scores ``(n, n_classes)``, higher is closer (see ``_similarities``: dense codes
        the similarity to each prototype in [-1, 1], sparse ones the count-weighted overlap).

        With two classes, scikit-learn's convention: ``(n,)``, the second class's score minus the
        first's (positive means ``classes_[1]``).
        """
        self._check_fitted()
        sim = self._similarities(self._check_X(X))
        return sim[:, 1] - sim[:, 0] if sim.shape[1] == 2 else sim

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)``: softmax of ``temperature_ * similarity``.

        ``temperature_`` is fitted in ``fit`` (least log-loss on the training data); the most
        probable class is the one ``predict`` returns.
        """
        self._check_fitted()
        z = self._similarities(self._check_X(X)) * self.temperature_
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def score(self, X, y):
        """Mean accuracy of ``predict(X)`` against ``y``."""
        self._check_fitted()
        X, y = self._check_Xy(X, y)
        return float(np.mean(self.predict(X) == y))
