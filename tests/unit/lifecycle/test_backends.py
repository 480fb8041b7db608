"""Which backend a scenario runs on, and what it refuses before anything is created."""

import pytest

from geo_recon import run as run_mod
from geo_recon.deploy import compose
from geo_recon.deploy.base import Killable, Partitionable, Pausable, Shapable
from geo_recon.deploy.compose_lab_backend import ComposeLabBackend
from geo_recon.deploy.external import ExternalBackend
from geo_recon.deploy.local_backend import LocalLabBackend
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, EnvironmentProblem
from geo_recon.faults.spec import FaultSpec, expand
from geo_recon.lifecycle.backends import backend_for
from geo_recon.scenario import LabOptions, Scenario, Topology
from geo_recon.workload.spec import WorkloadSpec
from tests.unit.compose_fakes import FakeEngine


def _scenario(backend, faults=(), **topology):
    return Scenario(name="b", source="b.yaml", topology=Topology(backend=backend, regions=["a", "b"],
                                                                 lab=LabOptions(name="tb"), **topology),
                    workload=WorkloadSpec(rate=10, duration_s=20), faults=list(faults))


def _backend(scenario, **kw):
    schedule = expand(scenario.faults, scenario.workload.duration_s, scenario.seed)
    return backend_for(scenario, "async", schedule, reuse_lab=False, hooks=run_mod.ComposeHooks(**kw),
                       progress=lambda _m: None)


def test_each_backend_says_what_it_can_do():
    local = LocalLabBackend(LabSpec(regions=("a", "b"), scheme="async"))
    external = ExternalBackend("clusters.yaml")
    assert all(isinstance(local, p) for p in (Killable, Pausable, Partitionable, Shapable))
    assert not any(isinstance(external, p) for p in (Killable, Pausable, Partitionable, Shapable))
    assert ComposeLabBackend.shapes == frozenset({"latency"})


def test_existing_clusters_take_command_faults_and_refuse_process_faults_before_anything_starts(tmp_path):
    ok = _scenario("external", [FaultSpec(kind="command", at_s=1, command={"inject": "true", "heal": "true"})],
                   clusters=str(tmp_path / "c.yaml"))
    assert isinstance(_backend(ok), ExternalBackend)
    bad = _scenario("external", [FaultSpec(kind="pause", target="a", at_s=1)], clusters=str(tmp_path / "c.yaml"))
    with pytest.raises(ConfigError, match=r"^b.yaml: fault f1 \(pause a\): the external backend cannot do pause"):
        _backend(bad)
    assert not list(tmp_path.iterdir())  # nothing was created, not even a run directory


def test_network_faults_on_a_lab_without_namespaces_are_refused_first():
    scenario = _scenario("local", [FaultSpec(kind="partition", groups=[["a"], ["b"]], at_s=1)])
    scenario.topology.lab.isolation = "loopback"
    with pytest.raises(EnvironmentProblem, match="network faults need network namespaces"):
        _backend(scenario)


def test_a_compose_scenario_gets_a_compose_backend_with_its_engine_version():
    engine = FakeEngine(compose.compose_lab(LabSpec(regions=("a", "b"), scheme="async", name="tb")))
    backend = _backend(_scenario("compose"), runner=engine)
    assert isinstance(backend, ComposeLabBackend) and "docker compose" in backend.versions()
