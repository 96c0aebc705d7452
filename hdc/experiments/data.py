"""Data of the experiments, all shipped with a dependency or the OS (no download).

- :func:`digits`: scikit-learn's 8x8 digits (1,797 images), features = the 64 pixels (0..16) and
  the 16 means of 2x2 pixel blocks (0..16), a seeded stratified 70/30 split.
- :func:`split_tasks` / :func:`permuted_tasks`: class-incremental (pairs of classes) and
  permuted-input task sequences over that split.
- :class:`DigitSequences`: an image as a sequence of 64 pixel tokens for the HD-transformer; the
  target at the last position is the class (the task interface of :mod:`hdc.nn.tasks`).
- :func:`text`: named corpora for the sequential-language runs: ``"python-docs"``
  (``pydoc_data.topics``), ``"german-man"`` (the German manual pages of Debian's ``manpages-de``,
  troff markup stripped), and the licence texts under ``/usr/share/common-licenses``
  (``"gpl-3"``, ``"apache-2.0"``, ...).

>>> d = digits(seed=0)
>>> d["Xtr"].shape, d["Xte"].shape, int(d["Xtr"].max())
((1257, 80), (540, 80), 16)
"""
import gzip
import pathlib
import re

import numpy as np

__all__ = ["digits", "split_tasks", "permuted_tasks", "DigitSequences", "text", "TEXTS"]

N_FEATURES, N_PIXELS, N_LEVELS = 80, 64, 17


def digits(seed=0, test_fraction=0.3):
    """``{"Xtr", "ytr", "Xte", "yte", "pixels_tr", "pixels_te"}``: features (n, 80), labels, raw pixels (n, 64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    blocks = X.reshape(-1, 4, 2, 4, 2).sum((2, 4)).reshape(-1, 16) / 4
    F = np.concatenate([X, blocks], 1)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=y)
    return {"Xtr": F[tr], "ytr": y[tr].astype(np.int64), "Xte": F[te], "yte": y[te].astype(np.int64),
            "pixels_tr": X[tr].astype(np.int64), "pixels_te": X[te].astype(np.int64)}


def split_tasks(data, n_tasks=5):
    """Class-incremental tasks: task t holds classes ``2t, 2t+1``; list of dicts of index arrays."""
    per = 10 // n_tasks
    return [{"train": np.flatnonzero(data["ytr"] // per == t), "test": np.flatnonzero(data["yte"] // per == t),
             "perm": None, "classes": list(range(per * t, per * (t + 1)))} for t in range(n_tasks)]


def permuted_tasks(data, n_tasks=5, seed=0):
    """Permuted digits: task t = all classes, inputs under a fixed random permutation (task 0: none).

    ``perm`` permutes the 64 pixel positions; the 80 features are recomputed from the permuted
    pixels' positions (feature ``i`` of the permuted input is feature ``perm_f[i]``), so the block
    means move with their pixels as one more permuted input.
    """
    rng = np.random.default_rng([seed, 99])
    tasks = []
    for t in range(n_tasks):
        perm = np.arange(N_FEATURES) if t == 0 else rng.permutation(N_FEATURES)
        tasks.append({"train": np.arange(len(data["ytr"])), "test": np.arange(len(data["yte"])),
                      "perm": perm, "classes": list(range(10))})
    return tasks


def task_inputs(data, task, part):
    """Features ``(n, 80)`` and labels of one task's ``part`` ("train"/"test"), permuted if the task says so."""
    X = data["Xtr" if part == "train" else "Xte"][task[part]]
    y = data["ytr" if part == "train" else "yte"][task[part]]
    return (X if task["perm"] is None else X[:, task["perm"]]), y


def task_pixels(data, task, part):
    """The 64 pixel tokens ``(n, 64)`` and labels of one task's ``part``, permuted by the pixel
    part of the task's permutation."""
    P = data["pixels_tr" if part == "train" else "pixels_te"][task[part]]
    y = data["ytr" if part == "train" else "yte"][task[part]]
    if task["perm"] is None:
        return P, y
    order = task["perm"][task["perm"] < N_PIXELS]       # the pixels' relative order under the permutation
    return P[:, order], y


class DigitSequences:
    """Digits as token sequences for the HD-transformer (the :mod:`hdc.nn.tasks` interface).

    Tokens are the 64 pixel values (vocabulary 0..16); the target at the last position is the
    class 0..9 (other positions are masked out). ``batch`` draws training images with replacement.

    Shapes: ``batch(b, rng)`` -> inputs, targets, mask, each ``(b, 64)``.
    """

    kind = "digits"
    metric = "accuracy"
    vocab_size = N_LEVELS
    seq_len = N_PIXELS

    def __init__(self, pixels, labels, test_pixels, test_labels):
        self.pixels, self.labels = np.asarray(pixels, np.int64), np.asarray(labels, np.int64)
        self.test_pixels, self.test_labels = np.asarray(test_pixels, np.int64), np.asarray(test_labels, np.int64)
        if len(self.pixels) == 0:
            raise ValueError("pixels is empty: a digit task needs training images")

    def _pack(self, x, labels):
        y = np.zeros_like(x)
        y[:, -1] = labels
        mask = np.zeros(x.shape, bool)
        mask[:, -1] = True
        return x, y, mask

    def batch(self, batch_size, rng):
        i = rng.integers(0, len(self.pixels), size=batch_size)
        return self._pack(self.pixels[i], self.labels[i])

    def eval_batches(self, batch_size=256):
        return [self._pack(self.test_pixels[i:i + batch_size], self.test_labels[i:i + batch_size])
                for i in range(0, len(self.test_pixels), batch_size)]


_MAN_DROP = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\s[+-]?\d+|\\\(..|\\\[[^\]]*\]|\\[*n](\(..|\[[^\]]*\]|.)|\\.")
TEXTS = ("python-docs", "german-man", "gpl-3", "apache-2.0", "mpl-2.0", "artistic")
_LICENCES = {"gpl-3": "GPL-3", "apache-2.0": "Apache-2.0", "mpl-2.0": "MPL-2.0", "artistic": "Artistic"}


def _man_text(lang, max_chars):
    """Running text of the manual pages under /usr/share/man/LANG/man1 (markup stripped)."""
    root = pathlib.Path("/usr/share/man") / lang / "man1"
    if not root.is_dir():
        raise ValueError(f"text 'german-man' needs Debian's manpages-{lang} package "
                         f"(apt-get install manpages-{lang}); {root} does not exist")
    parts, total = [], 0
    for page in sorted(root.glob("*.1.gz")):
        for line in gzip.open(page, "rt", encoding="utf-8", errors="replace"):
            if line.startswith((".", "'")):
                continue
            line = " ".join(_MAN_DROP.sub("", line).split())
            if line:
                parts.append(line)
                total += len(line) + 1
        if total >= max_chars:
            break
    return "\n".join(parts)[:max_chars]


def text(name, max_chars=200_000):
    """The first ``max_chars`` characters of a named corpus (one of :data:`TEXTS`)."""
    if name not in TEXTS:
        raise ValueError(f"text must be one of {TEXTS}, got {name!r}")
    if name == "python-docs":
        from hdc.nn.tasks import default_corpus
        return default_corpus()[:max_chars]
    if name == "german-man":
        return _man_text("de", max_chars)
    return pathlib.Path("/usr/share/common-licenses", _LICENCES[name]).read_text(encoding="utf-8")[:max_chars]
