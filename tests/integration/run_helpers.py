"""Run scenarios on a module's lab and read what they recorded."""

from __future__ import annotations

import json
from pathlib import Path

from geo_recon.history import history_files, iter_file
from tests.conftest import REPO, run_cli

SCENARIOS = REPO / "tests" / "integration" / "scenarios"


def run_scenario(name: str, runs: Path, *extra: str) -> tuple[int, Path, str]:
    proc = run_cli("run", str(SCENARIOS / f"{name}.yaml"), "--runs", str(runs), "--reuse-lab", *extra, timeout=900)
    run_dir = (runs / "latest").resolve()
    assert_judge_agrees(run_dir, proc.returncode)
    return proc.returncode, run_dir, proc.stdout + proc.stderr


def assert_judge_agrees(run_dir: Path, run_exit_code: int) -> None:
    """`geo-recon judge RUN_DIR` re-judges the stored run to the verdict `run` reached (when `run` judged)."""
    outcome = json.loads((run_dir / "outcome.json").read_text())
    if outcome.get("error") or outcome.get("interrupted"):
        return
    judged = run_cli("judge", str(run_dir))
    assert judged.returncode == run_exit_code, judged.stdout + judged.stderr


def events(run_dir: Path) -> list[dict]:
    out = []
    for path in history_files(run_dir):  # JSONL or Arrow
        out += [event for _, kind, event, _ in iter_file(path) if kind not in ("blank", "bad")]
    return out


def fault_window(run_dir: Path, fault_id: str = "f1") -> tuple[int, int, dict]:
    lines = [e for e in events(run_dir) if e["type"] == "fault" and e["id"] == fault_id]
    start = next(e for e in lines if e["phase"] == "start")
    stop = next(e for e in lines if e["phase"] == "stop")
    return start["time"], stop["time"], start


def scheduled_stop_ns(run_dir: Path, fault_id: str = "f1") -> int:
    """When the fault's heal was due (its stop line follows once the heal is verified)."""
    run = json.loads((run_dir / "run.json").read_text())
    stop_s = next(f["stop_s"] for f in run["schedule"] if f["id"] == fault_id)
    return run["start_at_ns"] + int(stop_s * 1e9)


def heal_from_ns(run_dir: Path, fault_id: str = "f1") -> int:
    """The earliest the fault's heal can have begun: its stop line is written once the heal is verified, which
    under load comes seconds after the heal itself (the run's interpreter never heals before it is due)."""
    return min(fault_window(run_dir, fault_id)[1], scheduled_stop_ns(run_dir, fault_id))


def acked(run_dir: Path) -> dict[tuple[str, int], tuple[int, int]]:
    """(producer, seq) -> (invoke time, ok time)."""
    invokes, oks = {}, {}
    for e in events(run_dir):
        if e["type"] == "invoke":
            invokes[(e["producer"], e["seq"])] = e["time"]
        elif e["type"] == "ok":
            oks[(e["producer"], e["seq"])] = e["time"]
    return {k: (invokes[k], t) for k, t in oks.items()}


def first_receipts(run_dir: Path, region: str, *, consumers_only: bool = True) -> dict[tuple[str, int], int]:
    first: dict[tuple[str, int], int] = {}
    for e in events(run_dir):
        if e["type"] == "recv" and e["region"] == region and (not consumers_only or e.get("via") != "reader"):
            key = (e["producer"], e["seq"])
            first[key] = min(first.get(key, e["time"]), e["time"])
    return first


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def median(values: list[float]) -> float:
    values = sorted(values)
    assert values, "no samples"
    return values[len(values) // 2]
