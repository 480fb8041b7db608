"""`geo-recon check` and `bench check`: a run's history checked with no cluster; the checker's speed."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from geo_recon.check.bench import format_report, run_bench
from geo_recon.check.columnar import write_columnar as build_columnar
from geo_recon.check.core import check_run, write_results
from geo_recon.check.tuning import tune_allocator
from geo_recon.cli.load import bench_load
from geo_recon.report.text import check_summary


@click.command("check")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON (the results.json shape).")
@click.option("--skip-bad", is_flag=True, help="Skip corrupt or truncated lines (counted and reported) instead of "
                                               "stopping at the first one.")
@click.option("--allow", multiple=True, metavar="KINDS",
              help="Anomalies that do not make the run invalid, e.g. --allow duplicates,reordered. "
                   "Adds to run.json 'allowed'.")
@click.option("--max-cases", type=click.IntRange(min=0), default=10, show_default=True,
              help="Cases explained per anomaly and region.")
@click.option("--write", is_flag=True, help="Also write RUN_DIR/results.json.")
@click.option("--write-columnar", is_flag=True, help="(Re)build RUN_DIR/columnar/, the faster copy of the history, "
                                                     "from the JSONL before checking.")
@click.option("--source", type=click.Choice(["auto", "jsonl", "columnar"]), default="auto", show_default=True,
              help="auto: the columnar copy when it matches the JSONL, else the JSONL.")
@click.pass_context
def check(ctx: click.Context, run_dir: Path, as_json: bool, skip_bad: bool, allow: tuple[str, ...], max_cases: int,
          write: bool, write_columnar: bool, source: str) -> None:
    """Check a run's history: lost, duplicated, reordered, unexpected messages; lag, convergence, RPO, RTO.

    Exit 0 when valid, 1 when anomalies make it invalid, 2 when it cannot be decided.
    """
    tune_allocator()
    if write_columnar:
        build_columnar(run_dir, skip_bad=skip_bad)
        source = "columnar"
    result = check_run(run_dir, skip_bad=skip_bad, allow=allow, max_cases=max_cases, source=source)
    if write:
        path = write_results(result, run_dir)
        if not as_json:
            click.echo(f"wrote {path}", err=True)
    if as_json:
        click.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(check_summary(result.to_json(), run_dir=run_dir))
    ctx.exit(0 if result.valid else 1)


@click.group("bench")
def bench() -> None:
    """Benchmarks that need no cluster."""


@bench.command("check")
@click.option("--messages", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Acknowledged messages in the synthetic history.")
@click.option("--regions", type=click.IntRange(min=1, max=26), default=3, show_default=True)
@click.option("--producers", type=click.IntRange(min=1), default=None,
              help="Producers (default: 4 per region).")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Generate into (and keep) this run directory instead of a temporary one.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also time the naive DuckDB SQL baseline over the same data.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Time the checks and DuckDB's query over the JSONL this many times, interleaved; the ratios are "
                   "those of the medians.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_check(messages: int, regions: int, producers: int | None, keep: Path | None, seed: int, baseline: bool,
                rounds: int, as_json: bool) -> None:
    """Generate a synthetic history, then time JSONL ingest, the check and a DuckDB baseline."""
    tune_allocator()
    report = run_bench(messages=messages, regions=regions, producers=producers, keep=keep, seed=seed,
                       baseline=baseline, rounds=rounds, progress=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_report(report))


bench.add_command(bench_load)
