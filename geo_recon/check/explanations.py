"""Words for cases: ``explain(case) -> str``. Nothing here decides anything."""

from __future__ import annotations

from functools import singledispatch

from geo_recon.check.cases import (
    Case,
    DuplicateCase,
    LostCase,
    RecoveredCase,
    RedeliveredCase,
    ReorderedCase,
    Sighting,
    StoredNotConsumedCase,
    UnexpectedCase,
)


def _t(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.3f} s"


def _msg(producer: str, seq: int) -> str:
    return f"{producer} seq {seq}"


def _seen(s: Sighting) -> str:
    who = f"the reader {s.process}" if s.reader else s.process
    mid = f" as msg_id {s.msg_id}" if s.msg_id else ""
    return f"{who} at {_t(s.at_s)}{mid} ({s.line})"


@singledispatch
def explain(case: Case) -> str:
    """One or two sentences a person reads: which producer and seq, acked when, seen where, missing where."""
    raise TypeError(f"not a case: {case!r}")


@explain.register
def _(case: LostCase) -> str:
    key = f" (key {case.key})" if case.key else ""
    head = (f"{_msg(case.producer, case.seq)}{key} was acknowledged in {case.origin} at {_t(case.acked_s)} "
            f"({case.ack_line}) but was never received in {case.region}, by a consumer or the reader")
    if not case.seen_in:
        return head + "; it was received in no region at all."
    seen = ", ".join(f"{r} (first at {_t(t)})" if t is not None else f"{r} (only by the reader)"
                     for r, t in case.seen_in)
    return f"{head}; it was received in {seen}."


@explain.register
def _(case: StoredNotConsumedCase) -> str:
    return (f"{_msg(case.producer, case.seq)}, acknowledged in {case.origin} at {_t(case.acked_s)} "
            f"({case.ack_line}), was never delivered to a consumer in {case.region}; it is stored there: "
            f"seen by {_seen(case.reader)}.")


@explain.register
def _(case: DuplicateCase) -> str:
    copies = "; ".join(_seen(s) for s in case.copies)
    return (f"{_msg(case.producer, case.seq)} is stored {len(case.copies)} times in {case.region} "
            f"(distinct msg_ids): {copies}.")


@explain.register
def _(case: RedeliveredCase) -> str:
    shown = "; ".join(_seen(s) for s in case.sightings)
    more = "" if len(case.sightings) == case.deliveries else f" (first {len(case.sightings)} shown)"
    return (f"{_msg(case.producer, case.seq)} was delivered {case.deliveries} times with the same msg_id "
            f"in {case.region}{more}: {shown}.")


@explain.register
def _(case: ReorderedCase) -> str:
    scope = f" with key {case.key}" if case.key else ""
    return (f"{case.process} in {case.region} received {_msg(case.producer, case.seq)}{scope} at "
            f"{_t(case.at.at_s)} ({case.at.line}) after it had already received seq {case.after_seq} "
            f"from {case.producer} at {_t(case.after.at_s)} ({case.after.line}).")


@explain.register
def _(case: UnexpectedCase) -> str:
    if case.failed_s is None:
        why = f"{case.producer} never invoked seq {case.seq}"
    else:
        why = f"that send failed at {_t(case.failed_s)} ({case.fail_line})"
    return f"{_msg(case.producer, case.seq)} was received in {case.region} by {_seen(case.first)}, but {why}."


@explain.register
def _(case: RecoveredCase) -> str:
    if case.outcome == "info":
        how = f"ended with an unknown outcome (info at {_t(case.completed_s)})"
    else:
        how = f"was invoked at {_t(case.invoked_s)} and never completed"
    return (f"{_msg(case.producer, case.seq)} {how}, and was received in {case.region} by "
            f"{_seen(case.first)}: it did happen (not a violation).")
