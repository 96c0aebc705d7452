"""Sparse block code kernels: one module per backend, all with the same functions.

They take validated, C-contiguous arrays of block indices (uint8 / uint16 / uint32, one dtype per
call, every index ``< block_size``), write into caller-allocated outputs and return None.

===========================================  ===================================================
``overlap(a, b, out)``                       a, b (rows, K); out int32 (rows,): equal blocks
``cdist(a, b, out)``                         a (na, K), b (nb, K); out int32 (na, nb) overlaps
``topk(q, m, k, out_overlap, out_idx)``      q (nq, K), m (nm, K), ``1 <= k <= nm``; out int32
                                             / int64 (nq, k): highest overlap first, equal
                                             overlaps by smaller index
``block_counts(x, L, weights, counts)``      x (n, C), weights None or int64 (n,); counts int64
                                             (C, L), accumulated: ``counts[c, x[i, c]] += w[i]``
``bundle(x, L, weights, tie, out)``          x (n, C) with n >= 1, weights None or int64 (n,),
                                             tie, out (C,): per column the weighted most
                                             frequent index; tied maxima: the first at or after
                                             ``tie[c]`` counting up modulo ``L``
===========================================  ===================================================

:func:`for_backend` maps a backend name of :mod:`hdc.backend` to its module.
"""
import importlib

# the C family lands with the kernel re-layout; until then the C backend runs the Numba kernels
_MODULES = {"numpy": "numpy_ref", "numba": "numba", "c": "numba"}


def for_backend(name):
    """The sparse kernel module of backend ``name`` ('c', 'numba' or 'numpy')."""
    return importlib.import_module(f"{__name__}.{_MODULES[name]}")
