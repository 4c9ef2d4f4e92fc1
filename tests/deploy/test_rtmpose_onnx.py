"""RTMPose + PSA (mmdet's CSPNeXt in WithPSA, SimCC head) exports to ONNX as the PSA heatmap
models do (torch.onnx dynamo, dynamic batch) and onnxruntime equals PyTorch within the export
tool's tolerance. scripts/export_onnx.py itself writes heatmap models only (its runtime metadata
and onnx_infer's decoding are heatmap codecs')."""
import numpy as np
import pytest
import torch

from psa_pose.config import TensorForward, build_model, config_files, load_config
from psa_pose.deploy.export import DEFAULT_OPSET, TOLERANCE


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
