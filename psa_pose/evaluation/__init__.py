"""Evaluation: COCO keypoint AP, the paired bootstrap over images, comparisons and diagnosis."""
