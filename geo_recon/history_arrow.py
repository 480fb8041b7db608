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

from array import array as array_type
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


Shaped = tuple[tuple[str, ...], tuple[Any, ...]]  #: an event as (its keys, its values), in its own order


def shaped(event: Mapping[str, Any]) -> Shaped:
    """An event as :func:`encode_shaped` takes it (cheap, and done while the event is fresh in the cache)."""
    return tuple(event), tuple(event.values())


def _typed_columns(rows: Sequence[Shaped]) -> tuple[list[pa.Array], np.ndarray | None] | None:
    """The typed columns of rows whose every field has a column and a value of its type (no null), or None.

    Rows are grouped by their keys (a worker writes a few shapes of event, each with its fields in one order)
    and transposed in C per group, rather than one ``get`` per row and field. Also returns the permutation
    that puts the rows back in order (None when they already are)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, (shape, _) in enumerate(rows):
        group = groups.get(shape)
        if group is None:
            groups[shape] = group = []
        group.append(i)
    parts: dict[str, list[pa.Array]] = {name: [] for name, _ in FIELDS}
    for shape, indices in groups.items():
        if not _KNOWN.issuperset(shape):
            return None
        values = dict(zip(shape, zip(*[rows[i][1] for i in indices], strict=True), strict=True))
        for name, kind in FIELDS:
            column = values.get(name)
            if column is None:
                parts[name].append(pa.nulls(len(indices), _ARROW_TYPES[kind]))
                continue
            array = _column(list(column), kind)
            if array is None or array.null_count:  # an odd type, or an explicit null (kept apart from "absent")
                return None
            parts[name].append(array)
    columns = [pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces) for pieces in parts.values()]
    order = np.concatenate([np.asarray(indices, dtype=np.int64) for indices in groups.values()])
    if len(groups) == 1 or bool((order[1:] > order[:-1]).all()):
        return columns, None
    back = np.empty_like(order)
    back[order] = np.arange(len(order), dtype=np.int64)
    return columns, back


def encode_batch(events: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """The events as one record batch (lossless: see the module doc)."""
    return encode_shaped([shaped(event) for event in events])


def encode_shaped(rows: Sequence[Shaped]) -> pa.RecordBatch:
    """:func:`encode_batch` for events already taken apart by :func:`shaped`."""
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)
    extra = pa.nulls(len(rows), pa.string())
    typed = _typed_columns(rows)
    if typed is None:  # some event has other fields, odd types or nulls: split each into typed and extra JSON
        split = [_split(dict(zip(*row, strict=True))) for row in rows]
        typed = _typed_columns([shaped(values) for values, _ in split])
        assert typed is not None, "every split event fits the typed columns"
        extra = pa.array([None if rest is None else orjson.dumps(rest, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                          for _, rest in split], pa.string())
    columns, back = typed
    if back is not None:
        columns = [column.take(back) for column in columns]
    return pa.RecordBatch.from_arrays([*columns, extra], schema=EVENT_SCHEMA)


def encode_columns(constant: Mapping[str, Any], columns: Mapping[str, Sequence[Any]], count: int) -> pa.RecordBatch | None:
    """``count`` events given as a value for all (``constant``) or a column (``count`` values) a field, as one
    record batch; None when a field has no typed column or a value is not of its column's type (the caller
    then encodes the events one by one, which keeps them whole)."""
    if not _KNOWN.issuperset(constant) or not _KNOWN.issuperset(columns):
        return None
    arrays = []
    for name, kind in FIELDS:
        if name in constant:
            value = constant[name]
            if not (kind == _STR and type(value) is str):
                return None
            arrays.append(pa.repeat(pa.scalar(value, pa.string()), count))
        elif name in columns:
            column = columns[name]
            if len(column) != count:
                return None
            if kind == _INT and type(column) is array_type and column.typecode == "q":  # int64 already
                array = pa.array(np.frombuffer(column, dtype=np.int64))
            else:
                array = _column(list(column), kind)
            if array is None or array.null_count:
                return None
            arrays.append(array)
        else:
            arrays.append(pa.nulls(count, _ARROW_TYPES[kind]))
    return pa.RecordBatch.from_arrays([*arrays, pa.nulls(count, pa.string())], schema=EVENT_SCHEMA)


def concat_batches(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """Batches of the event schema as one (a flush appends one batch)."""
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_arrays([pa.concat_arrays([b.column(i) for b in batches])
                                       for i in range(len(EVENT_SCHEMA))], schema=EVENT_SCHEMA)


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


#: written on a clean close; its absence only means the writer did not close (its batches are still whole)
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
#: None: the checker memory-maps the files and reads their columns in place. "lz4" makes files a fifth of
#: the size for about 0.1 CPU-us an event, but the checker then holds decompressed copies: at 9M receipts
#: its peak RSS went from 1.4 to 2.6 GiB (measured), so the files stay uncompressed.
COMPRESSION: str | None = None


def batch_bytes(batch: pa.RecordBatch) -> bytes:
    """One record batch as the IPC stream message a flush appends."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, EVENT_SCHEMA, options=pa.ipc.IpcWriteOptions(compression=COMPRESSION)) as writer:
        writer.write_batch(batch)
    data = sink.getvalue().to_pybytes()
    schema = stream_schema_bytes()
    if not (data.startswith(schema) and data.endswith(END_OF_STREAM)):
        raise AssertionError("unexpected IPC stream framing from pyarrow")
    return data[len(schema):-len(END_OF_STREAM)]
