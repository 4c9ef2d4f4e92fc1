"""psa_pose.deploy.onnx_infer: the torch-free runtime against mmpose's own inference."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from psa_pose.deploy import onnx_infer
from tests.conftest import REPO, run_script


def coco_people(mini_coco):
    """{image path: ((N, 4) xywh person boxes, (N, 17) labelled-keypoint mask)}."""
    with open(os.path.join(mini_coco, 'test_coco.json')) as f:
        coco = json.load(f)
    people = {}
    for ann in coco['annotations']:
        people.setdefault(ann['image_id'], []).append(ann)
    return {os.path.join(mini_coco, im['file_name']):
            (np.array([a['bbox'] for a in people[im['id']]], np.float32),
             np.array([a['keypoints'][2::3] for a in people[im['id']]]) > 0)
            for im in coco['images'] if im['id'] in people}


EXPORTED = ['res18_onnx', 'rtmpose_onnx']     # heatmaps (DARK) and SimCC (RTMPose + PSA)


@pytest.mark.slow           # the fixture fits a model and exports it
@pytest.mark.parametrize('exported', EXPORTED)
def test_same_keypoints_as_inference_topdown(exported, mini_coco, request):
    from mmpose.apis import inference_topdown, init_model
    config, ckpt, onnx_file = request.getfixturevalue(exported)
    people = coco_people(mini_coco)
    assert sum(len(b) for b, _ in people.values()) == 14
    mmpose_model = init_model(config, ckpt, device='cpu')
    model = onnx_infer.OnnxPoseModel(onnx_file)
    labelled = 0
    for image, (boxes, mask) in people.items():
        samples = inference_topdown(mmpose_model, image, boxes, bbox_format='xywh')
        want = np.concatenate([s.pred_instances.keypoints for s in samples])
        want_scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        kpts, scores = model(cv2.imread(image), boxes)
        assert kpts.shape == want.shape == (len(boxes), 17, 2)
        # the keypoints the fitted model has seen have peaked heatmaps, as a trained model's;
        # the others are flat, where 1e-7 between runtimes moves DARK's maximum anywhere
        # (measured on the labelled ones: <= 5e-4 px; RTMPose's SimCC argmax: <= 6.3e-5 px
        # on every keypoint, labelled or not)
        err = np.linalg.norm(kpts - want, axis=-1)[mask]
        assert err.max() < 0.05, (image, err.max())
        labelled += mask.sum()
        np.testing.assert_allclose(scores, want_scores, atol=1e-4)
    assert labelled == 181


@pytest.mark.slow           # res18_onnx fits a model and exports it
def test_the_crops_are_mmposes(res18_onnx, mini_coco):
    """The affine crop and normalisation equal mmpose's test pipeline + data preprocessor."""
    import torch
    from psa_pose.config import build_model
    from psa_pose.deploy.export import real_crops
    cfg, _, onnx_file = res18_onnx
    want, _ = real_crops(cfg, build_model(cfg), 100)
    meta = onnx_infer.OnnxPoseModel(onnx_file).meta
    from mmpose.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(dataset) == len(want) == 12   # the people with keypoints
    got = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        (x1, y1, x2, y2), = info['bbox']
        got.append(onnx_infer.preprocess(cv2.imread(info['img_path']),
                                         np.array([[x1, y1, x2 - x1, y2 - y1]]), meta)[0])
    # the same pixels; normalisation in numpy vs torch may differ in the last bit
    torch.testing.assert_close(torch.from_numpy(np.concatenate(got)), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize('codec', [
    dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2),
    dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2,
         unbiased=True),
    dict(type='UDPHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2),
])
def test_decode_equals_the_codec(codec):
    """Decoding peaked heatmaps (Gaussians at random sub-pixel points plus noise) as mmpose's
    codec does."""
    from mmpose.registry import KEYPOINT_CODECS
    mm = KEYPOINT_CODECS.build(codec)
    rng = np.random.default_rng(0)
    w, h = codec['heatmap_size']
    centres = rng.uniform([1, 1], [w - 2, h - 2], size=(17, 2))
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    heatmaps = np.exp(-((xs - centres[:, :1, None]) ** 2 + (ys - centres[:, 1:, None]) ** 2)
                      / 8).astype(np.float32)
    heatmaps += rng.normal(0, 0.01, heatmaps.shape).astype(np.float32)
    want, want_scores = mm.decode(heatmaps.copy())
    meta = {'codec': {'type': codec['type'], 'unbiased': codec.get('unbiased', False),
                      'blur_kernel_size': mm.blur_kernel_size if hasattr(mm, 'blur_kernel_size')
                      else 11},
            'input_size': codec['input_size'], 'heatmap_size': codec['heatmap_size']}
    got, scores = onnx_infer.decode([heatmaps[None].copy()], meta)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_array_equal(scores, want_scores)


SUPPORTED = ('(it decodes MSRAHeatmap, UDPHeatmap with gaussian heatmaps and SimCCLabel '
             "without DARK or visibility); use mmpose's inference_topdown for this model")


@pytest.mark.parametrize('codec,detail', [
    ({'type': 'RegressionLabel'}, "'RegressionLabel'"),
    ({'type': 'SimCCLabel', 'use_dark': True, 'decode_visibility': False},
     'SimCCLabel use_dark=True decode_visibility=False'),
    ({'type': 'UDPHeatmap', 'heatmap_type': 'combined'}, "UDPHeatmap heatmap_type='combined'")])
def test_unsupported_codec_is_refused(codec, detail):
    with pytest.raises(onnx_infer.DeployError) as e:
        onnx_infer.check_codec({'codec': codec}, 'm.onnx')
    assert str(e.value) == f'm.onnx: codec {detail} is not supported by this runtime {SUPPORTED}'


def test_simcc_decode_and_flip_equal_mmposes():
    """SimCC vectors (random, a fifth of the keypoints scored <= 0 on one axis) decoded as
    mmpose's SimCCLabel decodes them, and flipped back as RTMCCHead's flip test does."""
    import torch
    from mmpose.codecs import SimCCLabel
    from mmpose.models.utils.tta import flip_vectors
    rng = np.random.default_rng(0)
    simcc_x = rng.normal(0.5, 0.3, (3, 17, 192)).astype(np.float32)
    simcc_y = rng.normal(0.5, 0.3, (3, 17, 256)).astype(np.float32)
    simcc_y[:, ::5] -= 3
    meta = {'codec': {'type': 'SimCCLabel', 'simcc_split_ratio': 2.0},
            'flip_indices': [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]}
    codec = SimCCLabel(input_size=(96, 128), sigma=(2.45, 2.83), simcc_split_ratio=2.0,
                       normalize=False)
    want, want_scores = codec.decode(simcc_x.copy(), simcc_y.copy())
    got, scores = onnx_infer.decode([simcc_x, simcc_y], meta)
    assert (want == -0.5).sum() == 2 * 3 * 4           # the keypoints scored <= 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(scores, want_scores)
    back = onnx_infer.flip_back([simcc_x, simcc_y], meta)
    wanted = flip_vectors(torch.from_numpy(simcc_x), torch.from_numpy(simcc_y),
                          meta['flip_indices'])
    for b, w in zip(back, wanted, strict=True):
        np.testing.assert_array_equal(b, w.numpy())


@pytest.mark.slow           # the fixture fits a model and exports it
@pytest.mark.parametrize('exported', EXPORTED)
def test_script_runs_without_torch_or_mmpose(exported, mini_coco, tmp_path, request):
    """scripts/onnx_infer.py with torch, mmpose, mmengine and mmcv made unimportable."""
    _, _, onnx_file = request.getfixturevalue(exported)
    image = os.path.join(mini_coco, '000000000785.jpg')
    boxes, _ = coco_people(mini_coco)[image]
    out = tmp_path / 'kpts.json'
    block = ("import runpy, sys; sys.modules.update(dict.fromkeys(['torch', 'mmpose', "
             "'mmengine', 'mmcv', 'mmcv_ops_placeholder'])); sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    script = os.path.join(REPO, 'scripts', 'onnx_infer.py')
    run_script(sys.executable, '-c', block, script, onnx_file, image, '--bboxes',
               json.dumps(boxes.tolist()), '--out', out, cwd=tmp_path)
    result = json.loads(out.read_text())
    kpts, _ = onnx_infer.OnnxPoseModel(onnx_file)(cv2.imread(image), boxes)
    np.testing.assert_allclose(result['keypoints'], np.round(kpts, 2), atol=0.006)
    assert result['keypoint_names'][:2] == ['nose', 'left_eye']

    bad = run_script(sys.executable, script, onnx_file, image, '--bboxes', '[[1, 2, 0, 4]]',
                     cwd=tmp_path, check=False)
    assert (bad.returncode, bad.stderr) == (2, 'error: [[1, 2, 0, 4]]: boxes must be '
                                            '[[x, y, w, h], ...] with w, h > 0\n')


def test_undecodable_images_are_refused(tmp_path):
    """A truncated JPEG: cv2.imread would give its first rows over grey; refused as demo.py
    refuses it. A whole one decodes to the pixels cv2.imread gives."""
    import cv2
    import numpy as np

    from psa_pose.deploy.onnx_infer import DeployError, read_image
    rng = np.random.default_rng(0)
    ok, encoded = cv2.imencode('.jpg', rng.integers(0, 255, (120, 160, 3), np.uint8))
    whole = tmp_path / 'whole.jpg'
    whole.write_bytes(encoded.tobytes())
    assert np.array_equal(read_image(str(whole)), cv2.imread(str(whole)))
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(encoded.tobytes()[:len(encoded) // 3])
    assert cv2.imread(str(cut)) is not None              # what onnx_infer used to run on
    for path in (cut, tmp_path / 'empty.jpg'):
        path.touch()
        with pytest.raises(DeployError) as err:
            read_image(str(path))
        assert str(err.value) == (f'{path}: cannot be decoded as an image (the file is '
                                  f'corrupt, truncated or not an image); give a JPEG or PNG '
                                  f'file')


def test_a_box_outside_the_image_is_named():
    import numpy as np

    from psa_pose.deploy.onnx_infer import box_outside
    inside = np.array([[0, 0, 10, 10], [630, 400, 50, 50], [-5, -5, 6, 6]], np.float32)
    assert box_outside(inside, 640, 425) is None
    for box in ([640, 0, 10, 10], [0, 425, 10, 10], [-10, 0, 10, 10], [0, -20, 5, 20]):
        assert box_outside(np.array([inside[0], box]), 640, 425) == (
            f'box #1 [{box[0]:g}, {box[1]:g}, {box[2]:g}, {box[3]:g}] lies outside the 640x425 '
            f'image; were the boxes made for another image (or given as x1, y1, x2, y2)?')
