"""`geo-recon judge RUN_DIR` on stored run directories (tests/e2e/runs): each failure in one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

RUNS = REPO / "tests" / "e2e" / "runs"


def _checked(name: str, tmp_path: Path) -> Path:
    run = shutil.copytree(RUNS / name, tmp_path / name)
    run_cli("check", str(run), "--write")
    assert (run / "results.json").is_file()
    return run


@pytest.mark.parametrize(("name", "line"), [
    ("producer-never-started", "NOT MET   region a: never published: no send invoked (a/p0: could not create a "
                               "producer on persistent://geo/recon/t0: Pulsar error: ConnectError)"),
    ("worker-died", "NOT MET   region b: consume worker died before finishing (log: logs/worker-b-consume.log)"),
    ("lost-without-limit", "NOT MET   region b: 3 acknowledged message(s) lost (none allowed: the scenario neither "
                           "allows lost nor sets max_lost)"),
])
def test_a_stored_run_that_went_wrong_is_not_met_in_one_clear_line(name: str, line: str, tmp_path: Path) -> None:
    run = _checked(name, tmp_path)
    judged = run_cli("judge", str(run))
    assert judged.returncode == 1, judged.stdout + judged.stderr
    assert line in judged.stdout.splitlines()
    assert judged.stdout.splitlines()[-1].startswith(f"NOT MET: {name} (async)")


def test_the_checker_alone_finds_nothing_wrong_with_a_producer_that_never_started(tmp_path: Path) -> None:
    run = shutil.copytree(RUNS / "producer-never-started", tmp_path / "r")
    assert run_cli("check", str(run)).returncode == 0  # what b sent arrived everywhere: only the verdict sees it


def test_an_unchecked_run_cannot_be_decided(tmp_path: Path) -> None:
    run = shutil.copytree(RUNS / "lost-without-limit", tmp_path / "r")
    judged = run_cli("judge", str(run))
    assert judged.returncode == 2
    assert f"UNDECIDED {run}: no results.json: the history was never checked" in judged.stdout


def test_json_is_the_verdict_json_shape(tmp_path: Path) -> None:
    import json

    run = _checked("worker-died", tmp_path)
    judged = run_cli("judge", str(run), "--json")
    verdict = json.loads(judged.stdout)
    assert judged.returncode == 1 and verdict["met"] is False and verdict["scheme"] == "async"
    assert {"name", "limit", "actual", "met", "where", "words"} <= set(verdict["judgements"][0])


def test_not_a_run_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    judged = run_cli("judge", str(tmp_path))
    assert judged.returncode == 2
    assert judged.stderr.strip().splitlines() == [f"error: scenario {tmp_path / 'scenario.yaml'} does not exist"]
