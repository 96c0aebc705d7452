"""Element-wise family: ``bind``, ``permute``, ``popcount``, ``hamming`` (row by row).

One module per backend: ``numpy_ref`` (the definition), ``numba``, ``c`` (csrc/elementwise/).
"""
