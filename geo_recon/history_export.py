"""A run's history in the other format: JSONL for people and other tools, Arrow for fast checking.

``export_run`` writes a new run directory (``run.json`` copied, ``history/``
converted file by file), so the copy is checked like any run and the original
is never touched (JSONL and Arrow files of the same events in one ``history/``
would be read twice). Torn last batches are not copied: what was whole is, and
the torn ones are reported.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from geo_recon import history_arrow
from geo_recon.history import (
    ARROW_SUFFIX,
    HISTORY_SUFFIX,
    RUN_JSON,
    HistoryError,
    history_dir,
    history_files,
    is_arrow,
    read_arrow,
)

_BATCH_ROWS = 65536


@dataclass
class Exported:
    """What an export wrote, and the torn batches it left out (file: reason)."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    events: int = 0
    torn: dict[str, str] = field(default_factory=dict)


def arrow_lines(path: str | os.PathLike[str], torn: dict[str, str] | None = None) -> Iterator[bytes]:
    """The events of an ``*.arrows`` file as JSONL lines; its torn last batch, if any, goes to ``torn``."""
    read = read_arrow(path)
    if read.torn is not None and torn is not None:
        torn[str(path)] = read.torn
    for batch in read.table.to_batches(max_chunksize=_BATCH_ROWS):
        for event in history_arrow.decode_rows(batch):
            yield orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def jsonl_events(path: str | os.PathLike[str]) -> Iterator[dict]:
    """The objects of a JSONL file (blank lines skipped); a line that is not a JSON object raises, naming it."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise HistoryError(f"not valid JSON: {exc}", path=path, line=number) from None
            if not isinstance(event, dict):
                raise HistoryError(f"not a JSON object ({type(event).__name__})", path=path, line=number)
            yield event


def _write_arrow(events: Iterator[dict], target: Path) -> int:
    with open(target, "wb") as fh:
        fh.write(history_arrow.stream_schema_bytes())
        count, batch = 0, []
        for event in events:
            batch.append(event)
            if len(batch) == _BATCH_ROWS:
                fh.write(history_arrow.batch_bytes(history_arrow.encode_batch(batch)))
                count, batch = count + len(batch), []
        if batch:
            fh.write(history_arrow.batch_bytes(history_arrow.encode_batch(batch)))
            count += len(batch)
        fh.write(history_arrow.END_OF_STREAM)
    return count


def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, to: str) -> Exported:
    """Write ``out_dir`` as a run directory whose history is ``run_dir``'s in format ``to`` ("jsonl" or "arrow").

    Files already in that format are copied as they are.
    """
    if to not in ("jsonl", "arrow"):
        raise ValueError(f"export to 'jsonl' or 'arrow', not {to!r}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    sources = history_files(run_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise HistoryError("exists and is not empty: export into a new directory", path=out_dir)
    result = Exported(out_dir)
    out_history = history_dir(out_dir)
    out_history.mkdir(parents=True, exist_ok=True)
    if (run_dir / RUN_JSON).is_file():
        shutil.copyfile(run_dir / RUN_JSON, out_dir / RUN_JSON)
    root = history_dir(run_dir)
    for source in sources:
        rel = source.relative_to(root)
        suffix = ARROW_SUFFIX if is_arrow(source) else HISTORY_SUFFIX
        want = HISTORY_SUFFIX if to == "jsonl" else ARROW_SUFFIX
        target = out_history / rel.parent / (rel.name[: -len(suffix)] + want)
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == want:
            shutil.copyfile(source, target)
        elif to == "jsonl":
            with open(target, "wb") as fh:
                for line in arrow_lines(source, result.torn):
                    fh.write(line)
                    result.events += 1
        else:
            result.events += _write_arrow(jsonl_events(source), target)
        result.files.append(target)
    return result


def cat_lines(run_dir: str | os.PathLike[str], torn: dict[str, str] | None = None) -> Iterator[bytes]:
    """Every history file of a run as JSONL lines, file by file in path order (JSONL files as they are)."""
    for path in history_files(run_dir):
        if is_arrow(path):
            yield from arrow_lines(path, torn)
        else:
            with open(path, "rb") as fh:
                for raw in fh:
                    yield raw if raw.endswith(b"\n") else raw + b"\n"
