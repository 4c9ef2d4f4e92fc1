from .hrnet import PSAHRNet
from .resnet import PSAResNet

__all__ = ['PSAHRNet', 'PSAResNet']
