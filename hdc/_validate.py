"""Argument checks shared by the public API. Each error names the argument and what was expected."""
import numbers

import numpy as np


def check_int(value, name, low=None, high=None):
    """``value`` as a Python int within [low, high] (either bound may be None)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


#: The largest ``dim``: distances and popcounts are int32 (as faiss), so every count fits.
MAX_DIM = 2 ** 31 - 1


def check_dim(dim, name="dim"):
    """``dim`` as a Python int in [1, MAX_DIM = 2**31 - 1]."""
    dim = check_int(dim, name, low=1)
    if dim > MAX_DIM:
        raise ValueError(f"{name} must be <= 2**31 - 1 = {MAX_DIM} (distances are int32), got {dim}")
    return dim


def check_finite_array(values, name, dtype=np.float64):
    """``values`` as a float array with no NaN or infinity."""
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(values).__name__}: {exc}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return array


def as_rng(seed, name="seed"):
    """A NumPy Generator from None, an int, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(check_int(seed, name, low=0))


def n_words(dim):
    return (dim + 63) // 64


def padding_mask(dim):
    """uint64 mask of the valid bits in the last word of a ``dim``-element row."""
    rem = dim % 64
    return np.uint64(0xFFFFFFFFFFFFFFFF) if rem == 0 else np.uint64((1 << rem) - 1)
