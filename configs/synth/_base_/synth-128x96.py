# What the synthetic-data configs share: mmpose's COCO top-down heatmap settings with DARK's
# unbiased targets and decoding (its ResNet-50 DARK config; mmpose's HRNet DARK configs differ
# from it only in `model`) with the schedule (24 epochs, batch 16), the input size (128x96) and
# the data (paths, lighter augmentation for a short schedule) changed for the generated dataset
# (python -m psa_pose.data.synth).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_dark-8xb64-210e_coco-256x192.py'

data_root = '{{ fileDirname }}/../../../data/synth/'
max_epochs = 24

# schedule: a short warm-up and a cosine decay fit 24 epochs better than 210 epochs' steps
train_cfg = dict(max_epochs=max_epochs, val_interval=8)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=30, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-5,
         by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)

codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2,
             unbiased=True)
model = dict(head=dict(decoder=codec))

# data: GT boxes on val (the generated set has no detector), half-body crops and large
# rotations off (they slow a 24-epoch schedule down more than they help it)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', rotate_factor=30.0, scale_factor=(0.8, 1.2)),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(
    batch_size=16, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val2017.json')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=8, max_keep_ckpts=1))
randomness = dict(seed=0)
