# Baseline: mmpose's td-hm_hrnet-w32_8xb64-210e_coco-384x288, unchanged
# (HRNet-W32, 384x288).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-384x288.py'
