"""The implementations a benchmark case compares: hdc's backends and the baselines users would
otherwise pick (NumPy float32 on +-1 vectors, torchhd BSC and MAP, faiss ``IndexBinaryFlat``,
torch dense attention).

Each implementation says whether it is present (``missing(op)``: None or a reason such as
"missing: torch not installed"), how many bytes one vector costs it, how much memory a case
needs, and builds a zero-argument callable for a case (``make(case, data)``); data preparation
(packing, conversion to float, index building) happens there, outside the timed call.

>>> from hdc.bench.impls import Case, CaseData, NumpyF32
>>> case = Case("bind", dim=1024, n=8)
>>> fn = NumpyF32("dot").make(case, CaseData(case))
>>> fn().shape
(8, 1024)
"""
import functools
import importlib
import math

import numpy as np

import hdc
from hdc import backend

OPS = ("bind", "permute", "bundle", "cdist", "topk", "encode", "attention")
# what throughput counts, per op
UNITS = {"bind": "vectors/s", "permute": "vectors/s", "bundle": "vectors/s",
         "cdist": "distances/s", "topk": "vectors scanned/s", "encode": "samples/s",
         "attention": "queries/s"}
K_TOPK = 10
ENC_FEATURES, ENC_LEVELS = 64, 16          # record encoding: 64 features, 16 levels (like 8x8 digits)
ATT_HEADS, ATT_DV, ATT_TOPK = 4, 64, 32    # attention: heads, value width, k winners
ENC_CHUNK = 32                             # samples per torchhd encoding chunk (bounds its memory)


class Unsupported(Exception):
    """This implementation cannot run this case; the message is the reason shown in the report."""


class Case:
    """One measured configuration: op, dim, ``n`` (batch or memory size / sequence length), ``nq``
    (queries, for cdist/topk), plus tags saying which sweeps and targets it belongs to."""

    def __init__(self, op, dim, n, nq=1, tags=(), families=None):
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {op!r}")
        self.op, self.dim, self.n, self.nq = op, int(dim), int(n), int(nq)
        self.tags = set(tags)
        self.families = None if families is None else set(families)

    @property
    def key(self):
        return (self.op, self.dim, self.n, self.nq if self.op in ("cdist", "topk") else 1)

    @property
    def label(self):
        if self.op in ("cdist", "topk"):
            return f"{self.op} dim={self.dim:,} {self.nq:,} x {self.n:,}"
        if self.op == "attention":
            return f"attention dim={self.dim:,} L={self.n:,}"
        return f"{self.op} dim={self.dim:,} n={self.n:,}"

    @property
    def work(self):
        """Items per call that the throughput counts (see UNITS)."""
        if self.op in ("cdist", "topk"):
            return self.nq * self.n
        if self.op == "attention":
            return ATT_HEADS * self.n
        return self.n

    @property
    def cost(self):
        """A proxy of a call's cost, for extrapolating from a smaller case of the same op."""
        if self.op == "attention":
            return self.n * self.n * self.dim
        return self.work * self.dim * (ENC_FEATURES if self.op == "encode" else 1)


class CaseData:
    """Inputs of a case, built once and shared by all implementations (in each one's format)."""

    def __init__(self, case, seed=0):
        self.case, self.seed = case, seed

    # packed hypervectors ------------------------------------------------------------------------
    @functools.cached_property
    def a(self):
        c = self.case
        if c.op == "attention":
            return hdc.random((ATT_HEADS, c.n), c.dim, seed=self.seed)
        return hdc.random(c.n, c.dim, seed=self.seed)

    @functools.cached_property
    def b(self):
        """Second operand: bind partner (n), search queries (nq), attention keys."""
        c = self.case
        if c.op == "attention":
            return hdc.random((ATT_HEADS, c.n), c.dim, seed=self.seed + 1)
        n = c.nq if c.op in ("cdist", "topk") else c.n
        return hdc.random(n, c.dim, seed=self.seed + 1)

    def bool_(self, which):
        return self._cache(("bool", which), lambda: getattr(self, which).to_bool())

    def f32(self, which):
        """+-1 float32: bit 1 -> -1, bit 0 -> +1 (torchhd's BSC <-> MAP convention)."""
        return self._cache(("f32", which), lambda: bipolar(self.bool_(which)))

    def _cache(self, key, build):
        store = self.__dict__.setdefault("_store", {})
        if key not in store:
            store[key] = build()
        return store[key]

    # encoding inputs ----------------------------------------------------------------------------
    @functools.cached_property
    def features(self):
        rng = np.random.default_rng(self.seed)
        return rng.random((self.case.n, ENC_FEATURES))

    @functools.cached_property
    def levels_idx(self):
        return np.minimum((self.features * ENC_LEVELS).astype(np.intp), ENC_LEVELS - 1)

    @functools.cached_property
    def values(self):
        rng = np.random.default_rng(self.seed + 2)
        return rng.standard_normal((ATT_HEADS, self.case.n, ATT_DV)).astype(np.float32)


_BIPOLAR = np.array([1.0, -1.0], np.float32)


def bipolar(bits):
    """Bits (bool array) as float32 +-1: 1 -> -1.0, 0 -> +1.0 (a table lookup: a masked store
    into a fresh array takes several times as long at 10,000 x 10,000)."""
    return _BIPOLAR[np.asarray(bits, bool).view(np.uint8)]


def _optional(module, package):
    """The module, or None when ``package`` is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class Impl:
    name = "?"
    family = "?"        # hdc | numpy | torchhd | faiss | torch
    kind = "baseline"   # hdc | baseline
    ops = OPS

    def missing(self):
        """None when usable, else 'missing: <why>'."""
        return None

    def bytes_per_vector(self, dim):
        raise NotImplementedError

    def need_bytes(self, case):
        """Memory the case needs in this implementation's format (inputs, output, temporaries)."""
        c, bpv = case, self.bytes_per_vector(case.dim)
        if c.op == "bind":
            return 3 * c.n * bpv
        if c.op == "permute":
            return 3 * c.n * bpv
        if c.op == "bundle":
            return c.n * bpv + 8 * c.dim
        if c.op in ("cdist", "topk"):
            return (c.n + c.nq) * bpv + 8 * c.n * c.nq
        if c.op == "encode":
            return 2 * c.n * bpv + ENC_CHUNK * ENC_FEATURES * c.dim * 4
        if c.op == "attention":
            return 2 * ATT_HEADS * c.n * bpv + 2 * ATT_HEADS * c.n * c.n * 4
        return 0

    def make(self, case, data):
        raise NotImplementedError


# ---- hdc -------------------------------------------------------------------------------------------

class HdcImpl(Impl):
    """hdc on one backend; the callable runs under ``hdc.use_backend(name)``."""
    kind = family = "hdc"

    def __init__(self, backend_name):
        self.backend = backend_name
        self.name = f"hdc[{backend_name}]"

    def missing(self):
        if self.backend not in backend.backends():
            reason = backend.unavailable().get(self.backend, "unknown backend")
            return f"missing: backend not available ({reason})"
        return None

    def bytes_per_vector(self, dim):
        return 8 * ((dim + 63) // 64)

    def need_bytes(self, case):
        if case.op == "attention":
            return 2 * ATT_HEADS * case.n * self.bytes_per_vector(case.dim) + 2 * ATT_HEADS * case.n * ATT_DV * 4
        return super().need_bytes(case)

    def make(self, case, data):
        name, op = self.backend, case.op
        use = backend.use_backend
        if op == "bind":
            a, b = data.a, data.b
            body = lambda: hdc.bind(a, b)  # noqa: E731
        elif op == "permute":
            a = data.a
            body = lambda: hdc.permute(a, 1)  # noqa: E731
        elif op == "bundle":
            a = data.a
            body = lambda: hdc.bundle(a)  # noqa: E731 - odd sizes: no ties to break
        elif op == "cdist":
            m, q = data.a, data.b
            body = lambda: hdc.cdist(q, m)  # noqa: E731
        elif op == "topk":
            m, q = data.a, data.b
            body = lambda: hdc.topk(q, m, K_TOPK)  # noqa: E731
        elif op == "encode":
            body = _hdc_encoder(case, data)
        elif op == "attention":
            try:
                from hdc.attention import kwta_attention
            except Exception as exc:  # noqa: BLE001
                raise Unsupported(f"not available: hdc.attention ({type(exc).__name__}: {exc})") from None
            q, k, v = data.a, data.b, data.values
            body = lambda: kwta_attention(q, k, v, ATT_TOPK, causal=True, aggregate="softmax")  # noqa: E731
        else:
            raise Unsupported(f"{op} not implemented")

        def fn():
            with use(name):
                return body()
        return fn


def _hdc_encoder(case, data):
    """Record encoding with hdc's encoders: bundle over features of (feature id XOR level)."""
    try:
        from hdc.encoders import RecordEncoder
    except Exception as exc:  # noqa: BLE001
        raise Unsupported(f"not available: hdc.encoders ({type(exc).__name__}: {exc})") from None
    enc = RecordEncoder(case.dim, n_features=ENC_FEATURES, levels=ENC_LEVELS, low=0.0, high=1.0, seed=0)
    x = data.features
    return lambda: enc.encode(x)


# ---- NumPy float32 --------------------------------------------------------------------------------

class NumpyF32(Impl):
    """NumPy float32 on +-1 vectors: multiply (bind), roll, sign of sum, dot or cosine similarity."""
    family = "numpy"

    def __init__(self, similarity="dot"):
        self.similarity = similarity
        self.name = f"numpy f32 {similarity}"
        self.ops = OPS if similarity == "dot" else ("cdist", "topk")

    def bytes_per_vector(self, dim):
        return 4 * dim

    def make(self, case, data):
        op = case.op
        if op == "bind":
            a, b = data.f32("a"), data.f32("b")
            return lambda: a * b
        if op == "permute":
            a = data.f32("a")
            return lambda: np.roll(a, 1, axis=-1)
        if op == "bundle":
            a = data.f32("a")
            return lambda: np.sign(a.sum(axis=0))
        if op in ("cdist", "topk"):
            m, q = data.f32("a"), data.f32("b")
            sim = _numpy_similarity(m, q, self.similarity)
            if op == "cdist":
                return sim
            k = K_TOPK

            def search():
                s = sim()
                part = np.argpartition(-s, k - 1, axis=-1)[..., :k]
                order = np.argsort(-np.take_along_axis(s, part, -1), axis=-1, kind="stable")
                return np.take_along_axis(part, order, -1)
            return search
        if op == "encode":
            d, rng = case.dim, np.random.default_rng(1)
            ids = np.where(rng.random((ENC_FEATURES, d)) < 0.5, -1, 1).astype(np.float32)
            lev = np.where(rng.random((ENC_LEVELS, d)) < 0.5, -1, 1).astype(np.float32)
            idx = data.levels_idx

            def encode():
                acc = np.zeros((idx.shape[0], d), np.float32)
                for f in range(ENC_FEATURES):
                    acc += ids[f] * lev[idx[:, f]]
                return np.sign(acc)
            return encode
        if op == "attention":
            q, k, v = data.f32("a"), data.f32("b"), data.values
            return lambda: _dense_attention_numpy(q, k, v, case.dim)
        raise Unsupported(f"{op} not implemented")


def _numpy_similarity(m, q, kind):
    """Similarity rows (nq, n): a matvec for one query, a matmul for several."""
    if kind == "dot":
        if q.shape[0] == 1:
            q0 = q[0]
            return lambda: (m @ q0)[None, :]
        return lambda: q @ m.T
    m_norm = np.linalg.norm(m, axis=1)  # index-time work, like a user would precompute it

    def cosine():
        qn = np.linalg.norm(q, axis=1)
        raw = (m @ q[0])[None, :] if q.shape[0] == 1 else q @ m.T
        return raw / (qn[:, None] * m_norm[None, :])
    return cosine


def _dense_attention_numpy(q, k, v, dim):
    """Causal softmax attention over all keys, float32: (H, L, d) x (H, L, d) -> (H, L, dv)."""
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(dim))
    n = scores.shape[-1]
    scores[:, ~np.tri(n, dtype=bool)] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return np.matmul(scores, v)


# ---- torchhd ---------------------------------------------------------------------------------------

def _torch_missing():
    if _optional("torch", "torch") is None:
        return "missing: torch not installed"
    if _optional("torchhd", "torch-hd") is None:
        return "missing: torchhd not installed (pip install torch-hd)"
    return None


class TorchhdImpl(Impl):
    """torchhd's functional API on BSC (one byte per element) or MAP (float32) tensors."""
    family = "torchhd"

    def __init__(self, vsa):
        self.vsa = vsa
        self.name = f"torchhd {vsa}"
        self.ops = ("bind", "permute", "bundle", "cdist", "topk", "encode")

    def missing(self):
        return _torch_missing()

    def bytes_per_vector(self, dim):
        return dim if self.vsa == "BSC" else 4 * dim

    def need_bytes(self, case):
        base = super().need_bytes(case)
        if case.op in ("cdist", "topk"):
            if self.vsa == "BSC":
                # hamming_similarity materialises (nq, n, dim) bools, then sums them as int64
                return base + case.nq * case.n * case.dim * 9
            return base + case.n * case.dim * 4  # cosine: others * others
        if case.op == "bundle" and self.vsa == "BSC":
            return base + 8 * case.dim
        return base

    def _tensor(self, data, which):
        import torch
        import torchhd
        if self.vsa == "BSC":
            return torchhd.BSCTensor(torch.from_numpy(data.bool_(which)))
        return torchhd.MAPTensor(torch.from_numpy(data.f32(which)))

    def make(self, case, data):
        import torch
        import torchhd
        op = case.op
        if op == "bind":
            a, b = self._tensor(data, "a"), self._tensor(data, "b")
            return lambda: torchhd.bind(a, b)
        if op == "permute":
            a = self._tensor(data, "a")
            return lambda: torchhd.permute(a, shifts=1)
        if op == "bundle":
            a = self._tensor(data, "a")
            return lambda: torchhd.multiset(a)
        if op in ("cdist", "topk"):
            m, q = self._tensor(data, "a"), self._tensor(data, "b")
            if self.vsa == "BSC":
                sim = lambda: torchhd.hamming_similarity(q, m)  # noqa: E731
            else:
                sim = lambda: torchhd.cosine_similarity(q, m)  # noqa: E731
            if op == "cdist":
                return sim
            return lambda: torch.topk(sim(), K_TOPK, dim=-1)
        if op == "encode":
            ids = torchhd.random(ENC_FEATURES, case.dim, self.vsa, generator=torch.Generator().manual_seed(1))
            lev = torchhd.random(ENC_LEVELS, case.dim, self.vsa, generator=torch.Generator().manual_seed(2))
            idx = torch.from_numpy(data.levels_idx)

            def encode():
                parts = [torchhd.hash_table(ids, lev[idx[i:i + ENC_CHUNK]])
                         for i in range(0, idx.shape[0], ENC_CHUNK)]
                return torch.cat(parts)
            return encode
        raise Unsupported(f"{op} not implemented")


# ---- faiss -----------------------------------------------------------------------------------------

class FaissBinaryFlat(Impl):
    """faiss ``IndexBinaryFlat``: exhaustive Hamming search on packed codes (search only)."""
    family = "faiss"
    name = "faiss IndexBinaryFlat"
    ops = ("topk",)

    def missing(self):
        return None if _optional("faiss", "faiss-cpu") is not None else "missing: faiss not installed"

    def bytes_per_vector(self, dim):
        return (dim + 7) // 8

    def make(self, case, data):
        import faiss
        if case.dim % 8:
            raise Unsupported(f"not available: faiss needs dim divisible by 8, got {case.dim}")
        nbytes = case.dim // 8
        index = faiss.IndexBinaryFlat(case.dim)
        index.add(np.ascontiguousarray(data.a.words.view(np.uint8)[:, :nbytes]))
        q = np.ascontiguousarray(data.b.words.view(np.uint8)[:, :nbytes])
        return lambda: index.search(q, K_TOPK)


# ---- torch dense attention -----------------------------------------------------------------------

class TorchDenseAttention(Impl):
    """torch ``scaled_dot_product_attention`` (causal softmax over all keys) on float32 +-1 codes."""
    family = "torch"
    name = "torch f32 softmax"
    ops = ("attention",)

    def missing(self):
        return None if _optional("torch", "torch") is not None else "missing: torch not installed"

    def bytes_per_vector(self, dim):
        return 4 * dim

    def make(self, case, data):
        import torch
        q, k = torch.from_numpy(data.f32("a")), torch.from_numpy(data.f32("b"))
        v = torch.from_numpy(data.values)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return lambda: sdpa(q, k, v, is_causal=True)


class HdcSparseAttention(Impl):
    """hdc's event-driven k-WTA attention on random sparse block codes (8 blocks of 1,024, so
    about 0.8% of the causal query-key pairs share a block; the case's ``dim`` does not apply),
    C backend: the issue-13 comparison next to the dense-code kernel and SDPA."""
    kind = family = "hdc"
    name = "hdc sparse codes (c)"
    ops = ("attention",)
    BLOCKS, BLOCK_SIZE = 8, 1024

    def missing(self):
        if "c" not in backend.backends():
            return f"missing: backend not available ({backend.unavailable().get('c', 'c')})"
        return None

    def bytes_per_vector(self, dim):
        return 2 * self.BLOCKS                    # one uint16 index per block

    def need_bytes(self, case):
        # codes, the inverted index (4 bytes per key and block) and values
        return ATT_HEADS * case.n * (3 * self.BLOCKS * 4 + 2 * ATT_DV * 4)

    def make(self, case, data):
        from hdc.attention import kwta_attention
        q = hdc.random_sparse((ATT_HEADS, case.n), self.BLOCKS, self.BLOCK_SIZE, seed=data.seed)
        k = hdc.random_sparse((ATT_HEADS, case.n), self.BLOCKS, self.BLOCK_SIZE, seed=data.seed + 1)
        v = data.values

        def fn():
            with backend.use_backend("c"):
                return kwta_attention(q, k, v, min(ATT_TOPK, case.n), causal=True, aggregate="softmax")
        return fn


def implementations(backends=None, baselines=True):
    """The implementations to compare: hdc on each backend (default: every known backend, so a
    missing one is reported) and, with ``baselines``, every baseline."""
    order = ("c", "numba", "numpy")   # fastest first: the first one measured is the reference
    names = order if backends is None else sorted(dict.fromkeys(backends), key=lambda b: (
        order.index(b) if b in order else len(order), b))
    impls = [HdcImpl(b) for b in names]
    if baselines:
        impls += [NumpyF32("dot"), NumpyF32("cosine"), TorchhdImpl("BSC"), TorchhdImpl("MAP"),
                  FaissBinaryFlat(), TorchDenseAttention(), HdcSparseAttention()]
    return impls
