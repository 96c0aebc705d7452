"""Encode family: the encoders', CentroidClassifier's and SparseDistributedMemory's kernels
(``ngram_majority``, ``record_majority``, ``retrain_epoch``, ``sdm_write``, ``sdm_read``).

One module per backend: ``numpy_ref`` (the definition), ``numba``, ``c`` (runs the Numba kernels:
no C kernels for this family yet).
"""
