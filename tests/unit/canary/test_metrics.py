"""The canary's Prometheus exposition, endpoints, alert rules and dashboard (no cluster)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from geo_recon.canary.checker import CanaryChecker
from geo_recon.canary.metrics import METRICS, PREFIX, CanaryCollector, CanaryView, MetricsServer
from tests.conftest import REPO

MONITORING = REPO / "geo_recon" / "canary" / "monitoring"
MS = 1_000_000


def _view() -> CanaryView:
    c = CanaryChecker(["a", "b"], deadline_s=10)
    c.sent("a/p", "a", 0, 0)
    c.acked("a/p", 0, MS)
    c.delivered("a", "a/p", 0, "m", 3 * MS)
    c.delivered("b", "a/p", 0, "n", 700 * MS)
    c.sent("a/p", "a", 1, 2 * MS)
    c.acked("a/p", 1, 3 * MS)
    c.advance(20_000 * MS)  # seq 1 reached nobody: lost in a and b
    return CanaryView(c.snapshot(), {"a": True, "b": False}, None)


def _exposition() -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CanaryCollector(_view))
    return generate_latest(registry).decode()


def test_names_follow_prometheus_conventions_and_carry_origin_and_region():
    text = _exposition()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for doc in METRICS:
        base = f"{PREFIX}_{doc.name}".removesuffix("_total")
        assert base in families, base
        fam = families[base]
        assert fam.type == doc.kind, (base, fam.type)
        for sample in fam.samples:
            assert set(doc.labels) <= set(sample.labels), sample
    counters = [line.split("{")[0] for line in text.splitlines() if line.startswith(PREFIX) and "_total" in line]
    assert counters and all(name.endswith("_total") for name in counters)
    assert f'{PREFIX}_lost_total{{origin="a",region="b"}} 1.0' in text
    assert f'{PREFIX}_lost_total{{origin="a",region="a"}} 1.0' in text
    assert f'{PREFIX}_lag_seconds_bucket{{le="1.0",origin="a",region="b"}} 1.0' in text
    assert f'{PREFIX}_lag_seconds_bucket{{le="0.5",origin="a",region="b"}} 0.0' in text
    assert f'{PREFIX}_region_up{{region="b"}} 0.0' in text


def test_the_server_serves_metrics_and_health_and_says_when_unhealthy():
    healthy = {"ok": True}
    server = MetricsServer("127.0.0.1", 0, view=_view,
                           health=lambda: (healthy["ok"], {"regions": {"a": {"up": True}}}))
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert f"{PREFIX}_delivered_total" in body and f"{PREFIX}_process_resident_memory_bytes" in body
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        healthy["ok"] = False
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
            raise AssertionError("an unhealthy canary answered 200")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and json.loads(exc.read())["status"] == "unhealthy"
    finally:
        server.close()


def _promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool (Debian's prometheus package) is missing: run scripts/setup or scripts/install-prometheus"
    return binary


def test_the_alert_rules_load_and_fire_on_loss_and_exposure(tmp_path):
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", str(MONITORING / "alerts.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = tmp_path / "alerts_test.yml"
    test.write_text(json.dumps({
        "rule_files": [str(MONITORING / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'{PREFIX}_lost_total{{origin="a",region="b"}}', "values": "0 0 0 3 3 3"},
                {"series": f'{PREFIX}_lost_total{{origin="b",region="a"}}', "values": "0 0 0 0 0 0"},
                {"series": f'{PREFIX}_exposure_oldest_seconds{{origin="a"}}', "values": "0 40 100 160 220 280"},
                {"series": f"{PREFIX}_deadline_seconds", "values": "60 60 60 60 60 60"},
            ],
            "alert_rule_test": [
                {"eval_time": "2m", "alertname": "GeoReconCanaryLoss", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "GeoReconCanaryLoss",
                 "exp_alerts": [{"exp_labels": {"severity": "page", "origin": "a", "region": "b"},
                                 "exp_annotations": {
                                     "summary": "Cross-region loss a -> b",
                                     "description": "3 messages acknowledged in a were not delivered in b within "
                                                    "the canary's deadline in the last 15 minutes."}}]},
                {"eval_time": "2m", "alertname": "GeoReconCanaryExposureHigh", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "GeoReconCanaryExposureHigh",
                 "exp_alerts": [{"exp_labels": {"severity": "page", "origin": "a"},
                                 "exp_annotations": {
                                     "summary": "a: 3m 40s of acknowledged writes exist only there",
                                     "description": "Messages acknowledged in a have reached no other region for "
                                                    "3m 40s; losing a now would lose them "
                                                    "(geo_recon_canary_exposure_messages counts them)."}}]},
            ],
        }],
    }))
    run = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_dashboard_only_queries_series_the_canary_exports():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 6
    exported = {f"{PREFIX}_{m.name}" for m in METRICS} | {f"{PREFIX}_lag_seconds_bucket", f"{PREFIX}_process_resident_memory_bytes"}
    for expr in exprs:
        names = set(re.findall(rf"{PREFIX}_[a-z_]+", expr))
        assert names and names <= exported, expr
