"""The one fault driver: a pure schedule (``spec.expand``) mapped onto what the backend can do.

Process and network faults go to the backend's capabilities (``deploy.base``:
Killable, Pausable, Partitionable, Shapable); ``command`` and admin-API faults
(``replication``, ``unload``) work on every backend and are run here. ``refuse_unsupported``
turns a fault the backend cannot do into a ``ConfigError`` before anything
starts. Every fault is recorded in the controller's history when it takes
effect (with what was measured) and when it is healed; ``drive`` heals
whatever is still active in ``finally``, then lets the backend sweep what a
dead controller may have left.

A ``lose`` fault (``Destroyable``) is never healed: its start line carries what
was verified; with ``rebuild_at_s`` the backend starts a new, empty region, the
``rejoin`` hook puts it back into the scheme, and a stop line says ``rebuilt``
once it accepts clients. Without a rebuild there is no stop line at all: the
teardown after the run removes what is left and writes nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from geo_recon.deploy.base import CAPABILITIES, Backend, Destroyable, Shapable, Sweepable, capability_names
from geo_recon.deployment import Deployment
from geo_recon.errors import ConfigError, FaultError, GeoReconError
from geo_recon.faults import admin_faults
from geo_recon.faults.command import CommandFault
from geo_recon.faults.spec import (ADMIN_KINDS, DEGRADATION_KINDS, DESTROY_KINDS, INSTANT_KINDS, ScheduledFault,
                                   fault_event, heal_each)
from geo_recon.probe import round_trip

EventSink = Callable[[dict[str, Any]], None]
Rejoin = Callable[[str], "dict[str, Any] | None"]  # a rebuilt region's name -> put back into the scheme,
# verified; what it had to do for that goes into the stop line

# kind -> (the backend's method that applies it, the one that undoes it)
_METHODS = {"kill": ("kill", "start"), "stop": ("kill", "start"), "restart": ("kill", "start"),
            "pause": ("pause", "resume"), "partition": ("partition", "heal"), "isolate": ("partition", "heal"),
            "latency": ("latency", "unshape"), "bandwidth": ("bandwidth", "unshape")}


def refuse_unsupported(backend: Backend, schedule: Sequence[ScheduledFault], where: str = "") -> None:
    """``ConfigError`` naming the first fault the backend cannot do (before anything starts)."""
    for fault in schedule:
        kind = fault.spec.kind
        capability = CAPABILITIES.get(kind)
        if capability is None:  # command and admin faults: every backend
            continue
        if not isinstance(backend, capability) or (capability is Shapable and kind not in backend.shapes):
            has = ", ".join(capability_names(backend)) or "none of them"
            raise ConfigError(f"{where}fault {fault.id} ({fault.spec.describe()}): the {backend.name} backend cannot "
                              f"do {kind} faults (capabilities: {has}; every backend has command and admin faults)")


@dataclass
class ActiveFault:
    id: str
    kind: str
    target: str
    undo: Callable[[], None]


class FaultDriver:
    """Inject scheduled faults through a backend, record each, heal each, and heal everything at the end."""

    def __init__(self, backend: Backend, *, regions: list[str], namespace: str, on_event: EventSink | None = None,
                 progress: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 deployment: Deployment | None = None, rejoin: Rejoin | None = None) -> None:
        self.backend = backend
        self.regions = regions
        self.namespace = namespace  # tenant/namespace of the run: what admin faults act on
        self.on_event = on_event or (lambda _e: None)
        self.progress = progress or (lambda _m: None)
        self._clock = clock
        self._deployment = deployment
        self._rejoin = rejoin
        self.active: dict[str, ActiveFault] = {}
        self.lost: dict[str, str] = {}  # lose fault id -> region, until rebuilt (never "healed")
        self.recover_from_ns: dict[str, int] = {}  # fault id -> when its clients could start to recover (verified)

    def _target(self) -> Deployment:
        if self._deployment is None:
            self._deployment = self.backend.deployment()
        return self._deployment

    def _plan(self, fault: ScheduledFault) -> tuple[Callable[[], dict[str, Any]], Callable[[], None]]:
        """How to apply the fault, and how to undo it (known before it is applied, so that a fault that
        fails half-way is still undone)."""
        spec = fault.spec
        if spec.kind == "command":
            assert spec.command is not None  # the spec's validator sees to it
            command = CommandFault(fault.id, spec.command, secrets=self._target().secrets, progress=self.progress)
            return command.inject, command.heal
        if spec.kind == "unload":
            reload = admin_faults.Unload(self._target(), self.namespace, spec.target or "", fault.id,
                                         whole_namespace=spec.scope == "namespace")
            return reload.apply, reload.restore
        if spec.kind in ADMIN_KINDS:
            cut = admin_faults.ReplicationCut(self._target(), self.namespace, spec.target or "", fault.id)
            return cut.apply, cut.restore
        apply_name, undo_name = _METHODS[spec.kind]
        apply, undo = getattr(self.backend, apply_name, None), getattr(self.backend, undo_name, None)
        if apply is None or undo is None:
            raise FaultError(f"{fault.id} ({spec.describe()}): the {self.backend.name} backend cannot do {spec.kind}")
        return (lambda: apply(fault.id, spec)), (lambda: undo(fault.id))

    def inject(self, fault: ScheduledFault) -> None:
        spec = fault.spec
        if spec.kind in DESTROY_KINDS:
            self._lose(fault)
            return
        started = self._clock()
        apply, undo = self._plan(fault)
        self.active[fault.id] = ActiveFault(fault.id, spec.kind, fault.target, undo)  # healed even if apply fails
        measured = apply()
        self.on_event(fault_event("start", fault, self.regions, **({"measured": measured} if measured else {})))
        self.progress(f"{fault.id} {spec.describe()}: in effect (verified in {self._clock() - started:.1f}s)")
        if spec.kind in INSTANT_KINDS:  # a restart or an unload is over once injected
            self.active.pop(fault.id, None)
            self._stopped(fault, fault_event("stop", fault, self.regions))

    def _stopped(self, fault: ScheduledFault, line: dict[str, Any]) -> None:
        """Record a fault's stop line; clients may start to recover from its time on."""
        self.on_event(line)
        self.recover_from_ns[fault.id] = line["time"]

    def recover_from_s(self, schedule: Sequence[ScheduledFault], start_at_ns: int) -> dict[str, float | None]:
        """By id of each scheduled fault that stops clients: when its clients could start to recover as it
        really happened (its verified heal or rebuild; a loss never rebuilt: the loss itself), seconds since
        ``start_at_ns``; None while that has not happened yet."""
        return {f.id: None if (at := self.recover_from_ns.get(f.id)) is None else round((at - start_at_ns) / 1e9, 3)
                for f in schedule if f.spec.kind not in DEGRADATION_KINDS}

    def _destroyer(self, fault: ScheduledFault) -> Destroyable:
        if not isinstance(self.backend, Destroyable):
            raise FaultError(f"{fault.id} ({fault.spec.describe()}): the {self.backend.name} backend cannot "
                             "lose a region")
        return self.backend

    def _lose(self, fault: ScheduledFault) -> None:
        """Destroy the region; the start line is stamped with the moment of the kill and says what was verified."""
        started = self._clock()
        region = fault.spec.target or ""
        self.lost[fault.id] = region  # from here on it is lost, even if the verification fails
        measured = dict(self._destroyer(fault).destroy(fault.id, fault.spec))
        killed_at_ns = measured.pop("killed_at_ns", None)
        line = fault_event("start", fault, self.regions, verified=measured)
        if killed_at_ns is not None:
            line["time"] = killed_at_ns
        self.on_event(line)
        if not fault.heals:  # lost for good: its clients must fail over from the loss on
            self.recover_from_ns[fault.id] = line["time"]
        self.progress(f"{fault.id} {fault.spec.describe()}: in effect (verified in {self._clock() - started:.1f}s)")

    def _rebuild(self, fault: ScheduledFault) -> None:
        """A new, empty region in the lost one's place; the stop line once it rejoined and accepts clients."""
        started = self._clock()
        region = self.lost[fault.id]
        measured = dict(self._destroyer(fault).rebuild(fault.id))
        if self._rejoin is not None:
            measured.update(self._rejoin(region) or {})
        service_url = self._target().region(region).service_url
        try:  # "accepts clients": a message produced and consumed there
            measured["round_trip_ms"] = round(round_trip(service_url, timeout=120), 1)
        except Exception as exc:  # noqa: BLE001 - the client's errors are not ours
            raise FaultError(f"{fault.id}: rebuilt region {region} does not accept clients on {service_url}: "
                             f"{exc}") from None
        self.lost.pop(fault.id, None)
        self._stopped(fault, fault_event("stop", fault, self.regions, rebuilt=True, measured=measured))
        self.progress(f"{fault.id} region {region} rebuilt empty and rejoined "
                      f"(in {self._clock() - started:.1f}s)")

    def heal(self, fault: ScheduledFault) -> None:
        if fault.id in self.lost:
            if fault.heals:  # rebuild_at_s
                self._rebuild(fault)
            return
        active = self.active.get(fault.id)
        if active is None:
            return
        started = self._clock()
        active.undo()
        self.active.pop(fault.id, None)
        self._stopped(fault, fault_event("stop", fault, self.regions))
        self.progress(f"{fault.id} {fault.spec.describe()}: healed (verified in {self._clock() - started:.1f}s)")

    def heal_all(self) -> list[str]:
        """Heal what is still active (recording each stop), then let the backend sweep what is left."""
        healed = heal_each(self.active, lambda a: a.undo(), self.on_event, self.progress)
        if isinstance(self.backend, Sweepable):
            healed += self.backend.sweep(self.progress)
        return healed


def drive(driver: FaultDriver, schedule: list[ScheduledFault], start_at_ns: int, stop: threading.Event,
          errors: list[str]) -> None:
    """Inject and heal on the schedule (from the workers' common start); heal everything on the way out.
    Any error makes the run undecidable: it is recorded and ``stop`` is set."""
    events = sorted([(f.start_s, 1, "inject", f) for f in schedule] +
                    [(f.stop_s, 0, "heal", f) for f in schedule if f.heals],  # a lost region stays lost
                    key=lambda e: (e[0], e[1]))
    try:
        for at_s, _, action, fault in events:
            wait = start_at_ns / 1e9 + at_s - time.time()
            if wait > 0 and stop.wait(wait):
                return
            try:
                driver.inject(fault) if action == "inject" else driver.heal(fault)
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the fault is not known to be in effect
                detail = str(exc) if isinstance(exc, GeoReconError) else f"{type(exc).__name__}: {exc}"
                errors.append(f"{fault.id} ({fault.spec.describe()}) {action}: {detail}")
                stop.set()  # a fault that did not take effect makes the run undecidable
                return
    finally:
        try:
            driver.heal_all()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"healing: {exc if isinstance(exc, GeoReconError) else f'{type(exc).__name__}: {exc}'}")
