"""Top-down pose inference with an exported ONNX model: onnxruntime, numpy and OpenCV only.

This file imports neither torch nor mmpose nor the rest of psa_pose, so it can be copied next
to a ``.onnx`` file and run on a machine that has only ``onnxruntime numpy opencv-python``::

    python onnx_infer.py MODEL.onnx IMAGE --bboxes '[[x, y, w, h], ...]' [--out kpts.json]

Everything it needs besides the graph (input size, mean/std, bbox padding, codec, flip test and
flip pairs) is in the model's ``metadata_props`` under :data:`METADATA_KEY`, written by
``scripts/export_onnx.py`` from the config. The steps are those of mmpose's top-down pipeline
for the configs of this project: ``GetBBoxCenterScale`` (padding), ``TopdownAffine`` (aspect
ratio fixed, the standard or UDP warp, no rotation at test time), the data preprocessor
(BGR -> RGB, mean/std), flip test (heatmaps: ``flip_mode='heatmap'``; SimCC: mmpose's
``flip_vectors``) and the codec's decoding: ``MSRAHeatmap`` (argmax with the quarter-pixel
shift, or DARK with ``unbiased=True``), ``UDPHeatmap`` (``heatmap_type='gaussian'``, DARK-UDP
refinement) and ``SimCCLabel`` (RTMPose: argmax of the x and y vectors over the split ratio,
without DARK or visibility). Any other codec is refused.
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

METADATA_KEY = 'psa_pose'
METADATA_FORMAT = 1
SUPPORTED_CODECS = ('MSRAHeatmap', 'UDPHeatmap', 'SimCCLabel')


class DeployError(Exception):
    """Bad input to the runtime (a model without our metadata, an unsupported codec, a bad
    box): printed as one line with exit code 2 by :func:`main`."""


def check_codec(meta: Dict, source: str) -> None:
    """Refuse, in one line, a codec this runtime does not decode."""
    codec = meta.get('codec') or {}
    kind = codec.get('type')
    if kind == 'UDPHeatmap' and codec.get('heatmap_type', 'gaussian') != 'gaussian':
        detail = f"UDPHeatmap heatmap_type={codec.get('heatmap_type')!r}"
    elif kind == 'SimCCLabel' and (codec.get('use_dark') or codec.get('decode_visibility')):
        detail = (f"SimCCLabel use_dark={codec.get('use_dark')!r} "
                  f"decode_visibility={codec.get('decode_visibility')!r}")
    elif kind not in SUPPORTED_CODECS:
        detail = repr(kind)
    else:
        detail = None
    if detail:
        raise DeployError(f'{source}: codec {detail} is not supported by this runtime (it '
                          f'decodes MSRAHeatmap, UDPHeatmap with gaussian heatmaps and '
                          f"SimCCLabel without DARK or visibility); use mmpose's "
                          f'inference_topdown for this model')
    # SimCC heads flip their vectors whatever flip_mode says (mmpose's RTMCCHead.predict)
    if meta.get('flip_test') and kind != 'SimCCLabel' \
            and meta.get('flip_mode', 'heatmap') != 'heatmap':
        raise DeployError(f"{source}: flip_mode {meta['flip_mode']!r} is not supported (only "
                          f"'heatmap'); export with --cfg-options model.test_cfg.flip_test=False")


def output_names(meta: Dict) -> Tuple[str, ...]:
    """The graph's outputs for the model's codec: SimCC's two vectors or the heatmaps."""
    return ('simcc_x', 'simcc_y') if meta['codec']['type'] == 'SimCCLabel' else ('heatmaps', )


# --- the crop: GetBBoxCenterScale + TopdownAffine ------------------------------------------

def box_center_scale(box_xywh: Sequence[float], padding: float,
                     aspect_ratio: float) -> Tuple[np.ndarray, np.ndarray]:
    """Centre and size (w, h) of the crop for a person box: the box padded by ``padding`` and
    widened or heightened to the network's aspect ratio (w / h)."""
    # float32 and corners first, as mmpose computes them: warpAffine samples on a 1/32-pixel
    # grid, so a centre 1e-5 px off can change a crop pixel by a few grey levels
    box = np.asarray(box_xywh, dtype=np.float32)
    x1y1, x2y2 = box[:2], box[:2] + box[2:]
    center = (x1y1 + x2y2) * np.float32(0.5)
    w, h = (x2y2 - x1y1) * np.float32(padding)
    if w > h * aspect_ratio:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h], dtype=np.float32)


def warp_matrix(center: np.ndarray, scale: np.ndarray, size: Tuple[int, int],
                udp: bool) -> np.ndarray:
    """The 2x3 affine that maps the crop (centre, size ``scale``) to the network input
    ``size`` = (w, h), without rotation. Standard: the crop's width spans the input's ``w``
    pixels. UDP (Huang et al., CVPR 2020): its width spans ``w - 1`` pixel intervals, so that
    pixel centres map to pixel centres."""
    w, h = size
    center, scale = center.astype(np.float64), scale.astype(np.float64)
    if udp:
        sx, sy = (w - 1) / scale[0], (h - 1) / scale[1]
        return np.array([[sx, 0, sx * (0.5 * scale[0] - center[0])],
                         [0, sy, sy * (0.5 * scale[1] - center[1])]])
    # three float32 point pairs (the centre, half a crop width left of it, and below that),
    # solved by OpenCV as mmpose's get_warp_matrix does: the same matrix to the last bit
    def corners(mid: np.ndarray, width: float) -> np.ndarray:
        a, b = np.float32(mid), np.float32(mid + [-width * 0.5, 0])
        return np.stack([a, b, b + [-(a - b)[1], (a - b)[0]]]).astype(np.float32)
    return cv2.getAffineTransform(corners(center.astype(np.float64), float(scale[0])),
                                  corners(np.array([w * 0.5, h * 0.5]), float(w)))


def preprocess(image_bgr: np.ndarray, boxes_xywh: np.ndarray,
               meta: Dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network input for each box (N, 3, H, W float32) and each crop's centre and size."""
    w, h = meta['input_size']
    mean = np.asarray(meta['mean'], dtype=np.float32)
    std = np.asarray(meta['std'], dtype=np.float32)
    crops, centers, scales = [], [], []
    for box in boxes_xywh:
        center, scale = box_center_scale(box, meta['bbox_padding'], w / h)
        mat = warp_matrix(center, scale, (w, h), meta['use_udp'])
        crop = cv2.warpAffine(image_bgr, mat, (w, h), flags=cv2.INTER_LINEAR)
        if meta['bgr_to_rgb']:
            crop = crop[..., ::-1]
        crops.append(((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1))
        centers.append(center)
        scales.append(scale)
    return (np.ascontiguousarray(np.stack(crops)), np.stack(centers), np.stack(scales))


# --- decoding: the codec's decode, vectorised over people and keypoints ---------------------

def heatmap_maximum(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Integer (x, y) of each heatmap's maximum and its value; (-1, -1) where it is <= 0."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = flat.argmax(-1)
    vals = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    locs = np.stack([idx % w, idx // w], -1).astype(np.float32)
    locs[vals <= 0] = -1
    return locs, vals


def modulate(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's modulation: each heatmap blurred by a Gaussian (zero padding outside the map),
    rescaled to keep its maximum."""
    b = (kernel - 1) // 2
    out = np.empty_like(heatmaps)
    for idx in np.ndindex(heatmaps.shape[:2]):
        hm = heatmaps[idx]
        padded = cv2.GaussianBlur(np.pad(hm, b).astype(np.float32), (kernel, kernel), 0)
        blurred = padded[b:-b, b:-b]
        out[idx] = blurred * (hm.max() / blurred.max())
    return out


def _at(maps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``maps[n, k, y[n, k], x[n, k]]`` for every n, k."""
    n, k = np.indices(x.shape)
    return maps[n, k, y, x]


def refine_quarter(locs: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Shift each maximum a quarter pixel towards its higher neighbour (MSRA decoding)."""
    _, _, h, w = heatmaps.shape
    x, y = locs[..., 0].astype(int), locs[..., 1].astype(int)
    inx, iny = (x > 1) & (x < w - 1) & (y > 0) & (y < h), (y > 1) & (y < h - 1) & (x > 0) & (x < w)
    xs, ys = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    yc, xc = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
    dx = np.where(inx, _at(heatmaps, xs + 1, yc) - _at(heatmaps, xs - 1, yc), 0)
    dy = np.where(iny, _at(heatmaps, xc, ys + 1) - _at(heatmaps, xc, ys - 1), 0)
    return locs + np.sign(np.stack([dx, dy], -1)).astype(np.float32) * 0.25


def refine_dark(locs: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK (Zhang et al., CVPR 2020): one Newton step on the log of the modulated heatmap,
    with central differences of step 1 (gradient) and 2 (Hessian), away from the border."""
    _, _, h, w = heatmaps.shape
    lg = np.log(np.maximum(modulate(heatmaps, kernel), 1e-10))
    x, y = locs[..., 0].astype(int), locs[..., 1].astype(int)
    inside = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    x, y = np.clip(x, 2, w - 3), np.clip(y, 2, h - 3)

    def p(dx: int, dy: int) -> np.ndarray:
        return _at(lg, x + dx, y + dy).astype(np.float64)
    gx, gy = 0.5 * (p(1, 0) - p(-1, 0)), 0.5 * (p(0, 1) - p(0, -1))
    hxx = 0.25 * (p(2, 0) - 2 * p(0, 0) + p(-2, 0))
    hyy = 0.25 * (p(0, 2) - 2 * p(0, 0) + p(0, -2))
    hxy = 0.25 * (p(1, 1) - p(1, -1) - p(-1, 1) + p(-1, -1))
    det = hxx * hyy - hxy ** 2
    ok = inside & (det != 0)
    det = np.where(ok, det, 1)
    # offset = -H^-1 g, with the 2x2 inverse written out
    ox = -(hyy * gx - hxy * gy) / det
    oy = -(-hxy * gx + hxx * gy) / det
    return locs + np.where(ok[..., None], np.stack([ox, oy], -1), 0).astype(np.float32)


def refine_dark_udp(locs: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK as UDP applies it: heatmaps clipped to [1e-3, 50] before the log, differences of
    step 1 on an edge-padded map (so every maximum is refined), Hessian + eps * I."""
    lg = np.log(np.clip(modulate(heatmaps, kernel), 1e-3, 50.))
    lg = np.pad(lg, ((0, 0), (0, 0), (1, 1), (1, 1)), mode='edge')
    x, y = locs[..., 0].astype(int) + 1, locs[..., 1].astype(int) + 1

    def p(dx: int, dy: int) -> np.ndarray:
        return _at(lg, x + dx, y + dy)
    c = p(0, 0)
    gx, gy = 0.5 * (p(1, 0) - p(-1, 0)), 0.5 * (p(0, 1) - p(0, -1))
    hxx = p(1, 0) - 2 * c + p(-1, 0)
    hyy = p(0, 1) - 2 * c + p(0, -1)
    hxy = 0.5 * (p(1, 1) - p(1, 0) - p(0, 1) + 2 * c - p(-1, 0) - p(0, -1) + p(-1, -1))
    hess = np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)
    hess = hess + np.finfo(np.float32).eps * np.eye(2, dtype=hess.dtype)
    step = np.linalg.inv(hess) @ np.stack([gx, gy], -1)[..., None]
    return (locs - step[..., 0]).astype(np.float32)


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float) -> Tuple[np.ndarray, np.ndarray]:
    """SimCCLabel's decoding (mmpose's ``get_simcc_maximum``, no DARK): the argmax of each x
    and y vector over the split ratio, scored by the smaller of the two maxima; a keypoint
    whose score is <= 0 lies at -1 / ratio, as mmpose puts it."""
    locs = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], -1).astype(np.float32)
    scores = np.minimum(simcc_x.max(-1), simcc_y.max(-1))
    locs[scores <= 0] = -1
    return locs / np.float32(split_ratio), scores


def decode(outputs: Sequence[np.ndarray], meta: Dict) -> Tuple[np.ndarray, np.ndarray]:
    """Keypoints in network-input pixels (N, K, 2) and their scores (N, K) from the network's
    outputs: ``[heatmaps]`` or ``[simcc_x, simcc_y]``."""
    codec = meta['codec']
    if codec['type'] == 'SimCCLabel':
        return decode_simcc(outputs[0], outputs[1], codec['simcc_split_ratio'])
    heatmaps, = outputs
    locs, scores = heatmap_maximum(heatmaps)
    (w, h), (hw, hh) = meta['input_size'], meta['heatmap_size']
    if codec['type'] == 'UDPHeatmap':
        locs = refine_dark_udp(locs, heatmaps, codec['blur_kernel_size'])
        return locs / [hw - 1, hh - 1] * [w, h], scores
    if codec.get('unbiased'):
        locs = refine_dark(locs, heatmaps, codec['blur_kernel_size'])
    else:
        locs = refine_quarter(locs, heatmaps)
    return locs * [w / hw, h / hh], scores


def flip_back(outputs: Sequence[np.ndarray], meta: Dict) -> List[np.ndarray]:
    """The outputs of the mirrored crop mirrored back with left and right swapped: heatmaps
    (shifted one pixel when the config's ``shift_heatmap`` says so), or SimCC's vectors as
    mmpose's ``flip_vectors`` does (x reversed, y only swapped)."""
    flip = meta['flip_indices']
    if meta['codec']['type'] == 'SimCCLabel':
        simcc_x, simcc_y = outputs
        return [simcc_x[:, flip, ::-1], simcc_y[:, flip]]
    out = outputs[0][:, flip, :, ::-1]
    if meta.get('shift_heatmap'):
        out = np.concatenate([out[..., :1], out[..., :-1]], -1)
    return [out]


# --- the model -----------------------------------------------------------------------------

class OnnxPoseModel:
    """An exported top-down model: image + person boxes -> keypoints, as mmpose predicts them."""

    def __init__(self, path: str, providers: Optional[List[str]] = None,
                 threads: Optional[int] = None) -> None:
        import onnxruntime as ort
        if not os.path.isfile(path):
            raise DeployError(f'{path}: no such ONNX file')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=providers or ['CPUExecutionProvider'])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types per problem
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise DeployError(f'{path}: onnxruntime cannot load it ({first}); export it again '
                              f'with scripts/export_onnx.py') from None
        props = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise DeployError(f'{path}: has no {METADATA_KEY!r} metadata (input size, codec, '
                              f'mean/std); export it with scripts/export_onnx.py')
        self.meta = json.loads(props[METADATA_KEY])
        if self.meta.get('format') != METADATA_FORMAT:
            raise DeployError(f"{path}: metadata format {self.meta.get('format')!r}, this "
                              f'runtime reads {METADATA_FORMAT}; use the onnx_infer.py of the '
                              f'release that exported it')
        check_codec(self.meta, path)
        self.input_name = self.session.get_inputs()[0].name

    def outputs(self, inputs: np.ndarray) -> List[np.ndarray]:
        """The network's outputs for normalised crops (N, 3, H, W): heatmaps, or SimCC's x and
        y vectors."""
        return self.session.run(None, {self.input_name: inputs})

    def __call__(self, image_bgr: np.ndarray,
                 boxes_xywh: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Keypoints in image pixels (N, K, 2) and scores (N, K) for the boxes (N, 4) xywh."""
        boxes = np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            k = len(self.meta['flip_indices'])
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
        inputs, centers, scales = preprocess(image_bgr, boxes, self.meta)
        outputs = self.outputs(inputs)
        if self.meta.get('flip_test'):
            flipped = self.outputs(np.ascontiguousarray(inputs[..., ::-1]))
            outputs = [(a + b) * 0.5 for a, b in zip(outputs, flip_back(flipped, self.meta))]
        keypoints, scores = decode(outputs, self.meta)
        size = np.asarray(self.meta['input_size'], dtype=np.float32)
        keypoints = keypoints / size * scales[:, None] + centers[:, None] - 0.5 * scales[:, None]
        return keypoints.astype(np.float32), scores.astype(np.float32)


def sdk_boxes(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] boxes as mmdeploy-runtime 1.3.1's ``PoseDetector`` reads them: it
    truncates them to whole pixels (its Python binding) and takes the right and bottom edges as
    inclusive (its C API adds 1 to the width and height), so round and subtract 1."""
    return np.round(np.asarray(boxes_xyxy, np.float32)) - np.array([0, 0, 1, 1], np.float32)


class SdkPoseModel:
    """An mmdeploy SDK folder (``scripts/export_onnx.py --sdk DIR``) run by
    ``mmdeploy_runtime.PoseDetector``, called as :class:`OnnxPoseModel` is."""

    def __init__(self, folder: str) -> None:
        try:
            import mmdeploy_runtime
        except ImportError:
            raise DeployError('mmdeploy_runtime is not installed, it runs SDK folders: pip '
                              'install mmdeploy-runtime==1.3.1') from None
        if not os.path.isfile(os.path.join(folder, 'pipeline.json')):
            raise DeployError(f'{folder}: not an mmdeploy SDK folder (no pipeline.json); '
                              f'write one with scripts/export_onnx.py CONFIG CKPT --sdk DIR')
        with open(os.path.join(folder, 'detail.json')) as f:
            self.meta = json.load(f).get('psa_pose', {})
        self.detector = mmdeploy_runtime.PoseDetector(model_path=folder, device_name='cpu',
                                                      device_id=0)

    def __call__(self, image_bgr: np.ndarray,
                 boxes_xywh: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Keypoints in image pixels (N, K, 2) and scores (N, K) for the boxes (N, 4) xywh."""
        boxes = np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            k = len(self.meta.get('keypoint_names', ()))
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        out = np.asarray(self.detector(image_bgr, sdk_boxes(xyxy)), dtype=np.float32)
        return out[..., :2], out[..., 2]


def read_image(path: str) -> np.ndarray:
    """The BGR image of a file, decoded from its bytes as mmcv (and so demo.py) does:
    ``cv2.imread`` returns a truncated JPEG's top rows over grey, ``cv2.imdecode`` refuses it."""
    try:
        with open(path, 'rb') as f:
            data = np.frombuffer(f.read(), np.uint8)
    except OSError as e:
        raise DeployError(f'{path}: cannot be read ({e.strerror})') from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DeployError(f'{path}: cannot be decoded as an image (the file is corrupt, '
                          f'truncated or not an image); give a JPEG or PNG file')
    return image


def box_outside(boxes_xywh: np.ndarray, width: int, height: int) -> Optional[str]:
    """What is wrong with the first box that does not overlap a ``width`` x ``height`` image
    (its pose would be made up from padding), or None when every box overlaps it."""
    for i, (x, y, w, h) in enumerate(np.asarray(boxes_xywh, np.float64).reshape(-1, 4)):
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            return (f'box #{i} [{x:g}, {y:g}, {w:g}, {h:g}] lies outside the {width}x{height} '
                    f'image; were the boxes made for another image (or given as x1, y1, x2, '
                    f'y2)?')
    return None


def _read_boxes(text: str) -> np.ndarray:
    """``--bboxes``: a JSON list of [x, y, w, h], inline or in a file."""
    source = text
    try:
        if os.path.isfile(text):
            with open(text) as f:
                text = f.read()
        boxes = np.asarray(json.loads(text), dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise DeployError(f'{source}: not a JSON list of [x, y, w, h] boxes ({e})') from None
    boxes = boxes.reshape(-1, 4) if boxes.size % 4 == 0 and boxes.ndim <= 2 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all() \
            or (boxes[:, 2:] <= 0).any():
        raise DeployError(f'{source}: boxes must be [[x, y, w, h], ...] with w, h > 0')
    return boxes


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', nargs='?', help='MODEL.onnx from scripts/export_onnx.py')
    parser.add_argument('image')
    parser.add_argument('--bboxes', help='person boxes: JSON [[x, y, w, h], ...] or a file '
                        'holding it (default: the whole image)')
    parser.add_argument('--out', help='write {"keypoints": ..., "scores": ...} JSON here')
    parser.add_argument('--threads', type=int, help='onnxruntime intra-op threads')
    parser.add_argument('--sdk', metavar='DIR', help='run an mmdeploy SDK folder (export_onnx.py '
                        '--sdk) with mmdeploy_runtime instead of MODEL.onnx')
    args = parser.parse_args(argv)
    if bool(args.model) == bool(args.sdk):
        parser.error('give MODEL.onnx or --sdk DIR (one of them)')
    try:
        model = SdkPoseModel(args.sdk) if args.sdk else \
            OnnxPoseModel(args.model, threads=args.threads)
        image = read_image(args.image)
        boxes = _read_boxes(args.bboxes) if args.bboxes else \
            np.array([[0, 0, image.shape[1], image.shape[0]]], np.float32)
        outside = box_outside(boxes, image.shape[1], image.shape[0])
        if outside:
            raise DeployError(f'{args.bboxes}: {outside}')
        keypoints, scores = model(image, boxes)
    except DeployError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    result = {'keypoint_names': model.meta.get('keypoint_names'),
              'keypoints': np.round(keypoints, 2).tolist(),
              'scores': np.round(scores, 4).tolist()}
    if args.out:
        tmp = f'{args.out}.tmp{os.getpid()}'
        try:
            with open(tmp, 'w') as f:
                json.dump(result, f)
            os.replace(tmp, args.out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        print(f'{len(keypoints)} people, keypoints written to {args.out}')
    else:
        for i, (kpts, sc) in enumerate(zip(keypoints, scores)):
            print(f'person {i}: ' + ' '.join(f'({x:.1f},{y:.1f},{s:.2f})'
                                             for (x, y), s in zip(kpts, sc)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
