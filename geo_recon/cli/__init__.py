"""The geo-recon command line.

Thin by design: each command parses its options, calls one function, and maps
the outcome to an exit code: 0 valid / met, 1 anomalies found / not met,
2 could not decide (bad input, broken environment). Presentation lives in
``report`` (runs) and ``report.console`` (labs, checks, benchmarks).

Each command group is a module of this package, registered by one line in
``COMMANDS``; a module is imported only when its command runs, so a worker
process (``geo-recon worker``) does not load the checker or the reports.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from geo_recon import __version__
from geo_recon.errors import GeoReconError

#: command name -> "module:attribute" (one line per command or group)
COMMANDS = {
    "pulsar": "pulsar:pulsar",
    "lab": "lab:lab",
    "configure": "scheme:configure",
    "verify-config": "scheme:verify_config",
    "status": "scheme:status",
    "load": "load:load",
    "worker": "worker:worker",
    "faults": "faults:faults",
    "run": "run:run_command",
    "compose": "compose:compose",
    "check": "check:check",
    "history": "history:history",
    "bench": "check:bench",
    "merge": "load:merge_command",
    "clock": "load:clock",
    "billing": "billing:billing",
    "report": "run:report_command",
    "compare": "run:compare_command",
    "judge": "judge:judge",
    "canary": "canary:canary",
}


class _Group(click.Group):
    """The main group: commands loaded on use; user-facing errors as one line and exit code 2."""
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command: click.Command = getattr(importlib.import_module(f"geo_recon.cli.{module}"), attribute)
        return command

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


def _interrupt_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    # SIGTERM takes the same path as Ctrl-C: heal, tear down, keep what was recorded.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        cli(prog_name="geo-recon")
    except SystemExit as exc:
        if sys.argv[1:2] == ["worker"]:
            # A worker has everything on disk when it returns (history closed, summary written). It leaves
            # without the interpreter's teardown: the Pulsar C++ client can abort in its destructors
            # ("terminate called without an active exception", seen in a compose worker after its summary),
            # which would read as a crashed worker.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
