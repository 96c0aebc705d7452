"""Sparse block codes measured: capacity, bytes per item, search speed, the inverted index.

``hdc bench --sparse`` runs :func:`run_sparse` and writes ``sparse.json``, ``sparse.md`` and two
PNG plots (capacity, search time) to ``--out``.

- capacity: ``N`` key-value pairs ``bind(key_i, value_i)`` (values from a 1,000-item codebook)
  summed into one trace; a pair is recalled when the codebook item of highest read-out score for
  ``key_i`` is ``value_i``. SBC: a :class:`hdc.BlockAccumulator` trace read out by
  ``trace.unbind(key).similarity(codebook)`` (exact counts, no thinning). Dense: exact per-element
  counts, read out by the bipolar dot product of the unbound count vector with each item.
- speed: ``hdc.topk`` of 1 and 256 queries over SBC items (blocks=100, block_size=1024) against
  dense ``topk`` over the same number of bytes per item and torchhd BSBC ``cosine_similarity`` +
  ``torch.topk`` (:func:`torchhd_topk_time`: torchhd materialises a (queries, items, blocks)
  tensor, so the items go in chunks of 256 MiB of it, top-k merged; one query: every item in one
  chunk, nothing scaled; 256 queries: the first chunks timed and scaled by items, said in the row).
- inverted index vs scan: one query, :class:`hdc.AssociativeMemory` with ``index=True`` / ``False``.

Python: ``hdc.bench.sparse.run_sparse("quick", out_dir="bench-sparse")`` returns the results dict.
"""
import json
import os
import time

import numpy as np

SIZES = {
    # capacity: (blocks, block_size, dense dims, N grid, probes); speed: (items, torchhd chunks
    # timed, None: all; see torchhd_topk_time)
    "smoke": {"cap": (20, 64, (1280, 400), (50, 100, 200), 50), "speed": (5_000, None), "acc": False},
    "quick": {"cap": (100, 1024, (10_000, 102_400), (250, 500, 1000, 2000, 3000), 200),
              "speed": (200_000, 4), "acc": False},
    "full": {"cap": (100, 1024, (10_000, 102_400),
                     (250, 400, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000), 300),
             "speed": (1_000_000, 8), "acc": True},
}
#: bytes of torchhd's (queries, items, blocks) bool tensor per chunk of items
TORCH_CHUNK_BYTES = 1 << 28
N_CODEBOOK = 1000


def _median(fn, repeats=3):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def sbc_recall(n_pairs, blocks, block_size, probes, seed=0):
    """Fraction of ``probes`` pairs recalled from a BlockAccumulator trace of ``n_pairs`` pairs."""
    import hdc
    rng = np.random.default_rng(seed)
    codebook = hdc.random_sparse(N_CODEBOOK, blocks, block_size, seed=rng.integers(2 ** 32))
    keys = hdc.random_sparse(n_pairs, blocks, block_size, seed=rng.integers(2 ** 32))
    values = rng.integers(0, N_CODEBOOK, n_pairs)
    trace = hdc.BlockAccumulator(blocks, block_size)
    trace.add(hdc.bind(keys, codebook[values]))
    probe = rng.choice(n_pairs, min(probes, n_pairs), replace=False)
    hits = sum(int(np.argmax(trace.similarity(hdc.bind(codebook, keys[i])))) == values[i] for i in probe)
    return hits / len(probe)


def dense_recall(n_pairs, dim, probes, seed=0):
    """The same with dense codes: exact counts, bipolar read-out of the unbound count vector."""
    import hdc
    rng = np.random.default_rng(seed)
    codebook = hdc.random(N_CODEBOOK, dim, seed=rng.integers(2 ** 32))
    keys = hdc.random(n_pairs, dim, seed=rng.integers(2 ** 32))
    values = rng.integers(0, N_CODEBOOK, n_pairs)
    acc = hdc.Accumulator(dim)
    acc.add(hdc.bind(keys, codebook[values]))
    total = (n_pairs - 2 * acc.counts).astype(np.float32)             # bipolar sum of the pairs (1 - 2 bit)
    book = 1 - 2 * codebook.to_bool().astype(np.float32)               # (items, dim) +-1
    probe = rng.choice(n_pairs, min(probes, n_pairs), replace=False)
    hits = 0
    for start in range(0, len(probe), 50):
        part = probe[start:start + 50]
        unbound = total[None, :] * (1 - 2 * keys[part].to_bool().astype(np.float32))
        hits += int(np.sum(np.argmax(unbound @ book.T, axis=1) == values[part]))
    return hits / len(probe)


def _largest_at(grid, recalls, level=0.99):
    ok = [n for n, r in zip(grid, recalls) if r >= level]
    return max(ok) if ok else None


def capacity(blocks, block_size, dense_dims, grid, probes, log=print):
    rows = {"sbc": {"blocks": blocks, "block_size": block_size, "bytes_per_item": blocks * (2 if block_size > 256 else 1),
                    "recall": []}}
    for n in grid:
        rows["sbc"]["recall"].append(sbc_recall(n, blocks, block_size, probes))
        log(f"  capacity SBC N={n}: {rows['sbc']['recall'][-1]:.3f}")
    for dim in dense_dims:
        key = f"dense {dim}"
        rows[key] = {"dim": dim, "bytes_per_item": (dim + 63) // 64 * 8, "recall": []}
        for n in grid:
            rows[key]["recall"].append(dense_recall(n, dim, probes))
            log(f"  capacity dense dim={dim} N={n}: {rows[key]['recall'][-1]:.3f}")
    for row in rows.values():
        row["largest_n_at_99"] = _largest_at(grid, row["recall"])
    return {"grid": list(grid), "probes": probes, "codebook": N_CODEBOOK, "rows": rows}


def torchhd_topk(tq, tm, k, chunk):
    """torchhd BSBC ``cosine_similarity`` + ``torch.topk`` of queries ``tq`` over items ``tm``
    (torchhd BSBC tensors), ``chunk`` items at a time, the chunks' top-k merged: (values, indices)."""
    import torch
    import torchhd
    best_v = best_i = None
    for lo in range(0, tm.shape[0], chunk):
        sims = torchhd.cosine_similarity(tq, tm[lo:lo + chunk]).as_subclass(torch.Tensor)
        v, i = torch.topk(sims, min(k, sims.shape[-1]), dim=-1)
        i = i + lo
        if best_v is not None:
            v, i = torch.cat([best_v, v], -1), torch.cat([best_i, i], -1)
            v, sel = torch.topk(v, min(k, v.shape[-1]), dim=-1)
            i = torch.gather(i, -1, sel)
        best_v, best_i = v, i
    return best_v, best_i


def torchhd_topk_time(queries, items, k, timed_chunks=None):
    """Seconds for :func:`torchhd_topk` of ``queries`` over ``items`` (SparseHV).

    torchhd compares all pairs through a (queries, items, blocks) bool tensor, so the items go in
    chunks whose tensor stays within :data:`TORCH_CHUNK_BYTES` (for one query over 1,000,000
    items of 100 blocks that is one chunk: all of them at once), merging the chunks' top-k as a
    user would. ``timed_chunks``: time only the first so many chunks and scale by items (every
    full chunk is the same work); None: all of them. Returns the seconds and how they were got.
    """
    n, nq, blocks = len(items), len(queries), items.blocks
    chunk = max(1, min(n, TORCH_CHUNK_BYTES // (nq * blocks)))
    n_chunks = -(-n // chunk)
    run_chunks = n_chunks if timed_chunks is None else min(n_chunks, timed_chunks)
    timed_items = min(n, run_chunks * chunk)
    tq = queries.to_torchhd()
    tm = items[:timed_items].to_torchhd()
    _, t = _median(lambda: torchhd_topk(tq, tm, k, chunk))
    return {"torchhd_s": t * n / timed_items, "torchhd_measured_s": t, "torchhd_chunk_items": chunk,
            "torchhd_timed_items": timed_items, "torchhd_scaled": timed_items < n}


def speed(n_items, torch_chunks, log=print):
    import hdc
    blocks, block_size = 100, 1024
    items = hdc.random_sparse(n_items, blocks, block_size, seed=1)
    dense = hdc.random(n_items, blocks * 16, seed=2)                  # 200 bytes per item, as the SBC
    out = {"items": n_items, "blocks": blocks, "block_size": block_size, "rows": []}
    for nq in (1, 256):
        queries = items[np.arange(nq) * 7 % n_items]
        _, t_sparse = _median(lambda: hdc.topk(queries, items, 10), repeats=5)
        dq = dense[np.arange(nq) * 7 % n_items]
        _, t_dense = _median(lambda: hdc.topk(dq, dense, 10), repeats=5)
        row = {"queries": nq, "hdc_sbc_s": t_sparse, "hdc_dense_same_bytes_s": t_dense,
               "sbc_per_item_ns": t_sparse / n_items / nq * 1e9, "dense_per_item_ns": t_dense / n_items / nq * 1e9}
        try:
            import torchhd  # noqa: F401
        except ImportError:
            row["torchhd"] = "not installed"
        else:
            row.update(torchhd_topk_time(queries, items, 10, torch_chunks))
            row["speedup_vs_torchhd"] = row["torchhd_s"] / t_sparse
        out["rows"].append(row)
        log(f"  topk nq={nq} over {n_items}: SBC {t_sparse * 1e3:.1f} ms, dense {t_dense * 1e3:.1f} ms"
            + (f", torchhd {row['torchhd_s'] * 1e3:.0f} ms" if "torchhd_s" in row else ""))
    scan = hdc.AssociativeMemory(blocks * block_size, block_size=block_size, index=False)
    indexed = hdc.AssociativeMemory(blocks * block_size, block_size=block_size, index=True)
    warm = hdc.AssociativeMemory(blocks * block_size, block_size=block_size, index=True)
    warm.add(items[:100])
    warm.search(items[0], 1)                                          # compiles Numba kernels, if any
    scan.add(items)
    indexed.add(items)
    start = time.perf_counter()
    indexed.index_search(items[0], 1)
    build = time.perf_counter() - start
    n_probe = 20
    probes = items[np.arange(n_probe) * 11 % n_items]
    _, t_scan = _median(lambda: [scan.search(q, 1) for q in probes], repeats=5)
    _, t_index = _median(lambda: [indexed.search(q, 1) for q in probes], repeats=5)
    noisy = hdc.random_sparse(n_probe, blocks, block_size, seed=9)
    _, t_scan_r = _median(lambda: [scan.search(q, 1) for q in noisy], repeats=5)
    _, t_index_r = _median(lambda: [indexed.search(q, 1) for q in noisy], repeats=5)
    out["index"] = {"build_s": build, "scan_s": t_scan / n_probe, "index_s": t_index / n_probe,
                    "speedup": t_scan / t_index, "scan_random_query_s": t_scan_r / n_probe,
                    "index_random_query_s": t_index_r / n_probe, "speedup_random_query": t_scan_r / t_index_r}
    log(f"  index vs scan (1 query, {n_items} items): {out['index']['speedup']:.1f}x "
        f"(build {build:.2f} s)")
    return out


def accuracy(log=print):
    """Digits (RecordEncoder) and, where the manpages data is installed, language id (NGramEncoder)."""
    import hdc
    from .accuracy import load_digits_split
    Xtr, ytr, Xte, yte = load_digits_split(seed=0)
    dim = 10_000
    rows = []
    enc = hdc.RecordEncoder(dim, 64, levels=17, low=0, high=16, seed=0)
    rows.append({"task": "digits", "code": f"dense dim={dim}",
                 "accuracy": hdc.CentroidClassifier(dim).fit(enc(Xtr), ytr).score(enc(Xte), yte)})
    for block_size in (4, 8, 16):
        enc = hdc.RecordEncoder(dim, 64, levels=17, low=0, high=16, seed=0, block_size=block_size)
        clf = hdc.CentroidClassifier(dim, block_size=block_size).fit(enc(Xtr), ytr)
        rows.append({"task": "digits", "code": f"SBC dim={dim} block_size={block_size}", "accuracy": clf.score(enc(Xte), yte)})
    log("  " + "; ".join(f"{r['code']}: {r['accuracy']:.4f}" for r in rows))
    try:
        import importlib.util
        path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "langid.py")
        spec = importlib.util.spec_from_file_location("langid", path)
        langid = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(langid)
        tr_x, tr_y, te_x, te_y = langid.split(langid.load_texts())
    except (OSError, ValueError, ImportError) as exc:
        rows.append({"task": "language id", "status": f"not run: {exc}"})
        return rows
    enc = hdc.NGramEncoder(dim, n=3, seed=0)
    rows.append({"task": "language id", "code": f"dense dim={dim}",
                 "accuracy": hdc.CentroidClassifier(dim).fit(enc(tr_x), tr_y).score(enc(te_x), te_y)})
    for block_size in (4, 8, 16):
        enc = hdc.NGramEncoder(dim, n=3, seed=0, block_size=block_size)
        clf = hdc.CentroidClassifier(dim, block_size=block_size).fit(enc(tr_x), tr_y)
        rows.append({"task": "language id", "code": f"SBC dim={dim} block_size={block_size}",
                     "accuracy": clf.score(enc(te_x), te_y)})
        log(f"  language id {rows[-1]['code']}: {rows[-1]['accuracy']:.4f}")
    return rows


def plot(res, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    cap = res["capacity"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, row in cap["rows"].items():
        label = (f"SBC {row['blocks']}x{row['block_size']} ({row['bytes_per_item']} B/item)" if name == "sbc"
                 else f"dense dim={row['dim']} ({row['bytes_per_item']} B/item)")
        ax.plot(cap["grid"], row["recall"], marker="o", label=label)
    ax.axhline(0.99, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("bound key-value pairs in one trace (N)")
    ax.set_ylabel(f"recalled (of {cap['probes']} probes, {cap['codebook']}-item codebook)")
    ax.set_title("Capacity: exact-count read-out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "sparse_capacity.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)
    sp = res["speed"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    labels, values = [], []
    for row in sp["rows"]:
        for key, name in (("hdc_sbc_s", "hdc SBC"), ("hdc_dense_same_bytes_s", "hdc dense, same bytes"),
                          ("torchhd_s", "torchhd BSBC")):
            if key in row:
                labels.append(f"{name}\n{row['queries']} q")
                values.append(row[key])
    ax.barh(labels, values)
    ax.set_xscale("log")
    ax.set_xlabel(f"seconds for topk over {sp['items']:,} items (log)")
    ax.set_title("Search time, sparse block codes (blocks=100, block_size=1024)")
    fig.tight_layout()
    path = os.path.join(out_dir, "sparse_speed.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)
    return files


def render(res):
    cap, sp, idx = res["capacity"], res["speed"], res["speed"]["index"]
    lines = [f"# Sparse block codes ({res['mode']})", "", res["machine"], "",
             "## Capacity (recall of bound pairs, exact-count read-out)", "",
             "| N | " + " | ".join(cap["rows"]) + " |", "|---" * (len(cap["rows"]) + 1) + "|"]
    for i, n in enumerate(cap["grid"]):
        lines.append(f"| {n} | " + " | ".join(f"{row['recall'][i]:.3f}" for row in cap["rows"].values()) + " |")
    lines += ["", "| code | bytes per item | largest N at 99% |", "|---|---|---|"]
    for name, row in cap["rows"].items():
        lines.append(f"| {name} | {row['bytes_per_item']} | {row['largest_n_at_99']} |")
    lines += ["", f"## topk over {sp['items']:,} items (k=10)", "",
              "| queries | hdc SBC | hdc dense, same bytes | torchhd BSBC | SBC vs torchhd |",
              "|---|---|---|---|---|"]
    for row in sp["rows"]:
        if "torchhd_s" in row:
            how = (f"{row['torchhd_measured_s'] * 1e3:.0f} ms for the first {row['torchhd_timed_items']:,} items, "
                   f"scaled by items" if row["torchhd_scaled"] else "all items measured")
            torch_cell = f"{row['torchhd_s'] * 1e3:.0f} ms ({how}; chunks of {row['torchhd_chunk_items']:,} items)"
        else:
            torch_cell = "n/a"
        ratio = f"{row['speedup_vs_torchhd']:.0f}x" if "speedup_vs_torchhd" in row else "n/a"
        lines.append(f"| {row['queries']} | {row['hdc_sbc_s'] * 1e3:.1f} ms ({row['sbc_per_item_ns']:.2f} ns/item/query) | "
                     f"{row['hdc_dense_same_bytes_s'] * 1e3:.1f} ms ({row['dense_per_item_ns']:.2f} ns/item/query) | "
                     f"{torch_cell} | {ratio} |")
    lines += ["", f"Inverted index vs scan, one query over {sp['items']:,} items: a stored item as query "
              f"{idx['scan_s'] * 1e3:.2f} ms vs {idx['index_s'] * 1e3:.3f} ms ({idx['speedup']:.1f}x); a random "
              f"query {idx['scan_random_query_s'] * 1e3:.2f} ms vs {idx['index_random_query_s'] * 1e3:.3f} ms "
              f"({idx['speedup_random_query']:.1f}x); index build {idx['build_s']:.2f} s (once per change)."]
    if res.get("accuracy"):
        lines += ["", "## Accuracy at dim 10,000 (centroid classifier, no retraining)", "",
                  "| task | code | accuracy |", "|---|---|---|"]
        for row in res["accuracy"]:
            acc = f"{row['accuracy']:.4f}" if "accuracy" in row else row.get("status", "")
            lines.append(f"| {row['task']} | {row.get('code', '')} | {acc} |")
    return "\n".join(lines) + "\n"


def run_sparse(mode="quick", out_dir="hdc-bench", plots=True, log=print):
    """Run the sparse section; returns the results dict (and writes files when ``out_dir``)."""
    import hdc
    from hdc import backend
    if mode not in SIZES:
        raise ValueError(f"mode must be one of {sorted(SIZES)}, got {mode!r}")
    cfg = SIZES[mode]
    quiet = (lambda *a: None) if log is None or out_dir is None else log
    isa = backend.get_isa() if "c" in backend.backends() else "n/a"
    res = {"mode": mode, "machine": f"backend {hdc.get_backend()}, SIMD path {isa}, "
                                    f"{hdc.get_num_threads()} threads, {os.cpu_count()} CPUs"}
    res["capacity"] = capacity(*cfg["cap"], log=quiet)
    res["bytes_per_item"] = {name: row["bytes_per_item"] for name, row in res["capacity"]["rows"].items()}
    res["speed"] = speed(*cfg["speed"], log=quiet)
    res["accuracy"] = accuracy(log=quiet) if cfg["acc"] else []
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "sparse.json"), "w") as f:
            json.dump(res, f, indent=1)
        files = plot(res, out_dir) if plots else []
        with open(os.path.join(out_dir, "sparse.md"), "w") as f:
            f.write(render(res))
        res["files"] = files
    return res
