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
