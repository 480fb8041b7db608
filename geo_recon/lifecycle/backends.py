"""Which backend a scenario runs on, known before anything is created.

``topology.backend``: ``local`` (a lab of JVMs started here), ``compose`` (a
compose lab on this machine's Docker engine) or ``external`` (existing
clusters from a clusters file). Everything a backend can check before it
starts is checked here: an engine, the faults it can do, the options that do
not apply to it.
"""

from __future__ import annotations

from typing import Callable

from geo_recon.deploy.base import Backend
from geo_recon.deploy.compose import spec_for_scenario
from geo_recon.deploy.compose_backend import check_engine
from geo_recon.deploy.compose_lab_backend import ComposeHooks, ComposeLabBackend
from geo_recon.deploy.external import ExternalBackend
from geo_recon.deploy.local_backend import LocalLabBackend, isolation_for
from geo_recon.deploy.pulsar_dist import PULSAR_VERSION
from geo_recon.deploy.pulsar_versions import release
from geo_recon.deploy.topology import LabSpec
from geo_recon.errors import ConfigError
from geo_recon.faults.driver import refuse_unsupported
from geo_recon.faults.spec import ScheduledFault
from geo_recon.scenario import Scenario

Progress = Callable[[str], None]


def backend_for(scenario: Scenario, scheme: str, schedule: list[ScheduledFault], *, reuse_lab: bool,
                hooks: ComposeHooks, progress: Progress, pulsar: str | None = None) -> Backend:
    """The scenario's backend, its preflight passed; ``ConfigError``/``EnvironmentProblem`` otherwise."""
    topo = scenario.topology
    where = f"{scenario.source}: " if scenario.source else ""
    backend: Backend
    pulsar = release(pulsar or scenario.pulsar).version
    if topo.backend == "compose":
        version = check_engine(hooks.runner)  # no Docker engine: the first thing said
        if pulsar != PULSAR_VERSION:
            raise ConfigError(f"{where}compose labs run Pulsar {PULSAR_VERSION} only; run Pulsar {pulsar} on "
                              "backend local")
        if reuse_lab:
            raise ConfigError("--reuse-lab is for local labs: a compose run starts a fresh compose lab "
                              "(--keep-lab leaves it up for `geo-recon compose ...`)")
        if scenario.workload.billing is not None:
            raise ConfigError(f"{where}the billing workload runs on backend local only (its reconciler is one of "
                              "the controller's worker roles)")
        backend = ComposeLabBackend.prepare(spec=spec_for_scenario(scenario, scheme), compose_dir=topo.compose_dir,
                                            schedule=schedule, where=where, hooks=hooks, version=version)
    elif topo.backend == "external":
        backend = ExternalBackend(topo.clusters or "")
    else:
        opts = topo.lab
        spec = LabSpec(regions=tuple(topo.regions), scheme=scheme, name=opts.name,  # type: ignore[arg-type]
                       base_port=opts.base_port, isolation=isolation_for(opts.isolation),  # type: ignore[arg-type]
                       subnet=opts.subnet, pulsar=pulsar, bookies_per_region=topo.bookies_per_region,
                       wan=opts.wan)
        local_backend = LocalLabBackend(spec, reuse=reuse_lab, progress=lambda m: progress(f"  {m}"))
        local_backend.check_faults([f.kind for f in scenario.faults], f"{scenario.source}: ")
        backend = local_backend
    refuse_unsupported(backend, schedule, where)
    return backend
