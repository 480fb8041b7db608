"""The terminal summary: the results in words, with the numbers from results.json."""

from __future__ import annotations

import re
from pathlib import Path

from geo_recon.report import load_run, summary
from geo_recon.report.facts import fmt_ms
from tests.unit.report.conftest import load


def test_async_region_loss_summary(region_loss: dict[str, Path]) -> None:
    run = region_loss["async"]
    results = load(run, "results.json")
    text = summary(load_run(run))
    assert text.startswith("region-loss · async scheme · seed 3 · regions a, b")
    assert "verdict: NOT MET: 1 of 19 expectations not met: region b: 2 message(s) stored more than once" in text
    assert "  NOT MET  region b: 2 message(s) stored more than once (at most 0 allowed)" in text
    assert "  met      region a: 0 message(s) stored more than once (at most 0 allowed)" in text
    assert "checker: INVALID (lost, duplicates)" in text
    # the region table: b lost 30 (a's last 0.8 s before the kill, less the 2 sends in flight), 2 duplicates
    b = results["regions"]["b"]
    assert (b["lost"], b["duplicates"], b["redelivered"]) == (30, 2, 1)
    row = next(line.split() for line in text.splitlines() if line.startswith("  b "))
    assert row[:9] == ["b", f"{b['expected']:,}", "30", "0", "2", "1", "0", "0", "0"]
    assert row[9] == "/".join(fmt_ms(b["lag_ms"][k], unit=False) for k in ("p50", "p99", "max"))
    # the fault, with convergence, RPO and RTO
    rpo = results["rpo"][0]
    assert rpo["count"] == 30
    assert re.search(r"f1: kill a, 5\.99\d s \.\. 11\.99\d s \(region loss\)", text)
    assert "never converged (still missing: b 30)" in text
    assert f"RPO a: 30 acknowledged messages never left it (oldest {fmt_ms(rpo['window_ms'])} before the fault" in text
    rto_a = next(x for x in results["rto"] if x["region"] == "a")
    assert f"RTO: a {fmt_ms(rto_a['ms'])}, b no failed send" in text
    # first cases of each anomaly, explained
    assert "lost: 30 in all (acknowledged but never received); first 3:" in text
    assert f"  - {results['cases']['lost'][0]['explanation']}" in text
    assert "duplicates: 2 in all" in text and "is stored 2 times in b (distinct msg_ids)" in text
    assert "recovered: 1 in all" in text


def test_strong_region_loss_summary(region_loss: dict[str, Path]) -> None:
    text = summary(load_run(region_loss["strong"]))
    assert "verdict: MET: every expectation of the scenario was met (23 checks)." in text
    assert "checker: VALID" in text
    assert "converged 500 ms after the stop" in text
    assert "RPO a: 0 acknowledged messages never left it" in text
    assert re.search(r"RTO: a 6\.0\d s, b 1\.0\d s", text)
    assert "lost:" not in text


def test_real_run_numbers(real_run1: Path) -> None:
    text = summary(load_run(real_run1))
    assert "verdict: NO VERDICT" in text and "the checker found the history valid" in text
    assert "6,000 acknowledged sends from 2 producer(s) in 2 region(s), 24,000 receipts over 19.208 s" in text
    assert re.search(r"^  a +6,000 +0 +0 +0 +0 +0 +0 +0  17\.0/632/850$", text, re.M)
    assert "publish latency ms p50/p99/max: a 8.28/585/683, b 5.82/244/372" in text
    assert "b->a 25.9/748/850" in text
    assert "faults: none recorded in the history" in text


def test_undecided_run_summary(undecided: Path) -> None:
    text = summary(load_run(undecided))
    assert "verdict: COULD NOT DECIDE: check: no acknowledged send (no 'ok' send line)" in text
    assert "worker a: died before finishing" in text
    assert "region  expected" not in text


def test_cases_per_kind(region_loss: dict[str, Path]) -> None:
    text = summary(load_run(region_loss["async"]), cases_per_kind=1)
    assert "lost: 30 in all (acknowledged but never received); first 1:" in text
