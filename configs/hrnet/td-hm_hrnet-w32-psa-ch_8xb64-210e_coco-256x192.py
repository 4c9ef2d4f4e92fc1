# HRNet-W32, 256x192 + PSA ablation (channel-only branch, A_ch(X)*X; paper formulation):
# mmpose's td-hm_hrnet-w32_8xb64-210e_coco-256x192 with only the backbone changed.
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='PSAHRNet', psa_cfg=dict(mode='ch', formulation='paper')))
