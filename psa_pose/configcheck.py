"""Config mistakes, found as the config is loaded (:func:`psa_pose.load_config`), so that
every entry point (train, test, get_flops, benchmark, demo, export) refuses them with the same
line before anything is built:

- a key that the object a config dict builds does not take (``train_cfg.max_epoch``,
  ``model.backbone.dpth``, from the file or from ``--cfg-options``): the key, the class, and
  the argument that was probably meant (:mod:`difflib`). mmengine would build most of these
  objects much later (the training loop when ``train()`` starts) and fail with a traceback;
- a ``type`` that no registry holds;
- the PSA settings (``psa_cfg`` keys and values, ``psa_cfg`` on a backbone without PSA), by the
  backbone's own check.

The arguments a class takes are read from its ``__init__`` signatures along the MRO as long as
each passes ``**kwargs`` on; a class whose arguments cannot be known that way is not checked.
"""
import difflib
import inspect
from typing import Any, Iterator, Optional, Set, Tuple

from mmengine.config import Config

from .models.backbones.psa_mixin import PSABackboneMixin, check_psa_cfg
from .models.psa import PSAConfigError
from .utils import UserError

FIX_CONFIG = 'fix it in the config or with --cfg-options'

# A built object's dict argument that another registry builds (else: the parent's registry).
CHILD_REGISTRY = {
    'decoder': 'KEYPOINT_CODECS', 'encoder': 'KEYPOINT_CODECS', 'pipeline': 'TRANSFORMS',
    'transforms': 'TRANSFORMS', 'dataset': 'DATASETS', 'datasets': 'DATASETS',
    'sampler': 'DATA_SAMPLERS', 'batch_sampler': 'DATA_SAMPLERS', 'optimizer': 'OPTIMIZERS',
    'switch_pipeline': 'TRANSFORMS',
}
# Arguments that are not this project's registries' configs: albumentations' own transforms.
FOREIGN_ARGUMENTS = {'Albumentation': {'transforms'}}
# Keys the builder consumes itself before calling the class.
BUILDER_KEYS = {
    'PARAM_SCHEDULERS': {'convert_to_iter_based'},
    'OPTIM_WRAPPERS': {'optimizer', 'paramwise_cfg', 'constructor'},
    'OPTIMIZERS': {'params'},
}
# torch's DataLoader arguments mmengine's Runner.build_dataloader takes out first
DATALOADER_KEYS = {'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn',
                   'num_batch_per_epoch'}
LOOPS = {'train_cfg': ('EpochBasedTrainLoop', {'by_epoch'}), 'val_cfg': ('ValLoop', set()),
         'test_cfg': ('TestLoop', set())}


def check_loaded_config(cfg: Config, config: str) -> None:
    """Everything this module checks (see the module docstring), for the config file
    ``config`` (named in the line)."""
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope') or 'mmpose')
    check_psa_settings(cfg, config)
    check_arguments(cfg, config)


# -- arguments -------------------------------------------------------------------------------
def accepted_arguments(cls: Any) -> Optional[Set[str]]:
    """The keyword arguments ``cls(...)`` takes, or None when they cannot be known."""
    if not isinstance(cls, type):
        return None
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return None             # **kwargs all the way down: anything may be meant
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


def _registry(name: str):
    from mmpose import registry
    return getattr(registry, name)


def _registered_names(registry) -> Set[str]:
    names = set()
    while registry is not None:
        names.update(registry.module_dict)
        registry = registry.parent
    return names


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''


def _unknown_key(config: str, path: str, key: str, cls_name: str, accepted: Set[str]) -> UserError:
    return UserError(f'{config}: {path}.{key}: {cls_name} takes no argument {key!r}'
                     f'{_hint(key, accepted)}; {FIX_CONFIG}')


def _check_keys(config: str, path: str, node: dict, cls: Any, extra: Set[str]) -> None:
    accepted = accepted_arguments(cls)
    if accepted is None:
        return
    accepted |= extra
    for key in node:
        if key not in ('type', '_scope_') and key not in accepted:
            raise _unknown_key(config, path, key, cls.__name__, accepted - {'_scope_'})


def _built(config: str, path: str, node: Any, registry_name: str) -> None:
    """Check ``node`` (a dict with ``type``, or a list of them) that ``registry_name`` builds,
    and the dicts with ``type`` among its arguments."""
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _built(config, f'{path}[{i}]', item, registry_name)
        return
    if not isinstance(node, dict) or 'type' not in node:
        return
    type_ = node['type']
    registry = _registry(registry_name)
    cls = type_ if not isinstance(type_, str) else registry.get(type_)
    if cls is None:
        raise UserError(f'{config}: {path}.type {type_!r} is not registered in '
                        f'{registry.scope}\'s {registry.name} registry'
                        f'{_hint(type_, _registered_names(registry))}; {FIX_CONFIG} (or add '
                        f'the module that registers it to custom_imports)')
    _check_keys(config, path, node, cls, BUILDER_KEYS.get(registry_name, set()))
    for key, value in node.items():
        # *_cfg dicts (norm_cfg, init_cfg, psa_cfg, test_cfg) are built, if at all, by
        # helpers that take keys of their own
        if key not in ('type', '_scope_') and not key.endswith('_cfg') and \
                key not in FOREIGN_ARGUMENTS.get(getattr(cls, '__name__', ''), ()):
            _built(config, f'{path}.{key}', value, CHILD_REGISTRY.get(key, registry_name))


def _dataloader(config: str, path: str, loader: Any) -> None:
    if not isinstance(loader, dict):
        return
    from torch.utils.data import DataLoader
    _check_keys(config, path, loader, DataLoader, DATALOADER_KEYS)
    for key in ('dataset', 'sampler', 'batch_sampler'):
        _built(config, f'{path}.{key}', loader.get(key), CHILD_REGISTRY[key])


def _loop(config: str, key: str, loop: Any) -> None:
    if not isinstance(loop, dict):
        return
    if 'type' in loop:
        _built(config, key, loop, 'LOOPS')
        return
    default, extra = LOOPS[key]
    if key == 'train_cfg' and loop.get('by_epoch') is False:
        default = 'IterBasedTrainLoop'
    cls = _registry('LOOPS').get(default)
    _check_keys(config, key, loop, cls, extra)


def check_arguments(cfg: Config, config: str) -> None:
    """Every key of the objects the Runner builds from ``cfg``: the model, the dataloaders,
    their datasets, samplers and transforms, the evaluators, the loops, the optimizer wrapper,
    optimizer and schedulers, and the hooks."""
    _built(config, 'model', cfg.get('model'), 'MODELS')
    for split in ('train', 'val', 'test'):
        _dataloader(config, f'{split}_dataloader', cfg.get(f'{split}_dataloader'))
        if split != 'train':
            _built(config, f'{split}_evaluator', cfg.get(f'{split}_evaluator'), 'METRICS')
        _loop(config, f'{split}_cfg', cfg.get(f'{split}_cfg'))
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict) and 'optimizer' in wrapper:    # not a dict of wrappers
        _built(config, 'optim_wrapper', {'type': 'OptimWrapper', **wrapper}, 'OPTIM_WRAPPERS')
    _built(config, 'param_scheduler', cfg.get('param_scheduler'), 'PARAM_SCHEDULERS')
    for name, hook in (cfg.get('default_hooks') or {}).items():
        _built(config, f'default_hooks.{name}', hook, 'HOOKS')
    _built(config, 'custom_hooks', cfg.get('custom_hooks'), 'HOOKS')


# -- PSA -------------------------------------------------------------------------------------
def model_parts(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """``('model.backbone', cfg.model.backbone)`` and the model's other built parts; for a
    ``WithPSA`` backbone also ``('model.backbone.backbone', <the backbone it wraps>)``."""
    model = cfg.get('model') or {}
    for name, part in model.items():
        if isinstance(part, dict) and 'type' in part:
            yield f'model.{name}', part
            inner = wrapped_backbone(part)
            if inner is not part:
                yield f'model.{name}.backbone', inner


def wrapped_backbone(part: dict) -> dict:
    """The dict of a backbone's own arguments (``init_cfg`` among them): ``part`` itself, or
    for ``type='WithPSA'`` the backbone config it wraps."""
    inner = part.get('backbone') if part.get('type') == 'WithPSA' else None
    return inner if isinstance(inner, dict) else part


def module_of(path: str) -> str:
    """The model's submodule that the :func:`model_parts` path builds ('' for the model):
    ``WithPSA`` returns the backbone it wraps, so ``model.backbone.backbone`` is ``backbone``."""
    module = path[len('model.'):] if path.startswith('model.') else ''
    return module[:-len('.backbone')] if module.endswith('backbone.backbone') else module


def _is_psa_backbone(type_: Any) -> bool:
    from mmpose.registry import MODELS
    cls = type_ if isinstance(type_, type) else MODELS.get(type_)
    return isinstance(cls, type) and issubclass(cls, PSABackboneMixin)


def _psa_error(path: str, config: str, e: PSAConfigError) -> UserError:
    """The config key of model part ``path`` that ``e`` is about, in one line."""
    if e.key == 'in_channels':
        return UserError(f'{config}: {path} gives a PSA block a width it cannot take ({e}); '
                         f'change the backbone\'s channels or its psa_cfg')
    own = e.key in ('psa_cfg', 'psa_stages', 'backbone')      # WithPSA's own arguments
    key = f'{path}.{e.key}' if own else f'{path}.psa_cfg.{e.key}'
    return UserError(f'{config}: {key} is invalid ({e}); {FIX_CONFIG}')


def psa_build_error(cfg: Config, config: str, e: PSAConfigError) -> UserError:
    """A :class:`PSAConfigError` raised while the model of ``cfg`` was built (a block width,
    ``psa_stages``: they need the backbone's structure), as the one line about its key."""
    path = next((path for path, part in model_parts(cfg) if _is_psa_backbone(part['type'])),
                'model.backbone')
    return _psa_error(path, config, e)


def check_psa_settings(cfg: Config, config: str) -> None:
    """``psa_cfg`` of each PSA backbone, by the backbone's own check (no model is built)."""
    for path, part in model_parts(cfg):
        if 'psa_cfg' not in part and 'psa_stages' not in part:
            continue
        if not _is_psa_backbone(part['type']):
            if isinstance(part['type'], str) and _registry('MODELS').get(part['type']) is None:
                continue        # a misspelt type: check_arguments names it
            key = 'psa_cfg' if 'psa_cfg' in part else 'psa_stages'
            raise UserError(f'{config}: {path}.{key} is set, but {part["type"]} has no PSA; '
                            f'use its PSA subclass (e.g. PSAResNet, PSAHRNet)')
        try:
            check_psa_cfg(part.get('psa_cfg'))
        except PSAConfigError as e:
            raise _psa_error(path, config, e) from None
