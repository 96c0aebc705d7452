"""NumPy reference of the encode family: the encoders', CentroidClassifier's and SDM's kernels.

The readable definitions the Numba kernels (``encode/numba.py``) must match bit for bit; the
arguments are the same (see that module's docstring). Majorities go through exact column
counts, in blocks of rows so memory stays bounded for long texts.
"""
import numpy as np

from ..bundle.numpy_ref import column_counts, pack_bits, unpack_bits

# Rows (n-grams, features) counted per block.
_BLOCK = 4096


def _majority(counts, total, tie, out):
    """``out`` = 1 where 2 count > total, ``tie``'s bit where 2 count == total, else 0."""
    twice = 2 * counts
    tie_bits = unpack_bits(tie[None])[0]
    out[...] = pack_bits(np.where(twice > total, 1, np.where(twice == total, tie_bits, 0)))


def ngram_majority(tokens, offsets, table, sizes, tie, out):
    n_words = table.shape[2]
    for i in range(offsets.shape[0] - 1):
        text = tokens[offsets[i]:offsets[i + 1]]
        counts = np.zeros(n_words * 64, np.int64)
        total = 0
        for n in sizes:
            n_grams = max(0, text.shape[0] - int(n) + 1)
            for p0 in range(0, n_grams, _BLOCK):
                p1 = min(n_grams, p0 + _BLOCK)
                grams = table[n - 1, text[p0:p1]].copy()
                for j in range(1, n):
                    grams ^= table[n - 1 - j, text[p0 + j:p1 + j]]
                column_counts(grams, None, counts)
            total += n_grams
        _majority(counts, total, tie, out[i])


def record_majority(levels, ids, codebook, tie, out):
    n_features = levels.shape[1]
    for i in range(levels.shape[0]):
        counts = np.zeros(ids.shape[1] * 64, np.int64)
        for f0 in range(0, n_features, _BLOCK):
            f1 = min(n_features, f0 + _BLOCK)
            column_counts(ids[f0:f1] ^ codebook[levels[i, f0:f1]], None, counts)
        _majority(counts, n_features, tie, out[i])


def _signs(words, dim, dtype):
    """+1 / -1 per element of one row (dim,), in ``dtype``."""
    return (2 * unpack_bits(words[None])[0, :dim].astype(np.int64) - 1).astype(dtype)


def sdm_write(counters, active_ptr, active_idx, data, dim):
    for i in range(data.shape[0]):
        locations = active_idx[active_ptr[i]:active_ptr[i + 1]]
        # a write's active locations are distinct, so a fancy-indexed += adds once to each
        counters[locations] += _signs(data[i], dim, counters.dtype)


def sdm_read(counters, active_ptr, active_idx, out_sums):
    for i in range(out_sums.shape[0]):
        locations = active_idx[active_ptr[i]:active_ptr[i + 1]]
        out_sums[i] = counters[locations].sum(axis=0, dtype=np.int64)


def _prototype(counts, total, tie, dim, out):
    """``out`` = the majority of one class's counts (dim,), elements past ``dim`` 0."""
    padded = np.zeros(out.shape[0] * 64, np.int64)
    padded[:dim] = 2 * counts[:dim]
    tie_bits = unpack_bits(tie[None])[0]
    bits = (padded > total) | ((padded == total) & (tie_bits == 1))
    bits[dim:] = False
    out[...] = pack_bits(bits)


def retrain_epoch(x, y, order, counts, totals, protos, tie, lr, dim, margin, moves):
    n_classes = protos.shape[0]
    for i in order:
        true = y[i]
        d = np.bitwise_count(x[i] ^ protos).sum(axis=-1, dtype=np.int64)
        moves[i] = -1
        others = np.flatnonzero(np.arange(n_classes) != true)
        if others.size == 0:
            continue
        best = others[np.argmin(d[others])]       # the smallest class index among equals
        true_d, best_d = d[true], d[best]
        if true_d < best_d - margin or (margin == 0 and true_d == best_d and true < best):
            continue
        moves[i] = best
        bits = unpack_bits(x[i][None])[0, :dim].astype(np.int64)
        counts[true, :dim] += lr * bits
        counts[best, :dim] += lr * (1 - bits)
        totals[true] += lr
        totals[best] += lr
        _prototype(counts[true], totals[true], tie, dim, protos[true])
        _prototype(counts[best], totals[best], tie, dim, protos[best])
