"""junit.xml: one testsuite per run, one testcase per judgement, plus the checker's; failures carry the words."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from geo_recon.report import load_run
from geo_recon.report.junit import CHECKER_CASE, VERDICT_CASE, render
from tests.unit.report.conftest import copy_run, load


def parse(run_dir: Path) -> ET.Element:
    root = ET.parse(run_dir / "junit.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == root.get("tests")
    for kind in ("failure", "error"):
        n = sum(1 for c in cases if c.find(kind) is not None)
        assert suite.get(f"{kind}s") == str(n) == root.get(f"{kind}s")
    assert suite.get("skipped") == "0"
    return suite


def test_async_run_fails_one_judgement_and_the_checker(region_loss: dict[str, Path]) -> None:
    suite = parse(region_loss["async"])
    verdict = load(region_loss["async"], "verdict.json")
    assert suite.get("name") == "region-loss [async]"
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == [CHECKER_CASE] + [f"{j['name']} [{j['where']}]" for j in verdict["judgements"]]
    failed = {c.get("name"): c.find("failure") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert set(failed) == {CHECKER_CASE, "max_duplicates [b]"}
    dup = failed["max_duplicates [b]"]
    assert dup is not None
    assert dup.get("message") == "region b: 2 message(s) stored more than once (at most 0 allowed)"
    checker = failed[CHECKER_CASE]
    assert checker is not None and checker.get("message") == "anomalies found: lost 30, duplicates 2"
    assert "was never received in b" in (checker.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["scheme"] == "async" and props["seed"] == "3" and props["scenario"] == "region-loss"
    assert float(suite.get("time", "0")) == 44.6  # the orchestrator's phases


def test_strong_run_passes_everything(region_loss: dict[str, Path]) -> None:
    suite = parse(region_loss["strong"])
    assert suite.get("tests") == "24" and suite.get("failures") == "0" and suite.get("errors") == "0"


def test_undecided_run_is_errors_not_green(undecided: Path) -> None:
    text = render([load_run(undecided)])
    (undecided / "junit.xml").write_text(text)
    suite = parse(undecided)
    errors = {c.get("name"): c.find("error") for c in suite.findall("testcase")}
    assert set(errors) == {CHECKER_CASE, VERDICT_CASE}
    assert all(e is not None and "no acknowledged send" in (e.get("message") or "") for e in errors.values())


def test_results_without_verdict_has_an_undecided_verdict_case(real_run1: Path) -> None:
    (real_run1 / "junit.xml").write_text(render([load_run(real_run1)]))
    suite = parse(real_run1)
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases[CHECKER_CASE].find("failure") is None and cases[CHECKER_CASE].find("error") is None
    error = cases[VERDICT_CASE].find("error")
    assert error is not None and "verdict.json is missing" in (error.get("message") or "")


def test_several_runs_make_several_suites(region_loss: dict[str, Path], tmp_path: Path) -> None:
    root = ET.fromstring(render([load_run(region_loss["strong"]), load_run(region_loss["async"])]))
    assert [s.get("name") for s in root.findall("testsuite")] == ["region-loss [strong]", "region-loss [async]"]
    assert root.get("failures") == "2" and root.get("tests") == "44"


def test_words_with_xml_specials_survive(region_loss: dict[str, Path], tmp_path: Path) -> None:
    import json

    run = copy_run(region_loss["async"], tmp_path / "r")
    verdict = load(run, "verdict.json")
    failing = next(i for i, j in enumerate(verdict["judgements"]) if j["met"] is False)
    verdict["judgements"][failing]["words"] = 'lag <5 & "quoted" \u2192 ok'
    (run / "verdict.json").write_text(json.dumps(verdict))
    (run / "junit.xml").write_text(render([load_run(run)]))
    failure = parse(run).findall("testcase")[failing + 1].find("failure")
    assert failure is not None and failure.get("message") == 'lag <5 & "quoted" \u2192 ok'
