"""k-winner-take-all attention family: ``kwta_select``, ``kwta_softmax``, ``kwta_majority``.

One module per backend: ``numpy_ref`` (the definition), ``numba``, ``c`` (csrc/kwta/).
"""
