"""NumPy reference of the search family: cdist and topk, in blocks of stored rows."""
import numpy as np

from .. import EMPTY_DISTANCE

# Distances are computed for this many stored rows at a time, so memory stays bounded.
_BLOCK_ROWS = 4096
# Words in the XOR temporary of one cdist block (8 MiB).
_TEMP_WORDS = 1 << 20


def cdist(a, b, out):
    # block over both sides so the (rows_a, _BLOCK_ROWS, w) temporary stays near _TEMP_WORDS
    rows_a = max(1, _TEMP_WORDS // (_BLOCK_ROWS * max(1, a.shape[1])))
    for i in range(0, a.shape[0], rows_a):
        qa = a[i:i + rows_a, None, :]
        for j in range(0, b.shape[0], _BLOCK_ROWS):
            out[i:i + rows_a, j:j + _BLOCK_ROWS] = np.sum(
                np.bitwise_count(qa ^ b[None, j:j + _BLOCK_ROWS, :]), axis=-1, dtype=np.int32)


def topk(q, m, k, n_visible, out_dist, out_idx):
    n_q, n_m = q.shape[0], m.shape[0]
    visible = np.full(n_q, n_m, np.int64) if n_visible is None else np.minimum(n_visible, n_m)
    best_d = np.full((n_q, k), EMPTY_DISTANCE, np.int32)
    best_i = np.full((n_q, k), -1, np.int64)
    block = np.empty((n_q, min(_BLOCK_ROWS, max(n_m, 1))), np.int32)
    for j in range(0, n_m, _BLOCK_ROWS):
        stop = min(n_m, j + _BLOCK_ROWS)
        d = block[:, :stop - j]
        cdist(q, m[j:stop], d)
        idx = np.broadcast_to(np.arange(j, stop, dtype=np.int64), d.shape)
        d = np.where(idx < visible[:, None], d, EMPTY_DISTANCE)
        idx = np.where(idx < visible[:, None], idx, -1)
        cand_d = np.concatenate([best_d, d], axis=1)
        cand_i = np.concatenate([best_i, idx], axis=1)
        # order by (distance, index) with invisible (-1) last among equals
        key_i = np.where(cand_i < 0, np.iinfo(np.int64).max, cand_i)
        order = np.lexsort((key_i, cand_d), axis=-1)[:, :k]
        best_d = np.take_along_axis(cand_d, order, -1)
        best_i = np.take_along_axis(cand_i, order, -1)
    out_dist[...] = best_d
    out_idx[...] = best_i
