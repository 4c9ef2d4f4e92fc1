# The narrow synthetic-data HRNet + PSA (parallel, paper formulation) after the first 3x3 conv of
# every residual block; only the backbone changed.
_base_ = './td-hm_hrnet-w16_dark-1xb16-24e_synth-128x96.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(backbone=dict(type='PSAHRNet', psa_cfg=dict(mode='p', formulation='paper')))
