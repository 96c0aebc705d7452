"""What a bug report needs: versions, backends (and why any is missing), SIMD path, threads, CPU.

>>> import hdc
>>> cfg = hdc.show_config(mode="dicts")
>>> cfg["hdc"]["version"] == hdc.__version__
True
"""
import importlib
import os
import platform
import sys

from . import _env

# optional packages worth naming in a bug report: import name -> distribution name
_OPTIONAL = {"torch": "torch", "torchhd": "torch-hd", "faiss": "faiss-cpu", "sklearn": "scikit-learn",
             "matplotlib": "matplotlib", "tqdm": "tqdm", "pytest_benchmark": "pytest-benchmark"}
# hdc's own variables (hdc._env) and the other libraries' that change speed
_ENV = _env.NAMES + ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR",
                     "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CPU_FLAGS = ("popcnt", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq")


def _version(module_name):
    """``module.__version__`` or a short 'not installed: ...' reason (never raises)."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a broken optional install is reported, not raised
        if isinstance(exc, ImportError) and getattr(exc, "name", None) == module_name:
            return "not installed"
        return f"not importable ({type(exc).__name__}: {exc})"
    return str(getattr(module, "__version__", "unknown version"))


# (vendor, family, model) -> core generation, for the server CPUs benchmark figures come from;
# a VM often reports a generic model name ("Intel(R) Xeon(R) Processor"), the numbers still say
# which chip it is. AMD family 0x19 spans Zen 3 and Zen 4 by model range.
_INTEL_MODELS = {0x55: "Skylake-SP / Cascade Lake", 0x6A: "Ice Lake-SP", 0x6C: "Ice Lake-SP",
                 0x8F: "Sapphire Rapids", 0xCF: "Emerald Rapids", 0xAD: "Granite Rapids",
                 0xAF: "Sierra Forest", 0x4F: "Broadwell", 0x3F: "Haswell"}
_AMD_RANGES = [(0x17, 0x00, 0x2F, "Zen / Zen+"), (0x17, 0x30, 0xFF, "Zen 2"),
               (0x19, 0x00, 0x0F, "Zen 3"), (0x19, 0x10, 0x1F, "Zen 4"), (0x19, 0x20, 0x5F, "Zen 3"),
               (0x19, 0x60, 0xAF, "Zen 4"), (0x1A, 0x00, 0xFF, "Zen 5")]


def microarchitecture(vendor, family, model):
    """The core generation of an x86 CPU from its CPUID vendor, family and model, or None.

    >>> microarchitecture("GenuineIntel", 6, 0x8F)
    'Sapphire Rapids'
    """
    if vendor == "GenuineIntel" and family == 6:
        return _INTEL_MODELS.get(model)
    if vendor == "AuthenticAMD":
        for fam, lo, hi, name in _AMD_RANGES:
            if family == fam and lo <= model <= hi:
                return name
    return None


def cpu_info():
    """CPU model (and core generation where known), logical cores, memory and the SIMD flags the
    C kernels care about."""
    model, flags = platform.processor() or platform.machine(), set()
    ids = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key in ("vendor_id", "cpu family", "model") and key not in ids:
                    ids[key] = value.strip()
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    try:
        family, number = int(ids["cpu family"]), int(ids["model"])
        generation = microarchitecture(ids.get("vendor_id"), family, number)
        if generation:
            model = f"{model} [{generation}, family {family} model {number}]"
    except (KeyError, ValueError):
        pass
    return {"model": model, "machine": platform.machine(), "logical_cores": os.cpu_count(),
            "memory_gb": mem_gb, "simd_flags": [f for f in _CPU_FLAGS if f in flags] if flags else "unknown",
            "load_average": load}


def _c_backend_info():
    """Active ISA and the ISAs this build + CPU can run, or why the C backend is unavailable."""
    from . import backend
    module = backend._load("c")
    if module is None:
        return {"available": False, "reason": backend.unavailable().get("c", "not loaded")}
    info = {"available": True}
    try:
        info["isa"] = backend.get_isa()
    except Exception as exc:  # noqa: BLE001
        info["isa"] = f"unknown ({type(exc).__name__}: {exc})"
    for name in ("available_isas", "isas", "supported_isas", "compiled_isas"):
        value = getattr(module, name, None)
        if value is not None:
            try:
                info["available_isas"] = list(value() if callable(value) else value)
            except Exception as exc:  # noqa: BLE001
                info["available_isas"] = f"unknown ({type(exc).__name__}: {exc})"
            break
    else:
        # probe: each path set_isa accepts is available; restore the previous one afterwards
        previous, ok = info["isa"], []
        for isa in ("scalar", "avx2", "avx512bw", "avx512vpopcnt", "neon"):
            try:
                backend.set_isa(isa)
                ok.append(isa)
            except Exception:  # noqa: BLE001 - ValueError: the CPU or build cannot run this path
                pass
        try:
            backend.set_isa(previous)
        except Exception:  # noqa: BLE001
            backend.set_isa("auto")
        info["available_isas"] = ok
    return info


def show_config(mode="stdout"):
    """Print (``mode="stdout"``) or return (``mode="dicts"``) the configuration of this install.

    Sections: hdc (version, backends and why any is unavailable, active backend, C SIMD path,
    threads), python, dependencies (versions or 'not installed'), cpu, environment variables.

    >>> import hdc
    >>> sorted(hdc.show_config(mode="dicts"))
    ['cpu', 'dependencies', 'environment', 'hdc', 'python']
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    import hdc
    from . import backend
    try:
        active = backend.get_backend()
    except ValueError as exc:
        active = f"error: {exc}"
    cfg = {
        "hdc": {"version": hdc.__version__, "path": os.path.dirname(os.path.abspath(hdc.__file__)),
                "backends": list(backend.backends()), "unavailable": backend.unavailable(),
                "active_backend": active, "c_backend": _c_backend_info(),
                "num_threads": backend.get_num_threads()},
        "python": {"version": sys.version.split()[0], "implementation": platform.python_implementation(),
                   "executable": sys.executable, "platform": platform.platform()},
        "dependencies": {"numpy": _version("numpy"), "numba": _version("numba"), "cffi": _version("cffi"),
                         **{dist: _version(mod) for mod, dist in _OPTIONAL.items()}},
        "cpu": cpu_info(),
        "environment": {k: os.environ[k] for k in _ENV if k in os.environ},
    }
    if mode == "dicts":
        return cfg
    print(format_config(cfg))
    return None


def format_config(cfg):
    """The text ``show_config()`` prints, from its dict."""
    lines = []
    for section, values in cfg.items():
        lines.append(f"{section}:")
        for key, value in values.items():
            if isinstance(value, dict):
                if not value:
                    lines.append(f"  {key}: (none)")
                    continue
                lines.append(f"  {key}:")
                lines.extend(f"    {k}: {v}" for k, v in value.items())
            else:
                if isinstance(value, (list, tuple)):
                    value = ", ".join(map(str, value)) or "(none)"
                lines.append(f"  {key}: {value}")
        if not values:
            lines.append("  (none set)")
    return "\n".join(lines)
