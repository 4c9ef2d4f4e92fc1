"""Configs: the one loader (with the project's checks), the naming rule, building a model,
and counting its parameters and FLOPs.

Config names follow mmpose's rule ``{algorithm}_{module}_{training}_{data}``; the PSA tag is part
of the module: ``td-hm_hrnet-w32-psa-p_8xb64-210e_coco-256x192`` is mmpose's
``td-hm_hrnet-w32_8xb64-210e_coco-256x192`` with PSA (``p`` or ``s``; ``ch`` or ``sp`` for the
one-branch ablations; ``-official`` for the released formulation, paper formulation otherwise).
"""
import argparse
import ast
import copy
import json
import math
import os
import re
from contextlib import contextmanager
from functools import lru_cache
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch.nn as nn
from mmengine.config import Config, DictAction

from .configcheck import check_loaded_config, psa_build_error, wrapped_backbone
from .utils import UserError, first_line

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO_ROOT, 'configs')
FAMILIES = {'resnet': 'SimpleBaseline (ResNet)', 'hrnet': 'HRNet',
            'resnet-variants': 'SimpleBaseline (ResNetV1d, ResNeXt; WithPSA)',
            'rtmpose': 'RTMPose (CSPNeXt; WithPSA)'}

# mmpose names RTMPose configs without a separate algorithm part: rtmpose-t_8xb256-420e_coco-256x192
_NAME = re.compile(r'(?:(?P<algo>[^_]+)_)?(?P<arch>[a-z0-9-]+?)(?:-psa-(?P<mode>ch|sp|[ps])'
                   r'(?P<official>-official)?)?_(?P<training>[^_]+)_(?P<data>[a-z]+)-'
                   r'(?P<h>\d+)x(?P<w>\d+)$')


class ConfigName(NamedTuple):
    """What a config's file name says."""
    name: str
    arch: str                     # mmpose's module part, e.g. 'hrnet-w32'
    psa: Optional[str]            # None, 'p', 's', 'ch', 'sp', or one of them + '-official'
    codec: str                    # 'udp', 'msra' or 'simcc' (RTMPose)
    input_hw: Tuple[int, int]

    @property
    def baseline(self) -> str:
        """The name of the unmodified mmpose config this one changes."""
        return self.name.replace(f'{self.arch}-psa-{self.psa}_', f'{self.arch}_', 1) \
            if self.psa else self.name

    @property
    def psa_label(self) -> str:
        if not self.psa:
            return '-'
        mode, _, official = self.psa.partition('-')
        return f"{mode} ({'official' if official else 'paper'})"


def parse_name(name: str) -> ConfigName:
    """Parse a config name (file name without ``.py``); ValueError if it breaks the rule."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(f'{name!r} does not follow [{{algorithm}}_]{{module}}[-psa-p|s|ch|sp'
                         f'[-official]]_{{training}}_{{data}}-HxW')
    psa = m['mode'] and m['mode'] + (m['official'] or '')
    codec = 'simcc' if m['algo'] is None and m['arch'].startswith('rtmpose') else \
        'udp' if m['training'].startswith('udp-') else 'msra'
    return ConfigName(name, m['arch'], psa or None, codec, (int(m['h']), int(m['w'])))


def config_files() -> Dict[str, str]:
    """``{config name: path}`` of every COCO config under ``configs/<family>/``."""
    found = {}
    for family in FAMILIES:
        folder = os.path.join(CONFIG_DIR, family)
        for file in sorted(os.listdir(folder)):
            if file.endswith('.py'):
                found[file[:-3]] = os.path.join(folder, file)
    return found


def family_of(path: str) -> str:
    return os.path.basename(os.path.dirname(path))


def mmpose_config_file(name: str) -> str:
    """The path of one of mmpose's packaged configs, by file name without ``.py``."""
    import glob
    import mmpose
    root = os.path.join(os.path.dirname(mmpose.__file__), '.mim', 'configs')
    hits = sorted(glob.glob(os.path.join(root, '**', name + '.py'), recursive=True))
    if not hits:
        raise FileNotFoundError(f'no mmpose config named {name!r} under {root}')
    return hits[0]


def load_config(path: str, options: Optional[dict] = None) -> Config:
    """The one config loader: ``Config.fromfile`` of a config file (or of one of mmpose's
    packaged configs, by file name without ``.py``) with ``--cfg-options`` merged.

    Importing the config imports psa_pose through its ``custom_imports``. A missing file, a
    syntax error (the file and line), a config that raises, options that do not merge and the
    mistakes :mod:`psa_pose.configcheck` finds (a key the built object does not take, bad PSA
    settings) are one :class:`~psa_pose.utils.UserError` line, the same for every entry point.
    """
    given = path
    if not os.path.isfile(path):
        try:
            path = mmpose_config_file(path)
        except FileNotFoundError:
            raise UserError(f'{path}: no such config file') from None
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as e:
        raise syntax_error(path, e) from None
    except Exception as e:  # noqa: BLE001 - a config is Python: it can raise anything
        raise UserError(f'{path}: cannot be loaded as a config ({first_line(e)}); fix the '
                        f'config file') from None
    if options:
        try:
            cfg.merge_from_dict(options)
        except (TypeError, KeyError, ValueError) as e:
            raise UserError(f'{path}: --cfg-options do not fit the config: {e}') from None
    check_loaded_config(cfg, given)
    return cfg


def _bases(path: str, tree: ast.Module) -> List[str]:
    """The local ``_base_`` files a parsed config names."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [os.path.normpath(os.path.join(os.path.dirname(path), n)) for n in names
                    if isinstance(n, str) and '::' not in n]
    return []


def syntax_error(path: str, error: SyntaxError) -> UserError:
    """One line naming the file (``path`` or one of its ``_base_`` files) and the line of a
    syntax error that mmengine reports without either."""
    todo, seen = [path], set()
    while todo:
        file = todo.pop(0)
        if file in seen or not os.path.isfile(file):
            continue
        seen.add(file)
        with open(file, encoding='utf-8') as f:
            text = f.read()
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError as e:
            error, path = e, file
            break
        todo += _bases(file, tree)
    return UserError(f'{path}:{error.lineno}: syntax error ({error.msg}); fix line '
                     f'{error.lineno} of the config file')


def build_model(cfg: Config, pretrained: bool = False):
    """Build the pose model of a config; without ``pretrained`` nothing is downloaded."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model_cfg = copy.deepcopy(cfg.model)
    if not pretrained:
        wrapped_backbone(model_cfg.backbone).pop('init_cfg', None)
    with psa_errors_as_lines(cfg):
        return MODELS.build(model_cfg)


@contextmanager
def psa_errors_as_lines(cfg: Config, config: Optional[str] = None) -> Iterator[None]:
    """A PSA block width or ``psa_stages`` that the backbone refuses while it is built (they
    need its structure) as the one line about the key of the config file ``config`` (default:
    the file ``cfg`` was loaded from; a config made in code is left to its caller, which knows
    the file). The one place that turns these errors into lines."""
    from .models.psa import PSAConfigError
    try:
        yield
    except PSAConfigError as e:
        if not (config or cfg.filename):
            raise
        raise psa_build_error(cfg, config or cfg.filename, e) from None


def input_hw(cfg: Config) -> Tuple[int, int]:
    """The network input (H, W) of a top-down config, from its codec's ``input_size``."""
    codec = cfg.get('codec')
    codec = codec[0] if isinstance(codec, (list, tuple)) else codec
    if not codec or 'input_size' not in codec:
        raise ValueError('the config has no codec.input_size: give the input size')
    w, h = codec['input_size']
    return h, w


def test_pipeline(cfg: Config) -> list:
    """The config's test pipeline (a list of transform dicts, edited in place)."""
    return cfg.test_dataloader.dataset.pipeline


def set_input_shape(cfg: Config, hw: Tuple[int, int]) -> None:
    """Make the config's codec and test pipeline produce ``hw`` = (H, W) crops; a heatmap
    codec keeps its input / heatmap ratio, a SimCC head (RTMPose) gets the feature map size it
    flattens (so only a checkpoint trained at ``hw`` fits it)."""
    h, w = hw
    codec = cfg.model.head.decoder
    if codec['type'] == 'SimCCLabel':
        (cw, ch), (fw, fh) = codec['input_size'], cfg.model.head['in_featuremap_size']
        stride = (cw // fw, ch // fh)
        if w % stride[0] or h % stride[1]:
            raise UserError(f'--input-shape {h} {w}: the SimCC head flattens the backbone\'s '
                            f'stride-{stride[1]} features; use a multiple of {stride[1]} x '
                            f'{stride[0]} (H x W)')
        cfg.model.head['input_size'] = codec['input_size'] = (w, h)
        cfg.model.head['in_featuremap_size'] = (w // stride[0], h // stride[1])
    else:
        (cw, ch), (hmw, hmh) = codec['input_size'], codec['heatmap_size']
        if (w * hmw) % cw or (h * hmh) % ch:
            raise UserError(f'--input-shape {h} {w}: the heatmap would not have a whole number '
                            f'of pixels (the codec maps {cw}x{ch} to {hmw}x{hmh}); use a '
                            f'multiple of {cw // math.gcd(cw, hmw)} x {ch // math.gcd(ch, hmh)} '
                            f'(W x H)')
        codec['input_size'] = (w, h)
        codec['heatmap_size'] = (w * hmw // cw, h * hmh // ch)
    for step in test_pipeline(cfg):
        if step['type'] == 'TopdownAffine':
            step['input_size'] = (w, h)


def count_params(model: nn.Module) -> int:
    """Number of parameters (mmengine's ``parameter_count``; shared parameters once)."""
    from mmengine.analysis import parameter_count
    return int(parameter_count(model)[''])


class TensorForward(nn.Module):
    """A pose model's ``mode='tensor'`` forward (image -> heatmaps) as a plain module, for
    tracers: mmengine's FLOP counter, ONNX export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, None, mode='tensor')


def count_flops(model: nn.Module, hw: Tuple[int, int]) -> int:
    """FLOPs of one ``1 x 3 x H x W`` forward as mmengine counts them (its ``FlopAnalyzer``,
    behind ``get_model_complexity_info``): it traces the aten ops (one multiply-add is one
    FLOP) and counts convolutions, matmuls and norms, not element-wise ops; its numbers are
    somewhat above the paper's for the same models."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    model.eval()
    x = torch.zeros(1, 3, *hw, device=next(model.parameters()).device)
    # the fast PSA path uses its convs' weights, not their forward: "uncalled" is expected;
    # softmax, sigmoid and the like are not counted by design
    analyzer = FlopAnalyzer(TensorForward(model), (x, )).unsupported_ops_warnings(False) \
        .uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(analyzer.total())


@lru_cache(maxsize=None)
def _measure(model_json: str, hw: Tuple[int, int]) -> Tuple[int, float]:
    model = build_model(Config(dict(model=json.loads(model_json))))
    return count_params(model), round(count_flops(model, hw) / 1e9, 3)


def measure(cfg: Config, hw: Optional[Tuple[int, int]] = None) -> Tuple[int, float]:
    """(parameters, GFLOPs at batch 1) of a config's model (:func:`count_params`,
    :func:`count_flops`), at the config's input size or ``hw`` = (H, W). Configs that share a
    model and input size (a UDP config and its MSRA twin) are measured once.
    """
    model_cfg = cfg.model.to_dict()
    wrapped_backbone(model_cfg['backbone']).pop('init_cfg', None)
    model_cfg.pop('test_cfg', None)
    model_cfg['head'].pop('decoder', None)        # codec only: no effect on the network
    with psa_errors_as_lines(cfg):
        return _measure(json.dumps(model_cfg, sort_keys=True), tuple(hw or input_hw(cfg)))


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """mmpose's ``--cfg-options key=value ...`` (merged by :func:`load_config`), declared once
    for every tool that loads a config."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, key=value (e.g. '
                        'model.backbone.init_cfg.checkpoint=/path/to/weights.pth)')


def evaluators(cfg: Config, split: str = 'test') -> List[dict]:
    """The evaluator dicts of ``<split>_evaluator`` (one or a list), in order; the first is
    the one whose metrics and COCO results a run reports."""
    evaluator = cfg.get(f'{split}_evaluator')
    if evaluator is None:
        return []
    return [e for e in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator])
            if isinstance(e, dict)]


def default_work_dir(cfg: Config, config: str, given: Optional[str] = None) -> str:
    """The work dir of a run, as mmpose's tools choose it: ``--work-dir``, else the config's
    ``work_dir``, else ``./work_dirs/<config name>``."""
    return given or cfg.get('work_dir') or os.path.join(
        './work_dirs', os.path.splitext(os.path.basename(config))[0])
