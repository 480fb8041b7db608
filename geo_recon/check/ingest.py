"""Read a run's JSONL history into the checker's columns (:class:`~geo_recon.check.model.History`).

Files are read in chunks of whole lines. Each chunk goes through a fast path
(Arrow's multi-threaded JSON parser with a fixed schema, then vectorised
validation); if anything in the chunk looks wrong (a parse error, a missing
field, a blank line, a row count that does not match the line count) the chunk
is re-read line by line with :func:`geo_recon.history.parse_line`, which is the
single authority on what a valid line is, and which names the file and line of
the first bad one (or, with ``skip_bad``, skips and counts bad lines). So the
fast path only ever accepts what the slow path would accept, with the same
values.

Chunks are parsed in worker processes when there are several (``workers``),
each returning compact arrays with chunk-local name tables that the parent maps
to global codes.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator
import dataclasses
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from geo_recon.check.model import (
    FLAG_READER,
    NO_TIME,
    ORDERING_CODES,
    ORDERING_SHIFT,
    REF_LINE_BITS,
    Completions,
    FaultEvent,
    History,
    InputSummary,
    Messages,
    Outcome,
    Receipts,
)
from geo_recon.history import (
    BadLine,
    HistoryError,
    history_files,
    normalise_subscription,
    parse_line,
    read_run_json,
)

CHUNK_BYTES = 16 << 20
PARALLEL_MIN_BYTES = 64 << 20  # below this, worker start-up costs more than it saves
ARROW_BLOCK_BYTES = 1 << 20
EXAMPLES = 20  # skipped lines quoted in the result

SEND_KIND = {"invoke": 0, "ok": 1, "fail": 2, "info": 3}
KIND_TO_OUTCOME = np.array([Outcome.PENDING, Outcome.OK, Outcome.FAIL, Outcome.INFO], dtype=np.int8)

_SCHEMA = pa.schema([
    ("type", pa.string()), ("f", pa.string()), ("time", pa.int64()), ("region", pa.string()),
    ("process", pa.string()), ("producer", pa.string()), ("seq", pa.int64()), ("key", pa.string()),
    ("topic", pa.string()), ("msg_id", pa.string()), ("via", pa.string()),
    ("subscription_type", pa.string()), ("redelivery", pa.int64()), ("phase", pa.string()),
    ("fault", pa.string()), ("target", pa.string()), ("id", pa.string()),
    ("regions", pa.list_(pa.string())), ("region_loss", pa.bool_()),
])
_TYPE_CODE = {"invoke": 0, "ok": 1, "fail": 2, "info": 3, "recv": 4, "fault": 5}
_IGNORED_CODE = 6
_VIA_READER = {"consumer": False, "reader": True}

# --------------------------------------------------------------------------- msg_id hashing

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [2**64 - 1], dtype=np.uint64)
_U64 = (1 << 64) - 1


def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return h ^ (h >> np.uint64(31))


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


def hash_msg_ids(arr: pa.Array) -> np.ndarray:
    """Vectorised :func:`hash_msg_id` over an Arrow string array (nulls hash as "")."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
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
    end = int(offsets[-1])
    padded = np.zeros(end + 8, dtype=np.uint8)
    if buffers[2] is not None and end:
        padded[:end] = np.frombuffer(buffers[2], dtype=np.uint8)[:end]
    # element i of `words` is the little-endian 8 bytes starting at byte i
    words = np.ndarray((end + 1,), dtype="<u8", buffer=padded, strides=(1,))
    h = lengths.astype(np.uint64) * _GOLDEN
    n_words = (lengths + 7) // 8
    for k in range(int(n_words.max())):
        keep = np.clip(lengths - 8 * k, 0, 8)
        word = words[np.minimum(starts + 8 * k, end)] & _MASKS[keep]
        h = np.where(n_words > k, _mix(h ^ word), h)
    return _mix(h).view(np.int64)


# --------------------------------------------------------------------------- one chunk


@dataclass(slots=True)
class Chunk:
    """The lines of one chunk as compact columns, with chunk-local name tables."""

    names: dict[str, list[str]]  # "region", "process", "producer", "key" -> local names
    send_kind: np.ndarray  # int8 SEND_KIND
    send_time: np.ndarray
    send_region: np.ndarray  # local codes
    send_process: np.ndarray
    send_producer: np.ndarray
    send_seq: np.ndarray
    send_key: np.ndarray  # -1 none
    send_line: np.ndarray  # int64 line numbers
    recv_time: np.ndarray
    recv_region: np.ndarray
    recv_process: np.ndarray
    recv_producer: np.ndarray
    recv_seq: np.ndarray
    recv_hash: np.ndarray
    recv_flags: np.ndarray
    recv_line: np.ndarray
    faults: list[tuple[int, dict[str, Any]]]  # (line, event)
    lines: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    bad: list[BadLine] = field(default_factory=list)
    bad_count: int = 0


class _Names:
    """Chunk-local name table builder."""

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
        """Local codes for a string column (-1 for nulls)."""
        encoded = pc.dictionary_encode(column)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        lut = np.array([self.code(name) for name in encoded.dictionary.to_pylist()] + [-1], dtype=np.int32)
        indices = encoded.indices
        if indices.null_count:
            indices = pc.fill_null(indices, len(lut) - 1)
        return lut[indices.to_numpy(zero_copy_only=False)]


def _is_null(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count == 0:
        return np.zeros(len(column), dtype=bool)
    return column.is_null().to_numpy(zero_copy_only=False)


def _ints(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count:
        column = pc.fill_null(column, 0)
    return column.to_numpy().astype(np.int64, copy=False)


def _looks_blank_somewhere(chunk: bytes) -> bool:
    """True when the chunk may hold a blank (whitespace-only) line; then the exact path reads it."""
    if chunk[:1] in (b"\n", b" ", b"\t", b"\r"):
        return True
    return any(probe in chunk for probe in (b"\n\n", b"\n ", b"\n\t", b"\n\r"))


def _fast_chunk(data: bytes, first_line: int, n_lines: int, *, use_threads: bool = True) -> Chunk | None:
    """Parse a chunk with Arrow; None when anything needs the exact line-by-line path."""
    if _looks_blank_somewhere(data):
        return None
    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=use_threads, block_size=ARROW_BLOCK_BYTES),
            parse_options=pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != n_lines:
        return None
    col = table.column
    types = col("type")
    if types.null_count:
        return None
    type_enc = pc.dictionary_encode(types).combine_chunks()
    type_lut = np.array([_TYPE_CODE.get(t, _IGNORED_CODE) for t in type_enc.dictionary.to_pylist()], dtype=np.int8)
    tcode = type_lut[type_enc.indices.to_numpy()]
    is_send_type = tcode < 4
    ignored = tcode == _IGNORED_CODE
    ignored_names: Counter[str] = Counter()
    if ignored.any():
        ignored_names.update({t: int(c) for t, c in zip(type_enc.dictionary.to_pylist(),
                                                          np.bincount(type_enc.indices.to_numpy(),
                                                                      minlength=len(type_lut)), strict=True)
                              if _TYPE_CODE.get(t) is None and c})
    send = np.zeros(len(tcode), dtype=bool)
    if is_send_type.any():
        f_null = _is_null(col("f"))
        if (is_send_type & f_null).any():
            return None
        f_send = (pc.equal(col("f"), "send").to_numpy(zero_copy_only=False) if not f_null.all()
                  else np.zeros(len(tcode), dtype=bool))
        f_send = np.where(f_null, False, f_send).astype(bool)
        send = is_send_type & f_send
        other_f = is_send_type & ~f_send
        if other_f.any():
            ignored_names.update({"send-type lines with f other than 'send'": int(other_f.sum())})
            ignored = ignored | other_f
    recv = tcode == 4
    fault = tcode == 5
    used = ~ignored
    if (_is_null(col("time")) & used).any():
        return None
    for name in ("region", "process", "producer", "seq"):
        if (_is_null(col(name)) & (send | recv)).any():
            return None
    if (_is_null(col("msg_id")) & recv).any():
        return None
    if fault.any():
        for name in ("phase", "fault", "target", "id"):
            if (_is_null(col(name)) & fault).any():
                return None
        phases = col("phase").take(pa.array(np.flatnonzero(fault))).to_pylist()
        if any(p not in ("start", "stop") for p in phases):
            return None

    names = {k: _Names() for k in ("region", "process", "producer", "key")}
    s_idx = np.flatnonzero(send)
    r_idx = np.flatnonzero(recv)
    u_idx = np.flatnonzero(send | recv)  # only lines the checker uses contribute names
    used_table = table.select(["time", "region", "process", "producer", "seq"]).take(pa.array(u_idx))
    ucol = used_table.column
    time = _ints(ucol("time"))
    region = names["region"].encode(ucol("region"))
    process = names["process"].encode(ucol("process"))
    producer = names["producer"].encode(ucol("producer"))
    seq = _ints(ucol("seq"))
    s_pos = np.flatnonzero(send[u_idx])
    r_pos = np.flatnonzero(recv[u_idx])
    key = names["key"].encode(col("key").take(pa.array(s_idx))) if len(s_idx) else np.zeros(0, np.int32)
    lines = np.int64(first_line) + u_idx.astype(np.int64)

    flags = np.zeros(len(r_idx), dtype=np.int8)
    if len(r_idx):
        via = col("via").take(pa.array(r_idx))
        if via.null_count < len(via):
            via_enc = pc.dictionary_encode(via).combine_chunks()
            via_values = via_enc.dictionary.to_pylist()
            if any(v not in _VIA_READER for v in via_values):
                return None
            via_lut = np.array([_VIA_READER[v] for v in via_values] + [False], dtype=bool)
            idx = pc.fill_null(via_enc.indices, len(via_values)).to_numpy()
            flags |= via_lut[idx].astype(np.int8) * FLAG_READER
        sub = col("subscription_type").take(pa.array(r_idx))
        if sub.null_count < len(sub):
            sub_enc = pc.dictionary_encode(sub).combine_chunks()
            orderings = [normalise_subscription(v) for v in sub_enc.dictionary.to_pylist()]
            if any(o is None for o in orderings):
                return None
            sub_lut = np.array([ORDERING_CODES[o] for o in orderings] + [0], dtype=np.int8)  # type: ignore[index]
            idx = pc.fill_null(sub_enc.indices, len(orderings)).to_numpy()
            flags |= (sub_lut[idx] << ORDERING_SHIFT).astype(np.int8)
        recv_hash = hash_msg_ids(col("msg_id").take(pa.array(r_idx)))
    else:
        recv_hash = np.zeros(0, dtype=np.int64)

    fault_rows: list[tuple[int, dict[str, Any]]] = []
    if fault.any():
        f_idx = np.flatnonzero(fault)
        sub_table = table.select(["time", "phase", "fault", "target", "id", "regions", "region_loss",
                                  "process"]).take(pa.array(f_idx))
        for row, event in zip(f_idx, sub_table.to_pylist(), strict=True):
            fault_rows.append((first_line + int(row), {k: v for k, v in event.items() if v is not None}))

    return Chunk(
        names={k: v.names for k, v in names.items()},
        send_kind=tcode[s_idx].astype(np.int8), send_time=time[s_pos], send_region=region[s_pos],
        send_process=process[s_pos], send_producer=producer[s_pos], send_seq=seq[s_pos], send_key=key,
        send_line=lines[s_pos],
        recv_time=time[r_pos], recv_region=region[r_pos], recv_process=process[r_pos],
        recv_producer=producer[r_pos], recv_seq=seq[r_pos], recv_hash=recv_hash, recv_flags=flags,
        recv_line=lines[r_pos], faults=fault_rows, lines=n_lines, ignored=ignored_names,
    )


def _exact_chunk(data: bytes, first_line: int, path: str, skip_bad: bool) -> Chunk:
    """Parse a chunk line by line with the schema's authority, :func:`parse_line`."""
    names = {k: _Names() for k in ("region", "process", "producer", "key")}
    sends: list[tuple[int, ...]] = []
    recvs: list[tuple[int, ...]] = []
    faults: list[tuple[int, dict[str, Any]]] = []
    ignored: Counter[str] = Counter()
    bad: list[BadLine] = []
    bad_count = 0
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    for offset, raw in enumerate(lines):
        number = first_line + offset
        kind, event, reason = parse_line(raw)
        if kind == "blank":
            continue
        if kind == "bad":
            if not skip_bad:
                raise HistoryError(reason or "bad line", path=path, line=number)
            bad_count += 1
            if len(bad) < EXAMPLES:
                bad.append(BadLine(path, number, reason or "bad line"))
            continue
        assert event is not None
        if kind == "ignored":
            t = event.get("type")
            ignored["send-type lines with f other than 'send'" if t in SEND_KIND else str(t)] += 1
        elif kind == "send":
            sends.append((SEND_KIND[event["type"]], event["time"], names["region"].code(event["region"]),
                          names["process"].code(event["process"]), names["producer"].code(event["producer"]),
                          event["seq"], names["key"].code(event.get("key")), number))
        elif kind == "recv":
            flags = FLAG_READER if event.get("via") == "reader" else 0
            sub = event.get("subscription_type")
            if sub is not None:
                flags |= ORDERING_CODES[normalise_subscription(sub)] << ORDERING_SHIFT  # type: ignore[index]
            recvs.append((event["time"], names["region"].code(event["region"]),
                          names["process"].code(event["process"]), names["producer"].code(event["producer"]),
                          event["seq"], hash_msg_id(event["msg_id"]), flags, number))
        else:
            faults.append((number, event))
    s = np.array(sends, dtype=np.int64).reshape(-1, 8)
    r = np.array(recvs, dtype=np.int64).reshape(-1, 8)
    return Chunk(
        names={k: v.names for k, v in names.items()},
        send_kind=s[:, 0].astype(np.int8), send_time=s[:, 1], send_region=s[:, 2].astype(np.int32),
        send_process=s[:, 3].astype(np.int32), send_producer=s[:, 4].astype(np.int32), send_seq=s[:, 5],
        send_key=s[:, 6].astype(np.int32), send_line=s[:, 7],
        recv_time=r[:, 0], recv_region=r[:, 1].astype(np.int32), recv_process=r[:, 2].astype(np.int32),
        recv_producer=r[:, 3].astype(np.int32), recv_seq=r[:, 4], recv_hash=r[:, 5],
        recv_flags=r[:, 6].astype(np.int8), recv_line=r[:, 7], faults=faults, lines=len(lines),
        ignored=ignored, bad=bad, bad_count=bad_count,
    )


def parse_chunk(data: bytes, first_line: int, path: str, skip_bad: bool, *, use_threads: bool = True) -> Chunk:
    """One chunk of whole lines starting at line ``first_line`` of ``path``."""
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    chunk = _fast_chunk(data, first_line, n_lines, use_threads=use_threads)
    if chunk is None:
        chunk = _exact_chunk(data, first_line, path, skip_bad)
    chunk.lines = n_lines
    return chunk


def _parse_task(task: tuple[bytes, int, str, bool]) -> Chunk:
    data, first_line, path, skip_bad = task
    return parse_chunk(data, first_line, path, skip_bad, use_threads=False)


def iter_chunks(path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int, bytes]]:
    """(first line number, byte offset, bytes) of consecutive chunks of whole lines (the last may lack its newline)."""
    with open(path, "rb") as fh:
        rest, line, offset = b"", 1, 0
        while True:
            block = fh.read(chunk_bytes)
            if not block:
                if rest:
                    yield line, offset, rest
                return
            buf = rest + block if rest else block
            cut = buf.rfind(b"\n")
            if cut < 0:
                rest = buf  # a line longer than a chunk: keep reading
                continue
            data, rest = buf[:cut + 1], buf[cut + 1:]
            yield line, offset, data
            line += data.count(b"\n")
            offset += len(data)


def _parallel(tasks: Iterator[tuple[int, tuple[bytes, int, str, bool]]], workers: int
              ) -> Iterator[tuple[int, Chunk]]:
    """Parse chunks in ``workers`` processes, in order, with a bounded number in flight."""
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold Arrow threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[int, Future[Chunk]]] = deque()
        for file_index, task in tasks:
            pending.append((file_index, pool.submit(_parse_task, task)))
            if len(pending) >= 2 * workers:
                index, future = pending.popleft()
                yield index, future.result()
        while pending:
            index, future = pending.popleft()
            yield index, future.result()


# --------------------------------------------------------------------------- whole run


class _Global:
    """Global name tables; codes are provisional (first seen) until :meth:`sorted_luts`."""

    def __init__(self) -> None:
        self.tables = {k: _Names() for k in ("region", "process", "producer", "key")}

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


@dataclass
class _Parts:
    send: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in (
        "kind", "time", "region", "process", "producer", "seq", "key", "ref")})
    recv: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in (
        "time", "region", "process", "producer", "seq", "hash", "flags", "ref")})
    faults: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    lines: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    bad: list[BadLine] = field(default_factory=list)
    bad_count: int = 0


def lut_take(codes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map local codes (-1 = none) through a lut whose last entry is -1."""
    return lut[codes]


def _absorb(parts: _Parts, chunk: Chunk, file_index: int, names: _Global) -> None:
    luts = {k: names.lut(k, chunk.names[k]) for k in chunk.names}
    base = np.int64(file_index) << np.int64(REF_LINE_BITS)
    s = parts.send
    s["kind"].append(chunk.send_kind)
    s["time"].append(chunk.send_time)
    s["region"].append(lut_take(chunk.send_region, luts["region"]))
    s["process"].append(lut_take(chunk.send_process, luts["process"]))
    s["producer"].append(lut_take(chunk.send_producer, luts["producer"]))
    s["seq"].append(chunk.send_seq)
    s["key"].append(lut_take(chunk.send_key, luts["key"]))
    s["ref"].append(chunk.send_line + base)
    r = parts.recv
    r["time"].append(chunk.recv_time)
    r["region"].append(lut_take(chunk.recv_region, luts["region"]))
    r["process"].append(lut_take(chunk.recv_process, luts["process"]))
    r["producer"].append(lut_take(chunk.recv_producer, luts["producer"]))
    r["seq"].append(chunk.recv_seq)
    r["hash"].append(chunk.recv_hash)
    r["flags"].append(chunk.recv_flags)
    r["ref"].append(chunk.recv_line + base)
    parts.faults.extend((file_index, line, event) for line, event in chunk.faults)
    parts.lines += chunk.lines
    parts.ignored.update(chunk.ignored)
    parts.bad_count += chunk.bad_count
    parts.bad.extend(chunk.bad[: max(0, EXAMPLES - len(parts.bad))])


def read_history(run_dir: str | os.PathLike[str], *, skip_bad: bool = False, workers: int | None = None,
                 chunk_bytes: int = CHUNK_BYTES) -> History:
    """Read ``RUN_DIR/run.json`` and every ``RUN_DIR/history/*.jsonl`` into a :class:`History`.

    ``workers``: processes parsing chunks in parallel (default: one per CPU,
    at most 4; 1 parses in this process).
    """
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    files = history_files(run_dir)
    rel = tuple(str(p.relative_to(run_dir)) for p in files)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    total = sum(p.stat().st_size for p in files)
    names = _Global()
    parts = _Parts()
    line_index: list[list[tuple[int, int]]] = [[] for _ in files]

    def tasks() -> Iterator[tuple[int, tuple[bytes, int, str, bool]]]:
        for index, path in enumerate(files):
            for line, offset, data in iter_chunks(path, chunk_bytes=chunk_bytes):
                line_index[index].append((line, offset))
                yield index, (data, line, str(path), skip_bad)

    if workers > 1 and total > PARALLEL_MIN_BYTES:
        for file_index, chunk in _parallel(tasks(), workers):
            _absorb(parts, chunk, file_index, names)
    else:
        for file_index, (data, line, path, _) in tasks():
            _absorb(parts, parse_chunk(data, line, path, skip_bad), file_index, names)
    summary = InputSummary(source="jsonl", files=len(files), lines=parts.lines, skipped=parts.bad_count,
                           skipped_examples=tuple(str(b) for b in parts.bad), ignored=dict(parts.ignored))
    history = build_history(run=run, files=rel, parts=parts, names=names, summary=summary)
    return dataclasses.replace(history, line_index=tuple(tuple(x) for x in line_index))


def _cat(pieces: list[np.ndarray], dtype: Any) -> np.ndarray:
    if not pieces:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(pieces).astype(dtype, copy=False)


def build_history(*, run: dict[str, Any], files: tuple[str, ...], parts: _Parts, names: _Global,
                  summary: InputSummary) -> History:
    """Normalise the parsed lines into the checker's tables."""
    listed = list(run["regions"])
    luts, tables = names.sorted_luts(listed)
    s = {k: _cat(v, np.int64) for k, v in parts.send.items()}
    r = {k: _cat(v, np.int64) for k, v in parts.recv.items()}
    for table in (s, r):
        for kind in ("region", "process", "producer"):
            table[kind] = luts[kind][table[kind]]
    s["key"] = luts["key"][s["key"]]

    n_producers = len(tables["producer"])
    messages, send_msg, recv_msg = index_messages(
        n_producers=n_producers, send_producer=s["producer"], send_seq=s["seq"],
        recv_producer=r["producer"], recv_seq=r["seq"])
    messages = aggregate_sends(messages=messages, send_msg=send_msg, s=s)

    completed = s["kind"] > 0
    completions = Completions(
        time=s["time"][completed], region=s["region"][completed].astype(np.int16),
        outcome=KIND_TO_OUTCOME[s["kind"][completed]], process=s["process"][completed].astype(np.int32))

    n_regions = len(tables["region"])
    receipts = split_receipts(n_regions=n_regions, msg=recv_msg, time=r["time"], process=r["process"],
                              msg_hash=r["hash"], flags=r["flags"].astype(np.int8), ref=r["ref"],
                              region=r["region"])
    faults = tuple(
        FaultEvent(time=e["time"], phase=e["phase"], fault=e["fault"], target=e["target"], id=e["id"],
                   regions=tuple(e["regions"]) if e.get("regions") is not None else None,
                   region_loss=e.get("region_loss"), process=e.get("process"))
        for _, _, e in sorted(parts.faults, key=lambda item: (item[2]["time"], item[0], item[1])))
    return History(
        regions=tuple(listed), region_names=tables["region"], processes=tables["process"],
        producers=tables["producer"], keys=tables["key"], files=files, messages=messages,
        completions=completions, receipts=tuple(receipts), receipt_counts=tuple(len(x) for x in receipts),
        faults=faults, run=run, input=summary)


def index_messages(*, n_producers: int, send_producer: np.ndarray, send_seq: np.ndarray,
                   recv_producer: np.ndarray, recv_seq: np.ndarray
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Give every distinct (producer, seq) a row; return (producer/seq columns, row per send, row per recv).

    Producers whose send seqs are dense get one row per seq in [min, max]
    (direct addressing, no sort). Everything else (sparse producers, receipts
    outside their producer's range, producers never seen sending) gets rows
    after those, sorted by (producer, seq). Within one producer's dense range,
    or among the rest, a larger row means a larger seq.
    """
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
    n_dense = int(base[-1])

    def direct(producer: np.ndarray, seq: np.ndarray) -> np.ndarray:
        p_lo, p_hi = lo[producer], hi[producer]
        inside = dense[producer] & (seq >= p_lo) & (seq <= p_hi)
        return np.where(inside, base[producer] + (seq - np.where(inside, p_lo, 0)), -1)

    send_msg = direct(send_producer, send_seq)
    recv_msg = direct(recv_producer, recv_seq)
    producer = np.repeat(np.arange(n_producers, dtype=np.int32), span)
    seq = np.arange(n_dense, dtype=np.int64) - np.repeat(base[:-1] - np.where(dense, lo, 0), span)
    send_rest, recv_rest = send_msg < 0, recv_msg < 0
    rest_p = np.concatenate([send_producer[send_rest], recv_producer[recv_rest]])
    rest_s = np.concatenate([send_seq[send_rest], recv_seq[recv_rest]])
    if len(rest_p):
        order = np.lexsort((rest_s, rest_p))
        rp, rs = rest_p[order], rest_s[order]
        first = np.ones(len(rp), dtype=bool)
        first[1:] = (rp[1:] != rp[:-1]) | (rs[1:] != rs[:-1])
        inverse = np.empty(len(rp), dtype=np.int64)
        inverse[order] = np.cumsum(first) - 1 + n_dense
        n_send_rest = int(send_rest.sum())
        send_msg[send_rest] = inverse[:n_send_rest]
        recv_msg[recv_rest] = inverse[n_send_rest:]
        producer = np.concatenate([producer, rp[first].astype(np.int32)])
        seq = np.concatenate([seq, rs[first]])
    return {"producer": producer, "seq": seq}, send_msg, recv_msg


def _first_row(m: int, msg: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per message, the smallest of ``rows`` (line order) that belongs to it, or -1."""
    pick = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(pick, msg[rows], rows)
    pick[pick == np.iinfo(np.int64).max] = -1
    return pick


def aggregate_sends(*, messages: dict[str, np.ndarray], send_msg: np.ndarray, s: dict[str, np.ndarray]) -> Messages:
    """Fold the send lines of each message into one outcome: ok > info > pending > fail.

    PENDING means more invokes than completions (an invoke never completed).
    Rows are in file order (files sorted by path), so "first" is well defined.
    """
    m = len(messages["seq"])
    kind, time = s["kind"], s["time"]

    def count(k: int) -> np.ndarray:
        return np.bincount(send_msg[kind == k], minlength=m)

    invokes, oks, fails, infos = count(0), count(1), count(2), count(3)
    outcome = np.full(m, Outcome.NEVER_INVOKED, dtype=np.int8)
    outcome[fails > 0] = Outcome.FAIL
    outcome[invokes > fails + oks + infos] = Outcome.PENDING
    outcome[infos > 0] = Outcome.INFO
    outcome[oks > 0] = Outcome.OK

    big = np.iinfo(np.int64).max
    invoke_time = np.full(m, big, dtype=np.int64)
    is_invoke = kind == 0
    np.minimum.at(invoke_time, send_msg[is_invoke], time[is_invoke])
    invoke_time[invokes == 0] = NO_TIME

    # done time: the first ok; without an ok, the last fail/info
    first_ok = np.full(m, big, dtype=np.int64)
    is_ok = kind == 1
    np.minimum.at(first_ok, send_msg[is_ok], time[is_ok])
    last_other = np.full(m, NO_TIME, dtype=np.int64)
    other = (kind == 2) | (kind == 3)
    np.maximum.at(last_other, send_msg[other], time[other])
    done_time = np.where(oks > 0, first_ok, last_other)
    at_done = np.flatnonzero((kind > 0) & (time == done_time[send_msg]) & ((kind == 1) | (oks[send_msg] == 0)))
    pick = _first_row(m, send_msg, at_done)
    done_ref = np.where(pick >= 0, s["ref"][np.maximum(pick, 0)], -1)

    # origin, key and sending process: from the first invoke line, else from the first send line
    rows = np.arange(len(kind), dtype=np.int64)
    pick = _first_row(m, send_msg, rows[is_invoke])
    pick = np.where(pick >= 0, pick, _first_row(m, send_msg, rows))
    seen = pick >= 0
    safe = np.maximum(pick, 0)
    origin = np.where(seen, s["region"][safe], -1).astype(np.int16) if len(kind) else np.full(m, -1, np.int16)
    process = np.where(seen, s["process"][safe], -1).astype(np.int32) if len(kind) else np.full(m, -1, np.int32)
    key = np.where(seen, s["key"][safe], -1).astype(np.int32) if len(kind) else np.full(m, -1, np.int32)
    return Messages(producer=messages["producer"].astype(np.int32), seq=messages["seq"], origin=origin,
                    key=key, process=process, outcome=outcome, invoke_time=invoke_time, done_time=done_time,
                    done_ref=done_ref.astype(np.int64))


def split_receipts(*, n_regions: int, msg: np.ndarray, time: np.ndarray, process: np.ndarray,
                   msg_hash: np.ndarray, flags: np.ndarray, ref: np.ndarray, region: np.ndarray) -> list[Receipts]:
    """Receipts per observing region, each ordered by (process, time, file order)."""
    out = []
    by_region = (np.argsort(region.astype(np.uint16), kind="stable") if n_regions > 1
                 else np.arange(len(region)))
    bounds = np.searchsorted(region[by_region], np.arange(n_regions + 1))
    for code in range(n_regions):
        rows = by_region[bounds[code]:bounds[code + 1]]
        rows = rows[order_receipts(process[rows], time[rows], ref[rows])]
        out.append(Receipts(msg=msg[rows], time=time[rows], process=process[rows].astype(np.int32),
                            msg_hash=msg_hash[rows], flags=flags[rows], ref=ref[rows]))
    return out


def order_receipts(process: np.ndarray, time: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """A permutation ordering rows by (process, time, ref); cheap when they already are."""
    n = len(process)
    if n < 2:
        return np.arange(n)
    same = process[1:] == process[:-1]
    ordered = (process[1:] >= process[:-1]) & (~same | (time[1:] > time[:-1]) |
                                                ((time[1:] == time[:-1]) & (ref[1:] > ref[:-1])))
    if ordered.all():
        return np.arange(n)
    return np.lexsort((ref, time, process))
