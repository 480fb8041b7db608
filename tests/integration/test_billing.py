"""The billing reconciliation on real labs, both schemes, a region killed in the middle."""

import json

import pytest

from geo_recon.history import iter_file
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.root]
SCENARIO = REPO / "tests" / "integration" / "scenarios" / "billing.yaml"
NAME, BASE, SUBNET = "tbill", 28000, 108  # the scenario's lab


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("billing")
    run_cli("lab", "down", "--name", NAME, "--force")
    proc = run_cli("run", str(SCENARIO), "--schemes", "strong,async", "--runs", str(root), timeout=1500)
    dirs = {d.name.split("-")[2]: d for d in root.iterdir() if d.is_dir() and d.name.startswith("t-billing-")}
    return proc, dirs, root


def _report(run_dir):
    return json.loads((run_dir / "billing" / "report.json").read_text())


def test_every_injected_business_error_is_found_or_hidden_by_the_outage(runs):
    proc, dirs, _ = runs
    assert set(dirs) == {"strong", "async"}, proc.stdout + proc.stderr[-3000:]
    for scheme, run_dir in dirs.items():
        b = _report(run_dir)
        assert b["injected"] > 0 and b["found"] > 0, scheme
        assert b["missed_unexplained"] == 0 and b["found_more_than_once"] == 0, (scheme, b["missed_cases"])


def test_no_exception_is_left_without_a_cause(runs):
    _, dirs, _ = runs
    for scheme, run_dir in dirs.items():
        b = _report(run_dir)
        assert b["unexplained"] == 0, (scheme, b["cases"].get("unexplained"))
        verdict = json.loads((run_dir / "verdict.json").read_text())
        assert any(j["name"] == "billing_errors_found" and j["met"] for j in verdict["judgements"])


def test_the_stretched_cluster_loses_no_billing_event_and_the_comparison_shows_the_false_exceptions(runs):
    proc, dirs, root = runs
    assert _report(dirs["strong"])["exceptions"].get("replication_loss", 0) == 0
    assert _report(dirs["strong"])["late_events"].get("replication_loss", 0) == 0
    comparison = json.loads((root / "comparison.json").read_text())
    rows = {r["key"]: r for r in comparison["rows"]}
    assert rows["billing_false"]["values"] == [_report(dirs["strong"])["false_exceptions"],
                                              _report(dirs["async"])["false_exceptions"]]
    assert "billing: false exceptions from replication" in proc.stdout


def test_the_end_to_end_rate_and_verdict_delay_are_measured(runs):
    proc, dirs, root = runs
    for scheme, run_dir in dirs.items():
        t = _report(run_dir)["throughput"]
        assert t is not None and t["transactions_per_s"] > 0 and t["span_s"] > 0, scheme
        # a verdict is final only after its bucket's lateness bound has passed, so it comes later than its event
        assert 0 < t["verdict_delay_ms_p50"] <= t["verdict_delay_ms_p99"], (scheme, t)
    comparison = json.loads((root / "comparison.json").read_text())
    assert "billing_delay" in {r["key"] for r in comparison["rows"]}


def test_the_reconciler_records_its_receipts_and_judge_agrees_with_run(runs):
    _, dirs, _ = runs
    for scheme, run_dir in dirs.items():
        receipts = [e for _, _, e, _ in iter_file(run_dir / "history" / "b-reconciler.jsonl")]
        assert receipts and all(r["type"] == "recv" and r["process"] == "b/reconciler" for r in receipts), scheme
        run = json.loads((run_dir / "run.json").read_text())
        assert "b/reconciler" in run["clock_offsets_ns"], scheme  # its receipt times are corrected like any other
        met = json.loads((run_dir / "verdict.json").read_text())["met"]
        judged = run_cli("judge", str(run_dir))
        assert judged.returncode == {True: 0, False: 1, None: 2}[met], (scheme, judged.stdout)
