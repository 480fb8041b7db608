"""The ``check`` and ``bench`` commands (registered on the main group in :mod:`geo_recon.cli`).

Exit codes: 0 valid, 1 anomalies found, 2 could not decide (bad input; raised
as :class:`~geo_recon.errors.GeoReconError` and printed as one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


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
    import orjson

    from geo_recon.check.columnar import write_columnar as build_columnar
    from geo_recon.check.core import check_run, write_results
    from geo_recon.check.tuning import tune_allocator

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
        click.echo(summary(result.to_json(), run_dir=run_dir))
    ctx.exit(0 if result.valid else 1)


def _lag(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{stats['p50']:g}/{stats['p99']:g}/{stats['max']:g}"


def summary(j: dict[str, Any], *, run_dir: Path) -> str:
    """The readable form of a result (from its JSON)."""
    run, inp = j["run"], j["input"]
    verdict = "VALID" if j["valid"] else f"INVALID ({', '.join(j['anomaly_types'])})"
    lines = [f"{run_dir}: {verdict}",
             f"regions {', '.join(run['regions'])}; {run['sends']['ok']} acknowledged sends from "
             f"{run['producers']} producer(s); {run['receipts']} receipts over {run['duration_s']:g} s; "
             f"read from {inp['source']} ({inp['files']} file(s), {inp['lines']} line(s)"
             + (f", {inp['skipped']} bad skipped" if inp["skipped"] else "") + ")"]
    if j["allowed"]:
        lines.append(f"allowed: {', '.join(j['allowed'])}")
    head = ("region", "expected", "lost", "dup", "redeliv", "reorder", "unexp", "recov", "reader-only",
            "lag ms p50/p99/max")
    rows = [head]
    for name, r in j["regions"].items():
        rows.append((name, str(r["expected"]), str(r["lost"]), str(r["duplicates"]), str(r["redelivered"]),
                     str(r["reordered"]), str(r["unexpected"]), str(r["recovered"]), str(r["stored_not_consumed"]),
                     _lag(r["lag_ms"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.ljust(w) if i in (0, len(head) - 1) else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    if j["publish_latency_ms"]:
        lines.append("")
        lines.append("publish latency ms p50/p99/max: " + ", ".join(
            f"{origin} {_lag(stats)}" for origin, stats in j["publish_latency_ms"].items()))
    if j["faults"]:
        lines.append("")
        lines.append("faults:")
        conv = {c["fault_id"]: c for c in j["convergence"]}
        for w in j["faults"]:
            span = f"{_t(w['start_s'])} .. {_t(w['stop_s'])}"
            tag = " (region loss)" if w["region_loss"] else ""
            lines.append(f"  {w['id']}: {w['fault']} {w['target']}, {span}{tag}")
            c = conv.get(w["id"])
            if c is not None:
                if c["converged"]:
                    lines.append(f"    converged {c['ms']:g} ms after the stop")
                else:
                    missing = ", ".join(f"{r} {n}" for r, n in c["still_missing"].items() if n)
                    lines.append(f"    never converged (still missing: {missing})")
            for p in (p for p in j["rpo"] if p["fault_id"] == w["id"]):
                extra = (f", ok times spanning {p['span_ms']:g} ms, oldest {p['window_ms']:g} ms before the fault"
                         if p["count"] and p["window_ms"] is not None else "")
                lines.append(f"    RPO {p['region']}: {p['count']} acknowledged message(s) never left it{extra}")
            rto = [x for x in j["rto"] if x["fault_id"] == w["id"]]
            if rto:
                lines.append("    RTO: " + ", ".join(
                    f"{x['region']} " + ("never recovered" if not x["recovered"] else f"{x['ms']:g} ms")
                    for x in rto))
    for kind, cases in j["cases"].items():
        if not cases:
            continue
        total = j["totals"][kind]
        lines.append("")
        lines.append(f"{kind} ({total} in all; first {len(cases)} shown):")
        lines.extend(f"  - {c['explanation']}" for c in cases)
    for warning in j["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _t(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.3f} s"


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
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_check(messages: int, regions: int, producers: int | None, keep: Path | None, seed: int, baseline: bool,
                as_json: bool) -> None:
    """Generate a synthetic history, then time JSONL ingest, the check and a DuckDB baseline."""
    import orjson

    from geo_recon.check.bench import run_bench
    from geo_recon.check.tuning import tune_allocator

    tune_allocator()
    report = run_bench(messages=messages, regions=regions, producers=producers, keep=keep, seed=seed,
                       baseline=baseline, progress=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        from geo_recon.check.bench import format_report

        click.echo(format_report(report))
