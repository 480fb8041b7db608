"""A simulated canary: the event stream of N regions publishing at a fixed rate, with faults. Pure.

Used by the soak benchmark (``geo-recon canary bench``) and the unit tests: it
yields exactly the calls the real canary makes on the checker, in processing
order, faster than real time, and knows the ground truth (what was dropped,
duplicated, delayed) to hold the checker's counts to.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

SEC = 1_000_000_000
MS = 1_000_000


@dataclass(frozen=True)
class SimSpec:
    regions: tuple[str, ...] = ("a", "b")
    rate: float = 1000.0
    """Messages per second per region."""
    seconds: float = 3600.0
    ack_ms: float = 2.0
    local_ms: float = 3.0
    """Delivery in the origin region after the send."""
    remote_ms: float = 40.0
    jitter_ms: float = 10.0
    partition_every_s: float = 600.0
    """Every so often, deliveries between the first two regions stall..."""
    partition_s: float = 20.0
    """... for this long (below the deadline: late, never lost)."""
    drop_rate: float = 1e-5
    """Deliveries dropped for good (each is one loss)."""
    duplicate_rate: float = 1e-5
    """Deliveries stored twice (a second msg_id)."""
    seed: int = 1
    start_ns: int = 1_800_000_000 * SEC


@dataclass
class Truth:
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    extra: dict[str, int] = field(default_factory=dict)


Event = tuple  # ("s", producer, origin, seq, t) | ("a", producer, seq, t) | ("d", region, producer, seq, msg_id, t)


def events(spec: SimSpec, truth: Truth) -> Iterator[Event]:
    """Every event of the run, in processing-time order."""
    rng = random.Random(spec.seed)
    k = len(spec.regions)
    step = SEC / spec.rate
    total = int(spec.seconds * spec.rate)
    producers = [f"{r}/sim" for r in spec.regions]
    later: list[tuple[int, int, Event]] = []  # (time, tie, event): acks and deliveries still to come
    tie = 0
    part_every = int(spec.partition_every_s * SEC) if spec.partition_every_s > 0 else 0
    part_len = int(spec.partition_s * SEC)
    ack, local, remote, jitter = int(spec.ack_ms * MS), int(spec.local_ms * MS), int(spec.remote_ms * MS), \
        int(spec.jitter_ms * MS)
    push, pop = heapq.heappush, heapq.heappop
    last_at = [0] * (k * k)  # per pair: replication keeps a producer's order, so deliveries never go back
    for i in range(total):
        base = spec.start_ns + int(i * step)
        while later and later[0][0] <= base:
            yield pop(later)[2]
        for o in range(k):
            t = base + o  # the regions' sends a nanosecond apart: a stable order
            producer = producers[o]
            yield ("s", producer, spec.regions[o], i, t)
            truth.sent += 1
            tie += 1
            push(later, (t + ack, tie, ("a", producer, i, t + ack)))
            for r in range(k):
                at = t + (local if r == o else remote + rng.randrange(jitter + 1))
                if part_every and {o, r} == {0, 1}:
                    phase = (at - spec.start_ns) % part_every
                    if phase >= part_every - part_len:  # stalled: delivered at the heal
                        at += part_every - phase + rng.randrange(jitter + 1)
                if at < last_at[o * k + r]:
                    at = last_at[o * k + r]
                last_at[o * k + r] = at
                roll = rng.random()
                if roll < spec.drop_rate:
                    truth.dropped += 1
                    continue
                tie += 1
                msg_id = i * k + o
                push(later, (at, tie, ("d", spec.regions[r], producer, i, msg_id, at)))
                if roll > 1 - spec.duplicate_rate:
                    truth.duplicated += 1
                    tie += 1
                    push(later, (at + MS, tie, ("d", spec.regions[r], producer, i, -msg_id - 1, at + MS)))
    while later:
        yield pop(later)[2]
