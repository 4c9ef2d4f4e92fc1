"""Draw a pose model's predicted skeletons on an image with mmpose's visualizer.

``scripts/demo.py CONFIG CKPT IMAGE [--bboxes JSON] --out OUT.png``

The person boxes come from ``--bboxes``: a COCO detection results file (a list of
``{image_id, bbox: [x, y, w, h], score, category_id}``, as mmpose's ``bbox_file``), a COCO
annotation file (its person boxes), or a plain JSON list of ``[x, y, w, h]`` boxes. In the COCO
files the image is found by its id, which is the number in COCO's file names
(``000000000785.jpg`` -> 785), or by ``file_name`` in an annotation file. Without ``--bboxes`` the
whole image is one box.
"""
import os.path as osp
import re
from typing import Optional

import numpy as np

from ..utils import UserError, atomic_path, read_json


def _image_id(image: str, images: Optional[list]) -> Optional[int]:
    name = osp.basename(image)
    for im in images or ():
        if isinstance(im, dict) and im.get('file_name') == name:
            return im.get('id')
    m = re.fullmatch(r'0*(\d+)\.\w+', name)
    return int(m[1]) if m else None


def read_bboxes(path: str, image: str, score_thr: float = 0.3) -> np.ndarray:
    """The person boxes for ``image`` from ``path``, as an (N, 4) xywh array."""
    data = read_json(path, 'person boxes: COCO detections, a COCO annotation file or [[x, y, w, '
                     'h], ...]')
    images = None
    if isinstance(data, dict):
        if not isinstance(data.get('annotations'), list):
            raise UserError(f'{path}: a JSON object without "annotations"; expected COCO '
                            f'detections, a COCO annotation file or a list of [x, y, w, h]')
        images, data = data.get('images'), data['annotations']
    if not isinstance(data, list):
        raise UserError(f'{path}: expected a JSON list of boxes')
    if data and all(isinstance(b, (list, tuple)) for b in data):
        boxes = data                                             # plain [x, y, w, h] list
    else:
        img_id = _image_id(image, images)
        boxes = []
        for i, d in enumerate(data):
            if not (isinstance(d, dict) and 'image_id' in d and 'bbox' in d):
                raise UserError(f'{path}: entry #{i} has no image_id and bbox; expected COCO '
                                f'detections ({{image_id, bbox, score, category_id}})')
            if d['image_id'] == img_id and d.get('category_id', 1) == 1 \
                    and d.get('score', 1.0) >= score_thr:
                boxes.append(d['bbox'])
        if not boxes:
            raise UserError(f'{path}: no person box for image id {img_id} ({osp.basename(image)}) '
                            f'with score >= {score_thr}; check the image or lower --bbox-thr')
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.isfinite(arr).all() \
            or (arr[:, 2:] <= 0).any():
        raise UserError(f'{path}: boxes must be [x, y, w, h] with w, h > 0')
    return arr


def load_model(config: str, checkpoint: str, device: str = 'cpu'):
    """mmpose's ``init_model`` of the config (loaded and checked by
    :func:`psa_pose.load_config`) with the checkpoint loaded only if it fits the model
    exactly (:func:`~psa_pose.models.checkpoint.load_fitting`; a release's sha256 is checked)."""
    from mmpose.apis import init_model
    from ..config import load_config, psa_errors_as_lines
    from ..models.checkpoint import load_fitting
    cfg = load_config(config)
    if not osp.isfile(checkpoint):
        raise UserError(f'{checkpoint}: no such checkpoint file')
    with psa_errors_as_lines(cfg):
        model = init_model(cfg, None, device=device)
    ckpt, _ = load_fitting(model, checkpoint, config, '(the checkpoint to draw with)',
                           'draw with the config it was trained with')
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and 'dataset_meta' in meta:     # as init_model prefers it
        model.dataset_meta = meta['dataset_meta']
    return model


def draw(model, image: str, bboxes: Optional[np.ndarray], out: str, kpt_thr: float = 0.3):
    """Predict the poses in ``bboxes`` (xywh; None: the whole image) and write the drawing."""
    import cv2
    import mmcv
    from mmpose.apis import inference_topdown
    from mmpose.registry import VISUALIZERS
    from mmpose.structures import merge_data_samples
    from ..data.coco import UNDECODABLE
    try:
        img = mmcv.imread(image, channel_order='rgb')
    except cv2.error:       # mmcv converts the None of an undecodable file without a check
        img = None
    if img is None:
        raise UserError(f'{image}: {UNDECODABLE}; give a JPEG or PNG file')
    from .onnx_infer import box_outside
    outside = None if bboxes is None else box_outside(bboxes, img.shape[1], img.shape[0])
    if outside:
        raise UserError(f'{image}: {outside}')
    samples = inference_topdown(model, img, bboxes, bbox_format='xywh')
    result = merge_data_samples(samples)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.set_dataset_meta(model.dataset_meta)
    visualizer.add_datasample('result', img, data_sample=result, draw_gt=False, draw_bbox=True,
                              draw_heatmap=False, kpt_thr=kpt_thr, show=False)
    ext = osp.splitext(out)[1] or '.png'
    try:
        ok, encoded = cv2.imencode(ext, mmcv.rgb2bgr(visualizer.get_image()))
    except cv2.error:
        ok = False
    if not ok:
        raise UserError(f'{out}: cannot write an image of type {ext}; use .png or .jpg')
    with atomic_path(out) as tmp, open(tmp, 'wb') as f:
        f.write(encoded.tobytes())
    return result
