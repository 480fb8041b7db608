"""Merge per-region worker outputs (each `geo-recon worker --out DIR`) into one checkable run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from geo_recon import history
from geo_recon.errors import ConfigError


def merge_worker_dirs(worker_dirs: list[Path], out: Path) -> dict[str, Any]:
    regions: list[str] = []
    offsets: dict[str, int] = {}
    run_ids: set[str] = set()
    out_history = out / "history"
    out_history.mkdir(parents=True, exist_ok=True)
    for directory in worker_dirs:
        summaries = sorted((directory / "workers").glob("*.summary.json"))
        configs = sorted((directory / "workers").glob("*.config.json"))
        if not (directory / "history").is_dir() or not (summaries or configs):
            raise ConfigError(f"{directory}: not the output of `geo-recon worker --out` "
                              "(no history/ or workers/*.summary.json)")
        for summary_path in summaries:
            try:
                summary = json.loads(summary_path.read_text())
            except ValueError as exc:
                raise ConfigError(f"{summary_path}: not valid JSON ({exc})") from None
            run_ids.add(summary.get("run_id", ""))
            if summary["region"] not in regions:
                regions.append(summary["region"])
            for process in summary.get("processes", []):
                offsets[process] = int(summary.get("clock_offset_ns") or 0)
        for config_path in configs:
            config = json.loads(config_path.read_text())
            for region in config.get("regions", []):
                if region not in regions:
                    regions.append(region)
        for source in sorted(p for p in (directory / "history").glob("*") if p.name.endswith(history.HISTORY_SUFFIXES)):
            target = out_history / source.name
            if target.exists():
                raise ConfigError(f"two worker directories both have history/{source.name} ({source}); "
                                  "each region's worker must have its own region name")
            shutil.copyfile(source, target)
    if len(run_ids - {""}) > 1:
        raise ConfigError(f"the worker directories come from different runs: {sorted(run_ids)}; "
                          "give every region's worker the same --run-id")
    run = {"regions": regions, "run_id": next(iter(run_ids - {""}), None), "clock_offsets_ns": offsets,
           "merged_from": [str(d) for d in worker_dirs]}
    history.write_run_json(out, regions, **{k: v for k, v in run.items() if k != "regions"})
    return run
