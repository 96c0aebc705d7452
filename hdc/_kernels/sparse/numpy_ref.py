"""NumPy reference of the sparse block code kernels: the readable definition (see ``__init__``)."""
import numpy as np

# Bytes of the (queries, rows, blocks) equality temporary of one block of overlaps.
_TEMP_BYTES = 1 << 23


def sparse_overlap(a, b, out):
    np.sum(a == b, axis=-1, dtype=np.int32, out=out)


def sparse_cdist(a, b, out):
    n_a, blocks = a.shape
    rows = max(1, _TEMP_BYTES // max(1, n_a * blocks))
    for j in range(0, b.shape[0], rows):
        stop = min(b.shape[0], j + rows)
        np.sum(a[:, None, :] == b[None, j:stop, :], axis=-1, dtype=np.int32, out=out[:, j:stop])


def sparse_topk(q, m, k, out_overlap, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    best_o = np.full((n_q, k), -1, np.int64)
    best_i = np.full((n_q, k), -1, np.int64)
    rows = max(k, 4096)
    for j in range(0, n_m, rows):
        stop = min(n_m, j + rows)
        ov = np.empty((n_q, stop - j), np.int32)
        sparse_cdist(q, m[j:stop], ov)
        cand_o = np.concatenate([best_o, ov], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(j, stop), ov.shape)], axis=1)
        # highest overlap first, equal overlaps by smaller index (empty slots, -1, sort last)
        key_i = np.where(cand_i < 0, np.iinfo(np.int64).max, cand_i)
        order = np.lexsort((key_i, -cand_o), axis=-1)[:, :k]
        best_o = np.take_along_axis(cand_o, order, -1)
        best_i = np.take_along_axis(cand_i, order, -1)
    out_overlap[...] = best_o
    out_idx[...] = best_i


def sparse_block_counts(x, block_size, weights, counts):
    n, columns = x.shape
    w = np.ones(n, np.int64) if weights is None else weights
    flat = (np.arange(columns, dtype=np.int64) * block_size + x).ravel()
    np.add.at(counts.reshape(-1), flat, np.repeat(w, columns))


def sparse_bundle(x, block_size, weights, tie, out):
    """Per column the weighted most frequent index; among tied maxima the first at or after ``tie``
    going up cyclically (so ``tie`` itself wins when it is among them). Integer or float weights."""
    n, columns = x.shape
    w = np.ones(n, np.int64) if weights is None else weights
    keys = (np.arange(columns, dtype=np.int64) * block_size + x).ravel()
    unique, inverse = np.unique(keys, return_inverse=True)
    counts = np.zeros(unique.size, w.dtype)
    np.add.at(counts, inverse, np.repeat(w, columns))
    column, value = unique // block_size, unique % block_size
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    best = np.maximum.reduceat(counts, starts)
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, unique.size]))
    step = (value - tie.astype(np.int64)[column]) % block_size
    step = np.where(counts == best[run], step, np.iinfo(np.int64).max)
    first = np.minimum.reduceat(step, starts)
    out[...] = (tie.astype(np.int64) + first) % block_size


def sparse_record_bundle(idx, ids, levels, block_size, tie, out):
    """Per record ``r`` and block ``b`` the most frequent ``(ids[f, b] + levels[idx[r, f], b]) % L``
    over the features ``f``, ties as :func:`bundle`."""
    n, features = idx.shape
    codes = (ids.astype(np.int64)[:, None, :] + levels[idx.T]) % block_size
    flat = out.reshape(-1)
    sparse_bundle(codes.reshape(features, -1), block_size, None, np.tile(tie, n), flat)


def sparse_ngram_bundle(cols, offsets, table, sizes, block_size, tie, out):
    """Per text the :func:`sparse_bundle` of its n-gram codes: for each n in ``sizes`` and
    position p, ``(sum_j table[n - 1 - j, cols[p + j]]) % L`` (rows of every n together)."""
    for t in range(offsets.size - 1):
        text = cols[offsets[t]:offsets[t + 1]]
        grams = []
        for n in sizes:
            count = text.size - n + 1
            if count > 0:
                total = np.zeros((count, table.shape[2]), np.int64)
                for j in range(n):
                    total += table[n - 1 - j, text[j:j + count]]
                grams.append(total % block_size)
        codes = np.ascontiguousarray(np.concatenate(grams).astype(out.dtype))
        sparse_bundle(codes, block_size, None, tie, out[t])


def sparse_index_build(x, block_size, segment, offsets, postings):
    """Inverted index, rows cut into segments of ``segment``: key after key (``b * L + x[r, b]``)
    the rows with that key in increasing order, each as its segment-local number; the part of
    segment ``s`` of key ``key`` is ``postings[offsets[key * n_seg + s]:offsets[key * n_seg + s + 1]]``."""
    n, blocks = x.shape
    if x.size and int(x.max()) >= block_size:
        raise ValueError(f"x has an index >= block_size={block_size}")
    n_seg = -(-n // segment)
    rows = np.arange(n, dtype=np.int64)
    keys = (np.arange(blocks, dtype=np.int64) * block_size + x) * n_seg + (rows // segment)[:, None]
    offsets[0] = 0
    np.cumsum(np.bincount(keys.ravel(), minlength=offsets.size - 1), out=offsets[1:])
    postings[:] = np.argsort(keys.ravel(), kind="stable") // max(blocks, 1) % segment


def sparse_index_topk(q, block_size, segment, offsets, postings, n_rows, k, out_overlap, out_idx):
    """``sparse_topk`` of each query against the ``n_rows`` indexed rows, from their lists."""
    blocks = q.shape[1]
    n_seg = -(-n_rows // segment)
    damaged = "sparse_index_topk: a query index >= block_size, or a damaged index"
    if q.size and int(q.max()) >= block_size:
        raise ValueError(damaged)
    for i in range(q.shape[0]):
        lists = []
        for s, start in enumerate(range(0, n_rows, segment)):
            rows = min(segment, n_rows - start)
            for b in range(blocks):
                e = (b * block_size + int(q[i, b])) * n_seg + s
                p0, p1 = int(offsets[e]), int(offsets[e + 1])
                if not 0 <= p0 <= p1 <= n_rows * blocks:
                    raise ValueError(damaged)
                local = postings[p0:p1].astype(np.int64)
                if local.size and local.max() >= rows:
                    raise ValueError(damaged)
                lists.append(start + local)
        ov = np.bincount(np.concatenate(lists) if lists else np.zeros(0, np.int64), minlength=n_rows)
        order = np.lexsort((np.arange(n_rows), -ov))[:k]
        out_overlap[i] = ov[order]
        out_idx[i] = order
