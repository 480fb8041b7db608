"""Putting a run's clusters into its scheme: the scenario's settings as ``SchemeSettings``, applied and
verified (from inside the lab where the backend needs that), every read-back check printed."""

from __future__ import annotations

import time
from typing import Any, Callable

from geo_recon import status
from geo_recon.admin import AdminError, topic_path
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


REPLICATOR_WAIT_S = 20.0  # a survivor's replicator reconnects within its client's backoff (measured: seconds)


def rejoin_region(target: Deployment, scheme: Scheme, settings: SchemeSettings, region: str, topics: list[str],
                  workload: WorkloadSpec, progress: Progress) -> dict[str, Any]:
    """A rebuilt, empty region put back into the scheme: applied again (only what differs: the new cluster's
    peers, tenant, namespace and replication, so the survivors replicate to it again; a stretched cluster's
    racks), every setting read back, and the run's partitioned topics created there again. Under
    geo-replication the survivors' replicators to it are then seen connected (what was done for that is
    returned, for the stop line)."""
    scheme.apply(target, settings, progress=lambda m: progress(f"  {m}"))
    report_checks(scheme.verify(target, settings, probe_placement=False), scheme.name, progress)
    if settings.replication == "topic":
        scheme.replicate_topics(target, topics, settings)
    elif workload.partitions and target.region(region) in scheme.topic_regions(target):
        runner.create_partitioned([target.region(region)], topics, workload.partitions)
    if not scheme.geo_replicated:
        return {}
    return reconnect_replicators(target, settings, region, topics, progress)


def reconnect_replicators(target: Deployment, settings: SchemeSettings, region: str, topics: list[str],
                          progress: Progress, wait_s: float = REPLICATOR_WAIT_S) -> dict[str, Any]:
    """Every survivor's replicator of a run topic to the rebuilt ``region``, seen connected; one still
    disconnected after ``wait_s`` gets its topic unloaded on that survivor, once, and is waited for again.

    Why: a survivor's replicator that reaches the rebuilt broker before its namespace exists gets
    TopicDoesNotExist, closes its producer and then fails every entry with "Producer already closed" until
    the topic is reloaded (Pulsar 4.2.4, measured: millions of log lines, nothing replicated to the rebuilt
    region for the rest of the run). An SRE's rebuild runbook has the same step."""
    survivors = [r for r in target.region_names if r != region]

    def disconnected() -> list[tuple[str, str]]:
        """(survivor, topic) whose replicator to ``region`` is not seen connected: disconnected, absent, or
        a survivor whose run topics are not listed (or whose statistics cannot be read) at all."""
        try:
            found = status.replication_status(target, settings)
        except GeoReconError as exc:
            return [(r, f"statistics unreadable: {exc}") for r in survivors]
        out = []
        for survivor in survivors:
            mine = [t for t in found if t.region == survivor
                    and any(t.topic == x or t.topic.startswith(x + "-partition-") for x in topics)]
            if not mine:
                out.append((survivor, "no run topic listed"))
            out += [(survivor, t.topic) for t in mine
                    if not any(link.remote == region and link.connected for link in t.links)]
        return sorted(out)

    def wait() -> list[tuple[str, str]]:
        deadline = time.monotonic() + wait_s
        while (left := disconnected()) and time.monotonic() < deadline:
            time.sleep(1.0)
        return left

    stuck = wait()
    unloaded = []
    for survivor, topic in stuck:
        if "://" not in topic:  # nothing to unload: no topic listed, or no statistics
            continue
        admin = target.region(survivor).admin(deadline=30)
        try:
            admin.put(topic_path(topic) + "/unload")
            unloaded.append(f"{survivor}:{topic}")
        except AdminError as exc:
            progress(f"  could not unload {topic} in {survivor}: {exc}")
        finally:
            admin.close()
    if unloaded:
        progress(f"  replicators to {region} still disconnected after {wait_s:g}s: unloaded "
                 f"{', '.join(unloaded)} in the survivors")
        stuck = wait()
    if stuck:
        progress(f"  replicators to {region} not connected: {', '.join(f'{r}:{t}' for r, t in stuck)}")
    else:
        progress(f"  ok   replicators of every survivor to {region} connected")
    return {"replicators_unloaded": unloaded,
            "replicators_not_connected": [f"{r}:{t}" for r, t in stuck]}
