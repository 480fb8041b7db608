"""The Pulsar versions geo-recon can run, and everything that differs between them. Pure.

This table is the ONE place per-version differences live: the values the
server pom needs to resolve a version from Maven Central (``maven/server-pom.xml``
is a template with these properties), the broker settings a version needs to
start, and what is known about its replication bugs. Each version has its own
lock, ``maven/server-<version>.lock``, written by ``geo-recon pulsar lock --pulsar V``.

To add a version: add a row here, run ``geo-recon pulsar lock --pulsar V`` (Maven
reports the first module it cannot resolve; fix the row until it resolves),
then ``geo-recon lab up --pulsar V`` for both schemes and ``verify-config``.

Every standalone (async scheme) ignores the configured bookie port with the
RocksDB metadata store and binds a random port from the ephemeral range: the
lab therefore keeps its fixed ports below that range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from geo_recon.errors import ConfigError


@dataclass(frozen=True)
class PulsarRelease:
    """One supported server version: how to resolve it and how to start it."""

    version: str
    bookkeeper: str  # must match Pulsar's root pom (the BOM does not export its properties)
    zookeeper: str  # for zookeeper-prometheus-metrics, which the BOM does not manage (match ZooKeeper where served)
    slf4j_binding: str = "log4j-slf4j2-impl"  # 3.0 still uses SLF4J 1.x
    # group:artifact:version pinned in the pom's dependencyManagement where the BOM lacks a version.
    extra_dependencies: tuple[str, ...] = ()
    # Artifacts left out of the classpath besides the function bundles and jna.
    extra_exclusions: tuple[str, ...] = ()
    # Broker/standalone settings this version needs to start here.
    broker_settings: tuple[tuple[str, object], ...] = ()
    # The apache/pulsar replication bugs known to affect this version (see scenarios/known-bugs/).
    known_bugs: tuple[str, ...] = ()
    note: str = ""


# 3.0.x reads the NIC speed from /sys to balance load; lab veths and loopback report none.
_NIC_SPEED = (("loadBalancerOverrideBrokerNicSpeedGbps", 10),)

RELEASES: tuple[PulsarRelease, ...] = (
    PulsarRelease(
        version="3.0.2", bookkeeper="4.16.3", zookeeper="3.8.3", slf4j_binding="log4j-slf4j-impl",
        extra_dependencies=("org.bouncycastle:bcpkix-jdk18on:1.78.1",), broker_settings=_NIC_SPEED,
        known_bugs=("apache/pulsar#22890",),
        note="for the known-bug corpus only: topic-level replication loses the backlog on unload (#22890)",
    ),
    PulsarRelease(
        version="3.0.7", bookkeeper="4.16.6", zookeeper="3.9.2", slf4j_binding="log4j-slf4j-impl",
        broker_settings=_NIC_SPEED, note="newest 3.0.x (LTS) served here",
    ),
    PulsarRelease(
        version="4.0.1", bookkeeper="4.17.1", zookeeper="3.9.3", known_bugs=("apache/pulsar#23697",),
        note=("for the known-bug corpus only: replicated messages dropped by deduplication on the receiving "
              "cluster (not reproduced here)"),
    ),
    PulsarRelease(
        version="4.0.7", bookkeeper="4.17.2", zookeeper="3.9.3",
        note="newest 4.0.x (LTS) whose server modules all resolve here; inside the replicator-stall window fixed in 4.0.12",
    ),
    PulsarRelease(
        version="4.2.4", bookkeeper="4.17.3", zookeeper="3.9.4",  # 3.9.5 metrics jar not served; ZooKeeper itself stays 3.9.5 (BOM)
        # As the distribution does: its ZooKeeper is Pulsar's zookeeper-with-patched-admin.
        extra_exclusions=("zookeeper",), note="newest release served here; the default",
    ),
)

# The newest supported version without known replication bugs.
DEFAULT_PULSAR = "4.2.4"


def default_version() -> str:
    """DEFAULT_PULSAR, unless $GEO_RECON_PULSAR names another supported version (e.g. to run a
    test suite on a candidate default)."""
    return os.environ.get("GEO_RECON_PULSAR") or DEFAULT_PULSAR


def release(version: str | None = None) -> PulsarRelease:
    """The table row of ``version`` (default: ``default_version()``); a clear error for an unsupported one."""
    wanted = version or default_version()
    for row in RELEASES:
        if row.version == wanted:
            return row
    raise ConfigError(f"Pulsar {wanted} is not supported; supported versions: {', '.join(supported())}")


def supported() -> list[str]:
    return [row.version for row in RELEASES]


def parse_versions(text: str) -> list[str]:
    """``"3.0.7,4.2.4"`` -> the versions, each checked against the table."""
    versions = [part.strip() for part in text.split(",") if part.strip()]
    if not versions:
        raise ConfigError("--pulsar: give one or more versions, e.g. 3.0.7,4.2.4")
    for version in versions:
        release(version)
    return versions


def maven_properties(row: PulsarRelease) -> dict[str, str]:
    """The pom properties (``-D`` on Maven's command line) that select this version."""
    return {
        "pulsar.version": row.version,
        "bookkeeper.version": row.bookkeeper,
        "zookeeper.version": row.zookeeper,
        "slf4j.binding": row.slf4j_binding,
    }


def extra_dependencies_xml(row: PulsarRelease) -> str:
    """The ``<dependency>`` elements this version adds to the pom template."""
    out = []
    for coords in row.extra_dependencies:
        group, artifact, version = coords.split(":")
        out.append(f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
                   f"<version>{version}</version></dependency>")
    return "\n    ".join(out)


@dataclass(frozen=True)
class VersionInfo:
    """What `geo-recon pulsar versions` shows for one version."""

    version: str
    default: bool
    installed: bool
    locked: bool
    note: str
    known_bugs: list[str] = field(default_factory=list)
