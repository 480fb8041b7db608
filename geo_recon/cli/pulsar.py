"""`geo-recon pulsar`: the pinned Pulsar jars (from Maven Central) and the Java that runs them."""

from __future__ import annotations

import click

from geo_recon.cli.common import echo_progress
from geo_recon.deploy import pulsar_dist


@click.group()
def pulsar() -> None:
    """The pinned Pulsar jars (from Maven Central) and the Java that runs them."""


@pulsar.command("fetch")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_fetch(kind: str) -> None:
    """Download the locked jars into the cache and verify their checksums."""
    lib = pulsar_dist.fetch_jars(kind, progress=echo_progress)
    click.echo(str(lib))


@pulsar.command("lock")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_lock(kind: str) -> None:
    """Maintainers: re-resolve the pom with Maven and rewrite the lock file."""
    click.echo(str(pulsar_dist.lock_jars(kind, progress=echo_progress)))


@pulsar.command("java")
def pulsar_java() -> None:
    """Show the Java that will run Pulsar (17 or newer is required)."""
    java = pulsar_dist.find_java()
    click.echo(f"{java.path} (Java {java.version})")
