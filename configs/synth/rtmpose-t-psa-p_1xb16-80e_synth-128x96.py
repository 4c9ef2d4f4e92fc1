# The synthetic-data RTMPose-t + PSA (parallel, paper formulation) after the 3x3 conv of every
# CSPNeXt block (WithPSA, docs/plugin.md); only the backbone changed.
_base_ = './rtmpose-t_1xb16-80e_synth-128x96.py'

custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='WithPSA', backbone={{_base_.model.backbone}},
                  psa_cfg=dict(mode='p', formulation='paper')))
