"""Hand Dask collections to :mod:`hdc.distributed` without importing Dask for anyone else.

A Dask collection can only exist once ``dask`` is imported, so the check looks in
``sys.modules`` first: ``import hdc`` and every call on NumPy data stay free of Dask.
"""
import sys


def is_collection(*values):
    """Whether any of ``values`` is a Dask collection (a dask.array, dask.bag, ...)."""
    if "dask" not in sys.modules:
        return False
    from dask.base import is_dask_collection

    return any(is_dask_collection(v) for v in values)


def distributed():
    """The :mod:`hdc.distributed` module (imports Dask)."""
    from . import distributed as module

    return module
