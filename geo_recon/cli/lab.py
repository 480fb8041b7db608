"""`geo-recon lab`: a local multi-region Pulsar lab of real JVMs (network namespaces when root)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform

import click

from geo_recon.cli.common import lab_name_option, timed_progress
from geo_recon.deploy import lab_bench as bench
from geo_recon.deploy import local
from geo_recon.deploy.local_backend import isolation_for
from geo_recon.deploy.pulsar_versions import release
from geo_recon.deploy.topology import LabSpec, parse_regions
from geo_recon.report.console import endpoint_lines, endpoints_json, lab_bench_lines, lab_status_lines


@click.group()
def lab() -> None:
    """A local multi-region Pulsar lab of real JVMs (network namespaces when root)."""


@lab.command("up")
@click.option("--regions", default="a,b", show_default=True, help="Comma-separated region names (2 or more).")
@click.option("--scheme", default="async", show_default=True,
              help="async: a cluster per region; strong: one cluster stretched over the regions.")
@lab_name_option
@click.option("--base-port", default=20000, show_default=True, type=int, help="First port of the lab's port range.")
@click.option("--isolation", type=click.Choice(["auto", "netns", "loopback"]), default="auto", show_default=True,
              help="netns: a network namespace per region (root); loopback: shared 127.0.0.1.")
@click.option("--subnet", default=0, show_default=True, type=int, help="S in 198.18.S.0/24 (netns only).")
@click.option("--timeout", default=120.0, show_default=True, type=float, help="Seconds each component may take.")
@click.option("--keep-on-failure", is_flag=True, help="Leave a failed lab running for inspection.")
@click.option("--json", "as_json", is_flag=True, help="Print the lab's endpoints as JSON.")
@click.option("--pulsar", default=None, metavar="VERSION", help="Pulsar server version (see `geo-recon pulsar versions`).")
@click.option("--bookies-per-region", default=1, show_default=True, type=int,
              help="Bookies in each region (strong: bookie JVMs; async: the standalone's embedded bookies).")
@click.option("--wan", type=click.Choice(["auto", "proxied", "direct"]), default="auto", show_default=True,
              help="proxied: every cross-region connection goes through a Toxiproxy proxy from the start, so WAN "
                   "latency faults never reset connections; direct: no proxies until a latency fault; auto: "
                   "proxied when the lab's 200 proxy ports suffice (netns only).")
def lab_up(regions: str, scheme: str, name: str, base_port: int, isolation: str, subnet: int,
           timeout: float, keep_on_failure: bool, as_json: bool, pulsar: str | None, bookies_per_region: int,
           wan: str) -> None:
    """Start a lab and wait until every region passes a produce/consume round trip."""
    spec = LabSpec(regions=parse_regions(regions), scheme=scheme, name=name,  # type: ignore[arg-type]
                   base_port=base_port, isolation=isolation_for(isolation), subnet=subnet,  # type: ignore[arg-type]
                   pulsar=release(pulsar).version, bookies_per_region=bookies_per_region, wan=wan)  # type: ignore[arg-type]
    spec.validate()
    state = local.up(spec, progress=timed_progress(), timeout=timeout, keep_on_failure=keep_on_failure)
    if as_json:
        click.echo(endpoints_json(state.endpoints))
        return
    header = f"lab {state.name!r}: scheme {state.scheme}, isolation {state.isolation}, Pulsar {state.pulsar_version}"
    click.echo("\n".join(endpoint_lines(header, state.endpoints)))


@lab.command("status")
@lab_name_option
@click.option("--json", "as_json", is_flag=True)
def lab_status(name: str, as_json: bool) -> None:
    """Every component of the lab: pid, state, ports, region. Exit 1 if any is not running."""
    state, rows = local.status(name)
    healthy = all(r.state == "running" and r.listening for r in rows)
    if as_json:
        click.echo(json.dumps({"name": state.name, "scheme": state.scheme, "phase": state.phase,
                               "isolation": state.isolation, "pulsar_version": state.pulsar_version, "healthy": healthy,
                               "endpoints": [e.model_dump() for e in state.endpoints],
                               "components": [dataclasses.asdict(r) for r in rows]}, indent=2))
    else:
        click.echo("\n".join(lab_status_lines(state, rows)))
    if not healthy:
        raise SystemExit(1)


@lab.command("down")
@lab_name_option
@click.option("--force", is_flag=True, help="Clean up by names and process markers even if the state file is corrupt.")
def lab_down(name: str, force: bool) -> None:
    """Stop every process and remove the lab's namespaces, links and rules."""
    actions = local.down(name, force=force, progress=timed_progress())
    click.echo(f"lab {name!r} is down" + ("" if actions else " (nothing was running)"))


@lab.command("bench")
@click.option("--regions", "region_counts", default="2,3", show_default=True, help="Region counts to measure.")
@click.option("--schemes", default="async,strong", show_default=True)
@lab_name_option
@click.option("--base-port", default=24000, show_default=True, type=int)
@click.option("--isolation", type=click.Choice(["auto", "netns", "loopback"]), default="auto", show_default=True)
@click.option("--subnet", default=200, show_default=True, type=int)
def lab_bench(region_counts: str, schemes: str, name: str, base_port: int, isolation: str, subnet: int) -> None:
    """Measure cold `lab up` time (jars cached) and total RSS per scheme and region count."""
    isolation = isolation_for(isolation)
    figures = []
    for scheme in parse_regions(schemes):
        for count in (int(c) for c in parse_regions(region_counts)):
            click.echo(f"measuring {scheme} with {count} regions ...", err=True)
            figures.append(bench.measure(scheme, count, name=name, isolation=isolation, base_port=base_port,
                                         subnet=subnet, progress=lambda _m: None))
    click.echo("\n".join(lab_bench_lines(figures, machine=f"{platform.node()}, {os.cpu_count()} cores",
                                          isolation=isolation)))
