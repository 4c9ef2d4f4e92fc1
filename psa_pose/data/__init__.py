"""Data utilities: a synthetic COCO person-keypoint dataset generator (``psa_pose.data.synth``).

The generator is not imported here so that ``python -m psa_pose.data.synth`` runs the module
once, without runpy's "found in sys.modules" warning.
"""
