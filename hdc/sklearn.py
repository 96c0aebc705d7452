"""A scikit-learn transformer around any hdc encoder, so encoders can be Pipeline steps.

scikit-learn stays optional: ``import hdc`` never imports it; only importing this module does.

>>> import numpy as np, hdc
>>> from hdc.sklearn import HDEncoder
>>> from sklearn.pipeline import make_pipeline
>>> X = np.array([[0.0, 0.1], [0.1, 0.0], [0.9, 1.0], [1.0, 0.9]]); y = [0, 0, 1, 1]
>>> model = make_pipeline(HDEncoder(hdc.RecordEncoder(4096, n_features=2, levels=8, seed=0)),
...                       hdc.CentroidClassifier(4096))
>>> model.fit(X, y).predict(X).tolist()
[0, 0, 1, 1]
"""
import copy

try:
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hdc.sklearn needs scikit-learn: pip install scikit-learn") from exc

__all__ = ["HDEncoder"]


class HDEncoder(TransformerMixin, BaseEstimator):
    """Pipeline step that encodes its input with an hdc encoder; ``transform`` -> BinaryHV.

    ``encoder``: any object with ``encode(X)`` (RecordEncoder, NGramEncoder, RandomProjection,
    LevelEncoder, ...). Encoders are seeded; one with a ``fit`` method (``RecordEncoder`` learns
    each feature's range) is copied and fitted on ``X`` in ``fit`` (the ``encoder`` parameter
    itself is left as given, as scikit-learn expects), others are used as they are.
    A NumPy or pandas column of strings is passed to the encoder as a list of ``str``.

    Shapes: ``transform(X)`` -> BinaryHV ``(n,)`` for ``n`` samples (rows or texts).
    """

    def __init__(self, encoder=None):
        self.encoder = encoder

    def fit(self, X, y=None):
        if not callable(getattr(self.encoder, "encode", None)):
            raise TypeError(f"encoder must be an hdc encoder (with an encode method), got "
                            f"{type(self.encoder).__name__}")
        if callable(getattr(self.encoder, "fit", None)):
            self.encoder_ = copy.deepcopy(self.encoder).fit(X)
        else:
            self.encoder_ = self.encoder
        return self

    def transform(self, X):
        check_is_fitted(self, "encoder_")
        dtype = getattr(X, "dtype", None)
        if dtype is not None and (dtype == object or dtype.kind in "US"):
            X = [str(x) for x in X]
        return self.encoder_.encode(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags
