"""Faults on a compose lab: each scenario fault as ``ComposeBackend`` calls, verified, recorded, always healed.

The same contract as the local lab's ``Injector`` (``inject``, ``heal``,
``heal_all``, ``active``, the same history lines), on containers and Toxiproxy:

=========  ================================================  =====================================
kind       inject (then verified)                            heal (then verified)
=========  ================================================  =====================================
kill       ``docker compose kill -s SIGKILL``: exited        ``start``: running and healthy
stop       ``docker compose stop`` (SIGTERM; SIGKILL after   ``start``: running and healthy
           30 s, as the local lab): exited
restart    ``stop`` then ``start``: healthy again            (heals itself)
pause      ``docker compose pause``: paused                  ``unpause``: running
partition  a black hole (``timeout`` toxics) on every link   the toxics removed
           between the groups; ``one_way``: only the
           connections the first group opens
isolate    a partition between the region and every other
           site
latency    ``latency`` toxics on every link between the      the toxics removed
           ``between`` regions (default all), half the
           round trip on each stream; read back
bandwidth  not available on compose: refused before the lab starts
=========  ================================================  =====================================

A target is a site (every component in it), a component (``a/broker``) or a
kind in a site (``a/bookie``), as on the local lab. Toxiproxy keeps one toxic
of a kind per link, so two faults of the same kind on the same link at the same
time are refused before the lab starts too (``check_schedule``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from geo_recon.deploy.compose import ComposeLab, hostname
from geo_recon.deploy.compose_backend import ComposeBackend, ServiceState
from geo_recon.errors import ConfigError, FaultError, GeoReconError
from geo_recon.faults.spec import ScheduledFault, fault_event, heal_each, match_components

EventSink = Callable[[dict[str, Any]], None]
Link = tuple[str, str, bool]  # (region whose Toxiproxy shapes it, destination site, both directions)

STOP_GRACE_S = 30  # as the local lab: SIGTERM, SIGKILL after 30 s
SETTLE_TIMEOUT_S = 15.0  # a killed, stopped, paused or resumed container shows it within this
READY_TIMEOUT_S = 180.0  # a started component passes its health check within this (checks run every 5 s)
POLL_S = 1.0
_START_ORDER = {"zookeeper": 0, "bookie": 1, "standalone": 2, "broker": 2}
_TOXIC = {"partition": "partition", "isolate": "partition", "latency": "latency"}


@dataclass(frozen=True)
class FaultPlan:
    """What one fault does to a compose lab: containers (process faults) or links (network faults)."""

    services: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass
class ActiveFault:
    id: str
    kind: str
    target: str
    plan: FaultPlan
    down: list[str] = field(default_factory=list)  # services killed or stopped: start them again
    paused: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)  # links with this fault's toxics on them


def _name(fault: ScheduledFault) -> str:
    return f"fault {fault.id} ({fault.spec.describe()})"


def plan_fault(lab: ComposeLab, fault: ScheduledFault) -> FaultPlan:
    """The containers or links a fault acts on; ``ConfigError`` naming the fault if compose cannot do it. Pure."""
    spec = fault.spec
    if spec.kind in ("kill", "stop", "pause", "restart"):
        comps = match_components(spec.target or "", lab.components)
        if not comps:
            known = ", ".join(c.name for c in lab.components)
            raise ConfigError(f"{_name(fault)}: the target matches no component of compose lab {lab.project} "
                              f"(it has {known})")
        comps = sorted(comps, key=lambda c: _START_ORDER.get(c.kind, 3))
        return FaultPlan(services=tuple(hostname(c.name) for c in comps))
    if spec.kind == "unload":
        raise ConfigError(f"{_name(fault)}: unload faults are not available on the compose backend (use backend local)")
    if spec.kind == "bandwidth":
        raise ConfigError(f"{_name(fault)}: bandwidth faults are not available on the compose backend "
                          "(use backend local, or a latency fault)")
    sites = set(lab.sites)
    if spec.kind == "isolate":
        groups = [[spec.target or ""], [s for s in lab.sites if s != spec.target]]
    elif spec.kind == "partition":
        groups = [list(g) for g in spec.groups or []]
    else:
        groups = [[r] for r in (spec.between or list(lab.regions))]
    unknown = sorted({s for g in groups for s in g} - sites)
    if unknown:
        raise ConfigError(f"{_name(fault)}: unknown site(s) {', '.join(unknown)}; compose lab {lab.project} has "
                          f"{', '.join(lab.sites)}")
    if spec.one_way:  # only the connections the first group opens to the others
        pairs = [(a, b) for later in groups[1:] for a in groups[0] for b in later]
    else:
        pairs = [(a, b) for i, first in enumerate(groups) for later in groups[i + 1:] for a in first for b in later]
    links: dict[Link, None] = {}
    for a, b in pairs:
        if a == b:
            continue
        if spec.one_way:  # the connections a opens to b: a's Toxiproxy shapes them
            if a not in lab.regions:
                raise ConfigError(f"{_name(fault)}: {a} opens no connections and has no Toxiproxy, "
                                  "so a one-way cut from it is not possible on the compose backend")
            links[(a, b, False)] = None
        else:  # both directions, through a region's Toxiproxy (the witness site has none)
            src, dst = (a, b) if a in lab.regions else (b, a)
            links[(src, dst, True)] = None
    return FaultPlan(links=tuple(links))


def _directed(lab: ComposeLab, links: tuple[Link, ...]) -> set[tuple[str, str]]:
    out = set()
    for src, dst, symmetric in links:
        out.add((src, dst))
        if symmetric and dst in lab.regions:
            out.add((dst, src))
    return out


def check_schedule(lab: ComposeLab, schedule: list[ScheduledFault]) -> dict[str, FaultPlan]:
    """Every fault's plan, before anything starts: a fault compose cannot do raises ``ConfigError`` naming it."""
    plans = {f.id: plan_fault(lab, f) for f in schedule}
    shaped = [(f, _TOXIC[f.spec.kind], _directed(lab, plans[f.id].links)) for f in schedule if f.spec.kind in _TOXIC]
    for n, (first, toxic, links) in enumerate(shaped):
        for second, other_toxic, other_links in shaped[n + 1:]:
            overlap = first.start_s < second.stop_s and second.start_s < first.stop_s
            common = links & other_links
            if toxic == other_toxic and overlap and common:
                src, dst = sorted(common)[0]
                raise ConfigError(f"{_name(first)} and {_name(second)} both put a {toxic} on the {src}->{dst} link "
                                  "at the same time; Toxiproxy keeps one per link, so the compose backend cannot "
                                  "heal them apart: let them follow each other")
    return plans


class ComposeFaults:
    """Inject scheduled faults into a running compose lab, verify each, record it, heal it."""

    def __init__(self, backend: ComposeBackend, *, on_event: EventSink | None = None,
                 progress: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.backend = backend
        self.lab = backend.lab
        self.on_event = on_event or (lambda _e: None)
        self.progress = progress or (lambda _m: None)
        self._sleep, self._clock = sleep, clock
        self.ready_timeout_s = ready_timeout_s
        self.active: dict[str, ActiveFault] = {}
        self._touched_links = False  # anything for the final Toxiproxy reset to clear

    # ------------------------------------------------------------ public

    def inject(self, fault: ScheduledFault) -> None:
        spec = fault.spec
        try:
            plan = plan_fault(self.lab, fault)
        except ConfigError as exc:
            raise FaultError(str(exc)) from None
        active = ActiveFault(fault.id, spec.kind, fault.target, plan)
        self.active[fault.id] = active
        started = self._clock()
        try:
            if spec.kind in ("kill", "stop", "restart"):
                self._take_down(active, "kill" if spec.kind == "kill" else "stop")
                if spec.kind == "restart":
                    self._bring_back(active)
            elif spec.kind == "pause":
                for service in plan.services:
                    active.paused.append(service)
                    self.backend.pause(service)
                self._await(fault.id, plan.services, lambda s: s.state == "paused", SETTLE_TIMEOUT_S, "pause")
            else:
                self._touched_links = True
                for src, dst, symmetric in plan.links:
                    active.links.append((src, dst, symmetric))
                    if spec.kind == "latency":
                        self.backend.latency(src, dst, int(round(spec.rtt_ms or 0)),
                                             jitter_ms=int(round(spec.jitter_ms)), symmetric=symmetric)
                    else:
                        self.backend.partition(src, dst, symmetric=symmetric)
        except FaultError:
            raise
        except GeoReconError as exc:
            raise FaultError(f"{_name(fault)}: {exc}") from None
        self.on_event(fault_event("start", fault, list(self.lab.regions)))
        self.progress(f"{fault.id} {spec.describe()}: in effect (verified in {self._clock() - started:.1f}s)")
        if spec.kind == "restart":  # a restart heals itself
            self.active.pop(fault.id, None)
            self.on_event(fault_event("stop", fault, list(self.lab.regions)))

    def heal(self, fault: ScheduledFault) -> None:
        active = self.active.get(fault.id)
        if active is None:
            return
        started = self._clock()
        self._heal(active)
        self.active.pop(fault.id, None)
        self.on_event(fault_event("stop", fault, list(self.lab.regions)))
        self.progress(f"{fault.id} {fault.spec.describe()}: healed (verified in {self._clock() - started:.1f}s)")

    def heal_all(self) -> list[str]:
        """Heal what is still active (recording each stop), then reset every Toxiproxy."""
        healed = heal_each(self.active, self._heal, self.on_event, self.progress)
        if self._touched_links:
            self.backend.heal()
            self._touched_links = False
            healed.append("every Toxiproxy reset")
        return healed

    # ------------------------------------------------------------ containers

    def _take_down(self, active: ActiveFault, how: str) -> None:
        for service in active.plan.services:
            active.down.append(service)
            if how == "kill":
                self.backend.kill(service)
            else:
                self.backend.stop(service, timeout_s=STOP_GRACE_S)
        self._await(active.id, active.plan.services, lambda s: s.state in ("exited", "dead"), SETTLE_TIMEOUT_S,
                    "SIGKILL" if how == "kill" else "a stop")

    def _bring_back(self, active: ActiveFault) -> None:
        for service in active.down:  # in start order: zookeeper, bookies, brokers
            self.backend.start(service)
        self._await(active.id, tuple(active.down), lambda s: s.state == "running" and s.health == "healthy",
                    self.ready_timeout_s, "start", give_up=lambda s: s.state in ("exited", "dead"))
        active.down = []

    def _heal(self, active: ActiveFault) -> None:
        try:
            if active.paused:
                for service in active.paused:
                    self.backend.unpause(service)
                self._await(active.id, tuple(active.paused), lambda s: s.state == "running", SETTLE_TIMEOUT_S,
                            "unpause")
                active.paused = []
            if active.down:
                self._bring_back(active)
            for src, dst, symmetric in list(active.links):
                if active.kind == "latency":
                    self.backend.clear_latency(src, dst, symmetric=symmetric)
                else:
                    self.backend.heal_partition(src, dst, symmetric=symmetric)
                active.links.remove((src, dst, symmetric))
        except FaultError:
            raise
        except GeoReconError as exc:
            raise FaultError(f"fault {active.id} ({active.kind} {active.target}) heal: {exc}") from None

    def _await(self, fault_id: str, services: tuple[str, ...], done: Callable[[ServiceState], bool],
               timeout_s: float, after: str, give_up: Callable[[ServiceState], bool] | None = None) -> None:
        deadline = self._clock() + timeout_s
        while True:
            states = {s.service: s for s in self.backend.status()}
            waiting = [states[s] for s in services if not done(states[s])]
            if not waiting:
                return
            failed = [s for s in waiting if give_up is not None and give_up(s)]
            if failed or self._clock() > deadline:
                s = (failed or waiting)[0]
                detail = s.state + (f" ({s.health})" if s.health else "") + \
                    (f", exit code {s.exit_code}" if s.state == "exited" else "")
                when = f"after {after}" if failed else f"{timeout_s:.0f}s after {after}"
                raise FaultError(f"fault {fault_id}: {s.service} is {detail} {when}; "
                                 f"logs: docker compose -p {self.lab.project} logs {s.service}")
            self._sleep(POLL_S)
