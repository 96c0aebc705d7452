"""Numba kernels of the encode family (the encoders', CentroidClassifier's and SDM's kernels).

The encoders' hot loops XOR-gather rows, count them bit-sliced and take the majority.

Each output hypervector is the majority of ``G`` rows, each row the XOR of a few rows of a
precomputed table. Counting is vertical (bit-sliced): rows come two at a time through a half
adder into a 4-plane counter per word (so its planes are read and written once per pair); every
14 rows it is added into ``K = bit_length(G)`` big planes; the majority compares the big planes
with ``G // 2`` plane by plane. Everything works on whole 64-bit words, and the inner
loops run over contiguous words so LLVM vectorises them. Ties (``G`` even, count ``== G / 2``)
take the bit of the ``tie`` row.

``ngram_majority(tokens, offsets, table, sizes, tie, out)``
    tokens int32 (total,) indices into ``table``'s alphabet; text ``i`` is
    ``tokens[offsets[i]:offsets[i + 1]]``; table uint64 ``(n_max, A, W)`` with
    ``table[s, a] = permute(item[a], s)``; sizes int64 (m,) n-gram sizes; tie (W,); out (texts, W).
    The n-gram at position p is ``XOR_j table[n - 1 - j, tokens[p + j]]``.
``record_majority(levels, ids, codebook, tie, out)``
    levels int32 (samples, F) row indices into codebook (L, W); ids (F, W); out (samples, W).
    Sample ``i`` is the majority over ``f`` of ``ids[f] ^ codebook[levels[i, f]]``.

Also here: ``retrain_epoch`` (CentroidClassifier's sequential retraining) and ``sdm_write`` /
``sdm_read`` (SparseDistributedMemory's counters).
"""
import numba
import numpy as np

from ...primitives import jit, popcount64
from .._numba_threads import ParallelCall, get_num_threads

_SMALL = 15  # the 4-plane counter holds up to 15 rows; it is flushed at 14 (rows come in pairs)


@jit
def _ripple4(x, s0, s1, s2, s3):
    """Add one row ``x`` (W,) into the 4-plane counter (s0 least significant)."""
    for w in range(x.shape[0]):
        v = x[w]
        t = s0[w] & v
        s0[w] ^= v
        v = t
        t = s1[w] & v
        s1[w] ^= v
        v = t
        t = s2[w] & v
        s2[w] ^= v
        s3[w] ^= t


@jit
def _ripple4_xor2(a, b, small):
    """Add the row ``a ^ b`` into the 4-plane counter ``small`` (4, W) in one pass."""
    s0, s1, s2, s3 = small[0], small[1], small[2], small[3]
    for w in range(a.shape[0]):
        v = a[w] ^ b[w]
        t = s0[w] & v
        s0[w] ^= v
        v = t
        t = s1[w] & v
        s1[w] ^= v
        v = t
        t = s2[w] & v
        s2[w] ^= v
        s3[w] ^= t


@jit
def _ripple4_xor3(a, b, c, small):
    """Add the row ``a ^ b ^ c`` into the 4-plane counter ``small`` (4, W) in one pass."""
    s0, s1, s2, s3 = small[0], small[1], small[2], small[3]
    for w in range(a.shape[0]):
        v = a[w] ^ b[w] ^ c[w]
        t = s0[w] & v
        s0[w] ^= v
        v = t
        t = s1[w] & v
        s1[w] ^= v
        v = t
        t = s2[w] & v
        s2[w] ^= v
        s3[w] ^= t


@jit
def _add_pair(u, v, s0, s1, s2, s3, w):
    """Add two rows' words ``u``, ``v`` into the planes at word ``w``: a half adder first, so
    the planes are read and written once per pair."""
    lo = u ^ v
    hi = u & v
    t = s0[w] & lo
    s0[w] ^= lo
    # two weight-2 inputs (hi, t): never both 1 with s1 (if hi & t then hi ^ t = 0)
    x = hi ^ t
    c = (hi & t) | (s1[w] & x)
    s1[w] ^= x
    t = s2[w] & c
    s2[w] ^= c
    s3[w] ^= t


@jit
def _ripple4_pair3(a, b, c, d, e, f, small):
    """Add rows ``a ^ b ^ c`` and ``d ^ e ^ f`` into the 4-plane counter in one pass."""
    s0, s1, s2, s3 = small[0], small[1], small[2], small[3]
    for w in range(a.shape[0]):
        _add_pair(a[w] ^ b[w] ^ c[w], d[w] ^ e[w] ^ f[w], s0, s1, s2, s3, w)


@jit
def _ripple4_pair2(a, b, c, d, small):
    """Add rows ``a ^ b`` and ``c ^ d`` into the 4-plane counter in one pass."""
    s0, s1, s2, s3 = small[0], small[1], small[2], small[3]
    for w in range(a.shape[0]):
        _add_pair(a[w] ^ b[w], c[w] ^ d[w], s0, s1, s2, s3, w)


@jit
def _flush(small, big, carry):
    """``big += small`` (bit-sliced, small (4, W), big (K, W)), then zero ``small``."""
    n_words = small.shape[1]
    n_big = big.shape[0]
    for w in range(n_words):
        carry[w] = 0
    for k in range(n_big):
        if k < 4:
            for w in range(n_words):
                a = big[k, w]
                b = small[k, w]
                s = a ^ b
                c = carry[w]
                big[k, w] = s ^ c
                carry[w] = (a & b) | (s & c)
                small[k, w] = 0
        else:
            for w in range(n_words):
                a = big[k, w]
                c = carry[w]
                big[k, w] = a ^ c
                carry[w] = a & c


@jit
def _majority(big, total, tie, out):
    """``out = count > total / 2``, ties (count == total / 2, total even) from ``tie``."""
    n_words = big.shape[1]
    half = total // 2
    gt = np.zeros(n_words, np.uint64)
    eq = np.empty(n_words, np.uint64)
    for w in range(n_words):
        eq[w] = ~np.uint64(0)
    for k in range(big.shape[0] - 1, -1, -1):
        if (half >> k) & 1:
            for w in range(n_words):
                eq[w] &= big[k, w]
        else:
            for w in range(n_words):
                gt[w] |= eq[w] & big[k, w]
                eq[w] &= ~big[k, w]
    if total % 2 == 0:
        for w in range(n_words):
            out[w] = gt[w] | (eq[w] & tie[w])
    else:
        for w in range(n_words):
            out[w] = gt[w]


@jit
def _bit_length(n):
    k = 1
    while (1 << k) <= n:
        k += 1
    return k


@jit
def _ngram_one(tokens, start, stop, table, sizes, tie, out, x, small, carry, planes):
    n_words = table.shape[2]
    total = 0
    for m in range(sizes.shape[0]):
        total += max(0, stop - start - sizes[m] + 1)
    big = planes[:_bit_length(total)]
    big[:] = 0
    small[:] = 0
    held = 0
    for m in range(sizes.shape[0]):
        n = sizes[m]
        first = start
        if n == 3:
            # grams two at a time: half the counter traffic
            while first + 1 < stop - 2:
                p = first
                _ripple4_pair3(table[2, tokens[p]], table[1, tokens[p + 1]], table[0, tokens[p + 2]],
                               table[2, tokens[p + 1]], table[1, tokens[p + 2]], table[0, tokens[p + 3]],
                               small)
                first += 2
                held += 2
                if held >= _SMALL - 1:
                    _flush(small, big, carry)
                    held = 0
        for p in range(first, stop - n + 1):
            if n == 1:
                _ripple4(table[0, tokens[p]], small[0], small[1], small[2], small[3])
            elif n == 2:
                _ripple4_xor2(table[1, tokens[p]], table[0, tokens[p + 1]], small)
            elif n == 3:
                _ripple4_xor3(table[2, tokens[p]], table[1, tokens[p + 1]], table[0, tokens[p + 2]], small)
            else:
                first = table[n - 1, tokens[p]]
                for w in range(n_words):
                    x[w] = first[w]
                for j in range(1, n - 1):
                    row = table[n - 1 - j, tokens[p + j]]
                    for w in range(n_words):
                        x[w] ^= row[w]
                _ripple4_xor2(x, table[0, tokens[p + n - 1]], small)
            held += 1
            if held >= _SMALL - 1:
                _flush(small, big, carry)
                held = 0
    if held:
        _flush(small, big, carry)
    _majority(big, total, tie, out)


@jit(parallel=True)
def _ngram_parallel(tokens, offsets, table, sizes, tie, out, n_chunks):
    n_texts = offsets.shape[0] - 1
    n_words = table.shape[2]
    longest = 0
    for i in range(n_texts):
        longest = max(longest, offsets[i + 1] - offsets[i])
    k_max = _bit_length(longest * sizes.shape[0])
    for c in numba.prange(n_chunks):
        x = np.empty(n_words, np.uint64)
        small = np.zeros((4, n_words), np.uint64)
        carry = np.empty(n_words, np.uint64)
        planes = np.empty((k_max, n_words), np.uint64)
        for i in range(c, n_texts, n_chunks):
            _ngram_one(tokens, offsets[i], offsets[i + 1], table, sizes, tie, out[i], x, small, carry, planes)


@jit(parallel=True)
def _record_parallel(levels, ids, codebook, tie, out, n_chunks):
    n_samples, n_features = levels.shape
    n_words = ids.shape[1]
    k_big = _bit_length(n_features)
    for c in numba.prange(n_chunks):
        small = np.zeros((4, n_words), np.uint64)
        carry = np.empty(n_words, np.uint64)
        big = np.empty((k_big, n_words), np.uint64)
        for i in range(c, n_samples, n_chunks):
            big[:] = 0
            held = 0
            for f in range(0, n_features - 1, 2):
                _ripple4_pair2(ids[f], codebook[levels[i, f]], ids[f + 1], codebook[levels[i, f + 1]], small)
                held += 2
                if held >= _SMALL - 1:
                    _flush(small, big, carry)
                    held = 0
            if n_features % 2:
                f = n_features - 1
                _ripple4_xor2(ids[f], codebook[levels[i, f]], small)
                held += 1
            if held:
                _flush(small, big, carry)
            _majority(big, n_features, tie, out[i])


@jit
def sdm_write(counters, active_ptr, active_idx, data, dim):
    """``counters[loc] += 2 * bits(data[i]) - 1`` for every location active for write ``i``.

    counters int32 (n_locations, dim); active locations of write i are
    ``active_idx[active_ptr[i]:active_ptr[i + 1]]``; data uint64 (n_writes, W).
    """
    for i in range(data.shape[0]):
        for a in range(active_ptr[i], active_ptr[i + 1]):
            loc = active_idx[a]
            for e in range(dim):
                bit = (data[i, e >> 6] >> np.uint64(e & 63)) & np.uint64(1)
                counters[loc, e] += 2 * np.int32(bit) - 1


@jit(parallel=True)
def _sdm_read_parallel(counters, active_ptr, active_idx, out_sums):
    """``out_sums[i] = sum of counters over the locations active for read i`` (int64 (n, dim))."""
    n_reads, dim = out_sums.shape
    for i in numba.prange(n_reads):
        for e in range(dim):
            out_sums[i, e] = 0
        for a in range(active_ptr[i], active_ptr[i + 1]):
            loc = active_idx[a]
            for e in range(dim):
                out_sums[i, e] += counters[loc, e]


def _chunks(n_items):
    """Interleaved chunks of outputs for the parallel loops: a few per thread, at least 1."""
    return max(1, min(n_items, 4 * get_num_threads()))


def ngram_majority(tokens, offsets, table, sizes, tie, out):
    """Majority of each text's n-grams (see the module docstring) into ``out`` (texts, W)."""
    with ParallelCall():
        _ngram_parallel(tokens, offsets, table, sizes, tie, out, _chunks(out.shape[0]))


def record_majority(levels, ids, codebook, tie, out):
    """Majority over features of ``ids[f] ^ codebook[levels[i, f]]`` into ``out`` (samples, W)."""
    with ParallelCall():
        _record_parallel(levels, ids, codebook, tie, out, _chunks(out.shape[0]))


def sdm_read(counters, active_ptr, active_idx, out_sums):
    """``out_sums[i]`` = the sum of the counters of the locations active for read ``i``."""
    with ParallelCall():
        _sdm_read_parallel(counters, active_ptr, active_idx, out_sums)


@jit
def _prototype_row(counts, total, tie, dim, out):
    """``out`` = majority of one class's counts: 1 where 2 count > total, tie bits where equal."""
    for w in range(out.shape[0]):
        word = np.uint64(0)
        for b in range(64):
            e = 64 * w + b
            if e >= dim:
                break
            twice = 2 * counts[e]
            if twice > total or (twice == total and (tie[w] >> np.uint64(b)) & np.uint64(1)):
                word |= np.uint64(1) << np.uint64(b)
        out[w] = word


@jit
def retrain_epoch(x, y, order, counts, totals, protos, tie, lr, dim, margin, moves):
    """One sequential perceptron epoch over the samples in ``order``.

    x uint64 (n, W); y int64 (n,) class indices; counts int64 (C, dim) and totals int64 (C,) are
    the per-class counts; protos uint64 (C, W) their majorities (tie bits from ``tie``). A sample
    whose nearest other prototype ``p`` (ties: smaller class index) is not at least ``margin``
    bits farther than its own class's (``margin=0``: misclassified, with ties going to the
    smaller class index) adds ``lr * x`` to its class's counts and ``lr * ~x`` to class ``p``'s
    (subtracting ``x`` there, in majority terms), and both prototypes are recomputed at once.
    ``moves[i]`` is set to ``p`` (else -1).
    """
    n_classes = protos.shape[0]
    n_words = x.shape[1]
    for t in range(order.shape[0]):
        i = order[t]
        true = y[i]
        best = -1
        best_d = n_words * 64 + 1
        true_d = 0
        for c in range(n_classes):
            d = 0
            for w in range(n_words):
                d += popcount64(x[i, w] ^ protos[c, w])
            if c == true:
                true_d = d
            elif d < best_d:
                best_d = d
                best = c
        moves[i] = -1
        if best < 0:
            continue
        # misclassified (a tie with a smaller class index loses too), or correct by < margin bits
        if true_d < best_d - margin or (margin == 0 and true_d == best_d and true < best):
            continue
        moves[i] = best
        for e in range(dim):
            bit = np.int64((x[i, e >> 6] >> np.uint64(e & 63)) & np.uint64(1))
            counts[true, e] += lr * bit
            counts[best, e] += lr * (1 - bit)
        totals[true] += lr
        totals[best] += lr
        _prototype_row(counts[true], totals[true], tie, dim, protos[true])
        _prototype_row(counts[best], totals[best], tie, dim, protos[best])
