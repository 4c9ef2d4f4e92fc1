# ResNeXt-50 SimpleBaseline, COCO 256x192 + PSA (parallel, paper formulation):
# mmpose's td-hm_resnext50_8xb64-210e_coco-256x192 with only the backbone wrapped by WithPSA
# (its ResNeXt-50 config and ImageNet init kept; one PSA per bottleneck;
# docs/plugin.md says where each PSA goes).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_resnext50_8xb64-210e_coco-256x192.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='WithPSA', backbone={{_base_.model.backbone}},
                  psa_cfg=dict(mode='p', formulation='paper')))
