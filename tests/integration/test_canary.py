"""The canary on a real 2-region async lab, scraped by a real Prometheus (Debian's package).

One module lab, one canary, one Prometheus (loopback, data in tmp) for the
whole story, in order: steady state; a partition a|b injected and healed with
`geo-recon faults` (exposure and the lag rise during it and fall after, nothing
is lost); then a partition again, region a killed and its data deleted (the
`lose` of a region): loss a -> b appears within the deadline, and Prometheus
fires the shipped loss alert.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from geo_recon.deploy import state
from tests.conftest import REPO, run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
# The canary and Prometheus listen on loopback in a free part of this lab's own ports (base .. base + 1199).
NAME, BASE, SUBNET = "tcanary", 18400, 119
CANARY_PORT, PROM_PORT = BASE + 20, BASE + 21
DEADLINE_S = 30.0
RATE = 20
RULES = REPO / "geo_recon" / "canary" / "monitoring" / "alerts.yml"


@pytest.fixture(scope="module")
def lab():
    run_cli("lab", "down", "--name", NAME, "--force")
    h.up(NAME, "async", BASE, SUBNET)
    proc = run_cli("configure", "--lab", NAME)
    assert proc.returncode == 0, proc.stderr
    yield
    run_cli("lab", "down", "--name", NAME)  # also removes the faults left in place (region a has no data left)


class _Canary:
    """The canary as a user runs it: a CLI process, stopped with SIGTERM, restarted on the same state."""

    def __init__(self, out: Path) -> None:
        self.out, self.proc, self.starts = out, None, 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.out / f"canary-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "geo_recon", "canary", "run", "--lab", NAME, "--rate", str(RATE),
             "--deadline", str(DEADLINE_S), "--listen", f"127.0.0.1:{CANARY_PORT}",
             "--state-dir", str(self.out / "state"), "--checkpoint-every", "1", "--send-timeout", "10"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        log.close()
        _wait(lambda: _get(f"http://127.0.0.1:{CANARY_PORT}/healthz") is not None, 60, "the canary's /healthz")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        finally:
            self.proc = None

    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.out.glob("canary-*.log")))[-3000:]


@pytest.fixture(scope="module")
def canary(lab, tmp_path_factory):
    runner = _Canary(tmp_path_factory.mktemp("canary"))
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def prom(canary, tmp_path_factory):
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is not installed: run scripts/setup (scripts/install-prometheus) as root"
    out = tmp_path_factory.mktemp("prometheus")
    config = out / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "canary", "static_configs": [{"targets": [f"127.0.0.1:{CANARY_PORT}"]}]}],
    }))
    log = open(out / "prometheus.log", "w")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={out / 'data'}",
                             f"--web.listen-address=127.0.0.1:{PROM_PORT}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{PROM_PORT}/-/ready") is not None, 60, "Prometheus to be ready")
        yield _Prom(f"http://127.0.0.1:{PROM_PORT}", canary)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class _Prom:
    def __init__(self, url: str, canary: _Canary) -> None:
        self.url, self.canary = url, canary

    def query(self, expr: str) -> dict[tuple, float]:
        body = _get(f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        assert body is not None, f"Prometheus did not answer {expr}"
        data = json.loads(body)["data"]["result"]
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance"))):
                float(r["value"][1]) for r in data}

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    def tail(self) -> str:
        return self.canary.log()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()
    except Exception:
        return None


def _wait(cond, timeout: float, what: str, every: float = 0.5) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _at_most(value: float | None, bound: float) -> bool:
    return value is not None and value <= bound


def _faults(*args: str) -> None:
    proc = run_cli("faults", *args, "--lab", NAME)
    assert proc.returncode == 0, proc.stderr


def test_steady_state_every_pair_delivers_and_nothing_is_exposed(prom):
    _wait(lambda: prom.value("count(geo_recon_canary_delivered_total > 20)") == 4, 90,
          "every origin -> region pair to deliver")
    health = json.loads(_get(f"http://127.0.0.1:{CANARY_PORT}/healthz") or "{}")
    assert health["status"] == "ok" and all(r["up"] for r in health["regions"].values()), health
    assert prom.value("sum(geo_recon_canary_lost_total)") == 0, prom.tail()
    assert prom.value("max(geo_recon_canary_oldest_pending_seconds)") < 5


def test_a_canary_restarted_after_more_than_the_deadline_does_not_count_its_downtime_as_loss(prom):
    before = prom.value('sum(geo_recon_canary_delivered_total{origin="a",region="b"})')
    assert prom.canary.stop() == 0, prom.tail()  # SIGTERM: a last checkpoint, then exit 0
    time.sleep(DEADLINE_S + 5)  # every message in flight at the stop is past its deadline now
    prom.canary.start()
    assert "restored" in (prom.canary.out / "canary-2.log").read_text(), prom.tail()
    _wait(lambda: (prom.value('sum(geo_recon_canary_delivered_total{origin="a",region="b"})') or 0) > before + RATE * 5,
          60, "deliveries to go on after the restart")
    time.sleep(5)
    assert prom.value("sum(geo_recon_canary_lost_total)") == 0, prom.tail()
    assert prom.value("sum(geo_recon_canary_unexpected_total)") == 0, prom.tail()


def test_a_partition_raises_exposure_and_lag_which_fall_after_the_heal_with_nothing_lost(prom):
    _faults("inject", "--kind", "partition", "--groups", "a|b")
    cut = time.monotonic()
    try:
        time.sleep(10)
        during_exposure = prom.query("max_over_time(geo_recon_canary_exposure_messages[8s])")
        during_pending = prom.value(
            'max_over_time(geo_recon_canary_oldest_pending_seconds{origin="a",region="b"}[8s])')
    finally:
        _faults("heal")
    healed = time.monotonic()
    # Both origins' acked messages sat in their own region only; a's backlog to b aged with the partition.
    assert all(v >= RATE * 4 for v in during_exposure.values()) and len(during_exposure) == 2, during_exposure
    assert during_pending is not None and during_pending >= 6, during_pending
    # Back to what steady state shows: at most a second of messages in flight.
    converged = _wait(lambda: _at_most(prom.value("max(geo_recon_canary_exposure_messages)"), RATE)
                      and _at_most(prom.value("max(geo_recon_canary_oldest_pending_seconds)"), 1.9),
                      DEADLINE_S, "exposure and pending to fall back after the heal")
    print(f"partition {healed - cut:.1f} s; converged {converged:.1f} s after the heal")
    # The messages held back were delivered with the partition's lag: p99 of a -> b over the last minute.
    p99 = prom.value('histogram_quantile(0.99, sum by (le) '
                     '(increase(geo_recon_canary_lag_seconds_bucket{origin="a",region="b"}[1m])))')
    assert p99 is not None and p99 >= 5, p99
    time.sleep(DEADLINE_S - converged + 3)  # everything the partition touched is decided by now
    assert prom.value("sum(geo_recon_canary_lost_total)") == 0, prom.tail()
    assert prom.value("sum(geo_recon_canary_late_total)") == 0, prom.tail()
    recent = prom.value('histogram_quantile(0.99, sum by (le) '
                        '(increase(geo_recon_canary_lag_seconds_bucket{origin="a",region="b"}[10s])))')
    assert recent is not None and recent <= 2.5, recent  # the lag fell back


def test_losing_a_region_with_unreplicated_writes_shows_loss_within_the_deadline(prom):
    _faults("inject", "--kind", "partition", "--groups", "a|b")
    time.sleep(6)
    _faults("inject", "--kind", "kill", "--target", "a")
    killed = time.monotonic()
    exposed = prom.value('max_over_time(geo_recon_canary_exposure_messages{origin="a"}[10s])')
    data = state.lab_dir(NAME) / "data" / "a-standalone"
    assert data.is_dir()
    shutil.rmtree(data)  # region a's data is gone: what it acked and never replicated is lost for good
    waited = _wait(lambda: (prom.value('geo_recon_canary_lost_total{origin="a",region="b"}') or 0) > 0,
                   DEADLINE_S + 15, "loss a -> b to appear")
    print(f"loss a -> b appeared {waited:.1f} s after the kill ({exposed} messages were exposed)")
    time.sleep(3)  # the rest of them are decided within a few seconds
    lost = prom.value('geo_recon_canary_lost_total{origin="a",region="b"}')
    assert lost is not None and 1 <= lost <= (exposed or 0) + RATE * 3, (lost, exposed)
    _wait(lambda: bool(prom.query('ALERTS{alertname="GeoReconCanaryLoss",alertstate="firing",origin="a",'
                                  'region="b"}')), 20, "the shipped loss alert to fire")
    rules = json.loads(_get(f"{prom.url}/api/v1/rules") or "{}")["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"GeoReconCanaryLoss", "GeoReconCanaryExposureHigh",
                                          "GeoReconCanaryLagP99High", "GeoReconCanaryRegionSilent"}
    assert all(r["health"] == "ok" for r in rules), rules
    assert time.monotonic() - killed < DEADLINE_S + 40
