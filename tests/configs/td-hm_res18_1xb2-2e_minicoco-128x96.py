# Tiny ResNet-18 SimpleBaseline on 4 generated COCO-format images (GT boxes), for the
# end-to-end tests of the scripts: our ResNet-50 baseline config with only sizes, schedule and
# data changed. The data root is $PSA_POSE_TINY_COCO, which tests/conftest.py generates (any
# folder with the images and test_coco.json beside them works, e.g. mmpose's tests/data/coco/).
_base_ = '../../configs/resnet/td-hm_res50_8xb64-210e_coco-256x192.py'

data_root = '{{$PSA_POSE_TINY_COCO:data/tiny-coco}}/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    head=dict(in_channels=512, decoder=codec))
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
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
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='test_coco.json', data_prefix=dict(img=''),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='test_coco.json', bbox_file=None,
                 data_prefix=dict(img=''), pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'test_coco.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=1)
param_scheduler = [dict(type='LinearLR', begin=0, end=2, start_factor=0.1, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
randomness = dict(seed=0)
