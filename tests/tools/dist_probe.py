"""Test-only probes of distributed runs (tests/tools/test_distributed.py).

* ``DumpStateHook`` (listed in the test's config): after the run, every rank writes its model's
  state dict to ``$PSA_DUMP_STATE/rank<R>.pth``; inert when the variable is not set.
* Run as a script under torchrun (``python -m torch.distributed.run --nproc_per_node 2
  tests/tools/dist_probe.py CONFIG OUT``): one training step's gradients of the config's model
  wrapped in mmengine's ``MMDistributedDataParallel`` (the wrapper ``build_runner`` configures
  on CPU), each rank on its half of a batch, and those of an unwrapped copy on the whole batch
  in the same process; every rank writes both to ``OUT/grads<R>.pth``.
"""
import copy
import os
import sys

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS


@HOOKS.register_module()
class DumpStateHook(Hook):
    """Each rank's final state dict, for comparing ranks (see the module docstring)."""

    priority = 'LOWEST'

    def after_run(self, runner) -> None:
        out = os.environ.get('PSA_DUMP_STATE')
        if not out:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        os.makedirs(out, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(out, f'rank{get_rank()}.pth'))


def _grads(model) -> dict:
    return {name: p.grad.clone() if p.grad is not None else None
            for name, p in model.named_parameters()}


def gradient_probe(config: str, out: str) -> None:
    """See the module docstring. Batch norm runs in eval mode (``norm_eval=True`` and the
    head's norms in eval), so that each rank's half batch meets the same normalisation as the
    whole batch; everything else, PSA's training path included, is in training mode."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.modules.batchnorm import _BatchNorm

    import psa_pose  # noqa: F401  (registers PSA)
    from psa_pose.config import build_model, input_hw, load_config
    from psa_pose.engine.runner import init_distributed

    cfg = load_config(config, {'model.backbone.norm_eval': True})
    cfg.launcher = 'pytorch'
    assert init_distributed(cfg) is not None, 'the probe is for CPU processes (gloo)'
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()

    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
    reference = copy.deepcopy(model)
    ddp = MODEL_WRAPPERS.build(cfg.model_wrapper_cfg, default_args=dict(module=model))

    h, w = input_hw(cfg)
    generator = torch.Generator().manual_seed(1)
    per_rank = 2
    inputs = torch.randn(per_rank * world, 3, h, w, generator=generator)
    hm_w, hm_h = cfg.codec['heatmap_size']
    targets = torch.rand(per_rank * world, cfg.model.head.out_channels, hm_h, hm_w,
                         generator=generator)

    def loss(net, x, y):
        return ((net(x, None, mode='tensor') - y) ** 2).mean()

    part = slice(rank * per_rank, (rank + 1) * per_rank)
    loss(ddp, inputs[part], targets[part]).backward()     # DDP averages over the ranks
    loss(reference, inputs, targets).backward()
    torch.save({'ddp': _grads(model), 'single': _grads(reference), 'world_size': world},
               os.path.join(out, f'grads{rank}.pth'))
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    gradient_probe(sys.argv[1], sys.argv[2])
