"""`geo-recon billing`: the billing reconciliation workload's join engine measured alone."""

from __future__ import annotations

import dataclasses
import gc
import json

import click

from geo_recon.billing import bench
from geo_recon.cli.common import echo_progress


@click.group()
def billing() -> None:
    """The billing reconciliation workload: order, payment and ledger events joined in real time."""


@billing.command("bench")
@click.option("--transactions", default=1_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--lateness-ms", default=500.0, show_default=True, type=click.FloatRange(min=0),
              help="The reconciler's lateness bound.")
@click.option("--rate", default=10_000.0, show_default=True, type=click.FloatRange(min=1),
              help="Transactions per second of event time: with the lateness, sets how much is open at once.")
@click.option("--error-rate", default=0.01, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--chunk", default=4096, show_default=True, type=click.IntRange(min=1),
              help="Records handed to the engine per call.")
@click.option("--count-matched", is_flag=True, help="Count matched transactions instead of emitting a verdict each.")
@click.option("--gc-threshold", type=click.IntRange(min=1), default=None,
              help="Python's generation-0 GC threshold for this process (default: Python's, 700).")
@click.option("--json", "as_json", is_flag=True)
def billing_bench(transactions: int, lateness_ms: float, rate: float, error_rate: float, seed: int, repeat: int,
                  chunk: int, count_matched: bool, gc_threshold: int | None, as_json: bool) -> None:
    """Events per second through the join engine alone, its peak memory and state. Exit 1 if a verdict is wrong."""
    if gc_threshold is not None:
        gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])

    figures = bench.run_bench(transactions=transactions, lateness_ms=lateness_ms, rate_per_s=rate,
                              error_rate=error_rate, seed=seed, chunk=chunk, repeat=repeat,
                              emit_matched=not count_matched, progress=echo_progress)
    if as_json:
        data = dataclasses.asdict(figures)
        data["summary"] = {"injected": figures.summary.injected, "found": figures.summary.found,
                           "unexplained": figures.summary.unexplained, "exceptions": figures.summary.exceptions}
        data.update(best=figures.best, median=figures.median, goal=bench.GOAL_EVENTS_PER_S, valid=figures.valid)
        click.echo(json.dumps(data, indent=2))
    else:
        for line in bench.render(figures):
            click.echo(line)
    if not figures.valid:
        raise SystemExit(1)
