"""The controller's side of load: start a worker per region, watch them, end the drain.

Workers run as separate processes (inside their region's namespace on a local
lab), so a worker crash cannot take the controller or another region down, and
a killed worker leaves a valid history behind. The controller decides when the
drain is over: when, for every producer, every live region has received at
least as many distinct messages as that producer had acknowledged.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from geo_recon import history
from geo_recon.admin import AdminError
from geo_recon.deploy import procs
from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError, GeoReconError
from geo_recon.schemes import SchemeSettings
from geo_recon.schemes import get as scheme_named
from geo_recon.workload import native
from geo_recon.workload.spec import WorkloadSpec
from geo_recon.workload.worker import WorkerConfig
from geo_recon.workload.worker import stem as worker_stem


Progress = Callable[[dict[str, dict]], None]


def new_run_id() -> str:
    return time.strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def prepare_topics(deployment: Deployment, scheme: str, workload: WorkloadSpec, run_id: str,
                   settings: SchemeSettings = SchemeSettings()) -> list[str]:
    """Fresh topics for this run; partitioned ones are created in every cluster that needs them."""
    if workload.billing is not None:  # one topic per billing system
        return [f"persistent://{settings.ns_path}/{run_id}-billing-{system}" for system in workload.billing.systems]
    topics = [f"persistent://{settings.ns_path}/{run_id}-t{i}" for i in range(workload.topics)]
    scheme_obj = scheme_named(scheme)
    if settings.replication == "topic":
        if workload.partitions:
            raise ConfigError("topic-level replication (settings.replication: topic) needs non-partitioned topics "
                              "(workload.partitions: 0)")
        scheme_obj.replicate_topics(deployment, topics, settings)
    elif workload.partitions:
        create_partitioned(scheme_obj.topic_regions(deployment), topics, workload.partitions)
    return topics


def create_partitioned(regions: Sequence[RegionEndpoint], topics: list[str], partitions: int) -> None:
    """Each partitioned topic in each of these regions' clusters (already there: left as it is)."""
    for ep in regions:
        admin = ep.admin()
        try:
            for topic in topics:
                path = topic.replace("persistent://", "/admin/v2/persistent/") + "/partitions"
                admin.put(path, partitions, ok_statuses=(409,))
        finally:
            admin.close()


class ClockServer:
    """Answers each UDP datagram with this machine's time in ns: the reference for the
    workers' clock offsets. UDP, not HTTP: both legs of a probe are then one datagram,
    so the round trip is symmetric and the midpoint estimate is not biased by
    connection setup."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise GeoReconError(f"cannot serve the clock on {host}:{port}: {exc.strerror}") from None
        self.sock.settimeout(0.5)
        self.url = f"udp://{host}:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="clock", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                _, peer = self.sock.recvfrom(64)
            except OSError:
                continue
            self.sock.sendto(str(time.time_ns()).encode(), peer)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@dataclass
class WorkerSet:
    run_dir: Path
    run_id: str
    regions: list[str]
    topics: list[str]
    start_at_ns: int
    refs: dict[str, procs.ProcessRef] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)


def start_workers(deployment: Deployment, workload: WorkloadSpec, run_dir: Path, run_id: str, topics: list[str], *,
                  seed: int = 0, namespaces: dict[str, str] | None = None, clock_url: str | None = None,
                  start_delay_s: float = 4.0, lab_marker: str | None = None) -> WorkerSet:
    """One worker process per region, all starting to produce at the same instant."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "workers").mkdir(exist_ok=True)
    (run_dir / "workers" / "drained").unlink(missing_ok=True)
    start_at = time.time_ns() + int(start_delay_s * 1e9)
    workers = WorkerSet(run_dir, run_id, deployment.region_names, topics, start_at)
    for ep in deployment.regions:
        cfg = WorkerConfig(
            run_id=run_id, region=ep.region, regions=deployment.region_names, service_url=ep.service_url,
            service_urls={peer.region: peer.service_url for peer in deployment.regions},
            admin_url=ep.admin_url, tls_ca=ep.tls_ca, topics=topics, workload=workload, seed=seed,
            start_at_ns=start_at, run_dir=str(run_dir), clock_ref=clock_url, coordinated_drain=True,
        )
        env = {"GEO_RECON_TOKEN": ep.token} if ep.token else {}
        if lab_marker:
            env["GEO_RECON_LAB"] = lab_marker  # `lab down` finds a stray worker by it
        # (role, part): the region's producer processes, its consumer process, maybe the reconciler
        roles = [("produce", k) for k in range(workload.processes)] + [("consume", 0)]
        if workload.billing is not None and workload.billing.reconcile_in == ep.region:
            roles.append(("reconcile", 0))
        for role, part in roles:
            name = worker_stem(ep.region, role, part)
            config_path = run_dir / "workers" / f"{name}.config.json"
            config_path.write_text(cfg.model_copy(update={"part": part, "parts": workload.processes})
                                   .model_dump_json(indent=2))
            log = run_dir / "logs" / f"worker-{name.replace('.', '-')}.log"
            if role == "produce" and workload.driver == "go":
                argv = native.produce_command(config_path)
            else:
                argv = [sys.executable, "-m", "geo_recon", "worker", "--config", str(config_path), "--role", role]
            key = f"{ep.region}/{role}{part or ''}"
            workers.refs[key] = procs.start(argv, cwd=run_dir, log_path=log,
                                            netns=(namespaces or {}).get(ep.region), env=env)
            workers.logs[key] = log
    return workers


def _merge(parts: list[dict]) -> dict:
    """One region's view from its roles' files: counts add up, per-producer maps merge."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in (
                    "time_ns", "clock_offset_ns", "clock_rtt_ns", "lag_ms_p50", "lag_ms_max"):
                merged[key] = merged.get(key, 0) + value
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            elif isinstance(value, list):
                merged[key] = sorted(set(merged.get(key, [])) | set(value)) if key == "processes" \
                    else merged.get(key, []) + value
            elif value is not None or key not in merged:
                merged.setdefault(key, value)
    return merged


def read_progress(run_dir: Path, regions: list[str]) -> dict[str, dict]:
    out = {}
    for region in regions:
        parts = {}
        producers = sorted((run_dir / "workers").glob(f"{region}.produce*.progress.json")) or \
            [run_dir / "workers" / f"{region}.produce.progress.json"]
        for path in [*producers, run_dir / "workers" / f"{region}.consume.progress.json"]:
            try:
                parts[path.name] = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                parts[path.name] = {"phase": "starting"}
        merged = _merge(list(parts.values()))
        producing = [p.get("phase") for name, p in parts.items() if ".produce" in name]
        consume = parts[f"{region}.consume.progress.json"]
        early = [phase for phase in producing if phase in ("starting", "producing")]
        merged["phase"] = early[0] if early else consume.get("phase")
        for key in ("lag_ms_p50", "lag_ms_max"):
            merged[key] = consume.get(key)
        out[region] = merged
    return out


def caught_up(progress: dict[str, dict], live_regions: set[str]) -> bool:
    """Every live region has seen, per producer, at least as many distinct messages as were acked."""
    acked: dict[str, int] = {}
    for p in progress.values():
        for producer, count in (p.get("acked_by_producer") or {}).items():
            acked[producer] = acked.get(producer, 0) + count
    for region in live_regions:
        seen = progress.get(region, {}).get("distinct_by_producer") or {}
        if any(seen.get(producer, 0) < count for producer, count in acked.items()):
            return False
    return True


def supervise(workers: WorkerSet, workload: WorkloadSpec, *, on_progress: Progress | None = None,
              stop: threading.Event | None = None, tick_s: float = 0.5) -> dict[str, Any]:
    """Wait for the workers to produce, drain and finish; return their summaries and fates."""
    run_dir, regions = workers.run_dir, workers.regions
    drained_flag = run_dir / "workers" / "drained"
    produce_end = workers.start_at_ns / 1e9 + workload.duration_s + workload.send_timeout_ms / 1000
    hard_deadline = produce_end + workload.drain_timeout_s + 120
    drain_started: float | None = None
    signalled = False
    while True:
        live_refs = {key for key, ref in workers.refs.items() if procs.alive(ref)}
        live = {key.split("/")[0] for key in live_refs}
        receiving = {key.split("/")[0] for key in live_refs if key.endswith("/consume")}
        progress = read_progress(run_dir, regions)
        if on_progress:
            on_progress(progress)
        if not live_refs:
            break
        if stop is not None and stop.is_set() and not signalled:
            for key in live_refs:
                procs.signal_group(workers.refs[key], signal.SIGTERM)  # stop producing, then drain
            signalled = True
        phases = {progress[r].get("phase") for r in live}
        if phases <= {"draining", "reading", "done"}:
            drain_started = drain_started or time.monotonic()
            waited = time.monotonic() - drain_started
            if not drained_flag.exists() and (caught_up(progress, receiving) or waited >= workload.drain_timeout_s):
                drained_flag.write_text(json.dumps({"caught_up": caught_up(progress, receiving), "waited_s": waited}))
        if time.time() > hard_deadline:
            for key in live_refs:
                procs.kill(workers.refs[key])
            break
        time.sleep(tick_s)
    summaries, fates, by_role = {}, {}, {}
    for region in regions:
        parts, missing = [], []
        roles = [key.split("/")[1] for key in workers.refs if key.startswith(f"{region}/")]
        for role in roles:  # "produce", "produce1", ..., "consume", "reconcile"
            path = run_dir / "workers" / f"{region}.{role}.summary.json"
            if path.exists():
                parts.append(json.loads(path.read_text()))
            else:
                missing.append(f"{role} worker died before finishing (log: {workers.logs[f'{region}/{role}']})")
        if parts:
            summaries[region] = _merge(parts)
            by_role[region] = parts
        fates[region] = "; ".join(missing) if missing else "finished"
    drained = json.loads(drained_flag.read_text()) if drained_flag.exists() else {"caught_up": False, "waited_s": None}
    return {"summaries": summaries, "fates": fates, "drain": drained, "parts": by_role}


def end_production(workers: WorkerSet) -> None:
    """End the load now: SIGTERM to the producer processes (they stop sending and complete what is in
    flight); the consumers then drain as after the schedule's end."""
    for key, ref in workers.refs.items():
        if key.split("/")[1].startswith("produce") and procs.alive(ref):
            procs.signal_group(ref, signal.SIGTERM)


def stop_workers(workers: WorkerSet, timeout: float = 30) -> None:
    """Stop producing now, end the drain, and let each worker write what it recorded."""
    drained = workers.run_dir / "workers" / "drained"
    if not drained.exists():
        drained.write_text(json.dumps({"caught_up": False, "waited_s": None, "interrupted": True}))
    for ref in workers.refs.values():
        if procs.alive(ref):
            procs.signal_group(ref, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for ref in workers.refs.values():
        procs.wait_dead(ref, max(0.0, deadline - time.monotonic()))
        if procs.alive(ref):
            procs.kill(ref)


def write_run_json(workers: WorkerSet, result: dict[str, Any], *, scheme: str | None, seed: int,
                   workload: WorkloadSpec, extra: dict[str, Any] | None = None) -> None:
    offsets = {}
    for parts in result.get("parts", {}).values():
        for part in parts:  # each role measured its own clock offset
            for process in part.get("processes", []):
                offsets[process] = part.get("clock_offset_ns", 0)
    history.write_run_json(
        workers.run_dir, workers.regions, scheme=scheme, run_id=workers.run_id, seed=seed, topics=workers.topics,
        workload=workload.model_dump(), clock_offsets_ns=offsets, start_at_ns=workers.start_at_ns,
        allowed=[] if workload.ordered else ["reordered"],
        workers={r: {"fate": result["fates"][r], **{k: v for k, v in result["summaries"].get(r, {}).items()
                                                     if k in ("sent", "acked", "failed", "unknown", "stuck", "received",
                                                              "achieved_rates", "errors", "clock_rtt_ns")}}
                 for r in workers.regions},
        drain=result["drain"], history_format=workload.history_format,
        **{**failover_fields(workload), **(extra or {})},
    )


def failover_fields(workload: WorkloadSpec) -> dict[str, Any]:
    """run.json's record of how clients moved between clusters (the checker reads it)."""
    spec = workload.failover
    fields = {"mode": spec.mode}
    if spec.mode == "auto":
        fields |= {"check_interval_ms": spec.check_interval_ms, "failover_threshold": spec.failover_threshold,
                   "switch_back_threshold": spec.switch_back_threshold}
    elif spec.mode == "controlled":
        fields["switch_at_s"] = spec.switch_at_s
    return {"failover": fields, "replicated_subscription": workload.replicated_subscription}


def run_load(deployment: Deployment, scheme: str, workload: WorkloadSpec, run_dir: Path, *, seed: int = 0,
             namespaces: dict[str, str] | None = None, clock_host: str = "127.0.0.1",
             on_progress: Progress | None = None, lab_marker: str | None = None) -> dict[str, Any]:
    """Load without faults: topics, workers in every region, drain, run.json. Returns the result."""
    run_id = new_run_id()
    try:
        topics = prepare_topics(deployment, scheme, workload, run_id)
    except AdminError as exc:
        raise GeoReconError(f"could not create the run's topics: {exc}") from None
    clock = ClockServer(clock_host)
    stop = threading.Event()
    workers = start_workers(deployment, workload, run_dir, run_id, topics, seed=seed, namespaces=namespaces,
                            clock_url=clock.url, lab_marker=lab_marker)
    try:
        result = supervise(workers, workload, on_progress=on_progress, stop=stop)
    except KeyboardInterrupt:
        stop_workers(workers)
        result = supervise(workers, workload)  # collects what the stopped workers wrote
        write_run_json(workers, result, scheme=scheme, seed=seed, workload=workload, extra={"interrupted": True})
        raise
    finally:
        clock.close()
    write_run_json(workers, result, scheme=scheme, seed=seed, workload=workload)
    return result
