"""report.html: self-contained, every plot a <figure> with an id, an inline SVG and a caption; tables with numbers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from geo_recon.report import load_run, render_run
from geo_recon.report import plots as P
from tests.unit.report.conftest import copy_run

FIGURES = ("fig-lag", "fig-rates", "fig-lag-cdf", "fig-anomalies")


class Outline(HTMLParser):
    """Figures (with what they contain), ids, external references, table cells by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.figures: dict[str, dict[str, int]] = {}
        self.figure: str | None = None
        self.ids: list[str] = []
        self.external: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.table: str | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        for key in ("src", "href"):
            value = a.get(key) or ""
            if key == "src" or tag == "link" or re.match(r"(https?:)?//", value):
                if value and not value.startswith("#"):
                    self.external.append(f"{tag} {key}={value}")
        if tag == "figure":
            self.figure = a.get("id") or "?"
            self.figures[self.figure] = {}
        elif self.figure is not None:
            self.figures[self.figure][tag] = self.figures[self.figure].get(tag, 0) + 1
        if tag == "table":
            self.table = a.get("id") or "?"
            self.tables[self.table] = []
        elif tag == "tr" and self.table:
            self.tables[self.table].append([])
        elif tag in ("td", "th") and self.table:
            self.cell = []
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.figure = None
        elif tag == "table":
            self.table = None
        elif tag in ("td", "th") and self.table and self.cell is not None:
            self.tables[self.table][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def test_async_report_html_is_self_contained_with_four_figures(region_loss: dict[str, Path]) -> None:
    html = (region_loss["async"] / "report.html").read_text()
    o = outline(html)
    assert o.external == []
    assert "<script" not in html and "<link" not in html
    assert list(o.figures) == list(FIGURES)
    for fig_id, inside in o.figures.items():
        assert inside.get("svg") == 1, fig_id
        assert inside.get("figcaption") == 1, fig_id
        assert inside.get("path", 0) >= 10, fig_id  # real drawing, not an empty box
    assert len(o.ids) == len(set(o.ids)), "duplicate ids: SVG clip paths would clash"
    assert '<section id="verdict" class="verdict not-met"><strong>NOT MET</strong>' in html


def test_tables_carry_the_numbers(region_loss: dict[str, Path]) -> None:
    o = outline((region_loss["async"] / "report.html").read_text())
    regions = {row[0]: row for row in o.tables["region-table"][1:]}
    assert regions["b"][:10] == ["b", "1,358", "30", "0", "2", "1", "0", "0", "0", "1,331"]
    judgements = [row for row in o.tables["judgement-table"][1:] if row[0] == "NOT MET"]
    assert judgements == [["NOT MET", "max_duplicates", "b", "0", "2",
                           "region b: 2 message(s) stored more than once (at most 0 allowed)"]]
    (fault,) = o.tables["fault-table"][1:]
    assert fault[0] == "f1" and fault[4] == "never converged (still missing: b 30)"
    assert fault[5].startswith("RPO a: 30 acknowledged messages never left it")
    assert fault[6].startswith("a 6.0") and fault[6].endswith("b no failed send")
    assert [row[0] for row in o.tables["publish-table"][1:]] == ["a", "b"]
    assert {row[0] for row in o.tables["lag-table"][1:]} == {"a → a", "b → a", "a → b", "b → b"}


def test_cases_are_explained_in_words(region_loss: dict[str, Path]) -> None:
    html = (region_loss["async"] / "report.html").read_text()
    assert '<h3 id="cases-lost">lost: 30 in all' in html
    assert "was never received in b, by a consumer or the reader" in html
    assert '<h3 id="cases-duplicates">duplicates: 2 in all' in html


def test_plots_show_what_their_captions_say(region_loss: dict[str, Path]) -> None:
    html = (region_loss["async"] / "report.html").read_text()
    svgs = dict(re.findall(r'<figure id="([^"]+)">(<svg.*?</svg>)', html, flags=re.S))
    texts = {}
    for fig_id, svg in svgs.items():
        root = ET.fromstring(svg)  # each inline SVG is well-formed XML
        texts[fig_id] = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "lag (ms)" in texts["fig-lag"] and "messages published in a, by receiving region" in texts["fig-lag"]
    assert "f1: kill a" in texts["fig-lag"]  # the fault window is labelled
    assert "a → b p99" in texts["fig-lag"]
    assert "region b" in texts["fig-rates"] and "acknowledged" in texts["fig-rates"]
    assert "received in a" in texts["fig-lag-cdf"] and "percentile of messages" in texts["fig-lag-cdf"]
    assert "stored_not_consumed" in texts["fig-anomalies"] and "30" in texts["fig-anomalies"].split()


def test_every_svg_reference_resolves_inside_its_own_figure(region_loss: dict[str, Path]) -> None:
    html = (region_loss["strong"] / "report.html").read_text()
    for fig_id, svg in re.findall(r'<figure id="([^"]+)">(<svg.*?</svg>)', html, flags=re.S):
        ids = set(re.findall(r'\bid="([^"]+)"', svg))
        refs = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
        assert refs and refs <= ids, fig_id
        assert all(i.startswith(f"{fig_id}-") for i in ids)
    assert "*{stroke" not in html.replace("-svg *{stroke", "")  # matplotlib's global style rule is scoped


def test_undecided_report_has_no_plots_and_says_why(undecided: Path) -> None:
    render_run(undecided)
    html = (undecided / "report.html").read_text()
    o = outline(html)
    assert o.figures == {}
    assert '<section id="verdict" class="verdict undecided"><strong>COULD NOT DECIDE</strong>' in html
    assert "No plots: they are drawn from results.json, which this run does not have" in html
    assert "No results: the run could not decide (check: no acknowledged send" in html
    assert sorted(p.name for p in undecided.iterdir()) == ["junit.xml", "outcome.json", "report.html", "report.md",
                                                             "resolved.json", "run.json"]


def test_a_plot_that_fails_is_shown_as_an_error_not_a_crash(tmp_path: Path, region_loss: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(results: object) -> None:
        raise ValueError("no such series")

    monkeypatch.setattr(P, "lag_cdf", broken)
    run = copy_run(region_loss["strong"], tmp_path / "r")
    render_run(run)
    o = outline((run / "report.html").read_text())
    assert o.figures["fig-lag-cdf"].get("svg") is None
    assert "This plot could not be drawn: ValueError: no such series" in (run / "report.html").read_text()
    assert o.figures["fig-lag"].get("svg") == 1


def test_html_escapes_what_it_is_given(tmp_path: Path, region_loss: dict[str, Path]) -> None:
    from geo_recon.report.html import render

    run = copy_run(region_loss["strong"], tmp_path / "<b>run</b>")
    html = render(load_run(run), [])
    assert "<b>run</b>" not in html and "&lt;b&gt;run&lt;/b&gt;" in html


def test_importing_the_package_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = ("import sys, geo_recon.report, geo_recon.report.compare, geo_recon.report.plots, geo_recon.cli; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_run_renders_every_plot_and_its_numbers(real_run1: Path) -> None:
    render_run(real_run1)
    o = outline((real_run1 / "report.html").read_text())
    assert list(o.figures) == list(FIGURES)
    assert all(inside.get("svg") == 1 and inside.get("path", 0) >= 10 for inside in o.figures.values())
    regions = {row[0]: row for row in o.tables["region-table"][1:]}
    assert regions["a"][1] == "6,000" and regions["a"][-4:] == ["17.0 ms", "180 ms", "632 ms", "850 ms"]
    publish = {row[0]: row[1:] for row in o.tables["publish-table"][1:]}
    assert publish["b"] == ["5.82 ms", "64.5 ms", "244 ms", "372 ms"]
    workers = {row[0]: row for row in o.tables["worker-table"][1:]}
    assert workers["a"][:4] == ["a", "finished", "3,000", "3,000"]
