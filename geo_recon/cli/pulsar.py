"""`geo-recon pulsar`: the locked Pulsar versions, their jars (from Maven Central), and the Java that runs them."""

from __future__ import annotations

import json

import click

from geo_recon.cli.common import echo_progress
from geo_recon.deploy import pulsar_dist

_pulsar_option = click.option("--pulsar", "version", default=None, metavar="VERSION",
                              help="Server version (default: the default version; see `geo-recon pulsar versions`).")


@click.group()
def pulsar() -> None:
    """The pinned Pulsar versions (jars from Maven Central) and the Java that runs them."""


@pulsar.command("versions")
@click.option("--json", "as_json", is_flag=True)
def pulsar_versions_command(as_json: bool) -> None:
    """Every supported server version: default, locked, installed (jars in the cache), known bugs."""
    infos = pulsar_dist.version_infos()
    if as_json:
        click.echo(json.dumps([vars(i) for i in infos], indent=2))
        return
    for i in infos:
        flags = ", ".join(f for f, on in (("default", i.default), ("installed", i.installed),
                                           ("not locked", not i.locked)) if on) or "not installed"
        bugs = f"; known bugs: {', '.join(i.known_bugs)}" if i.known_bugs else ""
        click.echo(f"{i.version:<8} {flags:<20} {i.note}{bugs}")


@pulsar.command("fetch")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
@_pulsar_option
def pulsar_fetch(kind: str, version: str | None) -> None:
    """Download the locked jars into the cache and verify their checksums."""
    click.echo(str(pulsar_dist.fetch_jars(kind, version, progress=echo_progress)))


@pulsar.command("lock")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
@_pulsar_option
def pulsar_lock(kind: str, version: str | None) -> None:
    """Maintainers: re-resolve the pom with Maven and rewrite the lock file."""
    click.echo(str(pulsar_dist.lock_jars(kind, version, progress=echo_progress)))


@pulsar.command("java")
def pulsar_java() -> None:
    """Show the Java that will run Pulsar (17 or newer is required)."""
    java = pulsar_dist.find_java()
    click.echo(f"{java.path} (Java {java.version})")
