"""The container engine the compose labs run on: Compose v2 and toxiproxy-cli built here, dockerd started safely.

Debian ships Docker 20.10 (``docker.io``) and only Compose v1, which cannot read
the rendered projects (top-level ``name:``, ``ps --format json``). Compose v2 is
built once from the Go module proxy at a pinned version into the cache (about
7.5 minutes on 2 cores) and installed as the Docker CLI plugin; ``go install``
refuses the module's ``exclude`` directives, so the downloaded module source is
built with ``go build``.

``engine_up`` starts ``dockerd`` only when no engine answers, with flags that
leave the host alone: no iptables or ip6tables rules, no forwarding or
masquerading, no default bridge, and an address pool in 198.19.0.0/16 (the local
labs own 198.18.S.0/24). ``engine_down`` stops only a dockerd it started (its pid
file says so). Images come from ``geo_recon.deploy.images``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from geo_recon.deploy import procs, pulsar_dist
from geo_recon.errors import EnvironmentProblem, LabError

COMPOSE_VERSION = "v2.28.1"
COMPOSE_MODULE = "github.com/docker/compose/v2"
TOXIPROXY_CLI_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/cli"
# Where the Docker CLI looks for plugins of the user running it.
PLUGIN_DIR = Path.home() / ".docker" / "cli-plugins"
ADDRESS_POOL = "198.19.0.0/16"
POOL_SIZE = 24
DOCKERD_FLAGS = ("--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none")
ENGINE_WAIT_SECONDS = 60.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _go() -> str:
    return pulsar_dist.find_go("Docker Compose v2 and toxiproxy-cli")


def _go_env(gopath: Path) -> dict[str, str]:
    return {**os.environ, "GOPATH": str(gopath), "GOFLAGS": "-modcacherw -buildvcs=false", "CGO_ENABLED": "0"}


def _run_go(argv: list[str], cwd: Path | None, env: dict[str, str], what: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout


# ---------------------------------------------------------------- Compose v2


def compose_home() -> Path:
    return pulsar_dist.cache_root() / f"compose-{COMPOSE_VERSION}"


def compose_binary(progress: Progress = _quiet) -> Path:
    """Docker Compose v2 at the pinned version, built from the Go module proxy on first use."""
    home = compose_home()
    exe = home / "bin" / "docker-compose"
    if exe.exists():
        return exe
    gopath = home / "gopath"
    env = _go_env(gopath)
    progress(f"building Docker Compose {COMPOSE_VERSION} from the Go module proxy (about 8 minutes on 2 cores)")
    started = time.monotonic()
    info = json.loads(_run_go([_go(), "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"],
                              None, env, f"downloading {COMPOSE_MODULE}@{COMPOSE_VERSION}"))
    tmp = home / "bin" / "docker-compose.part"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    _run_go([_go(), "build", "-trimpath", "-o", str(tmp),
             "-ldflags", f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}", "./cmd"],
            Path(info["Dir"]), env, f"building Docker Compose {COMPOSE_VERSION}")
    os.replace(tmp, exe)
    shutil.rmtree(gopath, ignore_errors=True)
    progress(f"built Docker Compose {COMPOSE_VERSION} in {time.monotonic() - started:.0f}s: {exe}")
    return exe


def compose_plugin_version() -> str | None:
    """What ``docker compose version --short`` answers, or None when the plugin is missing."""
    try:
        proc = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def install_compose_plugin(progress: Progress = _quiet) -> str:
    """Make ``docker compose`` work: an installed v2 plugin is kept; else the pinned build is linked in."""
    version = compose_plugin_version()
    if version and not version.startswith("1."):
        return version
    exe = compose_binary(progress)
    PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
    link = PLUGIN_DIR / "docker-compose"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(exe)
    version = compose_plugin_version()
    if not version:
        raise EnvironmentProblem(f"linked {exe} as {link}, but `docker compose version` still fails")
    progress(f"docker compose {version} installed as {link}")
    return version


# ---------------------------------------------------------------- toxiproxy-cli


def toxiproxy_cli(progress: Progress = _quiet) -> Path:
    """toxiproxy-cli at the server's pinned version, beside the server in the cache (the image's health check)."""
    from geo_recon.deploy import toxiproxy

    home = pulsar_dist.cache_root() / f"toxiproxy-{toxiproxy.VERSION}"
    exe = home / "bin" / "cli"
    if exe.exists():
        return exe
    progress(f"building toxiproxy-cli {toxiproxy.VERSION} with go install")
    env = {**_go_env(home / "gopath"), "GOBIN": str(home / "bin")}
    _run_go([_go(), "install", f"{TOXIPROXY_CLI_MODULE}@{toxiproxy.VERSION}"], None, env,
            f"building toxiproxy-cli {toxiproxy.VERSION}")
    shutil.rmtree(home / "gopath", ignore_errors=True)
    if not exe.exists():
        raise EnvironmentProblem(f"go install left no {exe}")
    return exe


# ---------------------------------------------------------------- dockerd


@dataclass(frozen=True)
class EngineState:
    running: bool
    version: str
    started_here: bool  # by engine_up (pid file in the state directory)
    pid: int | None


def state_dir() -> Path:
    return pulsar_dist.cache_root() / "dockerd"


def _pid_file() -> Path:
    return state_dir() / "dockerd.pid"


def server_version() -> str | None:
    """The engine's version if one answers (``docker info``), else None."""
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version and "Error" not in version else None


def _our_pid() -> int | None:
    try:
        pid = int(_pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # Only ours: a dockerd whose pid file is our state directory (pids are reused).
    return pid if cmdline and cmdline[0].endswith(b"dockerd") and str(_pid_file()).encode() in cmdline else None


def engine_state() -> EngineState:
    pid = _our_pid()
    version = server_version()
    return EngineState(version is not None, version or "", pid is not None, pid)


def dockerd_argv() -> list[str]:
    root = state_dir()
    return ["dockerd", *DOCKERD_FLAGS,
            "--default-address-pool", f"base={ADDRESS_POOL},size={POOL_SIZE}",
            "--pidfile", str(_pid_file()), "--exec-root", str(root / "exec"),
            "--host", "unix:///var/run/docker.sock", "--log-level", "warn"]


def engine_up(progress: Progress = _quiet) -> EngineState:
    """Use a running engine as it is; otherwise start dockerd with the safe flags and wait until it answers."""
    state = engine_state()
    if state.running:
        progress(f"Docker engine {state.version} is running" + (" (started by geo-recon)" if state.started_here
                                                                else " (not started by geo-recon; used as it is)"))
        return state
    if not shutil.which("dockerd"):
        raise EnvironmentProblem("no dockerd here: install Debian's docker.io (scripts/setup-compose does)")
    if os.geteuid() != 0:
        raise EnvironmentProblem("starting dockerd needs root")
    state_dir().mkdir(parents=True, exist_ok=True)
    log = state_dir() / "dockerd.log"
    progress(f"starting dockerd (no iptables changes, no bridge, address pool {ADDRESS_POOL}); log: {log}")
    # Detached like a lab's JVMs (procs.start): dockerd outlives this process, and a Popen object dropped
    # while its child runs is a ResourceWarning (an error under the test suite's warnings filter).
    ref = procs.start(dockerd_argv(), cwd=state_dir(), log_path=log)
    deadline = time.monotonic() + ENGINE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if not procs.alive(ref):
            raise EnvironmentProblem(f"dockerd exited; log: {log}")
        version = server_version()
        if version:
            progress(f"Docker engine {version} ready (pid {ref.pid})")
            return EngineState(True, version, True, ref.pid)
        time.sleep(0.5)
    _stop(ref.pid)
    raise EnvironmentProblem(f"dockerd did not answer within {ENGINE_WAIT_SECONDS:.0f}s; log: {log}")


def _stop(pid: int, grace: float = 30.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def engine_down(progress: Progress = _quiet) -> bool:
    """Stop the dockerd ``engine_up`` started (with its containerd); an engine started otherwise is left alone.
    Returns whether one was stopped."""
    pid = _our_pid()
    if pid is None:
        if server_version():
            progress("the running Docker engine was not started by geo-recon: left alone")
        else:
            progress("no Docker engine started by geo-recon is running")
        return False
    running = _containers()
    if running:
        raise LabError(f"{len(running)} containers still run on the engine ({', '.join(running[:5])}); "
                       "take their labs down first (geo-recon compose down DIR)")
    progress(f"stopping dockerd (pid {pid})")
    _stop(pid)
    return True


def _containers() -> list[str]:
    try:
        proc = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.split() if proc.returncode == 0 else []
