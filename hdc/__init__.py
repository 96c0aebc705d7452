"""hdc: hyperdimensional computing on bit-packed binary hypervectors.

>>> import hdc
>>> x, y = hdc.random(2, 10_000, seed=0)
>>> z = hdc.bind(x, y)
>>> float(hdc.similarity(hdc.bind(z, y), x))
1.0
"""
import importlib

from .accumulator import Accumulator
from .backend import (available_isas, backends, get_backend, get_isa, get_num_threads, set_backend, set_isa,
                      set_num_threads, use_backend, use_isa)
from .hv import BinaryHV
from .ops import bind, bundle, cdist, hamming, overlap, permute, popcount, random, similarity, topk, unbind
from .sparse import SparseHV, random_sparse

__version__ = "0.1.0"

# Higher layers load on first use, so `import hdc` stays fast and needs only numpy.
_LAZY = {
    "within": "hdc.search",
    "BlockAccumulator": "hdc.block_accumulator",
    "show_config": "hdc.info",
    "ItemMemory": "hdc.encoders",
    "LevelEncoder": "hdc.encoders",
    "ThermometerEncoder": "hdc.encoders",
    "CircularEncoder": "hdc.encoders",
    "RecordEncoder": "hdc.encoders",
    "NGramEncoder": "hdc.encoders",
    "RandomProjection": "hdc.encoders",
    "AssociativeMemory": "hdc.memory",
    "LabelNotFound": "hdc.memory",
    "CentroidClassifier": "hdc.classifier",
    "SparseDistributedMemory": "hdc.sdm",
    "attention": "hdc.attention",
    "nn": "hdc.nn",
    "experiments": "hdc.experiments",
    "primitives": "hdc.primitives",
}

__all__ = ["Accumulator", "BinaryHV", "SparseHV", "available_isas", "backends", "bind", "bundle", "cdist", "get_backend",
           "get_isa", "get_num_threads", "hamming", "overlap", "permute", "popcount", "random", "random_sparse",
           "set_backend", "set_isa", "set_num_threads", "similarity", "topk", "unbind", "use_backend", "use_isa",
           *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__ == f"hdc.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hdc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
