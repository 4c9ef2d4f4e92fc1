import copy
import os

import pytest
import torch

from psa_pose.config import build_model, load_config
from tests.conftest import REPO

SYNTH = os.path.join(REPO, 'configs', 'synth')
RES18_PSA = os.path.join(SYNTH, 'td-hm_res18-psa-p_dark-1xb16-24e_synth-128x96.py')


def random_checkpoint(config: str, path: str, options=None, seed: int = 0) -> str:
    """A training-style checkpoint of ``config``'s model with seeded random weights."""
    torch.manual_seed(seed)
    model = build_model(load_config(config, options))
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, path)
    return path


def fitted_checkpoint(cfg, path: str, steps: int = 150, seed: int = 0) -> str:
    """A checkpoint of ``config``'s model fitted for a few Adam steps to the people of
    ``cfg``'s test set (the test pipeline's crops and the codec's targets).

    A model with random weights has flat heatmaps, where a 1e-7 difference between runtimes
    moves the maximum and DARK's Newton step by many pixels: comparing two runtimes' keypoints
    needs peaked heatmaps, as a trained model has. 40 steps were too few: every labelled
    keypoint scored under 0.3 and one moved 1.1 px between runtimes when the model's arithmetic
    changed in the last bits; after 150 the largest move measured 5e-4 px.
    """
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import DATASETS
    torch.manual_seed(seed)
    model = build_model(cfg)
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    pipeline = [s for s in ds_cfg.pipeline if s['type'] != 'PackPoseInputs']
    ds_cfg.pipeline = pipeline + [dict(type='GenerateTarget', encoder=cfg.model.head.decoder),
                                  dict(type='PackPoseInputs')]
    dataset = DATASETS.build(ds_cfg)
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]),
                                    True)
    model.eval()             # batch norm keeps its statistics: eval output is what is fitted
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = sum(model.loss(batch['inputs'], batch['data_samples']).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, path)
    return path


@pytest.fixture(scope='session')
def res18_onnx(tmp_path_factory, mini_coco):
    """The synth PSA ResNet-18 (DARK codec, flip test) at 96x64, fitted to the mini COCO
    people, and exported: (its config with the mini COCO test set, checkpoint, ONNX file)."""
    from psa_pose.config import set_input_shape
    from psa_pose.deploy.export import check_data_options, export_onnx
    folder = tmp_path_factory.mktemp('res18_onnx')
    ann = os.path.join(mini_coco, 'test_coco.json')
    cfg = load_config(RES18_PSA, check_data_options(ann))
    set_input_shape(cfg, (96, 64))
    ckpt = fitted_checkpoint(cfg, str(folder / 'model.pth'))
    out = str(folder / 'model.onnx')
    export_onnx(RES18_PSA, ckpt, out, input_shape=(96, 64), check_ann=ann)
    return cfg, ckpt, out


RTMPOSE_PSA = os.path.join(SYNTH, 'rtmpose-t-psa-p_1xb16-80e_synth-128x96.py')


@pytest.fixture(scope='session')
def rtmpose_onnx(tmp_path_factory, mini_coco):
    """The synth RTMPose-t + PSA (SimCC head, flip test) at its 128x96, fitted to the mini COCO
    people and exported by scripts/export_onnx.py: (its config with the mini COCO test set,
    checkpoint, ONNX file); the script's output is in ``export.out`` beside them."""
    import sys
    from psa_pose.deploy.export import check_data_options
    from tests.conftest import run_script
    folder = tmp_path_factory.mktemp('rtmpose_onnx')
    ann = os.path.join(mini_coco, 'test_coco.json')
    cfg = load_config(RTMPOSE_PSA, check_data_options(ann))
    ckpt = fitted_checkpoint(cfg, str(folder / 'model.pth'))
    out = str(folder / 'model.onnx')
    run = run_script(sys.executable, os.path.join(REPO, 'scripts', 'export_onnx.py'),
                     RTMPOSE_PSA, ckpt, '--out', out, '--check-ann', ann, cwd=folder)
    (folder / 'export.out').write_text(run.stdout)
    return cfg, ckpt, out
