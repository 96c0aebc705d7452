"""Numba building blocks for your own kernels over ``BinaryHV.words``.

Every function here is jitted (lazily, on first use) and callable both from Python and from inside
your own ``@numba.njit`` functions, where it inlines into your loop. They work on one row of
``uint64`` words (``hv.words[i]``, a 1-D C-contiguous array) and follow the library's bit layout:
element ``i`` is bit ``i % 64`` of word ``i // 64``; padding bits past ``dim`` stay 0.

=====================================  ==========================================================
``popcount64(word)``                   set bits of one uint64 (LLVM ``ctpop``), int64
``popcount_row(row)``                  set bits of a row, int64
``hamming_row(a, b)``                  ``popcount(a ^ b)`` over two rows of equal length, int64
``xor_row(a, b, out)``                 ``out[:] = a ^ b`` (out may alias a or b)
``get_bit(row, i)``                    element ``i`` of the row, 0 or 1 (int64)
``set_bit(row, i, value)``             set element ``i`` to ``value != 0``
``rotate_row(row, dim, shift, out)``   ``out[(i + shift) % dim] = row[i]`` (any int shift,
                                       out must not alias row), as :func:`hdc.permute`
``jit(fn=None, *, parallel=False)``    the decorator the library uses: ``cache=True``,
                                       ``nogil=True``, ``fastmath=False``
=====================================  ==========================================================

Example: count the stored vectors within a Hamming radius of a query, in parallel.

>>> import numba, numpy as np, hdc
>>> from hdc.primitives import hamming_row, jit
>>> @jit(parallel=True)
... def count_within(query, memory, radius):
...     hits = 0
...     for j in numba.prange(memory.shape[0]):
...         if hamming_row(query, memory[j]) <= radius:
...             hits += 1
...     return hits
>>> mem = hdc.random(1000, 4096, seed=0)
>>> int(count_within(mem.words[3], mem.words, 0))
1
>>> int(count_within(mem.words[3], mem.words, 4096))
1000
"""
import os

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["JIT_OPTIONS", "jit", "popcount64", "popcount_row", "hamming_row", "xor_row", "get_bit",
           "set_bit", "rotate_row"]

# Numba's threading layer: TBB (a dependency of hdc where wheels exist), else workqueue; both
# survive fork() (multiprocessing pools, DataLoader workers), while numba's OpenMP layer kills a
# process forked after a parallel kernel ran. NUMBA_THREADING_LAYER(_PRIORITY) still decide.
if not (os.environ.get("NUMBA_THREADING_LAYER") or os.environ.get("NUMBA_THREADING_LAYER_PRIORITY")):
    numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]

#: The decorator options of every kernel in the library, in one place.
JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False}


def jit(fn=None, *, parallel=False, **overrides):
    """``numba.njit`` with the library's options (``cache=True, nogil=True, fastmath=False``).

    Compiles lazily on first call (no eager signatures). Use as ``@jit`` or ``@jit(parallel=True)``;
    extra keyword arguments override the defaults. Functions without a source file (a REPL, a
    doctest) cannot be cached on disk and are compiled with ``cache=False``.

    >>> from hdc.primitives import jit
    >>> @jit
    ... def twice(x):
    ...     return 2 * x
    >>> twice(21)
    42
    """
    options = dict(JIT_OPTIONS, **overrides)
    if parallel:
        options["parallel"] = True

    def decorate(f):
        try:
            return numba.njit(**options)(f)
        except RuntimeError as exc:
            if not options.get("cache") or "cannot cache" not in str(exc):
                raise
            return numba.njit(**dict(options, cache=False))(f)

    return decorate if fn is None else decorate(fn)


@intrinsic
def _ctpop64(typingctx, word):
    """LLVM ``llvm.ctpop.i64`` on a word (any integer type, reinterpreted as 64 bits) -> int64."""
    if not isinstance(word, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        (value,) = args
        i64 = ir.IntType(64)
        if value.type.width < 64:
            value = builder.zext(value, i64) if not word.signed else builder.sext(value, i64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64")
        return builder.call(fn, [value])

    return types.int64(word), codegen


if numba.config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 (e.g. for coverage of kernel bodies): intrinsics cannot run as Python
    def _ctpop64(word):  # noqa: F811 - the pure-Python stand-in for the intrinsic above
        return int(np.bitwise_count(np.uint64(word) if word >= 0 else np.int64(word).view(np.uint64)))


@jit
def popcount64(word):
    """Set bits of one 64-bit word, as int64 (compiles to a single ``popcnt``).

    >>> import numpy as np
    >>> from hdc.primitives import popcount64
    >>> popcount64(np.uint64(0xFF00FF))
    16
    """
    return _ctpop64(word)


@jit
def popcount_row(row):
    """Set bits of a 1-D word array, as int64.

    >>> import hdc
    >>> from hdc.primitives import popcount_row
    >>> x = hdc.random(1, 1000, seed=0)[0]
    >>> popcount_row(x.words) == int(hdc.popcount(x))
    True
    """
    total = 0
    for i in range(row.shape[0]):
        total += _ctpop64(row[i])
    return total


@jit
def hamming_row(a, b):
    """Hamming distance ``popcount(a ^ b)`` of two 1-D word arrays of equal length, as int64.

    >>> import hdc
    >>> from hdc.primitives import hamming_row
    >>> x, y = hdc.random(2, 1000, seed=0)
    >>> hamming_row(x.words, y.words) == int(hdc.hamming(x, y))
    True
    """
    if b.shape[0] != a.shape[0]:
        raise ValueError("hamming_row: a and b must have the same number of words")
    total = 0
    for i in range(a.shape[0]):
        total += _ctpop64(a[i] ^ b[i])
    return total


@jit
def xor_row(a, b, out):
    """``out[i] = a[i] ^ b[i]`` over 1-D word arrays of equal length (out may alias a or b).

    >>> import hdc, numpy as np
    >>> from hdc.primitives import xor_row
    >>> x, y = hdc.random(2, 1000, seed=0)
    >>> out = np.empty_like(x.words)
    >>> xor_row(x.words, y.words, out)
    >>> bool((out == (x ^ y).words).all())
    True
    """
    if a.shape[0] != out.shape[0] or b.shape[0] != out.shape[0]:
        raise ValueError("xor_row: a, b and out must have the same number of words")
    for i in range(out.shape[0]):
        out[i] = a[i] ^ b[i]


@jit
def get_bit(row, i):
    """Element ``i`` (``0 <= i < dim``) of a row of words: 0 or 1 (int64).

    >>> import hdc
    >>> from hdc.primitives import get_bit
    >>> x = hdc.BinaryHV.from_bool([0, 1, 1])
    >>> [get_bit(x.words, i) for i in range(3)]
    [0, 1, 1]
    """
    if i < 0 or i >= row.shape[0] * 64:
        raise IndexError("get_bit: element index outside the row")
    return np.int64((row[i >> 6] >> np.uint64(i & 63)) & np.uint64(1))


@jit
def set_bit(row, i, value):
    """Set element ``i`` (``0 <= i < dim``) of a row of words to 1 if ``value`` is nonzero, else 0.

    >>> import numpy as np
    >>> from hdc.primitives import set_bit
    >>> row = np.zeros(2, np.uint64)
    >>> set_bit(row, 65, 1)
    >>> row.tolist()
    [0, 2]
    """
    if i < 0 or i >= row.shape[0] * 64:
        raise IndexError("set_bit: element index outside the row")
    mask = np.uint64(1) << np.uint64(i & 63)
    if value:
        row[i >> 6] |= mask
    else:
        row[i >> 6] &= ~mask


@jit
def rotate_row(row, dim, shift, out):
    """Cyclic rotation of one row of ``dim`` elements: ``out[(i + shift) % dim] = row[i]``.

    A word-level funnel shift: the result is ``(row << shift) | (row >> (dim - shift))`` over the
    multi-word bit string, masked to ``dim`` bits. Any integer ``shift`` (negative undoes
    positive); ``row`` needs zero padding bits; ``out`` (same length) must not alias ``row``.

    >>> import hdc, numpy as np
    >>> from hdc.primitives import rotate_row
    >>> x = hdc.random(1, 100, seed=0)[0]
    >>> out = np.empty_like(x.words)
    >>> rotate_row(x.words, 100, 7, out)
    >>> bool((out == hdc.permute(x, 7).words).all())
    True
    """
    n = out.shape[0]
    if dim < 1 or (dim + 63) // 64 != n or row.shape[0] != n:
        raise ValueError("rotate_row: row and out must both have ceil(dim / 64) words")
    s = shift % dim
    if s == 0:
        for j in range(n):
            out[j] = row[j]
        return
    # left part: bits [0, dim - s) of row move up by s
    q = s >> 6
    r = np.uint64(s & 63)
    for j in range(min(q, n)):
        out[j] = np.uint64(0)
    if r == 0:
        for j in range(q, n):
            out[j] = row[j - q]
    elif q < n:
        rr = np.uint64(64) - r
        out[q] = row[0] << r
        for j in range(q + 1, n):
            out[j] = (row[j - q] << r) | (row[j - q - 1] >> rr)
    # right part: bits [dim - s, dim) of row move down by dim - s
    t = dim - s
    q2 = t >> 6
    r2 = np.uint64(t & 63)
    if r2 == 0:
        for j in range(n - q2):
            out[j] |= row[j + q2]
    else:
        rr2 = np.uint64(64) - r2
        for j in range(n - q2 - 1):
            out[j] |= (row[j + q2] >> r2) | (row[j + q2 + 1] << rr2)
        if n - q2 - 1 >= 0:
            out[n - q2 - 1] |= row[n - 1] >> r2
    rem = dim & 63
    if rem:
        out[n - 1] &= (np.uint64(1) << np.uint64(rem)) - np.uint64(1)
