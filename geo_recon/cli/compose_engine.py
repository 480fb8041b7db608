"""`geo-recon compose engine up|down` and `geo-recon compose images`: the engine and images of compose labs.

Added to the `compose` group in :mod:`geo_recon.cli.compose`.
"""

from __future__ import annotations

import time

import click


def _progress():
    started = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    return say


@click.group("engine")
def engine() -> None:
    """The Docker engine compose labs run on (started with no iptables changes when none runs)."""


@engine.command("up")
def engine_up() -> None:
    """Use a running Docker engine as it is; else start dockerd with the safe flags (no iptables rules,
    no bridge, addresses from 198.19.0.0/16) and make sure `docker compose` (v2) is there."""
    from geo_recon.deploy import engine as docker_engine

    say = _progress()
    state = docker_engine.engine_up(say)
    version = docker_engine.install_compose_plugin(say)
    click.echo(f"Docker engine {state.version} ({'started by geo-recon' if state.started_here else 'not ours'}), "
               f"docker compose {version}")


@engine.command("down")
def engine_down() -> None:
    """Stop the dockerd `engine up` started (refused while containers run); any other engine is left alone."""
    from geo_recon.deploy import engine as docker_engine

    stopped = docker_engine.engine_down(_progress())
    click.echo("dockerd stopped" if stopped else "nothing to stop")


@click.command("images")
@click.option("--images", "kind", type=click.Choice(["local", "official"]), default="local", show_default=True,
              help="local: built here from the host's inputs, no network in any build; official: the upstream "
                   "Pulsar and Toxiproxy images pulled (needs a registry).")
@click.option("--pulsar-version", default=None, help="Pulsar version (default: the pinned one).")
def images(kind: str, pulsar_version: str | None) -> None:
    """Build (or find up to date) every image the compose labs use."""
    from geo_recon.deploy import images as lab_images
    from geo_recon.deploy import pulsar_dist

    built = lab_images.ensure(kind, pulsar_version or pulsar_dist.PULSAR_VERSION, _progress())
    for image in built:
        click.echo(f"{image.role:<10} {image.tag:<44} {image.size_bytes / 2**20:6.0f} MiB  "
                   f"{'built in %.0fs' % image.seconds if image.built else 'up to date'}"
                   + (f"  as {image.alias}" if image.alias and image.alias != image.tag else ""))

