"""The `lose` fault: its spec's rules, its schedule, what the driver records, and who refuses it."""

import threading
import time

import pytest

from geo_recon import scenario
from geo_recon.deploy.base import Destroyable
from geo_recon.deploy.external import ExternalBackend
from geo_recon.deploy.local_backend import LocalLabBackend
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError
from geo_recon.faults import driver as driver_mod
from geo_recon.faults.driver import FaultDriver, drive, refuse_unsupported
from geo_recon.faults.spec import REBUILD_ALLOWANCE_S, FaultSpec, expand
from geo_recon.scenario import Expectations, Scenario, load_seconds
from geo_recon.workload.spec import WorkloadSpec
from tests.conftest import run_cli


def _write(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("fault", "message"), [
    ("{kind: lose, target: a, at_s: 5, duration_s: 10}", "field faults.0: duration_s is not allowed on a lose fault"),
    ("{kind: lose, target: a, at_s: 20, rebuild_at_s: 10}", "field faults.0: rebuild_at_s (10) must be after at_s (20)"),
    ("{kind: lose, target: a/broker, at_s: 5}", "field faults.0: a lose fault needs a target region"),
    ("{kind: lose, at_s: 5}", "field faults.0: a lose fault needs a target region"),
    ("{kind: lose, target: a, at_s: 5, every_s: 20}", "field faults.0: every_s is not allowed on a lose fault"),
    ("{kind: lose, target: a, at_s: 5, rebuild_at_s: 0}", "field faults.0.rebuild_at_s: Input should be greater than 0"),
    ("{kind: kill, target: a, at_s: 5, rebuild_at_s: 10}", "field faults.0: rebuild_at_s is for lose faults only"),
    ("{kind: lose, target: zk, at_s: 5}", "faults.0.target: a lose fault targets one of the regions ['a', 'b']"),
    ("{kind: lose, target: a, at_s: 5, rebuild_at_s: 70}", "faults.0.rebuild_at_s: 70s is after the load ends (60s)"),
])
def test_a_bad_lose_fault_names_the_field(tmp_path, fault, message):
    path = _write(tmp_path, f"name: x\nworkload: {{duration_s: 60}}\nfaults:\n  - {fault}\n")
    with pytest.raises(ConfigError) as err:
        scenario.load(path)
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(("topology", "message"), [
    ("{bookies_per_region: 0}", "field topology: bookies_per_region must be at least 1, got 0"),
    ("{bookies_per_region: 9}", "field topology: bookies_per_region must be at most 8"),
    ("{backend: compose, bookies_per_region: 2}", "bookies_per_region is for local labs; the compose backend"),
])
def test_bad_bookies_per_region_names_the_field(tmp_path, topology, message):
    with pytest.raises(ConfigError, match=message):
        scenario.load(_write(tmp_path, f"name: x\ntopology: {topology}\n"))


def test_the_cli_refuses_a_bad_lose_fault_with_one_line_and_exit_code_2(tmp_path):
    path = _write(tmp_path, "name: x\nfaults:\n  - {kind: lose, target: a, at_s: 5, duration_s: 10}\n")
    proc = run_cli("run", str(path), "--runs", str(tmp_path / "runs"))
    assert proc.returncode == 2
    assert "duration_s is not allowed on a lose fault" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_lost_region_is_a_region_loss_that_heals_only_when_rebuilt():
    gone, rebuilt = expand([FaultSpec(kind="lose", target="a", at_s=10),
                            FaultSpec(kind="lose", target="b", at_s=15, rebuild_at_s=40)], 60, 0)
    assert (gone.start_s, gone.stop_s, gone.heals, gone.recovers_from_s) == (10, 60, False, 10)
    assert (rebuilt.start_s, rebuilt.stop_s, rebuilt.heals) == (15, 40, True)
    assert rebuilt.recovers_from_s == 40 + REBUILD_ALLOWANCE_S  # a rebuild takes time before clients can work
    assert gone.spec.region_loss and rebuilt.spec.region_loss
    assert gone.spec.describe() == "lose region a (processes killed, data deleted), for good"
    assert rebuilt.spec.describe() == "lose region b (processes killed, data deleted), rebuilt empty at 40s"


def test_the_load_goes_on_for_the_recovery_window_after_a_loss_and_after_a_rebuild():
    def seconds(fault):
        s = Scenario(name="x", workload=WorkloadSpec(duration_s=30), faults=[fault], expectations=Expectations())
        return load_seconds(s, "async", expand(s.faults, s.workload.duration_s, s.seed))

    assert seconds(FaultSpec(kind="lose", target="a", at_s=10)) == 10 + 30 + 5  # its clients must fail over
    assert seconds(FaultSpec(kind="lose", target="a", at_s=10, rebuild_at_s=20)) == 20 + REBUILD_ALLOWANCE_S + 30 + 5


class _Lab:
    """A backend that can lose a region (what LocalLabBackend does, without JVMs)."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def destroy(self, fault_id, fault):
        self.calls.append(("destroy", fault_id, fault.target))
        return {"killed_at_ns": 123, "killed": ["a/standalone"], "ports_refused": ["x:1"], "data_deleted": ["d"]}

    def rebuild(self, fault_id):
        self.calls.append(("rebuild", fault_id))
        return {"started": ["a/standalone"]}


class _Deployment:
    secrets = ()

    def region(self, name):
        return type("Endpoint", (), {"service_url": f"pulsar://{name}:6650"})()


def _driver(rejoined):
    events = []
    lab = _Lab()
    driver = FaultDriver(lab, regions=["a", "b"], namespace="geo/recon", on_event=events.append,
                         deployment=_Deployment(), rejoin=rejoined.append)
    return driver, lab, events


def test_a_lost_region_without_a_rebuild_has_a_verified_start_line_and_no_stop_line(monkeypatch):
    assert isinstance(_Lab(), Destroyable)
    driver, lab, events = _driver(rejoined := [])
    schedule = expand([FaultSpec(kind="lose", target="a", at_s=0)], 0.2, 0)
    drive(driver, schedule, time.time_ns(), threading.Event(), errors := [])
    assert errors == [] and lab.calls == [("destroy", "f1", "a")] and rejoined == []
    [start] = events  # heal_all wrote nothing: the teardown is not a heal
    assert (start["phase"], start["fault"], start["target"], start["id"]) == ("start", "lose", "a", "f1")
    assert start["time"] == 123 and start["region_loss"] is True and start["regions"] == ["a"]
    assert start["verified"] == {"killed": ["a/standalone"], "ports_refused": ["x:1"], "data_deleted": ["d"]}


def test_a_rebuilt_region_rejoins_then_writes_the_stop_line_with_rebuilt(monkeypatch):
    monkeypatch.setattr(driver_mod, "round_trip", lambda url, timeout: 12.34)
    driver, lab, events = _driver(rejoined := [])
    schedule = expand([FaultSpec(kind="lose", target="a", at_s=0, rebuild_at_s=0.1)], 1, 0)
    drive(driver, schedule, time.time_ns(), threading.Event(), errors := [])
    assert errors == [] and lab.calls == [("destroy", "f1", "a"), ("rebuild", "f1")] and rejoined == ["a"]
    assert [(e["phase"], e.get("rebuilt")) for e in events] == [("start", None), ("stop", True)]
    assert events[1]["measured"] == {"started": ["a/standalone"], "round_trip_ms": 12.3}


def test_only_a_backend_that_can_destroy_takes_a_lose_fault(tmp_path):
    schedule = expand([FaultSpec(kind="lose", target="a", at_s=1)], 60, 0)
    refuse_unsupported(LocalLabBackend(LabSpec(regions=("a", "b"), scheme="async")), schedule)
    with pytest.raises(ConfigError, match=r"^s.yaml: fault f1 \(lose region a .*\): the external backend cannot "
                                          r"do lose faults"):
        refuse_unsupported(ExternalBackend(tmp_path / "c.yaml"), schedule, "s.yaml: ")


def test_a_compose_lab_refuses_a_lose_fault_before_anything_starts(tmp_path):
    from geo_recon import run as run_mod
    from geo_recon.deploy import compose
    from geo_recon.lifecycle.backends import backend_for
    from geo_recon.scenario import LabOptions, Topology
    from tests.unit.compose_fakes import FakeEngine

    s = Scenario(name="b", source="b.yaml", topology=Topology(backend="compose", regions=["a", "b"],
                                                              lab=LabOptions(name="tb")),
                 workload=WorkloadSpec(rate=10, duration_s=20), faults=[FaultSpec(kind="lose", target="a", at_s=5)])
    engine = FakeEngine(compose.compose_lab(LabSpec(regions=("a", "b"), scheme="async", name="tb")))
    with pytest.raises(ConfigError, match=r"^b.yaml: fault f1 \(lose region a .*\): the compose backend cannot do "
                                          r"lose faults"):
        backend_for(s, "async", expand(s.faults, 20, 0), reuse_lab=False, hooks=run_mod.ComposeHooks(runner=engine),
                    progress=lambda _m: None)


def test_a_stretched_lab_with_two_bookies_per_region_gives_each_its_own_port_and_data_dir():
    from geo_recon.deploy.topology import plan_lab

    plan = plan_lab(LabSpec(regions=("a", "b"), scheme="strong", base_port=10000, bookies_per_region=2))
    bookies = {c.name: c.ports["bookie"] for c in plan.components if c.kind == "bookie"}
    assert bookies == {"a/bookie": 10181, "a/bookie2": 10182, "b/bookie": 10281, "b/bookie2": 10282}
    with pytest.raises(ConfigError, match="bookies per region 0: expected 1..8"):
        plan_lab(LabSpec(regions=("a", "b"), scheme="strong", bookies_per_region=0))


def test_the_negative_controls_brokers_place_ledgers_blind_to_regions_and_racks():
    from geo_recon.deploy import pulsar_conf

    aware = pulsar_conf.broker_conf("geo", "h", 1, 2, "zk:1", ["a", "b"])
    blind = pulsar_conf.broker_conf("geo", "h", 1, 2, "zk:1", ["a", "b"], region_aware=False)
    assert aware["bookkeeperClientRegionawarePolicyEnabled"] is True and aware["reppRegionsToWrite"] == "a;b"
    assert blind["bookkeeperClientRegionawarePolicyEnabled"] is False
    assert blind["bookkeeperClientRackawarePolicyEnabled"] is False
    assert not [k for k in blind if k.startswith("repp") or "MinNumRacks" in k]


def _stretched_lab_state(tmp_path, monkeypatch):
    """A saved two-region strong lab (two bookies per region, each with its conf file), no JVMs."""
    from geo_recon.deploy import pulsar_conf, state
    from geo_recon.deploy.state import ComponentState, LabState
    from geo_recon.deploy.topology import plan_lab

    monkeypatch.setenv("GEO_RECON_HOME", str(tmp_path))
    plan = plan_lab(LabSpec(regions=("a", "b"), scheme="strong", name="tnew", base_port=10000, bookies_per_region=2))
    comps = []
    for c in plan.components:
        conf = tmp_path / f"{c.name.replace('/', '-')}.conf"
        if c.kind == "bookie":
            conf.write_text(pulsar_conf.render_properties(pulsar_conf.bookie_conf(c.address, c.ports["bookie"],
                                                                                   "zk:1", "/d")))
        comps.append(ComponentState(name=c.name, kind=c.kind, site=c.site, region=c.region, address=c.address,
                                    ports=dict(c.ports), argv=["java", "--conf", str(conf)], cwd=str(tmp_path),
                                    log="l"))
    lab = LabState(name="tnew", scheme="strong", regions=["a", "b"], isolation="loopback", base_port=10000,
                   subnet=0, phase="up", created_at=0, lab_dir=str(state.lab_dir("tnew")), pulsar_version="4.2.4",
                   java="j",
                   bookies_per_region=2, components=comps)
    state.save(lab)
    return lab


def test_a_rebuilt_bookie_takes_a_new_identity_above_every_port_its_region_ever_had(tmp_path, monkeypatch):
    """Never a lost identity on an empty disk (ledger recovery would take its "no such entry" as proof)."""
    from geo_recon.deploy import state
    from geo_recon.deploy.local_faults import LocalFaults
    from geo_recon.errors import FaultError

    _stretched_lab_state(tmp_path, monkeypatch)
    faults = LocalFaults("tnew")
    a1, a2 = faults.lab.component("a/bookie"), faults.lab.component("a/bookie2")
    assert [faults._new_identity(a1), faults._new_identity(a2)] == ["198.18.0.10:10183", "198.18.0.10:10184"]
    saved = state.load("tnew")
    assert {c.name: c.ports.get("bookie") for c in saved.components if c.kind == "bookie"} == \
        {"a/bookie": 10183, "a/bookie2": 10184, "b/bookie": 10281, "b/bookie2": 10282}
    assert "bookiePort=10183\n" in (tmp_path / "a-bookie.conf").read_text()
    # A second rebuild goes higher still; once the region's eight bookie ports are spent, it refuses.
    assert [faults._new_identity(a1), faults._new_identity(a2)] == ["198.18.0.10:10185", "198.18.0.10:10186"]
    faults._new_identity(a1), faults._new_identity(a2)
    with pytest.raises(FaultError, match=r"every bookie port of region a \(10181..10188\) has been an identity"):
        faults._new_identity(a1)


def test_the_stretched_brokers_look_for_failing_bookies_to_quarantine_every_few_seconds():
    """A dead region's bookies stay registered until their sessions expire; quarantine keeps replacements off
    them sooner than BookKeeper's default of 60 s."""
    from geo_recon.deploy import pulsar_conf

    conf = pulsar_conf.broker_conf("geo", "h", 1, 2, "zk:1", ["a", "b", "c"])
    assert conf["bookkeeperClientHealthCheckEnabled"] is True
    assert conf["bookkeeperClientHealthCheckIntervalSeconds"] <= 5
    assert conf["bookkeeperClientHealthCheckQuarantineTimeInSeconds"] >= conf["zooKeeperSessionTimeoutMillis"] / 1000
