"""`geo-recon faults`: inject and heal faults on a local lab by hand (runs inject them on a schedule)."""

from __future__ import annotations

import time

import click
from pydantic import ValidationError

from geo_recon.cli.common import echo_progress
from geo_recon.deploy.local_backend import LocalLabBackend
from geo_recon.errors import ConfigError
from geo_recon.faults.driver import FaultDriver
from geo_recon.faults.spec import FaultSpec, ScheduledFault


@click.group()
def faults() -> None:
    """Inject and heal faults on a local lab by hand (runs inject them on a schedule)."""


@faults.command("inject")
@click.option("--lab", "lab_name", default="lab", show_default=True)
@click.option("--kind", required=True,
              type=click.Choice(["kill", "stop", "pause", "restart", "partition", "isolate", "latency", "bandwidth",
                                 "unload"]))
@click.option("--target", default=None, help="kill/stop/pause/restart/isolate: region or region/component; "
                                             "unload: region.")
@click.option("--scope", type=click.Choice(["topics", "namespace"]), default="topics", show_default=True,
              help="unload: each topic of --namespace, or the namespace's bundles.")
@click.option("--namespace", default="geo/recon", show_default=True, help="unload: tenant/namespace.")
@click.option("--groups", default=None, help="partition: groups separated by '|', e.g. 'a|b,c'.")
@click.option("--one-way", is_flag=True, help="partition: drop only traffic from the first group.")
@click.option("--between", default=None, help="latency/bandwidth: regions, e.g. 'a,b' (default: all).")
@click.option("--rtt-ms", type=float, default=None, help="latency: added round-trip time.")
@click.option("--jitter-ms", type=float, default=0.0)
@click.option("--rate-kbps", type=int, default=None, help="bandwidth: KB/s each way.")
def faults_inject(lab_name, kind, target, scope, namespace, groups, one_way, between, rtt_ms, jitter_ms,
                  rate_kbps) -> None:
    """Inject one fault now, verify it, and leave it until `geo-recon faults heal`."""
    try:
        spec = FaultSpec(kind=kind, target=target, scope=scope, one_way=one_way, rtt_ms=rtt_ms,
                         jitter_ms=jitter_ms, rate_kbps=rate_kbps,
                         groups=[g.split(",") for g in groups.split("|")] if groups else None,
                         between=between.split(",") if between else None)
    except ValidationError as exc:
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    backend = LocalLabBackend.attach(lab_name, progress=echo_progress)
    driver = FaultDriver(backend, regions=list(backend.spec.regions), namespace=namespace, progress=echo_progress)
    fid = f"m{len(backend.active_faults()) + 1}-{int(time.time())}"
    driver.inject(ScheduledFault(fid, spec, 0, 0))
    click.echo(f"{fid}: {spec.describe()} (heal with: geo-recon faults heal --lab {lab_name})")


@faults.command("heal")
@click.option("--lab", "lab_name", default="lab", show_default=True)
def faults_heal(lab_name) -> None:
    """Heal every fault on the lab: resume, restart, remove rules and proxies (also after a crash)."""
    healed = LocalLabBackend.attach(lab_name, progress=echo_progress).sweep(echo_progress)
    click.echo(f"healed {len(healed)} item(s)" if healed else "nothing to heal")
