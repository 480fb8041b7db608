"""`geo-recon report` and `geo-recon compare` as a user runs them: output, files, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.unit.report.histories import write_region_loss

DATA = Path(__file__).resolve().parents[1] / "unit" / "report" / "data"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for scheme in ("strong", "async"):
        out[scheme] = write_region_loss(root / f"region-loss-{scheme}-1", scheme)
    out["undecided"] = root / "smoke-async-1"
    shutil.copytree(DATA / "undecided", out["undecided"])
    return out


def test_report_of_a_run_that_did_not_meet_its_expectations(runs: dict[str, Path]) -> None:
    result = run_cli("report", str(runs["async"]))
    assert result.returncode == 1, result.stderr
    assert "verdict: NOT MET: 1 of 19 expectations not met" in result.stdout
    assert "RPO a: 30 acknowledged messages never left it" in result.stdout
    for name in ("report.md", "report.html", "junit.xml"):
        assert (runs["async"] / name).stat().st_size > 0
        assert f"wrote {runs['async'] / name}" in result.stderr


def test_report_exit_codes_follow_the_verdict(runs: dict[str, Path]) -> None:
    met = run_cli("report", str(runs["strong"]))
    assert met.returncode == 0, met.stderr
    assert "verdict: MET" in met.stdout
    undecided = run_cli("report", str(runs["undecided"]))
    assert undecided.returncode == 2, undecided.stderr
    assert "verdict: COULD NOT DECIDE: check: no acknowledged send" in undecided.stdout
    assert (runs["undecided"] / "report.html").exists()


def test_report_of_something_that_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path}: not a run directory (none of run.json, results.json, " \
                                    "verdict.json, outcome.json, resolved.json is there)"


def test_compare_strong_and_async(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = run_cli("compare", str(runs["strong"]), str(runs["async"]), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "strong lost 0 acknowledged messages when region a died; async lost 30 (RPO 0." in result.stdout
    rows = {r["key"]: r for r in json.loads((out / "comparison.json").read_text())["rows"]}
    assert rows["rpo_messages"]["values"] == [0, 30]
    assert (out / "comparison.html").exists() and (out / "comparison.md").exists()


def test_compare_refuses_different_scenarios_unless_forced(runs: dict[str, Path], tmp_path: Path) -> None:
    refused = run_cli("compare", str(runs["strong"]), str(runs["undecided"]), "-o", str(tmp_path / "x"))
    assert refused.returncode == 2
    assert "refusing to compare runs of different experiments: scenarios differ" in refused.stderr
    assert "--force compares them anyway" in refused.stderr
    assert not (tmp_path / "x").exists()
    forced = run_cli("compare", "--force", str(runs["strong"]), str(runs["undecided"]), "-o", str(tmp_path / "x"))
    assert forced.returncode == 0, forced.stderr
    assert "warning (--force): scenarios differ" in forced.stdout
