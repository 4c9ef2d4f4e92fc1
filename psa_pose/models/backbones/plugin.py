"""PSA in any mmpose backbone, by config or by a function call.

``backbone=dict(type='WithPSA', backbone=<any backbone config>, psa_cfg=dict(mode='p'))`` builds the
inner backbone through mmpose's registry (its ``_scope_`` kept, e.g. RTMPose's mmdet CSPNeXt) and
returns *that backbone*, with one PSA after the first 3x3 conv of every residual block
(:data:`psa_pose.models.backbones.psa_mixin.PSA_SITES`) by the mechanism of ``PSAHRNet`` and
``PSAResNet``: a child ``psa`` per block and a pre-hook on the conv after it. No wrapper module
is added, so the state-dict keys are the inner backbone's plus ``<block>.psa.*``, and baseline
checkpoints and ImageNet weights load by the one fit rule
(:func:`psa_pose.models.checkpoint.fit_problem`). The returned object's class is a subclass of
the inner one mixed with :class:`PSABackboneMixin` (``PSACSPNeXt`` for ``CSPNeXt``), so
``frozen_stages``, ``norm_eval``, ``with_cp`` and ``init_cfg`` stay the backbone's own.

Backbones without such blocks (transformers, depthwise/shuffle networks, plain conv stacks, 1D and
3D networks) are refused before they are built, in one line that says why (:data:`REFUSED`);
docs/plugin.md lists where PSA goes in each supported one.
"""
import copy
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmpose.models.backbones import HRNet, ResNet
from mmpose.registry import MODELS

from ..psa import PSAConfigError
from .hrnet import PSAHRNet
from .resnet import PSAResNet
from .psa_mixin import PSABackboneMixin, check_psa_cfg, psa_insertion_point

_TRANSFORMER = 'a transformer: its blocks are attention and MLPs, there is no residual 3x3 conv'
_DEPTHWISE = ('its blocks are inverted-residual/shuffle blocks whose 3x3 conv is depthwise: '
              'there is no dense 3x3 conv whose output the paper\'s PSA would take')
_PLAIN = 'a plain conv stack without residual blocks'

# registered mmpose 1.3.2 backbone name -> why WithPSA refuses it
REFUSED: Dict[str, str] = {
    'AlexNet': _PLAIN,
    'VGG': _PLAIN,
    'CPM': _PLAIN + ' (a cascade of conv stages)',
    'HourglassAENet': _PLAIN + ' (its hourglass units are conv-BN-ReLU, no residual add)',
    'MobileNetV2': _DEPTHWISE,
    'MobileNetV3': _DEPTHWISE,
    'ViPNAS_MobileNetV3': _DEPTHWISE,
    'ShuffleNetV1': _DEPTHWISE,
    'ShuffleNetV2': _DEPTHWISE,
    'LiteHRNet': _DEPTHWISE + '; its blocks carry their own channel and spatial weighting',
    'CSPDarknet': 'its DarknetBottleneck is 1x1 conv -> 3x3 conv -> add: no conv follows the 3x3 '
                  'conv to take PSA\'s output as in the paper (CSPNeXt, its successor, is '
                  'supported)',
    'HRFormer': _TRANSFORMER + ' (only its stem stage has bottlenecks)',
    'SwinTransformer': _TRANSFORMER,
    'PyramidVisionTransformer': _TRANSFORMER,
    'PyramidVisionTransformerV2': _TRANSFORMER,
    'DSTFormer': _TRANSFORMER + ' over keypoint sequences (3D lifting)',
    'TCN': '1D temporal convs over keypoint sequences (3D lifting); PSA is a 2D image block',
    'V2VNet': '3D convs over voxels; PSA is a 2D image block',
}

# PSA twin class of each backbone class WithPSA has converted (one each, so isinstance and
# repeated builds agree); mmpose's HRNet and ResNet get the registered PSAHRNet and PSAResNet
_PSA_CLASSES: Dict[type, type] = {HRNet: PSAHRNet, ResNet: PSAResNet}


def _psa_class(cls: type) -> type:
    """The PSA twin of backbone class ``cls``, made once and kept in this module under its
    name (``PSACSPNeXt``; ``PSACSPNeXt_mmdet`` for another package's class), so that pickle
    finds it."""
    if issubclass(cls, PSABackboneMixin):
        return cls
    if cls not in _PSA_CLASSES:
        package = cls.__module__.split('.')[0]
        name = f'PSA{cls.__name__}' + ('' if package == 'mmpose' else f'_{package}')
        twin = type(name, (PSABackboneMixin, cls), {
            '__module__': __name__,
            '__doc__': f'{cls.__module__}.{cls.__qualname__} with PSA (made by add_psa_to).'})
        if name not in globals():
            globals()[name] = twin
        _PSA_CLASSES[cls] = twin
    return _PSA_CLASSES[cls]


def add_psa_to(model: nn.Module, psa_cfg: Optional[dict],
               psa_stages: Optional[Sequence[bool]] = None) -> nn.Module:
    """Put one PSA after the first 3x3 conv of every residual block of the built backbone
    ``model`` (in place) and return it.

    Args:
        model: a built backbone (mmpose's or mmdet's), without PSA.
        psa_cfg: PolarizedSelfAttention arguments; ``None`` returns ``model`` unchanged.
        psa_stages: one bool per stage (the children holding residual blocks, in order);
            ``None`` means all.

    Raises:
        PSAConfigError: ``model`` is refused (:data:`REFUSED`, or no residual block PSA knows),
            already has PSA, or ``psa_cfg``/``psa_stages`` are invalid.
    """
    name = type(model).__name__
    if isinstance(model, PSABackboneMixin) and getattr(model, 'psa_cfg', None) is not None:
        raise PSAConfigError('backbone', f'WithPSA: the backbone {name} already has PSA; wrap '
                             f'the baseline backbone instead')
    check_psa_cfg(psa_cfg)
    if psa_cfg is None:
        return model
    if name in REFUSED:
        raise PSAConfigError('backbone', f'WithPSA does not support {name}: {REFUSED[name]}')
    if not any(psa_insertion_point(m) is not None for m in model.modules()):
        raise PSAConfigError('backbone', f'WithPSA does not support {name}: it has no residual '
                             f'block PSA knows (mmpose\'s BasicBlock/Bottleneck and their '
                             f'subclasses, ViPNAS, RSN and CSPNeXt blocks)')
    model.__class__ = _psa_class(type(model))
    model.add_psa(psa_cfg, psa_stages)
    print_log(f'WithPSA: {len(model.psa_block_names())} PSA blocks '
              f'({psa_cfg}) in {name}', logger=MMLogger.get_current_instance())
    return model


def _inner_class(backbone: dict) -> Optional[type]:
    """The class ``backbone`` names in mmpose's registry (in its ``_scope_``), or None."""
    type_ = backbone['type']
    if isinstance(type_, type):
        return type_
    with MODELS.switch_scope_and_registry(backbone.get('_scope_')) as registry:
        return registry.get(type_)


@MODELS.register_module()
class WithPSA(PSABackboneMixin, nn.Module):
    """``dict(type='WithPSA', backbone=..., psa_cfg=..., psa_stages=None)``: the inner backbone
    with PSA (module docstring). Constructing it returns the inner backbone itself, converted by
    :func:`add_psa_to`; no ``WithPSA`` instance exists.

    Args:
        backbone: config of any mmpose backbone (``_scope_`` allowed), without PSA.
        psa_cfg: PolarizedSelfAttention arguments, e.g. ``dict(mode='p', formulation='paper')``;
            ``None`` gives the inner backbone unchanged.
        psa_stages: one bool per stage (the backbone's children holding residual blocks, in
            order: ``layer1..4`` of ResNet, ``stage1..4`` of CSPNeXt), ``None`` for all.
    """

    def __new__(cls, backbone: dict, psa_cfg: Optional[dict] = None,
                psa_stages: Optional[Sequence[bool]] = None) -> nn.Module:
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise PSAConfigError('backbone', f'WithPSA: backbone must be the config dict (with '
                                 f'a type) of an mmpose backbone, got {backbone!r}')
        check_psa_cfg(psa_cfg)
        inner = _inner_class(backbone)
        if inner is None:
            raise PSAConfigError('backbone', f'WithPSA: backbone.type {backbone["type"]!r} is '
                                 f'not registered in mmpose\'s (or its _scope_\'s) model '
                                 f'registry')
        if isinstance(inner, type):
            if issubclass(inner, PSABackboneMixin):
                raise PSAConfigError('backbone', f'WithPSA: backbone.type {inner.__name__} '
                                     f'has PSA already; wrap the baseline backbone instead')
            if psa_cfg is not None and inner.__name__ in REFUSED:
                raise PSAConfigError('backbone', f'WithPSA does not support '
                                     f'{inner.__name__}: {REFUSED[inner.__name__]}')
        return add_psa_to(MODELS.build(copy.deepcopy(backbone)), psa_cfg, psa_stages)

    def __init__(self, backbone: dict, psa_cfg: Optional[dict] = None,
                 psa_stages: Optional[Sequence[bool]] = None) -> None:
        # never runs: __new__ returns the inner backbone; here for the argument checks
        super().__init__()
