"""psa_pose.engine.run: the one-line reports of a failed run."""
import pytest

from psa_pose.engine import run


@pytest.mark.parametrize('nodes,wanted', [
    ([1], 'error: the worker on node rank 1 was lost (Connection closed by peer); training '
          'stopped\n'),
    ([1, 2], 'error: the workers on node ranks 1, 2 were lost (Connection closed by peer); '
             'training stopped\n'),
    ([], 'error: a worker was lost (Connection closed by peer); training stopped\n')])
def test_worker_lost_names_the_lost_node_ranks(monkeypatch, capsys, nodes, wanted):
    monkeypatch.setattr(run, 'lost_nodes', lambda: (nodes, True))
    error = RuntimeError('[../gloo/transport/tcp/pair.cc:534] Connection closed by peer. More')
    assert run.worker_lost(error, 'training stopped') == 2
    assert capsys.readouterr().err == wanted


def test_worker_lost_is_said_once_a_node(monkeypatch, capsys):
    monkeypatch.setattr(run, 'lost_nodes', lambda: ([1], False))
    assert run.worker_lost(RuntimeError('gone'), 'training stopped') == 2
    assert capsys.readouterr().err == ''
