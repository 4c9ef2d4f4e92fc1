from .hrnet import PSAHRNet
from .plugin import REFUSED, WithPSA, add_psa_to
from .resnet import PSAResNet

# mmpose backbone type -> its PSA subclass
PSA_BACKBONES = {'HRNet': 'PSAHRNet', 'ResNet': 'PSAResNet'}

__all__ = ['PSAHRNet', 'PSAResNet', 'PSA_BACKBONES', 'REFUSED', 'WithPSA', 'add_psa_to']
