"""A real 2-region async lab: two independent Pulsar clusters, one per network namespace."""

import json
import signal
import subprocess
import uuid

import pytest
import requests

from geo_recon.deploy import local
from tests.conftest import run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tasync", 10000, 101


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    interrupted = h.start_then_signal(NAME, "async", BASE, SUBNET, signal.SIGINT)
    after_interrupt = h.leftovers(NAME, [])
    endpoints, log = h.up(NAME, "async", BASE, SUBNET)
    yield {"endpoints": endpoints, "log": log, "interrupted": interrupted, "after_interrupt": after_interrupt}
    run_cli("lab", "down", "--name", NAME)


def test_ctrl_c_during_up_cleans_everything(lab):
    assert lab["interrupted"].returncode == 130, lab["interrupted"].stderr
    assert lab["after_interrupt"] == []


def test_round_trip_in_every_region(lab):
    for region, ep in lab["endpoints"].items():
        assert local.round_trip(ep["service_url"], timeout=30) < 10_000, region


def test_regions_are_independent_clusters(lab):
    a, b = lab["endpoints"]["a"], lab["endpoints"]["b"]
    assert requests.get(f"{a['admin_url']}/admin/v2/clusters", timeout=10).json() == ["a"]
    assert requests.get(f"{b['admin_url']}/admin/v2/clusters", timeout=10).json() == ["b"]
    topic = f"persistent://public/default/only-in-a-{uuid.uuid4().hex[:6]}"
    local.round_trip(a["service_url"], timeout=30, topic=topic)
    path = topic.replace("persistent://", "/admin/v2/persistent/") + "/stats"
    assert requests.get(a["admin_url"] + path, timeout=10).status_code == 200
    assert requests.get(b["admin_url"] + path, timeout=10).status_code == 404  # separate metadata


def test_each_region_runs_in_its_own_network_namespace(lab):
    for pid, region in zip(h.component_pids(NAME), ["a", "b"]):
        ns = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.strip()
        assert ns == f"gr-{NAME}-{region}"
    assert lab["endpoints"]["a"]["service_url"].startswith("pulsar://198.18.101.")


def test_status_lists_every_component(lab):
    proc = run_cli("lab", "status", "--name", NAME, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    assert status["healthy"] and status["phase"] == "up"
    assert [(c["name"], c["region"], c["state"]) for c in status["components"]] == [
        ("a/standalone", "a", "running"), ("b/standalone", "b", "running")]
    assert all(c["pid"] and c["listening"] for c in status["components"])


def test_a_second_up_is_refused(lab):
    proc = run_cli("lab", "up", "--scheme", "async", *h.lab_args(NAME, BASE, SUBNET))
    assert proc.returncode == 2
    assert "already up" in proc.stderr


def test_down_leaves_no_process_namespace_or_rule(lab):
    pids = h.component_pids(NAME)
    assert len(pids) == 2 and f"pid {pids[0]} alive" in h.leftovers(NAME, pids)  # the check can see a live lab
    proc = run_cli("lab", "down", "--name", NAME)
    assert proc.returncode == 0, proc.stderr
    assert h.leftovers(NAME, pids) == []
