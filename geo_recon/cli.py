"""The geo-recon command line.

Thin by design: each command parses its options, calls one function, and maps
the outcome to an exit code: 0 valid / met, 1 anomalies found / not met,
2 could not decide (bad input, broken environment).
"""

from __future__ import annotations

import sys

import click

from geo_recon import __version__
from geo_recon.errors import GeoReconError


class _Group(click.Group):
    """A click group that turns user-facing errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GeoReconError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="geo-recon")
def cli() -> None:
    """Prove (or disprove) that a multi-region Apache Pulsar setup loses nothing."""


def _progress(message: str) -> None:
    click.echo(message, err=True)


@cli.group()
def pulsar() -> None:
    """The pinned Pulsar jars (from Maven Central) and the Java that runs them."""


@pulsar.command("fetch")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_fetch(kind: str) -> None:
    """Download the locked jars into the cache and verify their checksums."""
    from geo_recon.deploy import pulsar_dist

    lib = pulsar_dist.fetch_jars(kind, progress=_progress)
    click.echo(str(lib))


@pulsar.command("lock")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_lock(kind: str) -> None:
    """Maintainers: re-resolve the pom with Maven and rewrite the lock file."""
    from geo_recon.deploy import pulsar_dist

    click.echo(str(pulsar_dist.lock_jars(kind, progress=_progress)))


@pulsar.command("java")
def pulsar_java() -> None:
    """Show the Java that will run Pulsar (17 or newer is required)."""
    from geo_recon.deploy import pulsar_dist

    java = pulsar_dist.find_java()
    click.echo(f"{java.path} (Java {java.version})")


def main() -> None:
    cli(prog_name="geo-recon")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
