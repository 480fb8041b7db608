"""``geo-recon history``: a run's history for people (``cat``) and other tools (``export``).

Workers may write Arrow (``*.arrows``) or JSONL; DESIGN.md's JSONL is the
definition of the events either way, and these commands give it back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("history")
def history() -> None:
    """Read and convert a run's history files (Arrow or JSONL)."""


@history.command("cat")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def cat(ctx: click.Context, run_dir: Path) -> None:
    """Print every event of RUN_DIR's history as JSONL, file by file; exit 1 when a file ends in a torn batch."""
    from geo_recon.history_export import cat_lines

    torn: dict[str, str] = {}
    out = sys.stdout.buffer
    try:
        for line in cat_lines(run_dir, torn):
            out.write(line)
        out.flush()
    except BrokenPipeError:  # `history cat RUN | head`
        ctx.exit(0)
    for path, reason in torn.items():
        click.echo(f"{path}: {reason}", err=True)
    ctx.exit(1 if torn else 0)


@history.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--jsonl", "to", flag_value="jsonl", help="Write the history as JSONL (DESIGN.md's format).")
@click.option("--arrow", "to", flag_value="arrow", help="Write the history as Arrow (*.arrows), fast to check.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The new run directory (default: RUN_DIR/export-jsonl or RUN_DIR/export-arrow).")
@click.pass_context
def export(ctx: click.Context, run_dir: Path, to: str | None, out_dir: Path | None) -> None:
    """Write RUN_DIR's history in another format, as a new run directory (run.json copied) that can be checked.

    Exit 1 when a file ended in a torn batch (the whole events before it are exported), 2 on bad input.
    """
    from geo_recon.history_export import export_run

    if to is None:
        raise click.UsageError("say which format: --jsonl or --arrow")
    done = export_run(run_dir, out_dir or run_dir / f"export-{to}", to=to)
    for path, reason in done.torn.items():
        click.echo(f"{path}: {reason}", err=True)
    click.echo(f"wrote {len(done.files)} file(s) to {done.out_dir / 'history'} ({done.events:,} events converted)")
    ctx.exit(1 if done.torn else 0)
