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


def _full_size_saved(with_psa: bool):
    """Names of the distinct full-size tensors (views resolved to their base) that the
    compiled forward of conv -> BN -> ReLU -> [fast PSA] -> conv saves for backward, with
    AOTAutograd's min-cut partitioner (the one inductor uses)."""
    from torch._functorch.aot_autograd import aot_module_simplified
    from torch._functorch.partitioners import min_cut_rematerialization_partition
    torch.manual_seed(0)
    psa = PolarizedSelfAttention(16, 'p', 'paper') if with_psa else torch.nn.Identity()
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
                              torch.nn.ReLU(), psa, torch.nn.Conv2d(16, 16, 3, padding=1))
    x = torch.randn(2, 8, 12, 10)
    full = 2 * 16 * 12 * 10
    saved = set()

    def base(node):                     # through views (ops whose result aliases an input)
        while node.op == 'call_function' and isinstance(node.target, torch._ops.OpOverload) \
                and node.target._schema.returns \
                and node.target._schema.returns[0].alias_info is not None:
            node = node.args[0]
        return node.name

    def forward_compiler(gm, _):
        outputs, = (n.args[0] for n in gm.graph.nodes if n.op == 'output')
        for node in outputs:
            val = getattr(node, 'meta', {}).get('val')
            if isinstance(val, torch.Tensor) and val.numel() == full:
                saved.add(base(node))
        return gm

    def backend(gm, inputs):
        return aot_module_simplified(gm, inputs, fw_compiler=forward_compiler,
                                     bw_compiler=lambda gm, _: gm,
                                     partition_fn=min_cut_rematerialization_partition)

    torch._dynamo.reset()
    torch.compile(lambda t: net(t).square().mean(), backend=backend)(x).backward()
    return saved


def test_compiled_training_does_not_keep_the_psa_output():
    """What recompute_psa_outputs does in eager mode, compiled: the fast block's output is
    recomputed for the next conv's backward, so PSA adds no full-size saved tensor (its input
    is the ReLU output the baseline saves anyway; the first forward output is the loss)."""
    base, psa = _full_size_saved(False), _full_size_saved(True)
    assert len(base) == 3, base                    # conv out (BN), ReLU out (conv2), conv2 out
    assert len(psa) == len(base), (base, psa)
