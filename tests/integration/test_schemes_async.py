"""Async geo-replication configured and verified on a real 2-region lab."""

import json
import uuid

import pytest
import requests

from geo_recon.deploy import local
from geo_recon.deploy.pulsar_tools import pulsar_admin
from tests.conftest import run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tsasync", 12400, 103


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    endpoints, _ = h.up(NAME, "async", BASE, SUBNET)
    first = run_cli("configure", "--lab", NAME)
    second = run_cli("configure", "--lab", NAME)
    yield {"endpoints": endpoints, "first": first, "second": second}
    run_cli("lab", "down", "--name", NAME)


def test_configure_is_idempotent(lab):
    assert lab["first"].returncode == 0, lab["first"].stderr
    assert "registered peer cluster b" in lab["first"].stdout
    assert "namespace geo/recon replicated to a, b" in lab["first"].stdout
    assert lab["second"].returncode == 0
    assert "already configured, nothing changed" in lab["second"].stdout


def test_verify_config_reads_every_setting_back(lab):
    proc = run_cli("verify-config", "--lab", NAME, "--json")
    assert proc.returncode == 0, proc.stdout
    checks = json.loads(proc.stdout)["checks"]
    names = {(c["region"], c["name"]) for c in checks if c["ok"]}
    for region in ("a", "b"):
        assert (region, "namespace geo/recon replicated to all regions") in names
        assert (region, "deduplication off") in names


def test_the_official_pulsar_admin_reads_the_same_settings(lab):
    for region, ep in lab["endpoints"].items():
        assert sorted(pulsar_admin(ep["admin_url"], "namespaces", "get-clusters", "geo/recon").split()) == ["a", "b"]
        peer = "b" if region == "a" else "a"
        peer_info = json.loads(pulsar_admin(ep["admin_url"], "clusters", "get", peer))
        assert peer_info["brokerServiceUrl"] == lab["endpoints"][peer]["service_url"]


def _send_and_receive(src_url: str, dst_url: str, topic: str) -> bytes:
    import pulsar

    src = pulsar.Client(src_url, logger=local.pulsar_logger())
    dst = pulsar.Client(dst_url, logger=local.pulsar_logger())
    try:
        consumer = dst.subscribe(topic, "check", initial_position=pulsar.InitialPosition.Earliest)
        payload = uuid.uuid4().bytes
        src.create_producer(topic).send(payload)
        while True:
            msg = consumer.receive(timeout_millis=30000)
            if msg.data() == payload:
                return msg.properties().get("__MSG_PROP_REPL_SOURCE_POSITION", "")
    finally:
        src.close()
        dst.close()


def test_a_message_published_in_each_region_arrives_in_the_other(lab):
    a, b = lab["endpoints"]["a"]["service_url"], lab["endpoints"]["b"]["service_url"]
    topic = f"persistent://geo/recon/ab-{uuid.uuid4().hex[:6]}"
    # The replicated copy carries the source position: it really came through the replicator.
    assert _send_and_receive(a, b, topic)
    assert _send_and_receive(b, a, topic)


def test_status_shows_both_links_connected(lab):
    topic = f"persistent://geo/recon/st-{uuid.uuid4().hex[:6]}"
    _send_and_receive(lab["endpoints"]["a"]["service_url"], lab["endpoints"]["b"]["service_url"], topic)
    proc = run_cli("status", "--lab", NAME, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "not end-to-end lag" in report["note"]
    assert report["regions"]["a"][topic]["replication"]["b"]["connected"] is True
    assert report["regions"]["b"][topic]["replication"]["a"]["connected"] is True


def test_a_namespace_missing_a_region_fails_verification_by_name(lab):
    admin_a = lab["endpoints"]["a"]["admin_url"]
    resp = requests.post(f"{admin_a}/admin/v2/namespaces/geo/recon/replication", json=["a"], timeout=10)
    assert resp.status_code in (200, 204), resp.text
    try:
        proc = run_cli("verify-config", "--lab", NAME)
        assert proc.returncode == 1
        assert "FAIL [a] namespace geo/recon replicated to all regions: replication clusters ['a']; missing b" \
            in proc.stdout
    finally:
        fixed = run_cli("configure", "--lab", NAME)
    assert "namespace geo/recon replicated to a, b" in fixed.stdout
    assert run_cli("verify-config", "--lab", NAME).returncode == 0
