"""Read a run's JSONL history into the checker's columns (:class:`~geo_recon.check.model.History`).

Files are cut into chunks of whole lines. Each chunk goes through a compiled
scan of send and recv lines first (:mod:`geo_recon.check.jsonscan`: a strict
subset of JSON, anything else makes it give up), else through a fast path
(Arrow's JSON parser with a fixed schema of the fields the checker uses, then
vectorised validation). If anything in the chunk looks wrong (a parse error, a
missing or mistyped field, a line that does not start with ``{``, a row count
that differs from the line count) the chunk is re-read line by line with
:func:`geo_recon.history.parse_line`, the single authority on what a valid line
is, which names the file and line of the first bad one (or, with ``skip_bad``,
skips and counts bad lines). So the fast paths accept only what the exact path
accepts, with the same values.

Chunks are parsed in worker processes (``workers``; threads of the reading
process when every file is Arrow and the read fits in memory: a slice of an
Arrow file is a few large calls that release the GIL); each reads its own byte range (or rows) and returns
compact arrays with chunk-local name tables and chunk-relative line numbers,
which the reading process maps to global codes and absolute lines, in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import os
import tempfile
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from geo_recon import history_arrow
from geo_recon.check import pool
from geo_recon.check.tuning import release_free_memory
from geo_recon.check.model import (
    FLAG_READER,
    NO_TIME,
    ORDERING_CODES,
    ORDERING_SHIFT,
    REF_LINE_BITS,
    Completions,
    FailoverEvent,
    FaultEvent,
    History,
    InputSummary,
    Messages,
    Outcome,
    Receipts,
)
from geo_recon.history import (
    FAILOVER_ROLES,
    BadLine,
    HistoryError,
    check_event,
    history_files,
    is_arrow,
    normalise_subscription,
    other_files,
    parse_line,
    read_arrow,
    read_run_json,
)

if TYPE_CHECKING:
    from geo_recon.check import jsonscan

CHUNK_BYTES = 16 << 20
#: Arrow slices read by the reading process itself while its parsing workers start (about 0.1 s each)
HERE_MAX = 2
PARALLEL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves
#: parsed columns (at most 45 bytes a send line, 49 a receipt; one-value columns and line references take none) held
#: in memory while reading; past that they go to temporary
#: files (see :class:`_ColumnStore`)
SPILL_BYTES = 768 << 20
ARROW_BLOCK_BYTES = 4 << 20
ARROW_CHUNK_ROWS = 1 << 20  # rows of an Arrow history file parsed as one chunk
#: a parsed receipt's bytes in the column store (a send line's fewer): how a read of Arrow files is known to fit
ARROW_ROW_BYTES = 28
EXAMPLES = 20  # skipped lines quoted in the result

SEND_KIND = {"invoke": 0, "ok": 1, "fail": 2, "info": 3}
KIND_TO_OUTCOME = np.array([Outcome.PENDING, Outcome.OK, Outcome.FAIL, Outcome.INFO], dtype=np.int8)

_LEAN = [("type", pa.string()), ("f", pa.string()), ("time", pa.int64()), ("region", pa.string()),
         ("process", pa.string()), ("producer", pa.string()), ("seq", pa.int64()), ("key", pa.string()),
         ("msg_id", pa.string()), ("via", pa.string()), ("subscription_type", pa.string()),
         ("subscription", pa.string()), ("cluster", pa.string())]
#: the fields of send and recv lines (the schema's size costs parse time, so fault fields are apart)
LEAN_SCHEMA = pa.schema(_LEAN)
#: plus the fault fields, for the rare chunk that holds fault lines
FULL_SCHEMA = pa.schema(_LEAN + [("phase", pa.string()), ("fault", pa.string()), ("target", pa.string()),
                                 ("id", pa.string()), ("regions", pa.list_(pa.string())),
                                 ("region_loss", pa.bool_()), ("client", pa.string()), ("role", pa.string()),
                                 ("from", pa.string()), ("to", pa.string()), ("mode", pa.string())])
_TYPE_CODE = {"invoke": 0, "ok": 1, "fail": 2, "info": 3, "recv": 4, "fault": 5, "failover": 7}
_IGNORED_CODE = 6
_FAILOVER_CODE = 7
_FAILOVER_FIELDS = ("time", "region", "process", "client", "role", "from", "to", "mode")
_NAME_KINDS = ("region", "process", "producer", "key", "subscription")
_VIA_READER = {"consumer": False, "reader": True}
_OTHER_F = "send-type lines with f other than 'send'"

# --------------------------------------------------------------------------- msg_id hashing

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [2**64 - 1], dtype=np.uint64)
_U64 = (1 << 64) - 1


def _mix(h: np.ndarray) -> np.ndarray:
    """The finaliser of splitmix64, in place (``h`` is a temporary of the caller's)."""
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


def _mix_int(h: int) -> int:
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _U64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _U64
    return h ^ (h >> 31)


def hash_msg_id(text: str) -> int:
    """The 64-bit hash of one msg_id (signed, as stored); equals :func:`hash_msg_ids` element-wise."""
    data = text.encode()
    h = (len(data) * 0x9E3779B97F4A7C15) & _U64
    for k in range(0, len(data), 8):
        h = _mix_int(h ^ int.from_bytes(data[k:k + 8], "little"))
    h = _mix_int(h)
    return h - (1 << 64) if h >= 1 << 63 else h


#: strings hashed at a time: the temporaries of a block stay in the CPU's cache and in the heap (whole columns at
#: once meant a dozen fresh arrays as long as the column, whose page faults cost more than the hashing)
HASH_BLOCK = 1 << 13


def hash_msg_ids(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Vectorised :func:`hash_msg_id` over an Arrow string array (nulls hash as "")."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) <= HASH_BLOCK:
        return _hash_block(arr)
    out = np.empty(len(arr), dtype=np.int64)
    for a in range(0, len(arr), HASH_BLOCK):
        out[a:a + HASH_BLOCK] = _hash_block(arr.slice(a, HASH_BLOCK))
    return out


def _hash_block(arr: pa.Array) -> np.ndarray:
    if arr.type == pa.large_string():
        offsets_type: Any = np.int64
    elif arr.type == pa.string():
        offsets_type = np.int32
    else:
        raise TypeError(f"expected a string array, got {arr.type}")
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)[arr.offset:arr.offset + n + 1].astype(np.int64)
    starts, lengths = offsets[:-1], np.diff(offsets)
    if arr.null_count:
        lengths = np.where(arr.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    begin, end = int(offsets[0]), int(offsets[-1])
    padded = np.zeros(end - begin + 8, dtype=np.uint8)
    if buffers[2] is not None and end > begin:
        padded[:end - begin] = np.frombuffer(buffers[2], dtype=np.uint8)[begin:end]
    starts = starts - begin
    # element i of `words` is the little-endian 8 bytes starting at byte i
    words = np.ndarray((end - begin + 1,), dtype="<u8", buffer=padded, strides=(1,))
    h = lengths.astype(np.uint64) * _GOLDEN
    n_words = (lengths + 7) // 8
    shortest = int(lengths.min())
    for k in range(int(n_words.max())):
        if 8 * (k + 1) <= shortest:  # a whole word of every string: no mask, no choice (msg_ids' first words)
            h ^= words[starts + 8 * k]
            _mix(h)
            continue
        keep = np.clip(lengths - 8 * k, 0, 8)
        word = words[np.minimum(starts + 8 * k, end - begin)] & _MASKS[keep]
        h = np.where(n_words > k, _mix(h ^ word), h)
    return _mix(h).view(np.int64)


# --------------------------------------------------------------------------- one chunk


@dataclass(slots=True)
class Chunk:
    """The lines of one chunk as compact columns, with chunk-local name tables and chunk-relative lines.

    As parsed every column is an array; :func:`compact` (on the way back from a parsing worker) may make a line
    column None and a code column :class:`Repeated` or narrower."""

    names: dict[str, list[str]]  # "region", "process", "producer", "key", "subscription" -> local names
    send_kind: np.ndarray  # int8 SEND_KIND
    send_time: np.ndarray
    send_region: np.ndarray | Repeated  # int32 local codes
    send_process: np.ndarray | Repeated
    send_producer: np.ndarray | Repeated
    send_seq: np.ndarray
    send_key: np.ndarray | Repeated  # -1 none
    send_line: np.ndarray | None  # int64 line within the chunk, from 1
    send_cluster: np.ndarray | Repeated  # int32 local region codes, -1 none
    recv_time: np.ndarray
    recv_region: np.ndarray | Repeated
    recv_process: np.ndarray | Repeated
    recv_producer: np.ndarray | Repeated
    recv_seq: np.ndarray
    recv_hash: np.ndarray
    recv_flags: np.ndarray | Repeated
    recv_line: np.ndarray | None
    recv_subscription: np.ndarray | Repeated  # int32 local codes, -1 none
    recv_cluster: np.ndarray | Repeated  # int32 local region codes, -1 none
    faults: list[tuple[int, dict[str, Any]]]  # (line within the chunk, event)
    failovers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (line within the chunk, event)
    lines: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line within the chunk, reason)
    bad_count: int = 0
    error: tuple[int, str] | None = None  # the first bad line, when not skipping


class _Names:
    """A name table builder: name -> code in first-seen order."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, name: str | None) -> int:
        if name is None:
            return -1
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def encode(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Codes (int32) for a string column (-1 for nulls)."""
        one = _one_value(column)
        if one is not None:
            return np.full(len(column), self.code(one), dtype=np.int32)
        encoded = pc.dictionary_encode(column)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        lut = np.array([self.code(name) for name in encoded.dictionary.to_pylist()] + [-1], dtype=np.int32)
        indices = encoded.indices
        if indices.null_count:
            indices = pc.fill_null(indices, len(lut) - 1)
        return lut[indices.to_numpy(zero_copy_only=False)]


def _one_value(column: pa.ChunkedArray | pa.Array) -> str | None:
    """The string on every row of a string column without nulls, or None when its rows differ: a few vectorised
    compares of its buffers instead of hashing every string (a consumer's file holds one type, region and
    process; a producer's one producer)."""
    if not len(column) or column.null_count:
        return None
    first: bytes | None = None
    for arr in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        if not len(arr):
            continue
        if arr.type != pa.string():
            return None
        _, offsets_buffer, data_buffer = arr.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
        width = int(offsets[1] - offsets[0])
        if (np.diff(offsets) != width).any():
            return None
        data = (np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]] if width
                else np.zeros(0, dtype=np.uint8))
        value = data[:width].tobytes()
        if first is None:
            first = value
        elif value != first:
            return None
        if width and (data.reshape(-1, width) != data[:width]).any():
            return None
    return None if first is None else first.decode()


def _nulls(column: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Null mask, or None when there are no nulls."""
    if column.null_count == 0:
        return None
    return column.is_null().to_numpy(zero_copy_only=False)


def _any_null(column: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> bool:
    mask = _nulls(column)
    return mask is not None and bool((mask & rows).any())


def _ints(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        column = pc.fill_null(column, 0)
    return column.to_numpy(zero_copy_only=False)


def count_lines(data: bytes) -> tuple[int, bool]:
    """(number of lines, every line starts with '{'): a blank or indented line needs the exact path."""
    if not data:
        return 0, True
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    ends_with_newline = data[-1:] == b"\n"
    n = len(newlines) + (0 if ends_with_newline else 1)
    starts = newlines[:-1] + 1 if ends_with_newline else newlines + 1
    clean = arr[0] == 123 and bool((arr[starts] == 123).all())
    return n, clean


def _parse(data: bytes, schema: pa.Schema, use_threads: bool) -> pa.Table | None:
    try:
        return pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=use_threads, block_size=ARROW_BLOCK_BYTES),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _fast_chunk(data: bytes, n_lines: int, *, use_threads: bool = False) -> Chunk | None:
    """Parse a chunk with Arrow; None when anything needs the exact line-by-line path."""
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None  # Arrow's JSON parser takes invalid UTF-8 into strings: the exact path names the line
    table = _parse(data, LEAN_SCHEMA, use_threads)
    if table is None or table.num_rows != n_lines:
        return None

    def with_fault_fields() -> pa.Table | None:
        full = _parse(data, FULL_SCHEMA, use_threads)
        return full if full is not None and full.num_rows == n_lines else None

    return _table_chunk(table, n_lines, with_fault_fields)


def _table_chunk(table: pa.Table, n_lines: int, with_fault_fields: Callable[[], pa.Table | None]) -> Chunk | None:
    """The checker's columns from a table of events (one row per line, JSON's types); None when a row needs the
    exact path. ``with_fault_fields`` gives the table with the fault fields too, when fault rows are present."""
    types = table.column("type")
    if types.null_count:
        return None
    one_type = _one_value(types)
    if one_type is not None:
        type_names, type_idx = [one_type], np.zeros(len(types), dtype=np.int8)
    else:
        type_enc = pc.dictionary_encode(types).combine_chunks()
        type_names = type_enc.dictionary.to_pylist()
        type_idx = type_enc.indices.to_numpy()
    type_lut = np.array([_TYPE_CODE.get(t, _IGNORED_CODE) for t in type_names], dtype=np.int8)
    tcode = type_lut[type_idx]
    present = set(tcode.tolist()) if len(type_names) > 1 else {int(type_lut[0])}
    if 5 in present or _FAILOVER_CODE in present:
        table = with_fault_fields()  # fault or failover lines: read their fields too
        if table is None:
            return None
    col = table.column
    ignored_names: Counter[str] = Counter()
    if _IGNORED_CODE in present:
        counts = np.bincount(type_idx, minlength=len(type_names))
        ignored_names.update({t: int(c) for t, c in zip(type_names, counts.tolist(), strict=True)
                              if t not in _TYPE_CODE and c})
    is_send_type = tcode < 4
    send = is_send_type
    if present & {0, 1, 2, 3}:
        f = col("f")
        if _any_null(f, is_send_type):
            return None
        one_f = _one_value(f)
        if one_f is not None:
            send = is_send_type if one_f == "send" else np.zeros(len(is_send_type), dtype=bool)
        else:
            f_enc = pc.dictionary_encode(f).combine_chunks()
            f_lut = np.array([v == "send" for v in f_enc.dictionary.to_pylist()] + [False], dtype=bool)
            f_idx = f_enc.indices
            if f_idx.null_count:
                f_idx = pc.fill_null(f_idx, len(f_lut) - 1)
            send = is_send_type & f_lut[f_idx.to_numpy(zero_copy_only=False)]
        other_f = is_send_type & ~send
        if other_f.any():
            ignored_names[_OTHER_F] += int(other_f.sum())
    recv = tcode == 4
    fault = tcode == 5
    used = send | recv
    if _any_null(col("time"), tcode != _IGNORED_CODE):  # every known type needs its time, ignored send lines too
        return None
    for name in ("region", "process", "producer", "seq"):
        if _any_null(col(name), used):
            return None
    if _any_null(col("msg_id"), recv):
        return None
    if fault.any():
        for name in ("phase", "fault", "target", "id"):
            if _any_null(col(name), fault):
                return None
    failover = tcode == _FAILOVER_CODE
    if failover.any():
        for name in ("time", "region", "process", "client", "role", "from", "to"):
            if _any_null(col(name), failover):
                return None

    all_used = bool(used.all())
    u_idx = None if all_used else np.flatnonzero(used)
    u_table = table.select(["time", "region", "process", "producer", "seq"])
    if u_idx is not None:
        u_table = u_table.take(pa.array(u_idx))
    names = {k: _Names() for k in _NAME_KINDS}
    time = _ints(u_table.column("time"))
    region = names["region"].encode(u_table.column("region"))
    process = names["process"].encode(u_table.column("process"))
    producer = names["producer"].encode(u_table.column("producer"))
    seq = _ints(u_table.column("seq"))
    lines = (np.arange(1, n_lines + 1, dtype=np.int64) if u_idx is None else u_idx.astype(np.int64) + 1)
    used_send = send if u_idx is None else send[u_idx]
    all_send = bool(used_send.all())
    s_pos = None if all_send else np.flatnonzero(used_send)
    r_pos = None if not len(used_send) or not used_send.any() else np.flatnonzero(~used_send)
    if all_send:
        r_pos = np.zeros(0, dtype=np.int64)

    def pick(values: np.ndarray, where: np.ndarray | None) -> np.ndarray:
        return values if where is None else values[where]

    def rows_of(column: pa.ChunkedArray, mask: np.ndarray, everything: bool) -> pa.ChunkedArray | pa.Array:
        return column if everything else column.take(pa.array(np.flatnonzero(mask)))

    n_send = int(send.sum())
    key = (names["key"].encode(rows_of(col("key"), send, n_send == n_lines)) if n_send
           else np.zeros(0, dtype=np.int32))
    send_cluster = (names["region"].encode(rows_of(col("cluster"), send, n_send == n_lines)) if n_send
                    else np.zeros(0, dtype=np.int32))
    n_recv = int(recv.sum())
    recv_subscription = np.full(n_recv, -1, dtype=np.int32)
    recv_cluster = np.full(n_recv, -1, dtype=np.int32)
    flags = np.zeros(n_recv, dtype=np.int8)
    if n_recv:
        everything = n_recv == n_lines
        via = rows_of(col("via"), recv, everything)
        if via.null_count < len(via):
            via_enc = pc.dictionary_encode(via).combine_chunks()
            via_values = via_enc.dictionary.to_pylist()
            if any(v not in _VIA_READER for v in via_values):
                return None
            via_lut = np.array([_VIA_READER[v] for v in via_values] + [False], dtype=bool)
            flags |= via_lut[pc.fill_null(via_enc.indices, len(via_values)).to_numpy()].astype(np.int8) * FLAG_READER
        sub = rows_of(col("subscription_type"), recv, everything)
        if sub.null_count < len(sub):
            sub_enc = pc.dictionary_encode(sub).combine_chunks()
            orderings = [normalise_subscription(v) for v in sub_enc.dictionary.to_pylist()]
            if any(o is None for o in orderings):
                return None
            sub_lut = np.array([ORDERING_CODES[o] for o in orderings] + [0], dtype=np.int8)  # type: ignore[index]
            idx = pc.fill_null(sub_enc.indices, len(orderings)).to_numpy()
            flags |= (sub_lut[idx] << ORDERING_SHIFT).astype(np.int8)
        recv_hash = hash_msg_ids(rows_of(col("msg_id"), recv, everything))
        named = rows_of(col("subscription"), recv, everything)
        if named.null_count < len(named):
            recv_subscription = names["subscription"].encode(named)
        served = rows_of(col("cluster"), recv, everything)
        if served.null_count < len(served):
            recv_cluster = names["region"].encode(served)
    else:
        recv_hash = np.zeros(0, dtype=np.int64)

    fault_rows: list[tuple[int, dict[str, Any]]] = []
    if fault.any():
        f_idx = np.flatnonzero(fault)
        sub_table = table.select(["time", "phase", "fault", "target", "id", "regions", "region_loss",
                                  "process"]).take(pa.array(f_idx))
        for row, event in zip(f_idx.tolist(), sub_table.to_pylist(), strict=True):
            if event["phase"] not in ("start", "stop"):
                return None
            fault_rows.append((row + 1, {k: v for k, v in event.items() if v is not None}))
    failover_rows: list[tuple[int, dict[str, Any]]] = []
    if failover.any():
        f_idx = np.flatnonzero(failover)
        sub_table = table.select(list(_FAILOVER_FIELDS)).take(pa.array(f_idx))
        for row, event in zip(f_idx.tolist(), sub_table.to_pylist(), strict=True):
            if event["role"] not in FAILOVER_ROLES:
                return None
            failover_rows.append((row + 1, {k: v for k, v in event.items() if v is not None}))

    send_kind = tcode[send].astype(np.int8)
    return Chunk(
        names={k: v.names for k, v in names.items()},
        send_kind=send_kind, send_time=pick(time, s_pos), send_region=pick(region, s_pos),
        send_process=pick(process, s_pos), send_producer=pick(producer, s_pos), send_seq=pick(seq, s_pos),
        send_key=key, send_line=pick(lines, s_pos), send_cluster=send_cluster,
        recv_time=pick(time, r_pos), recv_region=pick(region, r_pos), recv_process=pick(process, r_pos),
        recv_producer=pick(producer, r_pos), recv_seq=pick(seq, r_pos), recv_hash=recv_hash, recv_flags=flags,
        recv_line=pick(lines, r_pos), recv_subscription=recv_subscription, recv_cluster=recv_cluster,
        faults=fault_rows, failovers=failover_rows, lines=n_lines, ignored=ignored_names,
    )


def _exact_chunk(data: bytes, skip_bad: bool) -> Chunk:
    """Parse a chunk line by line with the schema's authority, :func:`parse_line`."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return _exact_events(((n, *parse_line(raw)) for n, raw in enumerate(lines, start=1)), len(lines), skip_bad)


def _exact_events(classified: Iterable[tuple[int, str, dict[str, Any] | None, str | None]], n_lines: int,
                  skip_bad: bool) -> Chunk:
    """A chunk from events classified one by one (``(line, kind, event, reason)`` as :func:`parse_line` says)."""
    names = {k: _Names() for k in _NAME_KINDS}
    sends: list[tuple[int, ...]] = []
    recvs: list[tuple[int, ...]] = []
    faults: list[tuple[int, dict[str, Any]]] = []
    failovers: list[tuple[int, dict[str, Any]]] = []
    ignored: Counter[str] = Counter()
    bad: list[tuple[int, str]] = []
    bad_count = 0
    error = None
    for number, kind, event, reason in classified:
        if kind == "blank":
            continue
        if kind == "bad":
            if not skip_bad:
                error = (number, reason or "bad line")
                break
            bad_count += 1
            if len(bad) < EXAMPLES:
                bad.append((number, reason or "bad line"))
            continue
        assert event is not None
        if kind == "ignored":
            t = event.get("type")
            ignored[_OTHER_F if t in SEND_KIND else str(t)] += 1
        elif kind == "send":
            sends.append((SEND_KIND[event["type"]], event["time"], names["region"].code(event["region"]),
                          names["process"].code(event["process"]), names["producer"].code(event["producer"]),
                          event["seq"], names["key"].code(event.get("key")), number,
                          names["region"].code(event.get("cluster"))))
        elif kind == "recv":
            flags = FLAG_READER if event.get("via") == "reader" else 0
            sub = event.get("subscription_type")
            if sub is not None:
                flags |= ORDERING_CODES[normalise_subscription(sub)] << ORDERING_SHIFT  # type: ignore[index]
            recvs.append((event["time"], names["region"].code(event["region"]),
                          names["process"].code(event["process"]), names["producer"].code(event["producer"]),
                          event["seq"], hash_msg_id(event["msg_id"]), flags, number,
                          names["subscription"].code(event.get("subscription")),
                          names["region"].code(event.get("cluster"))))
        elif kind == "failover":
            failovers.append((number, {k: event.get(k) for k in _FAILOVER_FIELDS if event.get(k) is not None}))
        else:
            faults.append((number, event))
    s = np.array(sends, dtype=np.int64).reshape(-1, 9)
    r = np.array(recvs, dtype=np.int64).reshape(-1, 10)
    return Chunk(
        names={k: v.names for k, v in names.items()},
        send_kind=s[:, 0].astype(np.int8), send_time=s[:, 1], send_region=s[:, 2].astype(np.int32),
        send_process=s[:, 3].astype(np.int32), send_producer=s[:, 4].astype(np.int32), send_seq=s[:, 5],
        send_key=s[:, 6].astype(np.int32), send_line=s[:, 7], send_cluster=s[:, 8].astype(np.int32),
        recv_time=r[:, 0], recv_region=r[:, 1].astype(np.int32), recv_process=r[:, 2].astype(np.int32),
        recv_producer=r[:, 3].astype(np.int32), recv_seq=r[:, 4], recv_hash=r[:, 5],
        recv_flags=r[:, 6].astype(np.int8), recv_line=r[:, 7], recv_subscription=r[:, 8].astype(np.int32),
        recv_cluster=r[:, 9].astype(np.int32), faults=faults, failovers=failovers, lines=n_lines,
        ignored=ignored, bad=bad, bad_count=bad_count, error=error,
    )


_SCAN_KINDS = {"region": "region", "cluster": "region", "process": "process", "producer": "producer", "key": "key",
               "subscription": "subscription"}
_RECV_ONLY = ("via", "subscription_type", "subscription")


def _scanned_chunk(found: jsonscan.Scan) -> Chunk | None:
    """The checker's columns from a compiled scan, when every line is a valid send or recv event (as
    :func:`geo_recon.history.check_event` has it, with the same values); None otherwise: the general path then
    judges the chunk (other event types, ignored lines, a bad line to name)."""
    from geo_recon.check import jsonscan

    fields = {name: i for i, name in enumerate(jsonscan.FIELDS)}
    n = found.lines
    codes, present = found.codes, found.present
    n_table = len(found.table_text)
    field_of, text = found.table_field.tolist(), found.table_text

    def per_code(values: dict[int, Any], default: Any, dtype: Any) -> np.ndarray:
        """A lookup table by string code (index -1, absent, gives ``default``)."""
        out = np.full(n_table + 1, default, dtype=dtype)
        for code, value in values.items():
            out[code] = value
        return out

    def column(name: str) -> np.ndarray:
        return codes[fields[name]]

    type_field = fields["type"]
    tcode = per_code({e: _TYPE_CODE[t] for e, t in enumerate(text) if field_of[e] == type_field and t in _TYPE_CODE
                      and _TYPE_CODE[t] <= 4}, -1, np.int8)[column("type")]
    if n and tcode.min() < 0:
        return None  # no type, or fault, failover and ignored lines: the general path
    send = tcode < 4
    all_send = bool(send.all())
    recv = None if all_send else ~send
    need = (1 << jsonscan.TIME) | (1 << jsonscan.SEQ)
    if ((present & need) != need).any():
        return None
    for name in ("region", "process", "producer"):
        if column(name).min(initial=0) < 0:
            return None
    if not all_send:
        assert recv is not None
        if not (present[recv] & (1 << jsonscan.MSG_ID)).all():
            return None
    f_field = fields["f"]
    if send.any():
        f_send = per_code({e: True for e, t in enumerate(text) if field_of[e] == f_field and t == "send"}, False, bool)
        if not f_send[column("f") if all_send else column("f")[send]].all():
            return None  # f missing, or not "send" (an ignored line): the general path counts those

    def rows(values: np.ndarray, where: np.ndarray | None) -> np.ndarray:
        return values if where is None else values[where]

    s_rows = None if all_send else np.flatnonzero(send)
    r_rows = np.zeros(0, dtype=np.int64) if all_send else np.flatnonzero(recv)
    # the codes each kind of name is read from (names read only on the other kind of line are not names)
    used = np.zeros(n_table + 1, dtype=bool)
    for name in ("region", "process", "producer", "cluster"):
        used[column(name)] = True
    if len(r_rows) < n:
        used[rows(column("key"), s_rows)] = True
    if len(r_rows):
        for name in _RECV_ONLY:
            used[column(name)[r_rows]] = True
    used[-1] = False
    names = {k: _Names() for k in _NAME_KINDS}
    lut = np.full(n_table + 1, -1, dtype=np.int32)
    via_flag = np.zeros(n_table + 1, dtype=np.int64)
    ordering = np.zeros(n_table + 1, dtype=np.int64)
    via_field, sub_type_field = fields["via"], fields["subscription_type"]
    for e in np.flatnonzero(used).tolist():
        field_name = jsonscan.FIELDS[field_of[e]]
        kind = _SCAN_KINDS.get(field_name)
        if kind is not None:
            lut[e] = names[kind].code(text[e])
        elif field_of[e] == via_field:
            if text[e] not in _VIA_READER:
                return None
            via_flag[e] = FLAG_READER if _VIA_READER[text[e]] else 0
        elif field_of[e] == sub_type_field:
            normal = normalise_subscription(text[e])
            if normal is None:
                return None
            ordering[e] = ORDERING_CODES[normal] << ORDERING_SHIFT

    time, seq = found.time, found.seq
    region, process, producer = lut[column("region")], lut[column("process")], lut[column("producer")]
    cluster = lut[column("cluster")]
    lines = np.arange(1, n + 1, dtype=np.int64)
    if len(r_rows):
        flags = (via_flag[column("via")[r_rows]] | ordering[column("subscription_type")[r_rows]]).astype(np.int8)
        recv_subscription = lut[column("subscription")[r_rows]]
        recv_hash = found.msg_hash[r_rows]
    else:
        flags, recv_subscription, recv_hash = (np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.int32),
                                               np.zeros(0, dtype=np.int64))
    return Chunk(
        names={k: v.names for k, v in names.items()},
        send_kind=rows(tcode, s_rows), send_time=rows(time, s_rows), send_region=rows(region, s_rows),
        send_process=rows(process, s_rows), send_producer=rows(producer, s_rows), send_seq=rows(seq, s_rows),
        send_key=rows(lut[column("key")], s_rows) if len(r_rows) < n else np.zeros(0, dtype=np.int32),
        send_line=rows(lines, s_rows), send_cluster=rows(cluster, s_rows),
        recv_time=time[r_rows], recv_region=region[r_rows], recv_process=process[r_rows],
        recv_producer=producer[r_rows], recv_seq=seq[r_rows], recv_hash=recv_hash, recv_flags=flags,
        recv_line=lines[r_rows], recv_subscription=recv_subscription, recv_cluster=cluster[r_rows],
        faults=[], failovers=[], lines=n,
    )


def parse_chunk(data: bytes, *, skip_bad: bool = False, use_threads: bool = False) -> Chunk:
    """One chunk of whole lines; line numbers in the result count from 1 at the chunk's start.

    Three paths, each taken only when the one before gives up: the compiled scan of send and recv lines
    (:mod:`geo_recon.check.jsonscan`), Arrow's JSON parser, then :func:`parse_line` line by line."""
    from geo_recon.check import jsonscan  # compiled (numba): imported where JSONL is parsed, not with the package

    found = jsonscan.scan(data)
    chunk = None if found is None else _scanned_chunk(found)
    if chunk is not None:
        return chunk
    n_lines, clean = count_lines(data)
    chunk = _fast_chunk(data, n_lines, use_threads=use_threads) if clean else None
    if chunk is None:
        chunk = _exact_chunk(data, skip_bad)
    chunk.lines = n_lines
    return chunk


#: fields the checker reads: when one of them sits in an Arrow row's extra JSON (a value of an odd type), the
#: file takes the exact path, which judges the value as the JSONL reader would
_CHECKED = frozenset(name for name, _ in _LEAN) | {"phase", "fault", "target", "id", "regions", "region_loss"} | set(
    _FAILOVER_FIELDS)


def _needs_exact(table: pa.Table) -> bool:
    extra = table.column(history_arrow.EXTRA)
    if extra.null_count == len(extra):
        return False
    return any(not _CHECKED.isdisjoint(orjson.loads(text)) for text in extra.drop_null().to_pylist())


def _arrow_events(table: pa.Table, torn: str | None) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    """(row from 1, kind, event, reason) per row of a slice of an Arrow history, classified as the JSONL reader does;
    then the torn batch as a bad one."""
    number = 0
    for batch in table.to_batches():
        for event in history_arrow.decode_rows(batch):
            number += 1
            kind, reason = check_event(event)
            yield number, kind, (None if kind == "bad" else event), reason
    if torn is not None:
        yield number + 1, "bad", None, torn


def arrow_chunk(path: str | os.PathLike[str], *, skip_bad: bool = False, start: int = 0,
                stop: int | None = None) -> Chunk:
    """Rows ``start``..``stop`` of one ``*.arrows`` history file as a chunk (lines counted from 1 at ``start``):
    no parsing, its columns are the events' fields. The slice that ends the file also carries a torn last batch,
    as one bad line after the last whole event (reported, or skipped with ``skip_bad``)."""
    read = read_arrow(path)  # memory-mapped: only the slice's pages are read
    last = stop is None or stop >= read.table.num_rows
    table = read.table.slice(start, None if stop is None else stop - start)
    n = table.num_rows
    torn = read.torn if last else None
    chunk = None if _needs_exact(table) else _table_chunk(table, n, lambda: table)
    if chunk is None:
        chunk = _exact_events(_arrow_events(table, torn), n, skip_bad)
    elif torn is not None:
        if skip_bad:
            chunk.bad_count += 1
            chunk.bad.append((n + 1, torn))
        else:
            chunk.error = (n + 1, torn)
    chunk.lines = n if torn is None else n + 1
    return chunk


def _parse_task(task: tuple[str, int, int, bool, bool]) -> Chunk:
    path, start, end, skip_bad, use_threads = task
    if is_arrow(path):
        return compact(arrow_chunk(path, skip_bad=skip_bad, start=start, stop=end))
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    return compact(parse_chunk(data, skip_bad=skip_bad, use_threads=use_threads))


@dataclass(frozen=True, slots=True)
class Repeated:
    """A column of ``count`` equal values (a consumer's file: one region, one process, no subscription named)."""

    value: int
    count: int

    def __len__(self) -> int:
        return self.count


#: a chunk's code columns: the same value on every line, or a handful of local codes (-1 none)
_CODE_COLUMNS = ("send_region", "send_process", "send_producer", "send_key", "send_cluster", "recv_region",
                 "recv_process", "recv_producer", "recv_flags", "recv_subscription", "recv_cluster")


def compact(chunk: Chunk) -> Chunk:
    """The chunk in fewer bytes, for the trip from a parsing worker to the reader (about half of them, so half
    the copying and of the page faults of fresh memory on both sides): line numbers that count every line of the
    chunk (a file of one kind of line) become None, a code column holding one value becomes :class:`Repeated`,
    the others the narrowest integer type their local codes fit. :func:`_absorb` undoes it."""
    n = chunk.lines
    for name in ("send_line", "recv_line"):
        lines = getattr(chunk, name)
        if len(lines) and len(lines) == n and lines[0] == 1 and lines[-1] == n:  # increasing: 1..n
            setattr(chunk, name, None)
    for name in _CODE_COLUMNS:
        codes = getattr(chunk, name)
        if len(codes) < 2:
            continue
        low, high = int(codes.min()), int(codes.max())
        if low == high:
            setattr(chunk, name, Repeated(low, len(codes)))
        elif codes.dtype != np.int8 and -128 <= low and high < 128:
            setattr(chunk, name, codes.astype(np.int8))
        elif codes.dtype.itemsize > 2 and -32768 <= low and high < 32768:
            setattr(chunk, name, codes.astype(np.int16))
    return chunk


def chunk_bounds(path: Path, *, chunk_bytes: int = CHUNK_BYTES, chunk_rows: int = ARROW_CHUNK_ROWS) -> list[int]:
    """Byte offsets cutting a file into chunks of whole lines (about ``chunk_bytes`` each); for an Arrow file,
    row numbers cutting it into slices of ``chunk_rows`` (so no process holds a whole file's columns)."""
    if is_arrow(path):
        rows = read_arrow(path).table.num_rows  # batch headers only: the file is memory-mapped
        return list(range(0, rows, chunk_rows)) + [rows] if rows else [0, 0]
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as fh:
        while size - bounds[-1] > chunk_bytes:
            fh.seek(bounds[-1] + chunk_bytes)
            pos = bounds[-1] + chunk_bytes
            while True:
                block = fh.read(1 << 16)
                if not block:
                    bounds.append(size)
                    return bounds
                cut = block.find(b"\n")
                if cut >= 0:
                    bounds.append(pos + cut + 1)
                    break
                pos += len(block)
    if bounds[-1] != size:
        bounds.append(size)
    return bounds


def _in_order(tasks: list[tuple[str, int, int, bool, bool]], workers: int, *,
              threads: bool = False) -> Iterator[Chunk]:
    """Parse chunks here, or in ``workers`` processes, or (``threads``, Arrow slices only) threads; results in task
    order."""
    if workers <= 1:
        for task in tasks:
            yield _parse_task(task)
        return
    if threads and all(is_arrow(task[0]) for task in tasks):
        # an Arrow slice is a few large Arrow and numpy calls, which release the GIL: threads here cost no worker
        # start and no trip of every column through a pipe
        yield from _threads_in_order(_parse_task, tasks, threads=workers)
        return
    # the leading Arrow slices are read here while the workers start (a JSONL chunk would need numba loaded here)
    here = next((i for i, task in enumerate(tasks[:HERE_MAX]) if not is_arrow(task[0])), min(HERE_MAX, len(tasks)))
    yield from pool.map_in_order("geo_recon.check.ingest:_parse_task", tasks, workers=workers, here=here)


def _threads_in_order(function: Callable[[Any], Chunk], tasks: list[Any], *, threads: int,
                      in_flight: int = 2) -> Iterator[Chunk]:
    """``function(task)`` for each task in ``threads`` threads, results in task order, with at most ``in_flight``
    tasks a thread done or under way and not yet taken (so that parsed chunks never pile up in memory)."""
    with ThreadPoolExecutor(max_workers=threads) as executor:
        pending: deque[Future[Chunk]] = deque()
        try:
            for task in tasks:
                if len(pending) >= in_flight * threads:
                    yield pending.popleft().result()
                pending.append(executor.submit(function, task))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


# --------------------------------------------------------------------------- whole run


class _Global:
    """Global name tables; codes are provisional (first seen) until :meth:`sorted_luts`."""

    def __init__(self) -> None:
        self.tables = {k: _Names() for k in _NAME_KINDS}

    def lut(self, kind: str, local_names: list[str]) -> np.ndarray:
        table = self.tables[kind]
        return np.array([table.code(n) for n in local_names] + [-1], dtype=np.int32)

    def sorted_luts(self, extra_regions: list[str]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
        for region in extra_regions:
            self.tables["region"].code(region)
        luts, names = {}, {}
        for kind, table in self.tables.items():
            order = sorted(range(len(table.names)), key=table.names.__getitem__)
            lut = np.empty(len(order) + 1, dtype=np.int32)
            lut[np.array(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
            lut[-1] = -1
            luts[kind] = lut
            names[kind] = tuple(table.names[i] for i in order)
        return luts, names


_SEND_COLUMNS = ("kind", "time", "region", "process", "producer", "seq", "key", "ref", "cluster")
SENDS = "send"  #: the store's key of the send lines (receipts are keyed by region)
BLOCK_ROWS = 1 << 22  # rows per step where a whole column is not needed at once
CACHE_ROWS = 1 << 16  # rows per step of element-wise work whose temporaries can stay in the CPU's cache


def _pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"short read from a temporary file at byte {offset + done}")
        done += got


def _temporary_file(owner: object) -> Any:
    """An unlinked temporary file, closed when ``owner`` is collected (its space is freed then)."""
    fh = tempfile.TemporaryFile(prefix="geo-recon-receipts-")
    weakref.finalize(owner, fh.close)
    return fh


class _ColumnStore:
    """The parsed lines' columns, in line order: the send lines (key ``SENDS``), and the recv lines per region
    (provisional region codes).

    Held in memory up to ``budget`` bytes; past that, everything goes to
    unlinked temporary files (``TMPDIR``), so that each column is read back
    whole into one array (never its pieces and their concatenation at once),
    a run's receipts are not resident while the sends are folded into
    messages, and each region's receipts are normalised on their own (the page
    cache holds the rest).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.counts: dict[int | str, int] = {}
        self.held: dict[int | str, dict[str, list[np.ndarray]]] = {}
        self.nbytes = 0
        self.files: dict[int | str, dict[str, Any]] | None = None

    def regions(self) -> list[int]:
        return sorted(k for k in self.counts if isinstance(k, int))

    @property
    def spilled(self) -> bool:
        return self.files is not None

    def add(self, region: int | str, columns: dict[str, Any]) -> None:
        n = len(columns["time"])
        if not n:
            return
        self.counts[region] = self.counts.get(region, 0) + n
        columns = {k: v if isinstance(v, _Count) else np.broadcast_to(v[:1].astype(_DTYPES[k]), v.shape)
                   if _is_repeated(v) else np.ascontiguousarray(v, dtype=_DTYPES[k]) for k, v in columns.items()}
        if self.files is not None:
            self._write(region, columns)
            return
        held = self.held.setdefault(region, {k: [] for k in columns})
        for name, values in columns.items():
            held[name].append(values)
            if not isinstance(values, _Count) and not _is_repeated(values):  # these hold no memory
                self.nbytes += values.nbytes
        if self.nbytes > self.budget:
            self.files = {}
            for code, pieces in self.held.items():
                for values in zip(*pieces.values(), strict=True):
                    self._write(code, dict(zip(pieces, values, strict=True)))
            self.held.clear()

    def _write(self, region: int | str, columns: dict[str, Any]) -> None:
        assert self.files is not None
        files = self.files.setdefault(region, {})
        for name, values in columns.items():
            fh = files.get(name)
            if fh is None:
                fh = files[name] = _temporary_file(self)
            fh.write(memoryview(np.ascontiguousarray(values, dtype=_DTYPES[name])).cast("B"))

    def blocks(self, region: int | str) -> Iterator[tuple[int, int]]:
        n = self.counts[region]
        for a in range(0, n, BLOCK_ROWS):
            yield a, min(n, a + BLOCK_ROWS)

    def read(self, region: int | str, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.counts.get(region, 0) if stop is None else stop
        if region not in self.counts:
            return np.zeros(0, dtype=_DTYPES[name])
        if self.files is None:
            pieces = self.held[region][name]
            if len(pieces) > 1 or isinstance(pieces[0], _Count) or _is_repeated(pieces[0]):
                pieces[:] = [_join(pieces, _DTYPES[name])]  # a writable array of its own
            return pieces[0][start:stop]
        fh = self.files[region][name]
        fh.flush()
        out = np.empty(stop - start, dtype=_DTYPES[name])
        _pread_into(fh.fileno(), out, start * out.itemsize)
        return out

    def read_coded(self, region: int | str, name: str, lut: np.ndarray) -> np.ndarray:
        """``lut[read(region, name)]`` (a code column through a lookup table), in memory in one pass per piece
        into one new array: no joined copy of the provisional codes first, and a piece of one value as a fill."""
        if self.files is not None or region not in self.counts:
            return lut[self.read(region, name)]
        pieces = self.held[region][name]
        out = np.empty(self.counts[region], dtype=lut.dtype)
        at = 0
        for piece in pieces:
            n = len(piece)
            if _is_repeated(piece):
                out[at:at + n] = lut[piece[0]]
            else:
                np.take(lut, piece, out=out[at:at + n])
            at += n
        return out

    def drop(self, region: int | str) -> None:
        self.held.pop(region, None)
        for fh in (self.files or {}).pop(region, {}).values():
            fh.close()


class _ReceiptFile:
    """One region's normalised receipts in an unlinked temporary file, loaded by memory-mapping it (like the
    columnar copy): resident only while the check looks at that region."""

    def __init__(self) -> None:
        self.fh = _temporary_file(self)
        self.layout: list[tuple[str, np.dtype[Any], int, int]] = []
        self.size = 0

    def add(self, name: str, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values)
        self.fh.write(memoryview(values).cast("B"))
        self.layout.append((name, values.dtype, len(values), self.size))
        self.size += values.nbytes
        pad = -self.size % 8
        if pad:
            self.fh.write(bytes(pad))
            self.size += pad

    def loader(self) -> Callable[[], Receipts]:
        self.fh.flush()

        def load() -> Receipts:  # holds the file (closed with it) for as long as the history may ask
            if not self.size:
                return Receipts(**{name: np.zeros(0, dtype=dtype) for name, dtype, _, _ in self.layout})
            mapped = mmap.mmap(self.fh.fileno(), self.size, access=mmap.ACCESS_READ)
            return Receipts(**{name: np.frombuffer(mapped, dtype=dtype, count=n, offset=offset)
                               for name, dtype, n, offset in self.layout})
        return load


@dataclass
class _Parts:
    columns: _ColumnStore
    faults: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    failovers: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    lines: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    bad: list[BadLine] = field(default_factory=list)
    bad_count: int = 0


def _absorb(parts: _Parts, chunk: Chunk, *, file_index: int, path: str, first_line: int, names: _Global) -> None:
    """Add a chunk: map its names to global codes and its lines to absolute line references."""
    if chunk.error is not None:
        line, reason = chunk.error
        raise HistoryError(reason, path=path, line=first_line + line - 1)
    luts = {k: names.lut(k, chunk.names[k]) for k in chunk.names}
    base = (np.int64(file_index) << np.int64(REF_LINE_BITS)) + np.int64(first_line - 1)
    n_send = len(chunk.send_time)
    parts.columns.add(SENDS, {
        "kind": chunk.send_kind, "time": chunk.send_time, "region": _coded(luts["region"], chunk.send_region),
        "process": _coded(luts["process"], chunk.send_process),
        "producer": _coded(luts["producer"], chunk.send_producer), "seq": chunk.send_seq,
        "key": _coded(luts["key"], chunk.send_key), "ref": _refs(chunk.send_line, n_send, base),
        "cluster": _coded(luts["region"], chunk.send_cluster)})
    if len(chunk.recv_time):
        columns = {"time": chunk.recv_time, "process": _coded(luts["process"], chunk.recv_process),
                   "producer": _coded(luts["producer"], chunk.recv_producer), "seq": chunk.recv_seq,
                   "hash": chunk.recv_hash, "flags": _coded(None, chunk.recv_flags),
                   "ref": _refs(chunk.recv_line, len(chunk.recv_time), base),
                   "subscription": _coded(luts["subscription"], chunk.recv_subscription),
                   "cluster": _coded(luts["region"], chunk.recv_cluster)}
        region = _coded(luts["region"], chunk.recv_region)
        if _is_repeated(region) or (region == region[0]).all():  # a consumer's file: one region
            parts.columns.add(int(region[0]), columns)
        else:
            for code in np.unique(region).tolist():
                rows = region == code
                parts.columns.add(code, {k: np.asarray(v)[rows] for k, v in columns.items()})
    parts.faults.extend((file_index, first_line + line - 1, event) for line, event in chunk.faults)
    parts.failovers.extend((file_index, first_line + line - 1, event) for line, event in chunk.failovers)
    parts.lines += chunk.lines
    parts.ignored.update(chunk.ignored)
    parts.bad_count += chunk.bad_count
    for line, reason in chunk.bad[: max(0, EXAMPLES - len(parts.bad))]:
        parts.bad.append(BadLine(path, first_line + line - 1, reason))


def _coded(lut: np.ndarray | None, codes: np.ndarray | Repeated) -> np.ndarray:
    """A chunk's code column through a lookup table (None: as it is); a :class:`Repeated` one as a read-only
    view of its one value (no memory as long as the run), which the column store keeps as such."""
    if isinstance(codes, Repeated):
        value = codes.value if lut is None else lut[codes.value]
        return np.broadcast_to(np.asarray(value), (codes.count,))
    return codes if lut is None else lut[codes]


@dataclass(frozen=True, slots=True)
class _Count:
    """The column ``first, first + 1, ...`` (``count`` values): a chunk's line references, not held as an array
    until the column store joins its pieces."""

    first: int
    count: int

    def __len__(self) -> int:
        return self.count

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.arange(self.first, self.first + self.count, dtype=dtype or np.int64)


def _refs(lines: np.ndarray | None, n: int, base: np.int64) -> np.ndarray | _Count:
    """Line references of a chunk's rows (``lines`` None: its rows are its lines 1..n)."""
    if lines is None:
        return _Count(int(base) + 1, n)
    return lines + base


def _is_repeated(values: np.ndarray | _Count) -> bool:
    """A view of one value repeated (see :func:`_coded`)."""
    return isinstance(values, np.ndarray) and values.ndim == 1 and len(values) > 1 and values.strides[0] == 0


def _join(pieces: list[Any], dtype: Any) -> np.ndarray:
    """One array of a column's pieces (arrays, repeated values, :class:`_Count`), each written in place once."""
    out = np.empty(sum(len(p) for p in pieces), dtype=dtype)
    at = 0
    for piece in pieces:
        n = len(piece)
        if isinstance(piece, _Count):
            out[at:at + n] = np.arange(piece.first, piece.first + n, dtype=dtype)
        elif _is_repeated(piece):
            out[at:at + n] = piece[0]
        else:
            out[at:at + n] = piece
        at += n
    return out


def read_history(run_dir: str | os.PathLike[str], *, skip_bad: bool = False, workers: int | None = None,
                 chunk_bytes: int = CHUNK_BYTES, chunk_rows: int = ARROW_CHUNK_ROWS,
                 spill_bytes: int | None = None) -> History:
    """Read ``RUN_DIR/run.json`` and every history file (``*.jsonl``, ``*.arrows``) into a :class:`History`.

    ``workers``: processes parsing chunks, or threads when every file is Arrow and the read will not spill
    (default: one per CPU, at most 4, when the history is larger than ``PARALLEL_MIN_BYTES``; 1 parses here).
    ``spill_bytes``: parsed columns held in memory while reading (default
    ``SPILL_BYTES``); past that they go to temporary files, and so do each
    region's normalised receipts (then loaded one region at a time, as from the
    columnar copy).
    """
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    files = history_files(run_dir)
    rel = tuple(str(p.relative_to(run_dir)) for p in files)
    bounds = [chunk_bounds(p, chunk_bytes=chunk_bytes, chunk_rows=chunk_rows) for p in files]
    total = sum(p.stat().st_size for p in files)
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if total > PARALLEL_MIN_BYTES else 1
    tasks = [(str(path), a, b, skip_bad, workers <= 1)
             for path, cuts in zip(files, bounds, strict=True) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    where = [(index, a) for index, cuts in enumerate(bounds) for a in cuts[:-1]]
    names = _Global()
    parts = _Parts(columns=_ColumnStore(SPILL_BYTES if spill_bytes is None else spill_bytes))
    line_index: list[list[tuple[int, int]]] = [[] for _ in files]
    next_line = [1] * len(files)
    budget = SPILL_BYTES if spill_bytes is None else spill_bytes
    # Arrow slices are parsed in threads here when the read will be held in memory; a read that will spill (a large
    # history, where the peak RSS is what counts) leaves the parsing and its temporaries to worker processes
    threads = all(is_arrow(p) for p in files) and sum(cuts[-1] for cuts in bounds) * ARROW_ROW_BYTES <= budget
    for (file_index, offset), chunk in zip(where, _in_order(tasks, workers, threads=threads), strict=True):
        first_line = next_line[file_index]
        if not line_index[file_index] or not is_arrow(files[file_index]):  # an Arrow file is found by row
            line_index[file_index].append((first_line, offset))
        _absorb(parts, chunk, file_index=file_index, path=str(files[file_index]), first_line=first_line,
                names=names)
        next_line[file_index] += chunk.lines
        del chunk
    formats = sorted({"arrow" if is_arrow(p) else "jsonl" for p in files}, reverse=True)
    summary = InputSummary(source="+".join(formats) or "jsonl", files=len(files), lines=parts.lines, skipped=parts.bad_count,
                           skipped_examples=tuple(str(b) for b in parts.bad), ignored=dict(parts.ignored),
                           not_read=tuple(str(p.relative_to(run_dir)) for p in other_files(run_dir)))
    history = build_history(run=run, files=rel, parts=parts, names=names, summary=summary)
    return dataclasses.replace(history, line_index=tuple(tuple(x) for x in line_index))


def _cat(pieces: list[np.ndarray], dtype: Any) -> np.ndarray:
    if not pieces:
        return np.zeros(0, dtype=dtype)
    out = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    pieces.clear()
    return out.astype(dtype, copy=False)


_DTYPES = {"kind": np.int8, "time": np.int64, "region": np.int32, "process": np.int32, "producer": np.int32,
           "seq": np.int64, "key": np.int32, "ref": np.int64, "hash": np.int64, "flags": np.int8,
           "cluster": np.int32, "subscription": np.int32}


def build_history(*, run: dict[str, Any], files: tuple[str, ...], parts: _Parts, names: _Global,
                  summary: InputSummary) -> History:
    """Normalise the parsed lines into the checker's tables: the sends first, then each region's receipts."""
    listed = list(run["regions"])
    luts, tables = names.sorted_luts(listed)
    store = parts.columns
    big = store.spilled
    if big:
        release_free_memory()  # the chunks' arrays, freed: the columns read back whole need new room
    coded = {"region": "region", "process": "process", "producer": "producer", "cluster": "region", "key": "key"}
    s = {k: store.read_coded(SENDS, k, luts[coded[k]]) if k in coded else store.read(SENDS, k)
         for k in _SEND_COLUMNS}
    store.drop(SENDS)

    index = DenseIndex.of(n_producers=len(tables["producer"]), send_producer=s["producer"], send_seq=s["seq"])
    send_msg = index.direct(s["producer"], s["seq"])
    send_rest = send_msg < 0
    provisional = store.regions()

    def outside(region: int) -> tuple[np.ndarray, np.ndarray]:
        """The region's receipts of (producer, seq) outside the dense ranges."""
        return _cat_pairs([_rest_of(index, luts["producer"][store.read(region, "producer", a, b)],
                                    store.read(region, "seq", a, b)) for a, b in store.blocks(region)])

    n_regions = len(tables["region"])
    receipts: list[Receipts | Callable[[], Receipts]] = [_no_receipts()] * n_regions
    counts = [0] * n_regions

    def normalised(job: tuple[int, np.ndarray]) -> Receipts | Callable[[], Receipts]:
        return _region_receipts(store, job[0], luts=luts, index=index, rest_msg=job[1])

    # in memory, two regions at a time (numpy's lookups and sorts release the GIL), while this thread folds the
    # sends; spilled, one at a time and after the sends, so that one region's columns are resident at once
    pairs = not big and len(provisional) > 1 and (os.cpu_count() or 1) > 1
    with ThreadPoolExecutor(max_workers=2) if pairs else contextlib.nullcontext() as threads:
        rest = [(s["producer"][send_rest], s["seq"][send_rest]),
                *(threads.map(outside, provisional) if threads else map(outside, provisional))]
        identity, inverses = index.with_rest(rest)
        send_msg[send_rest] = inverses[0]
        del s["producer"], s["seq"], send_rest, rest
        jobs = list(zip(provisional, inverses[1:], strict=True))
        built_all = threads.map(normalised, jobs) if threads else None
        if big:
            release_free_memory()  # the index's temporaries
        messages = aggregate_sends(messages=identity, send_msg=send_msg, s=s)
        del identity, send_msg

        completed = s["kind"] > 0
        completions = Completions(
            time=s["time"][completed], region=s["region"][completed].astype(np.int16),
            outcome=KIND_TO_OUTCOME[s["kind"][completed]], process=s["process"][completed],
            cluster=s["cluster"][completed].astype(np.int16))
        del s, completed
        if big:
            release_free_memory()

        for (region, _), built in zip(jobs, built_all if built_all is not None else map(normalised, jobs),
                                      strict=True):
            code = int(luts["region"][region])
            receipts[code] = built
            counts[code] = store.counts[region]
            store.drop(region)
            del built
            if big:
                release_free_memory()
    faults = tuple(
        FaultEvent(time=e["time"], phase=e["phase"], fault=e["fault"], target=e["target"], id=e["id"],
                   regions=tuple(e["regions"]) if e.get("regions") is not None else None,
                   region_loss=e.get("region_loss"), process=e.get("process"))
        for _, _, e in sorted(parts.faults, key=lambda item: (item[2]["time"], item[0], item[1])))
    failovers = tuple(
        FailoverEvent(time=e["time"], region=e["region"], process=e["process"], client=e["client"], role=e["role"],
                      source=e["from"], target=e["to"], mode=e.get("mode"))
        for _, _, e in sorted(parts.failovers, key=lambda item: (item[2]["time"], item[0], item[1])))
    return History(
        regions=tuple(listed), region_names=tables["region"], processes=tables["process"],
        producers=tables["producer"], keys=tables["key"], files=files, messages=messages,
        completions=completions, receipts=tuple(receipts), receipt_counts=tuple(counts),
        faults=faults, run=run, input=summary, subscriptions=tables["subscription"], failovers=failovers)


def _no_receipts() -> Receipts:
    i64 = np.zeros(0, dtype=np.int64)
    return Receipts(msg=i64, time=i64, process=np.zeros(0, dtype=np.int32), msg_hash=i64,
                    flags=np.zeros(0, dtype=np.int8), ref=i64, subscription=np.zeros(0, dtype=np.int32),
                    cluster=np.zeros(0, dtype=np.int16))


def _rest_of(index: DenseIndex, producer: np.ndarray, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outside = index.direct(producer, seq) < 0
    return producer[outside], seq[outside]


def _cat_pairs(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (_cat([p for p, _ in pairs], np.int32), _cat([q for _, q in pairs], np.int64))


def _region_receipts(store: _ColumnStore, region: int, *, luts: dict[str, np.ndarray], index: DenseIndex,
                     rest_msg: np.ndarray) -> Receipts | Callable[[], Receipts]:
    """One region's receipts, ordered by (process, time, file order): in memory, or (when the store spilled) in a
    temporary file, column by column."""
    n = store.counts[region]
    msg = np.empty(n, dtype=np.int64)
    done = 0
    for a, b in store.blocks(region):
        block = index.direct(luts["producer"][store.read(region, "producer", a, b)], store.read(region, "seq", a, b))
        outside = np.flatnonzero(block < 0)
        block[outside] = rest_msg[done:done + len(outside)]
        done += len(outside)
        msg[a:b] = block
    process = store.read_coded(region, "process", luts["process"])
    time = store.read(region, "time")
    ref = store.read(region, "ref")
    order = order_receipts(process, time, ref)
    ready = {"msg": msg, "process": process, "time": time, "ref": ref}
    del msg, process, time, ref

    def column(name: str) -> np.ndarray:
        values = ready.pop(name, None)
        if values is None and name == "subscription":
            values = store.read_coded(region, "subscription", luts["subscription"])
        elif values is None and name == "cluster":
            values = store.read_coded(region, "cluster", luts["region"])
        elif values is None:
            values = store.read(region, "hash" if name == "msg_hash" else name)
        values = values if order is None else values[order]
        return values.astype(_RECEIPT_DTYPES[name], copy=False)

    if not store.spilled:
        return Receipts(**{name: column(name) for name in _RECEIPT_DTYPES})
    out = _ReceiptFile()
    for name in _RECEIPT_DTYPES:  # one column resident at a time (besides the ordering's keys)
        out.add(name, column(name))
    return out.loader()


_RECEIPT_DTYPES = {"msg": np.int64, "time": np.int64, "process": np.int32, "msg_hash": np.int64, "flags": np.int8,
                   "ref": np.int64, "subscription": np.int32, "cluster": np.int16}


@dataclass(frozen=True, slots=True)
class DenseIndex:
    """Rows for (producer, seq) pairs: producers whose send seqs are dense get one row per seq in [min, max]
    (direct addressing, no sort); every other pair (sparse producers, receipts outside their producer's range,
    producers never seen sending) gets a row after those, sorted by (producer, seq). Within one producer's dense
    range, or among the rest, a larger row means a larger seq."""

    lo: np.ndarray
    hi: np.ndarray
    dense: np.ndarray
    base: np.ndarray

    @classmethod
    def of(cls, *, n_producers: int, send_producer: np.ndarray, send_seq: np.ndarray) -> DenseIndex:
        big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        counts = np.bincount(send_producer, minlength=n_producers)[:n_producers]
        lo = np.full(n_producers, big, dtype=np.int64)
        hi = np.full(n_producers, small, dtype=np.int64)
        np.minimum.at(lo, send_producer, send_seq)
        np.maximum.at(hi, send_producer, send_seq)
        has = counts > 0
        # spans in float first: hi - lo may not fit in int64
        dense = has & ((hi.astype(np.float64) - lo.astype(np.float64) + 1) <= 2 * counts + 1024)
        span = np.where(dense, hi - np.where(dense, lo, 0) + 1, 0).astype(np.int64)
        base = np.concatenate([[0], np.cumsum(span)]).astype(np.int64)
        return cls(lo=lo, hi=hi, dense=dense, base=base)

    def direct(self, producer: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """The dense row of each pair, -1 for the rest (in blocks: the temporaries stay small, in the cache)."""
        out = np.empty(len(producer), dtype=np.int64)
        step = min(BLOCK_ROWS, CACHE_ROWS)
        for a in range(0, len(producer), step):
            p, q = producer[a:a + step], seq[a:a + step]
            p_lo, p_hi = self.lo[p], self.hi[p]
            inside = self.dense[p] & (q >= p_lo) & (q <= p_hi)
            out[a:a + step] = np.where(inside, self.base[p] + (q - np.where(inside, p_lo, 0)), -1)
        return out

    def with_rest(self, rest: list[tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """(producer/seq column of every row, the row of each pair in each part of ``rest``): the dense rows,
        then the distinct pairs of ``rest`` (pairs ``direct`` left out) sorted."""
        n_producers = len(self.lo)
        span = np.diff(self.base)
        n_dense = int(self.base[-1])
        producer = np.repeat(np.arange(n_producers, dtype=np.int32), span)
        seq = np.arange(n_dense, dtype=np.int64) - np.repeat(self.base[:-1] - np.where(self.dense, self.lo, 0), span)
        sizes = [len(p) for p, _ in rest]
        rest_p = np.concatenate([p for p, _ in rest]) if rest else np.zeros(0, dtype=np.int32)
        rest_s = np.concatenate([q for _, q in rest]) if rest else np.zeros(0, dtype=np.int64)
        inverse = np.zeros(0, dtype=np.int64)
        if len(rest_p):
            order = np.lexsort((rest_s, rest_p))
            rp, rs = rest_p[order], rest_s[order]
            first = np.ones(len(rp), dtype=bool)
            first[1:] = (rp[1:] != rp[:-1]) | (rs[1:] != rs[:-1])
            inverse = np.empty(len(rp), dtype=np.int64)
            inverse[order] = np.cumsum(first) - 1 + n_dense
            producer = np.concatenate([producer, rp[first].astype(np.int32)])
            seq = np.concatenate([seq, rs[first]])
        cuts = np.cumsum([0, *sizes])
        return {"producer": producer, "seq": seq}, [inverse[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _first_row(m: int, msg: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per message, the smallest of ``rows`` (line order) that belongs to it, or -1."""
    pick = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    for a in range(0, len(rows), BLOCK_ROWS):
        np.minimum.at(pick, msg[rows[a:a + BLOCK_ROWS]], rows[a:a + BLOCK_ROWS])
    pick[pick == np.iinfo(np.int64).max] = -1
    return pick


def aggregate_sends(*, messages: dict[str, np.ndarray], send_msg: np.ndarray, s: dict[str, np.ndarray]) -> Messages:
    """Fold the send lines of each message into one outcome: ok > info > pending > fail.

    PENDING means more invokes than completions (an invoke never completed).
    Rows are in file order (files sorted by path), so "first" is well defined.
    """
    m = len(messages["seq"])
    is_invoke = s["kind"] == 0
    # flags, not counts, per message (a count costs 8 bytes a message): only pending needs a difference
    open_invokes = np.bincount(send_msg[is_invoke], minlength=m)
    once = open_invokes.max(initial=0) <= 1
    completions = np.bincount(send_msg[~is_invoke], minlength=m)
    once &= completions.max(initial=0) <= 1
    open_invokes -= completions
    del completions
    pending = open_invokes > 0
    del open_invokes
    if once:
        outcome, invoke_time, done_time, done_ref, pick = _fold_once(m, send_msg=send_msg, s=s, is_invoke=is_invoke)
    else:
        outcome, invoke_time, done_time, done_ref, pick = _fold_lines(m, send_msg=send_msg, s=s, is_invoke=is_invoke,
                                                                      pending=pending)
    del pending
    seen_send = pick >= 0
    safe = np.maximum(pick, 0)
    kind = s["kind"]
    origin = np.where(seen_send, s["region"][safe], -1).astype(np.int16) if len(kind) else np.full(m, -1, np.int16)
    process = np.where(seen_send, s["process"][safe], -1).astype(np.int32) if len(kind) else np.full(m, -1, np.int32)
    key = np.where(seen_send, s["key"][safe], -1).astype(np.int32) if len(kind) else np.full(m, -1, np.int32)
    return Messages(producer=messages["producer"].astype(np.int32), seq=messages["seq"], origin=origin,
                    key=key, process=process, outcome=outcome, invoke_time=invoke_time, done_time=done_time,
                    done_ref=done_ref.astype(np.int64))


_Folded = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fold_once(m: int, *, send_msg: np.ndarray, s: dict[str, np.ndarray], is_invoke: np.ndarray) -> _Folded:
    """:func:`_fold_lines` when no message has two invoke lines or two completions (the usual history): each
    first, last or only line is the one line, so plain assignments replace the folds (same values); in blocks of
    rows, so that the temporaries stay small.

    (outcome, invoke time, done time, done line reference, the row that names origin, process and key)."""
    kind, time, ref = s["kind"], s["time"], s["ref"]
    outcome = np.full(m, Outcome.NEVER_INVOKED, dtype=np.int8)
    invoke_time = np.full(m, NO_TIME, dtype=np.int64)
    done_time = np.full(m, NO_TIME, dtype=np.int64)
    done_ref = np.full(m, -1, dtype=np.int64)
    pick = np.full(m, -1, dtype=np.int64)  # the invoke line, else the completion
    for a in range(0, len(kind), BLOCK_ROWS):
        rows = np.flatnonzero(is_invoke[a:a + BLOCK_ROWS])
        msg = send_msg[a:a + BLOCK_ROWS][rows]
        outcome[msg] = Outcome.PENDING  # invoked: its completion, if any, decides
        invoke_time[msg] = time[a:a + BLOCK_ROWS][rows]
        pick[msg] = rows + a
    for a in range(0, len(kind), BLOCK_ROWS):
        rows = np.flatnonzero(~is_invoke[a:a + BLOCK_ROWS])
        msg = send_msg[a:a + BLOCK_ROWS][rows]
        outcome[msg] = KIND_TO_OUTCOME[kind[a:a + BLOCK_ROWS][rows]]
        done_time[msg] = time[a:a + BLOCK_ROWS][rows]
        done_ref[msg] = ref[a:a + BLOCK_ROWS][rows]
        pick[msg] = np.where(pick[msg] < 0, rows + a, pick[msg])
    return outcome, invoke_time, done_time, done_ref, pick


def _fold_lines(m: int, *, send_msg: np.ndarray, s: dict[str, np.ndarray], is_invoke: np.ndarray,
                pending: np.ndarray) -> _Folded:
    """Any number of send lines a message: (outcome, invoke time, done time, done line reference, the row that
    names origin, process and key: the first invoke line, else the first line)."""
    kind, time = s["kind"], s["time"]

    def seen(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(m, dtype=bool)
        for a in range(0, len(mask), BLOCK_ROWS):
            out[send_msg[a:a + BLOCK_ROWS][mask[a:a + BLOCK_ROWS]]] = True
        return out

    def fold(ufunc: np.ufunc, out: np.ndarray, mask: np.ndarray) -> None:
        """``ufunc.at(out, send_msg[mask], time[mask])``, in blocks."""
        for a in range(0, len(mask), BLOCK_ROWS):
            rows = mask[a:a + BLOCK_ROWS]
            ufunc.at(out, send_msg[a:a + BLOCK_ROWS][rows], time[a:a + BLOCK_ROWS][rows])

    invoked, has_ok = seen(is_invoke), seen(kind == 1)
    outcome = np.full(m, Outcome.NEVER_INVOKED, dtype=np.int8)
    outcome[seen(kind == 2)] = Outcome.FAIL
    outcome[pending] = Outcome.PENDING
    outcome[seen(kind == 3)] = Outcome.INFO
    outcome[has_ok] = Outcome.OK

    big = np.iinfo(np.int64).max
    invoke_time = np.full(m, big, dtype=np.int64)
    fold(np.minimum, invoke_time, is_invoke)
    invoke_time[~invoked] = NO_TIME

    # done time: the first ok; without an ok, the last fail/info
    first_ok = np.full(m, big, dtype=np.int64)
    is_ok = kind == 1
    fold(np.minimum, first_ok, is_ok)
    del is_ok
    last_other = np.full(m, NO_TIME, dtype=np.int64)
    other = (kind == 2) | (kind == 3)
    fold(np.maximum, last_other, other)
    del other
    done_time = np.where(has_ok, first_ok, last_other)
    del first_ok, last_other
    at_done = _rows_where(len(kind), lambda a, b: (kind[a:b] > 0) & (time[a:b] == done_time[send_msg[a:b]]) & (
        (kind[a:b] == 1) | ~has_ok[send_msg[a:b]]))
    pick = _first_row(m, send_msg, at_done)
    del at_done
    done_ref = np.where(pick >= 0, s["ref"][np.maximum(pick, 0)], -1) if len(kind) else np.full(m, -1, np.int64)

    # origin, key and sending process: from the first invoke line, else from the first send line
    pick = _first_row(m, send_msg, np.flatnonzero(is_invoke))
    unpicked = pick < 0
    if unpicked.any():  # messages without an invoke line: their first line of any kind
        rows = _rows_where(len(kind), lambda a, b: unpicked[send_msg[a:b]])
        pick = np.where(unpicked, _first_row(m, send_msg, rows), pick)
        del rows
    return outcome, invoke_time, done_time, done_ref, pick


def _rows_where(n: int, mask_of: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """The rows (int64) where ``mask_of(a, b)`` (rows a..b) is true, computed in blocks to keep temporaries small."""
    parts = [np.flatnonzero(mask_of(a, min(n, a + BLOCK_ROWS))) + a for a in range(0, n, BLOCK_ROWS)]
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, dtype=np.int64)


def order_receipts(process: np.ndarray, time: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """A permutation ordering rows by (process, time, ref), or None when they already are (the usual case)."""
    if len(process) < 2:
        return None
    same = process[1:] == process[:-1]
    ordered = (process[1:] >= process[:-1]) & (~same | (time[1:] > time[:-1]) |
                                                ((time[1:] == time[:-1]) & (ref[1:] > ref[:-1])))
    if ordered.all():
        return None
    return np.lexsort((ref, time, process))
