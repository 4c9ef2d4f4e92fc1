# Baseline: mmpose's td-hm_hrnet-w48_8xb32-210e_coco-384x288, unchanged
# (HRNet-W48, 384x288).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-384x288.py'
