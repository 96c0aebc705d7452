"""Builds the optional C extension (cffi); everything else is in pyproject.toml.

Without a working C compiler the install still succeeds, without the extension, and the
``c`` backend then reports why it is unavailable (the dispatcher falls back to Numba).
"""
import warnings

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the C kernels if possible, else skip them with a warning."""

    def build_extension(self, ext):
        try:
            return super().build_extension(ext)
        except Exception as first:  # noqa: BLE001 - any compiler/linker failure
            warnings.warn(f"hdc: the C extension {ext.name} was not built ({first}); the 'c' "
                          "backend is unavailable and hdc uses Numba/NumPy. Install a C compiler "
                          "(e.g. gcc) and reinstall to enable it.")
            print(f"WARNING: hdc C extension not built: {first}")
            return None


setup(cffi_modules=["csrc/_build.py:ffi"], cmdclass={"build_ext": OptionalBuildExt})
