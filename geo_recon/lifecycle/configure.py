"""Putting a run's clusters into its scheme: the scenario's settings as ``SchemeSettings``, applied and
verified (from inside the lab where the backend needs that), every read-back check printed."""

from __future__ import annotations

from typing import Callable

from geo_recon.deploy.base import Backend, ConfiguresInside
from geo_recon.deployment import Deployment
from geo_recon.errors import ConfigError, GeoReconError
from geo_recon.scenario import Scenario
from geo_recon.schemes import Check, Scheme, SchemeSettings
from geo_recon.workload import runner
from geo_recon.workload.spec import WorkloadSpec

Progress = Callable[[str], None]


class SchemeNotInEffect(GeoReconError):
    """A read-back check failed: the run cannot be judged (exit code 2)."""


def scheme_settings(scenario: Scenario) -> SchemeSettings:
    s = scenario.settings
    try:
        e, w, a = (int(x) for x in s.persistence.split("/"))
    except ValueError:
        raise ConfigError(f"{scenario.source}: field settings.persistence: expected E/W/A like 2/2/2, "
                          f"got {s.persistence!r}") from None
    return SchemeSettings(tenant=s.tenant, namespace=s.namespace, dedup=s.dedup,
                          ensemble=e, write_quorum=w, ack_quorum=a, replication=s.replication)


def configure(backend: Backend, target: Deployment, scheme: Scheme, settings: SchemeSettings, scenario: Scenario,
               progress: Progress) -> None:
    """Apply the scheme and read every setting back; from inside the lab where the backend needs that."""
    if isinstance(backend, ConfiguresInside):
        s = scenario.settings
        args = ["--tenant", s.tenant, "--namespace", s.namespace, "--dedup" if s.dedup else "--no-dedup",
                "--persistence", s.persistence]
        checks = [Check(**c) for c in backend.configure_inside(scheme.name, args, progress)]
    else:
        scheme.apply(target, settings, progress=lambda m: progress(f"  {m}"))
        checks = scheme.verify(target, settings)
    report_checks(checks, scheme.name, progress)


def report_checks(checks: list[Check], scheme: str, progress: Progress) -> None:
    """Print every read-back check; ``RunError`` unless all passed."""
    for c in checks:
        progress(f"  {'ok  ' if c.ok else 'FAIL'} {f'[{c.region}] ' if c.region else ''}{c.name}: {c.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise SchemeNotInEffect(f"the {scheme} scheme is not in effect: " +
                       "; ".join(f"{c.name}: {c.detail}" for c in failed))


def rejoin_region(target: Deployment, scheme: Scheme, settings: SchemeSettings, region: str, topics: list[str],
                  workload: WorkloadSpec, progress: Progress) -> None:
    """A rebuilt, empty region put back into the scheme: applied again (only what differs: the new cluster's
    peers, tenant, namespace and replication, so the survivors replicate to it again; a stretched cluster's
    racks), every setting read back, and the run's partitioned topics created there again."""
    scheme.apply(target, settings, progress=lambda m: progress(f"  {m}"))
    report_checks(scheme.verify(target, settings, probe_placement=False), scheme.name, progress)
    if settings.replication == "topic":
        scheme.replicate_topics(target, topics, settings)
    elif workload.partitions and target.region(region) in scheme.topic_regions(target):
        runner.create_partitioned([target.region(region)], topics, workload.partitions)
