"""Where clusters come from: the ``Backend`` protocol, and what else a backend can do.

A backend brings clusters up (or connects to existing ones), says where they
answer (a ``Deployment``), reports on them and tears down what it started.
Everything else is an optional capability, one small protocol each, in the
manner of Jepsen's ``Kill``/``Pause``/``Net``: a backend has the ones it can
do, and the fault driver checks them with ``isinstance`` before a run starts,
so a scenario that needs one its backend lacks is refused before anything is
created.

Applying a fault takes the fault's id (what heals it later) and its parameters
(``faults.spec.FaultSpec`` has them; this layer only reads them), verifies that
it took effect and returns what it measured, for the history; the paired method
undoes it by id and verifies that too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from geo_recon.deployment import Deployment

Progress = Callable[[str], None]
Measured = dict[str, Any]


class FaultParams(Protocol):
    """What a fault says (read only): the fields of ``faults.spec.FaultSpec`` a backend acts on."""

    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def groups(self) -> list[list[str]] | None: ...
    @property
    def one_way(self) -> bool: ...
    @property
    def between(self) -> list[str] | None: ...
    @property
    def rtt_ms(self) -> float | None: ...
    @property
    def jitter_ms(self) -> float: ...
    @property
    def rate_kbps(self) -> int | None: ...

    def describe(self) -> str: ...


class Backend(Protocol):
    """Clusters in several regions that a run can use."""

    name: str  # "local", "compose", "external": for messages and run.json
    started: bool  # ``up`` started something, which ``down`` takes down (never so for existing clusters)

    def up(self, progress: Progress, workdir: Path) -> Deployment:
        """Start the clusters (or check the existing ones) and say where they answer. ``workdir`` is the
        run directory: where a backend keeps what it generates (a rendered compose project)."""
        ...

    def down(self, progress: Progress) -> None:
        """Tear down what ``up`` started; nothing for clusters this tool did not start."""
        ...

    def status(self) -> Sequence[Any]:
        """The state of every component this backend knows of."""
        ...

    def deployment(self) -> Deployment:
        """Where the clusters answer (after ``up``)."""
        ...

    def keep_logs(self, run_dir: Path, progress: Progress) -> None:
        """Copy what is lost once the clusters are gone (component logs) into the run directory."""
        ...

    def left_running(self) -> str:
        """What to say when a run leaves the clusters up (``--keep-lab``): how to take them down."""
        ...

    def versions(self) -> dict[str, str]:
        """Tool versions this backend depends on, for resolved.json."""
        ...


@runtime_checkable
class Killable(Protocol):
    """Kill (SIGKILL), stop (SIGTERM) or restart a region's or a component's processes; start them again."""

    def kill(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def start(self, fault_id: str) -> None: ...


@runtime_checkable
class Pausable(Protocol):
    """Freeze processes (SIGSTOP, ``docker pause``) and let them go on."""

    def pause(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def resume(self, fault_id: str) -> None: ...


@runtime_checkable
class Partitionable(Protocol):
    """Cut the network between groups of sites (``partition``) or around one (``isolate``); heal it."""

    def partition(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def heal(self, fault_id: str) -> None: ...


@runtime_checkable
class Shapable(Protocol):
    """Slow the links between regions: added round-trip time or a bandwidth limit; take it off again."""

    shapes: frozenset[str]  # which of "latency", "bandwidth" this backend can do

    def latency(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def bandwidth(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def unshape(self, fault_id: str) -> None: ...


@runtime_checkable
class Destroyable(Protocol):
    """Lose a region for good (its disks too): what a real region loss is; optionally rebuild it empty.

    ``destroy`` kills every process of the region (``fault.target``), deletes its data and verifies both;
    what it returns carries ``killed_at_ns`` (the moment of the kill) and what was verified. Nothing undoes
    it: the backend's teardown removes whatever is left. ``rebuild`` starts a new, empty region of the same
    name and returns once it answers (the scheme's rejoining is the caller's)."""

    def destroy(self, fault_id: str, fault: FaultParams) -> Measured: ...

    def rebuild(self, fault_id: str) -> Measured: ...


@runtime_checkable
class Sweepable(Protocol):
    """Undo whatever a dead controller's faults left behind (found by name, not by memory)."""

    def sweep(self, progress: Progress) -> list[str]: ...


@runtime_checkable
class ConfiguresInside(Protocol):
    """The scheme is applied and verified from inside the lab's network (peers are reached by inner names)."""

    def configure_inside(self, scheme: str, settings_args: list[str], progress: Progress) -> list[dict[str, Any]]:
        """Apply, then verify; the read-back checks as ``schemes.Check`` fields."""
        ...


CAPABILITIES: dict[str, type] = {"kill": Killable, "stop": Killable, "restart": Killable, "pause": Pausable,
                                 "partition": Partitionable, "isolate": Partitionable,
                                 "latency": Shapable, "bandwidth": Shapable, "lose": Destroyable}


def capability_names(backend: object) -> list[str]:
    """The capability protocols ``backend`` has, by name (for messages)."""
    return [p.__name__ for p in (Killable, Pausable, Partitionable, Shapable, Destroyable) if isinstance(backend, p)]


class AppliesFaults:
    """Every process and network capability as one ``_apply`` and one ``_undo``, which a backend's fault
    mechanics define (``LocalFaults``, ``ComposeFaults``; a backend hands on to its mechanics the same way)."""

    shapes: frozenset[str] = frozenset({"latency", "bandwidth"})

    def _apply(self, fault_id: str, fault: FaultParams) -> Measured:
        raise NotImplementedError

    def _undo(self, fault_id: str) -> None:
        raise NotImplementedError

    def kill(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._apply(fault_id, fault)

    def pause(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._apply(fault_id, fault)

    def partition(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._apply(fault_id, fault)

    def latency(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._apply(fault_id, fault)

    def bandwidth(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._apply(fault_id, fault)

    def start(self, fault_id: str) -> None:
        self._undo(fault_id)

    def resume(self, fault_id: str) -> None:
        self._undo(fault_id)

    def heal(self, fault_id: str) -> None:
        self._undo(fault_id)

    def unshape(self, fault_id: str) -> None:
        self._undo(fault_id)


class TracksFaults(AppliesFaults):
    """Fault mechanics that keep what they applied in ``active`` (by fault id) and heal it from there."""

    active: dict[str, Any]

    def _heal(self, active: Any) -> None:
        raise NotImplementedError

    def _recorded(self) -> None:
        """``active`` changed: persist it where a later controller finds it (if the mechanics do that)."""

    def _undo(self, fault_id: str) -> None:
        active = self.active.get(fault_id)
        if active is None:
            return
        self._heal(active)
        self.active.pop(fault_id, None)
        self._recorded()


class DelegatesFaults(AppliesFaults):
    """A backend whose capabilities are its fault mechanics' (``_mechanics``)."""

    def _mechanics(self) -> AppliesFaults:
        raise NotImplementedError

    def _apply(self, fault_id: str, fault: FaultParams) -> Measured:
        return self._mechanics()._apply(fault_id, fault)

    def _undo(self, fault_id: str) -> None:
        self._mechanics()._undo(fault_id)


def undo_each(active: dict[str, Any], undo: Callable[[Any], None], errors: tuple[type[BaseException], ...],
              progress: Progress) -> list[str]:
    """Undo every still-active fault (unrecorded: the driver records what it heals); one that fails is
    reported and dropped, so the others are still undone. The ids undone."""
    undone = []
    for fault_id in list(active):
        try:
            undo(active[fault_id])
            undone.append(fault_id)
        except errors as exc:
            progress(f"healing {fault_id} failed: {exc}")
        finally:
            active.pop(fault_id, None)
    return undone


def fault_target(fault: FaultParams) -> str:
    """A fault's target as the history names it (as ``ScheduledFault.target``)."""
    if fault.groups:
        return ("->" if fault.one_way else "|").join(",".join(g) for g in fault.groups)
    if fault.between:
        return "<->".join(fault.between)
    return fault.target or "*"
