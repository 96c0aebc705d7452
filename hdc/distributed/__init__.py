"""Scale-out on Dask (optional extra ``distributed``): sharded memories, out-of-core encoding and training.

- :class:`ShardedMemory`: the :class:`hdc.AssociativeMemory` API over Dask actors, one per shard;
  answers identical to one in-process memory; ``save``/``load`` with a manifest; ``recover``.
- Encoders and :class:`hdc.CentroidClassifier` accept Dask collections (a ``dask.bag`` of
  strings, a ``dask.array`` of features) and run per partition: :func:`encode`, :func:`fit`.

``import hdc`` does not import Dask; ``import hdc.distributed`` does.
"""
from .collections import encode, fit, partial_fit, predict
from .sharded import MEMORY_FRACTION, ShardedMemory, ShardLostError

__all__ = ["ShardedMemory", "ShardLostError", "MEMORY_FRACTION", "encode", "fit", "partial_fit", "predict"]
