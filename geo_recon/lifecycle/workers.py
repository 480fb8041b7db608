"""The worker drivers: one load (a worker per region, same topics, one common start) run to its end.

``LocalWorkers`` runs ``geo-recon worker`` processes on this machine (in the
lab's network namespaces when it has them; the controller's clock served to
them); ``ComposeWorkers`` runs the compose lab's worker containers and merges
what they wrote. Both have the ``WorkerDriver`` shape the run lifecycle uses:
start, wait (with a stop event and a progress callback), stop, collect what a
stopped load left, write run.json.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from geo_recon.deploy.base import Backend
from geo_recon.deploy.compose import HISTORY_VARIABLE, RUN_ID_VARIABLE, worker_service
from geo_recon.deploy.compose_backend import ComposeBackend, ServiceState
from geo_recon.deploy.compose_lab_backend import ComposeHooks, ComposeLabBackend
from geo_recon.deployment import Deployment
from geo_recon.scenario import Scenario
from geo_recon.errors import ConfigError, GeoReconError
from geo_recon.schemes import Scheme, SchemeSettings
from geo_recon.workload import runner
from geo_recon.workload.merge import merge_worker_dirs
from geo_recon.workload.spec import WorkloadSpec

Progress = Callable[[str], None]
Result = dict[str, Any]


class WorkerDriver(Protocol):
    start_at_ns: int
    started: bool
    workload: WorkloadSpec

    def start(self) -> None: ...

    def end_load(self) -> None: ...

    def wait(self, *, stop: threading.Event | None = None,
             on_progress: Callable[[dict], None] | None = None) -> Result: ...

    def stop(self) -> None: ...

    def collect(self) -> Result: ...

    def detail(self, region: str) -> str: ...

    def close(self) -> None: ...

    def write_run(self, run_dir: Path, result: Result, *, scheme: str, extra: dict[str, Any]) -> bool: ...


class HasWorkerPlacement(Protocol):
    def worker_placement(self, regions: list[str]) -> tuple[dict[str, str], str]: ...


def driver_for(backend: Backend, target: Deployment, *, out: Path, mount: Path, run_id: str, topics: list[str],
               workload: WorkloadSpec, seed: int, settings: SchemeSettings, progress: Progress) -> WorkerDriver:
    """Worker containers inside a compose lab (their output in ``mount``, merged into ``out`` later); worker
    processes on this machine, writing into ``out``, for every other backend."""
    if isinstance(backend, ComposeLabBackend) and backend.compose is not None:
        return ComposeWorkers(backend.compose, mount, run_id, topics, workload, seed, settings, backend.hooks, progress)
    placement: HasWorkerPlacement = backend  # type: ignore[assignment]
    namespaces, clock_host = placement.worker_placement(target.region_names)
    return LocalWorkers(target, out, run_id, topics, workload, seed, namespaces=namespaces, clock_host=clock_host,
                        lab_marker=target.lab)


class LocalWorkers:
    """``geo-recon worker`` processes (a producer and a consumer role per region, plus the billing
    reconciler where asked), each writing its own history file into the run directory."""

    def __init__(self, target: Deployment, run_dir: Path, run_id: str, topics: list[str], workload: WorkloadSpec,
                 seed: int, *, namespaces: dict[str, str], clock_host: str, lab_marker: str | None) -> None:
        self.target, self.run_dir, self.run_id, self.topics = target, run_dir, run_id, topics
        self.workload, self.seed = workload, seed
        self.namespaces, self.clock_host, self.lab_marker = namespaces, clock_host, lab_marker
        self.workers: runner.WorkerSet | None = None
        self.clock: runner.ClockServer | None = None
        self.start_at_ns = 0
        self.started = False

    def start(self) -> None:
        self.clock = runner.ClockServer(self.clock_host)
        self.workers = runner.start_workers(self.target, self.workload, self.run_dir, self.run_id, self.topics,
                                            seed=self.seed, namespaces=self.namespaces, clock_url=self.clock.url,
                                            lab_marker=self.lab_marker)
        self.start_at_ns, self.started = self.workers.start_at_ns, True

    def _set(self) -> runner.WorkerSet:
        assert self.workers is not None, "start() first"
        return self.workers

    def wait(self, *, stop: threading.Event | None = None,
             on_progress: Callable[[dict], None] | None = None) -> Result:
        return runner.supervise(self._set(), self.workload, on_progress=on_progress, stop=stop)

    def end_load(self) -> None:
        runner.end_production(self._set())

    def stop(self) -> None:
        runner.stop_workers(self._set())

    def collect(self) -> Result:
        return runner.supervise(self._set(), self.workload)  # what the stopped workers wrote

    def detail(self, region: str) -> str:
        return "; ".join(f"{key}: {_tail(log)}" for key, log in self._set().logs.items()
                         if key.startswith(f"{region}/"))

    def close(self) -> None:
        if self.clock is not None:
            self.clock.close()
            self.clock = None

    def write_run(self, run_dir: Path, result: Result, *, scheme: str, extra: dict[str, Any]) -> bool:
        runner.write_run_json(self._set(), result, scheme=scheme, seed=self.seed, workload=self.workload, extra=extra)
        return True


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


class ComposeWorkers:
    """One load on the compose lab's worker containers: a `geo-recon worker` per region, all started
    with the same env file (workload, start time, run id; the history mount ``mount``), watched with
    `docker compose ps` until every one exited. Each ends its own drain (no controller inside the lab)."""

    def __init__(self, backend: ComposeBackend, mount: Path, run_id: str, topics: list[str],
                 workload: Any, seed: int, settings: SchemeSettings, hooks: ComposeHooks,
                 progress: Progress) -> None:
        self.backend, self.mount, self.run_id, self.topics = backend, mount.resolve(), run_id, topics
        self.workload, self.seed, self.settings, self.hooks, self.progress = workload, seed, settings, hooks, progress
        self.regions = list(backend.lab.regions)
        self.start_at_ns = 0
        self.started = False
        self.stopped = False
        self.timed_out = False

    def start(self) -> None:
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

    def detail(self, region: str) -> str:
        return ""  # the fate names the container's logs already

    def end_load(self) -> None:
        self.backend.end_workers_load()

    def close(self) -> None:
        """Nothing: the workers keep their own time inside the lab."""

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

    def _result(self, states: dict[str, ServiceState]) -> dict[str, Any]:
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
        merged = True
        try:
            merge_worker_dirs([self.mount], run_dir)
        except (GeoReconError, OSError) as exc:
            self.progress(f"  could not merge the workers' output in {self.mount}: {exc}")
            merged = False
        workers = runner.WorkerSet(run_dir, self.run_id, self.regions, self.topics, self.start_at_ns)
        runner.write_run_json(workers, result, scheme=scheme, seed=self.seed, workload=self.workload,
                              extra={**extra, "compose_project": self.backend.lab.project,
                                     "merged_from": [str(self.mount)]})
        return merged


def warm_up(backend: Backend, target: Deployment, scheme: Scheme, scenario: Scenario, settings: SchemeSettings,
             run_dir: Path, progress: Progress) -> None:
    """The same paths as the run (workers, replication, consumers) for a few seconds, not recorded:
    freshly started brokers compile their hot paths in the first seconds, which would otherwise
    show up as seconds of lag in the first measurements."""
    workload = scenario.workload.model_copy(update={"duration_s": scenario.workload.warmup_s, "reader_drain": False,
                                                    "drain_timeout_s": 30, "warmup_s": 0})
    run_id = runner.new_run_id()
    topics = runner.prepare_topics(target, scheme.name, workload, run_id, settings)
    out = run_dir / "warm-up"
    load = driver_for(backend, target, out=out, mount=out, run_id=run_id, topics=topics, workload=workload,
                      seed=scenario.seed, settings=settings, progress=progress)
    load.start()
    try:
        result = load.wait()
    except BaseException:
        load.stop()
        raise
    finally:
        load.close()
    acked = sum(s.get("acked", 0) for s in result["summaries"].values())
    progress(f"  warm-up: {acked} messages acknowledged in {workload.duration_s:g}s (not recorded)")
    shutil.rmtree(out, ignore_errors=True)
