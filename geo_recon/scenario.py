"""Scenario files: one YAML in, everything a run needs. Errors name the file, line and field.

::

    name: partition-heal
    description: Cut a from b for 15 s under load, then heal; everything must converge.
    seed: 7
    topology:
      backend: local            # local | compose | external
      regions: [a, b]
      lab: {name: lab, base_port: 20000, subnet: 0}
      # clusters: clusters.yaml # external: existing clusters (see README)
      # compose_dir: docker/r2-async  # compose: a rendered lab to use (default: rendered into the run directory)
    scheme: async               # the default; `geo-recon run --schemes strong,async` runs both
    settings: {dedup: false, persistence: 2/2/2}
    workload: {rate: 200, duration_s: 40}
    faults:
      - {kind: partition, groups: [[a], [b]], at_s: 10, duration_s: 15}
    expectations:               # limits per region; a scheme's own block overrides
      max_lost: 0
      max_convergence_s: 60
      async: {max_rpo_messages: null}
      strong: {max_rpo_messages: 0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geo_recon.deploy import pulsar_versions
from geo_recon.deploy.topology import MAX_BOOKIES_PER_REGION, NAME_RE
from geo_recon.errors import ConfigError
from geo_recon.faults.spec import DEFAULT_RECOVERY_S, DEGRADATION_KINDS, FaultSpec, ScheduledFault
from geo_recon.schemes import SCHEMES
from geo_recon.schemes import get as scheme_named
from geo_recon.workload.spec import WorkloadSpec


class LabOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "lab"
    base_port: int = 20000
    subnet: int = 0
    isolation: Literal["auto", "netns", "loopback"] = "auto"
    wan: Literal["auto", "proxied", "direct"] = Field("auto", description="proxied: cross-region links through "
                                                      "toxic-free proxies from the lab's start (a latency fault then "
                                                      "resets nothing); auto: proxied when the lab's 200 proxy ports "
                                                      "suffice")
    keep: bool = Field(False, description="leave the lab running after the run")


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["local", "compose", "external"] = "local"
    regions: list[str] = ["a", "b"]
    lab: LabOptions = LabOptions()
    clusters: str | None = None
    compose_dir: str | None = None
    bookies_per_region: int = Field(1, description="bookies in each region (local labs; the strong scheme's "
                                                   "region-aware placement has a choice only with 2 or more)")

    @model_validator(mode="after")
    def _check(self) -> "Topology":
        if self.bookies_per_region < 1:
            raise ValueError(f"bookies_per_region must be at least 1, got {self.bookies_per_region}")
        if self.bookies_per_region > MAX_BOOKIES_PER_REGION:
            raise ValueError(f"bookies_per_region must be at most {MAX_BOOKIES_PER_REGION} (a region's block of "
                             f"ports), got {self.bookies_per_region}")
        if self.bookies_per_region != 1 and self.backend != "local":
            raise ValueError(f"bookies_per_region is for local labs; the {self.backend} backend has the bookies "
                             "it has (leave it at 1)")
        if len(self.regions) < 2:
            raise ValueError(f"at least 2 regions are needed, got {self.regions}")
        for region in self.regions:
            if not NAME_RE.fullmatch(region):
                raise ValueError(f"region name {region!r}: use 1-8 lowercase letters or digits")
        if self.backend == "external" and not self.clusters:
            raise ValueError("backend external needs clusters: a clusters file")
        return self


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = "geo"
    namespace: str = "recon"
    dedup: bool = False
    persistence: str = "2/2/2"
    replication: Literal["namespace", "topic"] = Field(
        "namespace", description="async: replication clusters set on the namespace, or on each topic "
                                 "(topic-level policies; the namespace then lists only its own cluster)")


class KnownBug(BaseModel):
    """A scenario that reproduces a known apache/pulsar bug: where it is, and the verdict expected per version."""

    model_config = ConfigDict(extra="forbid")
    issue: str = Field(description="e.g. apache/pulsar#22890")
    fixed_by: str = ""
    title: str = ""
    affected: str = Field(description="the affected versions, in words, e.g. 3.0.0-3.0.5")
    fixed_in: str = ""
    expect: dict[str, Literal["met", "not met"]] = Field(
        description="the expected verdict per Pulsar version: `not met` where the bug shows")


class Limits(BaseModel):
    """Per-region limits; None means "report, do not judge".

    Anomalies the checker counts (lost, duplicates, reordered, unexpected) are judged even without a
    limit: none is allowed unless ``allow`` names the kind or a ``max_*`` limit (for lost, also
    ``min_delivered_fraction``) sets how many. ``max_recovery_s`` is judged by default.
    """

    model_config = ConfigDict(extra="forbid")
    max_lost: int | None = None
    max_duplicates: int | None = None
    max_reordered: int | None = None
    max_unexpected: int | None = 0
    max_lag_p99_ms: float | None = None
    max_convergence_s: float | None = None
    max_rpo_messages: int | None = Field(None, description=(
        "per lost region: acked messages produced there that no other region ever received"))
    max_rpo_s: float | None = Field(None, description="per lost region: the span of those messages' ack times")
    max_rto_s: float | None = None
    max_client_rto_s: float | None = Field(None, gt=0, description=(
        "every client of a lost region sends (producer) or receives (consumer) again within this many seconds "
        "of the loss; 'never' is not met, 'not observed' (the load ended first) undecided"))
    max_reconsumed: int | None = Field(None, ge=0, description=(
        "per replicated subscription of a lost region: messages received again after its consumer failed over"))
    max_subscription_gaps: int | None = Field(None, ge=0, description=(
        "per replicated subscription of a lost region: messages a surviving region's consumers received that "
        "it never received"))
    max_recovery_s: float | None = Field(DEFAULT_RECOVERY_S, gt=0, description=(
        "after every heal, each region's producers and consumers must work again within this many seconds; "
        "the load goes on this long after the last heal"))
    min_delivered_fraction: float | None = Field(None, ge=0, le=1)
    max_false_exceptions: int | None = Field(None, description="billing: exceptions not caused by injected errors")
    allow: list[str] = Field([], description="anomaly kinds the checker should not count against validity, "
                                             "e.g. duplicates when deduplication is off")


class Expectations(Limits):
    async_: Limits | None = Field(None, alias="async")
    strong: Limits | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def for_scheme(self, scheme: str) -> Limits:
        base = {k: getattr(self, k) for k in Limits.model_fields}
        override = getattr(self, scheme_named(scheme).expectations_field)
        if override is not None:
            base.update({k: v for k, v in override.model_dump(exclude_unset=True).items()})
        return Limits(**base)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    seed: int = 0
    topology: Topology = Topology()
    scheme: Literal["async", "strong"] = "async"
    pulsar: str | None = Field(None, description="Pulsar server version (default: the default version); "
                                                 "`geo-recon run --pulsar V1,V2` overrides it")
    known_bug: KnownBug | None = None
    settings: Settings = Settings()
    workload: WorkloadSpec = WorkloadSpec()
    faults: list[FaultSpec] = []
    expectations: Expectations = Expectations()
    source: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _faults_fit(self) -> "Scenario":
        if self.pulsar is not None and self.pulsar not in pulsar_versions.supported():
            raise ValueError(f"Pulsar {self.pulsar} is not supported; supported versions: "
                             f"{', '.join(pulsar_versions.supported())}")
        for i, fault in enumerate(self.faults):
            unknown = [r for r in fault.regions_touched(self.topology.regions) if r not in self.topology.regions
                       and r != "zk"]
            if unknown:
                raise ValueError(f"faults.{i}: unknown region(s) {unknown}; regions are {self.topology.regions}")
            if fault.at_s >= self.workload.duration_s and fault.random is None:
                raise ValueError(f"faults.{i}: starts at {fault.at_s}s, after the load ends "
                                 f"({self.workload.duration_s}s)")
            if fault.kind == "lose" and fault.target not in self.topology.regions:
                raise ValueError(f"faults.{i}.target: a lose fault targets one of the regions "
                                 f"{self.topology.regions}, got {fault.target!r}")
            if fault.rebuild_at_s is not None and fault.rebuild_at_s >= self.workload.duration_s:
                raise ValueError(f"faults.{i}.rebuild_at_s: {fault.rebuild_at_s:g}s is after the load ends "
                                 f"({self.workload.duration_s:g}s)")
        failover = self.workload.failover
        if failover.mode == "controlled":
            if not switched_regions(self):
                raise ValueError("workload.failover.mode controlled: no kill or lose fault targets a whole region, "
                                 "so no region's clients have anywhere to switch from")
            if failover.switch_at_s is not None and failover.switch_at_s >= self.workload.duration_s:
                raise ValueError(f"workload.failover.switch_at_s ({failover.switch_at_s}s) is after the load ends "
                                 f"({self.workload.duration_s}s)")
        return self


REGION_LOSS_KINDS = ("kill", "lose")  # faults that can take a whole region away (target: a region name)


def switched_regions(scenario: Scenario) -> dict[str, str]:
    """Controlled failover: each region a region fault targets -> the region its clients switch to
    (the next one in ``topology.regions``, wrapping around)."""
    regions = scenario.topology.regions
    targets = [f.target for f in scenario.faults
               if f.kind in REGION_LOSS_KINDS and f.target in regions]
    return {r: regions[(regions.index(r) + 1) % len(regions)] for r in dict.fromkeys(targets)}


RECOVERY_MARGIN_S = 5.0  # past the recovery limit, so a region that never recovers is seen as "never"


def load_seconds(scenario: Scenario, scheme: str, schedule: list[ScheduledFault]) -> float:
    """How long the load must run: the scenario's duration, or longer, so that it goes on for the recovery
    limit (plus a margin) after the last heal of a fault that stops clients (Jepsen's final phase). A lost
    region counts from its rebuild, or, never rebuilt, from its loss (its clients must fail over)."""
    duration = scenario.workload.duration_s
    limit = scenario.expectations.for_scheme(scheme).max_recovery_s
    heals = [f.recovers_from_s for f in schedule if f.spec.kind not in DEGRADATION_KINDS]
    if limit is None or not heals:
        return duration
    return max(duration, round(max(heals) + limit + RECOVERY_MARGIN_S, 3))


#: How much later than scheduled the last heal may be verified (a killed region's JVMs took 95 s to come back
#: at a load average of 26 on 2 cores) and still get its recovery window: the load goes on at most this long
#: past its scheduled end.
HEAL_DELAY_ALLOWANCE_S = 180.0


@dataclass(frozen=True)
class LoadEnd:
    """When the load ends, counted from its start: the scheduled length (``load_seconds``), or later, until
    the recovery window (the limit plus a margin) has passed after the last heal as it really happened
    (verified), never past ``cap_s``. A heal not verified by then is not observed: the run says so."""

    scheduled_s: float
    cap_s: float
    window_s: float | None  # None: nothing must recover, the load ends when scheduled

    def due_s(self, recover_from_s: Sequence[float | None]) -> float:
        """``recover_from_s``: per fault that stops clients, when clients could start to recover (its verified
        heal, a rebuilt region's rejoin, an unrebuilt loss), seconds from the load's start; None while pending."""
        if self.window_s is None or not recover_from_s:
            return self.scheduled_s
        if any(at is None for at in recover_from_s):
            return self.cap_s
        last = max(at for at in recover_from_s if at is not None)
        return min(self.cap_s, max(self.scheduled_s, round(last + self.window_s, 3)))


def load_end(scenario: Scenario, scheme: str, schedule: list[ScheduledFault]) -> LoadEnd:
    """The load's end for this scenario and scheme. A billing load never runs past its schedule: its
    transactions are generated up front from ``duration_s``, and an unsent one would count as unpublished."""
    scheduled = load_seconds(scenario, scheme, schedule)
    limit = scenario.expectations.for_scheme(scheme).max_recovery_s
    stops_clients = any(f.spec.kind not in DEGRADATION_KINDS for f in schedule)
    if limit is None or not stops_clients or scenario.workload.billing is not None:
        return LoadEnd(scheduled, scheduled, None)
    return LoadEnd(scheduled, scheduled + HEAL_DELAY_ALLOWANCE_S, limit + RECOVERY_MARGIN_S)


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"scenario {path} does not exist") from None
    try:
        raw = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario is a mapping with at least a name")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"]]
        line = _line_of(raw, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}{f':{line}' if line else ''}: field {field}: {msg}") from None
    scenario.source = str(path)
    return scenario


_ALIASES = {"async_": "async"}  # model field -> YAML key, where Python forbids the key as a name


def _line_of(node: Any, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on ``loc`` that exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value in (str(key), _ALIASES.get(str(key)))), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            match = node.value[key]
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def schemes_to_run(scenario: Scenario, option: str | None) -> list[str]:
    if not option:
        return [scenario.scheme]
    schemes = [s.strip() for s in option.split(",") if s.strip()]
    for s in schemes:
        if s not in SCHEMES:
            raise ConfigError(f"--schemes: unknown scheme {s!r}; expected {', '.join(SCHEMES)}")
    return schemes


def versions_to_run(scenario: Scenario, option: str | None) -> list[str]:
    """The Pulsar versions to run: ``--pulsar V1,V2``, else the scenario's ``pulsar``, else the default."""
    if option:
        return pulsar_versions.parse_versions(option)
    return [pulsar_versions.release(scenario.pulsar).version]
