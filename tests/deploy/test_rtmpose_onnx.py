"""RTMPose + PSA (mmdet's CSPNeXt in WithPSA, SimCC head) exports to ONNX as the PSA heatmap
models do (torch.onnx dynamo, dynamic batch) and onnxruntime equals PyTorch within the export
tool's tolerance; scripts/export_onnx.py writes it with SimCC metadata, which onnx_infer decodes
(its keypoints against inference_topdown: tests/deploy/test_onnx_infer.py)."""
import json
import os

import numpy as np
import pytest
import torch

from psa_pose.config import TensorForward, build_model, config_files, load_config
from psa_pose.config import set_input_shape
from psa_pose.deploy.export import DEFAULT_OPSET, TOLERANCE
from psa_pose.utils import UserError
from tests.deploy.conftest import RTMPOSE_PSA


@pytest.mark.slow       # about 75 s on 2 loaded CPU cores
def test_rtmpose_psa_exports_and_onnxruntime_equals_pytorch():
    import onnx
    import onnxruntime as ort
    cfg = load_config(config_files()['rtmpose-t-psa-p_8xb256-420e_coco-256x192'])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert len(model.backbone.psa_block_names()) == 4
    graph = TensorForward(model).eval()
    with torch.no_grad():
        program = torch.onnx.export(
            graph, (torch.rand(2, 3, 256, 192), ), None, dynamo=True,
            opset_version=DEFAULT_OPSET, input_names=['input'],
            output_names=['simcc_x', 'simcc_y'],
            dynamic_shapes=({0: torch.export.Dim('batch', min=1)}, ), verbose=False)
    onnx.checker.check_model(program.model_proto, full_check=True)
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    inputs = torch.rand(3, 3, 256, 192)             # another batch size than the example's
    got = session.run(None, {'input': inputs.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in graph(inputs)]
    assert [g.shape for g in got] == [(3, 17, 384), (3, 17, 512)]   # SimCC bins: 2 x 192, 2 x 256
    assert [w.shape for w in want] == [g.shape for g in got]
    assert max(float(np.abs(g - w).max()) for g, w in zip(got, want)) <= TOLERANCE


@pytest.mark.slow           # rtmpose_onnx fits a model and exports it
def test_export_script_writes_simcc_outputs_and_metadata(rtmpose_onnx):
    import onnx
    _, _, onnx_file = rtmpose_onnx
    printed = open(os.path.join(os.path.dirname(onnx_file), 'export.out')).read()
    assert 'max |onnxruntime - pytorch| = ' in printed
    assert ' on the SimCC vectors of 8 crops of ' in printed
    model = onnx.load(onnx_file)
    dims = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
            for o in model.graph.output}
    assert dims == {'simcc_x': ['batch', 17, 192], 'simcc_y': ['batch', 17, 256]}
    meta = json.loads({p.key: p.value for p in model.metadata_props}['psa_pose'])
    assert meta['codec'] == {'type': 'SimCCLabel', 'simcc_split_ratio': 2.0, 'use_dark': False,
                             'decode_visibility': False}
    assert (meta['input_size'], meta['flip_test'], 'heatmap_size' in meta) == ([96, 128], True,
                                                                              False)


def test_input_shape_sizes_the_simcc_head():
    cfg = load_config(RTMPOSE_PSA)
    set_input_shape(cfg, (256, 192))
    assert cfg.model.head.decoder['input_size'] == cfg.model.head.input_size == (192, 256)
    assert cfg.model.head.in_featuremap_size == (6, 8)
    assert [s['input_size'] for s in cfg.test_dataloader.dataset.pipeline
            if s['type'] == 'TopdownAffine'] == [(192, 256)]
    with pytest.raises(UserError) as e:
        set_input_shape(cfg, (100, 96))
    assert str(e.value) == ("--input-shape 100 96: the SimCC head flattens the backbone's "
                            "stride-32 features; use a multiple of 32 x 32 (H x W)")
