"""The one orchestrator: scenario in, run directory with a verdict out.

lab up -> configure + verify the scheme -> workers in every region + faults on
their schedule -> heal -> drain -> check -> judge -> report -> tear down.
Healing, stopping the workers and tearing the lab down happen in ``finally``:
on success, on error, and on Ctrl-C, after which what was recorded is still
written and checked.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from geo_recon import __version__, deployment, history, schemes, verdict
from geo_recon.deploy import local, netns, pulsar_dist
from geo_recon.deploy import state as lab_state
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, EnvironmentProblem, GeoReconError
from geo_recon.faults.injector import FaultError, Injector
from geo_recon.faults.spec import ScheduledFault, expand
from geo_recon.scenario import Scenario
from geo_recon.workload import runner

Progress = Callable[[str], None]


class RunError(GeoReconError):
    """The run could not reach a verdict (exit code 2)."""


@dataclass
class RunOutcome:
    run_dir: Path
    scheme: str
    met: bool | None
    phases: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return {True: 0, False: 1}.get(self.met, 2)  # type: ignore[arg-type]


def new_run_dir(root: Path, scenario: Scenario, scheme: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{scenario.name}-{scheme}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{scenario.name}-{scheme}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    latest = root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name)
    return run_dir


def versions() -> dict[str, str]:
    import importlib.metadata

    out = {"geo-recon": __version__, "pulsar": pulsar_dist.PULSAR_VERSION,
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
                 keep_lab: bool = False, reuse_lab: bool = False) -> RunOutcome:
    if scenario.topology.backend == "compose":
        from geo_recon.deploy.compose_backend import check_engine, run_command

        check_engine(run_command)  # no Docker engine: a clear error before anything is done
        raise ConfigError(f"{scenario.source}: backend compose: run the rendered lab with `geo-recon compose up DIR`, "
                          "then this scenario with backend external and the project's clusters.yaml")
    if scenario.topology.backend == "external" and scenario.faults:
        raise ConfigError(f"{scenario.source}: faults need a lab this tool controls (backend local or compose); "
                          "the external backend only drives load and checks")
    run_dir = new_run_dir(runs_root.resolve(), scenario, scheme)
    outcome = RunOutcome(run_dir, scheme, None)
    schedule = expand(scenario.faults, scenario.workload.duration_s, scenario.seed)
    (run_dir / "scenario.yaml").write_text(Path(scenario.source).read_text() if scenario.source else
                                           yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)))
    resolved = {"scenario": scenario.model_dump(mode="json", by_alias=True), "scheme": scheme, "seed": scenario.seed,
                "schedule": [{"id": f.id, "fault": f.spec.describe(), "start_s": f.start_s, "stop_s": f.stop_s}
                             for f in schedule],
                "versions": versions(), "machine": {"host": platform.node(), "cpus": os.cpu_count()}}
    (run_dir / "resolved.json").write_text(json.dumps(resolved, indent=2))
    progress(f"run {run_dir} ({scenario.name}, {scheme} scheme, seed {scenario.seed})")
    for f in schedule:
        progress(f"  scheduled {f.id}: {f.spec.describe()} at {f.start_s:g}s for {f.stop_s - f.start_s:g}s")

    @contextmanager
    def phase(name: str):
        started = time.monotonic()
        progress(f"== {name}")
        try:
            yield
        finally:
            outcome.phases[name] = round(time.monotonic() - started, 2)

    lab_name: str | None = None
    started_lab = False
    injector: Injector | None = None
    workers: runner.WorkerSet | None = None
    controller = history.HistoryWriter(run_dir / "history" / "controller.jsonl")
    result: dict[str, Any] | None = None
    try:
        with phase("lab up"):
            target, lab_name, started_lab = _bring_up(scenario, scheme, reuse_lab, progress)
        with phase("configure"):
            settings = _settings(scenario)
            schemes.apply(target, scheme, settings, progress=lambda m: progress(f"  {m}"))
            checks = schemes.verify(target, scheme, settings)
            failed = [c for c in checks if not c.ok]
            for c in checks:
                progress(f"  {'ok  ' if c.ok else 'FAIL'} {f'[{c.region}] ' if c.region else ''}{c.name}: {c.detail}")
            if failed:
                raise RunError(f"the {scheme} scheme is not in effect: " +
                               "; ".join(f"{c.name}: {c.detail}" for c in failed))
        if scenario.workload.warmup_s > 0:
            with phase("warm-up"):
                _warm_up(target, scheme, scenario, lab_name, progress)
        with phase("load and faults"):
            run_id = runner.new_run_id()
            topics = runner.prepare_topics(target, scheme, scenario.workload, run_id, settings)
            lab = lab_state.load(lab_name) if lab_name else None
            namespaces = {r: ns for r, ns in (lab.namespaces.items() if lab else []) if r in target.region_names}
            clock = runner.ClockServer((lab.bridge_address if lab and lab.bridge_address else "127.0.0.1"))
            try:
                workers = runner.start_workers(target, scenario.workload, run_dir, run_id, topics,
                                               seed=scenario.seed, namespaces=namespaces, clock_url=clock.url,
                                               lab_marker=lab_name)
                stop = threading.Event()
                fault_errors: list[str] = []
                fault_thread = None
                if schedule and lab_name:
                    injector = Injector(lab_name, on_event=controller.append,
                                        progress=lambda m: progress(f"  {m}"))
                    fault_thread = threading.Thread(
                        target=_drive_faults, args=(injector, schedule, workers.start_at_ns, stop, fault_errors),
                        name="faults", daemon=True)
                    fault_thread.start()
                live = _LiveLine(progress, injector)
                sampler = _ReplicationSampler(target, settings, run_dir / "replication-stats.jsonl") \
                    if scheme == "async" else None
                try:
                    result = runner.supervise(workers, scenario.workload, on_progress=live, stop=stop)
                finally:
                    if sampler:
                        sampler.close()
                for region, fate in result["fates"].items():
                    if fate != "finished":
                        tails = "; ".join(f"{key}: {_tail(log)}" for key, log in workers.logs.items()
                                          if key.startswith(f"{region}/"))
                        progress(f"  region {region}: {fate}; {tails}")
                if fault_thread:
                    fault_thread.join(timeout=300)
            finally:
                clock.close()
            if fault_errors:
                raise RunError("; ".join(fault_errors))
    except KeyboardInterrupt:
        outcome.interrupted = True
        progress("interrupted: healing faults, stopping workers, keeping what was recorded")
    except GeoReconError as exc:
        outcome.error = str(exc)
        progress(f"error: {exc}")
    finally:
        _cleanup(injector, workers, controller, progress)
        if workers is not None:
            if result is None:
                result = runner.supervise(workers, scenario.workload)
            runner.write_run_json(workers, result, scheme=scheme, seed=scenario.seed, workload=scenario.workload,
                                  extra={"scenario": scenario.name, "interrupted": outcome.interrupted,
                                         "schedule": resolved["schedule"], "error": outcome.error})
        if lab_name:
            _keep_component_logs(lab_name, run_dir)
            if started_lab and not keep_lab and not scenario.topology.lab.keep:
                with phase("lab down"):
                    local.down(lab_name, progress=lambda m: None)
    if workers is not None and outcome.error is None:
        _check_and_judge(scenario, scheme, outcome, phase, progress)
    (run_dir / "outcome.json").write_text(json.dumps(
        {"met": outcome.met, "exit_code": outcome.exit_code, "error": outcome.error,
         "interrupted": outcome.interrupted, "phases": outcome.phases}, indent=2))
    return outcome


def _settings(scenario: Scenario) -> schemes.SchemeSettings:
    s = scenario.settings
    try:
        e, w, a = (int(x) for x in s.persistence.split("/"))
    except ValueError:
        raise ConfigError(f"{scenario.source}: field settings.persistence: expected E/W/A like 2/2/2, "
                          f"got {s.persistence!r}") from None
    return schemes.SchemeSettings(tenant=s.tenant, namespace=s.namespace, dedup=s.dedup,
                                  ensemble=e, write_quorum=w, ack_quorum=a)


def _bring_up(scenario: Scenario, scheme: str, reuse: bool, progress: Progress
              ) -> tuple[deployment.Deployment, str | None, bool]:
    topo = scenario.topology
    if topo.backend == "external":
        return deployment.from_clusters_file(topo.clusters or ""), None, False
    opts = topo.lab
    existing = lab_state.load(opts.name)
    if existing is not None and existing.phase == "up":
        same = existing.scheme == scheme and existing.regions == list(topo.regions)
        if reuse and same:
            progress(f"reusing lab {opts.name!r}")
            return deployment.from_lab(opts.name), opts.name, False
        raise RunError(f"lab {opts.name!r} is already up ({existing.scheme}, regions {existing.regions}); "
                       f"stop it with `geo-recon lab down --name {opts.name}`"
                       + (" or pass --reuse-lab" if same else ""))
    isolation = opts.isolation
    if isolation == "auto":
        isolation = "netns" if netns.is_root() else "loopback"
    if scenario.faults and isolation != "netns" and any(f.kind in ("partition", "isolate", "latency", "bandwidth")
                                                        for f in scenario.faults):
        raise EnvironmentProblem(f"{scenario.source}: network faults need network namespaces; run as root")
    spec = LabSpec(regions=tuple(topo.regions), scheme=scheme, name=opts.name,  # type: ignore[arg-type]
                   base_port=opts.base_port, isolation=isolation, subnet=opts.subnet)  # type: ignore[arg-type]
    local.up(spec, progress=lambda m: progress(f"  {m}"))
    return deployment.from_lab(opts.name), opts.name, True


def _warm_up(target: deployment.Deployment, scheme: str, scenario: Scenario, lab_name: str | None,
             progress: Progress) -> None:
    """The same paths as the run (workers, replication, consumers) for a few seconds, not recorded:
    freshly started brokers compile their hot paths in the first seconds, which would otherwise
    show up as seconds of lag in the first measurements."""
    import tempfile

    lab = lab_state.load(lab_name) if lab_name else None
    workload = scenario.workload.model_copy(update={"duration_s": scenario.workload.warmup_s, "reader_drain": False,
                                                    "drain_timeout_s": 30, "warmup_s": 0})
    with tempfile.TemporaryDirectory(prefix="geo-recon-warmup-") as tmp:
        result = runner.run_load(target, scheme, workload, Path(tmp), seed=scenario.seed,
                                 namespaces={r: ns for r, ns in (lab.namespaces.items() if lab else [])
                                             if r in target.region_names},
                                 clock_host=(lab.bridge_address or "127.0.0.1") if lab else "127.0.0.1",
                                 lab_marker=lab_name)
    acked = sum(s.get("acked", 0) for s in result["summaries"].values())
    progress(f"  warm-up: {acked} messages acknowledged in {workload.duration_s:g}s (not recorded)")


def _drive_faults(injector: Injector, schedule: list[ScheduledFault], start_at_ns: int, stop: threading.Event,
                  errors: list[str]) -> None:
    events = sorted([(f.start_s, 1, "inject", f) for f in schedule] + [(f.stop_s, 0, "heal", f) for f in schedule],
                    key=lambda e: (e[0], e[1]))
    try:
        for at_s, _, action, fault in events:
            wait = start_at_ns / 1e9 + at_s - time.time()
            if wait > 0 and stop.wait(wait):
                return
            try:
                injector.inject(fault) if action == "inject" else injector.heal(fault)
            except FaultError as exc:
                errors.append(f"{fault.id} ({fault.spec.describe()}) {action}: {exc}")
                stop.set()  # a fault that did not take effect makes the run undecidable
                return
    finally:
        try:
            injector.heal_all()
        except GeoReconError as exc:
            errors.append(f"healing: {exc}")


class _ReplicationSampler:
    """What Pulsar itself reports about replication (connected, backlog, delay), sampled every
    couple of seconds into replication-stats.jsonl, next to the history it can be compared with."""

    def __init__(self, target: deployment.Deployment, settings: schemes.SchemeSettings, path: Path,
                 every_s: float = 2.0):
        self.target, self.settings, self.path, self.every_s = target, settings, path, every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="replication-sampler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from geo_recon import status

        with open(self.path, "a") as out:
            while not self.stop.wait(self.every_s):
                now = time.time_ns()
                try:
                    statuses = status.replication_status(self.target, self.settings)
                except GeoReconError:
                    continue  # a region may be down: that is the point of the run
                for t in statuses:
                    for link in t.links:
                        out.write(json.dumps({"time": now, "region": t.region, "topic": t.topic, "remote": link.remote,
                                              "connected": link.connected, "backlog": link.backlog,
                                              "delay_s": link.delay_seconds}) + "\n")
                out.flush()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


class _LiveLine:
    """One progress line every few seconds: phase, counts per region, lag, active faults."""

    def __init__(self, progress: Progress, injector: Injector | None, every_s: float = 3.0):
        self.progress, self.injector, self.every_s = progress, injector, every_s
        self.last = 0.0

    def __call__(self, regions: dict[str, dict]) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        parts = []
        for region, p in sorted(regions.items()):
            lag = p.get("lag_ms_p50")
            parts.append(f"{region} {p.get('phase', '?')}: sent {p.get('sent', 0)} acked {p.get('acked', 0)} "
                         f"recv {p.get('received', 0)}" + (f" lag~{lag:.0f}ms" if lag is not None else ""))
        active = sorted(self.injector.active) if self.injector else []
        self.progress("  " + " | ".join(parts) + (f" | faults: {', '.join(active)}" if active else ""))


def _cleanup(injector: Injector | None, workers: runner.WorkerSet | None, controller: history.HistoryWriter,
             progress: Progress) -> None:
    if injector is not None:
        try:
            for item in injector.heal_all():
                progress(f"  healed {item}")
        except GeoReconError as exc:
            progress(f"  healing failed: {exc}")
    if workers is not None:
        runner.stop_workers(workers)
    controller.close()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _keep_component_logs(lab_name: str, run_dir: Path) -> None:
    logs = lab_state.lab_dir(lab_name) / "logs"
    if logs.is_dir():
        shutil.copytree(logs, run_dir / "logs" / "components", dirs_exist_ok=True)


def _check_and_judge(scenario: Scenario, scheme: str, outcome: RunOutcome, phase, progress: Progress) -> None:
    from geo_recon import check

    run_dir = outcome.run_dir
    with phase("check"):
        try:
            result = check.check_run(run_dir, allow=scenario.expectations.for_scheme(scheme).allow)
        except GeoReconError as exc:
            outcome.error = f"check: {exc}"
            progress(f"could not decide: {exc}")
            return
        check.write_results(result, run_dir)
        results = json.loads((run_dir / "results.json").read_text())
    billing = None
    if scenario.workload.billing is not None:
        from geo_recon.workload.billing_facts import billing_report

        try:
            billing = billing_report(run_dir)
        except (GeoReconError, OSError, ValueError) as exc:
            outcome.error = f"billing: {exc}"
            progress(f"could not decide the billing reconciliation: {exc}")
            return
        progress(f"  billing: {billing['transactions']} transactions reconciled in {billing['reconciling_region']}, "
                 f"{billing['found']}/{billing['injected']} injected errors found, "
                 f"{billing['false_exceptions']} false exception(s) {billing['exceptions']}")
    met, judgements = verdict.judge(results, scenario.expectations.for_scheme(scheme), billing)
    outcome.met = None if outcome.interrupted else met
    (run_dir / "verdict.json").write_text(json.dumps(
        {"scenario": scenario.name, "scheme": scheme, **verdict.to_json(met, judgements)}, indent=2))
    for j in judgements:
        progress(f"  {'met    ' if j.met else 'NOT MET'} {j.words}")
    with phase("report"):
        from geo_recon.report import render_run

        try:
            for path in render_run(run_dir):
                progress(f"  wrote {path}")
        except (GeoReconError, OSError) as exc:  # the verdict stands; only its rendering failed
            progress(f"  could not write the report: {exc}")
