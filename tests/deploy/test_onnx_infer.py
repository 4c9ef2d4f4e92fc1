"""psa_pose.deploy.onnx_infer: the torch-free runtime against mmpose's own inference."""
import json
import os
import sys

import numpy as np
import pytest

from psa_pose.deploy import onnx_infer
from tests.conftest import REPO, run_script


def coco_people(mini_coco):
    """{image path: (N, 4) xywh ground-truth person boxes} of the mini COCO set."""
    with open(os.path.join(mini_coco, 'test_coco.json')) as f:
        coco = json.load(f)
    boxes = {}
    for ann in coco['annotations']:
        boxes.setdefault(ann['image_id'], []).append(ann['bbox'])
    return {os.path.join(mini_coco, im['file_name']): np.array(boxes[im['id']], np.float32)
            for im in coco['images'] if im['id'] in boxes}


def mmpose_keypoints(config, ckpt, people, options=None):
    from mmpose.apis import inference_topdown, init_model
    from psa_pose import zoo
    model = init_model(zoo.load_config(config, options), ckpt, device='cpu')
    out = {}
    for image, boxes in people.items():
        samples = inference_topdown(model, image, boxes, bbox_format='xywh')
        out[image] = (np.concatenate([s.pred_instances.keypoints for s in samples]),
                      np.concatenate([s.pred_instances.keypoint_scores for s in samples]))
    return out


def test_same_keypoints_as_inference_topdown(res18_onnx, mini_coco):
    import cv2
    config, ckpt, onnx_file = res18_onnx
    people = coco_people(mini_coco)
    assert sum(len(b) for b in people.values()) == 14
    want = mmpose_keypoints(config, ckpt, people)
    model = onnx_infer.OnnxPoseModel(onnx_file)
    for image, boxes in people.items():
        kpts, scores = model(cv2.imread(image), boxes)
        assert kpts.shape == want[image][0].shape == (len(boxes), 17, 2)
        err = np.abs(kpts - want[image][0]).max()
        print(image, err)
        assert err < 1.0, image
        np.testing.assert_allclose(scores, want[image][1], atol=1e-4)
