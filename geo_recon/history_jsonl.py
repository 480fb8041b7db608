"""History events as JSON lines, formatted in bulk: what a JSONL writer's flush appends.

A producer appends each event as ``(keys, values)`` (a few shapes, the same
keys in the same order) and the writer formats a whole buffer at once. Per
shape, the values are taken apart into columns, and each column is checked once
for the whole buffer: a column of plain integers is written with ``%d``, a
column of strings that need no escaping is written between quotes as it is, a
column holding one value is written once into the shape's line template. Any
other column (floats, None, lists, strings to escape, numpy integers) is
encoded value by value by orjson. The bytes are exactly orjson's: one compact
object per line, keys in the order given, non-ASCII as UTF-8 (a property test
holds them to it).

orjson's ``dumps`` per event cost 3 to 4 CPU-us once thousands of its results
were alive at once (a 0.2 s flush at 20k msg/s: measured 3.5 us an event, 0.7
alone); formatting columns costs well under one.

This module is pure (no files); :class:`geo_recon.history.HistoryWriter` writes them.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

_OPTION = orjson.OPT_SERIALIZE_NUMPY
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1  # what orjson writes; it refuses anything bigger


def _json(value: Any) -> str:
    return orjson.dumps(value, option=_OPTION).decode()


def _plain(text: str) -> bool:
    """A string orjson writes as it is, between quotes (no quote, backslash or control character)."""
    return text.isprintable() and '"' not in text and "\\" not in text


def _lines(keys: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    """The lines of rows that share their keys, in their order (each ends with a newline)."""
    if len(set(keys)) != len(keys) or not all(type(k) is str for k in keys) or \
            any(len(row) != len(keys) for row in rows):
        return [orjson.dumps(dict(zip(keys, row)), option=_OPTION).decode() + "\n" for row in rows]
    return _column_lines(keys, list(zip(*rows)), len(rows))


def _column_lines(keys: tuple[str, ...], columns: Sequence[Sequence[Any]], count: int) -> list[str]:
    """The lines of ``count`` events given as one column a key (distinct string keys), in their order."""
    pieces, varying = [], []
    for key, column in zip(keys, columns):
        name = _json(key).replace("%", "%%")
        if type(column) is _Same:
            pieces.append(f"{name}:{_json(column.value).replace('%', '%%')}")
            continue
        if type(column) is array and column.typecode == "q":  # 64-bit integers already: no scan
            pieces.append(f"{name}:%d")
            varying.append(column)
            continue
        kinds = set(map(type, column))
        if kinds == {str}:
            first = column[0]
            if column.count(first) == len(column):
                pieces.append(f"{name}:{_json(first).replace('%', '%%')}")
            elif _plain("".join(column)):
                pieces.append(f'{name}:"%s"')
                varying.append(column)
            else:
                pieces.append(f"{name}:%s")
                varying.append([_json(v) for v in column])
        elif kinds == {int} and _INT_MIN <= min(column) and max(column) <= _UINT_MAX:
            if column.count(column[0]) == len(column):
                pieces.append(f"{name}:{column[0]}")
            else:
                pieces.append(f"{name}:%d")
                varying.append(column)
        else:  # orjson raises here, as it would have for the whole event, on what it cannot write
            pieces.append(f"{name}:%s")
            varying.append([_json(v) for v in column])
    template = "{" + ",".join(pieces) + "}\n"
    if not varying:
        return [template % ()] * count
    return list(map(template.__mod__, zip(*varying)))


class _Same:
    """A column holding one value ``count`` times, written once into the lines' template."""

    __slots__ = ("value", "count")

    def __init__(self, value: Any, count: int):
        self.value, self.count = value, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter([self.value] * self.count)


def encode_columns(keys: tuple[str, ...], constant: Mapping[str, Any], columns: Mapping[str, Sequence[Any]],
                   count: int) -> bytes:
    """The JSON lines of ``count`` events whose every field (``keys``, in that order) is one value for all
    (``constant``) or a column of ``count`` values: the bytes :func:`encode_lines` gives for the same events
    as ``(keys, values)`` items. A column of ``array('q')`` is written with ``%d`` without a scan."""
    if count == 0:
        return b""
    given = [_Same(constant[k], count) if k in constant else columns[k] for k in keys]
    if len(set(keys)) != len(keys) or not all(type(k) is str for k in keys) or \
            any(len(column) != count for column in given):
        return encode_lines([(keys, values) for values in zip(*given)])
    lines = _joined_in_arrow(keys, given)
    return lines if lines is not None else "".join(_column_lines(keys, given, count)).encode()


def _joined_in_arrow(keys: tuple[str, ...], columns: Sequence[Any]) -> bytes | None:
    """The lines of columns that are all one value, 64-bit integers or strings that need no escaping, joined
    by Arrow in one pass (integers as ``%d`` writes them, the strings as they are between quotes, the rest
    into the segments between): a fifth of the time of one ``%`` a line. None for any other column."""
    parts: list[Any] = []
    text = "{"
    for i, (key, column) in enumerate(zip(keys, columns)):
        text += ("," if i else "") + _json(key) + ":"
        if type(column) is _Same:
            text += _json(column.value)
            continue
        if type(column) is array and column.typecode == "q":
            parts += [text, pc.cast(pa.array(np.frombuffer(column, dtype=np.int64)), pa.string())]
            text = ""
        elif type(column) is list and set(map(type, column)) == {str} and _plain("".join(column)):
            parts += [text + '"', pa.array(column, pa.string())]
            text = '"'
        else:
            return None
    parts.append(text + "}\n")
    if len(parts) == 1:  # every field one value: the template's own path
        return None
    try:
        lines = pc.binary_join_element_wise(*[pa.scalar(p, pa.string()) if type(p) is str else p for p in parts], "")
    except (pa.ArrowException, OverflowError):  # beyond a string array's 2 GiB: line by line
        return None
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return bytes(memoryview(lines.buffers()[2])[start:end])


def encode_lines(items: Sequence[bytes | tuple[tuple[str, ...], tuple[Any, ...]]]) -> bytes:
    """The JSON lines of buffered items, in order: a ``bytes`` item is a line already encoded, a
    ``(keys, values)`` item the event ``dict(zip(keys, values))``."""
    groups: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        shape = item[0] if type(item) is tuple else None
        group = groups.get(shape)
        if group is None:
            groups[shape] = group = []
        group.append(i)
    if len(groups) == 1:
        (shape,) = groups
        if shape is None:
            return b"".join(items)  # type: ignore[arg-type]
        return "".join(_lines(shape, [item[1] for item in items])).encode()  # type: ignore[index]
    lines: list[str] = [""] * len(items)
    for shape, indices in groups.items():
        if shape is None:
            for i in indices:
                lines[i] = items[i].decode()  # type: ignore[union-attr]
            continue
        for i, line in zip(indices, _lines(shape, [items[i][1] for i in indices])):  # type: ignore[index]
            lines[i] = line
    return "".join(lines).encode()
