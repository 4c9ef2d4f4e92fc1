"""The private mmengine API the hooks use (psa_pose/engine/internals.py) is still there: each
test names the attribute that an mmengine release moved, so the failure says what to fix."""
import inspect

from mmengine.hooks import CheckpointHook
from mmengine.runner import EpochBasedTrainLoop, Runner

from psa_pose.engine import internals
from psa_pose.engine.hooks import AtomicCheckpointHook


def test_checkpoint_hook_still_saves_through_the_overridden_methods():
    for name, params in internals.CHECKPOINT_HOOK_OVERRIDES.items():
        method = getattr(CheckpointHook, name, None)
        assert method is not None, f'mmengine.hooks.CheckpointHook.{name} is gone'
        assert tuple(inspect.signature(method).parameters) == params, name
        assert name in inspect.getsource(CheckpointHook), name     # still called by mmengine
        assert name in AtomicCheckpointHook.__dict__, name         # and still overridden here


def test_runner_keeps_its_randomness_and_train_loop_where_we_read_them():
    source = inspect.getsource(Runner.__init__)
    for attribute in ('self._randomness_cfg', 'self._train_loop'):
        assert attribute in source, f'mmengine.runner.Runner no longer sets {attribute}'


def test_the_helpers_read_those_attributes():
    class FakeRunner:
        _randomness_cfg = {'seed': 3, 'diff_rank_seed': True}
        _train_loop = dict(type='EpochBasedTrainLoop')
    runner = FakeRunner()
    assert internals.randomness_cfg(runner) == {'seed': 3, 'diff_rank_seed': True}
    assert not internals.built_for_training(runner)             # a config: not built yet
    runner._train_loop = object()
    assert internals.built_for_training(runner)


def test_epoch_loop_recomputes_its_validation_interval():
    method = getattr(EpochBasedTrainLoop, '_decide_current_val_interval', None)
    assert method is not None, \
        'mmengine.runner.EpochBasedTrainLoop._decide_current_val_interval is gone'

    class Loop:
        _decide_current_val_interval = method
        dynamic_milestones, dynamic_intervals, _epoch = [0, 2], [1, 3], 2
        val_interval = 1

        @property
        def epoch(self):
            return self._epoch
    loop = Loop()
    internals.update_val_interval(loop)
    assert loop.val_interval == 3


def test_the_process_group_store_is_where_the_roll_call_reads_it(tmp_path):
    """``internals.process_group_store`` (torch's ``distributed_c10d._get_default_store``),
    which a lost worker's survivors use (``runner.lost_nodes``), in a one-process gloo group."""
    import torch.distributed as dist
    from torch.distributed import distributed_c10d
    assert hasattr(distributed_c10d, '_get_default_store'), \
        'torch.distributed.distributed_c10d._get_default_store is gone'
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    try:
        internals.process_group_store().set('psa_pose/node/0', '3')
        assert internals.process_group_store().get('psa_pose/node/0') == b'3'
    finally:
        dist.destroy_process_group()
