"""Other COCO evaluation libraries against pycocotools, number by number (psa_pose.evaluation
.backends): what docs/install.md's timings table claims."""
import pytest

from psa_pose.evaluation import backends


@pytest.mark.parametrize('backend', ['xtcocotools', 'faster-coco-eval', 'hotcoco'])
def test_stats_are_bit_identical_to_pycocotools_on_generated_sets(backend):
    if backends.available(backend):
        pytest.skip(backends.available(backend))
    rows = backends.compare(300, 360, seeds=[0, 1, 2], backends=[backend])
    assert [r['seed'] for r in rows] == [0, 1, 2]
    assert all(0.3 < r['AP'] < 0.9 for r in rows)
    assert [r['stats_identical'] for r in rows] == [True] * 3
    # what the bootstrap could start from: hotcoco exposes pycocotools' per-image matches,
    # faster-coco-eval none; xtcocotools' differ in layout
    want = {'hotcoco': True, 'faster-coco-eval': None, 'xtcocotools': False}[backend]
    assert [r['per_image_identical'] for r in rows] == [want] * 3
