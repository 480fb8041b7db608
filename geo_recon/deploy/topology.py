"""The shape of a lab: which sites, components, addresses and ports. Pure.

A *site* is a place processes run: one per region, plus for the strong scheme a
small witness site ``zk`` that holds the metadata store (ZooKeeper), so that
losing any one region leaves the metadata quorum alive (the usual three-site
layout of a stretched cluster).

With root, every site is a network namespace on a shared bridge, addressed from
198.18.S.0/24 (198.18.0.0/15 is reserved for benchmarking, RFC 2544, and never
routed). Without root every site shares 127.0.0.1. Ports are the same in both
modes: a block of 100 per region above ``base_port``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Literal, Protocol, TypeVar

from geo_recon.deploy.pulsar_versions import default_version, release
from geo_recon.errors import ConfigError
from geo_recon.schemes.base import NAMES as SCHEMES
from geo_recon.schemes.base import get as scheme_named

Scheme = Literal["async", "strong"]
Isolation = Literal["netns", "loopback"]

NAME_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
WITNESS_SITE = "zk"
STRONG_CLUSTER = "geo"
MAX_REGIONS = 9

# Offsets inside a region's block of 100 ports.
BROKER_OFFSET = 50
WEB_OFFSET = 80
BOOKIE_OFFSET = 81  # a region's n-th bookie (stretched labs) listens on BOOKIE_OFFSET + n - 1
MAX_BOOKIES_PER_REGION = 8  # offsets 81..88; 90 is the fault tooling's echo server
ZK_OFFSET = 81  # in the witness block (base_port + 0..99)


@dataclass(frozen=True)
class LabSpec:
    """What the user asked for."""

    regions: tuple[str, ...]
    scheme: Scheme
    name: str = "lab"
    base_port: int = 20000
    isolation: Isolation = "netns"
    subnet: int = 0  # third octet of 198.18.S.0/24 (netns mode only)
    pulsar: str = field(default_factory=default_version)  # server version (pulsar_versions)
    bookies_per_region: int = 1  # stretched: bookie JVMs per region; async: the standalone's embedded bookies
    # Test-only: "random" starts a stretched lab's brokers WITHOUT region- or rack-aware placement
    # (BookKeeper's default, random ensembles): the negative control that verify-config must catch.
    placement: Literal["region-aware", "random"] = "region-aware"
    # netns labs: "proxied" routes every cross-region connection through a toxic-free Toxiproxy proxy from the
    # start, so WAN latency and bandwidth faults never reset a connection (deploy.wan); "direct" does not;
    # "auto" is proxied when the lab's proxy ports suffice (wan_proxy_count), else direct.
    wan: Literal["auto", "proxied", "direct"] = "auto"

    @property
    def wan_mode(self) -> Literal["proxied", "direct"]:
        """The WAN the lab gets: loopback labs have none to proxy."""
        if self.isolation != "netns" or self.wan == "direct":
            return "direct"
        if self.wan == "auto" and wan_proxy_count(self) > PROXY_PORTS:
            return "direct"
        return "proxied"

    @property
    def stretched(self) -> bool:
        """One cluster over every region (a witness site holds its metadata store), as the scheme wants."""
        return scheme_named(self.scheme).stretched

    def validate(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ConfigError(f"lab name {self.name!r}: use 1-8 lowercase letters or digits, starting with a letter")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"unknown scheme {self.scheme!r}: expected one of {', '.join(SCHEMES)}")
        if len(self.regions) < 2:
            raise ConfigError(f"a multi-region lab needs at least 2 regions, got {len(self.regions)}: {list(self.regions)}")
        if len(self.regions) > MAX_REGIONS:
            raise ConfigError(f"at most {MAX_REGIONS} regions are supported, got {len(self.regions)}")
        if len(set(self.regions)) != len(self.regions):
            raise ConfigError(f"region names must be distinct: {list(self.regions)}")
        for region in self.regions:
            if not NAME_RE.fullmatch(region):
                raise ConfigError(f"region name {region!r}: use 1-8 lowercase letters or digits, starting with a letter")
            if region == WITNESS_SITE:
                raise ConfigError(f"region name {region!r} is reserved for the metadata witness site")
        top = self.base_port + 100 * (len(self.regions) + 1)
        if self.base_port < 1024 or top > 65535:
            raise ConfigError(f"base port {self.base_port}: the lab needs ports {self.base_port}..{top}, within 1024..65535")
        if not 1 <= self.bookies_per_region <= MAX_BOOKIES_PER_REGION:
            raise ConfigError(f"bookies per region {self.bookies_per_region}: expected 1..{MAX_BOOKIES_PER_REGION}")
        if not 0 <= self.subnet <= 255:
            raise ConfigError(f"subnet {self.subnet}: the third octet of 198.18.S.0/24 must be 0..255")
        if self.wan not in ("auto", "proxied", "direct"):
            raise ConfigError(f"wan {self.wan!r}: expected auto, proxied or direct")
        if self.isolation == "netns" and self.wan == "proxied" and wan_proxy_count(self) > PROXY_PORTS:
            raise ConfigError(f"{len(self.regions)} regions with {self.bookies_per_region} bookie(s) each need "
                              f"{wan_proxy_count(self)} WAN proxies, more than the lab's {PROXY_PORTS}: use fewer "
                              "regions or bookies, or wan: direct")
        release(self.pulsar)


# Fault tooling listens on the host (the bridge address, or 127.0.0.1): the Toxiproxy API at
# base + 90 and its proxies from base + 1000 up. These are the lab's only host-side ports in
# netns mode; in loopback mode every port of the lab is.
TOXIPROXY_API_OFFSET = 90
ECHO_OFFSET = 90  # a region's block + 90, in its namespace: a TCP echo server, the target of round-trip probes
PROXY_PORT_OFFSET = 1000
PROXY_PORTS = 200


def wan_proxy_count(spec: "LabSpec") -> int:
    """The proxies a proxied WAN arms at the start: one per (source region, destination region, destination
    port), the ports being the destination's broker, web, bookies (stretched) and echo server."""
    per_region = 3 + (spec.bookies_per_region if spec.stretched else 0)
    return len(spec.regions) * (len(spec.regions) - 1) * per_region


def host_port_span(spec: "LabSpec") -> tuple[int, int]:
    """The lowest and highest port the lab may listen on in the host's network namespace."""
    return spec.base_port, spec.base_port + PROXY_PORT_OFFSET + PROXY_PORTS - 1


def ephemeral_overlap(spec: "LabSpec", port_range: tuple[int, int]) -> str | None:
    """Why the lab's host ports are unsafe, if they overlap the kernel's ephemeral range: any
    outgoing connection on the host may take one of them at random, and a later listen on it
    fails (an intermittent 'address already in use')."""
    lo, hi = host_port_span(spec)
    first, last = port_range
    if hi < first or lo > last:
        return None
    fits_below = first - 1 - (hi - lo)
    hint = f"a base port of {fits_below} or less" if fits_below >= 1024 else "a lower base port"
    return (f"base port {spec.base_port}: the lab listens on host ports {lo}..{hi}, which overlap the kernel's "
            f"ephemeral port range {first}..{last} (net.ipv4.ip_local_port_range), where outgoing connections "
            f"take ports at random; choose {hint}")


@dataclass(frozen=True)
class Site:
    name: str
    address: str
    netns: str | None = None  # namespace name, netns mode only
    veth: str | None = None  # host side of the veth pair


@dataclass(frozen=True)
class ComponentPlan:
    """One JVM to run."""

    name: str  # "a/broker", "a/bookie", "a/standalone", "zk/zookeeper"
    kind: Literal["standalone", "broker", "bookie", "zookeeper"]
    site: str
    region: str | None  # None for the witness
    address: str
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterEndpoints:
    """How to reach Pulsar in one region."""

    region: str
    cluster: str  # Pulsar cluster name
    service_url: str
    admin_url: str


@dataclass(frozen=True)
class LabPlan:
    spec: LabSpec
    sites: tuple[Site, ...]
    components: tuple[ComponentPlan, ...]
    endpoints: tuple[ClusterEndpoints, ...]
    bridge: str | None
    bridge_address: str | None
    zookeeper_url: str | None  # "host:port" for the strong scheme

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def component(self, name: str) -> ComponentPlan:
        return next(c for c in self.components if c.name == name)

    def endpoint(self, region: str) -> ClusterEndpoints:
        return next(e for e in self.endpoints if e.region == region)


def plan_lab(spec: LabSpec) -> LabPlan:
    """Everything about a lab that follows from the spec, with no side effects."""
    spec.validate()
    netns = spec.isolation == "netns"
    prefix = f"198.18.{spec.subnet}"

    def site(index: int, name: str, host_octet: int) -> Site:
        if not netns:
            return Site(name=name, address="127.0.0.1")
        return Site(
            name=name,
            address=f"{prefix}.{host_octet}",
            netns=f"gr-{spec.name}-{name}",
            veth=f"grv-{spec.name}-{index}",
        )

    sites: list[Site] = [site(i, r, 10 + i) for i, r in enumerate(spec.regions)]
    components: list[ComponentPlan] = []
    endpoints: list[ClusterEndpoints] = []
    zookeeper_url = None
    if spec.stretched:
        witness = site(len(spec.regions), WITNESS_SITE, 2)
        sites.append(witness)
        zk_port = spec.base_port + ZK_OFFSET
        zookeeper_url = f"{witness.address}:{zk_port}"
        components.append(
            ComponentPlan(f"{WITNESS_SITE}/zookeeper", "zookeeper", WITNESS_SITE, None, witness.address, {"client": zk_port})
        )
    for index, region in enumerate(spec.regions):
        block = spec.base_port + 100 * (index + 1)
        ports = {"broker": block + BROKER_OFFSET, "web": block + WEB_OFFSET, "bookie": block + BOOKIE_OFFSET}
        address = sites[index].address
        if not spec.stretched:
            # The standalone's embedded bookie picks its own free port (RocksDB metadata mode).
            components.append(ComponentPlan(f"{region}/standalone", "standalone", region, region, address,
                                            {"broker": ports["broker"], "web": ports["web"]}))
            cluster = region
        else:
            for n in range(1, spec.bookies_per_region + 1):  # the first keeps the name "a/bookie"
                components.append(ComponentPlan(bookie_name(region, n), "bookie", region, region, address,
                                                {"bookie": ports["bookie"] + n - 1}))
            components.append(
                ComponentPlan(f"{region}/broker", "broker", region, region, address,
                              {"broker": ports["broker"], "web": ports["web"]})
            )
            cluster = STRONG_CLUSTER
        endpoints.append(
            ClusterEndpoints(region, cluster, f"pulsar://{address}:{ports['broker']}", f"http://{address}:{ports['web']}")
        )
    return LabPlan(
        spec=spec,
        sites=tuple(sites),
        components=tuple(components),
        endpoints=tuple(endpoints),
        bridge=f"grb-{spec.name}" if netns else None,
        bridge_address=f"{prefix}.1" if netns else None,
        zookeeper_url=zookeeper_url,
    )


def bookie_name(region: str, n: int) -> str:
    """A region's n-th bookie (from 1): ``a/bookie``, ``a/bookie2``, ..."""
    return f"{region}/bookie" if n == 1 else f"{region}/bookie{n}"


def parse_regions(text: str) -> tuple[str, ...]:
    """``"a,b,c"`` -> ``("a", "b", "c")``, ignoring blanks."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


class _Component(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def site(self) -> str: ...


C = TypeVar("C", bound=_Component)


def match_components(target: str, components: Iterable[C]) -> list[C]:
    """The components a process fault's target names: a whole site (``a``), a component
    (``a/broker``), a kind in a site (``a/bookie``) or a name prefix (``a/book``). Pure."""
    if "/" in target:
        site, role = target.split("/", 1)
        return [c for c in components
                if c.name == target or (c.site == site and c.kind == role)
                or (c.site == site and c.name.split("/")[1].startswith(role))]
    return [c for c in components if c.site == target]
