"""`geo-recon run`, `report` and `compare`: a scenario end to end, and its run directory re-rendered or compared."""

from __future__ import annotations

from pathlib import Path

import click

from geo_recon import run as run_mod
from geo_recon import scenario as scenario_mod
from geo_recon.cli.common import timed_progress
from geo_recon.report import compare
from geo_recon.report import load_run, render_run, summary
from geo_recon.report.compare import COMPARISON_HTML, COMPARISON_JSON, COMPARISON_MD, compare_runs, default_out_dir


@click.command("run")
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--schemes", default=None, help="Run under these schemes one after the other, e.g. strong,async, "
                                               "and compare them (default: the scenario's scheme).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where run directories go (a `latest` link points at the newest).")
@click.option("--keep-lab", is_flag=True, help="Leave the lab running afterwards.")
@click.option("--reuse-lab", is_flag=True, help="Use a lab that is already up with the same scheme and regions.")
@click.option("--pulsar", "pulsar_versions", default=None, metavar="V1,V2",
              help="Run on these Pulsar server versions one after the other and compare them "
                   "(default: the scenario's `pulsar`, else the default version).")
def run_command(scenario_file, schemes, runs_root, keep_lab, reuse_lab, pulsar_versions) -> None:
    """Run a scenario end to end: lab, scheme, load, faults, heal, drain, check, report.

    Exit code: 0 expectations met, 1 not met, 2 could not decide, 130 interrupted."""
    scenario = scenario_mod.load(scenario_file)
    outcomes = []
    progress = timed_progress()
    for version in scenario_mod.versions_to_run(scenario, pulsar_versions):
        for scheme in scenario_mod.schemes_to_run(scenario, schemes):
            outcome = run_mod.run_scenario(scenario, scheme, runs_root=Path(runs_root), progress=progress,
                                           keep_lab=keep_lab, reuse_lab=reuse_lab, pulsar=version)
            outcomes.append(outcome)
            phases = ", ".join(f"{k} {v:.1f}s" for k, v in outcome.phases.items())
            verdict = {True: "expectations MET", False: "expectations NOT MET", None: "could not decide"}[outcome.met]
            click.echo(f"{outcome.scheme} (Pulsar {outcome.pulsar}): {verdict} -> {outcome.run_dir} ({phases})")
            if outcome.error:
                click.echo(f"  reason: {outcome.error}")
            if outcome.interrupted:
                raise SystemExit(130)
    if len(outcomes) > 1:
        click.echo(compare.compare_runs([o.run_dir for o in outcomes], out_dir=Path(runs_root)))
    codes = [o.exit_code for o in outcomes]
    raise SystemExit(2 if 2 in codes else max(codes))


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cases", "cases_per_kind", type=click.IntRange(min=0), default=3, show_default=True,
              help="Cases explained per anomaly in the terminal summary (the files have all of them).")
def report_command(run_dir: Path, cases_per_kind: int) -> None:
    """Re-render a run's report.md, report.html and junit.xml from its files, and print the summary.

    Exit 0 when the scenario's expectations were met, 1 when not, 2 when the run could not decide.
    """
    written = render_run(run_dir)
    click.echo(summary(load_run(run_dir), cases_per_kind=cases_per_kind))
    click.echo("", err=True)
    for path in written:
        click.echo(f"wrote {path}", err=True)
    raise SystemExit(load_run(run_dir).exit_code)


@click.command("compare")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write comparison.md/.html/.json (default: compare-<scenario>-<runs> beside the first run).")
@click.option("--force", is_flag=True, help="Compare runs of different scenarios or seeds anyway.")
def compare_command(run_dirs: tuple[Path, ...], out_dir: Path | None, force: bool) -> None:
    """Put runs of one scenario side by side (e.g. strong vs async): RPO, RTO, latency, lag, loss, verdict.

    Exit 2 when the runs are of different scenarios or seeds (unless --force).
    """
    out = out_dir if out_dir is not None else default_out_dir(list(run_dirs))
    click.echo(compare_runs(list(run_dirs), out, force=force))
    click.echo("", err=True)
    for name in (COMPARISON_MD, COMPARISON_HTML, COMPARISON_JSON):
        click.echo(f"wrote {out / name}", err=True)
