"""The models the experiments compare, behind one small interface (needs torch for the float ones).

Every model has ``learn(X, y)`` (train on one task's data, continuing from its current state)
and ``score(X, y)`` (accuracy), with ``X`` the 80 digit features (0..16):

- :class:`HDCCentroid`: ``hdc.RecordEncoder`` + ``hdc.CentroidClassifier``; ``epochs=0`` is the
  majority of exact counts (``partial_fit``), ``epochs>0`` also retrains on each new task's data
  (a plain perceptron: ``margin=0``, not the classifier's default 0.03, unless given).
- :class:`HDCClusters`: the same encoding with several binary prototypes per class, found by
  k-means in Hamming space within each class; learning a task only adds prototypes.
- :class:`MLP`: one hidden layer, float32, Adam; ``kwta=k`` keeps the ``k`` largest hidden
  activations per sample (k-winner-take-all); ``binary=True`` uses sign weights (x a per-layer
  scale) trained through a straight-through estimator (a binarised MLP).
- :class:`VoterClassifier`: an :class:`hdc.nn.VoterHead` on the features, predicting the class
  as 4 bits.
- :class:`DigitTransformer`: an :class:`hdc.nn.HDTransformer` reading the 64 pixels as tokens.
"""
import numpy as np

import hdc

from .._validate import check_int
from .data import DigitSequences

__all__ = ["HDC_DIM", "HDCCentroid", "HDCClusters", "MLP", "VoterClassifier", "DigitTransformer", "flip_bits",
           "flip_float_bits"]

# The experiments' hypervector width: the smallest power of two at which majority prototypes lose
# <= 2 points of digits accuracy at 20% flipped bits on every seed tried (docs/experiments.md,
# "prototype width"): 10,000 bits lose 4.0 on average, 16,384 lose 1.9, 32,768 lose 1.2.
HDC_DIM = 32_768
FLOAT_FIELDS = {"sign": (31, 32), "exponent": (23, 31), "mantissa": (0, 23)}


def flip_bits(hv, p, rng):
    """A copy of BinaryHV ``hv`` with exactly ``round(p * hv.size * dim)`` distinct stored bits flipped."""
    bits = hv.to_bool().reshape(-1)
    n = int(round(p * bits.size))
    if n:
        bits[rng.choice(bits.size, n, replace=False)] ^= True
    return hdc.BinaryHV.from_bool(bits.reshape(hv.shape + (hv.dim,)))


def flip_float_bits(weights, p, field, rng):
    """A copy of float32 ``weights`` with a fraction ``p`` of the bits of one IEEE-754 ``field``
    ("sign", "exponent", "mantissa") flipped, at distinct random (weight, bit) positions."""
    w = np.array(weights, dtype=np.float32).reshape(-1)
    lo, hi = FLOAT_FIELDS[field]
    width = hi - lo
    n = int(round(p * w.size * width))
    if n:
        pos = rng.choice(w.size * width, n, replace=False)
        masks = np.left_shift(np.uint32(1), (lo + pos % width).astype(np.uint32))
        np.bitwise_xor.at(w.view(np.uint32), pos // width, masks)
    return w.reshape(np.shape(weights))


class HDCCentroid:
    """Record encoding (``dim`` bits, 9 levels over 0..16) + centroid classifier; see the module docstring."""

    def __init__(self, dim=HDC_DIM, epochs=0, margin=0.0, seed=0):
        self.encoder = hdc.RecordEncoder(dim, 80, levels=9, low=0, high=16, seed=seed)
        self.clf = hdc.CentroidClassifier(dim, epochs=0, margin=margin, seed=seed)
        self.epochs = epochs

    def encode(self, X):
        return self.encoder(X)

    def learn(self, X, y):
        H = self.encode(X)
        self.clf.partial_fit(H, y)
        if self.epochs:
            self.clf.retrain(H, y, self.epochs)
        return self

    def score(self, X, y):
        return self.clf.score(self.encode(X), y)

    def score_with(self, prototypes, X, y):
        """Accuracy of nearest-prototype prediction with replaced ``prototypes`` (same class order)."""
        _, idx = hdc.topk(self.encode(X), prototypes, 1)
        return float(np.mean(self.clf.classes_[idx[:, 0]] == y))


class HDCClusters:
    """Record encoding + ``per_class`` binary prototypes per class: k-means in Hamming space.

    ``learn(X, y)`` clusters each class's encoded samples of that call on their own (seeded
    distinct samples as the first centres, then ``iters`` rounds of nearest-centre assignment and
    majority bundling, stopping early when nothing moves) and appends the centres as new
    prototypes of that class. Nothing learned earlier is touched: a class-incremental task can
    only add prototypes, so it cannot overwrite an old class's. ``score`` takes the class of the
    nearest prototype. A class with fewer samples than ``per_class`` keeps each sample. Ties of a
    bundle take the bits of the encoder's seeded tie vector.

    Shapes: ``learn(X (n, 80), y (n,))``; ``prototypes`` BinaryHV ``(n_prototypes,)`` with
    ``labels`` ``(n_prototypes,)``.

    >>> import numpy as np
    >>> X = np.repeat(np.array([[0] * 80, [16] * 80]), 6, axis=0)
    >>> m = HDCClusters(dim=1024, per_class=2).learn(X, np.repeat([0, 1], 6))
    >>> len(m.prototypes), m.score(X, np.repeat([0, 1], 6))
    (4, 1.0)
    """

    def __init__(self, dim=HDC_DIM, per_class=8, iters=10, seed=0):
        self.encoder = hdc.RecordEncoder(dim, 80, levels=9, low=0, high=16, seed=seed)
        self.per_class = check_int(per_class, "per_class", low=1)
        self.iters = check_int(iters, "iters", low=0)
        self.seed = seed
        self.prototypes, self.labels, self._calls = None, np.zeros(0, np.int64), 0

    def encode(self, X):
        return self.encoder(X)

    def _cluster(self, H, rng):
        """``min(per_class, len(H))`` centres of the codes ``H`` (BinaryHV ``(n,)``)."""
        centres = H[np.sort(rng.choice(len(H), min(self.per_class, len(H)), replace=False))]
        assigned = None
        for _ in range(self.iters):
            nearest = hdc.topk(H, centres, 1)[1][:, 0]
            if assigned is not None and np.array_equal(nearest, assigned):
                break
            assigned = nearest
            centres = hdc.BinaryHV.stack([hdc.bundle(H[assigned == c], tie=self.encoder.tie) if np.any(assigned == c)
                                          else centres[c] for c in range(len(centres))])
        return centres

    def learn(self, X, y):
        H, y = self.encode(X), np.asarray(y)
        self._calls += 1
        new = [(label, self._cluster(H[y == label], np.random.default_rng([self.seed, self._calls, int(label)])))
               for label in np.unique(y)]
        parts = ([] if self.prototypes is None else [self.prototypes]) + [c for _, c in new]
        self.prototypes = hdc.BinaryHV.concatenate(parts)
        self.labels = np.concatenate([self.labels] + [np.full(len(c), label, np.int64) for label, c in new])
        return self

    def score(self, X, y):
        return self.score_with(self.prototypes, X, y)

    def score_with(self, prototypes, X, y):
        """Accuracy of nearest-prototype prediction with replaced ``prototypes`` (same order)."""
        nearest = hdc.topk(self.encode(X), prototypes, 1)[1][:, 0]
        return float(np.mean(self.labels[nearest] == np.asarray(y)))


class _TorchClassifier:
    """Shared torch training: Adam, cross-entropy (or the model's own loss), minibatches."""

    epochs, lr, batch_size = 30, 3e-3, 32

    def _loss(self, out, y):
        import torch.nn.functional as F
        return F.cross_entropy(out, y)

    def _predict(self, out):
        return out.argmax(-1)

    def _inputs(self, X):
        import torch
        return torch.as_tensor(np.asarray(X, np.float32) / 16.0 - 0.5)

    def learn(self, X, y, epochs=None):
        import torch
        xt, yt = self._inputs(X), torch.as_tensor(np.asarray(y, np.int64))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)     # a fresh optimiser per task
        self.net.train()
        for _ in range(self.epochs if epochs is None else epochs):
            order = torch.as_tensor(self.rng.permutation(len(yt)))
            for i in range(0, len(yt), self.batch_size):
                b = order[i:i + self.batch_size]
                loss = self._loss(self.forward(xt[b]), yt[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    def score(self, X, y, **forward_kw):
        import torch
        with torch.no_grad():
            pred = self._predict(self.forward(self._inputs(X), **forward_kw)).numpy()
        return float(np.mean(pred == np.asarray(y)))


class MLP(_TorchClassifier):
    """80 -> ``hidden`` -> 10; ReLU, or k-WTA (``kwta=k``); ``binary=True``: sign weights (see module docstring)."""

    def __init__(self, hidden=64, kwta=None, binary=False, seed=0, epochs=30):
        import torch
        from torch import nn
        torch.manual_seed(seed)
        self.rng = np.random.default_rng([seed, 5])
        self.kwta, self.binary, self.epochs = kwta, binary, epochs
        self.net = nn.Sequential(nn.Linear(80, hidden), nn.Linear(hidden, 10))
        self.sign_flips = None          # per layer: bool masks of weights whose sign is inverted

    def _weight(self, i):
        from hdc.nn.modules import ste_sign
        w = self.net[i].weight
        if not self.binary:
            return w
        s = ste_sign(w) * w.abs().mean().detach()
        if self.sign_flips is not None:
            s = s * (1 - 2 * self.sign_flips[i].to(s.dtype))
        return s

    def hidden(self, x):
        """Hidden activations ``(n, hidden)`` (after ReLU or k-WTA)."""
        import torch
        import torch.nn.functional as F
        h = F.linear(x, self._weight(0), self.net[0].bias)
        if self.kwta:
            top = h.topk(self.kwta, -1).indices
            return torch.zeros_like(h).scatter(-1, top, F.relu(h.gather(-1, top)))
        return F.relu(h)

    def forward(self, x):
        import torch.nn.functional as F
        return F.linear(self.hidden(x), self._weight(1), self.net[1].bias)


class VoterClassifier(_TorchClassifier):
    """:class:`hdc.nn.VoterHead` on the 80 features: the class index as 4 bits, ``n_voters`` voters per bit."""

    def __init__(self, n_voters=8, temperature=None, seed=0, epochs=40):
        import torch
        from hdc.nn import VoterHead
        torch.manual_seed(seed)
        self.rng = np.random.default_rng([seed, 6])
        self.epochs = epochs
        self.net = VoterHead(80, n_bits=4, n_voters=n_voters, temperature=temperature)

    def forward(self, x, voter_flip=None):
        return self.net(x, voter_flip=voter_flip)

    def _loss(self, p, y):
        from hdc.nn.modules import index_bits
        return self.net.loss(p, index_bits(y, 4))

    def _predict(self, p):
        import torch
        return ((p > 0.5).long() << torch.arange(4)).sum(-1)


class DigitTransformer:
    """An :class:`hdc.nn.HDTransformer` on pixel-token sequences; ``learn`` trains ``steps`` per task."""

    def __init__(self, head="linear", n_voters=8, attention="kwta", seed=0, steps=150, d_model=32,
                 n_layers=1, code_bits=32, topk=8):
        from hdc.nn import training
        self.seed, self.steps, self.calls = seed, steps, 0
        self._train, self._evaluate = training.train, training.evaluate
        self.model = training.build_model(DigitSequences, attention, d_model=d_model, n_layers=n_layers,
                                          n_heads=2, code_bits=code_bits, topk=topk, head=head,
                                          n_voters=n_voters, seed=seed)

    def learn(self, pixels, y):
        task = DigitSequences(pixels, y, pixels[:1], y[:1])
        self.calls += 1
        self._train(self.model, task, steps=self.steps, batch_size=32, lr=3e-3, warmup=10,
                    seed=self.seed * 1000 + self.calls, progress=False)
        return self

    def score(self, pixels, y):
        return self._evaluate(self.model, DigitSequences(pixels[:1], y[:1], pixels, y))["accuracy"]

    def score_packed(self, packed, pixels, y, **flip):
        """Accuracy of an exported (packed) model, with ``key_flip`` / ``voter_flip`` / ``seed``."""
        return float(np.mean(packed.predict(np.asarray(pixels), **flip)[:, -1] == y))

