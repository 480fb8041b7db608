"""History events as Arrow record batches: the schema, and events <-> batches without loss.

A history file ``*.arrows`` is an Arrow IPC *stream* (schema, then one record
batch per flush, then the end-of-stream marker on a clean close), one row per
event. DESIGN.md's JSONL stays the definition of the events: every field the
format names has a typed column here, and anything else (other fields, a value
of an unexpected type, an explicit ``null``) is kept, as JSON, in the ``extra``
column of its row, so JSONL -> Arrow -> JSONL gives back the same objects.

This module is pure (no files); :mod:`geo_recon.history` writes and reads the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

ARROW_SUFFIX = ".arrows"
EXTRA = "extra"

_STR, _INT, _BOOL, _STRLIST = "str", "int", "bool", "strlist"
#: the typed columns, in the order ``history cat`` prints fields
FIELDS: tuple[tuple[str, str], ...] = (
    ("type", _STR), ("time", _INT), ("f", _STR), ("region", _STR), ("process", _STR), ("producer", _STR),
    ("seq", _INT), ("key", _STR), ("topic", _STR), ("msg_id", _STR), ("via", _STR),
    ("subscription_type", _STR), ("subscription", _STR), ("cluster", _STR), ("redelivery", _INT),
    ("error", _STR),
    ("phase", _STR), ("fault", _STR), ("target", _STR), ("id", _STR), ("regions", _STRLIST),
    ("region_loss", _BOOL), ("rebuilt", _BOOL),
    ("client", _STR), ("role", _STR), ("from", _STR), ("to", _STR), ("mode", _STR),
)
_ARROW_TYPES = {_STR: pa.string(), _INT: pa.int64(), _BOOL: pa.bool_(), _STRLIST: pa.list_(pa.string())}
EVENT_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in FIELDS] + [(EXTRA, pa.string())],
                         metadata={b"geo-recon": b"history events, format 1"})
_KIND = dict(FIELDS)
_KNOWN = frozenset(_KIND)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NONE = type(None)


def _fits(kind: str, value: Any) -> bool:
    if kind == _STR:
        return type(value) is str
    if kind == _INT:
        return type(value) is int and _INT64_MIN <= value <= _INT64_MAX
    if kind == _BOOL:
        return type(value) is bool
    return type(value) is list and all(type(v) is str for v in value)


def _split(event: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the values that go to typed columns, everything else or None)."""
    typed: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in event.items():
        kind = _KIND.get(name)
        if isinstance(value, np.integer) and not isinstance(value, np.bool_):
            value = int(value)
        if kind is not None and _fits(kind, value):
            typed[name] = value
        else:
            extra[name] = value
    return typed, extra or None


def _column(values: list[Any], kind: str) -> pa.Array | None:
    """A typed column, or None when a value is not exactly of the column's JSON type."""
    present = [v for v in values if v is not None] if kind != _STR else None
    if kind == _INT and not set(map(type, present)) <= {int}:  # type: ignore[arg-type]
        return None
    if kind == _BOOL and not set(map(type, present)) <= {bool}:  # type: ignore[arg-type]
        return None
    if kind == _STRLIST and not all(_fits(_STRLIST, v) for v in present):  # type: ignore[union-attr]
        return None
    try:
        return pa.array(values, _ARROW_TYPES[kind])
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None


def _by_shape(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[Any]], np.ndarray | None]:
    """Column values of rows grouped by their keys (a worker writes a few shapes of event, each with its
    fields in one order): transposed in C per group instead of one ``get`` per row and field. Returns the
    columns, group after group, and the permutation that puts the rows back in order (None: already are)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        shape = tuple(row)
        group = groups.get(shape)
        if group is None:
            groups[shape] = group = []
        group.append(i)
    columns: dict[str, list[Any]] = {name: [] for shape in groups for name in shape}
    done = 0
    for shape, indices in groups.items():
        values = zip(*[tuple(rows[i].values()) for i in indices], strict=True)
        for name, column in zip(shape, values, strict=True):
            columns[name].extend([None] * (done - len(columns[name])))
            columns[name].extend(column)
        done += len(indices)
    for column in columns.values():
        column.extend([None] * (done - len(column)))
    if len(groups) == 1:
        return columns, None
    order = np.concatenate([np.asarray(indices, dtype=np.int64) for indices in groups.values()])
    if bool((order[1:] > order[:-1]).all()):
        return columns, None
    back = np.empty_like(order)
    back[order] = np.arange(len(order), dtype=np.int64)
    return columns, back


def encode_batch(events: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """The events as one record batch (lossless: see the module doc)."""
    rows: Sequence[Mapping[str, Any]] = events
    extra: list[str | None] = [None] * len(events)
    odd = [i for i, e in enumerate(events) if not e.keys() <= _KNOWN or None in e.values()]
    for _attempt in range(2):
        if odd:
            rows = list(rows)
            for i in odd:
                typed, rest = _split(events[i])
                rows[i] = typed
                extra[i] = None if rest is None else orjson.dumps(rest, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        values, back = _by_shape(rows)
        columns = []
        for name, kind in FIELDS:
            column = (_column(values[name], kind) if name in values
                      else pa.nulls(len(rows), _ARROW_TYPES[kind]))  # absent from the batch: nothing to build
            if column is None:
                break
            columns.append(column)
        else:
            if back is not None:
                columns = [c.take(back) for c in columns]
            columns.append(pa.array(extra, pa.string()))
            return pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA)
        odd = list(range(len(events)))  # a value of an unexpected type somewhere: check every row
    raise AssertionError("unreachable: every value fits a column or the extra JSON")


def decode_rows(batch: pa.RecordBatch | pa.Table) -> list[dict[str, Any]]:
    """The events of a batch as DESIGN.md's JSON objects (fields absent where the column is null)."""
    out = []
    for row in batch.to_pylist():
        rest = row.pop(EXTRA, None)
        event = {k: v for k, v in row.items() if v is not None}
        if rest is not None:
            event.update(orjson.loads(rest))
        out.append(event)
    return out


def stream_schema_bytes() -> bytes:
    """The bytes a stream starts with (the schema message)."""
    return EVENT_SCHEMA.serialize().to_pybytes()


def batch_bytes(batch: pa.RecordBatch) -> bytes:
    """One record batch as an IPC stream message (what is appended per flush)."""
    return batch.serialize().to_pybytes()


#: written on a clean close; its absence only means the writer did not close (its batches are still whole)
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
