"""The columnar copy of a history: ``RUN_DIR/columnar/``, Arrow IPC files beside the JSONL.

It holds the checker's normalised tables (see :mod:`geo_recon.check.model`)::

    columnar/meta.json            format, source fingerprint, names, faults, line index
    columnar/messages.arrow       one row per (producer, seq)
    columnar/completions.arrow    every ok/fail/info send line
    columnar/receipts-<N>.arrow   the recv lines of region code N, ordered by (process, time, line)

The JSONL stays the record: the copy is only used when its fingerprint (path,
size and mtime of every history file, and whether bad lines were skipped)
matches the files on disk, and it is rebuilt from them by :func:`write_columnar`.
Files are memory-mapped and read one region at a time, so checking from the
copy needs little more memory than the per-message arrays.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from geo_recon.check.ingest import read_history
from geo_recon.check.model import Completions, FailoverEvent, FaultEvent, History, InputSummary, Messages, Receipts
from geo_recon.history import HistoryError, history_files, read_run_json

COLUMNAR_DIR = "columnar"
FORMAT = 2  # 2: receipts' subscription and cluster, completions' cluster, failover lines
_MESSAGE_COLUMNS = ("producer", "seq", "origin", "key", "process", "outcome", "invoke_time", "done_time", "done_ref")
_COMPLETION_COLUMNS = ("time", "region", "outcome", "process", "cluster")
_RECEIPT_COLUMNS = ("msg", "time", "process", "msg_hash", "flags", "ref", "subscription", "cluster")


def fingerprint(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Path (relative), size and mtime of every history file."""
    run_dir = Path(run_dir)
    out = []
    for path in history_files(run_dir):
        st = path.stat()
        out.append({"path": str(path.relative_to(run_dir)), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def _write_table(path: Path, columns: dict[str, np.ndarray]) -> None:
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))


def _read_table(path: Path) -> dict[str, np.ndarray]:
    """The columns of an Arrow IPC file as numpy arrays over a read-only memory map (no copy).

    Pages are read only where the checker looks, so columns used for cases alone cost almost nothing.
    """
    source = pa.memory_map(str(path), "r")
    table = ipc.open_file(source).read_all()
    out = {}
    for name in table.column_names:
        column = table.column(name)
        out[name] = (column.chunk(0).to_numpy(zero_copy_only=True) if column.num_chunks == 1
                     else column.to_numpy())
    return out


def write_columnar(run_dir: str | os.PathLike[str], history: History | None = None, *, skip_bad: bool = False,
                   workers: int | None = None) -> Path:
    """Build ``RUN_DIR/columnar/`` from the JSONL history (read now, or the given one); return its path."""
    run_dir = Path(run_dir)
    sources = fingerprint(run_dir)  # taken first: files that change while being read make the copy stale
    if history is None:
        history = read_history(run_dir, skip_bad=skip_bad, workers=workers)
    elif history.input.source == "columnar":
        raise ValueError("write_columnar needs a history read from the history files")
    final = run_dir / COLUMNAR_DIR
    tmp = run_dir / f".{COLUMNAR_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    m = history.messages
    _write_table(tmp / "messages.arrow", {k: getattr(m, k) for k in _MESSAGE_COLUMNS})
    c = history.completions
    _write_table(tmp / "completions.arrow", {k: getattr(c, k) for k in _COMPLETION_COLUMNS})
    for code in range(len(history.region_names)):
        r = history.region_receipts(code)
        _write_table(tmp / f"receipts-{code}.arrow", {k: getattr(r, k) for k in _RECEIPT_COLUMNS})
    meta = {
        "format": FORMAT, "sources": sources, "skip_bad": skip_bad,
        "skipped": history.input.skipped, "skipped_examples": list(history.input.skipped_examples),
        "lines": history.input.lines, "ignored": dict(history.input.ignored),
        "not_read": list(history.input.not_read),
        "region_names": list(history.region_names), "processes": list(history.processes),
        "producers": list(history.producers), "keys": list(history.keys), "files": list(history.files),
        "line_index": [list(map(list, x)) for x in history.line_index],
        "receipt_counts": list(history.receipt_counts),
        "faults": [{"time": f.time, "phase": f.phase, "fault": f.fault, "target": f.target, "id": f.id,
                    "regions": None if f.regions is None else list(f.regions), "region_loss": f.region_loss,
                    "process": f.process} for f in history.faults],
        "subscriptions": list(history.subscriptions),
        "failovers": [{"time": f.time, "region": f.region, "process": f.process, "client": f.client, "role": f.role,
                       "from": f.source, "to": f.target, "mode": f.mode} for f in history.failovers],
    }
    (tmp / "meta.json").write_bytes(orjson.dumps(meta))
    old = run_dir / f".{COLUMNAR_DIR}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def open_fresh(run_dir: str | os.PathLike[str], *, skip_bad: bool = False) -> tuple[History | None, str]:
    """The history from the columnar copy if it is there and matches the JSONL; else (None, why not)."""
    run_dir = Path(run_dir)
    root = run_dir / COLUMNAR_DIR
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        return None, "there is none (write it with `geo-recon check RUN_DIR --write-columnar`)"
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return None, f"{meta_path} is unreadable ({exc})"
    if meta.get("format") != FORMAT:
        return None, f"{meta_path} has format {meta.get('format')!r}, this version reads {FORMAT}"
    if meta["sources"] != fingerprint(run_dir):
        return None, "the history files changed since it was written"
    if meta["skipped"] and not skip_bad:
        return None, "it was written skipping bad lines, and --skip-bad is not set"
    run = read_run_json(run_dir)
    names = tuple(meta["region_names"])
    if not set(run["regions"]) <= set(names):
        return None, "run.json lists regions it does not know"
    try:
        m = _read_table(root / "messages.arrow")
        c = _read_table(root / "completions.arrow")
    except (OSError, pa.ArrowException) as exc:
        raise HistoryError(f"cannot read the columnar copy: {exc}", path=root) from None

    def loader(code: int) -> Any:
        def load() -> Receipts:
            try:
                r = _read_table(root / f"receipts-{code}.arrow")
            except (OSError, pa.ArrowException) as exc:
                raise HistoryError(f"cannot read the columnar copy: {exc}", path=root) from None
            return Receipts(**{k: r[k] for k in _RECEIPT_COLUMNS})
        return load

    faults = tuple(FaultEvent(time=f["time"], phase=f["phase"], fault=f["fault"], target=f["target"], id=f["id"],
                              regions=None if f["regions"] is None else tuple(f["regions"]),
                              region_loss=f["region_loss"], process=f["process"]) for f in meta["faults"])
    summary = InputSummary(source="columnar", files=len(meta["files"]), lines=meta["lines"],
                           skipped=meta["skipped"], skipped_examples=tuple(meta["skipped_examples"]),
                           ignored=meta["ignored"], not_read=tuple(meta.get("not_read", ())))
    history = History(
        regions=tuple(run["regions"]), region_names=names, processes=tuple(meta["processes"]),
        producers=tuple(meta["producers"]), keys=tuple(meta["keys"]), files=tuple(meta["files"]),
        messages=Messages(**{k: m[k] for k in _MESSAGE_COLUMNS}),
        completions=Completions(**{k: c[k] for k in _COMPLETION_COLUMNS}),
        receipts=tuple(loader(code) for code in range(len(names))), receipt_counts=tuple(meta["receipt_counts"]),
        faults=faults, run=run, input=summary, subscriptions=tuple(meta["subscriptions"]),
        failovers=tuple(FailoverEvent(time=f["time"], region=f["region"], process=f["process"], client=f["client"],
                                      role=f["role"], source=f["from"], target=f["to"], mode=f["mode"])
                        for f in meta["failovers"]),
        line_index=tuple(tuple((int(a), int(b)) for a, b in x) for x in meta["line_index"]))
    return history, ""
