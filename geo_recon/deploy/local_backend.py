"""The local lab as a ``Backend``: JVMs on this machine, a network namespace per site when root.

It has every fault capability (``LocalFaults``: signals, iptables, Toxiproxy, a region destroyed);
network faults need the namespaces, which is checked before a run starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from geo_recon.deploy import local, netns
from geo_recon.deploy import state as lab_state
from geo_recon.deploy.base import DelegatesFaults, FaultParams, Measured, Progress
from geo_recon.deploy.local_faults import LocalFaults
from geo_recon.deploy.topology import LabSpec
from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError, EnvironmentProblem, LabError

NETWORK_FAULTS = ("partition", "isolate", "latency", "bandwidth")


def lab_deployment(name: str) -> Deployment:
    """Where a running local lab's regions answer (was ``deployment.from_lab``)."""
    lab = lab_state.load(name)
    if lab is None:
        raise ConfigError(f"no lab named {name!r}; start one with `geo-recon lab up --name {name}` "
                          "or pass --clusters FILE")
    bookies: dict[str, list[str]] = {}
    for comp in lab.components:
        if comp.kind == "bookie" and comp.region:
            bookies.setdefault(comp.region, []).append(f"{comp.address}:{comp.ports['bookie']}")
    regions = tuple(
        RegionEndpoint(region=e.region, service_url=e.service_url, admin_url=e.admin_url, cluster=e.cluster,
                       bookies=tuple(bookies.get(e.region, ())))
        for e in lab.endpoints
    )
    return Deployment(regions, source=f"lab {name}", scheme=lab.scheme, lab=name)


class LocalLabBackend(DelegatesFaults):
    """A local lab named ``spec.name``: started by ``up`` (or reused, when asked and it matches)."""

    name = "local"

    def __init__(self, spec: LabSpec, *, reuse: bool = False, progress: Progress = lambda _m: None) -> None:
        self.spec = spec
        self.reuse = reuse
        self.progress = progress  # where the fault mechanics say what they measured
        self.started = False  # by this backend: ``down`` takes down only what it started
        self.reused = False  # up, and used as it was
        self._faults: LocalFaults | None = None

    @classmethod
    def attach(cls, name: str, progress: Progress = lambda _m: None) -> "LocalLabBackend":
        """A lab that is already up (``geo-recon faults inject``): nothing to start, nothing to take down."""
        lab = lab_state.load(name)
        if lab is None:
            raise ConfigError(f"no lab named {name!r}")
        spec = LabSpec(regions=tuple(lab.regions), scheme=lab.scheme, name=name,  # type: ignore[arg-type]
                       base_port=lab.base_port, isolation=lab.isolation,  # type: ignore[arg-type]
                       bookies_per_region=lab.bookies_per_region, placement=lab.placement, wan=lab.wan)  # type: ignore[arg-type]
        return cls(spec, reuse=True, progress=progress)

    # ------------------------------------------------------------ Backend

    def check_faults(self, kinds: Sequence[str], where: str) -> None:
        """Network faults need network namespaces: refused before the lab starts."""
        if self.spec.isolation != "netns" and any(k in NETWORK_FAULTS for k in kinds):
            raise EnvironmentProblem(f"{where}network faults need network namespaces; run as root")

    def up(self, progress: Progress, workdir: Path | None = None) -> Deployment:
        existing = lab_state.load(self.spec.name)
        if existing is not None and existing.phase == "up":
            same = (existing.scheme == self.spec.scheme and existing.regions == list(self.spec.regions)
                    and existing.pulsar_version == self.spec.pulsar
                    and existing.bookies_per_region == self.spec.bookies_per_region
                    and existing.placement == self.spec.placement
                    and existing.wan == self.spec.wan_mode)
            if self.reuse and same:
                progress(f"reusing lab {self.spec.name!r}")
                self.reused = True
                return self.deployment()
            raise LabError(f"lab {self.spec.name!r} is already up ({existing.scheme}, regions {existing.regions}, "
                           f"Pulsar {existing.pulsar_version}, {existing.bookies_per_region} bookie(s) per region, "
                           f"wan {existing.wan}); "
                           f"stop it with `geo-recon lab down --name {self.spec.name}`"
                           + (" or pass --reuse-lab" if same else ""))
        local.up(self.spec, progress=lambda m: progress(f"  {m}"))  # cleans up after itself if it fails
        self.started = True
        return self.deployment()

    def down(self, progress: Progress) -> None:
        if self.started:
            local.down(self.spec.name, progress=progress)

    def status(self) -> list[local.ComponentStatus]:
        return local.status(self.spec.name)[1]

    def deployment(self) -> Deployment:
        return lab_deployment(self.spec.name)

    def left_running(self) -> str:
        return f"lab {self.spec.name!r} left running: geo-recon lab down --name {self.spec.name}"

    def versions(self) -> dict[str, str]:
        return {}

    def keep_logs(self, run_dir: Path, progress: Progress) -> None:
        if not (self.started or self.reused):
            return
        logs = lab_state.lab_dir(self.spec.name) / "logs"
        if logs.is_dir():
            shutil.copytree(logs, run_dir / "logs" / "components", dirs_exist_ok=True)

    def worker_placement(self, regions: Sequence[str]) -> tuple[dict[str, str], str]:
        """Each region's network namespace (workers run in it) and the address the controller's clock serves on."""
        lab = lab_state.load(self.spec.name)
        if lab is None:
            return {}, "127.0.0.1"
        return ({r: ns for r, ns in lab.namespaces.items() if r in regions},
                lab.bridge_address or "127.0.0.1")

    # ------------------------------------------------------------ faults (deploy.base capabilities)

    def active_faults(self) -> list[str]:
        """The ids of the faults in effect on the lab (recorded in its faults.json, by any controller)."""
        return list(self._mechanics().active)

    def _mechanics(self) -> LocalFaults:
        if self._faults is None:
            self._faults = LocalFaults(self.spec.name, progress=self.progress)
        return self._faults

    def sweep(self, progress: Progress) -> list[str]:
        return self._mechanics().sweep(progress)

    def destroy(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._mechanics().destroy(fault_id, fault)

    def rebuild(self, fault_id: str) -> Measured:
        return self._mechanics().rebuild(fault_id)


def isolation_for(requested: str) -> str:
    """``auto``: network namespaces when root, loopback otherwise."""
    return ("netns" if netns.is_root() else "loopback") if requested == "auto" else requested
