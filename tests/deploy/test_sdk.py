"""psa_pose.deploy.sdk: the mmdeploy SDK folder, run by mmdeploy_runtime, against mmpose."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from psa_pose.config import load_config
from psa_pose.utils import UserError
from psa_pose.deploy.onnx_infer import sdk_boxes
from tests.conftest import REPO, run_script
from tests.deploy.conftest import RES18_PSA, SYNTH, fitted_checkpoint, random_checkpoint
from tests.deploy.test_onnx_infer import coco_people
from tests.deploy.test_export import SMALL_HRNET, _cli

runtime = pytest.importorskip('mmdeploy_runtime', reason='mmdeploy-runtime is not installed '
                              '(requirements-export.txt)')

HW = (96, 64)
# name -> (config, options): a PSA ResNet, a PSA HRNet (one block per branch), a baseline
MODELS = {
    'psa-res18': (RES18_PSA, {}),
    'psa-hrnet-w16': (os.path.join(SYNTH, 'td-hm_hrnet-w16-psa-p_dark-1xb16-24e_synth-128x96.py'),
                      SMALL_HRNET),
    'baseline-res18': (os.path.join(SYNTH, 'td-hm_res18_dark-1xb16-24e_synth-128x96.py'), {}),
}


def _fitted_sdk(folder, config, options, ann):
    """(config with ``ann`` as test set, fitted checkpoint, SDK folder)."""
    from psa_pose.config import set_input_shape
    from psa_pose.deploy.export import check_data_options
    from psa_pose.deploy.sdk import export_sdk
    cfg = load_config(config, {**options, **check_data_options(ann)})
    set_input_shape(cfg, HW)
    ckpt = fitted_checkpoint(cfg, str(folder / 'model.pth'))
    sdk = str(folder / 'sdk')
    export_sdk(config, ckpt, sdk, input_shape=HW, options=options, check_ann=ann)
    return cfg, ckpt, sdk


# The HRNet (one block per branch, fitted in 150 steps) is far more sensitive to the SDK's crop
# than the ResNets: measured median 3.48 px, 90th percentile 9.4 px, largest 61 px; even
# cropped where the SDK crops, mmpose's keypoints lie a median 0.45 px (largest 18.6 px) from
# the SDK's: its maxima move with the crop's interpolation.
HRNET_XFAIL = pytest.mark.xfail(reason="mmdeploy-runtime's crop differs from mmpose's (see "
                                'SDK_MEDIAN_PX); this fitted HRNet moves by a median 3.5 px')


@pytest.fixture(scope='module', params=sorted(MODELS))
def real_sdk(request, tmp_path_factory, mini_coco):
    """A model fitted to the 4 real images' people, exported as an SDK folder."""
    config, options = MODELS[request.param]
    return _fitted_sdk(tmp_path_factory.mktemp(request.param), config, options,
                       os.path.join(mini_coco, 'test_coco.json'))


def _compare(cfg, ckpt, sdk, people):
    """The SDK's keypoints and scores against mmpose's inference_topdown on the labelled
    keypoints (the fitted ones: peaked heatmaps), for the boxes rounded to whole pixels; the
    number compared, all the distances, and the distances to mmpose given the SDK's own crop
    centre and scale instead of the box's (its crop is a resize of a whole-pixel box)."""
    from mmpose.apis import inference_topdown, init_model
    from mmpose.datasets.transforms import TopdownAffine
    model = init_model(cfg, ckpt, device='cpu')
    detector = runtime.PoseDetector(model_path=sdk, device_name='cpu', device_id=0)
    with open(os.path.join(sdk, 'pipeline.json')) as f:
        centre_scale = sdk_centre_scale(json.load(f)['pipeline']['tasks'][0]['transforms'])
    compared, errors, at_sdk_crop = 0, [], []
    for image, (boxes, mask) in people.items():
        xyxy = np.round(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1))
        samples = inference_topdown(model, image, xyxy, bbox_format='xyxy')
        want = np.concatenate([s.pred_instances.keypoints for s in samples])
        want_scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        got = np.asarray(detector(cv2.imread(image), sdk_boxes(xyxy)))
        assert got.shape == (len(boxes), 17, 3)
        errors.append(np.linalg.norm(got[..., :2] - want, axis=-1)[mask])
        # mmpose cropping where the SDK does: box = centre -+ scale / 2 / padding, its aspect
        # ratio kept (the SDK scales x and y apart after rounding)
        cs = [centre_scale(cv2.imread(image), b) for b in xyxy]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(TopdownAffine, '_fix_aspect_ratio',
                       staticmethod(lambda scale, aspect_ratio: scale))
            moved = np.array([np.concatenate([c - s / 2.5, c + s / 2.5]) for c, s in cs])
            at = np.concatenate([s.pred_instances.keypoints for s in
                                 inference_topdown(model, image, moved, bbox_format='xyxy')])
        at_sdk_crop.append(np.linalg.norm(got[..., :2] - at, axis=-1)[mask])
        print(image, 'largest keypoint distance', errors[-1].max(), 'largest score difference',
              np.abs(got[..., 2] - want_scores)[mask].max())
        compared += mask.sum()
    errors, at_sdk_crop = np.concatenate(errors), np.concatenate(at_sdk_crop)
    for name, e in (('same box', errors), ("mmpose at the SDK's centre and scale", at_sdk_crop)):
        print(f'distances, {name}: median {np.median(e):.4f} 90th percentile '
              f'{np.percentile(e, 90):.4f} largest {e.max():.4f}')
    return compared, errors, at_sdk_crop


# How far mmdeploy-runtime 1.3.1's keypoints may lie from mmpose's inference_topdown on the same
# (whole-pixel) box. Not 0.05 px: the SDK's TopDownAffine crops differently from mmpose 1.x's
# (a cv::resize of the box rounded to whole pixels: the crop moves by 0.5 * scale / input - 0.5
# px, x and y scale apart; the tests below and docs/install.md), and a model fitted in 150 steps
# to a few people is not insensitive to such a move. Measured, median / 90th percentile /
# largest: PSA ResNet-18 on the 4 real images 1.70 / 2.55 / 4.4 px, the baseline 1.77 / 2.32 /
# 2.66 px, the PSA ResNet fitted to the generated images 0.88 / 1.84 / 15 px (one keypoint whose
# maximum moved to another peak).
SDK_MEDIAN_PX, SDK_P90_PX = 3.0, 5.0
# Given mmpose the SDK's crop centre and scale, what remains is interpolation (cv2.resize against
# cv2.warpAffine) and the SDK's separate x and y scales. Measured, median / 90th percentile /
# largest: the baseline 0.0063 / 0.026 / 0.053 px, the PSA ResNet 0.027 / 0.27 / 0.47 px, on the
# generated images 0.022 / 0.20 / 1.56 px (the HRNet: 0.45 / 2.0 / 18.6 px).
AT_SDK_CROP_MEDIAN_PX = 0.1


def assert_near(errors: np.ndarray) -> None:
    assert np.median(errors) < SDK_MEDIAN_PX and np.percentile(errors, 90) < SDK_P90_PX


@pytest.mark.slow           # fits and exports a model per parameter: 15 minutes each at load 10
def test_sdk_keypoints_near_inference_topdown_on_real_images(real_sdk, mini_coco, request):
    if 'hrnet' in request.node.callspec.params['real_sdk']:
        request.applymarker(HRNET_XFAIL)     # only this comparison: its folder is fine
    compared, errors, at_sdk_crop = _compare(*real_sdk, coco_people(mini_coco))
    assert compared == 181
    assert_near(errors)
    assert np.median(at_sdk_crop) < AT_SDK_CROP_MEDIAN_PX


@pytest.fixture(scope='module')
def generated_sdk(tmp_path_factory, tiny_coco):
    """The PSA ResNet fitted to the generated images' people, as an SDK folder."""
    return _fitted_sdk(tmp_path_factory.mktemp('generated'), RES18_PSA, {},
                       os.path.join(tiny_coco, 'test_coco.json'))


@pytest.mark.slow
def test_sdk_keypoints_near_inference_topdown_on_generated_images(generated_sdk, tiny_coco):
    people = coco_people(tiny_coco)
    compared, errors, at_sdk_crop = _compare(*generated_sdk, people)
    assert compared == sum(m.sum() for _, m in people.values())
    assert_near(errors)
    assert np.median(at_sdk_crop) < AT_SDK_CROP_MEDIAN_PX


def write_folder(folder, task, nodes, outputs, input_hw, transforms, postprocess) -> str:
    """An SDK folder (``task``: PoseDetector or Detector) around a network of constant or
    reshaping ``nodes``, no model needed: ``postprocess`` names the codebase's decoder."""
    import onnx
    from onnx import TensorProto, helper
    os.makedirs(folder)
    graph = helper.make_graph(nodes, 'probe', [helper.make_tensor_value_info(
        'input', TensorProto.FLOAT, [1, 3, *input_hw])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 8
    onnx.save(model, os.path.join(folder, 'end2end.onnx'))
    pose = task == 'PoseDetector'
    files = {'deploy.json': {'version': '1.3.1', 'task': task, 'customs': [], 'models': [
        {'name': 'probe', 'net': 'end2end.onnx', 'weights': '', 'backend': 'onnxruntime',
         'precision': 'FP32', 'batch_size': 1, 'dynamic_shape': pose}]},
        'pipeline.json': {'pipeline': {'input': ['img'], 'output': ['post_output'], 'tasks': [
            {'type': 'Task', 'module': 'Transform', 'name': 'Preprocess', 'input': ['img'],
             'output': ['prep_output'], 'transforms': transforms},
            {'type': 'Task', 'module': 'Net', 'name': 'probe', 'is_batched': pose,
             'input': ['prep_output'], 'output': ['infer_output'],
             'input_map': {'img': 'input'}, 'output_map': {}},
            {'type': 'Task', 'module': 'mmpose' if pose else 'mmdet', 'name': 'postprocess',
             'input': ['prep_output', 'infer_output'], 'output': ['post_output'],
             **postprocess}]}},
        'detail.json': {'version': '1.3.1', 'codebase': {
            'task': 'PoseDetection' if pose else 'ObjectDetection',
            'codebase': 'mmpose' if pose else 'mmdet'}}}
    for name, data in files.items():
        with open(os.path.join(folder, name), 'w') as f:
            json.dump(data, f)
    return folder


def _write_sdk(folder, net_outputs, transforms, postprocess) -> str:
    """A PoseDetector probe folder at the tests' input size."""
    return write_folder(folder, 'PoseDetector', *net_outputs, HW, transforms, postprocess)


def _crop_transforms(**affine) -> list:
    """The crop as ``export_sdk`` writes it (96 x 64, padding 1.25), unnormalised."""
    (h, w) = HW
    return [{'type': 'LoadImageFromFile'},
            {'type': 'TopDownGetBboxCenterScale', 'image_size': [w, h], 'padding': 1.25},
            {'type': 'TopDownAffine', 'image_size': [w, h], **affine},
            {'type': 'Normalize', 'mean': [0., 0., 0.], 'std': [1., 1., 1.], 'to_rgb': False},
            {'type': 'ImageToTensor', 'keys': ['img']},
            {'type': 'Collect', 'keys': ['img'], 'meta_keys': ['img_shape', 'center', 'scale']}]


def crop_dumper(folder, **affine):
    """A PoseDetector whose network returns its input crop as 3*H*W one-pixel heatmaps: the
    scores it returns are the SDK's crop (its Python binding returns no tensors)."""
    from onnx import TensorProto, helper, numpy_helper
    (h, w) = HW
    shape = numpy_helper.from_array(np.array([1, 3 * h * w, 1, 1], np.int64), 'shape')
    nodes = [helper.make_node('Constant', [], ['shape'], value=shape),
             helper.make_node('Reshape', ['input', 'shape'], ['output'])]
    out = [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 3 * h * w, 1, 1])]
    _write_sdk(folder, (nodes, out), _crop_transforms(**affine), {
        'component': 'TopdownHeatmapSimpleHeadDecode', 'params': {'post_process': 'null'}})
    detector = runtime.PoseDetector(model_path=folder, device_name='cpu', device_id=0)

    def crop(image, xyxy):
        got = np.asarray(detector(image, sdk_boxes(np.asarray([xyxy], np.float32))))
        return got[0, :, 2].reshape(3, h, w).transpose(1, 2, 0)
    return crop


def sdk_centre_scale(transforms):
    """A function (image, whole-pixel box) -> the centre and scale (px) the SDK's
    preprocessing ``transforms`` record: what its decoders map the keypoints back with."""
    task = {'type': 'Task', 'module': 'Transform', 'name': 'Preprocess', 'input': ['img'],
            'output': ['out'], 'transforms': transforms}
    pipe = runtime.Pipeline({'type': 'Pipeline', 'input': ['img'], 'output': ['out'],
                             'tasks': [task]}, runtime.Context(runtime.Device('cpu', 0)))

    def centre_scale(image, xyxy):
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        meta = pipe({'ori_img': image, 'bbox': [x1, y1, x2 - x1, y2 - y1, 1.0]})[0]['img_metas']
        return np.array(meta['center'], np.float64), np.array(meta['scale'], np.float64) * 200
    return centre_scale


def reference_crop(image, xyxy):
    """mmdeploy-runtime 1.3.1's ``TopDownAffine`` (csrc/mmdeploy/codebase/mmpose/
    topdown_affine.cpp, written here from its source in float32 as it computes): the padded
    box rounded to whole pixels and cut at the image, ``cv2.resize``d to its rounded size in the
    input, zeros around; and the centre and scale of that resize. Returns (crop, centre, scale)."""
    f32 = np.float32
    (h, w) = HW

    def rnd(values):                   # std::round: halves away from zero
        return [int(np.floor(abs(v) + 0.5) * np.sign(v)) for v in values]

    def intersect(a, b):
        x1, y1 = max(a[0], b[0]), max(a[1], b[1])
        iw, ih = min(a[0] + a[2], b[0] + b[2]) - x1, min(a[1] + a[3], b[1] + b[3]) - y1
        return [x1, y1, iw, ih] if iw > 0 and ih > 0 else [0, 0, 0, 0]
    bw, bh = f32(xyxy[2] - xyxy[0]), f32(xyxy[3] - xyxy[1])
    aspect = w / h
    if bw > aspect * bh:
        bh = f32(bw / aspect)
    elif bw < aspect * bh:
        bw = f32(bh * aspect)
    cx, cy = f32(xyxy[0] + (xyxy[2] - xyxy[0]) * 0.5), f32(xyxy[1] + (xyxy[3] - xyxy[1]) * 0.5)
    sx, sy = (f32(f32(v / f32(200) * f32(1.25)) * f32(200)) for v in (bw, bh))
    roi = rnd([cx - sx / f32(2), cy - sy / f32(2), sx, sy])
    src = intersect(roi, [0, 0, image.shape[1], image.shape[0]])
    factor = f32(w) / sx
    dst = intersect(rnd([f32(src[0] - roi[0]) * factor, f32(src[1] - roi[1]) * factor,
                         f32(src[2]) * factor, f32(src[3]) * factor]), [0, 0, w, h])
    crop = np.zeros((h, w, 3), np.uint8)
    crop[dst[1]:dst[1] + dst[3], dst[0]:dst[0] + dst[2]] = cv2.resize(
        image[src[1]:src[1] + src[3], src[0]:src[0] + src[2]], (dst[2], dst[3]))
    fx, fy = dst[2] / src[2], dst[3] / src[3]
    centre = [src[0] + (src[2] - 1) / 2 + (w / 2 - dst[0] - (dst[2] - 1) / 2) / fx,
              src[1] + (src[3] - 1) / 2 + (h / 2 - dst[1] - (dst[3] - 1) / 2) / fy]
    return crop, np.array(centre), np.array([w / fx, h / fy])


def _probe_boxes(image):
    """Whole-pixel [x1, y1, x2, y2] boxes: inside the image, across its border, up- and
    downscaled, seeded."""
    ih, iw = image.shape[:2]
    rng = np.random.default_rng(0)
    boxes = [[100, 80, 180, 240], [23, 181, 135, 301], [10, 10, 210, 310], [0, 0, 40, 60],
             [200, 150, 231, 222], [iw - 100, ih - 150, iw + 50, ih + 50]]
    for x, y in zip(rng.integers(0, iw - 60, 10), rng.integers(0, ih - 90, 10)):
        boxes.append([int(x), int(y), int(x + rng.integers(30, 250)),
                      int(y + rng.integers(40, 300))])
    return boxes


def test_the_sdk_crop_is_a_resize_of_a_whole_pixel_box_and_use_udp_is_ignored(mini_coco,
                                                                               tmp_path):
    """What the SDK's TopDownAffine computes, pixel for pixel, on the 4 real images; its
    ``use_udp`` (and any other key but ``image_size``) changes nothing; mmpose's
    ``TopdownAffine`` crops the same box elsewhere."""
    from mmpose.datasets.transforms import GetBBoxCenterScale, TopdownAffine
    from mmpose.structures.bbox import get_warp_matrix
    sdk_crop = crop_dumper(str(tmp_path / 'crop'))
    udp_crop = crop_dumper(str(tmp_path / 'udp'), use_udp=True, shift=[0.5, 0.5])
    centre_scale = sdk_centre_scale(_crop_transforms())
    (h, w) = HW
    compared, mmpose_means, moves, interpolation = 0, [], [], []
    for image_file in sorted(coco_people(mini_coco)):
        image = cv2.imread(image_file)
        for xyxy in _probe_boxes(image):
            got = sdk_crop(image, xyxy)
            crop, centre, scale = reference_crop(image, xyxy)
            assert np.array_equal(got, crop), (image_file, xyxy)
            assert np.array_equal(udp_crop(image, xyxy), got)
            c, s = centre_scale(image, xyxy)
            np.testing.assert_allclose(c, centre, atol=1e-3)
            np.testing.assert_allclose(s, scale, rtol=1e-5)
            data = GetBBoxCenterScale(padding=1.25)(
                dict(img=image, bbox=np.array([xyxy], np.float32)))
            data = TopdownAffine(input_size=(w, h))(data)
            mmpose_means.append(np.abs(got - data['img']).mean())
            moves.append(np.concatenate([c - data['input_center'],
                                         s / data['input_scale'] - 1]))
            if np.isclose(s[0] / w, s[1] / h, rtol=1e-6) and (c - s / 2 >= 0).all() and \
                    (c + s / 2 <= image.shape[1::-1]).all():
                # inside, one scale: mmpose's warp at the SDK's centre and scale is its crop but
                # for the rounding of the interpolation weights
                warp = get_warp_matrix(c.astype(np.float32), s.astype(np.float32), 0., (w, h))
                same = cv2.warpAffine(image, warp, (w, h), flags=cv2.INTER_LINEAR)
                interpolation.append((np.abs(got - same).max(),
                                      np.abs(got - same)[1:-1, 1:-1].max()))
            compared += 1
    assert compared == 64
    # grey levels: 1 inside the crop; 5 on its outermost pixels where the crop is upscaled
    # (cv2.resize repeats the region's edge pixels, mmpose's warp reads their neighbours)
    interpolation = np.array(interpolation)
    assert len(interpolation) == 7 and interpolation[:, 1].max() == 1, interpolation
    assert interpolation[:, 0].max() == 5, interpolation
    # the same box, another crop: mean |SDK - mmpose| per pixel, in grey levels; the SDK's
    # centre - mmpose's (px) and its scale / mmpose's - 1, x and y
    moves = np.array(moves)
    print(f'mean |sdk crop - mmpose crop| per box: median {np.median(mmpose_means):.2f} '
          f'largest {max(mmpose_means):.2f} grey levels; centre moved x {moves[:, 0].min():.3f}'
          f'..{moves[:, 0].max():.3f} y {moves[:, 1].min():.3f}..{moves[:, 1].max():.3f} px; '
          f'scale x {moves[:, 2].min():+.4f}..{moves[:, 2].max():+.4f} '
          f'y {moves[:, 3].min():+.4f}..{moves[:, 3].max():+.4f}')
    assert np.median(mmpose_means) > 2


def test_sdk_centre_moves_by_half_a_source_pixel_less_half_an_input_pixel(tmp_path):
    """Inside the image, with a padded box of whole pixels, the SDK's crop is mmpose's moved by
    0.5 * scale / input - 0.5 px: cv2.resize maps pixel centres, mmpose's warp maps the box's
    corner to the crop's."""
    image = np.zeros((400, 600, 3), np.uint8)
    (h, w) = HW
    centre_scale = sdk_centre_scale(_crop_transforms())
    for xyxy, scale in (([100, 100, 164, 196], 80.0), ([100, 100, 228, 292], 160.0),
                        ([200, 50, 296, 194], 120.0)):
        c, s = centre_scale(image, xyxy)
        box_centre = (np.array(xyxy[:2]) + np.array(xyxy[2:])) / 2
        np.testing.assert_allclose(s, [scale, scale * h / w], rtol=1e-6)
        np.testing.assert_allclose(c - box_centre, 0.5 * s / np.array([w, h]) - 0.5, atol=1e-4)


@pytest.mark.parametrize('unbiased', [True, False])
def test_the_sdk_heatmap_decoder_is_mmposes(tmp_path, unbiased):
    """Fixed heatmaps (peaks at sub-pixel places, off the border) through the SDK's
    TopdownHeatmapSimpleHeadDecode as export_sdk configures it (DARK or the quarter-pixel
    shift) and through mmpose's MSRAHeatmap decoder, mapped back with the SDK's centre and
    scale: the same keypoints. The SDK's difference from mmpose is its crop alone."""
    from mmpose.codecs import MSRAHeatmap
    from onnx import TensorProto, helper, numpy_helper
    (h, w) = HW
    hh, hw = h // 4, w // 4
    rng = np.random.default_rng(1)
    peaks = rng.uniform([3, 3], [hw - 4, hh - 4], size=(17, 2))
    yy, xx = np.mgrid[:hh, :hw]
    heatmaps = np.exp(-((xx - peaks[:, :1, None]) ** 2 + (yy - peaks[:, 1:, None]) ** 2) /
                      (2 * 2.0 ** 2)).astype(np.float32)[None]
    value = numpy_helper.from_array(heatmaps)
    nodes = [helper.make_node('Constant', [], ['output'], value=value)]
    out = [helper.make_tensor_value_info('output', TensorProto.FLOAT, list(heatmaps.shape))]
    from psa_pose.deploy.sdk import decoder
    from mmengine.config import Config
    codec = dict(type='MSRAHeatmap', input_size=(w, h), heatmap_size=(hw, hh), sigma=2,
                 unbiased=unbiased)
    component, params, _ = decoder(Config(dict(model=dict(head=dict(decoder=codec)))), 'probe')
    folder = _write_sdk(str(tmp_path / 'dec'), (nodes, out), _crop_transforms(),
                        {'component': component, 'params': params})
    detector = runtime.PoseDetector(model_path=folder, device_name='cpu', device_id=0)
    keypoints, _ = MSRAHeatmap(**{k: v for k, v in codec.items() if k != 'type'}).decode(
        heatmaps[0])
    image = np.zeros((300, 400, 3), np.uint8)
    centre_scale = sdk_centre_scale(_crop_transforms())
    for xyxy in ([50, 40, 130, 200], [0, 0, 90, 150], [300, 100, 420, 330]):
        got = np.asarray(detector(image, sdk_boxes(np.array([xyxy], np.float32))))[0]
        c, s = centre_scale(image, xyxy)
        want = keypoints[0] / np.array([w, h]) * s + c - 0.5 * s
        assert np.abs(got[:, :2] - want).max() < 1e-3


def test_the_sdk_simcc_decoder_is_mmposes(tmp_path):
    """Fixed SimCC vectors through the SDK's SimCCLabelDecode as export_sdk configures it and
    through mmpose's SimCCLabel decoder, mapped back with the SDK's centre and scale: the same
    keypoints and scores."""
    from mmengine.config import Config
    from mmpose.codecs import SimCCLabel
    from onnx import TensorProto, helper, numpy_helper
    from psa_pose.deploy.sdk import decoder
    (h, w) = HW
    rng = np.random.default_rng(2)
    simcc = [rng.random((1, 17, 2 * n), np.float32) for n in (w, h)]
    nodes = [helper.make_node('Constant', [], [name], value=numpy_helper.from_array(v))
             for name, v in zip(('simcc_x', 'simcc_y'), simcc)]
    out = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(v.shape))
           for name, v in zip(('simcc_x', 'simcc_y'), simcc)]
    codec = dict(type='SimCCLabel', input_size=(w, h), sigma=(4.9, 5.66),
                 simcc_split_ratio=2.0, normalize=False, use_dark=False)
    component, params, names = decoder(Config(dict(model=dict(head=dict(decoder=codec)))),
                                       'probe')
    assert (component, names) == ('SimCCLabelDecode', ['simcc_x', 'simcc_y'])
    folder = _write_sdk(str(tmp_path / 'simcc'), (nodes, out), _crop_transforms(),
                        {'component': component, 'params': params})
    detector = runtime.PoseDetector(model_path=folder, device_name='cpu', device_id=0)
    keypoints, scores = SimCCLabel(**{k: v for k, v in codec.items() if k != 'type'}).decode(
        simcc[0], simcc[1])
    image = np.zeros((300, 400, 3), np.uint8)
    centre_scale = sdk_centre_scale(_crop_transforms())
    for xyxy in ([50, 40, 130, 200], [300, 100, 420, 330]):
        got = np.asarray(detector(image, sdk_boxes(np.array([xyxy], np.float32))))[0]
        c, s = centre_scale(image, xyxy)
        want = keypoints[0] / np.array([w, h]) * s + c - 0.5 * s
        assert np.abs(got[:, :2] - want).max() < 1e-3
        np.testing.assert_allclose(got[:, 2], scores[0], rtol=1e-6)


@pytest.mark.slow           # about 40 s: builds and exports RTMPose-t
def test_an_rtmpose_psa_config_exports_a_simcc_sdk_folder(tmp_path, mini_coco):
    """At ``--input-shape 128 96`` (the COCO config is 256x192): the SimCC head, its decoder
    and the SDK's crop all follow the input, with a checkpoint of that size."""
    from psa_pose.config import config_files
    from psa_pose.deploy.sdk import export_sdk
    config = config_files()['rtmpose-t-psa-p_8xb256-420e_coco-256x192']
    ckpt = random_checkpoint(config, str(tmp_path / 'm.pth'), {
        'model.head.input_size': (96, 128), 'model.head.in_featuremap_size': (3, 4)})
    export_sdk(config, ckpt, str(tmp_path / 'sdk'), input_shape=(128, 96),
               check_ann=os.path.join(mini_coco, 'test_coco.json'), check_samples=2)
    tasks = json.load(open(tmp_path / 'sdk' / 'pipeline.json'))['pipeline']['tasks']
    assert tasks[2]['component'] == 'SimCCLabelDecode'
    assert tasks[2]['params'] == {'flip_test': False, 'input_size': [96, 128],
                                  'simcc_split_ratio': 2.0}
    crop = [t for t in tasks[0]['transforms'] if t['type'] == 'TopDownAffine']
    assert [t['image_size'] for t in crop] == [[96, 128]]
    detector = runtime.PoseDetector(model_path=str(tmp_path / 'sdk'), device_name='cpu',
                                    device_id=0)
    image_file, (boxes, _) = sorted(coco_people(mini_coco).items())[1]
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    assert np.asarray(detector(cv2.imread(image_file), sdk_boxes(xyxy))).shape == (3, 17, 3)


def constant_detector(folder, box_xyxy, size_wh) -> str:
    """An mmdet SDK folder whose network finds one person at ``box_xyxy`` in every frame of
    ``size_wh``: PoseTracker needs a detector, and no trained one can be downloaded here."""
    from onnx import TensorProto, helper, numpy_helper
    w, h = size_wh
    dets = numpy_helper.from_array(np.array([[list(box_xyxy) + [0.99]]], np.float32))
    labels = numpy_helper.from_array(np.zeros((1, 1), np.int64))
    nodes = [helper.make_node('Constant', [], ['dets'], value=dets),
             helper.make_node('Constant', [], ['labels'], value=labels)]
    outputs = [helper.make_tensor_value_info('dets', TensorProto.FLOAT, [1, 1, 5]),
               helper.make_tensor_value_info('labels', TensorProto.INT64, [1, 1])]
    transforms = [
        {'type': 'LoadImageFromFile'},
        {'type': 'Resize', 'keep_ratio': False, 'size': [w, h]},
        {'type': 'Normalize', 'mean': [0, 0, 0], 'std': [1, 1, 1], 'to_rgb': False},
        {'type': 'DefaultFormatBundle'},
        {'type': 'Collect', 'keys': ['img'], 'meta_keys': [
            'img_shape', 'pad_shape', 'ori_shape', 'img_norm_cfg', 'scale_factor']}]
    return write_folder(folder, 'Detector', nodes, outputs, (h, w), transforms,
                        {'component': 'ResizeBBox', 'params': {'score_thr': 0.3}})


@pytest.mark.slow
def test_pose_tracker_follows_a_person_in_a_generated_video(generated_sdk, tiny_coco, tmp_path):
    """A person of a generated image moving 2 px per frame for 6 frames: one track, whose
    keypoints move with the person."""
    _, _, sdk = generated_sdk
    image_file, (boxes, mask) = sorted(coco_people(tiny_coco).items())[0]
    image = cv2.imread(image_file)
    h, w = image.shape[:2]
    x, y, bw, bh = boxes[0]
    det = constant_detector(str(tmp_path / 'det'), (x - 6, y - 6, x + bw + 16, y + bh + 6),
                            (w, h))
    tracker = runtime.PoseTracker(det_model=det, pose_model=sdk, device_name='cpu')
    state = tracker.create_state(det_interval=1, det_min_bbox_size=8)
    ids, xs = [], []
    for t in range(6):
        frame = cv2.warpAffine(image, np.float32([[1, 0, 2 * t], [0, 1, 0]]), (w, h))
        keypoints, bboxes, track_ids = tracker(state, frame, detect=-1)
        assert keypoints.shape == (1, 17, 3) and bboxes.shape == (1, 4)
        ids.append(int(track_ids[0]))
        xs.append(float(np.median(keypoints[0, mask[0], 0])))
    print('track ids', ids, 'median x of the labelled keypoints', np.round(xs, 2))
    # the person moved 10 px; the tracker's smoothing filter lags (measured: 6.8 px)
    assert 4 < xs[-1] - xs[0] < 13, xs
    assert len(set(ids)) == 1, ids


@pytest.mark.slow
def test_sdk_folder_layout(real_sdk):
    from psa_pose.deploy.sdk import FILES, MODEL_NAME
    import onnx
    _, _, sdk = real_sdk
    assert sorted(os.listdir(sdk)) == sorted(FILES)
    proto = onnx.load(os.path.join(sdk, 'end2end.onnx'))
    assert (proto.ir_version, proto.opset_import[0].version) == (8, 18)
    assert [o.name for o in proto.graph.output] == ['output']
    deploy = json.load(open(os.path.join(sdk, 'deploy.json')))
    assert deploy['task'] == 'PoseDetector' and deploy['models'][0]['name'] == MODEL_NAME
    tasks = json.load(open(os.path.join(sdk, 'pipeline.json')))['pipeline']['tasks']
    assert [t.get('component', t['module']) for t in tasks] == [
        'Transform', 'Net', 'TopdownHeatmapSimpleHeadDecode']
    assert tasks[2]['params']['post_process'] == 'unbiased'          # the configs' DARK codec
    assert [t['type'] for t in tasks[0]['transforms']][1:4] == [
        'TopDownGetBboxCenterScale', 'TopDownAffine', 'Normalize']


def test_a_non_empty_folder_is_refused(tmp_path):
    from psa_pose.deploy.sdk import export_sdk
    (tmp_path / 'sdk').mkdir()
    (tmp_path / 'sdk' / 'keep.txt').write_text('mine')
    with pytest.raises(UserError) as e:
        export_sdk(RES18_PSA, 'unused.pth', str(tmp_path / 'sdk'))
    assert str(e.value) == (f'{tmp_path / "sdk"}: exists and is not an empty folder; give --sdk '
                            f'a new folder (the SDK folder is written whole or not at all)')
    assert os.listdir(tmp_path / 'sdk') == ['keep.txt']


UDP_REFUSED = ('has no equivalent in mmdeploy-runtime 1.3.1, whose TopDownAffine ignores '
               'use_udp; export a plain ONNX file with --out instead')


@pytest.mark.parametrize('options, message', [
    ({'model.head.decoder': dict(_delete_=True, type='SimCCLabel', input_size=(96, 128),
                                 sigma=(4.9, 5.66), use_dark=True)},
     "codec SimCCLabel (use_dark=True) has no decoder in mmdeploy's SDK (it has MSRAHeatmap and "
     "SimCCLabel without DARK); export a plain ONNX file with --out instead"),
    # the runtime's TopDownAffine ignores use_udp (the crop test above)
    ({'model.head.decoder': dict(_delete_=True, type='UDPHeatmap', input_size=(96, 128),
                                 heatmap_size=(24, 32), sigma=2)},
     f'codec UDPHeatmap {UDP_REFUSED}'),
    ({'test_dataloader.dataset.pipeline.2.use_udp': True},
     f'TopdownAffine use_udp=True {UDP_REFUSED}')])
def test_what_the_sdk_cannot_run_is_refused(tmp_path, options, message):
    from psa_pose.deploy.sdk import export_sdk
    with pytest.raises(UserError) as e:
        export_sdk(RES18_PSA, 'unused.pth', str(tmp_path / 'sdk'), options=options)
    assert str(e.value) == f'{RES18_PSA}: {message}'
    assert os.listdir(tmp_path) == []


def test_a_missing_runtime_is_one_line(tmp_path, monkeypatch):
    from psa_pose.deploy import onnx_infer
    from psa_pose.deploy.sdk import export_sdk
    monkeypatch.setitem(sys.modules, 'mmdeploy_runtime', None)      # import fails
    with pytest.raises(UserError) as e:
        export_sdk(RES18_PSA, 'unused.pth', str(tmp_path / 'sdk'))
    assert str(e.value) == ('mmdeploy_runtime is not installed, so the SDK folder cannot be '
                            'checked or run: pip install mmdeploy-runtime==1.3.1 '
                            '(requirements-export.txt)')
    with pytest.raises(onnx_infer.DeployError, match='^mmdeploy_runtime is not installed, it '
                       'runs SDK folders: pip install mmdeploy-runtime==1.3.1$'):
        onnx_infer.SdkPoseModel(str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.mark.slow           # one export
def test_above_tolerance_leaves_nothing(tmp_path, tiny_coco, capsys):
    ckpt = random_checkpoint(RES18_PSA, str(tmp_path / 'm.pth'))
    out = _cli(capsys, RES18_PSA, ckpt, '--sdk', tmp_path / 'sdk', '--input-shape', '96', '64',
               '--check-ann', os.path.join(tiny_coco, 'test_coco.json'), '--check-samples', '2',
               '--tolerance', '0')
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f'error: {tmp_path / "sdk"}: onnxruntime differs from PyTorch by ')
    assert line.endswith(' > 0; not written')
    assert os.listdir(tmp_path) == ['m.pth']          # no folder, no temporary folder


@pytest.mark.slow
def test_onnx_infer_runs_the_sdk_folder(generated_sdk, tiny_coco, tmp_path):
    _, _, sdk = generated_sdk
    image, (boxes, _) = sorted(coco_people(tiny_coco).items())[0]
    out = tmp_path / 'kpts.json'
    run_script(sys.executable, os.path.join(REPO, 'scripts', 'onnx_infer.py'), image, '--sdk',
               sdk, '--bboxes', json.dumps(boxes.tolist()), '--out', out, cwd=tmp_path)
    result = json.loads(out.read_text())
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    want = np.asarray(runtime.PoseDetector(model_path=sdk, device_name='cpu', device_id=0)(
        cv2.imread(image), sdk_boxes(xyxy)))
    np.testing.assert_allclose(result['keypoints'], np.round(want[..., :2], 2), atol=0.006)
    assert result['keypoint_names'][:2] == ['nose', 'left_eye']
    both = run_script(sys.executable, os.path.join(REPO, 'scripts', 'onnx_infer.py'), 'm.onnx',
                      image, '--sdk', sdk, cwd=tmp_path, check=False)
    assert both.returncode == 2
    assert both.stderr.strip().splitlines()[-1].endswith(
        'error: give MODEL.onnx or --sdk DIR (one of them)')
