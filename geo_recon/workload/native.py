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

pulsar-client-go is built patched (``native/worker/patches/pulsar-client-go.patch``, which says why):
the pinned module, checked against go.sum by the Go toolchain, is copied into
``native/worker/third_party/`` (not kept in git) and the patch applied there; go.mod's ``replace``
points at that copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from geo_recon.deploy import pulsar_dist
from geo_recon.errors import EnvironmentProblem

SOURCE_DIR = Path(__file__).resolve().parents[2] / "native" / "worker"
SOURCES = ("go.mod", "go.sum", "main.go", "history.go", "patches/pulsar-client-go.patch")
EXE = "geo-recon-native-worker"
CLIENT_MODULE = "github.com/apache/pulsar-client-go"
CLIENT_PATCH = Path("patches") / "pulsar-client-go.patch"
CLIENT_COPY = Path("third_party") / "pulsar-client-go"  # go.mod's replace target


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


def go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -modcacherw"}


def pinned_version(source_dir: Path) -> str:
    for line in (source_dir / "go.mod").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in (CLIENT_MODULE, "require") and CLIENT_MODULE in words:
            return words[words.index(CLIENT_MODULE) + 1]
    raise EnvironmentProblem(f"{source_dir / 'go.mod'}: no {CLIENT_MODULE} version is required")


def patched_client(source_dir: Path = SOURCE_DIR) -> Path:
    """The pinned pulsar-client-go with the repo's patch applied, where go.mod's replace expects it; made
    again whenever the patch or the pinned version changes (a stamp in the copy names both)."""
    patch = source_dir / CLIENT_PATCH
    version = pinned_version(source_dir)
    stamp_text = f"{version} {hashlib.sha256(patch.read_bytes()).hexdigest()}\n"
    copy = source_dir / CLIENT_COPY
    stamp = copy / ".geo-recon-patch"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return copy
    go = pulsar_dist.find_go("the native worker (workload.driver: go)")
    proc = subprocess.run([go, "mod", "download", "-json", f"{CLIENT_MODULE}@{version}"], cwd=source_dir,
                          env=go_env(), capture_output=True, text=True, timeout=900)
    try:
        module_dir = Path(json.loads(proc.stdout)["Dir"])
    except (ValueError, KeyError):
        raise EnvironmentProblem(f"downloading {CLIENT_MODULE}@{version} failed: "
                                 f"{(proc.stderr or proc.stdout).strip()[-400:]}") from None
    partial = copy.with_name(copy.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(module_dir, partial)
    for path in (partial, *partial.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)  # the module cache's files are read-only
    applied = subprocess.run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)], cwd=partial,
                             capture_output=True, text=True, timeout=60)
    if applied.returncode != 0:
        raise EnvironmentProblem(f"{patch} does not apply to {CLIENT_MODULE}@{version}: "
                                 f"{(applied.stdout + applied.stderr).strip()[-400:]}")
    (partial / ".geo-recon-patch").write_text(stamp_text)
    shutil.rmtree(copy, ignore_errors=True)
    partial.rename(copy)
    return copy


def binary(source_dir: Path = SOURCE_DIR) -> Path:
    """The native worker, built on first use (about a minute with an empty Go module cache)."""
    home = pulsar_dist.cache_root() / f"native-worker-{source_hash(source_dir)}"
    exe = home / EXE
    if exe.exists():
        return exe
    home.mkdir(parents=True, exist_ok=True)
    patched_client(source_dir)
    partial = home / f"{EXE}.partial"
    go = pulsar_dist.find_go("the native worker (workload.driver: go)")
    proc = subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=source_dir, env=go_env(),
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not partial.exists():
        raise EnvironmentProblem(f"building the native worker in {source_dir} failed: "
                                 f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    partial.rename(exe)
    return exe


def produce_command(config_path: Path) -> list[str]:
    """The command line of one region's native producer (``GEO_RECON_NATIVE_WORKER``: another build of it,
    to measure two builds under the same `bench load`)."""
    exe = os.environ.get("GEO_RECON_NATIVE_WORKER") or str(binary())
    return [exe, "--config", str(config_path), "--role", "produce"]
