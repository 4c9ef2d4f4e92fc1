# A narrow HRNet (width 16, one module in stages 3 and 4, two blocks per branch) on the generated
# dataset (python -m psa_pose.data.synth), small enough to train on a CPU: mmpose's HRNet-W32 DARK
# COCO config with only sizes, schedule and data changed. mmpose's HRNet and ResNet DARK configs
# differ only in `model`, so the shared settings come from ./_base_/synth-128x96.py and the
# backbone is mmpose's HRNet-W32 one with the widths and depths scaled down.
_base_ = './_base_/synth-128x96.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(2, ),
                        num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(2, 2),
                        num_channels=(16, 32)),
            stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(2, 2, 2),
                        num_channels=(16, 32, 64)),
            stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(2, 2, 2, 2),
                        num_channels=(16, 32, 64, 128))),
        init_cfg=None),   # from scratch, as the ResNet-18 twin
    head=dict(in_channels=16, deconv_out_channels=None))
