"""The lab's state file: what `lab status`, `lab down` and faults work from.

It is written before each process starts and after it started, atomically
(temp file, fsync, rename), so a CLI killed at any moment leaves a state file
that still names everything it created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from geo_recon.deploy.procs import ProcessRef
from geo_recon.errors import LabError

STATE_FILE = "state.json"


class ComponentState(BaseModel):
    name: str
    kind: str
    site: str
    region: str | None
    address: str
    ports: dict[str, int]
    netns: str | None = None
    argv: list[str]
    cwd: str
    log: str
    pid: int | None = None
    start_ticks: int | None = None

    @property
    def ref(self) -> ProcessRef | None:
        if self.pid is None or self.start_ticks is None:
            return None
        return ProcessRef(self.pid, self.start_ticks)


class EndpointState(BaseModel):
    region: str
    cluster: str
    service_url: str
    admin_url: str


class LabState(BaseModel):
    version: int = 1
    name: str
    scheme: Literal["async", "strong"]
    regions: list[str]
    isolation: Literal["netns", "loopback"]
    base_port: int
    subnet: int
    phase: Literal["starting", "up", "failed", "stopping"]
    created_at: float
    lab_dir: str
    pulsar_version: str
    java: str
    bookies_per_region: int = 1
    placement: Literal["region-aware", "random"] = "region-aware"  # random: the test-only negative control
    wan: Literal["proxied", "direct"] = "direct"  # proxied: cross-region links through Toxiproxy from the start (deploy.wan)
    bridge: str | None = None
    bridge_address: str | None = None
    namespaces: dict[str, str] = {}  # site -> namespace
    site_addresses: dict[str, str] = {}  # site -> address
    zookeeper_url: str | None = None
    endpoints: list[EndpointState] = []
    components: list[ComponentState] = []
    ready_seconds: float | None = None
    owner_pid: int | None = None  # the CLI that started it, to tell "starting" from "half-started"
    owner_ticks: int | None = None

    def component(self, name: str) -> ComponentState:
        for comp in self.components:
            if comp.name == name:
                return comp
        known = ", ".join(c.name for c in self.components)
        raise LabError(f"lab {self.name!r} has no component {name!r} (it has: {known})")


def lab_home() -> Path:
    env = os.environ.get("GEO_RECON_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "geo-recon"


def lab_dir(name: str) -> Path:
    return lab_home() / "labs" / name


def save(state: LabState) -> None:
    path = Path(state.lab_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(state.model_dump_json(indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(name: str) -> LabState | None:
    """The lab's state, None if there is none; a corrupt file is a clear error."""
    path = lab_dir(name) / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabState.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise LabError(
            f"lab state file {path} is corrupt ({first}); "
            f"`geo-recon lab down --name {name} --force` cleans up by name and process marker instead"
        ) from None


def remove(name: str) -> None:
    (lab_dir(name) / STATE_FILE).unlink(missing_ok=True)
