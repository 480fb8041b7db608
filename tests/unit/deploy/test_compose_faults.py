"""ComposeFaults under the fault driver: scenario faults as `docker compose` commands and Toxiproxy requests,
verified, recorded, healed."""

import subprocess

import pytest

from geo_recon.deploy import compose
from geo_recon.deploy.compose_backend import ComposeBackend
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, FaultError
from geo_recon.deploy.compose_faults import ComposeFaults, check_schedule, plan_fault
from geo_recon.faults.driver import FaultDriver
from geo_recon.faults.spec import FaultSpec, ScheduledFault, expand
from tests.unit.compose_fakes import FakeEngine, FakeToxiproxy

ASYNC2 = LabSpec(regions=("a", "b"), scheme="async", name="t2")
STRONG2 = LabSpec(regions=("a", "b"), scheme="strong", name="t2")
ASYNC3 = LabSpec(regions=("a", "b", "c"), scheme="async", name="t3")


def _fault(fid="f1", start=1.0, stop=5.0, **spec):
    return ScheduledFault(fid, FaultSpec(**spec), start, stop)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def make(tmp_path):
    def make(spec=ASYNC2, engine_class=FakeEngine, **kwargs):
        lab = compose.compose_lab(spec)
        compose.write_project(spec, tmp_path / spec.name)
        engine, toxiproxy, clock = engine_class(lab).lab_is_up(), FakeToxiproxy(lab), Clock()
        backend = ComposeBackend(tmp_path / spec.name, runner=engine, http=toxiproxy)
        events, messages = [], []
        mechanics = ComposeFaults(backend, sleep=clock.sleep, clock=clock, **kwargs)
        faults = FaultDriver(mechanics, regions=list(lab.regions), namespace="geo/recon", on_event=events.append,
                             progress=messages.append, clock=clock)
        return faults, engine, toxiproxy, events, clock
    return make


def _id_spec(fault):
    return fault.id, fault.spec


def _strip_time(events):
    assert all(isinstance(e.pop("time"), int) for e in events)
    return events


# ---------------------------------------------------------------- plans (pure)


@pytest.mark.parametrize("spec, fault, plan", [
    (STRONG2, {"kind": "kill", "target": "a"}, ["a-bookie", "a-broker"]),  # bookies start before brokers
    (STRONG2, {"kind": "stop", "target": "b/broker"}, ["b-broker"]),
    (STRONG2, {"kind": "pause", "target": "zk"}, ["zk-zookeeper"]),
    (ASYNC3, {"kind": "restart", "target": "c/standalone"}, ["c-standalone"]),
])
def test_process_faults_act_on_the_containers_their_target_names(spec, fault, plan):
    assert list(plan_fault(compose.compose_lab(spec), *_id_spec(_fault(**fault))).services) == plan


@pytest.mark.parametrize("spec, fault, links", [
    (ASYNC2, {"kind": "partition", "groups": [["a"], ["b"]]}, [("a", "b", True)]),
    (ASYNC3, {"kind": "partition", "groups": [["a"], ["b", "c"]], "one_way": True},
     [("a", "b", False), ("a", "c", False)]),
    (ASYNC3, {"kind": "partition", "groups": [["b", "c"], ["a"]]}, [("b", "a", True), ("c", "a", True)]),
    (STRONG2, {"kind": "isolate", "target": "b"}, [("b", "a", True), ("b", "zk", True)]),
    (STRONG2, {"kind": "partition", "groups": [["zk"], ["a"]]}, [("a", "zk", True)]),  # the witness has no proxy
    (ASYNC3, {"kind": "latency", "rtt_ms": 80}, [("a", "b", True), ("a", "c", True), ("b", "c", True)]),
    (ASYNC3, {"kind": "latency", "rtt_ms": 80, "between": ["c", "a"]}, [("c", "a", True)]),
])
def test_network_faults_act_on_the_links_between_their_sites(spec, fault, links):
    assert list(plan_fault(compose.compose_lab(spec), *_id_spec(_fault(**fault))).links) == links


@pytest.mark.parametrize("spec, fault, message", [
    (ASYNC2, {"kind": "bandwidth", "rate_kbps": 100},
     "fault f1 (bandwidth 100 KB/s between all): bandwidth faults are not available on the compose backend"),
    (ASYNC2, {"kind": "kill", "target": "a/broker"},
     "fault f1 (kill a/broker): the target matches no component of compose lab geo-recon-t2-async "
     "(it has a/standalone, b/standalone)"),
    (STRONG2, {"kind": "partition", "groups": [["zk"], ["a"]], "one_way": True},
     "fault f1 (partition zk -/-> a): zk opens no connections and has no Toxiproxy"),
    (ASYNC2, {"kind": "isolate", "target": "c"}, "fault f1 (isolate c): unknown site(s) c"),
])
def test_what_compose_cannot_do_is_refused_naming_the_fault(spec, fault, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_schedule(compose.compose_lab(spec), [_fault(**fault)])


def test_two_faults_of_one_kind_on_one_link_at_once_are_refused_before_the_lab_starts():
    lab = compose.compose_lab(ASYNC3)
    first = FaultSpec(kind="latency", rtt_ms=50, between=["a", "b"], at_s=5, duration_s=10)
    schedule = expand([first, FaultSpec(kind="latency", rtt_ms=90, at_s=10, duration_s=10)], 60, 0)
    with pytest.raises(ConfigError, match=r"fault f1 \(latency .*\) and fault f2 \(latency .*\) both put a latency "
                                          r"on the a->b link at the same time"):
        check_schedule(lab, schedule)
    # one after the other, on other links, or of another kind: fine
    assert set(check_schedule(lab, expand([first, FaultSpec(kind="latency", rtt_ms=90, at_s=15)], 60, 0))) == \
        {"f1", "f2"}
    check_schedule(lab, expand([first, FaultSpec(kind="latency", rtt_ms=9, between=["b", "c"], at_s=6)], 60, 0))
    check_schedule(lab, expand([first, FaultSpec(kind="partition", groups=[["a"], ["b"]], at_s=6)], 60, 0))


# ---------------------------------------------------------------- process faults


def test_a_kill_is_sigkill_verified_then_start_verified_healthy_and_both_are_recorded(make):
    faults, engine, _, events, _ = make()
    fault = _fault(kind="kill", target="b")
    faults.inject(fault)
    assert engine.states["b-standalone"] == ("exited", "", 137)
    assert list(faults.active) == ["f1"]
    faults.heal(fault)
    assert engine.compose_calls() == [
        ["kill", "--signal", "SIGKILL", "b-standalone"], ["--profile", "workers", "ps", "--all", "--format", "json"],
        ["start", "b-standalone"], ["--profile", "workers", "ps", "--all", "--format", "json"]]
    assert engine.states["b-standalone"] == ("running", "healthy", 0)
    assert faults.active == {}
    assert _strip_time(events) == [
        {"type": "fault", "phase": "start", "fault": "kill", "target": "b", "id": "f1", "regions": ["b"],
         "region_loss": True, "description": "kill b"},
        {"type": "fault", "phase": "stop", "fault": "kill", "target": "b", "id": "f1"}]


def test_pause_and_stop_and_restart_map_to_their_own_compose_commands(make):
    faults, engine, _, events, _ = make(spec=STRONG2)
    pause, stop = _fault("f1", kind="pause", target="a/bookie"), _fault("f2", kind="stop", target="zk")
    faults.inject(pause)
    assert engine.states["a-bookie"][0] == "paused"
    faults.inject(stop)
    faults.heal(pause)
    faults.heal(stop)
    faults.inject(_fault("f3", kind="restart", target="b/broker"))
    calls = [c for c in engine.compose_calls() if "ps" not in c]
    assert calls == [["pause", "a-bookie"], ["stop", "--timeout", "30", "zk-zookeeper"], ["unpause", "a-bookie"],
                     ["start", "zk-zookeeper"], ["stop", "--timeout", "30", "b-broker"], ["start", "b-broker"]]
    assert all(state == ("running", "healthy", 0) for state in engine.states.values() if state[0] != "exited") and \
        {s for s, state in engine.states.items() if state[0] == "exited"} == set(compose.compose_lab(STRONG2).one_shots)
    # a restart heals itself: it starts and stops at once, and leaves nothing active
    assert [(e["id"], e["phase"]) for e in events] == [("f1", "start"), ("f2", "start"), ("f1", "stop"),
                                                       ("f2", "stop"), ("f3", "start"), ("f3", "stop")]
    assert faults.active == {}


class DeafEngine(FakeEngine):
    """SIGKILL does not take (a container that ignores it, say)."""

    def __call__(self, argv, timeout):
        if "kill" in argv:
            self.calls.append(list(argv))
            return subprocess.CompletedProcess(list(argv), 0, "", "")
        return super().__call__(argv, timeout)


def test_a_kill_that_does_not_take_is_a_fault_error_after_the_settle_time(make):
    faults, _, _, _, clock = make(engine_class=DeafEngine)
    with pytest.raises(FaultError, match=r"fault f1: a-standalone is running \(healthy\) 15s after SIGKILL; "
                                         r"logs: docker compose -p geo-recon-t2-async logs a-standalone"):
        faults.inject(_fault(kind="kill", target="a/standalone"))
    assert 15 <= clock.now <= 17
    assert list(faults.active) == ["f1"]  # healed by heal_all


class CrashingEngine(FakeEngine):
    """A started component dies again at once."""

    def __call__(self, argv, timeout):
        result = super().__call__(argv, timeout)
        if argv[-2:] == ["start", "a-standalone"]:
            self.states["a-standalone"] = ("exited", "", 1)
        return result


def test_a_component_that_does_not_come_back_fails_the_heal_at_once(make):
    faults, engine, _, events, clock = make(engine_class=CrashingEngine)
    fault = _fault(kind="kill", target="a")
    faults.inject(fault)
    with pytest.raises(FaultError, match=r"fault f1: a-standalone is exited, exit code 1 after start"):
        faults.heal(fault)
    assert clock.now < 2
    assert [e["phase"] for e in events] == ["start"]


def test_a_container_still_starting_is_waited_for_until_healthy(make):
    faults, engine, _, _, clock = make()
    fault = _fault(kind="kill", target="a")
    faults.inject(fault)
    polls = []

    def slow_health(argv, timeout, _call=FakeEngine.__call__):
        result = _call(engine, argv, timeout)
        if argv[-2:] == ["start", "a-standalone"]:
            engine.states["a-standalone"] = ("running", "starting", 0)
        if "ps" in argv and engine.states["a-standalone"][1] == "starting":
            polls.append(clock.now)
            if len(polls) == 4:
                engine.states["a-standalone"] = ("running", "healthy", 0)
        return result

    faults.backend.backend._run = slow_health
    faults.heal(fault)
    assert polls == [0.0, 1.0, 2.0, 3.0] and clock.now == 4.0  # healthy at the fifth look


# ---------------------------------------------------------------- network faults


def test_latency_is_toxics_on_both_directions_of_every_link_and_heals_to_none(make):
    faults, engine, toxiproxy, events, _ = make(spec=ASYNC3)
    fault = _fault(kind="latency", rtt_ms=81, jitter_ms=10, between=["a", "c"])
    faults.inject(fault)
    posts = [(url, body["attributes"]) for method, url, body in toxiproxy.requests if method == "POST"]
    assert posts[:2] == [("http://127.0.0.1:20174/proxies/a_to_c_standalone_broker/toxics", {"latency": 40, "jitter": 5}),
                         ("http://127.0.0.1:20174/proxies/a_to_c_standalone_broker/toxics", {"latency": 41, "jitter": 5})]
    assert set(toxiproxy.active()) == {("a", "a_to_c_standalone_broker"), ("a", "a_to_c_standalone_web"),
                                       ("c", "c_to_a_standalone_broker"), ("c", "c_to_a_standalone_web")}
    faults.heal(fault)
    assert toxiproxy.active() == {}
    assert [c for c in engine.compose_calls()] == []  # no container was touched
    assert _strip_time(events)[0] == {"type": "fault", "phase": "start", "fault": "latency", "target": "a<->c",
                                      "id": "f1", "regions": ["a", "c"],
                                      "description": "latency +81 ms RTT (jitter 10) between a,c"}


def test_a_one_way_partition_cuts_only_the_connections_the_first_group_opens(make):
    faults, _, toxiproxy, _, _ = make(spec=ASYNC3)
    faults.inject(_fault(kind="partition", groups=[["b"], ["a", "c"]], one_way=True))
    assert toxiproxy.active() == {(("b", p)): ["geo_recon_partition_downstream", "geo_recon_partition_upstream"]
                                  for p in ("b_to_a_standalone_broker", "b_to_a_standalone_web",
                                            "b_to_c_standalone_broker", "b_to_c_standalone_web")}


def test_heal_all_heals_what_is_active_records_it_and_resets_every_toxiproxy(make):
    faults, engine, toxiproxy, events, _ = make(spec=ASYNC3)
    faults.inject(_fault("f1", kind="partition", groups=[["a"], ["b"]]))
    faults.inject(_fault("f2", kind="pause", target="c"))
    toxiproxy.requests.clear()
    assert faults.heal_all() == ["f1", "f2", "every Toxiproxy reset"]
    assert engine.states["c-standalone"][0] == "running"
    assert toxiproxy.active() == {}
    assert [r[:2] for r in toxiproxy.requests][-3:] == [("POST", f"http://127.0.0.1:20{i}74/reset") for i in (1, 2, 3)]
    assert [(e["id"], e["phase"], e["fault"], e["target"]) for e in events[2:]] == [
        ("f1", "stop", "partition", "a|b"), ("f2", "stop", "pause", "c")]
    assert faults.heal_all() == []  # nothing left, nothing to reset again


def test_a_toxiproxy_failure_is_a_fault_error_naming_the_fault(make):
    faults, _, toxiproxy, _, _ = make()
    toxiproxy.lab = compose.compose_lab(STRONG2)  # proxies it does not know: 404 for every toxic
    with pytest.raises(FaultError, match=r"fault f1 \(partition a \| b\): toxiproxy-a: could not set timeout on "
                                         r"a_to_b_standalone_broker: HTTP 404"):
        faults.inject(_fault(kind="partition", groups=[["a"], ["b"]]))
    assert list(faults.active) == ["f1"]
