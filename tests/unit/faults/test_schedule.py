import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from geo_recon.faults.spec import FaultSpec, expand


def test_fixed_and_repeating_faults_are_placed_in_order():
    faults = [FaultSpec(kind="partition", groups=[["a"], ["b"]], at_s=10, duration_s=5, every_s=20, count=3),
              FaultSpec(kind="kill", target="b/broker", at_s=12, duration_s=3)]
    schedule = expand(faults, run_seconds=60, seed=1)
    assert [(f.id, f.spec.kind, f.start_s, f.stop_s) for f in schedule] == [
        ("f1", "partition", 10, 15), ("f2", "kill", 12, 15), ("f3", "partition", 30, 35), ("f4", "partition", 50, 55)]
    assert schedule[0].target == "a|b" and schedule[1].target == "b/broker"


def test_faults_are_cut_at_the_end_of_the_run():
    schedule = expand([FaultSpec(kind="pause", target="a", at_s=50, duration_s=30)], run_seconds=60, seed=0)
    assert [(f.start_s, f.stop_s) for f in schedule] == [(50, 60)]
    assert expand([FaultSpec(kind="pause", target="a", at_s=70, duration_s=5)], run_seconds=60, seed=0) == []


@given(seed=st.integers(0, 2**32), count=st.integers(1, 5))
def test_random_schedules_depend_only_on_the_seed(seed, count):
    spec = FaultSpec(kind="kill", target="a", duration_s=4, count=count, random={"window_s": (5, 50)})
    first = expand([spec], run_seconds=60, seed=seed)
    assert first == expand([spec], run_seconds=60, seed=seed)  # same seed, same schedule: both schemes see it
    assert len(first) == count
    assert all(5 <= f.start_s <= 46 and abs(f.stop_s - f.start_s - 4) < 0.01 for f in first)


def test_region_loss_is_a_whole_region_killed_stopped_or_paused():
    assert FaultSpec(kind="kill", target="a").region_loss
    assert not FaultSpec(kind="kill", target="a/broker").region_loss
    assert not FaultSpec(kind="restart", target="a").region_loss


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "kill"}, "needs a target"),
    ({"kind": "partition", "groups": [["a"]]}, "at least two"),
    ({"kind": "latency"}, "needs rtt_ms"),
    ({"kind": "bandwidth"}, "needs rate_kbps"),
    ({"kind": "kill", "target": "a", "count": 2}, "count > 1 needs every_s or random"),
    ({"kind": "kill", "target": "a", "duration_s": 10, "every_s": 5, "count": 2}, "would overlap"),
])
def test_inconsistent_faults_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        FaultSpec(**kwargs)


# ---------------------------------------------------------------- targets and events (shared by every backend)

from geo_recon.deploy.topology import LabSpec, plan_lab  # noqa: E402
from geo_recon.faults.spec import fault_event, heal_event, match_components  # noqa: E402


@pytest.mark.parametrize("target, names", [
    ("a", ["a/bookie", "a/broker"]),
    ("zk", ["zk/zookeeper"]),
    ("b/broker", ["b/broker"]),
    ("b/book", ["b/bookie"]),
    ("c/broker", []),
    ("a/standalone", []),
])
def test_a_target_names_a_site_a_component_or_a_kind(target, names):
    components = plan_lab(LabSpec(regions=("a", "b"), scheme="strong", name="t")).components
    assert [c.name for c in match_components(target, components)] == names


def test_fault_events_carry_what_the_checker_and_reports_read():
    kill, partition = expand([FaultSpec(kind="kill", target="b", at_s=1, duration_s=2),
                              FaultSpec(kind="partition", groups=[["a"], ["b", "c"]], at_s=5)], 60, 0)
    start = fault_event("start", kill, ["a", "b", "c"], measured={"x": 1})
    assert {k: v for k, v in start.items() if k != "time"} == {
        "type": "fault", "phase": "start", "fault": "kill", "target": "b", "id": "f1", "regions": ["b"],
        "region_loss": True, "description": "kill b", "measured": {"x": 1}}
    assert isinstance(start["time"], int) and start["time"] > 1.6e18
    stop = fault_event("stop", partition, ["a", "b", "c"])
    assert {k: v for k, v in stop.items() if k != "time"} == {
        "type": "fault", "phase": "stop", "fault": "partition", "target": "a|b,c", "id": "f2"}
    assert {k: v for k, v in heal_event("f2", "partition", "a|b,c").items() if k != "time"} == \
        {k: v for k, v in stop.items() if k != "time"}
