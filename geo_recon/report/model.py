"""What a run directory holds, read into typed values. Reading never fails on a missing or broken file:
the run is described with what exists, and :attr:`RunData.notes` says plainly what is missing and why.

Files (all optional, but at least one must exist)::

    run.json       the orchestrator's record: regions, scheme, seed, workload, workers, schedule, error
    results.json   the checker's output (CheckResult.to_json())
    verdict.json   the scenario's expectations judged: {"scenario", "scheme", "met", "judgements": [...]}
    outcome.json   {"met", "exit_code", "error", "interrupted", "phases"} (written last by the orchestrator)
    resolved.json  the resolved scenario model, schedule, versions, machine
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geo_recon.errors import GeoReconError
from geo_recon.rundir import RunDir

RUN_FILES = RunDir.RECORDS


class ReportError(GeoReconError):
    """A report cannot be made (no such run directory, nothing in it); exit code 2."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """One expectation of the scenario, judged: what was allowed, what was measured, where, in words."""

    name: str
    limit: float | None
    actual: float | None
    met: bool | None  #: None: could not be decided (e.g. recovery not observed)
    where: str
    words: str

    @property
    def title(self) -> str:
        return f"{self.name} [{self.where}]" if self.where else self.name


@dataclass(frozen=True, slots=True)
class Verdict:
    scenario: str | None
    scheme: str | None
    met: bool | None
    judgements: tuple[Judgement, ...]

    @property
    def not_met(self) -> tuple[Judgement, ...]:
        return tuple(j for j in self.judgements if j.met is False)

    @property
    def undecided(self) -> tuple[Judgement, ...]:
        return tuple(j for j in self.judgements if j.met is None)


@dataclass(frozen=True, slots=True)
class Outcome:
    met: bool | None
    exit_code: int | None
    error: str | None
    interrupted: bool
    phases: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunData:
    """One run directory, read. ``results``/``run``/``resolved`` stay plain JSON (their shapes are the
    checker's and the orchestrator's); ``verdict`` and ``outcome`` are typed."""

    run_dir: Path
    run: Mapping[str, Any] | None
    results: Mapping[str, Any] | None
    verdict: Verdict | None
    outcome: Outcome | None
    resolved: Mapping[str, Any] | None
    problems: tuple[str, ...] = ()  #: files that exist but could not be read
    billing: Mapping[str, Any] | None = None  #: billing/report.json of a billing run

    # ---------------------------------------------------------------- identity

    @property
    def scenario(self) -> str | None:
        for value in ((self.run or {}).get("scenario"), self.verdict.scenario if self.verdict else None,
                      ((self.resolved or {}).get("scenario") or {}).get("name")):
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def scheme(self) -> str | None:
        for value in ((self.run or {}).get("scheme"), self.verdict.scheme if self.verdict else None,
                      (self.resolved or {}).get("scheme"), ((self.results or {}).get("run") or {}).get("scheme")):
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def seed(self) -> int | None:
        for value in ((self.run or {}).get("seed"), (self.resolved or {}).get("seed"),
                      ((self.results or {}).get("run") or {}).get("seed")):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    @property
    def run_id(self) -> str | None:
        value = (self.run or {}).get("run_id")
        return value if isinstance(value, str) else None

    @property
    def regions(self) -> list[str]:
        for value in ((self.run or {}).get("regions"), ((self.results or {}).get("run") or {}).get("regions"),
                      (((self.resolved or {}).get("scenario") or {}).get("topology") or {}).get("regions")):
            if isinstance(value, list) and value:
                return [str(r) for r in value]
        return list((self.results or {}).get("regions", {}))

    @property
    def title(self) -> str:
        return f"{self.scenario or self.run_dir.name} ({self.scheme or 'scheme unknown'})"

    # ---------------------------------------------------------------- what happened

    @property
    def interrupted(self) -> bool:
        return bool((self.outcome and self.outcome.interrupted) or (self.run or {}).get("interrupted"))

    @property
    def error(self) -> str | None:
        """Why the run could not decide, as the orchestrator said it."""
        for value in (self.outcome.error if self.outcome else None, (self.run or {}).get("error")):
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def met(self) -> bool | None:
        """The run's verdict: True (every expectation met), False (one was not), None (could not decide)."""
        if self.interrupted:
            return None
        if self.outcome is not None and (self.outcome.met is not None or self.outcome.error):
            return self.outcome.met
        if self.results is None or self.verdict is None:
            return None
        return self.verdict.met

    @property
    def exit_code(self) -> int:
        return {True: 0, False: 1}.get(self.met, 2)  # type: ignore[arg-type]

    @property
    def workload_seconds(self) -> float | None:
        value = ((self.run or {}).get("workload") or {}).get("duration_s")
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
        value = ((self.results or {}).get("run") or {}).get("duration_s")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def notes(self) -> list[str]:
        """Plain sentences about what is missing and why (empty when the run is complete)."""
        out = list(self.problems)
        if self.interrupted:
            out.append("The run was interrupted (Ctrl-C or SIGTERM): what was recorded is shown, but it decides "
                       "nothing.")
        if self.results is None:
            why = self.error
            if why:
                out.append(f"No results: the run could not decide ({why}). Counts, lag, faults and plots need "
                           "results.json.")
            elif self.run is not None:
                out.append("No results: results.json was not written. Make it with "
                           f"`geo-recon check {self.run_dir} --write`, then re-run `geo-recon report`.")
            else:
                out.append("No results: results.json is missing.")
        if self.verdict is None:
            if self.results is not None:
                out.append("No verdict: verdict.json is missing, so no scenario expectations were judged "
                           "(a run checked by hand, not by `geo-recon run`). The checker's own verdict is shown.")
            else:
                out.append("No verdict: without results there was nothing to judge.")
        if self.run is None:
            out.append("No run.json: regions, workload and workers are unknown; shown from results where possible.")
        return out


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read a run directory. Raises :class:`ReportError` only when there is no run there at all."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such run directory")
    problems: list[str] = []
    raw: dict[str, Any] = {}
    for name in RUN_FILES:
        file = path / name
        if not file.exists():
            continue
        try:
            value = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name} could not be read ({exc}); it is treated as missing.")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}); it is treated as missing.")
            continue
        if not isinstance(value, dict):
            problems.append(f"{name} is not a JSON object; it is treated as missing.")
            continue
        raw[name] = value
    if not raw and not problems:
        raise ReportError(f"{path}: not a run directory (none of {', '.join(RUN_FILES)} is there)")
    billing = None
    billing_file = RunDir(path).file(RunDir.BILLING_REPORT)
    if billing_file.exists():
        try:
            billing = json.loads(billing_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"billing/report.json could not be read ({exc}); it is treated as missing.")
    return RunData(run_dir=path, run=raw.get("run.json"), results=raw.get("results.json"),
                   verdict=_verdict(raw.get("verdict.json"), problems), outcome=_outcome(raw.get("outcome.json")),
                   resolved=raw.get("resolved.json"), problems=tuple(problems), billing=billing)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _verdict(raw: Mapping[str, Any] | None, problems: list[str]) -> Verdict | None:
    if raw is None:
        return None
    judgements = []
    for i, j in enumerate(raw.get("judgements") or []):
        if not isinstance(j, dict) or not isinstance(j.get("name"), str) or not (
                isinstance(j.get("met"), bool) or ("met" in j and j["met"] is None)):
            problems.append(f"verdict.json judgement {i + 1} has no name or met; left out.")
            continue
        where = j.get("where")
        words = j.get("words")
        judgements.append(Judgement(name=j["name"], limit=_number(j.get("limit")), actual=_number(j.get("actual")),
                                    met=j["met"], where=str(where) if where is not None else "",
                                    words=words if isinstance(words, str) else j["name"]))
    met = raw.get("met")
    return Verdict(scenario=raw.get("scenario") if isinstance(raw.get("scenario"), str) else None,
                   scheme=raw.get("scheme") if isinstance(raw.get("scheme"), str) else None,
                   met=met if isinstance(met, bool) else None, judgements=tuple(judgements))


def _outcome(raw: Mapping[str, Any] | None) -> Outcome | None:
    if raw is None:
        return None
    met = raw.get("met")
    code = raw.get("exit_code")
    error = raw.get("error")
    phases = raw.get("phases") if isinstance(raw.get("phases"), dict) else {}
    return Outcome(met=met if isinstance(met, bool) else None,
                   exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                   error=error if isinstance(error, str) and error else None,
                   interrupted=bool(raw.get("interrupted")),
                   phases={str(k): float(v) for k, v in phases.items() if _number(v) is not None})
