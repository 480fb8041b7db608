"""`geo-recon pulsar ...`: the locked Pulsar versions, their jars, and the Java that runs them.

Registered on the main group with one line in ``geo_recon/cli.py``.
"""

from __future__ import annotations

import json

import click

_pulsar_option = click.option("--pulsar", "version", default=None, metavar="VERSION",
                              help="Server version (default: the default version; see `geo-recon pulsar versions`).")


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def pulsar() -> None:
    """The pinned Pulsar versions (jars from Maven Central) and the Java that runs them."""


@pulsar.command("versions")
@click.option("--json", "as_json", is_flag=True)
def pulsar_versions_command(as_json: bool) -> None:
    """Every supported server version: default, locked, installed (jars in the cache), known bugs."""
    from geo_recon.deploy import pulsar_dist

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
    from geo_recon.deploy import pulsar_dist

    click.echo(str(pulsar_dist.fetch_jars(kind, version, progress=_progress)))


@pulsar.command("lock")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
@_pulsar_option
def pulsar_lock(kind: str, version: str | None) -> None:
    """Maintainers: re-resolve the pom with Maven and rewrite the lock file."""
    from geo_recon.deploy import pulsar_dist

    click.echo(str(pulsar_dist.lock_jars(kind, version, progress=_progress)))


@pulsar.command("java")
def pulsar_java() -> None:
    """Show the Java that will run Pulsar (17 or newer is required)."""
    from geo_recon.deploy import pulsar_dist

    java = pulsar_dist.find_java()
    click.echo(f"{java.path} (Java {java.version})")
