"""The strong scheme on a real stretched lab: placement proved, and one region's bookies lost."""

import json
import signal
import time
import uuid

import pytest
import requests

from geo_recon.deploy import local, procs, state
from geo_recon.deploy.pulsar_tools import pulsar_admin
from tests.conftest import run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tsstrong", 13600, 104


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    endpoints, _ = h.up(NAME, "strong", BASE, SUBNET)
    configured = run_cli("configure", "--lab", NAME)
    assert configured.returncode == 0, configured.stderr
    yield {"endpoints": endpoints, "configured": configured}
    run_cli("lab", "down", "--name", NAME)


def test_verify_config_proves_every_write_set_spans_two_regions(lab):
    proc = run_cli("verify-config", "--lab", NAME, "--json")
    assert proc.returncode == 0, proc.stdout
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    placement = checks["ledger placement spans regions"]
    assert placement["ok"] and "all span two regions" in placement["detail"]
    assert checks["namespace persistence"]["detail"].startswith("E/W/A reads back as 2/2/2")


def test_the_official_pulsar_admin_reads_the_same_persistence(lab):
    out = pulsar_admin(lab["endpoints"]["b"]["admin_url"], "namespaces", "get-persistence", "geo/recon")
    policy = json.loads(out)
    assert (policy["bookkeeperEnsemble"], policy["bookkeeperWriteQuorum"], policy["bookkeeperAckQuorum"]) == (2, 2, 2)


def test_a_persistence_that_lets_one_region_ack_fails_verification(lab):
    admin = lab["endpoints"]["a"]["admin_url"]
    body = {"bookkeeperEnsemble": 2, "bookkeeperWriteQuorum": 2, "bookkeeperAckQuorum": 1,
            "managedLedgerMaxMarkDeleteRate": 0}
    assert requests.post(f"{admin}/admin/v2/namespaces/geo/recon/persistence", json=body, timeout=10).status_code in (200, 204)
    try:
        proc = run_cli("verify-config", "--lab", NAME, "--no-probe")
        assert proc.returncode == 1
        assert "FAIL namespace persistence: E/W/A reads back as 2/2/1, wanted 2/2/2" in proc.stdout
        assert "FAIL an ack needs two regions: ack quorum 1 of write quorum 2" in proc.stdout
    finally:
        assert run_cli("configure", "--lab", NAME).returncode == 0
    assert run_cli("verify-config", "--lab", NAME, "--no-probe").returncode == 0


def test_with_every_bookie_of_one_region_dead_no_publish_is_acked_until_it_returns(lab):
    """Observed behaviour (Pulsar 4.0.7, E/W/A 2/2/2, region-aware, 1 bookie per region):
    sends pending when the bookie dies time out; later sends stall (neither ok nor timeout)
    while the region's bookies are down; all of them are acked once a bookie returns.
    What must hold in any case: nothing is acked with a single region storing it."""
    import pulsar

    client = pulsar.Client(lab["endpoints"]["a"]["service_url"], logger=local.pulsar_logger(),
                           operation_timeout_seconds=10)
    outcomes: dict[int, tuple[str, float]] = {}
    try:
        producer = client.create_producer(f"persistent://geo/recon/bookie-loss-{uuid.uuid4().hex[:6]}",
                                          send_timeout_millis=5000)
        producer.send(b"warm-up")
        lab_state = state.load(NAME)
        bookie = lab_state.component("b/bookie")
        procs.signal_group(bookie.ref, signal.SIGKILL)
        assert procs.wait_dead(bookie.ref, 10), "the bookie did not die"
        killed_at = time.monotonic()

        def record(i):
            return lambda res, _mid: outcomes.setdefault(i, (str(res), time.monotonic() - killed_at))

        for i in range(10):
            producer.send_async(f"during-{i}".encode(), record(i))
            time.sleep(1)
        time.sleep(6)
        during = dict(outcomes)
        assert during, "no send completed at all during the outage: expected the first ones to time out"
        assert all(result != "Result.Ok" for result, _ in during.values()), during

        local.start_component(lab_state, bookie)
        restarted_at = time.monotonic() - killed_at
        deadline = time.monotonic() + 90
        after = 10
        while time.monotonic() < deadline and not any(r == "Result.Ok" and i >= 10 for i, (r, _) in outcomes.items()):
            producer.send_async(f"after-{after}".encode(), record(after))
            after += 1
            time.sleep(1)
        oks = [t for i, (r, t) in outcomes.items() if r == "Result.Ok"]
        assert oks, f"publishing never resumed after the bookie came back: {outcomes}"
        assert min(oks) >= restarted_at  # no ack before the second region could store it
    finally:
        client.close()
