"""Comparison of runs: one column per run, one row per measure, each row also in words; refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from geo_recon.report.compare import CompareRefused, compare, compare_runs, default_out_dir
from geo_recon.report.model import ReportError
from tests.unit.report.conftest import copy_run, edit, load


@pytest.fixture(scope="module")
def strong_vs_async(region_loss: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("cmp") / "out"
    text = compare_runs([region_loss["strong"], region_loss["async"]], out)
    return text, out


def rows_by_key(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in json.loads((out / "comparison.json").read_text())["rows"]}


def test_rows_hold_each_runs_numbers(strong_vs_async: tuple[str, Path], region_loss: dict[str, Path]) -> None:
    _, out = strong_vs_async
    rows = rows_by_key(out)
    assert list(rows) == ["verdict", "rpo_messages", "rpo_s", "rto", "rpo_span_s", "exposure", "client_rto",
                          "writes_after_loss", "publish_p50_ms", "publish_p99_ms",
                          "lag_p50_ms", "lag_p99_ms", "duplicates", "lost", "convergence", "throughput"]
    strong, async_ = load(region_loss["strong"], "results.json"), load(region_loss["async"], "results.json")
    assert rows["verdict"]["values"] == [True, False]
    assert rows["verdict"]["cells"] == ["met", "NOT MET"]
    assert rows["rpo_messages"]["values"] == [0, 30]
    assert rows["rpo_s"]["values"] == [0.0, round(async_["rpo"][0]["window_ms"] / 1000, 6)]
    assert rows["duplicates"]["values"] == [0, 2]
    assert rows["lost"]["values"] == [0, 30] and rows["lost"]["cells"] == ["0", "30 (b 30)"]
    assert rows["publish_p99_ms"]["values"] == [{o: s["p99"] for o, s in r["publish_latency_ms"].items()}
                                                for r in (strong, async_)]
    assert rows["lag_p50_ms"]["values"][1] == {g: v["lag_ms"]["p50"] for g, v in async_["regions"].items()}
    assert rows["convergence"]["values"] == [round(strong["convergence"][0]["ms"] / 1000, 6), None]
    assert rows["convergence"]["cells"] == ["0.50 s", "never (b 30 missing)"]
    rto = rows["rto"]["values"]
    assert rto[1]["b"] == 0.0 and 5.9 < rto[0]["a"] < 6.1 and 0.9 < rto[0]["b"] < 1.1
    ok = [r["run"]["sends"]["ok"] for r in (strong, async_)]
    assert rows["throughput"]["values"] == [round(n / 20.0, 3) for n in ok]


def test_rows_in_words(strong_vs_async: tuple[str, Path]) -> None:
    _, out = strong_vs_async
    words = {k: r["words"] for k, r in rows_by_key(out).items()}
    rpo = json.loads((out / "comparison.json").read_text())["runs"][1]["rpo_s"]
    assert words["rpo_messages"] == (f"strong lost 0 acknowledged messages when region a died; "
                                     f"async lost 30 (RPO {rpo:.2f} s).")
    assert words["verdict"].startswith("strong met every expectation of the scenario; async did not: region b: 2 "
                                       "message(s) stored more than once")
    assert re.fullmatch(r"lowest in async: [\d.]+ ms \(worst origin\); strong [\d.]+ ms \(\+[\d.]+ ms, [\d.]+×\)\.",
                        words["publish_p99_ms"])
    assert words["duplicates"] == "strong none; async stored 2 messages more than once."
    assert words["lost"] == "strong lost none; async lost 30 acknowledged messages in b."
    assert words["convergence"] == ("strong converged 0.50 s after the fault healed, async never converged "
                                    "(30 in b still missing).")
    assert re.fullmatch(r"publishing in a: strong 6\.\d\d s, async 6\.\d\d s; publishing in b: strong 1\.\d\d s, "
                        r"async no failed send\.", words["rto"])


def test_terminal_table_and_files(strong_vs_async: tuple[str, Path]) -> None:
    text, out = strong_vs_async
    lines = text.splitlines()
    assert lines[0].startswith("comparison of region-loss (seed 3): strong = ")
    header = next(line for line in lines if line.strip().startswith("strong"))
    assert header.split() == ["strong", "async"]
    assert re.search(r"^  RPO \(acknowledged messages lost\) +0 +30$", text, re.M)
    assert re.search(r"^  verdict +met +NOT MET$", text, re.M)
    assert "  - RPO (acknowledged messages lost): strong lost 0 acknowledged messages when region a died" in text
    md = (out / "comparison.md").read_text()
    assert "| RPO (acknowledged messages lost) | 0 | 30 |" in md
    html = (out / "comparison.html").read_text()
    assert '<tr id="row-rpo_messages"><th>RPO (acknowledged messages lost)</th>' in html
    for fig in ("fig-compare-latency", "fig-compare-cdf"):
        assert re.search(rf'<figure id="{fig}"><svg .*?</svg><figcaption>', html, re.S), fig
    assert "http" not in re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"', "", html).replace(
        "http://www.w3.org/", "")


def test_refuses_different_scenarios_or_seeds(region_loss: dict[str, Path], tmp_path: Path) -> None:
    other = copy_run(region_loss["async"], tmp_path / "other")
    edit(other, "run.json", seed=4)
    edit(other, "resolved.json", seed=4)
    with pytest.raises(CompareRefused, match=r"seeds differ: .* has seed 3, .* has seed 4 \(--force"):
        compare([region_loss["strong"], other])
    edit(other, "run.json", scenario="partition-heal", seed=3)
    edit(other, "verdict.json", scenario="partition-heal")
    with pytest.raises(CompareRefused, match=r"scenarios differ: .* is region-loss, .* is partition-heal"):
        compare([region_loss["strong"], other])
    forced = compare([region_loss["strong"], other], force=True)
    assert forced.forced and forced.mismatches[0].startswith("scenarios differ")
    assert CompareRefused("x").exit_code == 2


def test_needs_two_runs(region_loss: dict[str, Path]) -> None:
    with pytest.raises(ReportError, match="at least two"):
        compare([region_loss["strong"]])


def test_an_undecided_run_is_compared_with_dashes_and_says_why(region_loss: dict[str, Path], tmp_path: Path,
                                                                 undecided: Path) -> None:
    c = compare([region_loss["strong"], undecided], force=True)
    rows = {r.key: r for r in c.rows}
    assert [m.label for m in c.runs] == ["strong", "async"]
    assert rows["verdict"].cells == ("met", "could not decide")
    assert rows["lost"].cells == ("0", "-")
    assert rows["rpo_messages"].cells == ("0", "-")
    assert "async has no results (check: no acknowledged send" in rows["lost"].words


def test_same_scheme_twice_is_labelled_by_directory(region_loss: dict[str, Path], tmp_path: Path) -> None:
    again = copy_run(region_loss["async"], tmp_path / "region-loss-async-2")
    c = compare([region_loss["async"], again])
    assert [m.label for m in c.runs] == ["region-loss-async", "region-loss-async-2"]
    rows = {r.key: r for r in c.rows}
    assert rows["lost"].words.startswith("region-loss-async lost 30")
    assert rows["throughput"].words.startswith("about the same in every run")


def test_no_faults_means_rpo_does_not_apply(real_run1: Path, tmp_path: Path) -> None:
    second = copy_run(real_run1, tmp_path / "run1-again")
    rows = {r.key: r for r in compare([real_run1, second], force=True).rows}
    assert rows["rpo_messages"].cells == ("n/a", "n/a")
    assert rows["rpo_messages"].words == "no region-loss fault in these runs: RPO does not apply."
    assert rows["convergence"].words == "no fault was healed in these runs: convergence does not apply."


def test_default_out_dir_is_beside_the_first_run(region_loss: dict[str, Path]) -> None:
    out = default_out_dir([region_loss["strong"], region_loss["async"]])
    assert out == region_loss["strong"].parent / "compare-region-loss-strong-vs-async"


def test_same_scheme_on_two_pulsar_versions_is_labelled_by_version(region_loss: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    old = copy_run(region_loss["async"], tmp_path / "old")
    new = copy_run(region_loss["async"], tmp_path / "new")
    for run_dir, version in ((old, "3.0.2"), (new, "3.0.7")):
        resolved = load(run_dir, "resolved.json") if (run_dir / "resolved.json").exists() else {}
        (run_dir / "resolved.json").write_text(json.dumps({**resolved, "versions": {"pulsar": version}}))
    c = compare([old, new])
    assert [m.label for m in c.runs] == ["async 3.0.2", "async 3.0.7"]
