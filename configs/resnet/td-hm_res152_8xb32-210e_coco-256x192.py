# Baseline: mmpose's td-hm_res152_8xb32-210e_coco-256x192, unchanged
# (ResNet-152 (SimpleBaseline), 256x192).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res152_8xb32-210e_coco-256x192.py'
