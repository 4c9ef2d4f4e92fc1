# The tiny baseline with only the backbone changed: parallel PSA, paper formulation.
_base_ = './td-hm_res18_1xb2-2e_minicoco-128x96.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(backbone=dict(type='PSAResNet', psa_cfg=dict(mode='p', formulation='paper')))
