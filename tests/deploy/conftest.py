import copy
import os

import pytest
import torch

from psa_pose import zoo
from tests.conftest import REPO

SYNTH = os.path.join(REPO, 'configs', 'synth')
RES18_PSA = os.path.join(SYNTH, 'td-hm_res18-psa-p_dark-1xb16-24e_synth-128x96.py')


def fitted_checkpoint(config: str, ann_file: str, path: str, options=None, steps: int = 40,
                      seed: int = 0) -> str:
    """A checkpoint of ``config``'s model fitted for a few Adam steps to the people of
    ``ann_file`` (the test pipeline's crops and the codec's targets).

    A model with random weights has flat heatmaps, where a 1e-7 difference between runtimes
    moves the maximum and DARK's Newton step by many pixels: comparing two runtimes' keypoints
    needs peaked heatmaps, as a trained model has.
    """
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import DATASETS
    from psa_pose.tools.export_onnx import check_data_options
    torch.manual_seed(seed)
    cfg = zoo.load_config(config, {**(options or {}), **check_data_options(ann_file)})
    model = zoo.build_model(cfg)
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    pipeline = [s for s in ds_cfg.pipeline if s['type'] != 'PackPoseInputs']
    ds_cfg.pipeline = pipeline + [dict(type='GenerateTarget', encoder=cfg.codec),
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
    """The synth PSA ResNet-18 (DARK codec, flip test) fitted to the mini COCO people, and
    exported."""
    from psa_pose.tools.export_onnx import export_onnx
    folder = tmp_path_factory.mktemp('res18_onnx')
    ann = os.path.join(mini_coco, 'test_coco.json')
    ckpt = fitted_checkpoint(RES18_PSA, ann, str(folder / 'model.pth'))
    out = str(folder / 'model.onnx')
    export_onnx(RES18_PSA, ckpt, out, check_ann=ann)
    return RES18_PSA, ckpt, out
