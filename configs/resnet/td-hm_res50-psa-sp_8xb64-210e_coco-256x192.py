# ResNet-50, 256x192 + PSA ablation (spatial-only branch, A_sp(X)*X; paper formulation):
# mmpose's td-hm_res50_8xb64-210e_coco-256x192 with only the backbone changed.
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='PSAResNet', psa_cfg=dict(mode='sp', formulation='paper')))
