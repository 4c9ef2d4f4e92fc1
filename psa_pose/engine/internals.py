"""The private parts of mmengine that the training hooks rely on, each behind one function.

mmengine exposes no public way to read a Runner's randomness settings, to ask whether it was
built for training, or to have an epoch loop recompute its validation interval, and its
``CheckpointHook`` saves through two protected methods that :class:`AtomicCheckpointHook`
overrides. They live here, and ``tests/engine/test_internals.py`` fails loudly (naming the
attribute) when an mmengine release renames or moves one of them.
"""
from typing import Any, Dict

# CheckpointHook's protected methods AtomicCheckpointHook overrides, with their parameters
CHECKPOINT_HOOK_OVERRIDES = {
    '_save_checkpoint_with_step': ('self', 'runner', 'step', 'meta'),
    '_save_best_checkpoint': ('self', 'runner', 'metrics'),
}


def randomness_cfg(runner: Any) -> Dict[str, Any]:
    """The ``randomness`` settings the Runner was built with (``Runner._randomness_cfg``)."""
    return runner._randomness_cfg


def built_for_training(runner: Any) -> bool:
    """Whether the Runner has a train loop (``Runner._train_loop``: None or a config dict
    until ``runner.train()`` builds it), i.e. a validation is part of a training."""
    loop = getattr(runner, '_train_loop', None)
    return loop is not None and not isinstance(loop, dict)


def update_val_interval(loop: Any) -> None:
    """Let an ``EpochBasedTrainLoop`` set ``val_interval`` for its current epoch (from its
    dynamic intervals), as it does itself before each epoch
    (``_decide_current_val_interval``)."""
    loop._decide_current_val_interval()


def process_group_store() -> Any:
    """The store the default process group was started with (torch's
    ``distributed_c10d._get_default_store``: torchrun's agent store, or the one rank 0 of a
    Slurm run hosts), which :func:`~.runner.lost_nodes` uses to call the roll after a
    collective failed."""
    from torch.distributed import distributed_c10d
    return distributed_c10d._get_default_store()
