"""The checker's in-memory form of a history: plain numpy columns, no Python objects per event.

A history is normalised into four tables (the columnar copy on disk stores the
same tables, see :mod:`geo_recon.check.columnar`):

* ``Messages``: one row per distinct (producer, seq) seen on any line, with the
  send's aggregated outcome. Row order is (producer name, seq) for producers
  whose sequence numbers are dense, so within one producer a larger row index
  means a larger seq (the ordering detector relies on this).
* ``Completions``: every ok/fail/info send line (for RTO and rates).
* ``Receipts``: the recv lines of one observing region, ordered by
  (process, time, file order).
* fault lines, as :class:`FaultEvent`; client switches, as :class:`FailoverEvent`.

Names (regions, processes, producers, keys, files) are stored once and
referred to by integer codes; codes follow the sorted names, so nothing depends
on how lines were spread over files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

#: "No time": a send never invoked, a message never received.
NO_TIME = np.iinfo(np.int64).min
#: First-receipt time of a message never received (sorts after every real time).
NEVER = np.iinfo(np.int64).max

FLAG_READER = 1  # bit 0 of Receipts.flags: the receipt came from the end-of-run Reader drain
ORDERING_SHIFT = 1  # bits 1-2: how ordering is promised for this receipt
ORDERED, KEY_ORDERED, UNORDERED = 0, 1, 2
ORDERING_CODES = {"ordered": ORDERED, "key": KEY_ORDERED, "none": UNORDERED}

REF_LINE_BITS = 32  # a line reference is (file index << 32) | line number


class Outcome(IntEnum):
    """What became of one (producer, seq) send, aggregated over its lines."""

    NEVER_INVOKED = 0  #: only seen on recv lines
    PENDING = 1  #: invoked, no completion recorded: outcome unknown, like info
    OK = 2  #: acknowledged (any ok line wins)
    FAIL = 3  #: definitely not sent
    INFO = 4  #: outcome unknown


UNKNOWN_OUTCOMES = (Outcome.PENDING, Outcome.INFO)
NOT_SENT_OUTCOMES = (Outcome.NEVER_INVOKED, Outcome.FAIL)


@dataclass(frozen=True, slots=True)
class Messages:
    """One row per distinct (producer, seq)."""

    producer: np.ndarray  #: int32 producer code
    seq: np.ndarray  #: int64
    origin: np.ndarray  #: int16 region code of the send lines (-1 when never invoked)
    key: np.ndarray  #: int32 key code (-1: no key)
    process: np.ndarray  #: int32 code of the sending process (-1 when never invoked)
    outcome: np.ndarray  #: int8 :class:`Outcome`
    invoke_time: np.ndarray  #: int64 first invoke time, or NO_TIME
    done_time: np.ndarray  #: int64 first ok time if OK, else last fail/info time, or NO_TIME
    done_ref: np.ndarray  #: int64 line reference of that completion, or -1

    def __len__(self) -> int:
        return len(self.outcome)


@dataclass(frozen=True, slots=True)
class Completions:
    """Every ok/fail/info send line."""

    time: np.ndarray  #: int64
    region: np.ndarray  #: int16 origin region code
    outcome: np.ndarray  #: int8 Outcome.OK / FAIL / INFO
    process: np.ndarray  #: int32
    cluster: np.ndarray  #: int16 region code of the cluster that served the send (``cluster``), -1: its home region


@dataclass(frozen=True, slots=True)
class Receipts:
    """The recv lines of one observing region, ordered by (process, time, file order)."""

    msg: np.ndarray  #: int64 row in Messages
    time: np.ndarray  #: int64
    process: np.ndarray  #: int32
    msg_hash: np.ndarray  #: int64 hash of the msg_id string (equal strings, equal hashes)
    flags: np.ndarray  #: int8 FLAG_READER | ordering << ORDERING_SHIFT
    ref: np.ndarray  #: int64 line reference
    subscription: np.ndarray  #: int32 code in History.subscriptions, -1: none named (the process's own)
    cluster: np.ndarray  #: int16 region code of the cluster the consumer was served by, -1: its home region

    def __len__(self) -> int:
        return len(self.msg)


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault line (start or stop)."""

    time: int
    phase: str
    fault: str
    target: str
    id: str
    regions: tuple[str, ...] | None = None
    region_loss: bool | None = None
    process: str | None = None


@dataclass(frozen=True, slots=True)
class InputSummary:
    """What was read, for the result's ``input`` section."""

    source: str  #: the history files' format ("jsonl", "arrow", "jsonl+arrow"), or "columnar" (the copy)
    files: int
    lines: int
    skipped: int = 0
    skipped_examples: tuple[str, ...] = ()
    ignored: Mapping[str, int] = field(default_factory=dict)
    not_read: tuple[str, ...] = ()  #: files under history/ that are not *.jsonl


@dataclass(frozen=True, slots=True)
class FailoverEvent:
    """One ``failover`` line: a client of ``region`` (its home) switched from cluster ``source`` to ``target``."""

    time: int
    region: str
    process: str
    client: str
    role: str  #: "producer" or "consumer"
    source: str  #: the line's ``from``
    target: str  #: the line's ``to``
    mode: str | None = None


ReceiptSource = Callable[[], Receipts]


@dataclass(frozen=True, slots=True)
class History:
    """A whole run, normalised. Receipts are loaded one region at a time (``region_receipts``)."""

    regions: tuple[str, ...]  #: the run.json regions, in run.json order: every message is expected in each
    region_names: tuple[str, ...]  #: every region name (codes index this), sorted
    processes: tuple[str, ...]
    producers: tuple[str, ...]
    keys: tuple[str, ...]
    files: tuple[str, ...]  #: history files, relative to the run directory (line references index this)
    messages: Messages
    completions: Completions
    receipts: tuple[Receipts | ReceiptSource, ...]  #: per region code
    receipt_counts: tuple[int, ...]  #: per region code
    faults: tuple[FaultEvent, ...]
    run: Mapping[str, object]  #: run.json as read
    input: InputSummary
    #: per file, (first line, byte offset) of each chunk read: lets a cited line be found without a full scan
    line_index: tuple[tuple[tuple[int, int], ...], ...] = ()
    subscriptions: tuple[str, ...] = ()  #: subscription names on recv lines (Receipts.subscription indexes this)
    failovers: tuple[FailoverEvent, ...] = ()  #: client switches, in time order

    def region_receipts(self, code: int) -> Receipts:
        source = self.receipts[code]
        return source if isinstance(source, Receipts) else source()

    def region_code(self, name: str) -> int:
        return self.region_names.index(name)

    def ref_text(self, ref: int) -> str:
        """``history/x.jsonl:12`` for a line reference."""
        if ref < 0:
            return "?"
        return f"{self.files[ref >> REF_LINE_BITS]}:{ref & ((1 << REF_LINE_BITS) - 1)}"


def make_ref(file_index: int, line: int) -> int:
    return (file_index << REF_LINE_BITS) | line


def split_ref(ref: int) -> tuple[int, int]:
    return ref >> REF_LINE_BITS, ref & ((1 << REF_LINE_BITS) - 1)
