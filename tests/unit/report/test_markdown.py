"""report.md: verdict, expectations, regions, faults and cases as Markdown."""

from __future__ import annotations

from pathlib import Path

from geo_recon.report import load_run
from geo_recon.report.markdown import render
from tests.unit.report.conftest import load


def rows(md: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in md.splitlines()
            if line.startswith(f"| {first_cell} |")]


def test_async_report_md(region_loss: dict[str, Path]) -> None:
    run = region_loss["async"]
    md = (run / "report.md").read_text()
    assert md.startswith("# geo-recon: region-loss (async)\n")
    assert "**Verdict: NOT MET**: 1 of 19 expectations not met" in md
    assert rows(md, "**NOT MET**") == [["**NOT MET**", "max_duplicates", "b", "0", "2",
                                        "region b: 2 message(s) stored more than once (at most 0 allowed)"]]
    assert len(rows(md, "met")) == 18
    (b,) = [row for row in rows(md, "b") if len(row) == 13]  # the regions table (not publish latency)
    assert b[:10] == ["b", "1,358", "30", "0", "2", "1", "0", "0", "0", "1,331"]
    (fault,) = rows(md, "f1")
    assert fault[1] == "kill a (region loss)"
    assert fault[4] == "never converged (still missing: b 30)"
    assert fault[5].startswith("RPO a: 30 acknowledged messages never left it")
    assert "### lost: 30 in all (acknowledged but never received; first 10 shown)" in md
    first = load(run, "results.json")["cases"]["lost"][0]["explanation"]
    assert f"1. {first}" in md


def test_undecided_report_md(undecided: Path) -> None:
    md = render(load_run(undecided))
    assert "**Verdict: COULD NOT DECIDE**: check: no acknowledged send" in md
    assert "> No results: the run could not decide" in md
    assert "## Results" not in md
    assert "| a | died before finishing" in md


def test_pipes_in_words_do_not_break_tables(region_loss: dict[str, Path]) -> None:
    from geo_recon.report.markdown import table

    (line,) = table(["a", "b"], [["x | y", "z"]])[2:]
    assert line == "| x \\| y | z |"
