"""`geo-recon load`, `bench load`, `merge` and `clock`: load without faults, its pacer measured,
worker output merged, the reference clock."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import click

from geo_recon import schemes
from geo_recon.cli.common import progress_line, scheme_for, target_options, workload_from_options, workload_options
from geo_recon.deploy import external as dep
from geo_recon.deploy import state as lab_state
from geo_recon.workload import bench as load_bench
from geo_recon.workload import runner
from geo_recon.workload.merge import merge_worker_dirs
from geo_recon.workload.runner import ClockServer
from geo_recon.report.console import load_bench_lines


@click.command()
@target_options
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory to create.")
@click.option("--seed", type=int, default=0, show_default=True)
@workload_options
def load(lab_name, clusters_file, tenant, namespace, scheme, out_dir, seed, **options) -> None:
    """Drive load in every region (no faults) and record the history into --out."""
    workload = workload_from_options(**options)
    target = dep.resolve(lab_name, clusters_file)
    scheme = scheme_for(target, scheme)
    namespaces, clock_host = {}, "127.0.0.1"
    if target.lab:
        lab = lab_state.load(target.lab)
        namespaces = {r: ns for r, ns in lab.namespaces.items() if r in target.region_names}
        clock_host = lab.bridge_address or "127.0.0.1"
    result = runner.run_load(target, scheme, workload, Path(out_dir), seed=seed, namespaces=namespaces,
                             clock_host=clock_host, on_progress=progress_line(), lab_marker=target.lab)
    for region, fate in result["fates"].items():
        s = result["summaries"].get(region, {})
        click.echo(f"region {region}: {fate}; sent {s.get('sent', '?')} acked {s.get('acked', '?')} "
                   f"received {s.get('received', '?')} rates {s.get('achieved_rates', {})}")
    click.echo(f"history in {out_dir} (check it with: geo-recon check {out_dir})")


@click.command("load")
@target_options
@click.option("--region", default=None, help="Region to load (default: the first).")
@click.option("--seconds", type=float, default=20.0, show_default=True)
@click.option("--size", type=int, default=100, show_default=True, help="Message size in bytes.")
@click.option("--fixed-rates", default="1000,5000", show_default=True, help="Rates to check the pacer at.")
@click.option("--processes", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Producer processes of the several-process Python recorder run.")
@click.option("--native/--no-native", default=True, show_default=True,
              help="Run the native (go) driver too (it needs Go once, to build).")
@click.option("--rounds", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Repeat the compared runs this many times, interleaved; the ratios are their medians.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures and ratios as JSON (for scripts).")
def bench_load(lab_name, clusters_file, tenant, namespace, region, seconds, size, fixed_rates, processes, native,
               rounds, as_json) -> None:
    """Highest publish-and-record rate of one region vs pulsar-perf on the same cluster; pacer error."""
    target = dep.resolve(lab_name, clusters_file)
    scheme = target.scheme or "async"
    namespaces, clock_host = {}, "127.0.0.1"
    if target.lab:
        lab = lab_state.load(target.lab)
        namespaces, clock_host = dict(lab.namespaces), lab.bridge_address or "127.0.0.1"
    schemes.apply(target, scheme)
    rates = [float(r) for r in fixed_rates.split(",") if r.strip()]
    figures = load_bench.run(target, scheme, region=region or target.region_names[0], seconds=seconds, size=size,
                             fixed_rates=rates, namespaces=namespaces, clock_host=clock_host,
                             progress=lambda m: click.echo(m, err=True), processes=processes,
                             native=native, rounds=rounds)
    if as_json:
        click.echo(json.dumps(load_bench.to_json(figures, machine=platform.node(), cores=os.cpu_count(), size=size,
                                                 seconds=seconds, scheme=scheme, load_average=os.getloadavg()),
                              indent=2))
        return
    header = (f"machine: {platform.node()}, {os.cpu_count()} cores; {size}-byte messages, {seconds:.0f}s each, "
              f"{scheme} scheme ({target.source})")
    click.echo("\n".join(load_bench_lines(figures, header=header)))


@click.command("merge")
@click.argument("worker_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The merged run directory.")
def merge_command(worker_dirs, out_dir) -> None:
    """Bring the output directories of `geo-recon worker` (one per region) into one run
    directory for `geo-recon check`: histories side by side, one run.json with every
    region and each worker's measured clock offset."""
    run = merge_worker_dirs([Path(d) for d in worker_dirs], Path(out_dir))
    click.echo(f"merged {len(worker_dirs)} worker director{'y' if len(worker_dirs) == 1 else 'ies'} into {out_dir}: "
               f"regions {', '.join(run['regions'])} (check it with: geo-recon check {out_dir})")


@click.group()
def clock() -> None:
    """The reference clock workers measure their offsets against."""


@clock.command("serve")
@click.option("--bind", default="0.0.0.0", show_default=True)
@click.option("--port", default=7123, show_default=True, type=int)
def clock_serve(bind, port) -> None:
    """Answer clock probes (UDP) until interrupted; give workers --clock-ref udp://THIS_HOST:PORT."""
    server = ClockServer(bind, port)
    click.echo(f"serving the clock on {server.url} (Ctrl-C to stop)", err=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()
