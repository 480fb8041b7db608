"""Faults as data, and the pure schedule that places them in time.

A fault spec in a scenario says what breaks and when::

    - kind: partition            # kill | stop | pause | restart | partition | isolate | latency | bandwidth
      groups: [[a], [b]]         # partition: traffic between these groups is dropped (others keep theirs)
      at_s: 10                   # start, seconds after the load starts
      duration_s: 15             # healed after this long
      every_s: 30                # optional: repeat
      count: 2                   # how many times
    - kind: command              # shell commands (kubectl, a chaos tool, ...); every backend
      target: b                  # optional: the region it affects (for the history)
      command: {inject: "...", verify: "...", heal: "...", timeout_s: 60}
    - kind: replication          # admin API, every backend: region b's cluster cut out of the
      target: b                  # namespace's replication clusters, restored on heal
    - kind: kill
      target: a                  # a whole region ("a") or one component ("a/broker", "a/bookie", "zk/zookeeper")
      random: {window_s: [5, 40], seed: 7}   # optional: random start inside a window
    - kind: unload               # the admin API unloads region a's topics (scope: topics) or the
      target: a                  # namespace's bundles (scope: namespace); instantaneous, verified by
      scope: topics              # each topic reopening on a new ledger
    - kind: lose                 # region a destroyed: every process SIGKILLed, its disks deleted; nothing
      target: a                  # of it returns during the run (no duration_s). Optional rebuild_at_s
      at_s: 20                   # (seconds since the load started): a new, EMPTY region a is started then
      rebuild_at_s: 60           # and rejoins (re-registered, replication restored / joins the cluster)

The schedule is a pure function of the specs, the run length and the seed, so
the same scenario gives the same schedule under both schemes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geo_recon.deploy.topology import match_components  # noqa: F401 - re-exported (moved to topology)
from geo_recon.errors import GeoReconError
from geo_recon.faults.recovery import DEFAULT_RECOVERY_S, DEGRADATION_KINDS  # noqa: F401 - re-exported

FaultKind = Literal["kill", "stop", "pause", "restart", "partition", "isolate", "latency", "bandwidth",
                    "command", "replication", "unload", "lose"]
PROCESS_KINDS = {"kill", "stop", "pause", "restart"}
INSTANT_KINDS = {"restart", "unload"}  # over once injected: the stop follows the start
NETWORK_KINDS = {"partition", "isolate", "latency", "bandwidth"}
ADMIN_KINDS = {"replication", "unload"}  # through the admin API: every backend has them (faults/admin_faults.py)
DESTROY_KINDS = {"lose"}  # a region destroyed for good: no heal, only an optional rebuild of an empty region


class CommandSpec(BaseModel):
    """A ``command`` fault: shell commands run on this machine (kubectl, a chaos tool, a lab's own CLI)."""

    model_config = ConfigDict(extra="forbid")
    inject: str = Field(description="breaks something; must exit 0")
    heal: str = Field(description="undoes it; must exit 0")
    verify: str | None = Field(None, description="after inject: exits 0 once the fault is in effect "
                                                 "(retried until timeout_s)")
    timeout_s: float = Field(60.0, gt=0, description="each command's time limit")


#: A rebuilt region starts from nothing (fresh JVMs, empty disks) and rejoins before it accepts clients; the
#: load allows this long for that past ``rebuild_at_s`` before the recovery window starts to count. The local
#: lab measured 7 s (async standalone) and 17 s (strong: two bookies and a broker) on 2 busy cores.
REBUILD_ALLOWANCE_S = 30.0


class RandomStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_s: tuple[float, float]
    seed: int | None = None  # default: the scenario's seed


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    target: str | None = Field(None, description="process faults and isolate: a region or region/component")
    groups: list[list[str]] | None = Field(None, description="partition: groups of regions cut from each other")
    one_way: bool = Field(False, description="partition: drop only traffic from the first group to the others")
    between: list[str] | None = Field(None, description="latency/bandwidth: regions whose links are slowed "
                                                        "(default: every pair)")
    rtt_ms: float | None = Field(None, ge=0, description="latency: added round-trip time")
    jitter_ms: float = Field(0.0, ge=0)
    rate_kbps: int | None = Field(None, gt=0, description="bandwidth: kilobytes per second each way")
    command: CommandSpec | None = Field(None, description="command: the inject, verify and heal commands")
    scope: Literal["topics", "namespace"] = Field("topics", description="unload: each topic of the test namespace, "
                                                                         "or the namespace's bundles at once")
    at_s: float = Field(0.0, ge=0)
    duration_s: float = Field(10.0, ge=0)
    every_s: float | None = Field(None, gt=0)
    count: int = Field(1, ge=1)
    random: RandomStart | None = None
    rebuild_at_s: float | None = Field(None, gt=0, description="lose: when a new, empty region of the same name "
                                                                "is started (seconds since the load started)")

    @model_validator(mode="after")
    def _consistent(self) -> "FaultSpec":
        if self.kind == "lose":
            self._check_lose()
        elif self.rebuild_at_s is not None:
            raise ValueError(f"rebuild_at_s is for lose faults only, not {self.kind}")
        if self.kind == "command" and self.command is None:
            raise ValueError("a command fault needs command: {inject: ..., heal: ...}")
        if self.kind != "command" and self.command is not None:
            raise ValueError(f"a {self.kind} fault takes no command (only kind: command does)")
        if self.kind == "replication" and not self.target:
            raise ValueError(f"a {self.kind} fault needs a target (the region whose cluster is cut out)")
        if self.kind == "unload" and (not self.target or "/" in self.target):
            raise ValueError("an unload fault needs a target region (the cluster whose topics are unloaded)")
        if self.kind in PROCESS_KINDS | {"isolate"} and not self.target:
            raise ValueError(f"a {self.kind} fault needs a target (a region, or region/component)")
        if self.kind == "partition" and (not self.groups or len(self.groups) < 2 or not all(self.groups)):
            raise ValueError("a partition needs groups: at least two non-empty lists of regions")
        if self.kind == "latency" and self.rtt_ms is None:
            raise ValueError("a latency fault needs rtt_ms")
        if self.kind == "bandwidth" and self.rate_kbps is None:
            raise ValueError("a bandwidth fault needs rate_kbps")
        if self.count > 1 and self.every_s is None and self.random is None:
            raise ValueError("count > 1 needs every_s or random")
        if self.every_s is not None and self.every_s < self.duration_s:
            raise ValueError(f"every_s ({self.every_s}) is shorter than duration_s ({self.duration_s}): "
                             "repeats would overlap")
        return self

    def _check_lose(self) -> None:
        """A destroyed region has no duration: it is gone until the run ends or it is rebuilt."""
        if not self.target or "/" in self.target:
            raise ValueError(f"a lose fault needs a target region (a whole region, not a component), "
                             f"got {self.target!r}")
        if "duration_s" in self.model_fields_set:
            raise ValueError("duration_s is not allowed on a lose fault: the region stays lost until the run ends; "
                             "use rebuild_at_s to start a new, empty region")
        for name in ("every_s", "random", "groups", "between"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} is not allowed on a lose fault (one region, lost once, at at_s)")
        if self.count != 1:
            raise ValueError("count is not allowed on a lose fault (a region is lost once)")
        if self.rebuild_at_s is not None and self.rebuild_at_s <= self.at_s:
            raise ValueError(f"rebuild_at_s ({self.rebuild_at_s:g}) must be after at_s ({self.at_s:g})")

    def regions_touched(self, all_regions: list[str]) -> list[str]:
        if self.groups:
            return sorted({r for g in self.groups for r in g})
        if self.between:
            return sorted(self.between)
        if self.target:
            return [self.target.split("/")[0]]
        return list(all_regions)

    @property
    def region_loss(self) -> bool:
        """A whole region killed, stopped, paused or lost: what RPO is measured against."""
        return self.kind in ("kill", "stop", "pause", "lose") and bool(self.target) and "/" not in (self.target or "")

    def describe(self) -> str:
        if self.kind == "partition":
            sep = " -/-> " if self.one_way else " | "
            return f"partition {sep.join(','.join(g) for g in self.groups or [])}"
        if self.kind == "latency":
            return f"latency +{self.rtt_ms:g} ms RTT (jitter {self.jitter_ms:g}) between {','.join(self.between or ['all'])}"
        if self.kind == "bandwidth":
            return f"bandwidth {self.rate_kbps} KB/s between {','.join(self.between or ['all'])}"
        if self.kind == "command":
            return f"command {self.command.inject if self.command else ''!r}" + \
                (f" on {self.target}" if self.target else "")
        if self.kind == "replication":
            return f"replication to {self.target} removed"
        if self.kind == "unload":
            return f"unload {'the namespace' if self.scope == 'namespace' else 'every topic'} in {self.target}"
        if self.kind == "lose":
            return f"lose region {self.target} (processes killed, data deleted)" + \
                (f", rebuilt empty at {self.rebuild_at_s:g}s" if self.rebuild_at_s is not None else ", for good")
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class ScheduledFault:
    id: str
    spec: FaultSpec
    start_s: float
    stop_s: float

    @property
    def target(self) -> str:
        s = self.spec
        if s.groups:
            return ("->" if s.one_way else "|").join(",".join(g) for g in s.groups)
        if s.between:
            return "<->".join(s.between)
        return s.target or "*"

    @property
    def heals(self) -> bool:
        """Whether something happens at ``stop_s``: a lost region without a rebuild stays lost (no stop line)."""
        return self.spec.kind not in DESTROY_KINDS or self.spec.rebuild_at_s is not None

    @property
    def recovers_from_s(self) -> float:
        """When clients must start to recover: a heal, a rebuild (once it can be up), or the loss itself
        (its clients fail over)."""
        if not self.heals:
            return self.start_s
        return self.stop_s + (REBUILD_ALLOWANCE_S if self.spec.kind in DESTROY_KINDS else 0.0)


def expand(faults: list[FaultSpec], run_seconds: float, seed: int) -> list[ScheduledFault]:
    """Every fault occurrence with its start and stop, in start order. Pure."""
    out: list[tuple[float, int, FaultSpec, float]] = []
    for index, spec in enumerate(faults):
        if spec.random is not None:
            rng = random.Random(f"{spec.random.seed if spec.random.seed is not None else seed}:{index}")
            low, high = spec.random.window_s
            high = max(low, high - spec.duration_s)
            starts = sorted(rng.uniform(low, high) for _ in range(spec.count))
        else:
            starts = [spec.at_s + i * (spec.every_s or 0) for i in range(spec.count)]
        for start in starts:
            if start >= run_seconds:
                continue
            if spec.kind in DESTROY_KINDS:  # lost until rebuilt, or until the run ends
                end = spec.rebuild_at_s if spec.rebuild_at_s is not None else run_seconds
            else:
                end = start + spec.duration_s
            out.append((round(start, 3), index, spec, round(min(end, run_seconds), 3)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [ScheduledFault(f"f{n}", spec, start, stop) for n, (start, _, spec, stop) in enumerate(out, 1)]


def fault_event(phase: str, fault: ScheduledFault, regions: list[str], **extra: Any) -> dict[str, Any]:
    """The controller's history line for a fault starting or stopping (every backend writes the same)."""
    spec = fault.spec
    line: dict[str, Any] = {"type": "fault", "time": time.time_ns(), "phase": phase, "fault": spec.kind,
                            "target": fault.target, "id": fault.id}
    if phase == "start":
        line["regions"] = spec.regions_touched(regions)
        if spec.region_loss:
            line["region_loss"] = True
        line["description"] = spec.describe()
    return {**line, **extra}


def heal_each(active: dict[str, Any], heal: Callable[[Any], None], on_event: Callable[[dict[str, Any]], None],
              progress: Callable[[str], None]) -> list[str]:
    """Heal every still-active fault (objects with ``kind`` and ``target``), recording each stop;
    one that fails is reported and dropped, so the others still get healed. Returns the ids healed."""
    healed = []
    for fault_id in list(active):
        fault = active[fault_id]
        try:
            heal(fault)
            healed.append(fault_id)
            on_event(heal_event(fault_id, fault.kind, fault.target))
        except GeoReconError as exc:
            progress(f"healing {fault_id} failed: {exc}")
        finally:
            active.pop(fault_id, None)
    return healed


def heal_event(fault_id: str, kind: str, target: str) -> dict[str, Any]:
    """The ``stop`` line for a fault healed by a final sweep, where only its id, kind and target are known."""
    return {"type": "fault", "time": time.time_ns(), "phase": "stop", "fault": kind, "target": target, "id": fault_id}
