"""The native producer (``workload.driver: go``): pulsar-client-go where Python is the ceiling.

The Python client calls back into Python, taking the GIL, for every acknowledgement,
which caps a Python load generator at a fraction of what a region can take. The
native worker (``native/worker/``, Go, pulsar-client-go pinned in its go.sum)
takes the produce role: the same worker config, the same schedule, the same
history lines with the same invoke/ok/fail/info meaning, the same progress and
summary files; the consumers stay in Python. It writes JSONL or Arrow
(``workload.history_format``) with the Python writer's schema and cadence. It is built once with the Go
toolchain (module downloads from the Go module proxy) into the cache, under a
name that is the hash of its sources, so a change to them rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from geo_recon.deploy import pulsar_dist
from geo_recon.errors import EnvironmentProblem

SOURCE_DIR = Path(__file__).resolve().parents[2] / "native" / "worker"
SOURCES = ("go.mod", "go.sum", "main.go", "history.go")
EXE = "geo-recon-native-worker"


def source_hash(source_dir: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = source_dir / name
        try:
            digest.update(name.encode() + b"\0" + path.read_bytes())
        except FileNotFoundError:
            raise EnvironmentProblem(f"the native worker's sources are missing ({path}): workload.driver go "
                                     "needs a geo-recon source checkout") from None
    return digest.hexdigest()[:16]


def binary(source_dir: Path = SOURCE_DIR) -> Path:
    """The native worker, built on first use (about a minute with an empty Go module cache)."""
    home = pulsar_dist.cache_root() / f"native-worker-{source_hash(source_dir)}"
    exe = home / EXE
    if exe.exists():
        return exe
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -modcacherw"}
    partial = home / f"{EXE}.partial"
    go = pulsar_dist.find_go("the native worker (workload.driver: go)")
    proc = subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=source_dir, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not partial.exists():
        raise EnvironmentProblem(f"building the native worker in {source_dir} failed: "
                                 f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    partial.rename(exe)
    return exe


def produce_command(config_path: Path) -> list[str]:
    """The command line of one region's native producer."""
    return [str(binary()), "--config", str(config_path), "--role", "produce"]
