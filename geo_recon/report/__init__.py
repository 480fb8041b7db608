"""Reports of a run: the terminal summary, report.md, report.html (with plots) and junit.xml; and comparisons.

Public API::

    render_run(run_dir) -> list[Path]          # writes report.md, report.html, junit.xml into run_dir
    load_run(run_dir) -> RunData               # what the run directory holds, typed
    summary(data) -> str                       # the terminal summary
    compare_runs(run_dirs, out_dir, *, force=False) -> str   # geo_recon.report.compare

Pure rendering of files on disk: no cluster, no network. A run that could not
decide (no results.json or verdict.json) is still rendered, saying plainly
what is missing and why. Importing this package imports no plotting library;
matplotlib is loaded when report.html is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from geo_recon.report.model import Judgement, Outcome, ReportError, RunData, Verdict, load_run
from geo_recon.rundir import RunDir

REPORT_MD = RunDir.REPORT_MD
REPORT_HTML = RunDir.REPORT_HTML
JUNIT_XML = RunDir.JUNIT_XML


def write_text(path: Path, text: str) -> Path:
    """Write atomically: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_run(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Render ``RUN_DIR``'s report.md, report.html and junit.xml from the files there; returns their paths."""
    from geo_recon.report import html, junit, markdown, plots

    data = load_run(run_dir)
    out = Path(run_dir)
    written = [write_text(out / REPORT_MD, markdown.render(data)),
               write_text(out / JUNIT_XML, junit.render([data]))]
    drawn = plots.run_plots(data.results) if data.results is not None else []
    written.insert(1, write_text(out / REPORT_HTML, html.render(data, drawn)))
    return written


def summary(data: RunData, *, cases_per_kind: int = 3) -> str:
    """The terminal summary of a run (see :mod:`geo_recon.report.text`)."""
    from geo_recon.report.text import summary as text_summary

    return text_summary(data, cases_per_kind=cases_per_kind)


def compare_runs(run_dirs: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 force: bool = False) -> str:
    """See :func:`geo_recon.report.compare.compare_runs`."""
    from geo_recon.report.compare import compare_runs as compare

    return compare(run_dirs, out_dir, force=force)


__all__ = ["JUNIT_XML", "REPORT_HTML", "REPORT_MD", "Judgement", "Outcome", "ReportError", "RunData", "Verdict",
           "compare_runs", "load_run", "render_run", "summary"]
