from pathlib import Path

import pytest

from geo_recon import scenario
from geo_recon.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _has_disaster_fields() -> bool:
    """Issue 13's scenario fields (lose, bookies_per_region, workload.failover/replicated_subscription) come from
    three branches; until all are merged, the two disaster scenarios that use them cannot load."""
    from typing import get_args

    from geo_recon.faults.spec import FaultKind
    from geo_recon.workload.spec import WorkloadSpec
    return ("lose" in get_args(FaultKind) and "bookies_per_region" in scenario.Topology.model_fields
            and {"failover", "replicated_subscription"} <= set(WorkloadSpec.model_fields))


DISASTER_SCENARIOS = {"region-disaster.yaml", "region-disaster-3.yaml"}


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(not _has_disaster_fields(), raises=ConfigError, strict=True,
                                            reason="needs issue 13's lose fault, bookies_per_region and failover"))
    if p.name in DISASTER_SCENARIOS else p
    for p in sorted((REPO / "scenarios").rglob("*.yaml"))], ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path):
    s = scenario.load(path)
    assert s.name and s.topology.regions


def _write(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nworkload:\n  rate: -5\n", ":3: field workload.rate: Input should be greater than 0"),
    ("name: x\nfaults:\n  - kind: kill\n    at_s: 1\n", ":3: field faults.0: a kill fault needs a target"),
    ("name: x\nscheme: eventual\n", ":2: field scheme: Input should be 'async' or 'strong'"),
    ("name: x\ntopology: {regions: [a]}\n", ":2: field topology: at least 2 regions are needed"),
    ("name: x\nfaults:\n  - {kind: kill, target: c, at_s: 1}\n", "field (top level): faults.0: unknown region(s) ['c']"),
    ("name: x\nworkload: {duration_s: 10}\nfaults:\n  - {kind: kill, target: a, at_s: 20}\n", "after the load ends"),
    ("name: x\ncolour: red\n", ":2: field colour: Extra inputs are not permitted"),
    ("name: [unclosed\n", ":2: not valid YAML"),
    ("name: x\npulsar: 4.1.0\n", "Pulsar 4.1.0 is not supported; supported versions: 3.0.2"),
    ("name: x\nsettings: {replication: bundle}\n", ":2: field settings.replication: Input should be 'namespace' or 'topic'"),
    ("name: x\nfaults:\n  - {kind: unload, target: a/standalone, at_s: 1}\n", "an unload fault needs a target region"),
])
def test_broken_scenarios_name_file_line_and_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        scenario.load(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_expectations_of_a_scheme_override_the_common_ones(tmp_path):
    s = scenario.load(_write(tmp_path, "name: x\nexpectations:\n  max_lost: 5\n  strong: {max_lost: 0}\n"))
    assert s.expectations.for_scheme("strong").max_lost == 0
    assert s.expectations.for_scheme("async").max_lost == 5


def test_schemes_option(tmp_path):
    s = scenario.load(_write(tmp_path, "name: x\n"))
    assert scenario.schemes_to_run(s, None) == ["async"]
    assert scenario.schemes_to_run(s, "strong,async") == ["strong", "async"]
    with pytest.raises(ConfigError, match="unknown scheme 'sync'"):
        scenario.schemes_to_run(s, "sync")


def test_the_load_runs_the_recovery_limit_past_the_last_heal_of_a_fault_that_stops_clients():
    from geo_recon.faults.spec import FaultSpec, expand
    from geo_recon.scenario import Expectations, Scenario, load_seconds
    from geo_recon.workload.spec import WorkloadSpec

    def seconds(faults, **expectations):
        s = Scenario(name="x", workload=WorkloadSpec(duration_s=50), faults=faults,
                     expectations=Expectations(**expectations))
        return load_seconds(s, "async", expand(s.faults, s.workload.duration_s, s.seed))

    kill = FaultSpec(kind="kill", target="a", at_s=15, duration_s=20)
    assert seconds([kill]) == 35 + 30 + 5  # default limit 30 s, plus a margin to tell "never" from "not observed"
    assert seconds([kill], max_recovery_s=10) == 50  # already long enough
    assert seconds([kill], max_recovery_s=None) == 50
    assert seconds([FaultSpec(kind="latency", rtt_ms=20, between=["a", "b"], at_s=0, duration_s=50)]) == 50
    assert seconds([]) == 50


def test_the_load_ends_a_recovery_window_after_the_last_heal_as_verified_never_past_its_cap():
    from geo_recon.faults.spec import FaultSpec, expand
    from geo_recon.scenario import HEAL_DELAY_ALLOWANCE_S, Expectations, LoadEnd, Scenario, load_end
    from geo_recon.workload.spec import BillingWorkload, WorkloadSpec

    def end(faults, workload=None, **expectations):
        s = Scenario(name="x", workload=workload or WorkloadSpec(duration_s=50), faults=faults,
                     expectations=Expectations(**expectations))
        return load_end(s, "async", expand(s.faults, s.workload.duration_s, s.seed))

    kill = FaultSpec(kind="kill", target="a", at_s=15, duration_s=20)  # heal scheduled at 35 s
    plan = end([kill])
    assert plan == LoadEnd(70, 70 + HEAL_DELAY_ALLOWANCE_S, 35)  # 30 s limit + 5 s margin
    assert plan.due_s([35.0]) == 70  # healed on time: the scheduled end
    assert plan.due_s([36.2]) == 71.2  # a JVM that took 1.2 s more to come back: its window still counts
    assert plan.due_s([80.0]) == 115  # a heal verified after the scheduled end of the load
    assert plan.due_s([None]) == plan.cap_s  # not verified yet: wait, at most until the cap
    assert plan.due_s([500.0]) == plan.cap_s
    assert plan.due_s([20.0, None]) == plan.cap_s
    # nothing has to recover: the load ends when scheduled, however late the faults went
    assert end([FaultSpec(kind="latency", rtt_ms=20, between=["a", "b"], at_s=0, duration_s=40)]) == LoadEnd(50, 50, None)
    assert end([kill], max_recovery_s=None) == LoadEnd(50, 50, None)
    assert end([]).due_s([]) == 50
    billing = WorkloadSpec(duration_s=50, billing=BillingWorkload())  # its transactions are generated from duration_s
    assert end([kill], billing).window_s is None


def test_pulsar_versions_to_run(tmp_path):
    plain = scenario.load(_write(tmp_path, "name: x\n"))
    pinned = scenario.load(_write(tmp_path, "name: x\npulsar: 3.0.7\n"))
    from geo_recon.deploy.pulsar_versions import DEFAULT_PULSAR

    assert scenario.versions_to_run(plain, None) == [DEFAULT_PULSAR]
    assert scenario.versions_to_run(pinned, None) == ["3.0.7"]
    assert scenario.versions_to_run(pinned, "3.0.2,4.2.4") == ["3.0.2", "4.2.4"]
    with pytest.raises(ConfigError, match="9.0.0 is not supported"):
        scenario.versions_to_run(plain, "9.0.0")


@pytest.mark.parametrize("path", sorted((REPO / "scenarios" / "known-bugs").glob("*.yaml")), ids=lambda p: p.name)
def test_known_bug_scenarios_name_the_bug_and_a_verdict_per_supported_version(path):
    from geo_recon.deploy.pulsar_versions import supported

    s = scenario.load(path)
    assert s.known_bug is not None and s.known_bug.issue.startswith("apache/pulsar#")
    assert s.known_bug.affected and s.known_bug.fixed_in
    assert set(s.known_bug.expect) <= set(supported())
    assert {"met", "not met"} <= set(s.known_bug.expect.values())  # a version that shows it, and one that does not


@pytest.mark.parametrize("name", sorted(DISASTER_SCENARIOS))
def test_disaster_scenarios_expect_what_the_issue_asks(name):
    """Their expectations (this branch's fields) load; the other branches' fields are checked by the test above."""
    import yaml

    data = yaml.safe_load((REPO / "scenarios" / name).read_text())
    assert data["topology"].pop("bookies_per_region") >= 2
    lose = [f for f in data["faults"] if f["kind"] == "lose"]
    assert len(lose) == 1 and lose[0]["target"] == "a"
    data["faults"] = [f for f in data["faults"] if f["kind"] != "lose"]
    assert [f["kind"] for f in data["faults"]][0] == "latency"  # WAN latency for the whole run (region-disaster cuts the link first, too)
    data["workload"].pop("failover", None)
    data["workload"].pop("replicated_subscription", None)
    s = scenario.Scenario(**data)
    strong = s.expectations.for_scheme("strong")
    assert (strong.max_rpo_messages, strong.max_rpo_s, strong.max_lost) == (0, 0, 0)
    if name == "region-disaster.yaml":
        async_ = s.expectations.for_scheme("async")
        assert async_.max_rpo_messages is None and async_.max_client_rto_s == 30
        assert lose[0]["rebuild_at_s"] > lose[0]["at_s"]
    else:
        assert s.settings.persistence == "2/2/2" and s.scheme == "strong" and len(s.topology.regions) == 3
