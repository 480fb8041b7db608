"""Why each exception happened: an injected business error, replication, or nothing known.

The reconciler reports *exceptions* (``mismatched``, ``missing``,
``duplicate`` verdicts) and *late events*. Given the generator's ground truth
and the checker's per-message facts about the reconciling region, every one
gets exactly one label:

- ``business``: it is an injected business error, found (every injected error
  must be found exactly once);
- ``replication_loss``: a ``missing`` event that was acked in its origin region
  but never received in the reconciling region;
- ``replication_lag``: a ``missing`` or ``late`` event that was acked in its
  origin and received in the reconciling region, but later than the
  reconciler's window allowed;
- ``reconciler_lag``: a ``missing`` or ``late`` event that the recording
  consumer in the reconciling region received in time, but the reconciler's
  own subscription delivered too late (by the reconciler's recorded receipt):
  the reconciler's consumption, not replication, is to blame;
- ``replication_duplicate``: a ``late`` event that had already been joined on
  time: the replicator delivered it to the reconciling region a second time
  (as a new message) after the transaction was final and forgotten;
- ``source_unavailable``: a ``missing`` or ``late`` event whose publish was
  never acked in its origin (failed or unknown outcome): the source system
  could not publish, replication is not to blame;
- ``unexplained``: none of the above: a false exception with no cause (a
  reconciler bug, or an anomaly worth investigating).

Matching: an injected ``amount_mismatch`` is found by the transaction's
``mismatched`` verdict; ``missing_payment`` by a ``missing`` verdict for the
error system; ``duplicate_charge`` by a ``duplicate`` verdict for the error
system. An injected error that no verdict found is *missed*; it is *masked* if
a replication fact on the same transaction explains it (the duplicate charge
that was lost in transit cannot be seen), and unexplained otherwise.

Detection data (the dataclasses) is kept apart from the prose (:func:`explain`,
:func:`render`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from geo_recon.billing.events import ErrorKind, InjectedError
from geo_recon.billing.reconciler import Verdict, VerdictKind

Key = tuple[str, str]
"""(system, txn_id): one system's message(s) for one transaction."""


class Label(StrEnum):
    BUSINESS = "business"
    REPLICATION_LOSS = "replication_loss"
    REPLICATION_LAG = "replication_lag"
    REPLICATION_DUPLICATE = "replication_duplicate"
    RECONCILER_LAG = "reconciler_lag"
    SOURCE_UNAVAILABLE = "source_unavailable"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True, slots=True)
class ReplicationFacts:
    """What the checker knows about the reconciling region, per (system, txn_id).

    ``lost``: acked in the origin region, never received in the reconciling region.
    ``late``: acked in the origin region and received in the reconciling region,
    later than the reconciler tolerated (e.g. replication lag above the lateness).
    ``unacked``: the publish never got an ack in the origin (``fail`` or ``info``).
    Keys absent from all three were received in time, as far as the checker knows.
    """

    lost: frozenset[Key] = frozenset()
    late: frozenset[Key] = frozenset()
    unacked: frozenset[Key] = frozenset()
    duplicated: frozenset[Key] = frozenset()
    """Stored more than once in the reconciling region (distinct message ids): re-sent by replication."""
    reconciler_late: frozenset[Key] = frozenset()
    """In time for the recording consumer, too late by the reconciler's own recorded receipt."""

    def cause(self, key: Key) -> Label | None:
        if key in self.lost:
            return Label.REPLICATION_LOSS
        if key in self.late:
            return Label.REPLICATION_LAG
        if key in self.reconciler_late:
            return Label.RECONCILER_LAG
        if key in self.unacked:
            return Label.SOURCE_UNAVAILABLE
        return None

    def on_transaction(self, txn_id: str) -> tuple[tuple[Label, Key], ...]:
        """Every fact about one transaction (linear; only used for the few missed errors)."""
        found: list[tuple[Label, Key]] = []
        for label, keys in ((Label.REPLICATION_LOSS, self.lost), (Label.REPLICATION_LAG, self.late),
                            (Label.RECONCILER_LAG, self.reconciler_late), (Label.SOURCE_UNAVAILABLE, self.unacked)):
            found.extend((label, k) for k in sorted(keys) if k[1] == txn_id)
        return tuple(found)


_FINDS = {
    ErrorKind.AMOUNT_MISMATCH: VerdictKind.MISMATCHED,
    ErrorKind.MISSING_PAYMENT: VerdictKind.MISSING,
    ErrorKind.DUPLICATE_CHARGE: VerdictKind.DUPLICATE,
}
_EXCEPTIONS = frozenset({VerdictKind.MISMATCHED, VerdictKind.MISSING, VerdictKind.DUPLICATE})


@dataclass(frozen=True, slots=True)
class LabelledException:
    """One exception or late event, with its label and what justified it."""

    verdict: Verdict
    label: Label
    injected: InjectedError | None = None
    """business: the injected error this verdict found."""


@dataclass(frozen=True, slots=True)
class MissedError:
    """An injected error that no verdict found."""

    error: InjectedError
    masked_by: tuple[tuple[Label, Key], ...]
    """Replication facts on the same transaction that explain the miss; empty: unexplained."""


@dataclass(frozen=True, slots=True)
class Classification:
    """Counts, and the first cases of each label, for a report."""

    transactions: int
    """Transactions with a final verdict (late events excluded)."""
    matched: int
    exceptions: dict[str, int]
    """Exceptions (mismatched, missing, duplicate) per label."""
    exceptions_by_kind: dict[str, dict[str, int]]
    """label -> verdict kind -> count."""
    late_events: dict[str, int]
    """Late events per label."""
    injected: int
    found: int
    found_more_than_once: tuple[InjectedError, ...]
    missed: tuple[MissedError, ...]
    cases: dict[str, tuple[LabelledException, ...]] = field(default_factory=dict)
    """label -> the first cases (max_cases per label), in verdict order."""

    @property
    def unexplained(self) -> int:
        return (self.exceptions.get(Label.UNEXPLAINED, 0) + self.late_events.get(Label.UNEXPLAINED, 0)
                + sum(1 for m in self.missed if not m.masked_by))

    @property
    def valid(self) -> bool:
        """Every injected error found once (or masked by replication) and no exception without a cause."""
        return self.unexplained == 0 and not self.found_more_than_once


def label_verdicts(verdicts: Iterable[Verdict], injected: Iterable[InjectedError],
                   facts: ReplicationFacts = ReplicationFacts()) -> Iterator[LabelledException]:
    """Label every exception and late event, in verdict order (matched verdicts are skipped)."""
    by_txn: dict[str, list[InjectedError]] = defaultdict(list)
    for err in injected:
        by_txn[err.txn_id].append(err)
    for v in verdicts:
        kind = v.kind
        if kind == VerdictKind.MATCHED:
            continue
        if kind in _EXCEPTIONS:
            err = _finds(v, by_txn.get(v.txn_id, ()))
            if err is not None:
                yield LabelledException(v, Label.BUSINESS, err)
                continue
            cause = facts.cause((v.system or "", v.txn_id)) if kind == VerdictKind.MISSING else None
            yield LabelledException(v, cause or Label.UNEXPLAINED)
        elif kind == VerdictKind.LATE:
            key = (v.system or "", v.txn_id)
            cause = facts.cause(key)
            # A late event was received, so "lost" cannot explain it; a second copy can.
            if cause in (None, Label.REPLICATION_LOSS):
                cause = Label.REPLICATION_DUPLICATE if key in facts.duplicated else Label.UNEXPLAINED
            yield LabelledException(v, cause)
        else:  # pragma: no cover - VerdictKind is closed
            raise ValueError(f"unknown verdict kind {kind!r}")


def _finds(v: Verdict, errors: Iterable[InjectedError]) -> InjectedError | None:
    for err in errors:
        if _FINDS[err.kind] == v.kind and (v.kind == VerdictKind.MISMATCHED or v.system == err.system):
            return err
    return None


def classify(verdicts: Iterable[Verdict], injected: Iterable[InjectedError],
             facts: ReplicationFacts = ReplicationFacts(), *, max_cases: int = 5) -> Classification:
    """Summarise a run: every exception labelled, every injected error found or explained."""
    injected = tuple(injected)
    txns: set[str] = set()
    matched = 0
    found: Counter[InjectedError] = Counter()
    exceptions: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    late: Counter[str] = Counter()
    cases: dict[str, list[LabelledException]] = defaultdict(list)

    def counted(vs: Iterable[Verdict]) -> Iterator[Verdict]:
        nonlocal matched
        for v in vs:
            if v.kind != VerdictKind.LATE:
                txns.add(v.txn_id)
            if v.kind == VerdictKind.MATCHED:
                matched += 1
            yield v

    for case in label_verdicts(counted(verdicts), injected, facts):
        if case.verdict.kind == VerdictKind.LATE:
            late[case.label] += 1
        else:
            exceptions[case.label] += 1
            by_kind[case.label][case.verdict.kind] += 1
        if case.injected is not None:
            found[case.injected] += 1
        if len(cases[case.label]) < max_cases:
            cases[case.label].append(case)
    missed = tuple(MissedError(err, facts.on_transaction(err.txn_id)) for err in injected if err not in found)
    return Classification(
        transactions=len(txns), matched=matched,
        exceptions={str(k): v for k, v in sorted(exceptions.items())},
        exceptions_by_kind={str(k): {str(kk): vv for kk, vv in sorted(c.items())} for k, c in sorted(by_kind.items())},
        late_events={str(k): v for k, v in sorted(late.items())},
        injected=len(injected), found=len(found),
        found_more_than_once=tuple(err for err, n in found.items() if n > 1),
        missed=missed,
        cases={str(k): tuple(v) for k, v in sorted(cases.items())},
    )


# ---------------------------------------------------------------------------------------------
# Prose


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms"


def explain(case: LabelledException) -> str:
    """One sentence on one case."""
    v = case.verdict
    if v.kind == VerdictKind.MISMATCHED:
        what = f"amounts disagree {_amounts(v)} (first odd one: {v.system})"
    elif v.kind == VerdictKind.MISSING:
        what = f"no {v.system} event had arrived when the transaction became final"
    elif v.kind == VerdictKind.DUPLICATE:
        what = f"{v.system} sent {len(v.event_ids)} distinct events (ids {', '.join(map(str, v.event_ids))})"
    elif v.kind == VerdictKind.LATE:
        what = f"{v.system} event {v.event_ids[0]} arrived after the transaction was final"
        if v.watermark_ns >= v.event_time_ns:
            what += f" (its event time is {_ms(v.watermark_ns - v.event_time_ns)} behind the watermark)"
    else:
        what = "all systems agree"
    why = {
        Label.BUSINESS: f"the injected {case.injected.kind if case.injected else 'business'} error, found",
        Label.REPLICATION_LOSS: "acked in its origin region but never received here: replication loss",
        Label.REPLICATION_LAG: "acked in its origin region and received here too late: replication lag",
        Label.RECONCILER_LAG: ("received here in time by the recording consumer, but the reconciler's own "
                               "subscription delivered it too late: reconciler lag"),
        Label.REPLICATION_DUPLICATE: ("it had already been joined on time; replication delivered it here a second "
                                      "time (stored twice): a replication duplicate"),
        Label.SOURCE_UNAVAILABLE: ("its publish was never acked in the origin region, or acked too late: "
                               "the source was unavailable"),
        Label.UNEXPLAINED: ("no injected error and no replication fact explains it: "
                            "a reconciler bug or an anomaly to investigate"),
    }[case.label]
    return f"{v.txn_id}: {v.kind}: {what}; {why}."


def _amounts(v: Verdict) -> str:
    return "(" + ", ".join("-" if a is None else str(a) for a in v.amounts) + ")"


def explain_missed(missed: MissedError) -> str:
    err = missed.error
    if not missed.masked_by:
        return (f"{err.txn_id}: the injected {err.kind} ({err.system}) was not reported, "
                "and no replication fact explains why: a reconciler bug.")
    causes = "; ".join(f"{system} {label}" for label, (system, _txn) in missed.masked_by)
    return f"{err.txn_id}: the injected {err.kind} ({err.system}) could not be seen: masked by {causes}."


def render(summary: Classification) -> list[str]:
    """A short human summary: counts, then the first cases of each label."""
    lines = [
        f"transactions {summary.transactions}: matched {summary.matched}, "
        f"exceptions {sum(summary.exceptions.values())}, late events {sum(summary.late_events.values())}",
        f"injected business errors: {summary.found}/{summary.injected} found"
        + (f", {len(summary.missed)} missed" if summary.missed else "")
        + (f", {len(summary.found_more_than_once)} found more than once" if summary.found_more_than_once else ""),
    ]
    for label in Label:
        n, late = summary.exceptions.get(label, 0), summary.late_events.get(label, 0)
        if n or late:
            kinds = ", ".join(f"{k} {c}" for k, c in summary.exceptions_by_kind.get(label, {}).items())
            lines.append(f"  {label}: {n} exceptions" + (f" ({kinds})" if kinds else "") + f", {late} late events")
    for label, cases in summary.cases.items():
        for case in cases:
            lines.append(f"    [{label}] {explain(case)}")
    for m in summary.missed[:5]:
        lines.append(f"    [missed] {explain_missed(m)}")
    lines.append("valid" if summary.valid else f"NOT valid: {summary.unexplained} unexplained")
    return lines
