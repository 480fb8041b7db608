"""`geo-recon run` on `backend: compose`, on a real Docker engine with the images built here.

The module starts dockerd (no iptables changes, no bridge) when none runs, builds or finds the
images (``geo-recon compose images``), runs the scenarios, and at the end proves that nothing of
its labs is left (containers, networks, volumes) and that the host firewall is as it found it.
Verdicts agree with the local lab's on the same scenario and seed: smoke-compose.yaml is
scenarios/smoke.yaml (which tests/e2e/test_run_cli.py runs on a local lab) on another backend, and
kill-strong is the very scenario test_faults_strong runs on a local lab; the same facts are asserted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from geo_recon.deploy import engine, images, pulsar_dist
from geo_recon.deploy.netns import RULE_COMMENT
from tests.conftest import REPO, run_cli
from tests.integration import run_helpers as r

pytestmark = [pytest.mark.container, pytest.mark.integration, pytest.mark.root]
PROJECTS = ("geo-recon-dc-async", "geo-recon-dck-strong")  # smoke-compose.yaml, kill-strong on compose
# Compose labs publish their ports on the host's loopback: base .. base + 100 * (regions + 1) - 1.
LABS = (("dc", 29200, None), ("dck", 29600, None))  # (name, base port, subnet): smoke-compose.yaml's lab, kill-strong's


def _firewall() -> str:
    """iptables and ip6tables rules without their counters, and without the local labs' own FORWARD rules
    (tagged geo-recon:<lab>), which come and go with the labs other modules run at the same time."""
    local_lab_rule = '--comment "' + RULE_COMMENT.format(lab="")
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run([tool], capture_output=True, text=True)
        out += [line.split(" [")[0] if line.startswith(":") else line
                for line in proc.stdout.splitlines() if not line.startswith("#") and local_lab_rule not in line]
    return "\n".join(out)


def _docker_lines(*args: str) -> list[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


def _leftovers() -> list[str]:
    found = []
    for project in PROJECTS:
        label = f"label=com.docker.compose.project={project}"
        found += [f"container {c}" for c in _docker_lines("ps", "-a", "--filter", label, "--format", "{{.Names}}")]
        found += [f"network {n}" for n in _docker_lines("network", "ls", "--filter", label, "--format", "{{.Name}}")]
        found += [f"volume {v}" for v in _docker_lines("volume", "ls", "--filter", label, "--format", "{{.Name}}")]
    return found


@pytest.fixture(scope="module")
def docker_engine():
    firewall = _firewall()
    state = engine.engine_up()
    engine.install_compose_plugin()
    try:
        built = images.ensure_local()
        yield {"firewall": firewall, "images": built}
    finally:
        left = _leftovers()
        if state.started_here:
            engine.engine_down()
        assert not left, f"left behind: {left}"
        assert _firewall() == firewall, "the host firewall changed"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def _variant(source: Path, out: Path, *, backend: str, lab: dict, duration_s: float | None = None) -> Path:
    """The same scenario (seed, workload, faults, expectations) on another backend and lab."""
    doc = yaml.safe_load(source.read_text())
    doc["topology"].update(backend=backend, lab=lab)
    if duration_s is not None:
        doc["workload"]["duration_s"] = duration_s
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _run(scenario: Path, runs: Path) -> tuple[int, Path, str]:
    proc = run_cli("run", str(scenario), "--runs", str(runs), timeout=1200)
    return proc.returncode, (runs / "latest").resolve(), proc.stdout + proc.stderr


def test_the_images_carry_what_the_compose_files_use(docker_engine):
    by_role = {i.role: i for i in docker_engine["images"]}
    assert set(by_role) == {"base", "pulsar", "toxiproxy", "worker"}
    pulsar = by_role["pulsar"].alias
    probe = ("java -version 2>&1 | head -1; ls /pulsar/lib | grep -c jar; touch /pulsar/data/x /pulsar/logs/x; "
             "command -v curl nc bash python3; grep -h '^networkaddress' /etc/java-17-openjdk/security/java.security")
    out = _docker_lines("run", "--rm", "--network", "none", pulsar, "bash", "-c", probe)
    assert out[0].startswith('openjdk version "17'), out
    assert int(out[1]) > 300  # the server classpath
    assert len(out[2:6]) == 4 and all(p.startswith("/") for p in out[2:6]), out
    # the last definition wins (Debian's file already sets the negative TTL to 10 s)
    assert dict(line.split("=", 1) for line in out[6:]) == {"networkaddress.cache.ttl": "1",
                                                           "networkaddress.cache.negative.ttl": "1"}
    # the same inputs again: nothing is rebuilt
    assert not any(i.built for i in images.ensure_local())


def _same_scenario(a: Path, b: Path) -> None:
    """Equal but for the name, description and where it runs (backend, lab)."""
    docs = []
    for path in (a, b):
        doc = yaml.safe_load(path.read_text())
        for key in ("name", "description"):
            doc.pop(key, None)
        for key in ("backend", "lab"):
            doc["topology"].pop(key, None)
        docs.append(doc)
    assert docs[0] == docs[1], f"{a} and {b} no longer describe the same run"


def test_smoke_on_compose_is_met_as_on_the_local_lab(docker_engine, runs):
    # tests/e2e/test_run_cli.py runs scenarios/smoke.yaml (this scenario on a local lab) and asserts MET
    _same_scenario(REPO / "scenarios" / "smoke-compose.yaml", REPO / "scenarios" / "smoke.yaml")
    code, run_dir, log = _run(REPO / "scenarios" / "smoke-compose.yaml", runs / "smoke")
    assert code == 0, log[-4000:]
    assert f"async (Pulsar {pulsar_dist.PULSAR_VERSION}): expectations MET" in log
    assert json.loads((run_dir / "run.json").read_text())["backend"] == "compose"
    result = r.results(run_dir)
    assert all(result["regions"][x]["lost"] == 0 for x in ("a", "b"))
    assert min(result["regions"][x]["expected"] for x in ("a", "b")) > 1000  # the load really ran


def test_a_killed_region_on_compose_loses_nothing_acknowledged(docker_engine, runs, tmp_path):
    # A killed container is healed by `start` until its health check passes: 30-40 s on 2 cores, where a local
    # JVM is back in a few. `run` keeps the load going the recovery limit past the *scheduled* heal, so the
    # compose variant loads longer, or recovery after the real heal would not be observed (undecided).
    scenario = _variant(r.SCENARIOS / "kill-strong.yaml", tmp_path / "kill-strong-compose.yaml", backend="compose",
                        lab={"name": LABS[1][0], "base_port": LABS[1][1]}, duration_s=90)
    code, run_dir, log = _run(scenario, runs / "kill")
    assert code == 0, log[-4000:]
    assert f"strong (Pulsar {pulsar_dist.PULSAR_VERSION}): expectations MET" in log
    # what test_faults_strong asserts of the same scenario on a local lab
    result = r.results(run_dir)
    assert all(result["regions"][x]["lost"] == 0 for x in ("a", "b"))
    rpo = next(p for p in result["rpo"] if p["fault_id"] == "f1" and p["region"] == "a")
    assert rpo["count"] == 0
    rto_b = next(x for x in result["rto"] if x["fault_id"] == "f1" and x["region"] == "b")
    assert rto_b["failed"] is True and rto_b["recovered"] is True


def test_nothing_of_the_runs_is_left_and_the_firewall_is_unchanged(docker_engine):
    assert _leftovers() == []
    assert _firewall() == docker_engine["firewall"]
