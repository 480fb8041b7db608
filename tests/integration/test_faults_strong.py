"""Faults on a real strong (stretched) lab: WAN latency on the publish path, a region killed."""

import pytest

from tests.conftest import run_cli
from tests.integration import lab_helpers as h
from tests.integration import run_helpers as r

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "trst", 17200, 107


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    h.up(NAME, "strong", BASE, SUBNET)
    yield
    run_cli("lab", "down", "--name", NAME)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def test_wan_latency_raises_publish_latency_by_about_a_round_trip(lab, runs):
    code, run_dir, log = r.run_scenario("latency-strong", runs)
    assert code == 0, log[-3000:]
    start, stop, start_line = r.fault_window(run_dir)
    assert abs(start_line["measured"]["added_rtt_ms a->b"] - 50) <= 5
    ok_times = r.acked(run_dir)
    for producer in ("a/p0", "b/p0"):
        before = [(ok - inv) / 1e6 for k, (inv, ok) in ok_times.items() if k[0] == producer and inv < start - 2e9]
        during = [(ok - inv) / 1e6 for k, (inv, ok) in ok_times.items()
                  if k[0] == producer and start < inv < r.scheduled_stop_ns(run_dir) - 1e9]  # surely on then
        assert len(during) >= 50, len(during)
        # An ack needs a bookie in the other region: at least one added round trip (50 ms), for every send,
        # whatever the CPU did. The floor rises by it; the median is queueing on a starved machine.
        added = start_line["measured"]["added_rtt_ms a->b"]
        assert min(during) >= 0.8 * added, (producer, min(before), min(during), added)
        assert min(before) < min(during), (producer, min(before), min(during))


def test_a_killed_region_loses_nothing_acknowledged(lab, runs):
    code, run_dir, log = r.run_scenario("kill-strong", runs)
    assert code == 0, log[-3000:]
    result = r.results(run_dir)
    assert all(result["regions"][x]["lost"] == 0 for x in ("a", "b"))
    rpo = next(p for p in result["rpo"] if p["fault_id"] == "f1" and p["region"] == "a")
    assert rpo["count"] == 0
    # Writes in b stalled while only one region could store them, then resumed.
    rto_b = next(x for x in result["rto"] if x["fault_id"] == "f1" and x["region"] == "b")
    assert rto_b["failed"] is True and rto_b["recovered"] is True
