"""The exported HD-transformer: NumPy + hdc kernels, no torch.

:meth:`hdc.nn.HDTransformer.export` gives a :class:`PackedModel` whose outputs match the torch
forward pass and whose k-WTA attention runs on packed codes through
:func:`hdc.attention.kwta_attention`, picking the same winners.

**Precision.** The packed model computes in float64 (weights stored as float32, widened exactly)
and returns float32 outputs. A code bit is the sign of a projection; computed in float32, a
projection within rounding of zero can take opposite signs in torch and here (different
summation orders), which moves a score by one and, rarely, a winner. In float64 that needs a
projection within about 1e-15 of zero. So the packed model matches the float64 evaluation of the
same weights (``copy.deepcopy(model).double()``) with identical winners and logits within 1e-4
(about 1e-6 seen); against the float32 torch forward an occasional code bit can differ
(:func:`hdc.nn.training.measure` reports both).

**File format** (:meth:`PackedModel.save` / :meth:`PackedModel.load`): one ``.npz`` archive
(``np.savez``, uncompressed) holding every weight under its torch ``state_dict`` name as a
float32 array, plus ``__config__``: the model configuration as UTF-8 JSON bytes in a uint8
array and ``__format__`` (the string ``"hdc.packed-transformer/1"`` the same way). It is read
with ``np.load(allow_pickle=False)``: loading never executes code.

>>> import numpy as np
>>> from hdc.nn.packed import PackedModel
>>> cfg = dict(vocab_size=5, d_model=8, n_layers=0, n_heads=2, code_bits=64, topk=2,
...            attention="kwta", max_len=4, d_ff=16, temperature=None, head="linear",
...            n_voters=8, voter_temperature=None, token_shift=False)
>>> rng = np.random.default_rng(0)
>>> w = {"tok.weight": rng.standard_normal((5, 8)), "pos.weight": rng.standard_normal((4, 8)),
...      "ln_f.weight": np.ones(8), "ln_f.bias": np.zeros(8),
...      "head.weight": rng.standard_normal((5, 8)), "head.bias": np.zeros(5)}
>>> PackedModel(cfg, w)(np.array([[0, 1, 2]])).shape
(1, 3, 5)
"""
import json
import math

import numpy as np

from ..attention import kwta_attention
from ..hv import BinaryHV
from ..sparse import SparseHV

__all__ = ["PackedModel", "FORMAT", "key_cache_bytes_per_token"]

FORMAT = "hdc.packed-transformer/1"
_CONFIG_KEYS = ("vocab_size", "d_model", "n_layers", "n_heads", "code_bits", "topk", "attention",
                "max_len", "d_ff", "temperature", "head", "n_voters", "voter_temperature", "token_shift")
# keys added later, with the value files written before them mean
_CONFIG_DEFAULTS = {"learn_temperature": False, "code": "dense", "blocks": None, "block_size": None,
                    "ffn_topk": None}


def key_cache_bytes_per_token(config):
    """Key bytes cached per token by a model of ``config`` (torch or packed)."""
    c = config
    if c["attention"] == "dense":
        per_head = c["code_bits"] * 4
    elif c.get("code", "dense") == "sparse":
        per_head = c["blocks"] * (1 if c["block_size"] <= 256 else 2)    # uint8 / uint16 indices
    else:
        per_head = -(-c["code_bits"] // 8)
    return c["n_layers"] * c["n_heads"] * per_head


def _layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _linear(x, w, b):
    return x @ w.T + b


def _softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class PackedModel:
    """Torch-free HD-transformer: ``model(tokens) -> logits`` (or bit probabilities).

    Shapes: tokens ``(B, L)`` ints -> ``(B, L, vocab_size)`` float32 logits (head "linear") or
    ``(B, L, n_bits)`` bit probabilities (head "voter").
    """

    def __init__(self, config, arrays):
        missing = [k for k in _CONFIG_KEYS if k not in config]
        if missing:
            raise ValueError(f"config is missing {missing}")
        self.config = {**_CONFIG_DEFAULTS, **config}
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        self._w = {k: v.astype(np.float64) for k, v in self.arrays.items()}    # computed in float64
        c = self.config
        self.d_head = c["d_model"] // c["n_heads"] if c["n_heads"] else 0
        default_temperature = 1.0 if c["code"] == "sparse" else math.sqrt(c["code_bits"]) / 2
        self.temperature = (float(c["temperature"]) if c["temperature"] is not None
                            else default_temperature)
        self.n_bits = max(1, math.ceil(math.log2(c["vocab_size"])))
        self._ff2_rows = {}
        need = ["tok.weight", "pos.weight", "ln_f.weight", "ln_f.bias"] + (["prev.weight"] if c["token_shift"] else [])
        for i in range(c["n_layers"]):
            need += [f"blocks.{i}.{n}" for n in (
                "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "ff1.weight", "ff1.bias", "ff2.weight",
                "ff2.bias", "attn.q_proj.weight", "attn.q_proj.bias", "attn.k_proj.weight", "attn.k_proj.bias",
                "attn.v_proj.weight", "attn.v_proj.bias", "attn.out_proj.weight", "attn.out_proj.bias")]
            if c["learn_temperature"] and c["attention"] == "kwta":
                need.append(f"blocks.{i}.attn.log_temperature")
        need += ["head.weight", "head.bias"] if c["head"] == "linear" else ["head.voters.weight", "head.voters.bias", "head.vote"]
        absent = [n for n in need if n not in self.arrays]
        if absent:
            raise ValueError(f"arrays is missing weights {absent[:5]}{' ...' if len(absent) > 5 else ''}")

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path):
        """Write the ``.npz`` format described in the module docstring."""
        blobs = {"__config__": np.frombuffer(json.dumps(self.config).encode(), np.uint8),
                 "__format__": np.frombuffer(FORMAT.encode(), np.uint8)}
        np.savez(path, **self.arrays, **blobs)

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save` (``allow_pickle=False``: no code runs)."""
        with np.load(path, allow_pickle=False) as data:
            if "__format__" not in data or bytes(data["__format__"]).decode() != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file")
            config = json.loads(bytes(data["__config__"]).decode())
            arrays = {k: data[k] for k in data.files if not k.startswith("__")}
        return cls(config, arrays)

    # ---- measurements ----------------------------------------------------------------------------
    def key_cache_bytes_per_token(self):
        """Key bytes cached per token: packed codes for kwta, float32 keys for dense."""
        return key_cache_bytes_per_token(self.config)

    def active_voters(self, threshold=1e-3):
        """Mean voters per bit with weight above ``threshold`` (voter head only)."""
        if self.config["head"] != "voter":
            raise ValueError("active_voters needs a model with head='voter'")
        return float((self._vote_weights() > threshold).sum(-1).mean())

    def _vote_weights(self):
        c = self.config
        t = 0.05 * c["n_voters"] if c["voter_temperature"] is None else float(c["voter_temperature"])
        return _softmax(t * self._w["head.vote"], -1)

    # ---- forward -------------------------------------------------------------------------------
    def _attention(self, i, x, winners, key_flip, rng, stats):
        c, a = self.config, self._w
        p = f"blocks.{i}.attn."
        b, n, _ = x.shape
        h, bits, dh = c["n_heads"], c["code_bits"], self.d_head
        q = _linear(x, a[p + "q_proj.weight"], a[p + "q_proj.bias"]).reshape(b, n, h, bits).transpose(0, 2, 1, 3)
        k = _linear(x, a[p + "k_proj.weight"], a[p + "k_proj.bias"]).reshape(b, n, h, bits).transpose(0, 2, 1, 3)
        v = _linear(x, a[p + "v_proj.weight"], a[p + "v_proj.bias"]).reshape(b, n, h, dh).transpose(0, 2, 1, 3)
        if c["attention"] == "dense":
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(bits)
            s = np.where(np.tril(np.ones((n, n), bool)), s, -np.inf)
            out = _softmax(s) @ v
            winners.append(None)
            stats["touched"] += b * h * n * (n + 1) // 2
        else:
            topk = c["topk"]
            if c["code"] == "sparse":                 # (B, H, L) codes: argmax per block
                shape = (b, h, n, c["blocks"], c["block_size"])
                qc = SparseHV(q.reshape(shape).argmax(-1), c["block_size"])
                kc = SparseHV(k.reshape(shape).argmax(-1), c["block_size"])
                topk = min(topk, n)                   # sparse codes: topk <= keys is required
                if key_flip:                          # that fraction of key blocks re-drawn
                    ki = kc.indices
                    redraw = rng.random(ki.shape) < key_flip
                    kc = SparseHV(np.where(redraw, rng.integers(0, c["block_size"], ki.shape), ki),
                                  c["block_size"])
            else:
                qc = BinaryHV.from_bool(q >= 0)       # (B, H, L) codes of `bits` elements
                kc = BinaryHV.from_bool(k >= 0)
            if key_flip and c["code"] == "dense":
                flips = rng.random(kc.shape + (bits,)) < key_flip
                kc = kc ^ BinaryHV.from_bool(flips)
            if c["learn_temperature"]:          # one temperature per head: one call per head
                temps = np.exp(a[p + "log_temperature"])
                parts = [kwta_attention(qc[:, j], kc[:, j], np.ascontiguousarray(v[:, j]), topk,
                                        causal=True, temperature=float(temps[j]), return_indices=True,
                                        return_touched=True)
                         for j in range(h)]
                out = np.stack([o for o, _, _ in parts], 1)
                idx = np.stack([i for _, i, _ in parts], 1)
                stats["touched"] += sum(t for _, _, t in parts)
            else:
                out, idx, touched = kwta_attention(qc, kc, np.ascontiguousarray(v), topk, causal=True,
                                                   aggregate="softmax", temperature=self.temperature,
                                                   return_indices=True, return_touched=True)
                stats["touched"] += touched
            if topk < c["topk"]:
                idx = np.pad(idx, [(0, 0)] * (idx.ndim - 1) + [(0, c["topk"] - topk)], constant_values=-1)
            winners.append(idx)
        out = out.transpose(0, 2, 1, 3).reshape(b, n, c["d_model"])
        return _linear(out, a[p + "out_proj.weight"], a[p + "out_proj.bias"])

    def _feed_forward(self, i, hdn, work):
        """Second feed-forward layer; with ``ffn_topk`` only the active units' weight rows."""
        k, a, p = self.config["ffn_topk"], self._w, f"blocks.{i}."
        if k is None:
            work["ffn_density"].append(float(np.mean(hdn != 0)) if hdn.size else 0.0)
            return _linear(hdn, a[p + "ff2.weight"], a[p + "ff2.bias"])
        rows = self._ff2_rows.setdefault(i, np.ascontiguousarray(a[p + "ff2.weight"].T))  # (d_ff, d)
        # the k largest units per token (as torch.topk: ties among equal values are measure-zero)
        active = np.argpartition(-hdn, k - 1, axis=-1)[..., :k]
        vals = np.take_along_axis(hdn, active, -1)
        work["ffn_density"].append(float(np.mean(vals != 0)) * k / hdn.shape[-1] if hdn.size else 0.0)
        return np.einsum("...k,...kd->...d", vals, rows[active]) + a[p + "ff2.bias"]

    def forward(self, tokens, return_winners=False, key_flip=0.0, voter_flip=0.0, seed=0, stats=None):
        """Logits ``(B, L, V)`` (or bit probabilities); ``key_flip`` / ``voter_flip`` flip that
        fraction of key-code bits / voters (drawn from ``seed``) to measure robustness (sparse
        codes: that fraction of key blocks gets a random index).

        ``stats``: a dict to fill with the work done: ``pairs_touched_fraction`` (query-key
        pairs the attention kernels touched over all causal pairs, over every layer and head;
        1 for dense attention and dense codes, which score every pair) and ``ffn_density`` (per
        layer, the fraction of hidden feed-forward units that pass, nonzero, per token)."""
        c, a = self.config, self._w
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens must be an integer array (B, L), got {tokens.dtype} {tokens.shape}")
        n = tokens.shape[1]
        if n > c["max_len"]:
            raise ValueError(f"sequence length {n} exceeds max_len={c['max_len']}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= c["vocab_size"]):
            raise ValueError(f"tokens must lie in [0, {c['vocab_size']})")
        for name, f in (("key_flip", key_flip), ("voter_flip", voter_flip)):
            if not 0.0 <= float(f) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {f!r}")
        rng = np.random.default_rng(seed)
        x = a["tok.weight"][tokens] + a["pos.weight"][:n]
        if c["token_shift"] and n > 1:
            x[:, 1:] += a["prev.weight"][tokens[:, :-1]]
        winners = []
        work = {"touched": 0, "ffn_density": []}
        for i in range(c["n_layers"]):
            p = f"blocks.{i}."
            x = x + self._attention(i, _layer_norm(x, a[p + "ln1.weight"], a[p + "ln1.bias"]), winners,
                                    float(key_flip), rng, work)
            hdn = _gelu_tanh(_linear(_layer_norm(x, a[p + "ln2.weight"], a[p + "ln2.bias"]),
                                     a[p + "ff1.weight"], a[p + "ff1.bias"]))
            x = x + self._feed_forward(i, hdn, work)
        if stats is not None:
            pairs = c["n_layers"] * c["n_heads"] * tokens.shape[0] * n * (n + 1) // 2
            stats["pairs_touched_fraction"] = work["touched"] / pairs if pairs else 0.0
            stats["ffn_density"] = work["ffn_density"]
        x = _layer_norm(x, a["ln_f.weight"], a["ln_f.bias"])
        if c["head"] == "linear":
            out = _linear(x, a["head.weight"], a["head.bias"])
        else:
            pv = _sigmoid(_linear(x, a["head.voters.weight"], a["head.voters.bias"]))
            pv = pv.reshape(x.shape[:-1] + (self.n_bits, c["n_voters"]))
            if voter_flip:
                flip = rng.random((self.n_bits, c["n_voters"])) < voter_flip
                pv = np.where(flip, 1 - pv, pv)
            out = np.clip((pv * self._vote_weights()).sum(-1), 1e-7, 1 - 1e-7)
        out = out.astype(np.float32)
        return (out, winners) if return_winners else out

    __call__ = forward

    def predict(self, tokens, **kw):
        """Most likely token per position ``(B, L)`` int64 (bits decoded for the voter head)."""
        out = self.forward(tokens, **kw)
        if self.config["head"] == "linear":
            return out.argmax(-1)
        return ((out > 0.5).astype(np.int64) << np.arange(self.n_bits)).sum(-1)


def load_packed(path):
    """Shorthand for :meth:`PackedModel.load`."""
    return PackedModel.load(path)
