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
    from psa_pose.deploy.export import check_data_options, set_input_shape
    from psa_pose.deploy.sdk import export_sdk
    cfg = load_config(config, {**options, **check_data_options(ann)})
    set_input_shape(cfg, HW)
    ckpt = fitted_checkpoint(cfg, str(folder / 'model.pth'))
    sdk = str(folder / 'sdk')
    export_sdk(config, ckpt, sdk, input_shape=HW, options=options, check_ann=ann)
    return cfg, ckpt, sdk


# The HRNet (one block per branch, fitted in 150 steps) is far more sensitive to the SDK's crop
# shift than the ResNets: measured median 3.48 px, 90th percentile 9.4 px, largest 61 px.
HRNET_XFAIL = pytest.mark.xfail(reason="mmdeploy-runtime's crop differs from mmpose's (see "
                                'SDK_MEDIAN_PX); this fitted HRNet moves by a median 3.5 px')


@pytest.fixture(scope='module', params=[
    pytest.param(name, marks=HRNET_XFAIL) if 'hrnet' in name else name for name in sorted(MODELS)])
def real_sdk(request, tmp_path_factory, mini_coco):
    """A model fitted to the 4 real images' people, exported as an SDK folder."""
    config, options = MODELS[request.param]
    return _fitted_sdk(tmp_path_factory.mktemp(request.param), config, options,
                       os.path.join(mini_coco, 'test_coco.json'))


def _compare(cfg, ckpt, sdk, people):
    """The SDK's keypoints and scores against mmpose's inference_topdown on the labelled
    keypoints (the fitted ones: peaked heatmaps), for the boxes rounded to whole pixels; the
    number compared and all the distances."""
    from mmpose.apis import inference_topdown, init_model
    model = init_model(cfg, ckpt, device='cpu')
    detector = runtime.PoseDetector(model_path=sdk, device_name='cpu', device_id=0)
    compared, errors = 0, []
    for image, (boxes, mask) in people.items():
        xyxy = np.round(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1))
        samples = inference_topdown(model, image, xyxy, bbox_format='xyxy')
        want = np.concatenate([s.pred_instances.keypoints for s in samples])
        want_scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        got = np.asarray(detector(cv2.imread(image), sdk_boxes(xyxy)))
        assert got.shape == (len(boxes), 17, 3)
        errors.append(np.linalg.norm(got[..., :2] - want, axis=-1)[mask])
        print(image, 'largest keypoint distance', errors[-1].max(), 'largest score difference',
              np.abs(got[..., 2] - want_scores)[mask].max())
        compared += mask.sum()
    errors = np.concatenate(errors)
    print('distances: median', np.median(errors), '90th percentile', np.percentile(errors, 90),
          'largest', errors.max())
    return compared, errors


# How far mmdeploy-runtime 1.3.1's keypoints may lie from mmpose's inference_topdown on the same
# (whole-pixel) box. Not 0.05 px: the SDK's TopDownAffine crops differently from mmpose 1.x's
# (it moves the crop centre by 0.5 * scale / input - 0.5 px and treats the image border its own
# way; docs/install.md), and a model fitted in 150 steps to a few people is not insensitive to
# such a shift. Measured on the PSA ResNet fitted to the 4 real images: median 1.70 px, 90th
# percentile 2.55 px, largest 4.4 px; the baseline ResNet: 1.77, 2.32, 2.66 px; fitted to the generated images: median 0.88 px, 90th
# percentile 1.84 px, largest 15 px (one keypoint whose maximum moved to another peak).
SDK_MEDIAN_PX, SDK_P90_PX = 3.0, 5.0


def assert_near(errors: np.ndarray) -> None:
    assert np.median(errors) < SDK_MEDIAN_PX and np.percentile(errors, 90) < SDK_P90_PX


@pytest.mark.slow           # fits and exports a model per parameter: 15 minutes each at load 10
def test_sdk_keypoints_near_inference_topdown_on_real_images(real_sdk, mini_coco):
    compared, errors = _compare(*real_sdk, coco_people(mini_coco))
    assert compared == 181
    assert_near(errors)


@pytest.fixture(scope='module')
def generated_sdk(tmp_path_factory, tiny_coco):
    """The PSA ResNet fitted to the generated images' people, as an SDK folder."""
    return _fitted_sdk(tmp_path_factory.mktemp('generated'), RES18_PSA, {},
                       os.path.join(tiny_coco, 'test_coco.json'))


@pytest.mark.slow
def test_sdk_keypoints_near_inference_topdown_on_generated_images(generated_sdk, tiny_coco):
    people = coco_people(tiny_coco)
    compared, errors = _compare(*generated_sdk, people)
    assert compared == sum(m.sum() for _, m in people.values())
    assert_near(errors)


def constant_detector(folder, box_xyxy, size_wh) -> str:
    """An mmdet SDK folder whose network finds one person at ``box_xyxy`` in every frame of
    ``size_wh``: PoseTracker needs a detector, and no trained one can be downloaded here."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    os.makedirs(folder)
    w, h = size_wh
    dets = numpy_helper.from_array(np.array([[list(box_xyxy) + [0.99]]], np.float32))
    labels = numpy_helper.from_array(np.zeros((1, 1), np.int64))
    graph = helper.make_graph(
        [helper.make_node('Constant', [], ['dets'], value=dets),
         helper.make_node('Constant', [], ['labels'], value=labels)], 'person',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info('dets', TensorProto.FLOAT, [1, 1, 5]),
         helper.make_tensor_value_info('labels', TensorProto.INT64, [1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 8
    onnx.save(model, os.path.join(folder, 'end2end.onnx'))
    files = {'deploy.json': {'version': '1.3.1', 'task': 'Detector', 'customs': [], 'models': [
        {'name': 'person', 'net': 'end2end.onnx', 'weights': '', 'backend': 'onnxruntime',
         'precision': 'FP32', 'batch_size': 1, 'dynamic_shape': False}]},
        'pipeline.json': {'pipeline': {'input': ['img'], 'output': ['post_output'], 'tasks': [
            {'type': 'Task', 'module': 'Transform', 'name': 'Preprocess', 'input': ['img'],
             'output': ['prep_output'], 'transforms': [
                {'type': 'LoadImageFromFile'},
                {'type': 'Resize', 'keep_ratio': False, 'size': [w, h]},
                {'type': 'Normalize', 'mean': [0, 0, 0], 'std': [1, 1, 1], 'to_rgb': False},
                {'type': 'DefaultFormatBundle'},
                {'type': 'Collect', 'keys': ['img'], 'meta_keys': [
                    'img_shape', 'pad_shape', 'ori_shape', 'img_norm_cfg', 'scale_factor']}]},
            {'type': 'Task', 'module': 'Net', 'name': 'person', 'is_batched': False,
             'input': ['prep_output'], 'output': ['infer_output'],
             'input_map': {'img': 'input'}, 'output_map': {}},
            {'type': 'Task', 'module': 'mmdet', 'name': 'postprocess',
             'component': 'ResizeBBox', 'params': {'score_thr': 0.3},
             'input': ['prep_output', 'infer_output'], 'output': ['post_output']}]}},
        'detail.json': {'version': '1.3.1', 'codebase': {'task': 'ObjectDetection',
                                                          'codebase': 'mmdet'}}}
    for name, data in files.items():
        with open(os.path.join(folder, name), 'w') as f:
            json.dump(data, f)
    return folder


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


def test_a_codec_without_sdk_decoder_is_refused(tmp_path):
    from psa_pose.deploy.sdk import export_sdk
    options = {'model.head.decoder': dict(_delete_=True, type='UDPHeatmap', input_size=(96, 128),
                                          heatmap_size=(24, 32), heatmap_type='combined')}
    with pytest.raises(UserError) as e:
        export_sdk(RES18_PSA, 'unused.pth', str(tmp_path / 'sdk'), options=options)
    assert str(e.value) == (
        f"{RES18_PSA}: codec UDPHeatmap (heatmap_type='combined') has no decoder in mmdeploy's "
        f"SDK (it has MSRAHeatmap, UDPHeatmap with gaussian heatmaps and SimCCLabel without "
        f"DARK); export a plain ONNX file with --out instead")
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
