"""torch.compile: the PSA backbones trace as one graph, and compiled equals eager."""
import pytest
import torch
from torch._dynamo.utils import counters

from psa_pose.models import PolarizedSelfAttention, PSAResNet
from psa_pose.models.compile import compile_tensor_path
from tests.conftest import build_pose_model

MODES = [('p', 'paper'), ('s', 'official'), ('ch', 'paper'), ('sp', 'official')]


def _graphs_and_breaks(fn, *args):
    torch._dynamo.reset()
    counters.clear()
    out = torch.compile(fn, backend='eager')(*args)
    return out, counters['stats']['unique_graphs'], sum(counters['graph_break'].values())


@pytest.mark.slow
@pytest.mark.parametrize('mode,formulation', MODES)
def test_psa_backbone_training_forward_is_one_graph(mode, formulation):
    """No graph breaks in training (where the eager path keeps recompute recipes) nor in
    inference, and the traced forward equals the eager one exactly."""
    torch.manual_seed(0)
    model = PSAResNet(depth=18, psa_cfg=dict(mode=mode, formulation=formulation))
    x = torch.rand(2, 3, 64, 64)
    for train in (True, False):
        model.train(train)
        with torch.set_grad_enabled(train):
            out, graphs, breaks = _graphs_and_breaks(model, x)
            ref = model(x)
        assert (graphs, breaks) == (1, 0)
        assert all(torch.equal(a, b) for a, b in zip(out, ref))


@pytest.mark.slow
@pytest.mark.parametrize('mode,formulation', [('p', 'paper'), ('s', 'official')])
def test_inductor_block_equals_eager_in_values_and_gradients(mode, formulation):
    torch.manual_seed(0)
    block = PolarizedSelfAttention(32, mode, formulation)
    x = torch.randn(2, 32, 16, 12)
    grad = torch.randn_like(x)
    results = []
    for fn in (block, torch.compile(block)):
        block.zero_grad()
        xg = x.clone().requires_grad_()
        out = fn(xg)
        out.backward(grad)
        results.append([out, xg.grad] + [p.grad.clone() for p in block.parameters()])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compiled_pose_model_equals_eager():
    """compile_tensor_path (what test.py --compile does): the same heatmaps within 1e-5 and
    the same state dict keys."""
    torch.manual_seed(0)
    model = build_pose_model('td-hm_res50_8xb64-210e_coco-256x192',
                             psa_cfg=dict(mode='p', formulation='paper'))
    model.eval()
    keys = list(model.state_dict())
    x = torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        ref = model(x, None, mode='tensor')
        compile_tensor_path(model)
        out = model(x, None, mode='tensor')
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
