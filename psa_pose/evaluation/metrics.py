"""COCO keypoint metric names, in one place, and mmpose's names for them."""
from typing import Dict

# COCOeval's ``stats``, in its order (iouType 'keypoints')
COCO_STATS = ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL')
# the six the paper's tables and the model zoo report
REPORTED = ('AP', 'AP50', 'AP75', 'APM', 'APL', 'AR')

# mmpose's CocoMetric names (after the 'coco/' prefix) -> the names used here
MMPOSE_NAMES = {'AP': 'AP', 'AP .5': 'AP50', 'AP .75': 'AP75', 'AP (M)': 'APM', 'AP (L)': 'APL',
                'AR': 'AR', 'AR .5': 'AR50', 'AR .75': 'AR75', 'AR (M)': 'ARM', 'AR (L)': 'ARL'}


def normalize_metrics(metrics: Dict) -> Dict[str, float]:
    """``{'coco/AP .5': x, ...}`` (mmpose) or ``{'AP50': x, ...}`` -> ``{'AP50': x, ...}``."""
    out = {}
    for key, value in metrics.items():
        name = key.split('/', 1)[-1]
        name = MMPOSE_NAMES.get(name, name)
        if name in COCO_STATS and isinstance(value, (int, float)):
            out[name] = float(value)
    return out
