"""Tiny histories written by hand: ms-scale times, one helper per line type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geo_recon.history import write_run_json

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def at(ms: float) -> int:
    return T0 + int(ms * MS)


def send(kind: str, producer: str, seq: int, t_ms: float, *, region: str | None = None, **extra: Any) -> dict:
    region = region or producer.split("/")[0]
    return {"type": kind, "f": "send", "time": at(t_ms), "region": region, "process": producer,
            "producer": producer, "seq": seq, **extra}


def sent(producer: str, seq: int, t_ms: float, *, latency_ms: float = 1, key: str | None = None,
         outcome: str = "ok") -> list[dict]:
    """An invoke and its completion (``outcome`` None: no completion)."""
    lines = [send("invoke", producer, seq, t_ms, **({"key": key} if key else {}))]
    if outcome is not None:
        lines.append(send(outcome, producer, seq, t_ms + latency_ms))
    return lines


def recv(process: str, producer: str, seq: int, t_ms: float, *, msg_id: str | None = None,
         **extra: Any) -> dict:
    return {"type": "recv", "time": at(t_ms), "region": process.split("/")[0], "process": process,
            "producer": producer, "seq": seq, "msg_id": msg_id or f"{producer}:{seq}", **extra}


def fault(phase: str, t_ms: float, *, fault: str = "kill", target: str = "a", id: str = "f1", **extra: Any) -> dict:
    return {"type": "fault", "time": at(t_ms), "phase": phase, "fault": fault, "target": target, "id": id, **extra}


def make_run(run_dir: Path, files: dict[str, list[dict]], *, regions: tuple[str, ...] = ("a", "b"),
             **run: Any) -> Path:
    write_run_json(run_dir, list(regions), **run)
    for name, events in files.items():
        path = run_dir / "history" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir
