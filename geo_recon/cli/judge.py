"""``geo-recon judge RUN_DIR``: re-apply the stored scenario's expectations to a stored run.

As ``check`` re-checks a history, ``judge`` re-judges the stored results with
the same function ``run`` uses (:func:`geo_recon.verdict.judge_run_dir`), so
the two always agree. Exit codes: 0 met, 1 not met, 2 could not decide (a line
undecided, nothing judged, or a run directory that cannot be read).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

EXIT_CODES = {True: 0, False: 1, None: 2}


@click.command("judge")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON (the verdict.json shape).")
@click.option("--all", "show_all", is_flag=True, help="Print every line, not only those not met or undecided.")
@click.pass_context
def judge(ctx: click.Context, run_dir: Path, as_json: bool, show_all: bool) -> None:
    """Judge RUN_DIR's results against its scenario's expectations; exit 0 met, 1 not met, 2 undecided."""
    from geo_recon.verdict import judge_run_dir, mark

    stored = judge_run_dir(run_dir)
    if as_json:
        click.echo(json.dumps(stored.to_json(), indent=2))
    else:
        shown = [j for j in stored.judgements if show_all or j.met is not True]
        for j in shown:
            click.echo(f"{mark(j.met)} {j.words}")
        word = {True: "MET", False: "NOT MET", None: "COULD NOT DECIDE"}[stored.met]
        bad = sum(1 for j in stored.judgements if j.met is False)
        undecided = sum(1 for j in stored.judgements if j.met is None)
        click.echo(f"{word}: {stored.scenario} ({stored.scheme}), {len(stored.judgements)} line(s) judged"
                   + (f", {bad} not met" if bad else "") + (f", {undecided} undecided" if undecided else "")
                   + ("" if stored.judgements else ": nothing was judged"))
    ctx.exit(EXIT_CODES[stored.met])
