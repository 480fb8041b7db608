"""`geo-recon check`, `judge`, `report` and `compare` on the stored region-disaster runs (tests/e2e/runs): a lost
region's RPO, exposure, RTO per client, replicated subscription and the strong stall, the same from every command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

RUNS = REPO / "tests" / "e2e" / "runs"

ASYNC_LINES = [
    "    RPO a: 5 acknowledged messages never left it (oldest 496 ms before the fault; their acks span 400 ms)",
    "    region a lost at 19.999 s (lose f1; rebuilt at 29.999 s)",
    "      exposure at the loss: 5 acknowledged messages of a not yet received elsewhere, acks spanning 400 ms",
    "      RTO per client: a/p0 (producer) 3.20 s on b, failed over; a/c0 (consumer) 4.10 s on b, failed over",
    "      subscription sub-a: 10 messages re-consumed after failover, 2 gaps (b/p0:200, b/p0:201)",
    "      writes: first acknowledgement in any region 5.00 ms after the loss",
    "      not counted: 2 acknowledged messages region a's consumers could not receive while it was lost "
    "(reported, not counted as lost there)",
]
STRONG_STALL = "      writes stalled for 12.00 s: they resumed 2.00 s after the rebuild"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for scheme in ("async", "strong"):
        run = shutil.copytree(RUNS / f"region-disaster-{scheme}", tmp_path_factory.mktemp(scheme) / "run")
        checked = run_cli("check", str(run), "--write")
        assert checked.returncode in (0, 1), checked.stderr
        (run / "check.txt").write_text(checked.stdout)
        judged = run_cli("judge", "--json", str(run))
        (run / "verdict.json").write_text(judged.stdout)
        out[scheme] = run
    return out


def test_check_prints_the_lost_regions_figures(runs: dict[str, Path]) -> None:
    lines = (runs["async"] / "check.txt").read_text().splitlines()
    for line in ASYNC_LINES:
        assert line in lines
    strong = (runs["strong"] / "check.txt").read_text().splitlines()
    assert STRONG_STALL in strong
    assert "      RTO per client: a/p0 (producer) 12.00 s on a; a/c0 (consumer) 12.01 s on a" in strong
    results = json.loads((runs["async"] / "results.json").read_text())
    assert results["region_loss"][0]["rpo"] == {"count": 5, "first_ok_s": 19.503, "last_ok_s": 19.903, "span_s": 0.4}


def test_report_shows_the_same_figures_as_check(runs: dict[str, Path]) -> None:
    for scheme, wanted in (("async", ASYNC_LINES[1:]), ("strong", [STRONG_STALL])):
        report = run_cli("report", str(runs[scheme]))
        assert report.returncode == (1 if scheme == "async" else 0), report.stdout + report.stderr
        checked = (runs[scheme] / "check.txt").read_text().splitlines()
        block = [line for line in checked if line.startswith("      ") or line.startswith("    region ")]
        assert block and all(line in report.stdout.splitlines() for line in block)
        assert all(line in report.stdout.splitlines() for line in wanted)
        html = (runs[scheme] / "report.html").read_text()
        assert 'class="region-loss"' in html and "RTO per client" in html
        assert "exposure at the loss" in (runs[scheme] / "report.md").read_text()


def test_judge_lines_about_the_lost_region(runs: dict[str, Path]) -> None:
    judged = run_cli("judge", "--all", str(runs["async"]))
    assert judged.returncode == 1
    out = judged.stdout.splitlines()
    assert ("met       region a lost (f1): producer a/p0: sending again 3.2 s after the loss on cluster b after "
            "failing over (at most 10 s)") in out
    assert ("NOT MET   region a lost (f1): subscription sub-a: 2 message(s) a surviving region received that it "
            "never got (at most 0)") in out
    assert run_cli("judge", str(runs["strong"])).returncode == 0


def test_compare_strong_and_async(runs: dict[str, Path], tmp_path: Path) -> None:
    shown = run_cli("compare", str(runs["strong"]), str(runs["async"]), "-o", str(tmp_path / "cmp"))
    assert shown.returncode == 0, shown.stderr
    rows = {r["key"]: r for r in json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]}
    assert rows["rpo_span_s"]["cells"] == ["a: 0", "a: 5 (400 ms)"]
    assert rows["client_rto"]["cells"] == ["a: a/p0 12.00 s, a/c0 12.01 s", "a: a/p0 3.20 s via b, a/c0 4.10 s via b"]
    assert rows["writes_after_loss"]["cells"][0] == "a: writes stalled for 12.00 s: they resumed 2.00 s after the rebuild"
    assert rows["subscriptions"]["cells"] == ["a: not replicated", "a: sub-a 10 again / 2 gaps"]
