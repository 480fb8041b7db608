"""Start, inspect, signal and stop lab processes.

Every process runs in its own session (so its whole group can be signalled),
inside its site's network namespace when there is one. A pid alone is not an
identity (pids are reused), so each is recorded with its start time in clock
ticks from /proc; a process only counts as ours when both match. As a last
resort ``find_by_marker`` finds JVMs by the ``-Dgeo.recon.lab=<name>`` argument
every lab JVM carries, which works even when the state file is lost.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from geo_recon.errors import FaultError


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    start_ticks: int


def start(argv: list[str], *, cwd: Path, log_path: Path, netns: str | None = None,
          env: dict[str, str] | None = None) -> ProcessRef:
    """Start ``argv`` detached from us (new session), output appended to ``log_path``.

    posix_spawn rather than Popen: the process must outlive this CLI, and a
    Popen object would complain when dropped while its child still runs.
    `ip netns exec` and `env -C` both exec in place, so the pid is the JVM's.
    """
    argv = ["env", "-C", str(cwd), *argv]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    _keep_inherited_fds_to_ourselves()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawnp(
            argv[0], argv, {**os.environ, **(env or {})},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
    for _ in range(100):
        ticks = start_ticks(pid)
        if ticks is not None:
            return ProcessRef(pid, ticks)
        time.sleep(0.01)
    return ProcessRef(pid, -1)


def _keep_inherited_fds_to_ourselves() -> None:
    """Mark every inheritable descriptor above stderr close-on-exec. Python opens its own files that way, but
    a descriptor our parent handed us (``flock LOCK geo-recon lab up`` passes the lock as fd 3) would otherwise
    live on in every JVM and worker, and a lock "released" by the CLI would stay held until the lab is down."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            if os.get_inheritable(fd):
                os.set_inheritable(fd, False)
        except OSError:  # closed meanwhile (the directory listing's own descriptor, another thread's file)
            pass


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses.
    return raw[raw.rindex(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 overall


def state(ref: ProcessRef) -> str:
    """'running', 'paused' (SIGSTOP), or 'dead' (gone, zombie, or a reused pid)."""
    fields = _stat_fields(ref.pid)
    if not fields or int(fields[19]) != ref.start_ticks:
        return "dead"
    code = fields[0]
    if code in ("Z", "X", "x"):
        _reap(ref.pid)
        return "dead"
    return "paused" if code in ("T", "t") else "running"


def alive(ref: ProcessRef) -> bool:
    return state(ref) != "dead"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_group(ref: ProcessRef, sig: int) -> bool:
    """Signal the process group led by ``ref`` if it is still ours; True if sent."""
    if not alive(ref):
        return False
    try:
        os.killpg(ref.pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(ref.pid, sig)
    return True


def stop(ref: ProcessRef, timeout: float = 10.0) -> None:
    """Graceful stop, then SIGKILL: resume first so a paused JVM can handle SIGTERM."""
    if not alive(ref):
        return
    signal_group(ref, signal.SIGCONT)
    signal_group(ref, signal.SIGTERM)
    if wait_dead(ref, timeout):
        return
    kill(ref)


def kill(ref: ProcessRef, timeout: float = 10.0) -> None:
    signal_group(ref, signal.SIGKILL)
    wait_dead(ref, timeout)


def wait_dead(ref: ProcessRef, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(ref):
            return True
        time.sleep(0.05)
    return not alive(ref)


def find_by_marker(marker: str) -> list[ProcessRef]:
    """Every live process of lab ``marker``: JVMs carry ``-Dgeo.recon.lab=<marker>`` on their
    command line, helpers (workers, toxiproxy) ``GEO_RECON_LAB=<marker>`` in their environment."""
    wanted_arg = f"-Dgeo.recon.lab={marker}".encode()
    wanted_env = f"GEO_RECON_LAB={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            hit = wanted_arg in args or wanted_env in (entry / "environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if hit:
            ticks = start_ticks(int(entry.name))
            if ticks is not None and _stat_fields(int(entry.name))[0] not in ("Z", "X"):
                found.append(ProcessRef(int(entry.name), ticks))
    return found


def rss_bytes(ref: ProcessRef) -> int:
    """Resident set size of one process (0 if gone)."""
    if not alive(ref):
        return 0
    try:
        for line in Path(f"/proc/{ref.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def wait_for(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll ``predicate`` until it holds; a FaultError with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise FaultError(message)
