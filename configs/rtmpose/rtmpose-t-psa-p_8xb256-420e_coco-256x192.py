# RTMPose-t, COCO 256x192 + PSA (parallel, paper formulation):
# mmpose's rtmpose-t_8xb256-420e_coco-256x192 with only the backbone wrapped by WithPSA
# (its CSPNeXt config, mmdet scope and pretrained init kept; one PSA per CSPNeXtBlock;
# docs/plugin.md says where each PSA goes).
_base_ = 'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='WithPSA', backbone={{_base_.model.backbone}},
                  psa_cfg=dict(mode='p', formulation='paper')))
