# Baseline: mmpose's td-hm_hrnet-w48_udp-8xb32-210e_coco-256x192, unchanged
# (HRNet-W48 with UDP, 256x192).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_udp-8xb32-210e_coco-256x192.py'
