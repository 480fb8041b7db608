"""The fault driver of `geo-recon run`: any error from a fault makes the run undecidable, and heals run."""

import threading
import time

import pytest

from geo_recon.errors import LabError
from geo_recon.faults.spec import FaultSpec, ScheduledFault
from geo_recon.faults.driver import drive as _drive_faults


class _Injector:
    def __init__(self, error: BaseException | None):
        self.error, self.calls = error, []

    def inject(self, fault):
        self.calls.append(("inject", fault.id))
        if self.error:
            raise self.error

    def heal(self, fault):
        self.calls.append(("heal", fault.id))

    def heal_all(self):
        self.calls.append(("heal_all",))
        return []


def _schedule():
    spec = FaultSpec(kind="latency", between=["a", "b"], rtt_ms=50, at_s=0, duration_s=0.01)
    return [ScheduledFault("f1", spec, 0.0, 0.01)]


@pytest.mark.parametrize("error, words", [
    (LabError("toxiproxy did not start on 198.18.106.1:35090"), "toxiproxy did not start"),
    (ValueError("bad value"), "ValueError: bad value"),
])
def test_an_error_that_is_not_a_fault_error_still_stops_the_run(error, words):
    injector, stop, errors = _Injector(error), threading.Event(), []
    _drive_faults(injector, _schedule(), time.time_ns(), stop, errors)
    assert stop.is_set()
    assert len(errors) == 1 and errors[0].startswith("f1 (") and words in errors[0]
    assert injector.calls == [("inject", "f1"), ("heal_all",)]


def test_a_fault_that_works_is_injected_healed_and_swept():
    injector, stop, errors = _Injector(None), threading.Event(), []
    _drive_faults(injector, _schedule(), time.time_ns(), stop, errors)
    assert errors == [] and not stop.is_set()
    assert injector.calls == [("inject", "f1"), ("heal", "f1"), ("heal_all",)]


# ---------------------------------------------------------------- capabilities, command faults


from geo_recon.deploy.external import ExternalBackend  # noqa: E402
from geo_recon.deploy.local_backend import LocalLabBackend  # noqa: E402
from geo_recon.deploy.topology import LabSpec  # noqa: E402
from geo_recon.errors import ConfigError, FaultError  # noqa: E402
from geo_recon.faults.driver import FaultDriver, refuse_unsupported  # noqa: E402
from geo_recon.faults.spec import expand  # noqa: E402


def _scheduled(**spec):
    return expand([FaultSpec(**spec)], 60, 0)


def test_a_fault_the_backend_cannot_do_is_refused_before_anything_starts(tmp_path):
    external = ExternalBackend(tmp_path / "clusters.yaml")  # not even read: refused first
    with pytest.raises(ConfigError, match=r"^s.yaml: fault f1 \(kill a\): the external backend cannot do kill "
                                          r"faults \(capabilities: none of them; every backend has command"):
        refuse_unsupported(external, _scheduled(kind="kill", target="a"), "s.yaml: ")
    refuse_unsupported(external, _scheduled(kind="command", command={"inject": "true", "heal": "true"}))
    refuse_unsupported(external, _scheduled(kind="replication", target="b"))
    lab = LocalLabBackend(LabSpec(regions=("a", "b"), scheme="async"))
    for kind, extra in (("kill", {"target": "a"}), ("pause", {"target": "a/broker"}),
                        ("partition", {"groups": [["a"], ["b"]]}), ("bandwidth", {"rate_kbps": 100})):
        refuse_unsupported(lab, _scheduled(kind=kind, **extra))


def _command_driver(tmp_path):
    events, messages = [], []
    driver = FaultDriver(ExternalBackend(tmp_path / "none.yaml"), regions=["a", "b"], namespace="geo/recon",
                         on_event=events.append, progress=messages.append)
    driver._deployment = _NoSecrets()
    return driver, events, messages


class _NoSecrets:
    secrets = ()


def test_a_command_fault_runs_inject_then_verify_then_heal_and_records_both_ends(tmp_path):
    flag = tmp_path / "broken"
    driver, events, _ = _command_driver(tmp_path)
    [fault] = _scheduled(kind="command", target="b", command={
        "inject": f"touch {flag}", "verify": f"test -e {flag}", "heal": f"rm {flag}", "timeout_s": 5})
    driver.inject(fault)
    assert flag.exists() and list(driver.active) == ["f1"]
    driver.heal(fault)
    assert not flag.exists() and driver.active == {}
    assert [(e["phase"], e["fault"], e["target"]) for e in events] == [("start", "command", "b"), ("stop", "command", "b")]
    assert "verified_after_s" in events[0]["measured"]


def test_a_command_fault_that_does_not_take_effect_fails_and_is_still_healed(tmp_path):
    healed = tmp_path / "healed"
    driver, events, _ = _command_driver(tmp_path)
    [fault] = _scheduled(kind="command", command={"inject": "true", "verify": "false", "heal": f"touch {healed}",
                                                  "timeout_s": 1})
    with pytest.raises(FaultError, match=r"f1: not in effect: the verify command still exits 1 1s after inject"):
        driver.inject(fault)
    assert driver.heal_all() == ["f1"] and healed.exists()


def test_a_command_that_hangs_is_stopped_at_its_time_limit(tmp_path):
    driver, _, _ = _command_driver(tmp_path)
    [fault] = _scheduled(kind="command", command={"inject": "sleep 30", "heal": "true", "timeout_s": 0.5})
    started = time.monotonic()
    with pytest.raises(FaultError, match=r"f1: inject command did not finish within 0.5s: sleep 30"):
        driver.inject(fault)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("spec, words", [
    ({"kind": "command"}, "a command fault needs command"),
    ({"kind": "kill", "target": "a", "command": {"inject": "x", "heal": "y"}}, "a kill fault takes no command"),
    ({"kind": "replication"}, "a replication fault needs a target"),
])
def test_fault_specs_that_cannot_work_are_refused(spec, words):
    with pytest.raises(ValueError, match=words):
        FaultSpec(**spec)


class _Lab:
    """A backend whose kill and start just take the time they take."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def kill(self, fault_id, spec):
        self.calls.append(("kill", fault_id))

    def start(self, fault_id):
        self.calls.append(("start", fault_id))


def test_clients_recover_from_the_heal_as_verified_not_as_scheduled():
    schedule = expand([FaultSpec(kind="kill", target="a", at_s=1, duration_s=2),
                       FaultSpec(kind="latency", rtt_ms=20, between=["a", "b"], at_s=1, duration_s=2)], 60, 0)
    events = []
    driver = FaultDriver(_Lab(), regions=["a", "b"], namespace="geo/recon", on_event=events.append)
    start_at_ns = time.time_ns() - 10_000_000_000  # the load started 10 s ago
    kill = next(f for f in schedule if f.spec.kind == "kill")
    driver.inject(kill)
    assert driver.recover_from_s(schedule, start_at_ns) == {kill.id: None}  # only the kill stops clients; not healed
    driver.heal(kill)
    stop = next(e for e in events if e["phase"] == "stop")
    (healed_s,) = driver.recover_from_s(schedule, start_at_ns).values()
    assert healed_s == round((stop["time"] - start_at_ns) / 1e9, 3) and 9.9 < healed_s < 11  # now, not at 3 s
