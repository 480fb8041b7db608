"""The obviously-correct batch reconciler: wait for everything, group by transaction, decide.

The streaming engine must agree with this whenever nothing arrives late.
Written for clarity, not speed; it uses no watermark, no order and no state
eviction. ``event_time_ns`` of its verdicts is the transaction's earliest
event time (the streaming engine reports its first *received* one), and
``decided_ns``/``watermark_ns`` are 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from geo_recon.billing.events import BillingEvent
from geo_recon.billing.reconciler import Verdict, VerdictKind


def batch_reconcile(events: Iterable[BillingEvent], systems: Sequence[str]) -> list[Verdict]:
    """Verdicts for every transaction in ``events`` (in order of first appearance)."""
    grouped: dict[str, dict[str, list[BillingEvent]]] = {}
    for event in events:
        per_system = grouped.setdefault(event.txn_id, {})
        copies = per_system.setdefault(event.system, [])
        # A redelivery is an identical copy of an event already seen: keep the first only.
        if not any(c.event_id == event.event_id and c.amount_cents == event.amount_cents
                   and c.event_time_ns == event.event_time_ns for c in copies):
            copies.append(event)
    verdicts: list[Verdict] = []
    for txn_id, per_system in grouped.items():
        # Each system's distinct events by event time (then id): the first is the one whose amount is shown.
        records = [sorted(per_system.get(system, []), key=lambda e: (e.event_time_ns, e.event_id))
                   for system in systems]
        amounts = tuple(r[0].amount_cents if r else None for r in records)
        first_time = min(e.event_time_ns for r in records for e in r)
        found: list[Verdict] = []
        for system, r in zip(systems, records):
            if not r:
                found.append(Verdict(VerdictKind.MISSING, txn_id, system, (), amounts, first_time, 0, 0))
        for system, r in zip(systems, records):
            if len(r) > 1:
                found.append(Verdict(VerdictKind.DUPLICATE, txn_id, system, tuple(e.event_id for e in r), amounts,
                                     first_time, 0, 0))
        every = [e.amount_cents for r in records for e in r]
        if len(set(every)) > 1:
            counts = Counter(every)
            majority = next(a for a in every if counts[a] == max(counts.values()))
            odd = next(system for system, r in zip(systems, records) if any(e.amount_cents != majority for e in r))
            found.append(Verdict(VerdictKind.MISMATCHED, txn_id, odd, (), amounts, first_time, 0, 0))
        verdicts.extend(found or [Verdict(VerdictKind.MATCHED, txn_id, None, (), (), first_time, 0, 0)])
    return verdicts


def outcomes(verdicts: Iterable[Verdict]) -> list[tuple[object, ...]]:
    """The order-independent content of verdicts, sorted: what two correct runs must agree on.

    Kind, transaction, system, the duplicate's event ids (as a set) and the
    amounts; not the times, which depend on when events were received.
    """
    return sorted(
        (str(v.kind), v.txn_id, v.system or "", tuple(sorted(v.event_ids)), tuple(-1 if a is None else a for a in v.amounts))
        for v in verdicts
    )
