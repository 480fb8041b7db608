"""`geo-recon worker` without a controller: what a compose lab's worker container runs."""

import json

import pytest
from click.testing import CliRunner

from geo_recon import cli
from geo_recon.workload import worker as worker_mod

CLUSTERS = """regions:
  a: {service_url: "pulsar://a-standalone:20150", admin_url: "http://a-standalone:20180", cluster: a}
  b: {service_url: "pulsar://b-standalone:20250", admin_url: "http://b-standalone:20280", cluster: b}
"""


@pytest.fixture
def captured(monkeypatch):
    configs = []

    class FakeWorker:
        def __init__(self, config, token=None, role="all"):
            configs.append(config)

        def run(self):
            return {"region": configs[-1].region, "sent": 0, "acked": 0, "failed": 0, "unknown": 0, "received": 0}

    monkeypatch.setattr(worker_mod, "Worker", FakeWorker)
    for name in ("GEO_RECON_WORKLOAD_FILE", "GEO_RECON_START_AT", "GEO_RECON_SEED", "GEO_RECON_TENANT",
                 "GEO_RECON_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    return configs


def _run(tmp_path, *extra, env=None):
    (tmp_path / "clusters.yaml").write_text(CLUSTERS)
    return CliRunner().invoke(cli.cli, ["worker", "--region", "b", "--clusters", str(tmp_path / "clusters.yaml"),
                                        "--out", str(tmp_path / "out"), "--run-id", "r1", *extra], env=env)


def test_the_workload_start_seed_and_namespace_come_from_the_environment(tmp_path, captured):
    (tmp_path / "workload.json").write_text(json.dumps({"rate": 500, "duration_s": 12, "topics": 2, "producers": 2,
                                                        "drain_idle_s": 20}))
    result = _run(tmp_path, env={"GEO_RECON_WORKLOAD_FILE": str(tmp_path / "workload.json"),
                                 "GEO_RECON_START_AT": "1700000000.5", "GEO_RECON_SEED": "7",
                                 "GEO_RECON_TENANT": "t", "GEO_RECON_NAMESPACE": "n"})
    assert result.exit_code == 0, result.output
    (cfg,) = captured
    assert (cfg.region, cfg.regions, cfg.service_url, cfg.run_dir) == ("b", ["a", "b"], "pulsar://b-standalone:20250",
                                                                       str(tmp_path / "out"))
    assert (cfg.workload.rate, cfg.workload.duration_s, cfg.workload.drain_idle_s) == (500, 12, 20)
    assert (cfg.start_at_ns, cfg.seed, cfg.coordinated_drain) == (1_700_000_000_500_000_000, 7, False)
    assert cfg.topics == ["persistent://t/n/r1-t0", "persistent://t/n/r1-t1"]


def test_empty_variables_leave_the_defaults_as_compose_passes_unset_ones(tmp_path, captured):
    result = _run(tmp_path, "--rate", "50", env={"GEO_RECON_WORKLOAD_FILE": "", "GEO_RECON_SEED": "",
                                                 "GEO_RECON_TENANT": "", "GEO_RECON_START_AT": ""})
    assert result.exit_code == 0, result.output
    (cfg,) = captured
    assert (cfg.workload.rate, cfg.workload.drain_idle_s, cfg.seed) == (50, 10.0, 0)
    assert cfg.topics == ["persistent://geo/recon/r1-t0"]


@pytest.mark.parametrize("content, message", [
    ("rate: -1\n", "field rate: Input should be greater than 0"),
    ("billing: {}\n", "the billing workload needs the controller's reconciler role"),
    ("rate: [\n", "cannot read a workload from it"),
])
def test_a_bad_workload_file_is_named(tmp_path, captured, content, message):
    (tmp_path / "w.yaml").write_text(content)
    result = _run(tmp_path, "--workload-file", str(tmp_path / "w.yaml"))
    assert result.exit_code == 2
    assert str(tmp_path / "w.yaml") in result.output and message in result.output
    assert captured == []
