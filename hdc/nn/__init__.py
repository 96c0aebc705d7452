"""PyTorch modules of the HD-transformer (optional extra ``torch``) and their torch-free export.

- :class:`HammingKWTAAttention`, :class:`HDTransformer`, :class:`VoterHead` (``hdc.nn.modules``,
  need torch);
- :class:`PackedModel` (``hdc.nn.packed``): the exported model, NumPy + hdc kernels only;
- ``hdc.nn.tasks``: MQAR and character-level LM data (NumPy only);
- ``hdc.nn.training``: the training / evaluation loop behind ``hdc train`` and ``hdc compare``.

Torch is imported only when a torch name is used, so ``hdc.nn.PackedModel`` and
``hdc.nn.tasks`` work without it.

>>> import torch, hdc
>>> m = hdc.nn.HDTransformer(vocab_size=16, d_model=32, n_layers=1, n_heads=2, topk=4)
>>> tuple(m(torch.zeros(1, 8, dtype=torch.long)).shape)
(1, 8, 16)
"""
import importlib

_LAZY = {
    "HammingKWTAAttention": "hdc.nn.modules",
    "HDTransformer": "hdc.nn.modules",
    "VoterHead": "hdc.nn.modules",
    "ste_sign": "hdc.nn.modules",
    "PackedModel": "hdc.nn.packed",
    "load_packed": "hdc.nn.packed",
    "tasks": "hdc.nn.tasks",
    "training": "hdc.nn.training",
    "modules": "hdc.nn.modules",
    "packed": "hdc.nn.packed",
}

__all__ = ["HammingKWTAAttention", "HDTransformer", "VoterHead", "PackedModel", "tasks"]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__ == f"hdc.nn.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hdc.nn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
