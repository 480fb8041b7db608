"""One producer's send events as columns: what a recording worker's hot path appends, and what a flush takes.

A producer records two events a message: its ``invoke`` just before the send and its ``ok`` in the client's
callback. Both carry the same constant fields (type, f, region, process, producer; the topic on invokes), so
the hot path appends only what varies, as plain values into per-column arrays: no tuple, dict or lock a
message (measured: a tuple appended under the writer's lock cost 0.3 CPU-us an event, three ``append``
calls 0.1). The ok's message id is kept as the client's object and read at flush, in bulk.

Appends and takes need no lock: each column is appended by one thread (invokes by the producer, oks by the
client's callback thread), the column written last (``time``) says how many events are whole, and a take
copies and deletes that many from the front of each column while appends go on at the end. The writer
takes every log's oks before its invokes, so a flush never holds an ``ok`` whose ``invoke`` is in a later one.

This module is pure (no files); :class:`geo_recon.history.HistoryWriter` takes and writes them.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the fields of a producer's send events, in the order the JSONL lines have always had them
INVOKE_FIELDS = ("type", "f", "region", "process", "producer", "time", "seq", "key", "topic")
OK_FIELDS = ("type", "f", "region", "process", "producer", "time", "seq", "msg_id")


@dataclass(frozen=True, slots=True)
class SendColumns:
    """Events of one kind taken from a log: each field a value for every event (``constant``) or a column."""

    fields: tuple[str, ...]
    constant: dict[str, Any]
    columns: dict[str, Sequence[Any]]
    count: int
    #: columns still to be turned into their history values (the ok's message ids), done by :meth:`resolved`
    pending: dict[str, Callable[[list[Any]], list[Any]]] = field(default_factory=dict)

    def resolved(self) -> SendColumns:
        """The same events with every column in its history value (done at encoding, outside the writer's locks)."""
        if not self.pending:
            return self
        columns = {**self.columns, **{name: convert(list(self.columns[name])) for name, convert in self.pending.items()}}
        return SendColumns(self.fields, self.constant, columns, self.count)

    def rows(self) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        """The events as ``(keys, values)`` (what :meth:`HistoryWriter.append_fields` buffers)."""
        columns = [self.columns[f] if f in self.columns else [self.constant[f]] * self.count for f in self.fields]
        return [(self.fields, values) for values in zip(*columns)]


class SendLog:
    """One producer's invokes and oks, appended on the hot path as plain values and taken at flush.

    Append an invoke as ``invoke_key(key); invoke_seq(seq); invoke_time(now)`` and an ok as
    ``ok_msg_id(msg_id); ok_seq(seq); ok_time(now)``, ``time`` last (bound methods, taken once). ``msg_ids``
    turns the message ids of a take into their history text (``ledger:entry:partition:batch``)."""

    def __init__(self, *, region: str, process: str, producer: str, topic: str,
                 msg_ids: Callable[[list[Any]], list[str]]):
        for name, value in (("region", region), ("process", process), ("producer", producer), ("topic", topic)):
            if type(value) is not str:
                raise TypeError(f"{name} must be a string, got {value!r}")
        self.region, self.process, self.producer, self.topic = region, process, producer, topic
        self._msg_ids = msg_ids
        self._invoke_seq, self._invoke_key, self._invoke_time = array("q"), [], array("q")
        self._ok_seq, self._ok_msg_id, self._ok_time = array("q"), [], array("q")
        self.invoke_seq, self.invoke_key, self.invoke_time = (self._invoke_seq.append, self._invoke_key.append,
                                                              self._invoke_time.append)
        self.ok_seq, self.ok_msg_id, self.ok_time = self._ok_seq.append, self._ok_msg_id.append, self._ok_time.append
        self._count_lock = threading.Lock()  # a take and a count, never the appends
        self._invokes_taken = 0
        self._oks_taken = 0

    def counts(self) -> tuple[int, int]:
        """(invokes, oks) appended so far, taken or not."""
        with self._count_lock:
            return self._invokes_taken + len(self._invoke_time), self._oks_taken + len(self._ok_time)

    def take_oks(self) -> SendColumns | None:
        with self._count_lock:
            n, (times, seqs, ids) = _take_front(self._ok_time, self._ok_seq, self._ok_msg_id)
            self._oks_taken += n
        if not n:
            return None
        return SendColumns(OK_FIELDS, self._constants("ok"), {"time": times, "seq": seqs, "msg_id": ids}, n,
                           {"msg_id": self._msg_ids})

    def take_invokes(self) -> SendColumns | None:
        with self._count_lock:
            n, (times, seqs, keys) = _take_front(self._invoke_time, self._invoke_seq, self._invoke_key)
            self._invokes_taken += n
        if not n:
            return None
        return SendColumns(INVOKE_FIELDS, {**self._constants("invoke"), "topic": self.topic},
                           {"time": times, "seq": seqs, "key": keys}, n)

    def _constants(self, kind: str) -> dict[str, str]:
        return {"type": kind, "f": "send", "region": self.region, "process": self.process, "producer": self.producer}


def _take_front(time: array, *others: list[Any] | array) -> tuple[int, list[Any]]:
    """``(n, copies)``: the first ``n`` values of ``time`` and of each other column, deleted from them, ``n``
    being how many events are whole (``time`` is appended last, so the others hold at least ``n``)."""
    n = len(time)
    columns = (time, *others)
    taken = [column[:n] for column in columns]
    for column in columns:
        del column[:n]
    return n, taken
