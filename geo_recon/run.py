"""The one orchestrator: scenario in, run directory with a verdict out.

lab up -> configure + verify the scheme -> workers in every region + faults on
their schedule -> heal -> drain -> check -> judge -> report -> tear down.
Healing, stopping the workers and tearing the lab down happen in ``finally``:
on success, on error, and on Ctrl-C, after which what was recorded is still
written and checked.

The lab is a local one (JVMs, network namespaces; ``Injector``), existing
clusters (load and checks only), or a compose lab (``topology.backend:
compose``): ``docker compose up``, the scheme configured and verified from
inside the lab, a worker container per region writing its history into the run
directory, faults through ``ComposeFaults`` (docker kill/stop/pause,
Toxiproxy), the histories merged, ``docker compose down``. Without a Docker
engine a compose run stops before it creates anything.
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
from typing import Any, Callable, Protocol

import yaml

from geo_recon import __version__, deployment, history, schemes, verdict
from geo_recon.deploy import compose_backend, local, netns, pulsar_dist, pulsar_versions
from geo_recon.deploy import state as lab_state
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError, EnvironmentProblem, GeoReconError, LabError
from geo_recon.faults.injector import Injector
from geo_recon.faults.spec import ScheduledFault, expand
from geo_recon.scenario import Scenario
from geo_recon.workload import runner

Progress = Callable[[str], None]


class RunError(GeoReconError):
    """The run could not reach a verdict (exit code 2)."""


class Faults(Protocol):
    """What drives a fault schedule: the local lab's ``Injector`` or the compose lab's ``ComposeFaults``."""

    active: dict

    def inject(self, fault: ScheduledFault) -> None: ...

    def heal(self, fault: ScheduledFault) -> None: ...

    def heal_all(self) -> list[str]: ...


@dataclass
class ComposeHooks:
    """What a compose run talks to: Docker (command lines), Toxiproxy's API, time. Tests pass fakes."""

    runner: compose_backend.Runner = compose_backend.run_command
    http: compose_backend.Http = compose_backend.http_request
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    start_delay_s: float = 15.0  # from `up` of the workers to their common start: container start, client connect
    poll_s: float = 2.0


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


def new_run_dir(root: Path, scenario: Scenario, scheme: str, pulsar: str | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = f"{scheme}-pulsar{pulsar}" if pulsar else scheme
    run_dir = root / f"{scenario.name}-{tag}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{scenario.name}-{tag}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    latest = root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name)
    return run_dir


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
    if scenario.topology.backend == "compose" and pulsar != pulsar_dist.PULSAR_VERSION:
        raise ConfigError(f"{scenario.source}: compose labs run Pulsar {pulsar_dist.PULSAR_VERSION} only; "
                          f"run Pulsar {pulsar} on backend local")
    compose_plan = None
    if scenario.topology.backend == "compose":
        # No Docker engine, or a fault compose cannot do: a clear error before anything is created.
        compose_plan = _compose_preflight(scenario, scheme, reuse_lab, compose_hooks or ComposeHooks())
    if scenario.topology.backend == "external" and scenario.faults:
        raise ConfigError(f"{scenario.source}: faults need a lab this tool controls (backend local or compose); "
                          "the external backend only drives load and checks")
    schedule = expand(scenario.faults, scenario.workload.duration_s, scenario.seed)
    extra_versions = {"docker compose": compose_plan.compose_version} if compose_plan else {}
    outcome, resolved = _open_run(scenario, scheme, schedule, runs_root, progress, extra_versions, pulsar)
    phase = _phase_timer(outcome, progress)
    if compose_plan is not None:
        recorded = _run_on_compose(scenario, scheme, compose_plan, schedule, outcome, resolved, phase, progress,
                                   keep_lab=keep_lab)
    else:
        recorded = _run_on_lab(scenario, scheme, schedule, outcome, resolved, phase, progress,
                               keep_lab=keep_lab, reuse_lab=reuse_lab, pulsar=pulsar)
    if recorded and outcome.error is None:
        _check_and_judge(scenario, scheme, outcome, phase, progress)
    (outcome.run_dir / "outcome.json").write_text(json.dumps(
        {"met": outcome.met, "exit_code": outcome.exit_code, "error": outcome.error, "pulsar": outcome.pulsar,
         "interrupted": outcome.interrupted, "phases": outcome.phases}, indent=2))
    return outcome


def _open_run(scenario: Scenario, scheme: str, schedule: list[ScheduledFault], runs_root: Path, progress: Progress,
              extra_versions: dict[str, str], pulsar: str) -> tuple[RunOutcome, dict[str, Any]]:
    """The run directory with what the run is about to do: the scenario, the resolved schedule, versions."""
    tagged = pulsar != pulsar_versions.default_version() or scenario.pulsar is not None
    run_dir = new_run_dir(runs_root.resolve(), scenario, scheme, pulsar if tagged else None)
    outcome = RunOutcome(run_dir, scheme, None, pulsar=pulsar)
    (run_dir / "scenario.yaml").write_text(Path(scenario.source).read_text() if scenario.source else
                                           yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)))
    resolved = {"scenario": scenario.model_dump(mode="json", by_alias=True), "scheme": scheme, "seed": scenario.seed,
                "schedule": [{"id": f.id, "fault": f.spec.describe(), "start_s": f.start_s, "stop_s": f.stop_s}
                             for f in schedule],
                "pulsar": pulsar,
                "versions": {**versions(pulsar), **extra_versions},
                "machine": {"host": platform.node(), "cpus": os.cpu_count()}}
    (run_dir / "resolved.json").write_text(json.dumps(resolved, indent=2))
    progress(f"run {run_dir} ({scenario.name}, {scheme} scheme, Pulsar {pulsar}, seed {scenario.seed})")
    for f in schedule:
        progress(f"  scheduled {f.id}: {f.spec.describe()} at {f.start_s:g}s for {f.stop_s - f.start_s:g}s")
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


def _run_on_lab(scenario: Scenario, scheme: str, schedule: list[ScheduledFault], outcome: RunOutcome,
                resolved: dict[str, Any], phase, progress: Progress, *, keep_lab: bool, reuse_lab: bool,
                pulsar: str) -> bool:
    """A local lab or existing clusters. Returns whether workers ran (there is a history to check)."""
    run_dir = outcome.run_dir
    lab_name: str | None = None
    started_lab = False
    injector: Injector | None = None
    workers: runner.WorkerSet | None = None
    controller = history.HistoryWriter(run_dir / "history" / "controller.jsonl")
    result: dict[str, Any] | None = None
    try:
        with phase("lab up"):
            target, lab_name, started_lab = _bring_up(scenario, scheme, reuse_lab, progress, pulsar)
        with phase("configure"):
            settings = _settings(scenario)
            schemes.apply(target, scheme, settings, progress=lambda m: progress(f"  {m}"))
            _report_checks(schemes.verify(target, scheme, settings), scheme, progress)
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
                                        progress=lambda m: progress(f"  {m}"), namespace=settings.ns_path)
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
    return workers is not None


def _report_checks(checks: list[schemes.Check], scheme: str, progress: Progress) -> None:
    """Print every read-back check; ``RunError`` unless all passed."""
    for c in checks:
        progress(f"  {'ok  ' if c.ok else 'FAIL'} {f'[{c.region}] ' if c.region else ''}{c.name}: {c.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise RunError(f"the {scheme} scheme is not in effect: " +
                       "; ".join(f"{c.name}: {c.detail}" for c in failed))


# ---------------------------------------------------------------- compose labs


@dataclass
class _ComposePlan:
    spec: LabSpec
    project_dir: Path | None  # topology.compose_dir; None: rendered into the run directory
    compose_version: str
    hooks: ComposeHooks


def _compose_preflight(scenario: Scenario, scheme: str, reuse_lab: bool, hooks: ComposeHooks) -> _ComposePlan:
    """Everything a compose run can know before it creates anything: an engine first, then the lab and its faults."""
    from geo_recon.deploy import compose as compose_lab
    from geo_recon.faults.compose_injector import check_schedule

    version = compose_backend.check_engine(hooks.runner)
    topo = scenario.topology
    where = f"{scenario.source}: " if scenario.source else ""
    if reuse_lab:
        raise ConfigError("--reuse-lab is for local labs: a compose run starts a fresh compose lab "
                          "(--keep-lab leaves it up for `geo-recon compose ...`)")
    if scenario.workload.billing is not None:
        raise ConfigError(f"{where}the billing workload runs on backend local only (its reconciler is one of the "
                          "controller's worker roles)")
    if topo.compose_dir:
        directory = Path(topo.compose_dir)
        lab = compose_lab.load_project(directory)
        if lab.spec.scheme != scheme or list(lab.regions) != list(topo.regions):
            raise ConfigError(f"{where}topology.compose_dir {directory} holds the {lab.spec.scheme} lab of regions "
                              f"{', '.join(lab.regions)}; this run needs the {scheme} lab of regions "
                              f"{', '.join(topo.regions)} (render one: geo-recon compose render --regions "
                              f"{','.join(topo.regions)} --scheme {scheme} -o DIR)")
        spec = lab.spec
    else:
        spec = compose_lab.spec_for_scenario(scenario, scheme)
        lab = compose_lab.compose_lab(spec)
        compose_lab.build_context_for(Path.cwd())  # the worker image is built from a source checkout
        directory = None
    try:
        check_schedule(lab, expand(scenario.faults, scenario.workload.duration_s, scenario.seed))
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    return _ComposePlan(spec, directory, version, hooks)


def _compose_deployment(backend: compose_backend.ComposeBackend, scheme: str) -> deployment.Deployment:
    """The lab's regions as published on this machine (admin calls, replication statistics)."""
    return deployment.Deployment(
        tuple(deployment.RegionEndpoint(e.region, e.service_url, e.admin_url, e.cluster)
              for e in backend.lab.host_endpoints()),
        source=f"compose lab {backend.lab.project}", scheme=scheme)


def _run_on_compose(scenario: Scenario, scheme: str, plan: _ComposePlan, schedule: list[ScheduledFault],
                    outcome: RunOutcome, resolved: dict[str, Any], phase, progress: Progress, *,
                    keep_lab: bool) -> bool:
    """A compose lab, start to end. Returns whether the workers' histories were merged into the run directory."""
    from geo_recon.deploy import compose as compose_lab
    from geo_recon.faults.compose_injector import ComposeFaults

    run_dir, hooks = outcome.run_dir, plan.hooks

    def sub(message: str) -> None:
        progress(f"  {message}")

    backend: compose_backend.ComposeBackend | None = None
    lab_started = False
    faults: ComposeFaults | None = None
    load: _ComposeWorkers | None = None
    result: dict[str, Any] | None = None
    stop = threading.Event()
    fault_thread: threading.Thread | None = None
    controller = history.HistoryWriter(run_dir / "history" / "controller.jsonl")
    settings = _settings(scenario)
    recorded = False
    try:
        with phase("lab up"):
            directory = plan.project_dir
            if directory is None:
                directory = run_dir / "compose"
                compose_lab.write_project(plan.spec, directory, build_context=compose_lab.build_context_for(directory))
                sub(f"rendered the compose lab into {directory}")
            backend = compose_backend.ComposeBackend(directory, runner=hooks.runner, http=hooks.http, progress=sub,
                                                     sleep=hooks.sleep, clock=hooks.clock,
                                                     engine_version=plan.compose_version)
            busy = [s.service for s in backend.status() if s.state != "missing"]
            if busy:
                raise RunError(f"compose project {backend.lab.project} already has containers ({', '.join(busy)}); "
                               f"take it down first: docker compose -p {backend.lab.project} down --volumes")
            lab_started = True
            backend.up()
            sub("building the worker image")
            backend.build_workers()
        host = _compose_deployment(backend, scheme)
        with phase("configure"):
            _compose_configure(backend, scheme, scenario, progress)
        if scenario.workload.warmup_s > 0:
            with phase("warm-up"):
                _compose_warm_up(backend, host, scheme, scenario, settings, run_dir / "warm-up", hooks, progress)
        with phase("load and faults"):
            run_id = runner.new_run_id()
            topics = runner.prepare_topics(host, scheme, scenario.workload, run_id, settings)
            load = _ComposeWorkers(backend, run_dir / "compose-workers", run_id, topics, scenario.workload,
                                   scenario.seed, settings, hooks, progress)
            load.start()
            fault_errors: list[str] = []
            if schedule:
                faults = ComposeFaults(backend, on_event=controller.append, progress=sub, sleep=hooks.sleep,
                                       clock=hooks.clock)
                fault_thread = threading.Thread(
                    target=_drive_faults, args=(faults, schedule, load.start_at_ns, stop, fault_errors),
                    name="faults", daemon=True)
                fault_thread.start()
            sampler = _ReplicationSampler(host, settings, run_dir / "replication-stats.jsonl") \
                if scheme == "async" else None
            try:
                result = load.wait(stop=stop, on_progress=_LiveLine(progress, faults))
            finally:
                if sampler:
                    sampler.close()
            for region, fate in result["fates"].items():
                if fate != "finished":
                    progress(f"  region {region}: {fate}")
            if fault_thread:
                fault_thread.join(timeout=300)
            if fault_errors:
                raise RunError("; ".join(fault_errors))
    except KeyboardInterrupt:
        outcome.interrupted = True
        progress("interrupted: healing faults, stopping workers, keeping what was recorded")
    except GeoReconError as exc:
        outcome.error = str(exc)
        progress(f"error: {exc}")
    finally:
        stop.set()
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
        controller.close()
        if load is not None and load.started and result is not None:
            recorded = load.write_run(run_dir, result, scheme=scheme, extra={
                "scenario": scenario.name, "interrupted": outcome.interrupted, "schedule": resolved["schedule"],
                "error": outcome.error, "backend": "compose", "compose_project": backend.lab.project if backend else None})
            if not recorded and outcome.error is None:
                outcome.error = "the workers' histories could not be merged (see above)"
        if backend is not None and lab_started:
            _keep_compose_logs(backend, run_dir, progress)
            if keep_lab or scenario.topology.lab.keep:
                progress(f"compose lab {backend.lab.project} left running: geo-recon compose down {backend.dir}")
            else:
                with phase("lab down"):
                    try:
                        backend.down()
                    except GeoReconError as exc:
                        progress(f"  could not take the lab down: {exc}")
    return recorded


def _compose_configure(backend: compose_backend.ComposeBackend, scheme: str, scenario: Scenario,
                       progress: Progress) -> None:
    """`geo-recon configure` then `verify-config` inside the first region's network, with the lab's own
    clusters file (there, peers are reached by the names the replicators use)."""
    s = scenario.settings
    args = ["--clusters", "/config/clusters.yaml", "--scheme", scheme, "--tenant", s.tenant, "--namespace", s.namespace,
            "--dedup" if s.dedup else "--no-dedup", "--persistence", s.persistence]
    region = backend.lab.regions[0]
    for line in backend.run_tool(region, "configure", *args).splitlines():
        if line.strip():
            progress(f"  {line.strip()}")
    proc = backend.run_tool_result(region, "verify-config", *args, "--json")
    try:
        report = json.loads(proc.stdout)
        checks = [schemes.Check(**c) for c in report["checks"]]
    except (ValueError, KeyError, TypeError):
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or f"exit code {proc.returncode}"
        raise LabError(f"verify-config in region {region} of {backend.lab.project} gave no result "
                       f"(exit code {proc.returncode}): {tail}") from None
    _report_checks(checks, scheme, progress)


def _compose_warm_up(backend: compose_backend.ComposeBackend, host: deployment.Deployment, scheme: str,
                     scenario: Scenario, settings: schemes.SchemeSettings, mount: Path, hooks: ComposeHooks,
                     progress: Progress) -> None:
    """As ``_warm_up``: the workers run the same paths for a few seconds, unrecorded (their output is removed)."""
    workload = scenario.workload.model_copy(update={"duration_s": scenario.workload.warmup_s, "reader_drain": False,
                                                    "drain_timeout_s": 30, "warmup_s": 0})
    run_id = runner.new_run_id()
    topics = runner.prepare_topics(host, scheme, workload, run_id, settings)
    load = _ComposeWorkers(backend, mount, run_id, topics, workload, scenario.seed, settings, hooks, progress)
    load.start()
    try:
        result = load.wait()
    except BaseException:
        load.stop()
        raise
    acked = sum(s.get("acked", 0) for s in result["summaries"].values())
    progress(f"  warm-up: {acked} messages acknowledged in {workload.duration_s:g}s (not recorded)")
    shutil.rmtree(mount, ignore_errors=True)


class _ComposeWorkers:
    """One load on the compose lab's worker containers: a `geo-recon worker` per region, all started
    with the same env file (workload, start time, run id; the history mount ``mount``), watched with
    `docker compose ps` until every one exited. Each ends its own drain (no controller inside the lab)."""

    def __init__(self, backend: compose_backend.ComposeBackend, mount: Path, run_id: str, topics: list[str],
                 workload: Any, seed: int, settings: schemes.SchemeSettings, hooks: ComposeHooks,
                 progress: Progress) -> None:
        self.backend, self.mount, self.run_id, self.topics = backend, mount.resolve(), run_id, topics
        self.workload, self.seed, self.settings, self.hooks, self.progress = workload, seed, settings, hooks, progress
        self.regions = list(backend.lab.regions)
        self.start_at_ns = 0
        self.started = False
        self.stopped = False
        self.timed_out = False

    def start(self) -> None:
        from geo_recon.deploy.compose import HISTORY_VARIABLE, RUN_ID_VARIABLE

        self.mount.mkdir(parents=True, exist_ok=True)
        (self.mount / "workload.json").write_text(self.workload.model_dump_json(indent=2))
        # on a whole millisecond, so the start time passed as seconds with 3 decimals is the same instant
        self.start_at_ns = (time.time_ns() + int(self.hooks.start_delay_s * 1e9)) // 1_000_000 * 1_000_000
        env = {HISTORY_VARIABLE: str(self.mount), RUN_ID_VARIABLE: self.run_id,
               "GEO_RECON_WORKLOAD_FILE": "/history/workload.json",
               "GEO_RECON_START_AT": f"{self.start_at_ns // 1_000_000_000}.{self.start_at_ns // 1_000_000 % 1000:03d}",
               "GEO_RECON_SEED": str(self.seed),
               "GEO_RECON_TENANT": self.settings.tenant, "GEO_RECON_NAMESPACE": self.settings.namespace}
        for key, value in env.items():  # single-quoted in the env file: literal, but for \ and '
            if any(ch in value for ch in "'\\\n\r"):
                raise ConfigError(f"{key}={value!r} cannot be passed to docker compose: no quotes, backslashes "
                                  "or line breaks (move the runs directory?)")
        env_file = self.mount / "compose.env"
        env_file.write_text("".join(f"{key}='{value}'\n" for key, value in env.items()))
        self.started = True
        self.backend.start_workers(env_file=env_file, build=False)
        late = time.time_ns() - self.start_at_ns
        if late > 0:
            self.progress(f"  warning: the workers started {late / 1e9:.1f}s after their common start time")

    def _read_progress(self) -> dict[str, dict]:
        out = {}
        for region in self.regions:
            try:
                out[region] = json.loads((self.mount / "workers" / f"{region}.progress.json").read_text())
            except (FileNotFoundError, ValueError):
                out[region] = {"phase": "starting"}
        return out

    def _deadline_ns(self) -> int:
        w = self.workload
        return self.start_at_ns + int((w.duration_s + w.send_timeout_ms / 1000 + w.drain_timeout_s + 300) * 1e9)

    def wait(self, *, stop: threading.Event | None = None, on_progress: Callable[[dict], None] | None = None
             ) -> dict[str, Any]:
        """Until every worker container exited; SIGTERM them on ``stop`` (a fault did not take) or at the deadline."""
        workers = set(self.backend.lab.workers)
        while True:
            states = {s.service: s for s in self.backend.status() if s.service in workers}
            if on_progress:
                on_progress(self._read_progress())
            if not any(s.state in ("running", "created", "restarting", "paused") for s in states.values()):
                return self._result(states)
            if stop is not None and stop.is_set() and not self.stopped:
                self.stop()
                continue
            if time.time_ns() > self._deadline_ns() and not self.timed_out:
                self.progress("  the workers are past their deadline: stopping them")
                self.timed_out = True
                self.stop(timeout_s=10)
                continue
            self.hooks.sleep(self.hooks.poll_s)

    def stop(self, timeout_s: int = 30) -> None:
        self.stopped = True
        self.backend.stop_workers(timeout_s=timeout_s)

    def collect(self) -> dict[str, Any]:
        """What the (stopped) workers left behind."""
        try:
            states = {s.service: s for s in self.backend.status() if s.service in set(self.backend.lab.workers)}
        except GeoReconError as exc:
            self.progress(f"  could not read the workers' states: {exc}")
            states = {}
        return self._result(states)

    def _result(self, states: dict[str, compose_backend.ServiceState]) -> dict[str, Any]:
        from geo_recon.deploy.compose import worker_service

        summaries, fates, parts = {}, {}, {}
        for region in self.regions:
            service = worker_service(region)
            state = states.get(service)
            path = self.mount / "workers" / f"{region}.summary.json"
            summary = None
            try:
                summary = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                pass
            if summary is not None:
                summaries[region], parts[region] = summary, [summary]
            code = state.exit_code if state is not None else None
            if state is None or state.state == "missing":
                fate = "the worker container never ran"
            elif summary is not None and code == 0:
                fate = "finished"
            else:
                fate = (f"the worker exited with code {code}" + ("" if summary is not None else
                        " before writing its summary") +
                        f" (docker compose -p {self.backend.lab.project} logs {service})")
            if self.timed_out and fate == "finished":
                fate = "stopped at the deadline"
            fates[region] = fate
        receiving = {r for r, fate in fates.items() if fate == "finished"}
        drain = {"caught_up": runner.caught_up(self._read_progress(), receiving), "waited_s": None,
                 "coordinated": False}
        return {"summaries": summaries, "fates": fates, "drain": drain, "parts": parts}

    def write_run(self, run_dir: Path, result: dict[str, Any], *, scheme: str, extra: dict[str, Any]) -> bool:
        """The workers' histories into ``run_dir/history`` (as ``geo-recon merge``) and run.json (as a local run)."""
        from geo_recon.workload.merge import merge_worker_dirs

        merged = True
        try:
            merge_worker_dirs([self.mount], run_dir)
        except (GeoReconError, OSError) as exc:
            self.progress(f"  could not merge the workers' output in {self.mount}: {exc}")
            merged = False
        workers = runner.WorkerSet(run_dir, self.run_id, self.regions, self.topics, self.start_at_ns)
        runner.write_run_json(workers, result, scheme=scheme, seed=self.seed, workload=self.workload,
                              extra={**extra, "merged_from": [str(self.mount)]})
        return merged


def _keep_compose_logs(backend: compose_backend.ComposeBackend, run_dir: Path, progress: Progress) -> None:
    try:
        text = backend.logs()
    except GeoReconError as exc:
        progress(f"  could not keep the containers' logs: {exc}")
        return
    path = run_dir / "logs" / "compose.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _settings(scenario: Scenario) -> schemes.SchemeSettings:
    s = scenario.settings
    try:
        e, w, a = (int(x) for x in s.persistence.split("/"))
    except ValueError:
        raise ConfigError(f"{scenario.source}: field settings.persistence: expected E/W/A like 2/2/2, "
                          f"got {s.persistence!r}") from None
    return schemes.SchemeSettings(tenant=s.tenant, namespace=s.namespace, dedup=s.dedup,
                                  ensemble=e, write_quorum=w, ack_quorum=a, replication=s.replication)


def _bring_up(scenario: Scenario, scheme: str, reuse: bool, progress: Progress, pulsar: str
              ) -> tuple[deployment.Deployment, str | None, bool]:
    topo = scenario.topology
    if topo.backend == "external":
        return deployment.from_clusters_file(topo.clusters or ""), None, False
    opts = topo.lab
    existing = lab_state.load(opts.name)
    if existing is not None and existing.phase == "up":
        same = (existing.scheme == scheme and existing.regions == list(topo.regions)
                and existing.pulsar_version == pulsar)
        if reuse and same:
            progress(f"reusing lab {opts.name!r}")
            return deployment.from_lab(opts.name), opts.name, False
        raise RunError(f"lab {opts.name!r} is already up ({existing.scheme}, regions {existing.regions}, "
                       f"Pulsar {existing.pulsar_version}); "
                       f"stop it with `geo-recon lab down --name {opts.name}`"
                       + (" or pass --reuse-lab" if same else ""))
    isolation = opts.isolation
    if isolation == "auto":
        isolation = "netns" if netns.is_root() else "loopback"
    if scenario.faults and isolation != "netns" and any(f.kind in ("partition", "isolate", "latency", "bandwidth")
                                                        for f in scenario.faults):
        raise EnvironmentProblem(f"{scenario.source}: network faults need network namespaces; run as root")
    spec = LabSpec(regions=tuple(topo.regions), scheme=scheme, name=opts.name,  # type: ignore[arg-type]
                   base_port=opts.base_port, isolation=isolation, subnet=opts.subnet,  # type: ignore[arg-type]
                   pulsar=pulsar)
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


def _drive_faults(injector: Faults, schedule: list[ScheduledFault], start_at_ns: int, stop: threading.Event,
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
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the fault is not known to be in effect
                detail = str(exc) if isinstance(exc, GeoReconError) else f"{type(exc).__name__}: {exc}"
                errors.append(f"{fault.id} ({fault.spec.describe()}) {action}: {detail}")
                stop.set()  # a fault that did not take effect makes the run undecidable
                return
    finally:
        try:
            injector.heal_all()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"healing: {exc if isinstance(exc, GeoReconError) else f'{type(exc).__name__}: {exc}'}")


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

    def __init__(self, progress: Progress, injector: Faults | None, every_s: float = 3.0):
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


def _heal_all(injector: Faults | None, progress: Progress) -> None:
    if injector is not None:
        try:
            for item in injector.heal_all():
                progress(f"  healed {item}")
        except GeoReconError as exc:
            progress(f"  healing failed: {exc}")


def _cleanup(injector: Injector | None, workers: runner.WorkerSet | None, controller: history.HistoryWriter,
             progress: Progress) -> None:
    _heal_all(injector, progress)
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
