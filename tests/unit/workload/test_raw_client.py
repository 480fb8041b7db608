"""The raw-client ceiling run's command line (the measurement itself needs a broker: see bench load)."""

import pytest

from geo_recon.errors import GeoReconError
from geo_recon.workload import bench, raw_client


class _FakeProcess:
    """A raw client process that has already printed ``stdout`` and ``stderr`` and exited ``returncode``."""

    def __init__(self, argv, stdout: str, stderr: str = "", returncode: int = 0):
        self.argv, self.stdout, self.stderr, self.returncode = argv, stdout, stderr, returncode

    def communicate(self, timeout=None):
        return self.stdout, self.stderr

    def poll(self):
        return self.returncode


def _fake_runs(monkeypatch) -> dict:
    """Every run of the raw client prints 200 of 200 acknowledged in 2 s; the last command line is kept, and
    how many processes were started."""
    seen = {"started": 0}

    def fake_popen(argv, **_kw):
        seen["argv"], seen["started"] = argv, seen["started"] + 1
        return _FakeProcess(argv, '{"sent": 200, "acked": 200, "failed": 0, "seconds": 2.0, "rate": 100.0}\n')

    monkeypatch.setattr(bench.subprocess, "Popen", fake_popen)
    return seen


def test_usage_error_exits_2(capsys):
    assert raw_client.main(["only-one"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_python_client_rate_runs_in_the_region_namespace(monkeypatch):
    seen = _fake_runs(monkeypatch)
    fig = bench.python_client_rate("pulsar://198.18.0.10:6650", "persistent://t/n/x", seconds=2, size=100,
                                   netns="gr-lab-a")
    assert seen["argv"][:4] == ["ip", "netns", "exec", "gr-lab-a"]
    assert seen["argv"][-4:] == ["pulsar://198.18.0.10:6650", "persistent://t/n/x", "2", "100"]
    assert fig.achieved_rate == 100.0 and fig.acked == 200


def test_python_client_rate_without_figures_is_an_error(monkeypatch):
    monkeypatch.setattr(bench.subprocess, "Popen", lambda argv, **_kw: _FakeProcess(argv, "", "ConnectError: refused", 1))
    with pytest.raises(GeoReconError, match="ConnectError"):
        bench.python_client_rate("pulsar://x:1", "t", seconds=1, size=1, netns=None)


def test_python_client_rate_with_the_recorders_messages_says_so(monkeypatch):
    seen = _fake_runs(monkeypatch)
    fig = bench.python_client_rate("pulsar://x:1", "t", seconds=2, size=100, netns=None, identity=True)
    assert seen["argv"][-1] == "--identity"
    assert fig.label == bench.RAW_SAME_LABEL and "recorder's messages" in fig.label
    plain = bench.python_client_rate("pulsar://x:1", "t", seconds=2, size=100, netns=None)
    assert "--identity" not in seen["argv"] and plain.label == bench.RAW_LABEL


def test_the_client_as_commonly_used_is_its_own_row_and_not_the_reference(monkeypatch):
    seen = _fake_runs(monkeypatch)
    fig = bench.python_client_rate("pulsar://x:1", "t", seconds=2, size=100, netns=None, plain=True)
    assert seen["argv"][-1] == "--plain" and fig.label == bench.RAW_PLAIN_LABEL
    reference = bench.python_client_rate("pulsar://x:1", "t", seconds=2, size=100, netns=None)
    assert "--plain" not in seen["argv"] and reference.label == bench.RAW_LABEL != bench.RAW_PLAIN_LABEL


def test_the_client_in_several_processes_sums_their_rates_under_its_own_label(monkeypatch):
    seen = _fake_runs(monkeypatch)
    fig = bench.python_client_rate("pulsar://x:1", "t", seconds=2, size=100, netns=None, processes=3)
    assert seen["started"] == 3 and fig.achieved_rate == 300.0 and fig.acked == 600
    assert fig.label == bench.raw_processes_label(3) and "3 processes" in fig.label
