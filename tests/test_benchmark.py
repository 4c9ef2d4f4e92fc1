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
