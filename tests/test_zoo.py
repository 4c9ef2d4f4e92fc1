"""Publishing a trained model adds it to the results file and both generated pages."""
import shutil

import yaml

from psa_pose import zoo


def test_add_trained_updates_results_and_pages(tmp_path, monkeypatch):
    for name in ('RESULTS_FILE', 'ZOO_README', 'METAFILE'):
        copy = tmp_path / getattr(zoo, name).rsplit('/', 1)[-1]
        shutil.copy(getattr(zoo, name), copy)
        monkeypatch.setattr(zoo, name, str(copy))
    config = 'td-hm_hrnet-w32-psa-p_8xb64-210e_coco-256x192'
    zoo.add_trained(config, {'AP': 0.77123, 'AP50': 0.93, 'AR': 0.8, 'ARL': 0.9},
                    checkpoint='https://example.org/w32-psa-p-1a2b3c4d_20261126.pth',
                    log='https://example.org/w32.log')
    results = zoo.read_results()
    assert results[config]['trained'] == {
        'AP': 0.7712, 'AP50': 0.93, 'AR': 0.8,
        'checkpoint': 'https://example.org/w32-psa-p-1a2b3c4d_20261126.pth',
        'log': 'https://example.org/w32.log'}
    readme = (tmp_path / 'README.md').read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f'| [{config}]'))
    assert '| 0.771 | [ckpt](https://example.org/w32-psa-p-1a2b3c4d_20261126.pth) | ' \
           '[log](https://example.org/w32.log) |' in row
    meta = yaml.safe_load((tmp_path / 'metafile.yml').read_text())
    entry = next(m for m in meta['Models'] if m['Name'] == config)
    assert entry['Results'][0]['Metrics'] == {'AP': 0.7712, 'AP50': 0.93, 'AR': 0.8}
    assert entry['Weights'].endswith('1a2b3c4d_20261126.pth')
    assert zoo.stale_pages(results) == []
