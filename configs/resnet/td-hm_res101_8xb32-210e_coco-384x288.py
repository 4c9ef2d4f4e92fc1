# Baseline: mmpose's td-hm_res101_8xb32-210e_coco-384x288, unchanged
# (ResNet-101 (SimpleBaseline), 384x288).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res101_8xb32-210e_coco-384x288.py'
