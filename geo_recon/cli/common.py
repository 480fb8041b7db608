"""What the command modules share: progress lines, the --lab/--clusters target, the workload options."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import click
import yaml
from pydantic import ValidationError

from geo_recon.deployment import Deployment
from geo_recon.errors import ConfigError
from geo_recon.schemes import SchemeSettings
from geo_recon.workload.spec import WorkloadSpec


def echo_progress(message: str) -> None:
    click.echo(message, err=True)


def timed_progress() -> Callable[[str], None]:
    """Progress lines on stderr, each with the seconds since the command started."""
    start = time.monotonic()

    def report(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return report


def progress_line() -> Callable[[dict], None]:
    """One line every 2 s with every region's load counts (from the workers' progress files)."""
    last = {"t": 0.0}

    def show(progress: dict) -> None:
        if time.monotonic() - last["t"] < 2:
            return
        last["t"] = time.monotonic()
        parts = []
        for region, p in sorted(progress.items()):
            lag = p.get("lag_ms_p50")
            parts.append(f"{region}: {p.get('phase', '?')} sent {p.get('sent', 0)} acked {p.get('acked', 0)} "
                         f"recv {p.get('received', 0)}" + (f" lag~{lag:.0f}ms" if lag is not None else ""))
        click.echo("  " + " | ".join(parts), err=True)

    return show


lab_name_option = click.option("--name", default="lab", show_default=True,
                               help="Lab name (1-8 lowercase letters/digits).")

_target_options = [
    click.option("--lab", "lab_name", default=None, help="A local lab by name (default: the lab named 'lab')."),
    click.option("--clusters", "clusters_file", default=None, type=click.Path(dir_okay=False),
                 help="A clusters file describing existing clusters (YAML; see README)."),
    click.option("--tenant", default="geo", show_default=True),
    click.option("--namespace", default="recon", show_default=True),
]


def target_options(func: Any) -> Any:
    """--lab or --clusters (which clusters), --tenant and --namespace (where in them)."""
    for option in reversed(_target_options):
        func = option(func)
    return func


def scheme_for(deployment: Deployment, scheme: str | None) -> str:
    scheme = scheme or deployment.scheme
    if not scheme:
        raise ConfigError("--scheme async|strong is needed for existing clusters")
    return scheme


def scheme_settings(tenant: str, namespace: str, dedup: bool, persistence: str) -> SchemeSettings:
    try:
        e, w, a = (int(x) for x in persistence.split("/"))
    except ValueError:
        raise ConfigError(f"--persistence {persistence!r}: expected ensemble/write/ack, e.g. 3/2/2") from None
    return SchemeSettings(tenant=tenant, namespace=namespace, dedup=dedup, ensemble=e, write_quorum=w, ack_quorum=a)


def workload_options(func: Any) -> Any:
    options = [
        click.option("--rate", type=float, default=200.0, show_default=True, help="Messages/s per region."),
        click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds of sending."),
        click.option("--message-size", type=int, default=100, show_default=True),
        click.option("--keys", type=int, default=100, show_default=True),
        click.option("--producers", type=int, default=1, show_default=True, help="Producers per region."),
        click.option("--processes", type=int, default=1, show_default=True,
                     help="Producer processes per region (each its own client and history file)."),
        click.option("--topics", type=int, default=1, show_default=True),
        click.option("--partitions", type=int, default=0, show_default=True),
        click.option("--batching/--no-batching", default=False, show_default=True),
        click.option("--producer-dedup/--no-producer-dedup", default=False, show_default=True),
        click.option("--max-outstanding", type=int, default=1000, show_default=True),
        click.option("--subscription-type", type=click.Choice(["exclusive", "failover", "key_shared", "shared"]),
                     default="failover", show_default=True),
        click.option("--drain-timeout", type=float, default=60.0, show_default=True),
        click.option("--driver", type=click.Choice(["python", "go"]), default="python", show_default=True,
                     help="The producers' client: go is pulsar-client-go, for rates Python cannot reach."),
        click.option("--history-format", type=click.Choice(["jsonl", "arrow"]), default="jsonl", show_default=True,
                     help="How the workers (python and go) write their history: jsonl or arrow (checked "
                          "faster); `geo-recon history export` converts."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def workload_from_options(rate, duration, message_size, keys, producers, topics, partitions, batching, producer_dedup,
                          max_outstanding, subscription_type, drain_timeout, driver="python", processes=1,
                          history_format="jsonl", **_) -> WorkloadSpec:
    try:
        return WorkloadSpec(rate=rate, duration_s=duration, message_size=message_size, keys=keys, producers=producers,
                            topics=topics, partitions=partitions, batching=batching, producer_dedup=producer_dedup,
                            max_outstanding=max_outstanding, subscription_type=subscription_type,
                            drain_timeout_s=drain_timeout, driver=driver, processes=processes,
                            history_format=history_format)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"option --{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}") from None


def workload_from_file(path: str) -> WorkloadSpec:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read a workload from it ({exc})") from None
    try:
        return WorkloadSpec.model_validate(data if data is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: field {field}: {err['msg'].removeprefix('Value error, ')}") from None
