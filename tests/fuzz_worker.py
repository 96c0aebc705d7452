"""Subprocess side of the API fuzzer (tests/test_fuzz.py).

Reads one JSON spec per line on stdin, expands it with a seeded NumPy generator into
``spec["calls"]`` calls of the public API with odd shapes, dtypes, index keys and numbers, and
checks each: the result must equal the NumPy reference, or the call must raise ValueError,
TypeError, IndexError or MemoryError. Writes one JSON line per spec: ``{"calls": n}`` or
``{"fail": message}``. A crash (a signal) ends the process; the parent then re-runs the spec
with ``"trace": true``, which prints every call to stderr before making it.
"""
import contextlib
import json
import sys
import traceback

import numpy as np

import hdc
from hdc.attention import kwta_select

ALLOWED = (ValueError, TypeError, IndexError, MemoryError)
DIMS = (1, 2, 63, 64, 65, 127, 128, 130, 200)


class Mismatch(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Mismatch(what)


# ---- inputs -------------------------------------------------------------------------------------

def wild_number(rng, wild):
    """A number from the spec's wild values or a small random one, of a random Python/NumPy type."""
    pick = rng.integers(6)
    if pick == 0 and wild:
        v = wild[rng.integers(len(wild))]
    elif pick == 1:
        v = float(rng.standard_normal() * 10)
    elif pick == 2:
        v = int(rng.integers(-3, 3)) * 2 ** int(rng.integers(0, 70))
    else:
        v = int(rng.integers(-3, 12))
    kind = rng.integers(5)
    if kind == 0 and isinstance(v, int) and -2 ** 63 <= v < 2 ** 63:
        return np.int64(v)
    if kind == 1 and isinstance(v, float):
        return np.float32(v) if abs(v) < 3e38 or v != v else v
    if kind == 2:
        return bool(rng.integers(2))
    return v


def size_number(rng, wild):
    """A wild number for a size argument: a valid size beyond 4096 (a slow, legitimate allocation)
    becomes a small one; invalid ones (negative, float, huge) stay."""
    v = wild_number(rng, wild)
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and 4096 < v < 2 ** 50:
        return int(v) % 4096
    return v


def batch_shape(rng, max_ndim=3, max_len=4):
    return tuple(int(s) for s in rng.integers(0, max_len + 1, rng.integers(0, max_ndim + 1)))


def hv(rng, shape, dim):
    bits = rng.integers(0, 2, shape + (dim,)).astype(bool)
    return hdc.BinaryHV.from_bool(bits) if bits.shape[-1] else None, bits


def index_key(rng, shape, wild):
    """A random index: ints (some out of range), slices, None, Ellipsis, masks, int arrays, junk."""
    parts = []
    for _ in range(rng.integers(0, len(shape) + 2)):
        n = shape[len(parts)] if len(parts) < len(shape) else 2
        pick = rng.integers(10)
        if pick == 0:
            parts.append(int(rng.integers(-n - 2, n + 2)))
        elif pick == 1:
            parts.append(slice(int(rng.integers(-3, 4)), int(rng.integers(-3, 5)), int(rng.choice([-2, -1, 1, 2, 3]))))
        elif pick == 2:
            parts.append(None)
        elif pick == 3:
            parts.append(Ellipsis)
        elif pick == 4:
            parts.append(rng.integers(0, 2, int(rng.integers(0, n + 2))).astype(bool))
        elif pick == 5:
            parts.append(rng.integers(-n - 1, n + 1, rng.integers(0, 4)))
        elif pick == 6:
            parts.append([int(i) for i in rng.integers(-n, max(n, 1), rng.integers(0, 3))])
        elif pick == 7:
            parts.append(rng.integers(0, 2, tuple(int(s) for s in rng.integers(0, 3, 2))).astype(bool))
        elif pick == 8:
            parts.append(wild_number(rng, wild))
        else:
            parts.append(slice(None))
    return tuple(parts) if len(parts) != 1 or rng.integers(2) else parts[0]


def numpy_index(shape, key):
    """What NumPy does with ``key`` on an array of batch shape ``shape`` (flat row numbers)."""
    rows = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return np.asarray(rows[key])


# ---- one fuzzed call per op ---------------------------------------------------------------------

def op_index(rng, dim, wild):
    shape = batch_shape(rng)
    x, bits = hv(rng, shape, dim)
    key = index_key(rng, shape, wild)
    try:
        want = numpy_index(shape, key)
    except Exception:  # noqa: BLE001 - NumPy refuses: hdc must refuse too (with an allowed error)
        want = None
    try:
        got = x[key]
    except ALLOWED:
        return
    check(want is not None, f"hdc accepted index {key!r} on batch shape {shape}, NumPy did not")
    check(isinstance(want, np.ndarray) and got.shape == want.shape, f"index {key!r}: shape {got.shape} vs {np.shape(want)}")
    rows = bits.reshape(-1, dim)[want.reshape(-1)].reshape(want.shape + (dim,))
    check(np.array_equal(got.to_bool(), rows), f"index {key!r}: wrong bits")
    check(got.words.shape[-1] == (dim + 63) // 64, "index: words do not match dim")


def _pair_shapes(rng):
    a = batch_shape(rng, 2, 3)
    if rng.integers(3):
        b = tuple(s if rng.integers(3) else 1 for s in a)[int(rng.integers(0, len(a) + 1)):]
    else:
        b = batch_shape(rng, 2, 3)
    return a, b


def op_elementwise(rng, dim, wild):
    a_shape, b_shape = _pair_shapes(rng)
    dim_b = dim if rng.integers(8) else int(rng.choice(DIMS))
    a, abits = hv(rng, a_shape, dim)
    b, bbits = hv(rng, b_shape, dim_b)
    try:
        ref = np.logical_xor(abits, bbits) if dim == dim_b else None
    except ValueError:
        ref = None
    which = rng.integers(3)
    try:
        got = (hdc.bind, hdc.hamming, hdc.similarity)[which](a, b)
    except ALLOWED:
        check(ref is None or 0 in a_shape + b_shape and False, f"elementwise {a_shape} {b_shape} refused")
        return
    check(ref is not None, f"elementwise accepted {a_shape} dim {dim} with {b_shape} dim {dim_b}")
    if which == 0:
        check(np.array_equal(got.to_bool(), ref), "bind: wrong bits")
    elif which == 1:
        check(np.array_equal(got, ref.sum(-1)) and got.dtype.kind in "iu", "hamming: wrong distances")
    else:
        check(np.allclose(got, 1 - 2 * ref.sum(-1) / dim), "similarity: wrong values")


def op_permute(rng, dim, wild):
    x, bits = hv(rng, batch_shape(rng, 2), dim)
    shift = wild_number(rng, wild)
    try:
        got = hdc.permute(x, shift)
    except ALLOWED:
        check(isinstance(shift, (float, bool, np.floating, np.bool_)), f"permute refused shift {shift!r}")
        return
    check(np.array_equal(got.to_bool(), np.roll(bits, int(shift) % dim, -1)), f"permute {shift!r}: wrong bits")


def op_bundle(rng, dim, wild):
    n = int(rng.integers(0, 6))
    x, bits = hv(rng, (n,) + batch_shape(rng, 1, 3), dim)
    pick = rng.integers(4)
    weights = None
    if pick == 1:
        weights = [wild_number(rng, wild) for _ in range(n + int(rng.integers(-1, 2) if rng.integers(4) == 0 else 0))]
    elif pick == 2:
        weights = rng.integers(0, 2 ** int(rng.integers(1, 63)), n)
    tie = int(rng.integers(2))
    try:
        got = hdc.bundle(x, weights=weights, tie=tie)
    except ALLOWED:
        return
    w = [1] * n if weights is None else [float(v) if isinstance(v, (float, np.floating)) else int(v) for v in weights]
    check(len(w) == n and all(v >= 0 for v in w) and sum(w) > 0, f"bundle accepted weights {weights!r}")
    if all(float(v) == int(v) for v in w) and sum(int(v) for v in w) < 2 ** 62:
        counts = sum(int(wi) * bits[i].astype(object) for i, wi in enumerate(w))
        total = sum(int(v) for v in w)
        ref = (2 * counts > total) | ((2 * counts == total) & bool(tie))
        check(np.array_equal(got.to_bool(), ref.astype(bool)), f"bundle weights {weights!r}: wrong bits")


def op_search(rng, dim, wild):
    nq, nm = int(rng.integers(0, 5)), int(rng.integers(0, 7))
    q, qbits = hv(rng, (nq,), dim)
    m, mbits = hv(rng, (nm,), dim)
    k = wild_number(rng, wild) if rng.integers(3) == 0 else int(rng.integers(1, max(nm, 1) + 1))
    ref = (qbits[:, None, :] != mbits[None, :, :]).sum(-1)
    if rng.integers(2):
        got = hdc.cdist(q, m)
        check(np.array_equal(got, ref), "cdist: wrong distances")
        return
    try:
        dist, idx = hdc.topk(q, m, k)
    except ALLOWED:
        check(not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= nm),
              f"topk refused k={k!r} with {nm} stored")
        return
    order = np.lexsort((np.broadcast_to(np.arange(nm), ref.shape), ref), axis=-1)[:, :int(k)] if nq else idx
    check(np.array_equal(idx, order) and np.array_equal(dist, np.take_along_axis(ref, order, 1) if nq else dist),
          f"topk k={k}: wrong neighbours")


def op_accumulator(rng, dim, wild):
    acc = hdc.Accumulator(dim)
    counts = np.zeros(dim, object)
    added = []
    for _ in range(int(rng.integers(1, 5))):
        x, bits = hv(rng, (int(rng.integers(0, 4)),), dim)
        w = None if rng.integers(2) else wild_number(rng, wild)
        try:
            acc.add(x, weights=w)
        except ALLOWED:
            continue
        wv = 1 if w is None else int(w)
        counts = counts + bits.sum(0).astype(object) * wv
        added.append((x, w))
    check(np.array_equal(acc.counts, counts), "Accumulator: wrong counts")
    if added and rng.integers(2):
        x, w = added[int(rng.integers(len(added)))]
        acc.remove(x, weights=w)
        counts = counts - (1 if w is None else int(w)) * x.to_bool().sum(0).astype(object)
        check(np.array_equal(acc.counts, counts), "Accumulator.remove: wrong counts")


def op_construct(rng, dim, wild):
    pick = rng.integers(4)
    if pick == 0:
        dtype = rng.choice(["bool", "int8", "uint64", "float64", "object", "U1", "complex64"])
        arr = rng.integers(0, 2 + int(rng.integers(2)), batch_shape(rng, 2) + (dim,)).astype(dtype)
        if dtype == "float64" and rng.integers(3) == 0 and arr.size:
            arr.flat[0] = np.nan
        try:
            got = hdc.BinaryHV.from_bool(arr)
        except ALLOWED:
            return
        check(np.array_equal(got.to_bool(), arr.astype(bool)) and np.isin(arr, (0, 1)).all(), "from_bool: wrong bits")
    elif pick == 1:
        words = rng.integers(0, 2 ** 63, batch_shape(rng, 2) + (int(rng.integers(0, 4)),), dtype=np.uint64)
        d = size_number(rng, wild) if rng.integers(3) == 0 else dim
        try:
            got = hdc.BinaryHV(words, d)
        except ALLOWED:
            return
        check(words.shape[-1] == (int(d) + 63) // 64, "BinaryHV accepted words of the wrong length")
        check(np.array_equal(got.words, words), "BinaryHV changed the words")
        check(int(d) % 64 == 0 or not (words[..., -1] >> np.uint64(int(d) % 64)).any(), "BinaryHV accepted padding bits")
    elif pick == 2:
        n = int(rng.integers(0, 40))
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes() if rng.integers(4) else wild_number(rng, wild)
        d = size_number(rng, wild) if rng.integers(3) == 0 else dim
        try:
            got = hdc.BinaryHV.from_bytes(data, d)
        except ALLOWED:
            return
        check(isinstance(data, bytes) and len(data) == len(got) * ((int(d) + 7) // 8), "from_bytes: wrong length")
        check(got.to_bytes() == data, "from_bytes: round trip differs")
    else:
        n = size_number(rng, wild) if rng.integers(2) else batch_shape(rng, 2)
        d = size_number(rng, wild) if rng.integers(3) == 0 else dim
        try:
            got = hdc.random(n, d, seed=int(rng.integers(2 ** 31)))
        except ALLOWED:
            return
        want = (int(n),) if not isinstance(n, tuple) else n
        check(got.shape == want and got.dim == int(d), f"random({n!r}, {d!r}): shape {got.shape}")


def op_encoders(rng, dim, wild):
    pick = rng.integers(5)
    levels = int(rng.integers(2, 9))
    values = np.array([wild_number(rng, wild) for _ in range(int(rng.integers(0, 5)))], dtype=object)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        return
    lo, hi = sorted(float(v) for v in rng.standard_normal(2) * 10 ** int(rng.integers(0, 300)))
    if pick <= 2:
        cls = (hdc.LevelEncoder, hdc.ThermometerEncoder, hdc.CircularEncoder)[pick]
        try:
            enc = cls(dim, levels, low=lo, high=hi, seed=1, clip=bool(rng.integers(2)))
            idx = enc.index(values)
            got = enc.encode(values)
        except ALLOWED:
            return
        check(((0 <= idx) & (idx < levels)).all(), f"{cls.__name__}: level index {idx} out of range")
        check(np.array_equal(got.words, enc.codebook.words[idx]), f"{cls.__name__}: wrong vectors")
    elif pick == 3:
        nf = int(rng.integers(1, 4))
        X = rng.standard_normal((int(rng.integers(0, 4)), nf)) * 10 ** float(rng.integers(0, 300))
        if X.size and rng.integers(3) == 0:
            X.flat[int(rng.integers(X.size))] = values[0] if values.size else np.nan
        try:
            enc = hdc.RecordEncoder(dim, nf, levels=levels, low=lo, high=hi, seed=2, clip=bool(rng.integers(2)))
            if rng.integers(2):
                enc.fit(X)
            idx = enc.index(X)
            got = enc.encode(X)
        except ALLOWED:
            return
        check(((0 <= idx) & (idx < levels)).all(), "RecordEncoder: level index out of range")
        check(got.shape == (X.shape[0],), "RecordEncoder: wrong shape")
    else:
        texts = ["".join(chr(int(c)) for c in rng.integers(32, 0x2FFF, int(rng.integers(0, 8))))
                 for _ in range(int(rng.integers(0, 4)))]
        try:
            got = hdc.NGramEncoder(dim, n=int(rng.integers(1, 4)), seed=3)(np.array(texts) if rng.integers(2) else texts)
        except ALLOWED:
            return
        check(got.shape == (len(texts),), "NGramEncoder: wrong shape")


def op_memory(rng, dim, wild):
    mem = hdc.AssociativeMemory(dim)
    stored, labels = [], []
    for _ in range(int(rng.integers(1, 6))):
        x, bits = hv(rng, (int(rng.integers(0, 4)),), dim)
        lab = None if rng.integers(2) else [wild_number(rng, wild) for _ in range(len(x) + int(rng.integers(3) == 0))]
        try:
            mem.add(x, labels=lab)
        except ALLOWED:
            continue
        stored.append(bits)
        labels += list(range(len(labels), len(labels) + len(x))) if lab is None else lab
    if rng.integers(2) and labels:
        target = labels[int(rng.integers(len(labels)))] if rng.integers(4) else wild_number(rng, wild)
        try:
            mem.remove(target)
        except (KeyError,) + ALLOWED:
            pass
    q, qbits = hv(rng, (int(rng.integers(0, 3)),), dim)
    k = int(rng.integers(0, 4))
    try:
        d, found = mem.search(q, k)
    except ALLOWED:
        check(not (1 <= k <= len(mem)), f"search refused k={k} with {len(mem)} stored")
        return
    vec = mem.vectors.to_bool()
    ref = (qbits[:, None] != vec[None]).sum(-1)
    check(np.array_equal(np.sort(ref, 1)[:, :k], d), "memory search: wrong distances")


def op_kwta(rng, dim, wild):
    lead = batch_shape(rng, 1, 2)
    nq, nk = int(rng.integers(0, 6)), int(rng.integers(0, 6))
    q, qbits = hv(rng, lead + (nq,), dim)
    k, kbits = hv(rng, lead + (nk,), dim)
    topk = wild_number(rng, wild) if rng.integers(3) == 0 else int(rng.integers(1, 8))
    causal = bool(rng.integers(2))
    try:
        scores, idx = kwta_select(q, k, topk, causal=causal)
    except ALLOWED:
        return
    check(nk > 0 and int(topk) >= 1, f"kwta accepted topk={topk!r} with {nk} keys")
    check(idx.shape == lead + (nq, min(int(topk), nk)), f"kwta: shape {idx.shape}")
    s = dim - (qbits[..., :, None, :] != kbits[..., None, :, :]).sum(-1)
    for h in np.ndindex(lead):
        for i in range(nq):
            vis = nk - nq + i + 1 if causal else nk
            order = np.argsort(-s[h][i, :vis], kind="stable")[:idx.shape[-1]]
            want = np.full(idx.shape[-1], -1)
            want[:len(order)] = order
            check(np.array_equal(idx[h][i], want), "kwta: wrong winners")


def op_threads(rng, dim, wild):
    before = hdc.get_num_threads()
    n = size_number(rng, wild)
    try:
        hdc.set_num_threads(n)
    except ALLOWED:
        pass
    x = hdc.random(3, dim, seed=0)
    check(np.array_equal(hdc.hamming(x, x), np.zeros(3)), "kernels broken after set_num_threads")
    hdc.set_num_threads(before)


OPS = {"index": op_index, "elementwise": op_elementwise, "permute": op_permute, "bundle": op_bundle,
       "search": op_search, "accumulator": op_accumulator, "construct": op_construct,
       "encoders": op_encoders, "memory": op_memory, "kwta": op_kwta, "threads": op_threads}


def run_spec(spec):
    rng = np.random.default_rng(spec["seed"])
    wild = spec["wild"]
    calls = 0
    name, _, isa = spec["backend"].partition(":")
    with hdc.use_backend(name), (hdc.use_isa(isa) if isa else contextlib.nullcontext()):
        for i in range(spec["calls"]):
            op = spec["ops"][i % len(spec["ops"])]
            dim = int(rng.choice(DIMS))
            if spec.get("trace"):
                print(f"call {i}: {op} dim={dim} state={rng.bit_generator.state['state']}", file=sys.stderr, flush=True)
            try:
                OPS[op](rng, dim, wild)
            except Mismatch as exc:
                return {"fail": f"call {i} ({op}, dim {dim}): {exc}"}
            except ALLOWED:
                pass
            except Exception as exc:  # noqa: BLE001 - any other exception type is a finding
                return {"fail": f"call {i} ({op}, dim {dim}): {type(exc).__name__}: {exc}\n{traceback.format_exc()}"}
            calls += 1
    return {"calls": calls}


def main():
    import warnings

    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    for line in sys.stdin:
        spec = json.loads(line)
        print(json.dumps(run_spec(spec)), flush=True)


if __name__ == "__main__":
    main()
