"""A real 2-region strong lab: one Pulsar cluster stretched over two namespaces plus a ZooKeeper witness."""

import re
import signal
import uuid

import pytest
import requests

from geo_recon.deploy import local
from tests.conftest import run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tstrong", 11200, 102


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    killed = h.start_then_signal(NAME, "strong", BASE, SUBNET, signal.SIGKILL)  # leaves a half-started lab
    half_started = h.leftovers(NAME, [])
    endpoints, log = h.up(NAME, "strong", BASE, SUBNET)
    yield {"endpoints": endpoints, "log": log, "killed": killed, "half_started": half_started}
    run_cli("lab", "down", "--name", NAME)


def test_a_half_started_lab_is_detected_and_cleaned(lab):
    assert lab["killed"].returncode == -signal.SIGKILL
    assert any(item.startswith(("marker process", "netns")) for item in lab["half_started"]), lab["half_started"]
    assert "found a stale lab" in lab["log"]


def test_round_trip_in_every_region(lab):
    for ep in lab["endpoints"].values():
        assert local.round_trip(ep["service_url"], timeout=30) < 10_000


def test_one_cluster_with_a_broker_and_a_region_labelled_bookie_per_region(lab):
    a, b = lab["endpoints"]["a"], lab["endpoints"]["b"]
    for ep in (a, b):
        assert requests.get(f"{ep['admin_url']}/admin/v2/clusters", timeout=10).json() == ["geo"]
    brokers = requests.get(f"{a['admin_url']}/admin/v2/brokers/geo", timeout=10).json()
    assert sorted(x.split(":")[0] for x in brokers) == ["198.18.102.10", "198.18.102.11"]
    racks = requests.get(f"{b['admin_url']}/admin/v2/bookies/racks-info", timeout=10).json()["default"]
    assert {bookie: info["rack"] for bookie, info in racks.items()} == {
        f"198.18.102.10:{BASE + 181}": "/a/rack-1", f"198.18.102.11:{BASE + 281}": "/b/rack-1"}


def test_a_message_sent_through_one_region_is_read_through_the_other(lab):
    import pulsar

    topic = f"persistent://public/default/cross-{uuid.uuid4().hex[:6]}"
    a = pulsar.Client(lab["endpoints"]["a"]["service_url"], logger=local.pulsar_logger())
    b = pulsar.Client(lab["endpoints"]["b"]["service_url"], logger=local.pulsar_logger())
    try:
        consumer = b.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
        a.create_producer(topic).send(b"hello from a")
        assert consumer.receive(timeout_millis=20000).data() == b"hello from a"
    finally:
        a.close()
        b.close()


def test_the_topic_ledger_is_written_to_bookies_in_both_regions(lab):
    ep = lab["endpoints"]["a"]
    topic = f"persistent://public/default/placement-{uuid.uuid4().hex[:6]}"
    local.round_trip(ep["service_url"], timeout=30, topic=topic)
    path = topic.replace("persistent://", "/admin/v2/persistent/") + "/internalStats?metadata=true"
    ledgers = requests.get(ep["admin_url"] + path, timeout=10).json()["ledgers"]
    ensemble = re.search(r"ensembles=\{0=\[([^\]]*)\]", ledgers[-1]["metadata"]).group(1)
    assert sorted(x.strip().split(":")[0] for x in ensemble.split(",")) == ["198.18.102.10", "198.18.102.11"]


def test_down_leaves_no_process_namespace_or_rule(lab):
    pids = h.component_pids(NAME)
    assert len(pids) == 5
    proc = run_cli("lab", "down", "--name", NAME)
    assert proc.returncode == 0, proc.stderr
    assert h.leftovers(NAME, pids) == []
