"""Export a top-down pose model to ONNX, checked against PyTorch with onnxruntime.

``scripts/export_onnx.py CONFIG CKPT --out MODEL.onnx [--input-shape H W] [--opset N]``

The graph is the model's tensor path (backbone + head, what mmpose's ``mode='tensor'``
returns): input ``input``, the normalised crops the config's data preprocessor produces
(N x 3 x H x W, N dynamic); outputs ``heatmaps`` (N x K x H/4 x W/4) for a heatmap codec, or
``simcc_x`` and ``simcc_y`` (N x K x W*r, N x K x H*r, r the split ratio) for RTMPose's
SimCCLabel.
Decoding stays outside the graph; what it needs (codec, input size, mean/std, bbox padding,
flip test and flip pairs) goes into the model's ``metadata_props`` for
:mod:`psa_pose.deploy.onnx_infer`.

torch's own exporter (``torch.onnx.export(..., dynamo=True)``, torch.export + onnxscript) is
used: mmdeploy 1.3.1 does not install beside onnx >= 1.16 and its fork does not export under
torch 2.14 (README, "Export to ONNX"). The model runs in eval mode under ``torch.no_grad``, so
the export traces the forward only (no autograd). Before the file is written the graph
passes ``onnx.checker`` and onnxruntime's outputs are compared with PyTorch's on real crops
made by the config's test pipeline; above ``--tolerance`` nothing is written (exit code 2).
"""
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from ..config import TensorForward, build_model, load_config, set_input_shape, test_pipeline
from ..deploy.onnx_infer import (METADATA_FORMAT, METADATA_KEY, DeployError,
                                 check_codec, output_names)
from ..utils import UserError, atomic_path
from ..models.checkpoint import load_fitting

TOLERANCE = 1e-4
DEFAULT_OPSET = 18


def output_shapes(meta: Dict) -> List[Tuple[int, ...]]:
    """Each graph output's shape after the batch dimension, from the codec: K x H x W heatmaps,
    or SimCC's K x round(W * r) and K x round(H * r) vectors (as SimCCLabel sizes its labels)."""
    k, (w, h) = len(meta['flip_indices']), meta['input_size']
    if meta['codec']['type'] == 'SimCCLabel':
        r = meta['codec']['simcc_split_ratio']
        return [(k, int(np.around(w * r))), (k, int(np.around(h * r)))]
    return [(k, meta['heatmap_size'][1], meta['heatmap_size'][0])]


def runtime_metadata(cfg: Config, dataset_meta: Dict, config: str) -> Dict:
    """What :mod:`psa_pose.deploy.onnx_infer` needs to turn the graph's outputs (heatmaps or
    SimCC vectors) into keypoints, from the config: the codec the head decodes with, the test
    pipeline's crop, the preprocessor's normalisation and the head's flip test; or one
    :class:`UserError` line for what the runtime cannot decode."""
    codec = dict(cfg.model.head.decoder)
    test_cfg = cfg.model.get('test_cfg') or {}
    try:                    # before the codec's fields are read: they differ between codecs
        check_codec({'codec': codec, 'flip_test': test_cfg.get('flip_test', False),
                     'flip_mode': test_cfg.get('flip_mode', 'heatmap')}, config)
    except DeployError as e:
        raise UserError(str(e)) from None
    steps = {s['type']: s for s in test_pipeline(cfg)}
    affine = steps.get('TopdownAffine', {})
    pre = cfg.model.data_preprocessor
    meta = {
        'format': METADATA_FORMAT,
        'config': osp.splitext(osp.basename(config))[0],
        'input_size': list(codec['input_size']),
        'bbox_padding': float(steps.get('GetBBoxCenterScale', {}).get('padding', 1.25)),
        'use_udp': bool(affine.get('use_udp', False)),
        'mean': [float(v) for v in pre.get('mean', (0., 0., 0.))],
        'std': [float(v) for v in pre.get('std', (1., 1., 1.))],
        'bgr_to_rgb': bool(pre.get('bgr_to_rgb', False)),
        'flip_test': bool(test_cfg.get('flip_test', False)),
        'flip_mode': test_cfg.get('flip_mode', 'heatmap'),
        'shift_heatmap': bool(test_cfg.get('shift_heatmap', False)),
        'flip_indices': [int(i) for i in dataset_meta['flip_indices']],
        'keypoint_names': [dataset_meta['keypoint_id2name'][i]
                           for i in range(dataset_meta['num_keypoints'])],
    }
    if codec['type'] == 'SimCCLabel':
        meta['codec'] = {'type': 'SimCCLabel',
                         'simcc_split_ratio': float(codec.get('simcc_split_ratio', 2.0)),
                         'use_dark': False, 'decode_visibility': False}
    else:
        meta['heatmap_size'] = list(codec['heatmap_size'])
        meta['codec'] = {'type': codec['type'], 'unbiased': bool(codec.get('unbiased', False)),
                         'heatmap_type': codec.get('heatmap_type', 'gaussian'),
                         'blur_kernel_size': int(codec.get('blur_kernel_size', 11))}
    return meta


def load_weights(model: nn.Module, checkpoint: str, config: str) -> None:
    """Load a training or published checkpoint (a release's sha256 is checked) that must fit
    the model of ``config`` exactly, or raise one :class:`UserError` line."""
    load_fitting(model, checkpoint, config, '(the checkpoint to export)',
                 'export it with the config it was trained with')


def check_data_options(ann_file: str) -> Dict:
    """``--cfg-options`` that make the test set ``ann_file`` (COCO keypoints; images beside
    it, no detections: its ground-truth boxes)."""
    if not osp.isfile(ann_file):
        raise UserError(f'{ann_file}: no such COCO annotation file (--check-ann)')
    folder = osp.dirname(osp.abspath(ann_file))
    return {'test_dataloader.dataset.data_root': folder + os.sep,
            'test_dataloader.dataset.ann_file': osp.basename(ann_file),
            'test_dataloader.dataset.data_prefix': dict(img=''),
            'test_dataloader.dataset.bbox_file': None}


def real_crops(cfg: Config, model: nn.Module, count: int) -> Tuple[torch.Tensor, str]:
    """Up to ``count`` crops of the config's test set, made by its test pipeline and
    normalised by the model's data preprocessor; and where they came from."""
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import DATASETS
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    ann = osp.join(ds_cfg.get('data_root', ''), ds_cfg['ann_file'])
    if not osp.isfile(ann):
        raise UserError(f'{ann}: the config\'s test annotations are missing, so there are no '
                        f'real crops to check the export on; give --check-ann COCO.json (a COCO '
                        f'keypoint file with its images beside it)')
    ds_cfg['test_mode'] = True
    try:
        dataset = DATASETS.build(ds_cfg)
        items = [dataset[i] for i in range(min(count, len(dataset)))]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f'{ann}: the test set cannot be read ({type(e).__name__}: '
                        f'{str(e)[:120]}); give --check-ann COCO.json') from None
    if not items:
        raise UserError(f'{ann}: the test set has no person to crop; give --check-ann')
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate(items), False)
    return batch['inputs'], f'{len(items)} crops of {ann}'


def export(graph: nn.Module, example: torch.Tensor, path: str, opset: int,
           meta: Optional[Dict], output_names: Sequence[str] = ('heatmaps', ),
           ir_version: Optional[int] = None) -> None:
    """Write the ONNX graph (one file, weights inside) with ``meta`` in its metadata and check
    it with ``onnx.checker``; ``ir_version``: declare this older IR version (for an older
    onnxruntime) instead of the exporter's."""
    import onnx
    batch = torch.export.Dim('batch', min=1)
    with torch.no_grad():
        program = torch.onnx.export(graph, (example,), None, dynamo=True, opset_version=opset,
                                    input_names=['input'], output_names=list(output_names),
                                    dynamic_shapes=({0: batch},), verbose=False)
    proto = program.model_proto
    if meta is not None:
        proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
    if ir_version is not None:
        proto.ir_version = ir_version
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, path)


def largest_difference(path: str, graph: nn.Module, inputs: torch.Tensor) -> float:
    """max |onnxruntime - PyTorch| of the outputs (heatmaps, or SimCC's x and y) on
    ``inputs``."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outputs = session.run(None, {'input': inputs.numpy()})
    with torch.no_grad():
        wanted = graph(inputs)
    wanted = wanted if isinstance(wanted, (tuple, list)) else (wanted, )
    diff = 0.0
    for got, want in zip(outputs, wanted, strict=True):
        want = want.numpy()
        if got.shape != want.shape:
            raise UserError(f'{path}: onnxruntime gives outputs of shape {got.shape}, PyTorch '
                            f'{want.shape}; report this with the config')
        diff = max(diff, float(np.abs(got - want).max()))
    return diff


def export_config(config: str, options: Optional[Dict], check_ann: Optional[str],
                  input_shape: Optional[Tuple[int, int]]) -> Config:
    """The config to export: its options, ``check_ann`` as test set, ``input_shape``."""
    options = dict(options or {})
    if check_ann:
        options.update(check_data_options(check_ann))
    cfg = load_config(config, options)
    if input_shape:
        set_input_shape(cfg, input_shape)
    return cfg


def export_onnx(config: str, checkpoint: str, out: str, input_shape: Optional[Tuple[int, int]]
                = None, opset: int = DEFAULT_OPSET, options: Optional[Dict] = None,
                check_ann: Optional[str] = None, check_samples: int = 8,
                tolerance: float = TOLERANCE) -> float:
    """Export ``config`` with ``checkpoint`` to ``out``; return the largest difference to
    PyTorch. Nothing is written when it is above ``tolerance`` (:class:`UserError`)."""
    from mmpose.apis.inference import dataset_meta_from_config
    cfg = export_config(config, options, check_ann, input_shape)
    meta = runtime_metadata(cfg, dataset_meta_from_config(cfg, 'test'), config)
    model = build_model(cfg).eval()
    load_weights(model, checkpoint, config)
    graph = TensorForward(model).eval()
    inputs, source = real_crops(cfg, model, check_samples)
    w, h = meta['input_size']
    if tuple(inputs.shape[2:]) != (h, w):
        raise UserError(f'{config}: the test pipeline makes {tuple(inputs.shape[2:])} crops, the '
                        f'codec says {(h, w)}; make them agree')
    with torch.no_grad():
        got = graph(inputs[:1])
    got = [tuple(t.shape[1:]) for t in (got if isinstance(got, (tuple, list)) else (got, ))]
    names, want = output_names(meta), output_shapes(meta)
    if got != want:
        raise UserError(f'{config}: at {h}x{w} the model gives outputs of shape {got}, the codec '
                        f'expects {want} ({", ".join(names)}); use an input shape that divides '
                        f'by the backbone stride (32)')
    start = time.time()
    print(f'exporting {meta["config"]} at {h}x{w} (opset {opset}) ...', flush=True)
    with atomic_path(out) as tmp:
        # example batch 2: batch 1 would let torch.export specialise the batch dimension
        export(graph, inputs[:2] if len(inputs) > 1 else inputs.repeat(2, 1, 1, 1), tmp, opset,
               meta, names)
        diff = largest_difference(tmp, graph, inputs)
        what = 'heatmaps' if names == ('heatmaps', ) else 'SimCC vectors'
        print(f'max |onnxruntime - pytorch| = {diff:.3g} on the {what} of {source} '
              f'(tolerance {tolerance:g})')
        if not diff <= tolerance:
            raise UserError(f'{out}: onnxruntime differs from PyTorch by {diff:.3g} > '
                            f'{tolerance:g}; not written')
    print(f'wrote {out} ({osp.getsize(out) / 2**20:.1f} MiB, {time.time() - start:.0f} s)')
    return diff


def read_exported(path: str) -> Dict:
    """The runtime metadata of an ONNX file written by :func:`export_onnx`, or one
    :class:`UserError` line (missing, not ONNX, not exported by this project)."""
    import onnx
    if not osp.isfile(path):
        raise UserError(f'{path}: no such ONNX file')
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's decode errors have several types
        raise UserError(f'{path}: cannot be read as ONNX ({type(e).__name__}); export it again '
                        f'with scripts/export_onnx.py') from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise UserError(f'{path}: has no {METADATA_KEY!r} metadata; export it with '
                        f'scripts/export_onnx.py')
    return json.loads(props[METADATA_KEY])
