"""junit.xml: one testsuite per run, one testcase per judgement, plus "checker: history valid".

A judgement not met is a ``<failure>`` with its words; a history with anomalies
that are not allowed fails the checker testcase. A run that could not decide
has ``<error>`` elements saying why, so CI shows it as broken, never as green.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from geo_recon.report import facts as F
from geo_recon.report.model import RunData

CHECKER_CASE = "checker: history valid"
VERDICT_CASE = "verdict: decided"


def _case(parent: ET.Element, classname: str, name: str, *, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(parent, "testcase", {"classname": classname, "name": name, "time": f"{seconds:.3f}"})


def _fail(case: ET.Element, tag: str, message: str, kind: str, text: str | None = None) -> None:
    el = ET.SubElement(case, tag, {"message": message, "type": kind})
    el.text = text if text is not None else message


def suite(data: RunData) -> ET.Element:
    scenario = data.scenario or data.run_dir.name
    scheme = data.scheme or "unknown"
    classname = f"geo-recon.{scenario}.{scheme}"
    phases = data.outcome.phases if data.outcome else {}
    el = ET.Element("testsuite", {"name": f"{scenario} [{scheme}]", "hostname": socket.gethostname()})
    props = ET.SubElement(el, "properties")
    for key, value in (("scenario", scenario), ("scheme", scheme), ("seed", data.seed), ("run_id", data.run_id),
                       ("run_dir", str(data.run_dir))):
        if value is not None:
            ET.SubElement(props, "property", {"name": key, "value": str(value)})

    checker = _case(el, classname, CHECKER_CASE, seconds=float(phases.get("check", 0.0)))
    results = data.results
    if results is None:
        _fail(checker, "error", f"no results: {data.error or 'results.json is missing'}", "undecided",
              "\n".join(data.notes()))
    elif not results.get("valid"):
        kinds = list(results.get("anomaly_types") or [])
        totals = results.get("totals") or {}
        message = "anomalies found: " + ", ".join(f"{k} {totals.get(k, '?')}" for k in kinds)
        details = [message]
        for group in F.case_groups(results, limit=3):
            if group.kind in kinds:
                details += [f"{group.kind}:"] + [f"  - {x}" for x in group.explanations]
        _fail(checker, "failure", message, "anomalies", "\n".join(details))

    if data.verdict is not None:
        for j in data.verdict.judgements:
            case = _case(el, classname, j.title)
            if j.met is False:
                _fail(case, "failure", j.words, j.name)
            elif j.met is None:
                _fail(case, "error", f"could not decide: {j.words}", "undecided")
    met = data.met
    if met is None and (data.verdict is None or data.interrupted or data.error):
        why = ("the run was interrupted" if data.interrupted else data.error
               or "verdict.json is missing: no expectations were judged")
        _fail(_case(el, classname, VERDICT_CASE), "error", f"could not decide: {why}", "undecided",
              "\n".join(data.notes()))

    cases = el.findall("testcase")
    el.set("tests", str(len(cases)))
    el.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    el.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    el.set("skipped", "0")
    el.set("time", f"{sum(phases.values()):.3f}")
    return el


def render(runs: Sequence[RunData]) -> str:
    """A ``<testsuites>`` document with one testsuite per run."""
    root = ET.Element("testsuites", {"name": "geo-recon"})
    suites = [suite(d) for d in runs]
    root.extend(suites)
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
