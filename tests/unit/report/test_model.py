"""Reading a run directory: what exists, what is missing and why, and the verdict it adds up to."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_recon.report import ReportError, load_run
from tests.unit.report.conftest import copy_run, edit


def test_a_complete_run_is_read_with_typed_verdict_and_outcome(region_loss: dict[str, Path]) -> None:
    data = load_run(region_loss["async"])
    assert (data.scenario, data.scheme, data.seed, data.regions) == ("region-loss", "async", 3, ["a", "b"])
    assert data.verdict is not None and data.verdict.met is False
    assert [j.title for j in data.verdict.not_met] == ["max_duplicates [b]"]
    assert data.outcome is not None and data.outcome.phases["check"] == 0.4
    assert data.met is False and data.exit_code == 1
    assert data.notes() == []
    assert load_run(region_loss["strong"]).exit_code == 0


def test_the_undecided_run_says_why_from_outcome_error(undecided: Path) -> None:
    data = load_run(undecided)
    assert data.results is None and data.verdict is None
    assert data.met is None and data.exit_code == 2
    notes = " ".join(data.notes())
    assert "could not decide (check: no acknowledged send" in notes
    assert "without results there was nothing to judge" in notes


def test_results_without_verdict_is_no_verdict_exit_2(real_run1: Path) -> None:
    data = load_run(real_run1)
    assert data.results is not None and data.verdict is None
    assert data.met is None and data.exit_code == 2
    assert any("verdict.json is missing" in n for n in data.notes())


def test_missing_results_without_error_tells_how_to_make_them(tmp_path: Path, region_loss: dict[str, Path]) -> None:
    run = copy_run(region_loss["async"], tmp_path / "r")
    (run / "results.json").unlink()
    (run / "verdict.json").unlink()
    (run / "outcome.json").unlink()
    notes = load_run(run).notes()
    assert any(f"geo-recon check {run} --write" in n for n in notes)


def test_interrupted_run_decides_nothing_even_if_the_verdict_was_met(tmp_path: Path,
                                                                      region_loss: dict[str, Path]) -> None:
    run = copy_run(region_loss["strong"], tmp_path / "r")
    edit(run, "run.json", interrupted=True)
    (run / "outcome.json").unlink()  # as when render_run is called by the orchestrator
    data = load_run(run)
    assert data.verdict is not None and data.verdict.met is True
    assert data.met is None
    assert any("interrupted" in n for n in data.notes())


def test_before_outcome_json_exists_the_verdict_decides(tmp_path: Path, region_loss: dict[str, Path]) -> None:
    run = copy_run(region_loss["async"], tmp_path / "r")
    (run / "outcome.json").unlink()
    assert load_run(run).met is False


def test_corrupt_files_are_reported_and_treated_as_missing(tmp_path: Path, region_loss: dict[str, Path]) -> None:
    run = copy_run(region_loss["async"], tmp_path / "r")
    (run / "results.json").write_text('{"valid": tru')
    (run / "verdict.json").write_text("[1, 2]")
    data = load_run(run)
    assert data.results is None and data.verdict is None
    notes = " ".join(data.notes())
    assert "results.json is not valid JSON (line 1" in notes
    assert "verdict.json is not a JSON object" in notes


def test_judgements_without_name_or_met_are_left_out_and_said(tmp_path: Path, region_loss: dict[str, Path]) -> None:
    run = copy_run(region_loss["async"], tmp_path / "r")
    edit(run, "verdict.json", judgements=[{"name": "max_lost", "met": True, "words": "fine"}, {"limit": 1}])
    data = load_run(run)
    assert data.verdict is not None and [j.name for j in data.verdict.judgements] == ["max_lost"]
    assert any("judgement 2 has no name or met" in n for n in data.notes())


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(ReportError, match="not a run directory"):
        load_run(tmp_path)
