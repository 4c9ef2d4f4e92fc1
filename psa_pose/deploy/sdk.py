"""Export a top-down pose model as an mmdeploy SDK folder, run by ``mmdeploy_runtime``.

``scripts/export_onnx.py CONFIG CKPT --sdk DIR`` writes, as mmdeploy's converter does for an
mmpose model (``tools/deploy.py ... --dump-info``):

- ``end2end.onnx``: the network, input ``input`` (N x 3 x H x W, N dynamic), outputs ``output``
  (heatmaps) or ``simcc_x`` and ``simcc_y``, the names the SDK's decoders read. The config's
  flip test is inside the graph (the SDK runs the network once per box): the mean of the
  outputs on the crop and on its mirror image, flipped back with mmpose's own ``flip_heatmaps``
  / ``flip_vectors``. Opset and IR version are ones the onnxruntime 1.15.1 bundled in
  mmdeploy-runtime 1.3.1 loads.
- ``pipeline.json``: the SDK's crop (``TopDownGetBboxCenterScale``, ``TopDownAffine``), the
  data preprocessor's ``Normalize``, the network, and the decoder the codec matches:
  ``TopdownHeatmapSimpleHeadDecode`` for MSRAHeatmap (``unbiased``: DARK),
  ``SimCCLabelDecode`` for SimCCLabel without DARK. Other codecs have no SDK equivalent, nor has
  UDP: the runtime's ``TopDownAffine`` ignores ``use_udp``.
- ``deploy.json`` (task ``PoseDetector``, the model's file and backend) and ``detail.json``
  (where it came from).

The folder is written in a temporary folder beside ``DIR``, checked (onnxruntime against
PyTorch on real crops; ``mmdeploy_runtime.PoseDetector`` loads and runs it) and only then
renamed to ``DIR``.

The network and decoder are mmpose's (the decoders equal mmpose's codecs within 1e-3 px); the
crop is the SDK's own, and no ``pipeline.json`` key changes it: mmdeploy-runtime 1.3.1's
``TopDownAffine`` reads only ``image_size`` and ``cv::resize``s the padded box rounded to whole
pixels, which moves the crop by ``0.5 * scale / input_size - 0.5`` px against mmpose's warp and
scales x and y apart; ``PoseDetector`` takes whole-pixel boxes with inclusive right and bottom
edges (:func:`psa_pose.deploy.onnx_infer.sdk_boxes`). Its keypoints therefore equal mmpose's
``inference_topdown`` only as far as the model is insensitive to a sub-pixel move of its crop
(measured: docs/install.md, tests/deploy/test_sdk.py).
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch.nn as nn
from mmengine.config import Config

from ..config import build_model
from ..utils import UserError
from .export import (TOLERANCE, export, export_config, largest_difference, load_weights,
                     real_crops)

SDK_VERSION = '1.3.1'          # the mmdeploy-runtime these folders are written for
# onnxruntime 1.15.1 runs opsets up to 19 and IR versions up to 9; torch's exporter writes
# opset 18 at the least, and IR 10, which that onnxruntime refuses: opset 18 is IR 8's.
SDK_OPSET = 18
SDK_IR_VERSION = 8
MODEL_NAME = 'topdownposeestimator'
FILES = ('end2end.onnx', 'deploy.json', 'pipeline.json', 'detail.json')
INSTALL_HINT = 'pip install mmdeploy-runtime==1.3.1 (requirements-export.txt)'


def require_runtime():
    """The ``mmdeploy_runtime`` module, or one :class:`UserError` line saying how to get it."""
    try:
        import mmdeploy_runtime
    except ImportError:
        raise UserError(f'mmdeploy_runtime is not installed, so the SDK folder cannot be '
                        f'checked or run: {INSTALL_HINT}') from None
    return mmdeploy_runtime


def decoder(cfg: Config, config: str) -> Tuple[str, Dict, List[str]]:
    """The SDK decoder of the config's codec: (component, params, network output names), or
    one :class:`UserError` line for a codec the SDK cannot decode as mmpose does."""
    codec = dict(cfg.model.head.decoder)
    kind = codec['type']
    test_cfg = cfg.model.get('test_cfg') or {}
    if test_cfg.get('flip_test') and test_cfg.get('flip_mode', 'heatmap') != 'heatmap' \
            and kind != 'SimCCLabel':
        raise UserError(f"{config}: flip_mode {test_cfg['flip_mode']!r} has no SDK equivalent; "
                        f"export with --cfg-options model.test_cfg.flip_mode=heatmap")
    if kind == 'UDPHeatmap' or _uses_udp_crop(cfg):
        # mmdeploy-runtime 1.3.1's TopDownAffine ignores use_udp (tests/deploy/test_sdk.py): a
        # UDP model would see a crop other than the one it was trained on
        what = 'codec UDPHeatmap' if kind == 'UDPHeatmap' else 'TopdownAffine use_udp=True'
        raise UserError(f'{config}: {what} has no equivalent in mmdeploy-runtime {SDK_VERSION}, '
                        f'whose TopDownAffine ignores use_udp; export a plain ONNX file with '
                        f'--out instead')
    if kind == 'MSRAHeatmap':
        unbiased = bool(codec.get('unbiased', False))
        return 'TopdownHeatmapSimpleHeadDecode', {
            'flip_test': False,      # done in the graph
            'use_udp': False, 'target_type': 'GaussianHeatmap',
            'post_process': 'unbiased' if unbiased else 'default',
            'unbiased_decoding': unbiased,
            'modulate_kernel': int(codec.get('blur_kernel_size', 11))}, ['output']
    if kind == 'SimCCLabel' and not codec.get('use_dark', False) \
            and codec.get('decode_visibility', False) is False:
        return 'SimCCLabelDecode', {
            'flip_test': False, 'input_size': [int(v) for v in codec['input_size']],
            'simcc_split_ratio': float(codec.get('simcc_split_ratio', 2.0))}, \
            ['simcc_x', 'simcc_y']
    detail = ', '.join(f'{k}={codec[k]!r}' for k in ('heatmap_type', 'use_dark')
                       if k in codec)
    raise UserError(f'{config}: codec {kind}{f" ({detail})" if detail else ""} has no decoder in '
                    f"mmdeploy's SDK (it has MSRAHeatmap and SimCCLabel without DARK); export a "
                    f'plain ONNX file with --out instead')


def _uses_udp_crop(cfg: Config) -> bool:
    """Whether the config's test pipeline crops with UDP."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    return any(s['type'] == 'TopdownAffine' and s.get('use_udp', False) for s in pipeline)


def pipeline(cfg: Config, component: str, params: Dict) -> Dict:
    """``pipeline.json``: the SDK's crop, normalisation, network and decoder."""
    w, h = (int(v) for v in cfg.model.head.decoder['input_size'])
    steps = {s['type']: s for s in cfg.test_dataloader.dataset.pipeline}
    pre = cfg.model.data_preprocessor
    transforms = [
        {'type': 'LoadImageFromFile'},
        {'type': 'TopDownGetBboxCenterScale', 'image_size': [w, h],
         'padding': float(steps.get('GetBBoxCenterScale', {}).get('padding', 1.25))},
        {'type': 'TopDownAffine', 'image_size': [w, h], 'use_udp': False},
        {'type': 'Normalize', 'mean': [float(v) for v in pre.get('mean', (0., 0., 0.))],
         'std': [float(v) for v in pre.get('std', (1., 1., 1.))],
         'to_rgb': bool(pre.get('bgr_to_rgb', False))},
        {'type': 'ImageToTensor', 'keys': ['img']},
        {'type': 'Collect', 'keys': ['img'],
         'meta_keys': ['img_shape', 'pad_shape', 'ori_shape', 'img_norm_cfg', 'scale_factor',
                       'bbox_score', 'center', 'scale']}]
    return {'pipeline': {'input': ['img'], 'output': ['post_output'], 'tasks': [
        {'type': 'Task', 'module': 'Transform', 'name': 'Preprocess', 'input': ['img'],
         'output': ['prep_output'], 'transforms': transforms},
        {'type': 'Task', 'module': 'Net', 'name': MODEL_NAME, 'is_batched': True,
         'input': ['prep_output'], 'output': ['infer_output'], 'input_map': {'img': 'input'},
         'output_map': {}},
        {'type': 'Task', 'module': 'mmpose', 'name': 'postprocess', 'component': component,
         'params': params, 'input': ['prep_output', 'infer_output'],
         'output': ['post_output']}]}}


def deploy_info() -> Dict:
    """``deploy.json``: the task and the network file the SDK loads."""
    return {'version': SDK_VERSION, 'task': 'PoseDetector', 'customs': [],
            'models': [{'name': MODEL_NAME, 'net': FILES[0], 'weights': '',
                        'backend': 'onnxruntime', 'precision': 'FP32', 'batch_size': 1,
                        'dynamic_shape': True}]}


def detail(config: str, checkpoint: str, cfg: Config, opset: int, output_names: List[str],
           keypoint_names: List[str]) -> Dict:
    """``detail.json``: what the folder was made from, as mmdeploy records it."""
    import mmpose
    w, h = (int(v) for v in cfg.model.head.decoder['input_size'])
    return {'version': SDK_VERSION,
            'codebase': {'task': 'PoseDetection', 'codebase': 'mmpose',
                         'version': mmpose.__version__, 'pth': osp.abspath(checkpoint),
                         'config': osp.abspath(config)},
            'codebase_config': {'type': 'mmpose', 'task': 'PoseDetection'},
            'onnx_config': {'type': 'onnx', 'export_params': True, 'opset_version': opset,
                            'save_file': FILES[0], 'input_names': ['input'],
                            'output_names': output_names, 'input_shape': [w, h],
                            'dynamic_axes': {'input': {'0': 'batch'}},
                            'exporter': 'torch.onnx.export(dynamo=True) by psa_pose'},
            'backend_config': {'type': 'onnxruntime'}, 'calib_config': {},
            # for onnx_infer.py --sdk (mmdeploy reads only the keys above)
            'psa_pose': {'keypoint_names': list(keypoint_names)}}


class SDKForward(nn.Module):
    """The network as the SDK runs it: crop -> heatmaps (or SimCC x, y), with the config's flip
    test inside (mmpose's own ``flip_heatmaps`` / ``flip_vectors``)."""

    def __init__(self, model: nn.Module, flip_indices: List[int]) -> None:
        super().__init__()
        self.model = model
        self.flip_indices = list(flip_indices)
        self.test_cfg = dict(model.test_cfg or {})

    def forward(self, x):
        from mmpose.models.utils.tta import flip_heatmaps, flip_vectors
        head = self.model.head
        out = head.forward(self.model.extract_feat(x))
        if not self.test_cfg.get('flip_test', False):
            return out
        flipped = head.forward(self.model.extract_feat(x.flip(-1)))
        if isinstance(out, tuple):
            fx, fy = flip_vectors(*flipped, flip_indices=self.flip_indices)
            return (out[0] + fx) * 0.5, (out[1] + fy) * 0.5
        back = flip_heatmaps(flipped, flip_mode=self.test_cfg.get('flip_mode', 'heatmap'),
                             flip_indices=self.flip_indices,
                             shift_heatmap=self.test_cfg.get('shift_heatmap', False))
        return (out + back) * 0.5


def check_sdk(folder: str, image_hw: Tuple[int, int] = (120, 160)) -> np.ndarray:
    """Load the folder with ``mmdeploy_runtime.PoseDetector`` and run it on one box of a grey
    image: (1, K, 3) keypoints and scores, or one :class:`UserError` line."""
    runtime = require_runtime()
    try:
        detector = runtime.PoseDetector(model_path=folder, device_name='cpu', device_id=0)
        image = np.full((*image_hw, 3), 128, np.uint8)
        out = detector(image, np.array([[10, 10, image_hw[1] - 10, image_hw[0] - 10]],
                                       np.float32))
    except Exception as e:  # noqa: BLE001 - the runtime raises RuntimeError and others
        raise UserError(f'{folder}: mmdeploy_runtime cannot run the SDK folder '
                        f'({type(e).__name__}: {str(e)[:160]}); report this with the config') \
            from None
    return np.asarray(out)


def export_sdk(config: str, checkpoint: str, out_dir: str,
               input_shape: Optional[Tuple[int, int]] = None, opset: int = SDK_OPSET,
               options: Optional[Dict] = None, check_ann: Optional[str] = None,
               check_samples: int = 8, tolerance: float = TOLERANCE) -> float:
    """Write the mmdeploy SDK folder ``out_dir`` of ``config`` with ``checkpoint``; return the
    largest difference of onnxruntime to PyTorch on real crops. Nothing is written on any
    error (:class:`UserError`)."""
    from mmpose.apis.inference import dataset_meta_from_config
    if osp.exists(out_dir) and (not osp.isdir(out_dir) or os.listdir(out_dir)):
        raise UserError(f'{out_dir}: exists and is not an empty folder; give --sdk a new folder '
                        f'(the SDK folder is written whole or not at all)')
    if opset != SDK_OPSET:
        raise UserError(f'--opset {opset}: an SDK folder is written at opset {SDK_OPSET} (the '
                        f"exporter's lowest; the onnxruntime 1.15.1 in mmdeploy-runtime runs "
                        f'up to 19 with IR version {SDK_IR_VERSION})')
    require_runtime()
    cfg = export_config(config, options, check_ann, input_shape)
    component, params, output_names = decoder(cfg, config)
    dataset_meta = dataset_meta_from_config(cfg, 'test')
    flip_indices = dataset_meta['flip_indices']
    names = [dataset_meta['keypoint_id2name'][i] for i in range(dataset_meta['num_keypoints'])]
    model = build_model(cfg).eval()
    load_weights(model, checkpoint, config)
    graph = SDKForward(model, flip_indices).eval()
    inputs, source = real_crops(cfg, model, check_samples)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(osp.abspath(out_dir))}.', dir=parent)
    try:
        print(f'exporting {osp.basename(config)} for the SDK ({component}, opset {opset}) ...',
              flush=True)
        example = inputs[:2] if len(inputs) > 1 else inputs.repeat(2, 1, 1, 1)
        export(graph, example, osp.join(tmp, FILES[0]), opset, None, output_names,
               SDK_IR_VERSION)
        diff = largest_difference(osp.join(tmp, FILES[0]), graph, inputs)
        print(f'max |onnxruntime - pytorch| = {diff:.3g} on the outputs of {source} '
              f'(tolerance {tolerance:g})')
        if not diff <= tolerance:
            raise UserError(f'{out_dir}: onnxruntime differs from PyTorch by {diff:.3g} > '
                            f'{tolerance:g}; not written')
        for name, data in ((FILES[1], deploy_info()),
                           (FILES[2], pipeline(cfg, component, params)),
                           (FILES[3], detail(config, checkpoint, cfg, opset, output_names, names))):
            with open(osp.join(tmp, name), 'w') as f:
                json.dump(data, f, indent=4)
        check_sdk(tmp)
        if osp.isdir(out_dir):
            os.rmdir(out_dir)          # empty (checked above)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'wrote {out_dir}: {", ".join(FILES)}')
    return diff
