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


def main() -> None:
    cli(prog_name="geo-recon")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
