# The tiny baseline made narrower and longer for the interruption tests (tests/tools/
# test_interruption.py): a quarter of ResNet-18's widths (fast Adam steps, small checkpoints),
# 3 epochs of 6 iterations, the flip augmentation still on (the resume test is about its random
# state), validation only at the end, and the test-only fault hook (inert unless a PSA_FAULT_*
# variable is set).
_base_ = './td-hm_res18_1xb2-2e_minicoco-128x96.py'

custom_imports = dict(imports=['psa_pose', 'tests.tools.faults'], allow_failed_imports=False)

model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    head=dict(in_channels=128, deconv_out_channels=(32, 32, 32)))
train_cfg = dict(max_epochs=3, val_interval=3)
custom_hooks = [dict(type='SyncBuffersHook'), dict(type='FaultInjectionHook'),
                dict(type='FaultBeforeBestHook')]
