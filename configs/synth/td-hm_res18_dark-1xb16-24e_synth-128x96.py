# SimpleBaseline ResNet-18 on the generated dataset (python -m psa_pose.data.synth), small
# enough to train on a CPU in minutes (scripts/quickstart.sh): mmpose's ResNet-50 DARK COCO config
# with only sizes (depth 18, 128-channel deconvs, 128x96 input), schedule and data changed.
_base_ = './_base_/synth-128x96.py'

# from scratch: ImageNet weights cannot be downloaded everywhere, and the data is not natural
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    head=dict(in_channels=512, deconv_out_channels=(128, 128, 128)))
