"""psa_pose.benchmark's clocks and memory replay: CUDA is never timed unsynchronised, and the
private profiler API it reads still says what it did."""
import pytest
import torch

from psa_pose import benchmark
from psa_pose.tools import benchmark as tool


def test_cpu_clock_refused_with_cuda(capsys, monkeypatch):
    """--device cuda --clock cpu: one line, exit 2, before anything is built or timed (so
    also where there is no GPU)."""
    monkeypatch.setattr(benchmark, 'benchmark_config', lambda *a: pytest.fail('measured'))
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['--device', 'cuda', '--clock', 'cpu', '--no-block'])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.splitlines() == [
        "error: --clock cpu counts this process's CPU time, which does not wait for the GPU, "
        "so it cannot time --device cuda; use --clock wall (CUDA is then timed after "
        "torch.cuda.synchronize())"]
    with pytest.raises(benchmark.UserError):
        benchmark.time_interleaved({'f': lambda: None}, 1, 0, 'x', 'cpu', 'cuda:1')


def test_cuda_is_timed_after_synchronising(monkeypatch):
    """On a CUDA device every clock reading waits for the GPU: two synchronisations around
    each timed call (torch.cuda.synchronize mocked: no GPU needed)."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda *a: calls.append('sync'))
    ran = []
    medians = benchmark.time_interleaved({'f': lambda: ran.append('f')}, repeats=3, warmup=1,
                                         label='x', clock='wall', device='cuda')
    # torch's Timer.timeit(1) runs the statement twice more untimed first, hence 1 + 3 * 3
    assert len(ran) == 1 + 3 * 3 and medians['f'] >= 0
    assert len(calls) >= 2 * 3
    assert benchmark.clock_for('cuda', 'wall') is benchmark.cuda_synchronised_clock
    assert benchmark.clock_for('cpu', 'cpu') is not benchmark.cuda_synchronised_clock


def test_allocation_events_reads_torchs_private_profiler():
    """torch._C._profiler's event tree still gives the allocations and frees of a step; if a
    torch release moves it, this fails here instead of the benchmark silently reporting no
    memory."""
    kept = []

    def step():
        a = torch.empty(1000, dtype=torch.float32)        # 4000 bytes, freed
        kept.append(torch.empty(250, dtype=torch.float64))   # 2000 bytes, kept
        del a

    events = benchmark.allocation_events(step)
    sizes = [size for _, size in events]
    assert 4000 in sizes and -4000 in sizes and 2000 in sizes
    assert -2000 not in sizes
    assert benchmark.replay_peak(events) >= 6000


def test_replay_peak_runs_the_events_in_time_order():
    events = [(3, -10), (1, 10), (2, 5), (4, 7), (5, -12)]
    assert benchmark.replay_peak(events) == 15
    assert benchmark.replay_peak([]) == 0


def test_every_config_is_paired_with_its_baseline():
    """A baseline gets the PSA twin this project's configs give it; a PSA config (PSAResNet or
    WithPSA) is paired with the backbone it changes, keeping its psa_stages."""
    cspnext = dict(_scope_='mmdet', type='CSPNeXt', deepen_factor=0.167)
    resnet = dict(type='ResNet', depth=18)
    stages = (True, False, True, True)
    assert benchmark.paired_backbones(resnet) == (resnet, {**resnet, 'type': 'PSAResNet'})
    assert benchmark.paired_backbones(cspnext) == (cspnext, dict(type='WithPSA',
                                                                 backbone=cspnext))
    psa_resnet = {**resnet, 'type': 'PSAResNet', 'psa_cfg': dict(mode='s'), 'psa_stages': stages}
    assert benchmark.paired_backbones(psa_resnet) == (resnet, psa_resnet)
    with_psa = dict(type='WithPSA', backbone=cspnext, psa_cfg=dict(mode='s'), psa_stages=stages)
    assert benchmark.paired_backbones(with_psa) == (cspnext, with_psa)


@pytest.mark.slow           # 8 s on 2 loaded cores: a quick benchmark of 3 models
def test_rtmpose_psa_config_benchmarks_against_its_baseline(capsys):
    """The synth RTMPose-t + PSA at a 64x64 input (its SimCC head sized for it): the baseline
    is the synth RTMPose-t's model, the PSA variants the PSA config's (4 PSA blocks, 99,000
    parameters)."""
    from psa_pose.config import build_model, count_params, load_config, set_input_shape
    from tests.conftest import REPO
    synth = f'{REPO}/configs/synth/rtmpose-t{{}}_1xb16-80e_synth-128x96.py'
    report = tool.main(['--configs', synth.format('-psa-p'), '--quick', '--no-block',
                        '--threads', '1', '--device', 'cpu'])
    model, = report['models']
    assert model['input_hw'] == [64, 64]
    params = {v: r['params'] for v, r in model['variants'].items()}
    wanted = []
    for tag in ('', '-psa-p'):
        cfg = load_config(synth.format(tag))
        set_input_shape(cfg, (64, 64))
        wanted.append(count_params(build_model(cfg)))
    assert params == {'baseline': wanted[0], 'psa_direct': wanted[1], 'psa_fast': wanted[1]}
    assert (params['baseline'], params['psa_fast']) == (3161903, 3260903)
    assert '| rtmpose-t-psa-p_1xb16-80e_synth-128x96 | psa_fast | 3.26 (1.03) |' in \
        capsys.readouterr().out
