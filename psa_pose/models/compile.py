"""``torch.compile`` for a pose model's tensor path, keeping its state dict as it is."""
import torch.nn as nn


def compile_tensor_path(model: nn.Module, **options) -> nn.Module:
    """Compile the forward of the model's backbone, neck and head in place.

    ``nn.Module.compile`` compiles each in place: the modules stay what they are
    (``torch.compile(module)`` would wrap them and prefix every state-dict key with
    ``_orig_mod.``, so a checkpoint loaded afterwards would not fit); data
    preprocessing and the codec's decoding, numpy code, stay eager. The PSA backbones compile
    as one graph each (no graph breaks; ``tests/models/test_compile.py``). ``options`` go to
    ``torch.compile`` (e.g. ``backend``, ``mode``).
    """
    for name in ('backbone', 'neck', 'head'):
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.compile(**options)
    return model
