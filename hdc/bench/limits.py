"""The machine's own limits, measured in the same run as the kernels (``hdc bench``).

- read bandwidth: :func:`xor_reduce` (C, every thread, the active SIMD path's widest vectors) of
  a matrix much larger than the caches, in GB/s;
- copy bandwidth: ``np.copyto`` of the same matrix (bytes read + written per second);
- the bundle's input read once: :func:`xor_reduce` of exactly the rows ``bundle`` counts, timed
  in the same round-robin as the bundle on every path (so with its input in cache, as the
  bundle's repeated calls have it).

A kernel's *fraction of its limit* is the limit's time over the kernel's (1.0 = as fast as just
reading its input): a single-query scan is bound by the read bandwidth, bundling by the read of
its input.

>>> import numpy as np
>>> from hdc.bench import limits
>>> x = np.arange(12, dtype=np.uint64).reshape(4, 3)
>>> limits.xor_reduce(x).tolist() == np.bitwise_xor.reduce(x, axis=0).tolist()
True
"""
import numpy as np


def xor_reduce(x, out=None):
    """XOR of the rows of ``x`` (uint64, shape (n, w)) -> (w,), on every C thread.

    Shapes: ``x`` (n, w) C-contiguous uint64; returns / fills ``out`` (w,).
    """
    from .._kernels._c import U64, check_array, check_shape, lib, u64
    check_array(x, "x", U64, 2)
    if out is None:
        out = np.empty(x.shape[1], np.uint64)
    check_array(out, "out", U64, 1, writable=True), check_shape(out, "out", (x.shape[1],))
    if out.size and lib.hdc_xor_reduce(u64(x), x.shape[0], x.shape[1], u64(out)):
        raise MemoryError("hdc_xor_reduce could not allocate its per-thread partial rows")
    return out


# sizes per mode: the read-bandwidth matrix (rows of dim 10,000: 50,000 rows = 63 MB, far past
# the caches, the same matrix the single-query scan reads), the bundle's input, the batch of
# queries and the attention length measured on every SIMD path
SIZES = {
    "smoke": {"dim": 1_024, "scan_rows": 4_000, "bundle_rows": 101, "batch": (16, 2_000),
              "att_L": 128},
    "quick": {"dim": 10_000, "scan_rows": 50_000, "bundle_rows": 1_001, "batch": (256, 10_000),
              "att_L": 1_024},
    "full": {"dim": 10_000, "scan_rows": 50_000, "bundle_rows": 1_001, "batch": (256, 50_000),
             "att_L": 4_096},
}
ATT_HEADS, ATT_BITS, ATT_TOPK, ATT_DV = 4, 256, 32, 64


def _words(rng, n, dim):
    from .._validate import padding_mask
    x = rng.integers(0, 2 ** 64, size=(n, (dim + 63) // 64), dtype=np.uint64)
    x[:, -1] &= np.uint64(padding_mask(dim))
    return x


def _next_lower(isas, isa):
    """The path below ``isa`` on the same CPU family (neon and avx2 compare with scalar)."""
    order = [i for i in ("scalar", "avx2", "avx512bw", "avx512vpopcnt") if i in isas]
    if isa == "neon":
        return "scalar" if "scalar" in isas else None
    at = order.index(isa) if isa in order else 0
    return order[at - 1] if at > 0 else None


def measure(mode="quick", timing=None):
    """The machine's limits and every C kernel with per-ISA code on every SIMD path, in one run.

    Returns ``{"limits": {...}, "isa_paths": [...]}`` (what results.json holds under
    ``"machine_limits"``): read / copy bandwidth in GB/s, the bundle input's XOR-reduce time (the
    limit of the bundle rows), and per case and path the median, the speed-up over the
    next-lower path, the fraction of the case's limit (1.0 = as fast as just reading the input)
    and, for a case with a limit, ``speedup_bound_vs_next_lower``: the speed-up over the
    next-lower path that a kernel running at the limit would have. ``timing``: keyword arguments for
    :func:`hdc.bench.timing.time_interleaved`.
    """
    from .. import backend
    from .timing import time_interleaved
    sizes = SIZES[mode]
    timing = dict(repeats=5, min_sample_s=0.003, budget_s=0.3) | dict(timing or {})
    ck = backend._require("c")
    isas = ck.available_isas()
    previous = ck.get_isa()
    rng = np.random.default_rng(0)
    dim = sizes["dim"]
    m = _words(rng, sizes["scan_rows"], dim)
    m_copy = np.empty_like(m)
    acc = np.empty(m.shape[1], np.uint64)
    x = np.ascontiguousarray(m[:sizes["bundle_rows"]])
    # the limits: on the best path (xor_reduce uses the active path's widest vectors)
    ck.set_isa("auto")
    st = time_interleaved({"read": lambda: xor_reduce(m, acc),
                           "copy": lambda: np.copyto(m_copy, m)}, **timing)
    del m_copy
    limits = {
        "read_gb_per_s": m.nbytes / st["read"]["median_s"] / 1e9,
        "copy_gb_per_s": 2 * m.nbytes / st["copy"]["median_s"] / 1e9,
        "read_bytes": m.nbytes, "threads": ck.get_num_threads(), "isa": ck.get_isa(),
        "bundle_rows": x.shape[0], "dim": dim,   # bundle_read_s: from the bundle case below
    }

    nq, n_batch = sizes["batch"]
    q1, qb = _words(rng, 1, dim), _words(rng, nq, dim)
    mb = m[:n_batch]
    k = 10
    d1, i1 = np.empty((1, k), np.int32), np.empty((1, k), np.int64)
    db, ib = np.empty((nq, k), np.int32), np.empty((nq, k), np.int64)
    tie, out = np.zeros(x.shape[1], np.uint64), np.empty(x.shape[1], np.uint64)
    L = sizes["att_L"]
    aw = (ATT_BITS + 63) // 64
    aq, ak = _words(rng, ATT_HEADS * L, ATT_BITS), _words(rng, ATT_HEADS * L, ATT_BITS)
    aq, ak = aq.reshape(ATT_HEADS, L, aw), ak.reshape(ATT_HEADS, L, aw)
    av = rng.standard_normal((ATT_HEADS, L, ATT_DV)).astype(np.float32)
    vis = np.arange(1, L + 1, dtype=np.int64)  # causal
    aout = np.empty((ATT_HEADS, L, ATT_DV), np.float32)
    aidx = np.empty((ATT_HEADS, L, ATT_TOPK), np.int64)
    best = isas[-1]

    def on(isa, fn):
        def call():
            ck.set_isa(isa)
            fn()
        return call

    # (op, label, kernel, limit: (name, call, its time -> the kernel's fraction of it) or None);
    # a limit is timed in the same round-robin as the kernel on every path
    cases = [
        ("bundle", f"bundle {x.shape[0]:,} x dim {dim:,}", lambda: ck.bundle(x, tie, out),
         ("XOR-reduce of the input", lambda: xor_reduce(x, acc), lambda t_lim, t: t_lim / t)),
        ("topk", f"topk k={k}, 1 query x {m.shape[0]:,} dim {dim:,}",
         lambda: ck.topk(q1, m, k, None, d1, i1),
         ("read bandwidth", lambda: xor_reduce(m, acc), lambda t_lim, t: t_lim / t)),
        ("topk", f"topk k={k}, {nq} queries x {n_batch:,} dim {dim:,}",
         lambda: ck.topk(qb, mb, k, None, db, ib), None),
        ("attention", f"k-WTA attention (softmax) L={L:,}, {ATT_HEADS} heads, "
         f"{ATT_BITS}-bit codes, top-{ATT_TOPK}",
         lambda: ck.kwta_softmax(aq, ak, ATT_TOPK, vis, av, 1.0, aout, aidx), None),
    ]
    rows = []
    try:
        for op, label, fn, limit in cases:
            fns = {isa: on(isa, fn) for isa in isas}
            if limit is not None:
                fns["limit"] = on(best, limit[1])
            st = time_interleaved(fns, **timing)
            for name, stats in st.items():
                if "error" in stats:
                    raise RuntimeError(f"{label} on {name}: {stats['error']!r}") from stats["error"]
            for isa in isas:
                t = st[isa]["median_s"]
                lower = _next_lower(isas, isa)
                t_lim = st["limit"]["median_s"] if limit else None
                rows.append({
                    "op": op, "case": label, "isa": isa, "median_s": t, "iqr_s": st[isa]["iqr_s"],
                    "next_lower": lower,
                    "speedup_vs_next_lower": st[lower]["median_s"] / t if lower else None,
                    "limit": limit[0] if limit else None, "limit_s": t_lim,
                    "fraction_of_limit": limit[2](t_lim, t) if limit else None,
                    "speedup_bound_vs_next_lower": (st[lower]["median_s"] / t_lim
                                                    if limit and lower else None)})
            if op == "bundle":
                limits["bundle_read_s"] = st["limit"]["median_s"]
    finally:
        ck.set_isa(previous)
    return {"limits": limits, "isa_paths": rows}


def targets(res):
    """The limit targets of issue 11 from :func:`measure`'s result (rows like the suite's)."""
    out = []
    rows = res["isa_paths"]
    by = {(r["op"], r["case"], r["isa"]): r for r in rows}
    for r in rows:
        if r["op"] == "topk" and r["limit"] == "read bandwidth":
            out.append({"target": f"{r['case']}: >= 0.8x the read bandwidth of the same run",
                        "implementation": f"hdc[c] {r['isa']}",
                        "threshold": 0.8, "unit": "x", "value": r["fraction_of_limit"],
                        "met": r["fraction_of_limit"] >= 0.8})
        if r["op"] == "bundle":
            slow = 1 / r["fraction_of_limit"]
            out.append({"target": f"{r['case']}: <= 3x the C XOR-reduce of its input",
                        "implementation": f"hdc[c] {r['isa']}", "threshold": 3.0,
                        "unit": "x slower", "value": slow, "met": slow <= 3.0})
            if r["isa"] == "avx512bw" and (r["op"], r["case"], "avx2") in by:
                up, bound = r["speedup_vs_next_lower"], r["speedup_bound_vs_next_lower"]
                out.append({"target": f"{r['case']}: avx512bw >= 2.5x avx2",
                            "implementation": "hdc[c]", "threshold": 2.5, "unit": "x faster",
                            "value": up, "met": up >= 2.5, "bound": bound,
                            "note": f"at most {bound:.2f}x at the read limit (avx2's time over "
                                    f"the XOR-reduce of the input, same run)"})
    return out
