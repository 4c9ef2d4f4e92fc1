# Baseline: mmpose's td-hm_res101_8xb64-210e_coco-256x192, unchanged
# (ResNet-101 (SimpleBaseline), 256x192).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res101_8xb64-210e_coco-256x192.py'
