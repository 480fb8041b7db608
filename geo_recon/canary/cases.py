"""Cases: the data behind an anomaly the canary found (words in :mod:`geo_recon.canary.explanations`).

The checker keeps the most recent few per kind (bounded), for the log and the
health endpoint; the counts are in its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class LostCase:
    kind: ClassVar[str] = "lost"
    origin: str
    region: str
    producer: str
    seq: int
    acked_ns: int
    deadline_s: float
    seen_in: tuple[str, ...]  #: regions that did deliver it by then


@dataclass(frozen=True, slots=True)
class LateCase:
    kind: ClassVar[str] = "late"
    origin: str
    region: str
    producer: str
    seq: int
    delivered_ns: int
    beyond_horizon: bool  #: older than anything the canary remembers (else: counted lost before)


@dataclass(frozen=True, slots=True)
class DuplicatedCase:
    kind: ClassVar[str] = "duplicated"
    origin: str
    region: str
    producer: str
    seq: int
    first_msg_id: str
    msg_id: str


@dataclass(frozen=True, slots=True)
class ReorderedCase:
    kind: ClassVar[str] = "reordered"
    origin: str
    region: str
    producer: str
    seq: int
    after_seq: int


CanaryCase = LostCase | LateCase | DuplicatedCase | ReorderedCase
