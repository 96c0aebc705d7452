"""Tasks the HD-transformer is compared on (NumPy only, seeded and reproducible).

- :class:`MQAR`: multi-query associative recall. A sequence holds ``n_pairs`` key-value pairs
  ``k1 v1 k2 v2 ...`` followed by queries: keys of those pairs, in random order with repetition,
  until ``seq_len`` tokens. At every query position the target is the value paired with that key;
  accuracy is measured on the query positions only. Keys are tokens ``[1, vocab_size // 2)``,
  values ``[vocab_size // 2, vocab_size)``, token 0 is unused.
- :class:`CharLM`: character-level language modelling on a UTF-8 text file (default: Python's
  own documentation text, ``pydoc_data.topics``). The last ``holdout`` fraction of the text is the
  held-out tail; the metric is bits per character on it.

Both give ``batch(batch_size, rng) -> (inputs, targets, mask)`` int64/int64/bool ``(B, L)``
training batches and a fixed ``eval_batches()`` list.

>>> import numpy as np
>>> task = MQAR(vocab_size=64, seq_len=48, n_pairs=8, seed=0)
>>> x, y, m = task.batch(2, np.random.default_rng(0))
>>> x.shape, int(m.sum(1)[0])
((2, 48), 32)
"""
import pathlib

import numpy as np

from .._validate import as_rng, check_int

__all__ = ["MQAR", "CharLM", "default_corpus"]


class MQAR:
    """Multi-query associative recall; see the module docstring.

    Args: ``vocab_size`` (keys take the lower half, values the upper half), ``seq_len``,
    ``n_pairs`` (at most ``vocab_size // 2 - 1`` and ``seq_len // 2 - 1``), ``seed`` (the
    held-out evaluation set), ``n_eval`` evaluation sequences.
    """

    kind = "mqar"
    metric = "accuracy"

    def __init__(self, vocab_size=256, seq_len=128, n_pairs=16, seed=0, n_eval=256):
        self.vocab_size = check_int(vocab_size, "vocab_size", low=6)
        self.seq_len = check_int(seq_len, "seq_len", low=4)
        n_keys = self.vocab_size // 2 - 1
        self.n_pairs = check_int(n_pairs, "n_pairs", low=1, high=min(n_keys, self.seq_len // 2 - 1))
        self.seed = check_int(seed, "seed", low=0)
        self.n_eval = check_int(n_eval, "n_eval", low=1)
        self._eval = None

    def config(self):
        return dict(task="mqar", vocab_size=self.vocab_size, seq_len=self.seq_len, n_pairs=self.n_pairs,
                    seed=self.seed, n_eval=self.n_eval)

    def batch(self, batch_size, rng):
        """``(inputs, targets, mask)`` each ``(batch_size, seq_len)``; mask marks query positions."""
        rng = as_rng(rng, "rng")
        b, p, n = check_int(batch_size, "batch_size", low=1), self.n_pairs, self.seq_len
        half = self.vocab_size // 2
        # distinct keys per sequence: the first p of a random permutation of [1, half)
        keys = np.argsort(rng.random((b, half - 1)), axis=1)[:, :p] + 1
        values = rng.integers(half, self.vocab_size, size=(b, p))
        x = np.zeros((b, n), np.int64)
        x[:, 0:2 * p:2] = keys
        x[:, 1:2 * p:2] = values
        pick = rng.integers(0, p, size=(b, n - 2 * p))
        rows = np.arange(b)[:, None]
        x[:, 2 * p:] = keys[rows, pick]
        y = np.zeros((b, n), np.int64)
        y[:, 2 * p:] = values[rows, pick]
        mask = np.zeros((b, n), bool)
        mask[:, 2 * p:] = True
        return x, y, mask

    def eval_batches(self, batch_size=64):
        """A fixed held-out set (from ``seed``), as a list of batches."""
        if self._eval is None:
            rng = np.random.default_rng([self.seed, 1])
            self._eval = [self.batch(min(batch_size, self.n_eval - i), rng)
                          for i in range(0, self.n_eval, batch_size)]
        return self._eval


def default_corpus():
    """Python's documentation topics (``pydoc_data.topics``) as one string, in sorted topic order."""
    from pydoc_data import topics
    return "".join(topics.topics[k] for k in sorted(topics.topics))


class CharLM:
    """Character-level language modelling on a UTF-8 text (``path``; default: pydoc topics).

    The vocabulary is the sorted set of characters of the whole text, or ``chars`` when given
    (a shared vocabulary, e.g. for training one model on several texts; it must cover the text).
    ``text`` passes the text itself instead of a ``path``. The last ``holdout`` fraction is held
    out; evaluation scores non-overlapping windows of it (at most ``max_eval_chars`` characters)
    in bits per character.
    """

    kind = "charlm"
    metric = "bpc"

    def __init__(self, path=None, seq_len=128, holdout=0.1, seed=0, max_eval_chars=32768, text=None,
                 chars=None):
        if text is not None:
            if path is not None:
                raise ValueError("give either path or text, not both")
            if not isinstance(text, str):
                raise TypeError(f"text must be a str, got {type(text).__name__}")
            self.source = "<text>"
        elif path is None:
            text, self.source = default_corpus(), "pydoc_data.topics"
        else:
            p = pathlib.Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"text file {str(path)!r} does not exist")
            text, self.source = p.read_text(encoding="utf-8"), str(path)
        self.seq_len = check_int(seq_len, "seq_len", low=2)
        try:
            holdout = float(holdout)
        except (TypeError, ValueError):
            raise TypeError(f"holdout must be a float in (0, 1), got {holdout!r}") from None
        if not 0 < holdout < 1:
            raise ValueError(f"holdout must be in (0, 1), got {holdout}")
        self.seed = check_int(seed, "seed", low=0)
        self.max_eval_chars = check_int(max_eval_chars, "max_eval_chars", low=1)
        self.chars = sorted(set(text) if chars is None else set(chars))
        missing = set(text) - set(self.chars)
        if missing:
            raise ValueError(f"chars must cover the text; missing {sorted(missing)[:10]}")
        self.vocab_size = len(self.chars)
        lookup = {c: i for i, c in enumerate(self.chars)}
        ids = np.fromiter((lookup[c] for c in text), np.int64, len(text))
        split = int(len(ids) * (1 - holdout))
        self.train_ids, self.test_ids = ids[:split], ids[split:]
        if len(self.train_ids) < self.seq_len + 1 or len(self.test_ids) < self.seq_len + 1:
            raise ValueError(f"text is too short: need more than {self.seq_len + 1} characters in "
                             f"both the training part and the held-out tail, got {len(ids)} in all")
        self.holdout = holdout
        self._eval = None

    def config(self):
        return dict(task="charlm", text=self.source, seq_len=self.seq_len, holdout=self.holdout,
                    vocab_size=self.vocab_size, seed=self.seed, train_chars=int(len(self.train_ids)),
                    eval_chars=int(min(len(self.test_ids) - 1, self.max_eval_chars)))

    def encode(self, text):
        lookup = {c: i for i, c in enumerate(self.chars)}
        return np.array([lookup[c] for c in text], np.int64)

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)

    def batch(self, batch_size, rng):
        """Random training windows: ``(inputs, next characters, all-True mask)`` ``(B, seq_len)``."""
        rng = as_rng(rng, "rng")
        b = check_int(batch_size, "batch_size", low=1)
        start = rng.integers(0, len(self.train_ids) - self.seq_len - 1, size=b)
        w = self.train_ids[start[:, None] + np.arange(self.seq_len + 1)]
        return w[:, :-1], w[:, 1:], np.ones((b, self.seq_len), bool)

    def eval_batches(self, batch_size=64):
        """Non-overlapping windows of the held-out tail, every position scored."""
        if self._eval is None:
            n, ids = self.seq_len, self.test_ids[:self.max_eval_chars + 1]
            count = (len(ids) - 1) // n
            x = np.stack([ids[i * n:(i + 1) * n] for i in range(count)])
            y = np.stack([ids[i * n + 1:(i + 1) * n + 1] for i in range(count)])
            self._eval = [(x[i:i + batch_size], y[i:i + batch_size], np.ones_like(x[i:i + batch_size], bool))
                          for i in range(0, count, batch_size)]
        return self._eval
