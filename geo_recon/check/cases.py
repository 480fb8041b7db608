"""Cases: the data behind each reported anomaly (the words are in :mod:`geo_recon.check.explanations`).

Times are seconds since the run's first event (``*_s``); ``line`` fields cite
the history line (``history/b-c0.jsonl:88``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Sighting:
    """One receipt: who saw it, when, where it is written, and the msg_id (filled from the line)."""

    process: str
    at_s: float
    line: str
    ref: int
    reader: bool = False
    msg_id: str | None = None


@dataclass(frozen=True, slots=True)
class LostCase:
    kind: ClassVar[str] = "lost"
    region: str
    producer: str
    seq: int
    key: str | None
    origin: str
    acked_s: float
    ack_line: str
    #: the other regions that did receive it: (region, first consumer receipt in s, or None if only the reader)
    seen_in: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class StoredNotConsumedCase:
    kind: ClassVar[str] = "stored_not_consumed"
    region: str
    producer: str
    seq: int
    origin: str
    acked_s: float
    ack_line: str
    reader: Sighting


@dataclass(frozen=True, slots=True)
class DuplicateCase:
    kind: ClassVar[str] = "duplicates"
    region: str
    producer: str
    seq: int
    copies: tuple[Sighting, ...]  #: the first sighting of each distinct msg_id


@dataclass(frozen=True, slots=True)
class RedeliveredCase:
    kind: ClassVar[str] = "redelivered"
    region: str
    producer: str
    seq: int
    deliveries: int  #: consumer receipts of the most-delivered msg_id
    sightings: tuple[Sighting, ...]  #: the first few of them


@dataclass(frozen=True, slots=True)
class ReorderedCase:
    kind: ClassVar[str] = "reordered"
    region: str
    process: str
    producer: str
    seq: int
    key: str | None  #: set when ordering is per key (Key_Shared)
    at: Sighting
    after_seq: int
    after: Sighting


@dataclass(frozen=True, slots=True)
class UnexpectedCase:
    kind: ClassVar[str] = "unexpected"
    region: str
    producer: str
    seq: int
    failed_s: float | None  #: None: never invoked
    fail_line: str | None
    first: Sighting


@dataclass(frozen=True, slots=True)
class RecoveredCase:
    kind: ClassVar[str] = "recovered"
    region: str
    producer: str
    seq: int
    outcome: str  #: "info" or "pending" (invoked, never completed)
    invoked_s: float | None
    completed_s: float | None
    first: Sighting


Case = (LostCase | StoredNotConsumedCase | DuplicateCase | RedeliveredCase | ReorderedCase | UnexpectedCase
        | RecoveredCase)


def case_to_json(case: Case) -> dict[str, Any]:
    """A case as plain JSON values (without the explanation)."""
    return {f.name: _plain(getattr(case, f.name)) for f in fields(case)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, Sighting):
        out = {"process": value.process, "at_s": value.at_s, "line": value.line, "msg_id": value.msg_id}
        if value.reader:
            out["reader"] = True
        return out
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
