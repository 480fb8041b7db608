"""The one orchestrator: scenario in, run directory with a verdict out.

backend up -> configure + verify the scheme -> workers in every region + faults
on their schedule -> heal -> drain -> check -> judge -> report -> tear down.
Healing, stopping the workers and tearing the lab down happen in ``finally``:
on success, on error, and on Ctrl-C, after which what was recorded is still
written and checked.

The same lifecycle runs on every backend (``deploy.base.Backend``): a local lab
(JVMs, network namespaces), a compose lab (containers; the scheme configured
from inside, a worker container per region) or existing clusters. What differs
is behind the backend (``lifecycle.backends``), the worker driver
(``lifecycle.workers``) and the backend's fault capabilities, which the one
fault driver (``faults.driver``) uses. A scenario that needs something its
backend cannot do stops before anything is created.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from geo_recon import __version__, history, verdict
from geo_recon.check import check_run, write_results
from geo_recon.deploy import pulsar_dist, pulsar_versions
from geo_recon.deploy.base import Backend
from geo_recon.deploy.compose_lab_backend import ComposeHooks
from geo_recon.errors import GeoReconError
from geo_recon.faults.driver import FaultDriver, drive
from geo_recon.faults.spec import ScheduledFault, expand
from geo_recon.lifecycle import failover
from geo_recon.lifecycle.backends import backend_for
from geo_recon.lifecycle.configure import configure, rejoin_region, scheme_settings
from geo_recon.lifecycle.observe import LiveLine, ReplicationSampler
from geo_recon.lifecycle.workers import WorkerDriver, driver_for, warm_up
from geo_recon.report import render_run
from geo_recon.rundir import RunDir
from geo_recon.scenario import LoadEnd, Scenario, load_end
from geo_recon.schemes import Scheme
from geo_recon.schemes import get as scheme_named
from geo_recon.secrets import scrub, scrubbing
from geo_recon.workload import runner
from geo_recon.workload.billing_facts import billing_report

Progress = Callable[[str], None]

__all__ = ["ComposeHooks", "RunError", "RunOutcome", "run_scenario", "new_run_dir", "versions"]


class RunError(GeoReconError):
    """The run could not reach a verdict (exit code 2)."""


@dataclass
class RunOutcome:
    run_dir: Path
    scheme: str
    met: bool | None
    pulsar: str = pulsar_versions.DEFAULT_PULSAR
    phases: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return {True: 0, False: 1}.get(self.met, 2)  # type: ignore[arg-type]


def new_run_dir(root: Path, scenario: Scenario, scheme: str) -> Path:
    return RunDir.create(root, f"{scenario.name}-{scheme}").path


def versions(pulsar: str | None = None) -> dict[str, str]:
    import importlib.metadata

    out = {"geo-recon": __version__, "pulsar": pulsar or pulsar_versions.default_version(),
           "pulsar-tools": pulsar_dist.TOOLS_VERSION, "python": platform.python_version()}
    try:
        out["pulsar-client (python)"] = importlib.metadata.version("pulsar-client")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        out["java"] = pulsar_dist.find_java().version
    except GeoReconError:
        pass
    return out


def run_scenario(scenario: Scenario, scheme: str, *, runs_root: Path, progress: Progress,
                 keep_lab: bool = False, reuse_lab: bool = False,
                 compose_hooks: ComposeHooks | None = None, pulsar: str | None = None) -> RunOutcome:
    pulsar = pulsar_versions.release(pulsar or scenario.pulsar).version
    schedule = expand(scenario.faults, scenario.workload.duration_s, scenario.seed)
    end = load_end(scenario, scheme, schedule)
    seconds = end.scheduled_s
    if seconds > scenario.workload.duration_s:  # the final phase: clients must be seen working after the last heal
        progress(f"load runs {seconds:g}s, not {scenario.workload.duration_s:g}s: the recovery limit past the last heal")
        scenario = scenario.model_copy(update={"workload": scenario.workload.model_copy(update={"duration_s": seconds})})
    if end.window_s is not None:
        progress(f"load goes on until {end.window_s:g}s after the last heal as verified (at most {end.cap_s:g}s)")
    scenario, failover_run = failover.resolve(scenario, scheme_named(scheme), progress)
    # A backend that cannot do what the scenario asks (no engine, a fault it lacks): refused before anything exists.
    backend = backend_for(scenario, scheme, schedule, reuse_lab=reuse_lab, hooks=compose_hooks or ComposeHooks(),
                          progress=progress, pulsar=pulsar)
    outcome, resolved = _open_run(scenario, scheme, schedule, runs_root, progress, backend.versions(), pulsar)
    phase = _phase_timer(outcome, progress)
    recorded = _run_on(backend, scenario, scheme_named(scheme), schedule, end, outcome, resolved, phase, progress,
                       keep_lab=keep_lab, run_extra=failover_run)
    if recorded and outcome.error is None:
        _check_and_judge(scenario, scheme, outcome, phase, progress)
    RunDir(outcome.run_dir).write_json(RunDir.OUTCOME, {
        "met": outcome.met, "exit_code": outcome.exit_code, "error": outcome.error, "pulsar": outcome.pulsar,
        "interrupted": outcome.interrupted, "phases": outcome.phases})
    return outcome


def _open_run(scenario: Scenario, scheme: str, schedule: list[ScheduledFault], runs_root: Path, progress: Progress,
              extra_versions: dict[str, str], pulsar: str) -> tuple[RunOutcome, dict[str, Any]]:
    """The run directory with what the run is about to do: the scenario, the resolved schedule, versions."""
    # a version other than the default (or one the scenario pins) is in the directory's name
    tagged = pulsar != pulsar_versions.default_version() or scenario.pulsar is not None
    rd = RunDir.create(runs_root.resolve(), f"{scenario.name}-{scheme}" + (f"-pulsar{pulsar}" if tagged else ""))
    run_dir = rd.path
    outcome = RunOutcome(run_dir, scheme, None, pulsar=pulsar)
    rd.file(RunDir.SCENARIO).write_text(Path(scenario.source).read_text() if scenario.source else
                                        yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)))
    resolved = {"scenario": scenario.model_dump(mode="json", by_alias=True), "scheme": scheme, "seed": scenario.seed,
                "schedule": [{"id": f.id, "fault": f.spec.describe(), "start_s": f.start_s, "stop_s": f.stop_s}
                             for f in schedule],
                "pulsar": pulsar,
                "versions": {**versions(pulsar), **extra_versions},
                "machine": {"host": platform.node(), "cpus": os.cpu_count()}}
    rd.write_json(RunDir.RESOLVED, resolved)
    progress(f"run {run_dir} ({scenario.name}, {scheme} scheme, Pulsar {pulsar}, seed {scenario.seed})")
    for f in schedule:
        progress(f"  scheduled {f.id}: {f.spec.describe()} at {f.start_s:g}s" +
                 (f" for {f.stop_s - f.start_s:g}s" if f.heals else " (never healed)"))
    return outcome, resolved


def _phase_timer(outcome: RunOutcome, progress: Progress):
    @contextmanager
    def phase(name: str):
        started = time.monotonic()
        progress(f"== {name}")
        try:
            yield
        finally:
            outcome.phases[name] = round(time.monotonic() - started, 2)

    return phase


def _run_on(backend: Backend, scenario: Scenario, scheme: Scheme, schedule: list[ScheduledFault], end: LoadEnd,
            outcome: RunOutcome, resolved: dict[str, Any], phase, progress: Progress, *, keep_lab: bool,
            run_extra: dict[str, Any]) -> bool:
    """Backend up to backend down. Returns whether the workers' histories are in the run directory."""
    run_dir = outcome.run_dir
    controller = history.HistoryWriter(RunDir(run_dir).history_dir / "controller.jsonl")
    settings = scheme_settings(scenario)
    faults: FaultDriver | None = None
    load: WorkerDriver | None = None
    result: dict[str, Any] | None = None
    stop = threading.Event()
    fault_thread: threading.Thread | None = None
    fault_errors: list[str] = []
    loaded = threading.Event()  # the workers are done: the load's end needs no watching any more
    load_record: dict[str, Any] = {}  # how the load ended (run.json "load")
    secrets: tuple[str, ...] = ()
    up_tried = recorded = False

    def sub(message: str) -> None:
        progress(f"  {message}")

    try:
        with phase("lab up"):
            up_tried = True
            target = backend.up(progress, run_dir)
        secrets = target.secrets
        progress = scrubbing(progress, secrets)  # every later line, errors included
        with phase("configure"):
            configure(backend, target, scheme, settings, scenario, progress)
        if scenario.workload.warmup_s > 0:
            with phase("warm-up"):
                warm_up(backend, target, scheme, scenario, settings, run_dir, progress)
        with phase("load and faults"):
            run_id = runner.new_run_id()
            topics = runner.prepare_topics(target, scheme.name, scenario.workload, run_id, settings)
            # Workers may run up to the cap; the controller ends the load when the recovery window has passed.
            workload = scenario.workload if end.window_s is None else \
                scenario.workload.model_copy(update={"duration_s": end.cap_s})
            load = driver_for(backend, target, out=run_dir, mount=run_dir / "compose-workers", run_id=run_id,
                              topics=topics, workload=workload, seed=scenario.seed, settings=settings,
                              progress=progress)
            load.start()
            if scenario.workload.failover.mode == "controlled":
                failover.ControlledSwitch(scenario, run_dir / "workers", load.start_at_ns, stop, sub).start()
            if schedule:
                faults = FaultDriver(backend, regions=target.region_names, namespace=settings.ns_path,
                                     on_event=controller.append, progress=sub, deployment=target,
                                     # the deployment as it is after the rebuild: new bookie identities
                                     rejoin=lambda region: rejoin_region(backend.deployment(), scheme, settings,
                                                                         region, topics, scenario.workload, sub))
                fault_thread = threading.Thread(target=drive, args=(faults, schedule, load.start_at_ns, stop,
                                                                    fault_errors), name="faults", daemon=True)
                fault_thread.start()
            if end.window_s is not None:
                threading.Thread(target=_end_load_in_time, args=(load, end, faults, schedule, loaded, load_record,
                                                                 sub), name="load-end", daemon=True).start()
            sampler = ReplicationSampler(target, settings, RunDir(run_dir).file(RunDir.REPLICATION_STATS)) \
                if scheme.geo_replicated else None
            try:
                result = load.wait(stop=stop, on_progress=LiveLine(progress, faults))
            finally:
                loaded.set()
                if sampler:
                    sampler.close()
            for region, fate in result["fates"].items():
                if fate != "finished":
                    detail = load.detail(region)
                    progress(f"  region {region}: {fate}" + (f"; {detail}" if detail else ""))
            if fault_thread:
                fault_thread.join(timeout=300)
            if fault_errors:
                raise RunError("; ".join(fault_errors))
    except KeyboardInterrupt:
        outcome.interrupted = True
        progress("interrupted: healing faults, stopping workers, keeping what was recorded")
    except GeoReconError as exc:
        outcome.error = scrub(str(exc), secrets)
        progress(f"error: {exc}")
    finally:
        stop.set()
        loaded.set()
        if fault_thread is not None:
            fault_thread.join(timeout=60)  # it heals what it injected on its way out
        _heal_all(faults, progress)
        if load is not None and load.started:
            if result is None:
                try:
                    load.stop()
                except GeoReconError as exc:
                    progress(f"  could not stop the workers: {exc}")
                result = load.collect()
            load.close()
        controller.close()
        if load is not None and load.started and result is not None:
            if end.window_s is not None:  # run.json's workload says how long the load really ran
                load.workload = load.workload.model_copy(
                    update={"duration_s": load_record.get("ended_s") or end.scheduled_s})
                run_extra = {**run_extra, "load": {"scheduled_s": end.scheduled_s, "cap_s": end.cap_s,
                                                   "window_s": end.window_s, "ended_s": load_record.get("ended_s"),
                                                   "heals_not_observed": load_record.get("heals_not_observed", [])}}
            recorded = load.write_run(run_dir, result, scheme=scheme.name, extra={
                "scenario": scenario.name, "interrupted": outcome.interrupted, "schedule": resolved["schedule"],
                "error": outcome.error, "backend": backend.name, **run_extra})
            if not recorded and outcome.error is None:
                outcome.error = "the workers' histories could not be merged (see above)"
        if up_tried:
            _down(backend, run_dir, phase, progress, keep=keep_lab or scenario.topology.lab.keep)
    return recorded


def _end_load_in_time(load: WorkerDriver, end: LoadEnd, faults: FaultDriver | None, schedule: list[ScheduledFault],
                      loaded: threading.Event, record: dict[str, Any], progress: Progress) -> None:
    """End the load once the recovery window after the last heal, as verified, has passed (not before the
    scheduled end), or at the cap with the heals still pending named: their recovery is not observed."""
    start_s = load.start_at_ns / 1e9
    while not loaded.wait(0.5):
        points = faults.recover_from_s(schedule, load.start_at_ns) if faults is not None else {}
        due = end.due_s(list(points.values()))
        if time.time() - start_s < due:
            continue
        pending = [fault_id for fault_id, at in points.items() if at is None]
        record.update(ended_s=round(time.time() - start_s, 3), heals_not_observed=pending)
        if pending:
            progress(f"the load ends at its cap ({end.cap_s:g}s) with the heal of {', '.join(pending)} not verified: "
                     "recovery after it is not observed")
        elif due > end.scheduled_s:
            last = max(p for p in points.values() if p is not None)
            progress(f"the load ends at {due:.1f}s, not {end.scheduled_s:g}s: " +
                     (f"{end.window_s:g}s after the last heal, verified at {last:.1f}s" if due < end.cap_s else
                      f"its cap, {due - last:.1f}s after the last heal (verified at {last:.1f}s)"))
        try:
            load.end_load()
        except GeoReconError as exc:
            progress(f"could not end the load: {exc}")
        return


def _down(backend: Backend, run_dir: Path, phase, progress: Progress, *, keep: bool) -> None:
    backend.keep_logs(run_dir, progress)
    if not backend.started:  # existing clusters, a reused lab, a lab that did not come up
        return
    if keep:
        hint = backend.left_running()
        if hint:
            progress(hint)
        return
    with phase("lab down"):
        try:
            backend.down(lambda m: None)
        except GeoReconError as exc:
            progress(f"  could not take the lab down: {exc}")


def _heal_all(faults: FaultDriver | None, progress: Progress) -> None:
    if faults is not None:
        try:
            for item in faults.heal_all():
                progress(f"  healed {item}")
        except GeoReconError as exc:
            progress(f"  healing failed: {exc}")


def _check_and_judge(scenario: Scenario, scheme: str, outcome: RunOutcome, phase, progress: Progress) -> None:
    run_dir = outcome.run_dir
    rd = RunDir(run_dir)
    with phase("check"):
        try:
            result = check_run(run_dir, allow=scenario.expectations.for_scheme(scheme).allow)
        except GeoReconError as exc:
            outcome.error = f"check: {exc}"
            progress(f"could not decide: {exc}")
            return
        write_results(result, run_dir)
    if scenario.workload.billing is not None:
        try:
            billing = billing_report(run_dir)  # billing/report.json, which the verdict reads
        except (GeoReconError, OSError, ValueError) as exc:
            outcome.error = f"billing: {exc}"
            progress(f"could not decide the billing reconciliation: {exc}")
            return
        progress(f"  billing: {billing['transactions']} transactions reconciled in {billing['reconciling_region']}, "
                 f"{billing['found']}/{billing['injected']} injected errors found, "
                 f"{billing['false_exceptions']} false exception(s) {billing['exceptions']}")
    try:  # the stored run judged as `geo-recon judge RUN_DIR` judges it, so the two always agree
        stored = verdict.judge_run_dir(run_dir)
    except GeoReconError as exc:
        outcome.error = f"judge: {exc}"
        progress(f"could not decide: {exc}")
        return
    outcome.met = None if outcome.interrupted else stored.met
    rd.write_json(RunDir.VERDICT, stored.to_json())
    for j in stored.judgements:
        progress(f"  {verdict.mark(j.met)} {j.words}")
    with phase("report"):
        try:
            for path in render_run(run_dir):
                progress(f"  wrote {path}")
        except (GeoReconError, OSError) as exc:  # the verdict stands; only its rendering failed
            progress(f"  could not write the report: {exc}")
