"""The run directory's one owner: every file name in it, and how it is created, read and written.

A run directory is the interface between the stages: the orchestrator writes
it, ``check``, ``judge``, ``report`` and ``compare`` read it, with no cluster::

    scenario.yaml            the scenario as given
    resolved.json            what the run was about to do: scenario, scheme, seed, schedule, versions, machine
    run.json                 the workers' record: regions, scheme, seed, workload, workers' fates, schedule, error
    history/*.jsonl          the history (DESIGN.md), one file per writing process
    replication-stats.jsonl  Pulsar's own replication statistics, sampled (async)
    results.json             the checker's result
    verdict.json             the scenario's expectations judged
    outcome.json             how the run ended: met, exit code, error, phases
    billing/report.json      the billing reconciliation (billing workload)
    report.md, report.html, report.json, junit.xml   the reports
    logs/                    workers' and components' logs
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo_recon.errors import GeoReconError


class RunDirError(GeoReconError):
    """A file of a run directory exists but cannot be read as what it should be."""


@dataclass(frozen=True)
class RunDir:
    path: Path

    SCENARIO = "scenario.yaml"
    RESOLVED = "resolved.json"
    RUN = "run.json"
    HISTORY = "history"
    REPLICATION_STATS = "replication-stats.jsonl"
    RESULTS = "results.json"
    VERDICT = "verdict.json"
    OUTCOME = "outcome.json"
    BILLING_REPORT = "billing/report.json"
    REPORT_MD = "report.md"
    REPORT_HTML = "report.html"
    REPORT_JSON = "report.json"
    JUNIT_XML = "junit.xml"
    LOGS = "logs"
    LATEST = "latest"
    #: the JSON records a report reads (any of them makes a directory a run directory)
    RECORDS = (RUN, RESULTS, VERDICT, OUTCOME, RESOLVED)

    @classmethod
    def create(cls, root: Path, stem: str) -> "RunDir":
        """A fresh ``root/<stem>-<time>[-n]`` and ``root/latest`` pointing at it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{stem}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{stem}-{stamp}-{n}"
        path.mkdir(parents=True)
        latest = root / cls.LATEST
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(path.name)
        return cls(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def history_dir(self) -> Path:
        return self.path / self.HISTORY

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_json(self, name: str) -> Any:
        """The parsed file, or None if it does not exist; ``RunDirError`` if it is not valid JSON."""
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{path}: cannot be read ({exc})") from None

    def write_json(self, name: str, value: Any) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2))
        return path
