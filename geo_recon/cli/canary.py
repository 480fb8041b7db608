"""The ``canary`` commands (registered in :data:`geo_recon.cli.COMMANDS`).

``canary run`` watches replication all the time (exit 0 when stopped by
SIGTERM/Ctrl-C, 2 on bad input); ``canary bench`` is the soak benchmark (exit 1
if the checker's counts disagree with the simulation's ground truth).
"""

from __future__ import annotations

import threading
from pathlib import Path

import click

from geo_recon.deploy.external import resolve


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group("canary")
def canary() -> None:
    """Continuous cross-region canary: loss, lag and exposure as Prometheus metrics."""


@canary.command("run")
@click.option("--lab", "lab_name", default=None, help="A local lab by name (default: the lab named 'lab').")
@click.option("--clusters", "clusters_file", default=None, type=click.Path(dir_okay=False),
              help="A clusters file describing existing clusters (YAML; tokens from env or file).")
@click.option("--tenant", default="geo", show_default=True)
@click.option("--namespace", default="recon", show_default=True, help="The replicated namespace (`geo-recon configure`).")
@click.option("--topic", default="geo-recon-canary", show_default=True, help="The canary's own topic in it.")
@click.option("--subscription", default="geo-recon-canary", show_default=True)
@click.option("--rate", default=10.0, show_default=True, type=float, help="Messages per second per region.")
@click.option("--deadline", "deadline_s", default=60.0, show_default=True, type=float,
              help="Seconds after its ack by which a message must be delivered in every region, or it is lost.")
@click.option("--horizon", "horizon_s", default=None, type=float,
              help="Seconds a decided message is remembered, for duplicates and late deliveries (default: the deadline).")
@click.option("--listen", default="127.0.0.1:9464", show_default=True, help="HOST:PORT for /metrics and /healthz.")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Checkpoint the state here, so that a restarted canary goes on counting (and its downtime is "
                   "not loss).")
@click.option("--checkpoint-every", "checkpoint_every_s", default=5.0, show_default=True, type=float)
@click.option("--send-timeout", "send_timeout_s", default=30.0, show_default=True, type=float)
@click.option("--duration", default=None, type=float, help="Stop after this many seconds (default: run until stopped).")
def run(lab_name, clusters_file, tenant, namespace, topic, subscription, rate, deadline_s, horizon_s, listen,
        state_dir, checkpoint_every_s, send_timeout_s, duration) -> None:
    """Run the canary: a producer and a consumer in every region, counted by one streaming checker."""
    from geo_recon.canary.runner import Canary, CanarySettings, check_namespace
    from geo_recon.errors import ConfigError

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen {listen!r}: expected HOST:PORT, e.g. 0.0.0.0:9464")
    settings = CanarySettings(rate=rate, deadline_s=deadline_s, horizon_s=horizon_s, tenant=tenant,
                              namespace=namespace, topic=topic, subscription=subscription, host=host, port=int(port),
                              state_dir=state_dir, checkpoint_every_s=checkpoint_every_s,
                              send_timeout_s=send_timeout_s)
    settings.validate()
    target = resolve(lab_name, clusters_file)
    check_namespace(target, settings, progress=_progress)
    stop = threading.Event()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True  # stopped sooner (Ctrl-C): do not keep the process alive
        timer.start()
    Canary(target, settings, progress=_progress).run(stop)


@canary.command("bench")
@click.option("--hours", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Simulated run length.")
@click.option("--rate", default=1000.0, show_default=True, type=click.FloatRange(min=1),
              help="Messages per second per region.")
@click.option("--regions", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--deadline", "deadline_s", default=60.0, show_default=True, type=click.FloatRange(min=0.001))
@click.option("--horizon", "horizon_s", default=None, type=click.FloatRange(min=0))
@click.option("--sample-every", "sample_every_s", default=300.0, show_default=True, type=click.FloatRange(min=1),
              help="Simulated seconds between RSS samples.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def bench(hours, rate, regions, deadline_s, horizon_s, sample_every_s, seed, as_json) -> None:
    """Soak: hours of canary traffic through the streaming checker, faster than real time; RSS over time."""
    import dataclasses
    import json

    from geo_recon.canary import bench as soak
    from geo_recon.canary.sim import SimSpec

    names = tuple("abcdefgh"[:regions])
    spec = SimSpec(regions=names, rate=rate, seconds=hours * 3600, seed=seed,
                   partition_s=min(20.0, deadline_s / 3))
    figures = soak.run_bench(spec, deadline_s=deadline_s, horizon_s=horizon_s, sample_every_s=sample_every_s,
                             progress=_progress)
    if as_json:
        data = dataclasses.asdict(figures)
        data["rss_growth_mib"] = figures.rss_growth_mib
        click.echo(json.dumps(data, indent=2))
    else:
        for line in soak.render(figures):
            click.echo(line)
    if not figures.valid:
        raise SystemExit(1)
