"""Bundle family: ``bundle`` (majority with tie bits) and ``column_counts`` (exact counts).

One module per backend: ``numpy_ref`` (the definition), ``numba``, ``c`` (csrc/bundle/).
"""
