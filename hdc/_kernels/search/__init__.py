"""Search family: ``cdist`` (all pairs) and ``topk`` (nearest stored rows).

One module per backend: ``numpy_ref`` (the definition), ``numba``, ``c`` (csrc/search/, with the
per-ISA distance tables of csrc/hamming/).
"""
