"""The schemes as objects: the one place that knows what "async" and "strong" mean.

A ``Scheme`` says what shape of lab it needs (a cluster per region, or one
cluster stretched over the regions with a witness site), how to put a
deployment into it and prove it is in it, where topics are created, which
anomalies it allows by default and which field of a scenario's expectations
overrides the common limits for it. Code outside this package asks the scheme
object; it never compares a scheme's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError
from geo_recon.schemes import configure
from geo_recon.schemes.configure import Change, Check, SchemeSettings

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Scheme:
    name: str
    summary: str
    stretched: bool  # one Pulsar cluster over every region (metadata on a witness site); else one cluster per region
    geo_replicated: bool  # brokers replicate between clusters, so Pulsar's replicator statistics exist
    expectations_field: str  # the scenario's per-scheme expectations (``Expectations.async_`` / ``.strong``)
    _apply: Callable[[Deployment, SchemeSettings, dict[str, str]], list[Change]]
    _verify: Callable[[Deployment, SchemeSettings, dict[str, str], bool], list[Check]]
    default_allow: tuple[str, ...] = ()  # anomaly kinds allowed unless the scenario says otherwise

    def apply(self, deployment: Deployment, settings: SchemeSettings = SchemeSettings(),
              progress: Progress = _quiet) -> list[Change]:
        """Change only what differs; the changes made (none on a second call)."""
        settings.validate()
        changes = self._apply(deployment, settings, configure.cluster_names(deployment))
        for change in changes:
            progress(f"region {change.region}: {change.what}")
        return changes

    def verify(self, deployment: Deployment, settings: SchemeSettings = SchemeSettings(),
               probe_placement: bool = True) -> list[Check]:
        """Every setting read back from every region (and, stretched, the ledger placement itself)."""
        return self._verify(deployment, settings, configure.cluster_names(deployment), probe_placement)

    def replicate_topics(self, deployment: Deployment, topics: list[str], settings: SchemeSettings) -> None:
        """Topic-level replication policies on the run's topics (``settings.replication: topic``)."""
        if not self.geo_replicated:
            raise ConfigError(f"settings.replication: topic is for geo-replicated schemes; {self.name} has one "
                              "cluster, so there is nothing to replicate between clusters")
        configure.replicate_topics(deployment, topics, settings)

    def topic_regions(self, deployment: Deployment) -> tuple[RegionEndpoint, ...]:
        """The regions whose clusters must each create a run's partitioned topics."""
        return deployment.regions[:1] if self.stretched else deployment.regions


ASYNC = Scheme(
    name="async", summary="a cluster per region; brokers replicate to their peers (eventual)",
    stretched=False, geo_replicated=True, expectations_field="async_",
    _apply=configure.apply_async, _verify=configure.verify_async)
STRONG = Scheme(
    name="strong", summary="one cluster stretched over the regions; an ack needs bookies in two regions (sync)",
    stretched=True, geo_replicated=False, expectations_field="strong",
    _apply=configure.apply_strong, _verify=configure.verify_strong)

_ALL = {s.name: s for s in (ASYNC, STRONG)}
NAMES: tuple[str, ...] = tuple(_ALL)


def get(name: str) -> Scheme:
    """The scheme called ``name``; ``ConfigError`` naming the known ones otherwise."""
    try:
        return _ALL[name]
    except KeyError:
        raise ConfigError(f"unknown scheme {name!r}: expected one of {', '.join(NAMES)}") from None


def apply(deployment: Deployment, scheme: str, settings: SchemeSettings = SchemeSettings(),
          progress: Progress = _quiet) -> list[Change]:
    return get(scheme).apply(deployment, settings, progress)


def verify(deployment: Deployment, scheme: str, settings: SchemeSettings = SchemeSettings(),
           probe_placement: bool = True) -> list[Check]:
    return get(scheme).verify(deployment, settings, probe_placement)
