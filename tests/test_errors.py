"""DESIGN.md's error rules: bad input raises ValueError/TypeError naming the argument."""
import numpy as np
import pytest

import hdc

X = hdc.random(3, 100, seed=1)
Y = hdc.random(3, 101, seed=1)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: hdc.bind(X, Y), ValueError, "same dim"),
    (lambda: hdc.bind(X, np.zeros(2)), TypeError, "b must be a hdc.BinaryHV"),
    (lambda: hdc.hamming(X, Y), ValueError, "same dim"),
    (lambda: hdc.hamming(X, hdc.random(4, 100, seed=0)), ValueError, "broadcast"),
    (lambda: hdc.cdist(X, Y), ValueError, "same dim"),
    (lambda: hdc.cdist(hdc.random((2, 2), 100), X), ValueError, "1-D batch"),
    (lambda: hdc.topk(X, X, 4), ValueError, "k must be <= 3"),
    (lambda: hdc.topk(X, X, 0), ValueError, "k must be >= 1"),
    (lambda: hdc.topk(X, X, 1.5), TypeError, "k must be an int"),
    (lambda: hdc.topk(X, X[:0], 1), ValueError, "memory is empty"),
    (lambda: hdc.topk(X, X[0], 1), ValueError, "memory must be a 1-D batch"),
    (lambda: hdc.permute(X, 1.5), TypeError, "shifts"),
    (lambda: hdc.bundle(X[:0]), ValueError, "x is empty"),
    (lambda: hdc.bundle(X[0]), ValueError, "batch axis"),
    (lambda: hdc.bundle(X, weights=[1, 2]), ValueError, r"weights must have shape \(3,\)"),
    (lambda: hdc.bundle(X, weights=[1, -2, 1]), ValueError, "non-negative"),
    (lambda: hdc.bundle(X, weights=[1, np.nan, 1]), ValueError, "finite"),
    (lambda: hdc.bundle(X, weights=[0, 0, 0]), ValueError, "positive sum"),
    (lambda: hdc.bundle(X, tie=2), ValueError, "tie must be"),
    (lambda: hdc.bundle(X, tie=Y[0]), ValueError, "tie must have dim 100"),
    (lambda: hdc.random(-1, 10), ValueError, "n must be >= 0"),
    (lambda: hdc.random(1, 0), ValueError, "dim must be >= 1"),
    (lambda: hdc.random(1, 10, seed=-3), ValueError, "seed"),
    (lambda: hdc.set_backend("no-such-backend"), ValueError, "backend must be one of"),
    (lambda: hdc.set_num_threads(0), ValueError, ">= 1"),
    (lambda: hdc.Accumulator(100).add(Y), ValueError, "dim 100"),
    (lambda: hdc.Accumulator(100).majority(), ValueError, "empty"),
    (lambda: hdc.Accumulator(100).add(X, weights=[0.5, 1, 1]), TypeError, "integers"),
])
def test_bad_input_raises(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
