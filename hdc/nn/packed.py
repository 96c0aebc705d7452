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
import numbers
import os
import zipfile

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
# Sane upper bounds on the integer config entries: a file that claims more is refused before any
# allocation sized by it.
_CONFIG_LIMITS = {"vocab_size": 1 << 24, "d_model": 1 << 16, "n_layers": 1 << 10, "n_heads": 1 << 10,
                  "code_bits": 1 << 20, "topk": 1 << 24, "max_len": 1 << 24, "d_ff": 1 << 20,
                  "n_voters": 1 << 16, "blocks": 1 << 20, "block_size": 1 << 16, "ffn_topk": 1 << 20}
# entries that may be None (code_bits for sparse codes, blocks/block_size for dense ones)
_OPTIONAL = ("code_bits", "blocks", "block_size", "ffn_topk")
_MAX_TOKEN_SHIFT = 1 << 10
_CONFIG_BYTES = 1 << 20   # the JSON config member
_WEIGHTS_PER_LAYER = 16
# A member may inflate to at most this many times its stored size (float weights barely compress;
# more is a decompression bomb), plus this slack for small, compressible arrays.
_MAX_RATIO, _RATIO_SLACK = 16, 1 << 20


def token_shift_width(value):
    """Width of the causal token convolution a ``token_shift`` setting means: ``False`` 1 (the
    token alone), ``True`` 2 (with the previous token, the first releases' only shift), an int
    ``W >= 1`` that many (the token and the ``W - 1`` before it).

    >>> token_shift_width(True), token_shift_width(4)
    (2, 4)
    """
    if isinstance(value, bool):
        return 2 if value else 1
    if not isinstance(value, numbers.Integral) or not 1 <= value <= _MAX_TOKEN_SHIFT:
        raise ValueError(f"token_shift must be a bool or an int in [1, {_MAX_TOKEN_SHIFT}], got {value!r}")
    return int(value)


def token_shift_weights(width):
    """State-dict names of the shift embeddings: ``prev.weight`` (the previous token), then
    ``prev{s}.weight`` for the token ``s`` places back, ``s = 2 .. width - 1``."""
    return ["prev.weight"][:width - 1] + [f"prev{s}.weight" for s in range(2, width)]


def _check_config(config):
    """The config dict with every key present and every number within :data:`_CONFIG_LIMITS`."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"config is missing {missing}")
    config = {**_CONFIG_DEFAULTS, **config}
    if config["code"] not in ("dense", "sparse"):
        raise ValueError(f"config['code'] must be 'dense' or 'sparse', got {config['code']!r}")
    required = ("blocks", "block_size") if config["code"] == "sparse" else ("code_bits",)
    for key, high in _CONFIG_LIMITS.items():
        value = config[key]
        if value is None and key in _OPTIONAL and key not in required:
            continue
        low = 0 if key in ("n_layers",) else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
            raise ValueError(f"config[{key!r}] must be an int in [{low}, {high}], got {value!r}")
    if config["attention"] not in ("kwta", "dense") or config["head"] not in ("linear", "voter"):
        raise ValueError(f"config attention/head must be 'kwta'/'dense' and 'linear'/'voter', got "
                         f"{config['attention']!r} / {config['head']!r}")
    config["token_shift"] = token_shift_width(config["token_shift"])
    if config["d_model"] % config["n_heads"]:
        raise ValueError(f"config d_model {config['d_model']} is not a multiple of n_heads {config['n_heads']}")
    for key in ("temperature", "voter_temperature"):
        t = config[key]
        if t is not None and (isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 < t < math.inf):
            raise ValueError(f"config[{key!r}] must be None or a positive finite number, got {t!r}")
    return config


def _read_npz(path):
    """``(config, arrays)`` of a saved model, refusing bombs, bad sizes and damaged members."""
    try:
        size = os.stat(path).st_size
        with zipfile.ZipFile(path) as archive:
            infos = {i.filename: i for i in archive.infolist()}
            for info in infos.values():
                if info.file_size > _MAX_RATIO * info.compress_size + _RATIO_SLACK or info.file_size > 2 * size + _RATIO_SLACK * _MAX_RATIO:
                    raise ValueError(f"{path}: member {info.filename!r} would inflate from {info.compress_size} "
                                     f"to {info.file_size} bytes (a decompression bomb?)")
            for name in ("__format__.npy", "__config__.npy"):
                if name not in infos or infos[name].file_size > _CONFIG_BYTES:
                    raise ValueError(f"{path} is not a {FORMAT} file (no {name[:-4]} entry of at most "
                                     f"{_CONFIG_BYTES} bytes)")

            def member(name):
                with archive.open(infos[name]) as f:
                    return np.lib.format.read_array(f, allow_pickle=False)

            if bytes(member("__format__.npy")).decode("utf-8") != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file")
            config = _check_config(json.loads(bytes(member("__config__.npy")).decode("utf-8")))
            weights = [n for n in infos if not n.startswith("__")]
            if config["n_layers"] * _WEIGHTS_PER_LAYER > len(weights):
                raise ValueError(f"{path}: config says n_layers={config['n_layers']} but the file holds "
                                 f"only {len(weights)} weight arrays")
            arrays = {}
            for name in weights:
                if not name.endswith(".npy"):
                    raise ValueError(f"{path}: unexpected member {name!r}")
                arrays[name[:-4]] = member(name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError, NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ValueError(f"{path}: damaged or not a {FORMAT} file ({type(exc).__name__}: {exc})") from None
    return config, arrays


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
        self.config = _check_config(config)
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise ValueError(f"arrays[{name!r}] must be a numeric ndarray, got "
                                 f"{getattr(value, 'dtype', type(value).__name__)}")
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        self._w = {k: v.astype(np.float64) for k, v in self.arrays.items()}    # computed in float64
        c = self.config
        self.d_head = c["d_model"] // c["n_heads"] if c["n_heads"] else 0
        default_temperature = 1.0 if c["code"] == "sparse" else math.sqrt(c["code_bits"]) / 2
        self.temperature = (float(c["temperature"]) if c["temperature"] is not None
                            else default_temperature)
        self.n_bits = max(1, math.ceil(math.log2(c["vocab_size"])))
        self._ff2_rows = {}
        need = ["tok.weight", "pos.weight", "ln_f.weight", "ln_f.bias"] + token_shift_weights(c["token_shift"])
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
        d, v = c["d_model"], c["vocab_size"]
        shapes = {"tok.weight": (v, d), "pos.weight": (c["max_len"], d), "ln_f.weight": (d,), "ln_f.bias": (d,)}
        for name, shape in shapes.items():
            if self.arrays[name].shape != shape:
                raise ValueError(f"arrays[{name!r}] must have shape {shape} for this config, got "
                                 f"{self.arrays[name].shape}")

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path):
        """Write the ``.npz`` format described in the module docstring."""
        blobs = {"__config__": np.frombuffer(json.dumps(self.config).encode(), np.uint8),
                 "__format__": np.frombuffer(FORMAT.encode(), np.uint8)}
        np.savez(path, **self.arrays, **blobs)

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save` (``allow_pickle=False``: no code runs).

        Refused with a ValueError before any large allocation: a damaged archive (every member is
        CRC-checked), a config number beyond sane limits or more layers than the file holds
        weights for, and a member that would inflate far beyond its stored size.
        """
        config, arrays = _read_npz(os.fsdecode(os.fspath(path)))
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
        for s, name in enumerate(token_shift_weights(c["token_shift"]), start=1):
            if s < n:
                x[:, s:] += a[name][tokens[:, :-s]]
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
