"""Drive a rendered compose lab with ``docker compose``: up, down, status and faults.

Every operation first checks that a Docker engine answers (``docker info``)
and that Compose v2 is installed; without them it raises ``EnvironmentProblem``
before running anything else. Commands go through an injectable runner and
Toxiproxy's REST API through an injectable HTTP function, so the exact
command lines and requests are unit-tested without Docker.

Faults: ``kill`` (SIGKILL, healed by ``start``), ``stop`` (SIGTERM, then
SIGKILL after a grace period; healed by ``start``), ``pause``/``unpause`` (the
cgroup freezer), and on the cross-site links, through the Toxiproxy of the
region that opens the connections: ``latency`` (added round-trip time),
``partition`` (a black hole: bytes are dropped, connections stay open) and
``heal`` (every proxy back to normal).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import requests

from geo_recon.deploy.compose import (
    COMPOSE_FILE,
    WORKER_PROFILE,
    ComposeLab,
    Proxy,
    hostname,
    load_project,
    stale_against_render,
    toxiproxy_service,
    worker_service,
)
from geo_recon.deploy.topology import ClusterEndpoints
from geo_recon.errors import ConfigError, EnvironmentProblem, LabError

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]
Http = Callable[[str, str, "dict[str, object] | None"], "tuple[int, str]"]
Progress = Callable[[str], None]

ENGINE_CHECK_TIMEOUT = 30.0
# `up` pulls missing images (the Pulsar image is several hundred MiB) before it starts anything.
PULL_ALLOWANCE = 900.0
POLL_SECONDS = 2.0
LATENCY_TOXIC = "geo_recon_latency"
PARTITION_TOXIC = "geo_recon_partition"
STREAMS = ("upstream", "downstream")


def _quiet(_: str) -> None:
    pass


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; a missing program is exit code 127, as in a shell."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"no answer within {timeout:.0f}s")


def http_request(method: str, url: str, body: dict[str, object] | None) -> tuple[int, str]:
    try:
        resp = requests.request(method, url, json=body, timeout=10)
    except requests.RequestException as exc:
        raise LabError(f"{method} {url} failed: {exc}") from None
    return resp.status_code, resp.text


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _tail(proc: "subprocess.CompletedProcess[str]") -> str:
    return " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or f"exit code {proc.returncode}"


def check_engine(runner: Runner = run_command) -> str:
    """Raise ``EnvironmentProblem`` unless a Docker engine answers and Compose v2 is there; return Compose's version."""
    info = runner(["docker", "info", "--format", "{{.ServerVersion}}"], ENGINE_CHECK_TIMEOUT)
    if info.returncode == 127:
        raise EnvironmentProblem(f"no docker client is installed here (docker info: {_first_line(info.stderr)}); "
                                 "use --backend local")
    if info.returncode != 0 or not info.stdout.strip():
        detail = _first_line(info.stderr) or _first_line(info.stdout) or f"exit code {info.returncode}"
        raise EnvironmentProblem(f"no Docker engine is running here (docker info: {detail}); use --backend local")
    version = runner(["docker", "compose", "version", "--short"], ENGINE_CHECK_TIMEOUT)
    if version.returncode != 0:
        detail = _first_line(version.stderr) or _first_line(version.stdout) or f"exit code {version.returncode}"
        raise EnvironmentProblem(f"Docker Compose v2 is not installed here (docker compose version: {detail}); "
                                 "install the compose plugin or use --backend local")
    return version.stdout.strip()


@dataclass(frozen=True)
class ServiceState:
    service: str
    state: str  # running | exited | paused | restarting | created | dead | missing
    health: str  # healthy | unhealthy | starting | "" (no health check)
    exit_code: int


def parse_ps(stdout: str) -> dict[str, ServiceState]:
    """``docker compose ps --format json``: a JSON array (Compose < 2.21) or one object a line."""
    text = stdout.strip()
    if not text:
        return {}
    try:
        rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()
                                                              if line.strip()]
    except json.JSONDecodeError as exc:
        raise LabError(f"could not read `docker compose ps` output ({exc}): {text[:200]}") from None
    states = {}
    for row in rows:
        states[row["Service"]] = ServiceState(row["Service"], str(row.get("State", "")).lower(),
                                              str(row.get("Health", "")).lower(), int(row.get("ExitCode") or 0))
    return states


class ComposeBackend:
    """One rendered compose lab (a directory with compose.yaml) on this machine's Docker engine."""

    def __init__(self, project_dir: Path, *, runner: Runner = run_command, http: Http = http_request,
                 progress: Progress = _quiet, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, engine_version: str | None = None) -> None:
        """``engine_version``: what ``check_engine`` returned just before, so it is not asked again."""
        self.dir = Path(project_dir)
        self.lab: ComposeLab = load_project(self.dir)
        self._run = runner
        self._http = http
        self._progress = progress
        self._sleep = sleep
        self._clock = clock
        self._engine: str | None = engine_version

    # ------------------------------------------------------------ plumbing

    def _ensure_engine(self) -> None:
        if self._engine is None:
            self._engine = check_engine(self._run)

    def compose_argv(self, *args: str, workers: bool = False, env_file: Path | None = None) -> list[str]:
        argv = ["docker", "compose", "-p", self.lab.project, "-f", str(self.dir / COMPOSE_FILE)]
        if env_file is not None:
            argv += ["--env-file", str(env_file)]
        if workers:
            argv += ["--profile", WORKER_PROFILE]
        return argv + list(args)

    def _compose_proc(self, *args: str, timeout: float = 120.0, workers: bool = False,
                      env_file: Path | None = None) -> "subprocess.CompletedProcess[str]":
        self._ensure_engine()
        return self._run(self.compose_argv(*args, workers=workers, env_file=env_file), timeout)

    def _compose(self, *args: str, timeout: float = 120.0, workers: bool = False, env_file: Path | None = None) -> str:
        proc = self._compose_proc(*args, timeout=timeout, workers=workers, env_file=env_file)
        if proc.returncode != 0:
            raise LabError(f"`docker compose {args[0]}` failed for {self.lab.project}: {_tail(proc)}")
        return proc.stdout

    def _service(self, target: str) -> str:
        """A component (``a/broker`` or ``a-broker``) or a Toxiproxy service -> its compose service."""
        if target in self.lab.long_running:
            return target
        return hostname(self.lab.component(target).name)

    # ------------------------------------------------------------ lifecycle

    def up(self, *, timeout: float = 300.0, keep_on_failure: bool = False) -> tuple[ClusterEndpoints, ...]:
        """Start a fresh lab and wait until every service is healthy and every one-shot succeeded.

        Returns the endpoints as published on the host. On failure the lab is
        taken down again unless ``keep_on_failure``.
        """
        self._ensure_engine()
        stale = stale_against_render(self.dir, self.lab)
        if stale:
            self._progress(f"warning: {len(stale)} files in {self.dir} differ from what this geo-recon renders "
                           f"(e.g. {stale[0]}); re-render to get the current lab")
        self._progress(f"starting compose lab {self.lab.project} ({self.lab.spec.scheme}, "
                       f"regions {', '.join(self.lab.regions)})")
        started = self._clock()
        try:
            # `up` pulls missing images, then starts services in dependency order (waiting on health
            # conditions), so it gets the pull allowance on top of the readiness timeout.
            self._compose("up", "--detach", "--force-recreate", "--renew-anon-volumes", "--remove-orphans",
                          timeout=timeout + PULL_ALLOWANCE)
            self._wait_ready(self._clock() + timeout, timeout)
        except BaseException:
            if keep_on_failure:
                self._progress(f"lab left running for inspection (--keep-on-failure): "
                               f"geo-recon compose down {self.dir}")
            else:
                self._progress("startup failed; taking the lab down")
                try:
                    self.down()
                except LabError as exc:
                    self._progress(f"  could not take it down: {exc}")
            raise
        self._progress(f"compose lab {self.lab.project} ready in {self._clock() - started:.1f}s")
        return self.lab.host_endpoints()

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        ready: set[str] = set()
        while True:
            states = parse_ps(self._compose("ps", "--all", "--format", "json"))
            failed, pending = [], []
            for service in self.lab.long_running:
                state = states.get(service)
                if state is None:
                    pending.append(f"{service} (not created)")
                elif state.state in ("exited", "dead"):
                    failed.append(f"{service} exited with code {state.exit_code}")
                elif state.health == "unhealthy":
                    failed.append(f"{service} is unhealthy")
                elif state.state == "running" and state.health == "healthy":
                    if service not in ready:
                        ready.add(service)
                        self._progress(f"  {service} healthy")
                else:
                    pending.append(f"{service} ({state.state}, {state.health or 'no health yet'})")
            for service in self.lab.one_shots:
                state = states.get(service)
                if state is not None and state.state == "exited":
                    if state.exit_code != 0:
                        failed.append(f"{service} failed with exit code {state.exit_code}")
                    elif service not in ready:
                        ready.add(service)
                        self._progress(f"  {service} done")
                else:
                    pending.append(f"{service} ({state.state if state else 'not created'})")
            if failed:
                raise LabError(f"compose lab {self.lab.project} did not come up: {'; '.join(failed)}; "
                               f"logs: {self._logs_hint(failed)}")
            if not pending:
                return
            if self._clock() > deadline:
                raise LabError(f"compose lab {self.lab.project} not ready within {timeout:.0f}s; still waiting for "
                               f"{', '.join(pending)}; logs: {self._logs_hint(pending)}")
            self._sleep(POLL_SECONDS)

    def _logs_hint(self, items: list[str]) -> str:
        services = " ".join(item.split(" ", 1)[0] for item in items)
        return f"docker compose -p {self.lab.project} logs {services}"

    def down(self) -> None:
        """Remove every container (workers too), network and anonymous volume of the lab."""
        self._compose("down", "--volumes", "--remove-orphans", "--timeout", "10", workers=True)

    def status(self) -> list[ServiceState]:
        """Every service of the lab, workers included, as Docker reports it (``missing`` if not created)."""
        states = parse_ps(self._compose("ps", "--all", "--format", "json", workers=True))
        services = (*self.lab.long_running, *self.lab.one_shots, *self.lab.workers)
        return [states.get(s, ServiceState(s, "missing", "", 0)) for s in services]

    def build_workers(self) -> None:
        """Build the worker image (``start_workers(build=False)`` then starts at once)."""
        self._compose("build", *self.lab.workers, timeout=PULL_ALLOWANCE, workers=True)

    def start_workers(self, *, env_file: Path | None = None, build: bool = True) -> None:
        """Start a geo-recon worker in every region (building its image first unless ``build`` is false);
        the lab must be up. ``env_file`` sets the variables the compose file reads (``--env-file``):
        where the history goes, the run id, and the workers' workload, start time and seed."""
        self._compose("up", "--detach", "--build" if build else "--no-build", "--no-deps", *self.lab.workers,
                      timeout=PULL_ALLOWANCE if build else 300.0, workers=True, env_file=env_file)

    def stop_workers(self, *, timeout_s: int = 30) -> None:
        """SIGTERM every worker (it stops sending, drains and writes its summary), SIGKILL after ``timeout_s``."""
        self._compose("stop", "--timeout", str(timeout_s), *self.lab.workers, timeout=timeout_s + 60.0, workers=True)

    def end_workers_load(self) -> None:
        """SIGTERM every worker and nothing more: it stops sending, drains and exits by itself."""
        self._compose("kill", "--signal", "SIGTERM", *self.lab.workers, workers=True)

    def run_tool(self, region: str, *args: str, timeout: float = 600.0) -> str:
        """``geo-recon ARGS`` in a one-off container of a region's worker, on that region's network; its output.

        How to configure or verify a scheme on a compose lab: there every name in
        /config/clusters.yaml resolves as the lab's own components see it (peers
        through the region's Toxiproxy), so registered peer URLs work for replicators.
        """
        proc = self.run_tool_result(region, *args, timeout=timeout)
        if proc.returncode != 0:
            raise LabError(f"`docker compose run` failed for {self.lab.project}: {_tail(proc)}")
        return proc.stdout

    def run_tool_result(self, region: str, *args: str,
                        timeout: float = 600.0) -> "subprocess.CompletedProcess[str]":
        """As ``run_tool``, returning the exit code and output instead of raising on a non-zero exit."""
        if region not in self.lab.regions:
            raise ConfigError(f"unknown region {region!r}: expected one of {', '.join(self.lab.regions)}")
        return self._compose_proc("run", "--rm", "--no-deps", "-T", worker_service(region), "geo-recon", *args,
                                  timeout=timeout, workers=True)

    def logs(self) -> str:
        """Every container's log (workers too), timestamped: what is lost once the lab is down."""
        return self._compose("logs", "--no-color", "--timestamps", timeout=300.0, workers=True)

    # ------------------------------------------------------------ process faults

    def kill(self, target: str) -> None:
        """SIGKILL a component's container; heal with ``start``."""
        self._compose("kill", "--signal", "SIGKILL", self._service(target))

    def start(self, target: str) -> None:
        self._compose("start", self._service(target))

    def stop(self, target: str, *, timeout_s: int = 30) -> None:
        """SIGTERM a component's container (a graceful stop), SIGKILL after ``timeout_s``; heal with ``start``."""
        self._compose("stop", "--timeout", str(timeout_s), self._service(target), timeout=timeout_s + 60.0)

    def pause(self, target: str) -> None:
        """Freeze every process of a component (as SIGSTOP would); heal with ``unpause``."""
        self._compose("pause", self._service(target))

    def unpause(self, target: str) -> None:
        self._compose("unpause", self._service(target))

    # ------------------------------------------------------------ network faults

    def _links(self, src: str, dst: str, symmetric: bool) -> list[Proxy]:
        if src not in self.lab.regions:
            raise ConfigError(f"unknown region {src!r}: expected one of {', '.join(self.lab.regions)}")
        if dst not in self.lab.sites or dst == src:
            others = [s for s in self.lab.sites if s != src]
            raise ConfigError(f"unknown destination {dst!r} for region {src!r}: expected one of {', '.join(others)}")
        proxies = [p for p in self.lab.proxies(src) if p.dst == dst]
        if symmetric and dst in self.lab.regions:
            proxies += [p for p in self.lab.proxies(dst) if p.dst == src]
        return proxies

    def _api(self, proxy: Proxy) -> str:
        return f"http://127.0.0.1:{self.lab.toxiproxy_api_port(proxy.src)}"

    def _set_toxic(self, proxy: Proxy, name: str, kind: str, stream: str, attributes: dict[str, int]) -> None:
        base = f"{self._api(proxy)}/proxies/{proxy.name}/toxics"
        body: dict[str, object] = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0,
                                   "attributes": attributes}
        status, text = self._http("POST", base, body)
        if status == 409:  # already there: update it
            status, text = self._http("POST", f"{base}/{name}", {"toxicity": 1.0, "attributes": attributes})
        if status >= 300:
            raise LabError(f"{toxiproxy_service(proxy.src)}: could not set {kind} on {proxy.name}: "
                           f"HTTP {status} {_first_line(text)[:200]}")

    def _verify_toxics(self, proxy: Proxy, expected: dict[str, dict[str, int]]) -> None:
        """Read a proxy's toxics back: every expected one there with its attributes."""
        status, text = self._http("GET", f"{self._api(proxy)}/proxies/{proxy.name}/toxics", None)
        if status != 200:
            raise LabError(f"{toxiproxy_service(proxy.src)}: could not read the toxics of {proxy.name}: HTTP {status}")
        actual = {t.get("name"): t.get("attributes", {}) for t in json.loads(text)}
        for name, attributes in expected.items():
            got = actual.get(name)
            if got is None or any(got.get(k) != v for k, v in attributes.items()):
                raise LabError(f"{toxiproxy_service(proxy.src)}: toxic {name} on {proxy.name} reads back as {got}, "
                               f"expected {attributes}")

    def _remove_toxic(self, proxy: Proxy, name: str) -> None:
        status, text = self._http("DELETE", f"{self._api(proxy)}/proxies/{proxy.name}/toxics/{name}", None)
        if status >= 300 and status != 404:
            raise LabError(f"{toxiproxy_service(proxy.src)}: could not remove {name} from {proxy.name}: "
                           f"HTTP {status} {_first_line(text)[:200]}")

    def latency(self, src: str, dst: str, rtt_ms: int, *, jitter_ms: int = 0, symmetric: bool = True) -> list[str]:
        """Add ``rtt_ms`` (± ``jitter_ms``) to every round trip between two sites; half on each stream.

        Applies to the connections ``src`` opens to ``dst`` and, if
        ``symmetric``, those ``dst`` opens to ``src``. Returns the proxies changed.
        """
        if rtt_ms < 0 or jitter_ms < 0:
            raise ConfigError(f"latency must be 0 or more milliseconds, got {rtt_ms} ± {jitter_ms}")
        self._ensure_engine()
        halves = {"upstream": (rtt_ms // 2, jitter_ms // 2),
                  "downstream": (rtt_ms - rtt_ms // 2, jitter_ms - jitter_ms // 2)}
        proxies = self._links(src, dst, symmetric)
        for proxy in proxies:
            expected = {}
            for stream, (latency, jitter) in halves.items():
                name = f"{LATENCY_TOXIC}_{stream}"
                attributes = {"latency": latency, "jitter": jitter}
                self._set_toxic(proxy, name, "latency", stream, attributes)
                expected[name] = attributes
            self._verify_toxics(proxy, expected)
        return [p.name for p in proxies]

    def clear_latency(self, src: str, dst: str, *, symmetric: bool = True) -> list[str]:
        self._ensure_engine()
        proxies = self._links(src, dst, symmetric)
        for proxy in proxies:
            for stream in STREAMS:
                self._remove_toxic(proxy, f"{LATENCY_TOXIC}_{stream}")
        return [p.name for p in proxies]

    def partition(self, src: str, dst: str, *, symmetric: bool = True) -> list[str]:
        """Drop every byte between two sites (open connections hang, new ones connect and then hang)."""
        self._ensure_engine()
        proxies = self._links(src, dst, symmetric)
        for proxy in proxies:
            expected = {}
            for stream in STREAMS:
                name = f"{PARTITION_TOXIC}_{stream}"
                self._set_toxic(proxy, name, "timeout", stream, {"timeout": 0})
                expected[name] = {"timeout": 0}
            self._verify_toxics(proxy, expected)
        return [p.name for p in proxies]

    def heal_partition(self, src: str, dst: str, *, symmetric: bool = True) -> list[str]:
        self._ensure_engine()
        proxies = self._links(src, dst, symmetric)
        for proxy in proxies:
            for stream in STREAMS:
                self._remove_toxic(proxy, f"{PARTITION_TOXIC}_{stream}")
        return [p.name for p in proxies]

    def heal(self) -> None:
        """Every Toxiproxy back to normal: all proxies enabled, all toxics removed."""
        self._ensure_engine()
        for region in self.lab.regions:
            url = f"http://127.0.0.1:{self.lab.toxiproxy_api_port(region)}/reset"
            status, text = self._http("POST", url, None)
            if status >= 300:
                raise LabError(f"{toxiproxy_service(region)}: reset failed: HTTP {status} {_first_line(text)[:200]}")
