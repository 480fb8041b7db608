"""Words for canary cases: ``explain(case) -> str``. Nothing here decides anything."""

from __future__ import annotations

import time
from functools import singledispatch

from geo_recon.canary.cases import CanaryCase, DuplicatedCase, LateCase, LostCase, ReorderedCase


def _when(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns // 1_000_000 % 1000:03d}Z"


@singledispatch
def explain(case: CanaryCase) -> str:
    raise TypeError(f"not a canary case: {case!r}")


@explain.register
def _(case: LostCase) -> str:
    seen = f"; it was delivered in {', '.join(case.seen_in)}" if case.seen_in else "; no region delivered it"
    return (f"{case.producer} seq {case.seq}, acknowledged in {case.origin} at {_when(case.acked_ns)}, was not "
            f"delivered in {case.region} within the {case.deadline_s:g} s deadline{seen}.")


@explain.register
def _(case: LateCase) -> str:
    why = ("older than anything the canary still remembers" if case.beyond_horizon
           else "after it had been counted lost there")
    return (f"{case.producer} seq {case.seq} from {case.origin} was delivered in {case.region} at "
            f"{_when(case.delivered_ns)}, {why}.")


@explain.register
def _(case: DuplicatedCase) -> str:
    return (f"{case.producer} seq {case.seq} from {case.origin} is stored twice in {case.region}: msg_id "
            f"{case.first_msg_id}, then {case.msg_id}.")


@explain.register
def _(case: ReorderedCase) -> str:
    return (f"{case.region} delivered {case.producer} seq {case.seq} (from {case.origin}) after seq "
            f"{case.after_seq} of the same producer.")
