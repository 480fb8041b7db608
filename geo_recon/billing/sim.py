"""Pure simulation of delivery to the reconciling region, and drivers for the reconciler.

Used by the property tests and the benchmark; the real thing is Pulsar. An
event published at ``event_time`` reaches the reconciling region at
``event_time + transport.delay_ms + U(0, transport.jitter_ms)`` (its system's
transport: replication from the origin region, or nothing for a local system).
On top of that, chosen events can be *lost* (never delivered), *delayed* by an
extra amount (late replication) or *redelivered* (a second identical copy);
the simulation reports those as the :class:`ReplicationFacts` a checker would.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from geo_recon.billing.classify import ReplicationFacts
from geo_recon.billing.events import BillingEvent, BillingSpec, _raw
from geo_recon.billing.reconciler import ReadPlanner, Reconciler, Record, Verdict

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Transport:
    """How one system's events travel to the reconciling region."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Delivery:
    arrivals: tuple[tuple[int, BillingEvent], ...]
    """(arrival_ns, event), sorted by arrival time."""
    facts: ReplicationFacts


def deliver(events: Iterable[BillingEvent], *, transport: Mapping[str, Transport] | None = None, seed: int = 0,
            lose: Iterable[Key] = (), delay_ms: Mapping[Key, float] | None = None,
            redeliver: Mapping[Key, float] | None = None) -> Delivery:
    """Deliver events to the reconciling region.

    ``lose``: keys (system, txn_id) never delivered. ``delay_ms``: extra delay
    per key. ``redeliver``: keys delivered a second time, that many ms after
    the first copy.
    """
    transport = transport or {}
    delay_ms = delay_ms or {}
    redeliver = redeliver or {}
    lost = frozenset(lose)
    rng = random.Random(seed)
    arrivals: list[tuple[int, int, BillingEvent]] = []
    seen: set[Key] = set()
    for n, e in enumerate(events):
        tr = transport.get(e.system, Transport())
        u = rng.random()  # drawn for every event, so the other events do not move when one is lost
        key = (e.system, e.txn_id)
        seen.add(key)
        if key in lost:
            continue
        arrival = e.event_time_ns + round((tr.delay_ms + u * tr.jitter_ms + delay_ms.get(key, 0.0)) * 1e6)
        arrivals.append((arrival, n, e))
        if key in redeliver:
            arrivals.append((arrival + round(redeliver[key] * 1e6), n, e))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    facts = ReplicationFacts(lost=lost & seen, late=frozenset(k for k, d in delay_ms.items() if d > 0) & seen)
    return Delivery(tuple((a, e) for a, _n, e in arrivals), facts)


def drive(reconciler: Reconciler, arrivals: Iterable[tuple[int, BillingEvent]], *,
          finish: bool = True, until_ns: int | None = None) -> list[Verdict]:
    """Offer events in arrival order as a worker would, ticking at every idle-check deadline that
    passes between two arrivals (and, after the last, up to ``until_ns``). Then ``finish``.
    Returns every verdict, in the order they became final."""
    verdicts: list[Verdict] = []
    now = None

    def tick_until(t: int) -> None:
        deadline = reconciler.next_deadline_ns()
        while deadline is not None and deadline < t:
            reconciler.tick(deadline)
            deadline = reconciler.next_deadline_ns()

    for arrival, event in arrivals:
        tick_until(arrival)
        reconciler.offer(event, arrival)
        verdicts.extend(reconciler.drain())
        now = arrival
    if until_ns is not None:
        tick_until(until_ns)
        reconciler.tick(until_ns)
        now = until_ns
        verdicts.extend(reconciler.drain())
    if finish:
        reconciler.finish(now)
        verdicts.extend(reconciler.drain())
    return verdicts


@dataclass(slots=True)
class PacedRun:
    """What a paced run produced and how much the engine held at worst."""

    verdicts: list[Verdict] = field(default_factory=list)
    peak_open: int = 0
    """The most open transactions seen after any read."""
    reads: int = 0
    paused_steps: int = 0
    """Steps at which the planner paused at least one system."""


def run_paced(reconciler: Reconciler, planner: ReadPlanner | None,
              arrivals: Sequence[tuple[int, BillingEvent]], *, batch: int = 16) -> PacedRun:
    """Consume per-system topics the way a worker would, letting the planner choose what to read.

    Each system's events queue up in its topic from their arrival time on.
    At every step the planner (or, without one, "read whatever is there,
    laggard first") picks a system; up to ``batch`` available events are read
    from it at the current time. When nothing readable is available, time
    jumps to the next arrival or idle deadline.
    """
    names = reconciler.systems
    queues: dict[str, list[tuple[int, BillingEvent]]] = {n: [] for n in names}
    for a, e in arrivals:
        queues[e.system].append((a, e))
    heads = {n: 0 for n in names}
    result = PacedRun()
    now = min((a for a, _e in arrivals), default=0)
    # Past this, something holds reading back forever (a bug: the planner or the idle rule).
    give_up = max((a for a, _e in arrivals), default=0) + 10 * reconciler.idle_ns + 10**9
    reconciler.tick(now)
    remaining = len(arrivals)
    while remaining:
        if now > give_up:
            raise RuntimeError(f"paced run stuck with {remaining} events unread: the planner never lets them in")
        snap = reconciler.flow_snapshot()
        if planner is None:
            order, paused = tuple(names), frozenset[str]()
        else:
            plan = planner.plan(snap)
            order, paused = plan.order, plan.paused
            result.paused_steps += bool(paused)
        reconciler.set_paused(paused, now)
        for name in order:
            q, h = queues[name], heads[name]
            if h < len(q) and q[h][0] <= now:
                end = h
                while end < len(q) and end - h < batch and q[end][0] <= now:
                    end += 1
                reconciler.offer_many(reconciler.record(e, now) for _a, e in q[h:end])
                heads[name] = end
                remaining -= end - h
                result.reads += 1
                break
        else:
            upcoming = [queues[n][heads[n]][0] for n in order if heads[n] < len(queues[n])]
            deadline = reconciler.next_deadline_ns()
            candidates = [t for t in (*upcoming, deadline) if t is not None and t > now]
            now = min(candidates) if candidates else now + 1_000_000
            reconciler.tick(now)
        result.verdicts.extend(reconciler.drain())
        result.peak_open = max(result.peak_open, reconciler.open_transactions())
    reconciler.finish(now)
    result.verdicts.extend(reconciler.drain())
    return result


def arrival_records(spec: BillingSpec, *, transport: Mapping[str, Transport] | None = None,
                    seed: int = 0) -> Iterator[Record]:
    """The engine records of a whole run in arrival order, lazily (the benchmark's input).

    Memory is bounded by the events in flight (the widest delay), not the run length.
    """
    transport = transport or {}
    names = spec.system_names
    trans = [transport.get(n, Transport()) for n in names]
    base = [round(t.delay_ms * 1e6) for t in trans]
    jit = [t.jitter_ms * 1e6 for t in trans]
    rng = random.Random(seed)
    rand = rng.random
    floor = min(round(s.delay_ms * 1e6) + b for s, b in zip(spec.systems, base))
    pending: list[tuple[int, int, Record]] = []
    push, pop = heapq.heappush, heapq.heappop
    for _i, txn_id, t0, _amount, _kind, raw in _raw(spec):
        for j, a, eid, t in raw:
            arr = t + base[j] + int(rand() * jit[j])
            push(pending, (arr, eid, (txn_id, j, a, eid, t, arr)))
        bound = t0 + floor
        while pending and pending[0][0] <= bound:
            yield pop(pending)[2]
    while pending:
        yield pop(pending)[2]
