"""The history: what workers and fault injectors record, and what the checker reads.

The format is the one in DESIGN.md: one JSON object per line, in any number of
``*.jsonl`` files under ``RUN_DIR/history/`` (one per writing process is
natural; sub-directories are read too), in any order, plus ``RUN_DIR/run.json``
holding at least ``{"regions": [...]}``. ``time`` is integer nanoseconds since
the Unix epoch on the writer's clock. The same events may also come as
``*.arrows`` files, Arrow record batches with one row per event
(:mod:`geo_recon.history_arrow`, :class:`ArrowHistoryWriter`, :func:`read_arrow`);
there an event's "line" is its row, counted from 1.

Line types (fields marked ``?`` are optional)::

    invoke/ok/fail/info  f="send", time, region, process, producer, seq,
                         key? topic? msg_id? (anything else is kept, ignored),
                         cluster? (the cluster that served it, when not the home region)
    recv                 time, region, process, producer, seq, msg_id,
                         via? ("consumer" | "reader"; absent = consumer),
                         subscription_type? (absent = ordered), redelivery?,
                         subscription? (its name; absent = the process's own),
                         cluster? (the cluster the consumer was served by, when not the home region)
    fault                time, phase ("start" | "stop"), fault, target, id,
                         regions? (list), region_loss? (bool), process?
    failover             time, region, process (the client's home), client, role
                         ("producer" | "consumer"), from, to (clusters), mode?

``region`` is always the client's home region, wherever it was served.

``info`` means the outcome is unknown; an ``invoke`` with no completion is
treated the same way. Only the fields the checker uses are validated; others
(``topic``, ``redelivery``, ``msg_id`` on send lines, anything else) are free.
Lines of any other ``type``, and send-type lines whose
``f`` is not ``"send"``, are counted and otherwise ignored. A line that is not
a JSON object, or misses a required field, or has a field of the wrong type, is
*bad*: reading stops with a :class:`HistoryError` naming the file and line,
unless ``skip_bad`` is set, in which case bad lines are counted and reported.

This module holds the schema (:func:`parse_line` is the one authority on what a
valid line is), the durable :class:`HistoryWriter`, ``run.json`` helpers and
:func:`iter_events`. The fast bulk reader and the columnar copy live in
:mod:`geo_recon.check.ingest` and :mod:`geo_recon.check.columnar`; both defer to
:func:`parse_line` whenever a line is in doubt.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from geo_recon import history_arrow, history_jsonl, history_sends
from geo_recon.errors import GeoReconError
from geo_recon.rundir import RunDir

HISTORY_DIR = RunDir.HISTORY
RUN_JSON = RunDir.RUN
HISTORY_SUFFIX = ".jsonl"
ARROW_SUFFIX = history_arrow.ARROW_SUFFIX
HISTORY_SUFFIXES = (HISTORY_SUFFIX, ARROW_SUFFIX)
#: the formats a worker can write its history in (run.json's ``history_format``)
FORMATS = ("arrow", "jsonl")

SEND_TYPES = frozenset({"invoke", "ok", "fail", "info"})
KNOWN_TYPES = SEND_TYPES | {"recv", "fault", "failover"}
FAILOVER_ROLES = ("producer", "consumer")
VIA_VALUES = ("consumer", "reader")
FAULT_PHASES = ("start", "stop")

#: Subscription types as written on recv lines, normalised (lower case, no
#: ``_``/``-``) to how the checker treats ordering: "ordered" (per consumer and
#: producer), "key" (per consumer, producer and key) or "none" (not checked).
SUBSCRIPTION_ORDERING = {
    "exclusive": "ordered",
    "failover": "ordered",
    "keyshared": "key",
    "shared": "none",
}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class HistoryError(GeoReconError):
    """A history or run.json that cannot be read; names the file and line."""

    def __init__(self, reason: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or ""
        if where and line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class BadLine:
    """One line that was skipped with ``skip_bad``."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def now_ns() -> int:
    """The wall clock in integer nanoseconds since the Unix epoch (the history's ``time``)."""
    return time.time_ns()


# --------------------------------------------------------------------------- schema


def normalise_subscription(value: str) -> str | None:
    """Map a subscription type as written ("Key_Shared", "KeyShared", ...) to its ordering, or None."""
    return SUBSCRIPTION_ORDERING.get(value.lower().replace("_", "").replace("-", ""))


def _is_int(value: Any) -> bool:
    return type(value) is int and _INT64_MIN <= value <= _INT64_MAX


def _need(obj: Mapping[str, Any], field: str, kind: str) -> str | None:
    """Reason why ``obj[field]`` is not of ``kind`` ("int" or "str"), or None when it is."""
    if field not in obj or obj[field] is None:
        return f"missing field {field!r}"
    value = obj[field]
    if kind == "int" and not _is_int(value):
        return f"field {field!r} must be an integer (64-bit), got {value!r}"
    if kind == "str" and not isinstance(value, str):
        return f"field {field!r} must be a string, got {value!r}"
    return None


def _optional(obj: Mapping[str, Any], field: str, kind: str) -> str | None:
    if obj.get(field) is None:
        return None
    return _need(obj, field, kind)


def check_event(obj: Any) -> tuple[str, str | None]:
    """Classify one decoded line: ``("send"|"recv"|"fault"|"failover"|"ignored", None)`` or ``("bad", reason)``."""
    if not isinstance(obj, dict):
        return "bad", f"not a JSON object ({type(obj).__name__})"
    reason = _need(obj, "type", "str")
    if reason:
        return "bad", reason
    kind = obj["type"]
    if kind not in KNOWN_TYPES:
        return "ignored", None
    reason = _need(obj, "time", "int")
    if reason:
        return "bad", reason
    if kind in SEND_TYPES:
        reason = _need(obj, "f", "str")
        if reason:
            return "bad", reason
        if obj["f"] != "send":
            return "ignored", None
        for field, want in (("region", "str"), ("process", "str"), ("producer", "str"), ("seq", "int")):
            reason = _need(obj, field, want)
            if reason:
                return "bad", reason
        for field in ("key", "cluster"):
            reason = _optional(obj, field, "str")
            if reason:
                return "bad", reason
        return "send", None
    if kind == "recv":
        for field, want in (("region", "str"), ("process", "str"), ("producer", "str"), ("seq", "int"),
                            ("msg_id", "str")):
            reason = _need(obj, field, want)
            if reason:
                return "bad", reason
        via = obj.get("via")
        if via is not None and via not in VIA_VALUES:
            return "bad", f"field 'via' must be one of {', '.join(VIA_VALUES)}, got {via!r}"
        sub = obj.get("subscription_type")
        if sub is not None:
            if not isinstance(sub, str):
                return "bad", f"field 'subscription_type' must be a string, got {sub!r}"
            if normalise_subscription(sub) is None:
                return "bad", (f"unknown subscription_type {sub!r} "
                               "(Exclusive, Failover, Shared or Key_Shared)")
        for field in ("subscription", "cluster"):
            reason = _optional(obj, field, "str")
            if reason:
                return "bad", reason
        return "recv", None
    if kind == "failover":
        for field in ("region", "process", "client", "role", "from", "to"):
            reason = _need(obj, field, "str")
            if reason:
                return "bad", reason
        if obj["role"] not in FAILOVER_ROLES:
            return "bad", f"field 'role' must be 'producer' or 'consumer', got {obj['role']!r}"
        reason = _optional(obj, "mode", "str")
        if reason:
            return "bad", reason
        return "failover", None
    # fault
    for field in ("fault", "target", "id", "phase"):
        reason = _need(obj, field, "str")
        if reason:
            return "bad", reason
    if obj["phase"] not in FAULT_PHASES:
        return "bad", f"field 'phase' must be 'start' or 'stop', got {obj['phase']!r}"
    regions = obj.get("regions")
    if regions is not None and not (isinstance(regions, list) and all(isinstance(r, str) for r in regions)):
        return "bad", f"field 'regions' must be a list of strings, got {regions!r}"
    loss = obj.get("region_loss")
    if loss is not None and not isinstance(loss, bool):
        return "bad", f"field 'region_loss' must be true or false, got {loss!r}"
    reason = _optional(obj, "process", "str")
    if reason:
        return "bad", reason
    return "fault", None


def parse_line(raw: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """Decode and classify one line: ``(kind, event, reason)``.

    ``kind`` is "blank" (whitespace only; skipped silently), "bad" (``reason``
    says why), "ignored" (a valid JSON object the checker does not use), or
    "send"/"recv"/"fault"/"failover" with the decoded ``event``.
    """
    if not raw.strip():
        return "blank", None, None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = raw.rstrip(b"\r\n")
        hint = " (truncated line?)" if not text.endswith(b"}") else ""
        return "bad", None, f"not valid JSON{hint}: {exc}"
    kind, reason = check_event(obj)
    if kind == "bad":
        return kind, None, reason
    return kind, obj, None


# --------------------------------------------------------------------------- files


def history_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / HISTORY_DIR


def history_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.jsonl`` and ``*.arrows`` file under ``RUN_DIR/history/``, sorted by path (a stable order)."""
    root = history_dir(run_dir)
    if not root.is_dir():
        raise HistoryError("no history directory (expected RUN_DIR/history/ with *.jsonl or *.arrows files)",
                           path=root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(HISTORY_SUFFIXES))


def other_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Files under ``RUN_DIR/history/`` that are not read (not history files); the checker warns about them."""
    root = history_dir(run_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(HISTORY_SUFFIXES))


def is_arrow(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(ARROW_SUFFIX)


@dataclass(frozen=True, slots=True)
class ArrowHistory:
    """What an ``*.arrows`` file holds: its whole batches, and why the rest (if any) could not be read."""

    table: pa.Table
    torn: str | None  #: None when every byte was read; else the reason (a torn last batch, usually)


def read_arrow(path: str | os.PathLike[str]) -> ArrowHistory:
    """Every whole record batch of an ``*.arrows`` history file (one row per event, in order).

    A writer killed mid-flush leaves a torn last batch: the batches before it
    are returned, and ``torn`` says how many bytes after them could not be read.
    A file cut inside its schema message holds no event. A file that is not
    an Arrow stream of the event schema raises :class:`HistoryError`.
    """
    try:
        source = pa.memory_map(str(path), "r")
    except OSError as exc:
        raise HistoryError(f"cannot read: {exc}", path=path) from None
    size = source.size()
    if size == 0:
        return ArrowHistory(history_arrow.EVENT_SCHEMA.empty_table(), None)
    try:
        reader = ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as exc:
        if size < len(history_arrow.stream_schema_bytes()):
            return ArrowHistory(history_arrow.EVENT_SCHEMA.empty_table(),
                                f"the file ends inside its schema ({size} bytes): no event was written whole")
        raise HistoryError(f"not an Arrow IPC stream: {exc}", path=path) from None
    if not reader.schema.equals(history_arrow.EVENT_SCHEMA):
        raise HistoryError(f"not a geo-recon history (unexpected Arrow schema: {reader.schema.names})", path=path)
    batches = []
    good = source.tell()
    torn = None
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError) as exc:
            torn = (f"torn last record batch: {size - good} bytes after the last whole batch cannot be read "
                    f"(the writer stopped mid-flush?): {exc}")
            break
        good = source.tell()
    return ArrowHistory(pa.Table.from_batches(batches, schema=history_arrow.EVENT_SCHEMA), torn)


def _arrow_lines(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    """(event number, kind, event, reason) per row of an ``*.arrows`` file, then the torn batch as a bad one."""
    read = read_arrow(path)
    number = 0
    for batch in read.table.to_batches():
        for event in history_arrow.decode_rows(batch):
            number += 1
            kind, reason = check_event(event)
            yield number, kind, (None if kind == "bad" else event), reason
    if read.torn is not None:
        yield number + 1, "bad", None, read.torn


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            yield number, *parse_line(raw)


def iter_file(path: str | os.PathLike[str]) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    """``(line, kind, event, reason)`` for every line (JSONL) or event (Arrow, numbered from 1) of one file,
    classified as :func:`parse_line` does."""
    path = Path(path)
    return _arrow_lines(path) if is_arrow(path) else _jsonl_lines(path)


def iter_events(run_dir: str | os.PathLike[str], *, skip_bad: bool = False,
                skipped: list[BadLine] | None = None) -> Iterator[dict[str, Any]]:
    """Yield every send, recv and fault event of a run, file by file, in file order.

    A bad line raises :class:`HistoryError` naming its file and line; with
    ``skip_bad`` it is left out and, if ``skipped`` is given, appended to it.
    Times are as written (no clock offsets applied).
    """
    for path in history_files(run_dir):
        for number, kind, event, reason in iter_file(path):
            if kind == "bad":
                if not skip_bad:
                    raise HistoryError(reason or "bad line", path=path, line=number)
                if skipped is not None:
                    skipped.append(BadLine(str(path), number, reason or "bad line"))
                continue
            if event is not None and kind != "ignored":
                yield event


# --------------------------------------------------------------------------- run.json


def write_run_json(run_dir: str | os.PathLike[str], regions: list[str] | tuple[str, ...],
                   **extra: Any) -> Path:
    """Write ``RUN_DIR/run.json`` atomically (temporary file, fsync, rename) and return its path."""
    run = {"regions": list(regions), **extra}
    validate_run(run, path=Path(run_dir) / RUN_JSON)
    path = Path(run_dir) / RUN_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{RUN_JSON}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(run, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def validate_run(run: Any, *, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the fields of run.json that the checker relies on; raise :class:`HistoryError` naming the file."""
    if not isinstance(run, dict):
        raise HistoryError("must be a JSON object", path=path)
    regions = run.get("regions")
    if not isinstance(regions, list) or not regions:
        raise HistoryError("'regions' must be a non-empty list of region names", path=path)
    if not all(isinstance(r, str) and r for r in regions):
        raise HistoryError(f"'regions' must hold non-empty strings, got {regions!r}", path=path)
    if len(set(regions)) != len(regions):
        raise HistoryError(f"'regions' lists a region twice: {regions!r}", path=path)
    offsets = run.get("clock_offsets_ns", {})
    if not isinstance(offsets, dict) or not all(isinstance(k, str) and _is_int(v) for k, v in offsets.items()):
        raise HistoryError("'clock_offsets_ns' must map process names to integer nanoseconds", path=path)
    allowed = run.get("allowed", [])
    if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
        raise HistoryError("'allowed' must be a list of anomaly names", path=path)
    return run


def read_run_json(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``RUN_DIR/run.json``; a missing or bad file raises :class:`HistoryError`."""
    path = Path(run_dir) / RUN_JSON
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise HistoryError("missing (it lists the regions every message is expected in)", path=path) from None
    except OSError as exc:
        raise HistoryError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        run = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"not valid JSON: {exc}", path=path) from None
    return validate_run(run, path=path)


# --------------------------------------------------------------------------- writer


class HistoryWriter:
    """Append events to one JSONL history file, durably and cheaply.

    ``append`` serialises the event and buffers it (thread-safe, no I/O). A
    background thread writes, flushes and fsyncs the buffer every
    ``fsync_interval_s`` seconds, so a crash loses at most the events of the
    last interval (and may leave the last line cut short, which the reader
    reports). ``fsync_interval_s=0`` makes every append durable before it
    returns. ``flush()`` forces the buffer to disk; ``close()`` flushes and
    stops the thread. An I/O error in the background is raised by the next
    call. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval_s: float = 0.2):
        if fsync_interval_s < 0:
            raise ValueError("fsync_interval_s must be >= 0")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._interval = float(fsync_interval_s)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._buffer: list[Any] = []
        self._send_logs: list[history_sends.SendLog] = []
        self._unwritten = b""  # encoded but not yet written (after a failed write)
        self._buffer_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._interval > 0:
            self._thread = threading.Thread(target=self._run, name=f"history-writer:{self.path.name}", daemon=True)
            self._thread.start()

    def append(self, event: Mapping[str, Any]) -> None:
        """Buffer one event (a JSON-serialisable mapping) as one line."""
        item = self._encode_one(event)
        with self._buffer_lock:
            self._raise_pending()
            if self._fd is None:
                raise HistoryError("history writer is closed", path=self.path)
            self._buffer.append(item)
        if self._interval == 0:
            self.flush()

    def append_fields(self, keys: tuple[str, ...], values: tuple[Any, ...]) -> None:
        """``append(dict(zip(keys, values)))`` for a producer's hot path: nothing is encoded
        until the flush, which encodes a whole buffer at once."""
        with self._buffer_lock:
            self._raise_pending()
            if self._fd is None:
                raise HistoryError("history writer is closed", path=self.path)
            self._buffer.append((keys, values))
        if self._interval == 0:
            self.flush()

    def send_log(self, *, region: str, process: str, producer: str, topic: str,
                 msg_ids: Any) -> history_sends.SendLog:
        """A producer's invokes and oks as columns (:class:`history_sends.SendLog`), written at each flush with
        the rest. Its appends raise nothing: the producer calls :meth:`check` now and then."""
        if self._interval == 0:
            raise ValueError("a send log is written by the background flush (fsync_interval_s > 0)")
        log = history_sends.SendLog(region=region, process=process, producer=producer, topic=topic, msg_ids=msg_ids)
        with self._buffer_lock:
            self._send_logs.append(log)
        return log

    def check(self) -> None:
        """Raise what a background write failed with (once), or that the writer is closed."""
        with self._buffer_lock:
            self._raise_pending()
            if self._fd is None:
                raise HistoryError("history writer is closed", path=self.path)

    def _take(self) -> tuple[list[Any], list[history_sends.SendColumns]]:
        """Everything appended so far: the buffered items, and the send logs' events as columns (every log's
        oks taken before any invoke, so each ok and each item goes out with or after its invoke)."""
        items, self._buffer = self._buffer, []
        logs = list(self._send_logs)
        oks = [log.take_oks() for log in logs]
        invokes = [log.take_invokes() for log in logs]
        return items, [part for part in (*invokes, *oks) if part is not None]

    def _encode_all(self, items: list[Any], sends: list[history_sends.SendColumns]) -> bytes:
        """The bytes of one flush: the send logs' events, then the buffered items."""
        parts = []
        for part in map(history_sends.SendColumns.resolved, sends):
            parts.append(history_jsonl.encode_columns(part.fields, part.constant, part.columns, part.count))
        return b"".join([*parts, self._encode(items) if items else b""])

    def _encode_one(self, event: Mapping[str, Any]) -> Any:
        """What ``append`` buffers for one event (here: its line)."""
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)

    def _encode(self, items: list[Any]) -> bytes:
        """The bytes one flush appends for the buffered items (lines, or (keys, values) to format)."""
        return history_jsonl.encode_lines(items)

    def flush(self) -> None:
        """Write, flush and fsync everything appended so far."""
        self._flush(background=False)

    def _flush(self, *, background: bool) -> None:
        with self._io_lock:
            with self._buffer_lock:
                if background and self._error is not None:
                    return  # keep the error for the caller; retrying would hide it
                if not background:
                    self._raise_pending()
                items, sends = self._take()
                fd = self._fd
            if fd is None:
                return
            data, self._unwritten = self._unwritten + (self._encode_all(items, sends) if items or sends else b""), b""
            view = memoryview(data)
            try:
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                self._unwritten = bytes(view)  # kept for the next flush
                with self._buffer_lock:
                    if background:
                        self._error = exc
                        return
                raise HistoryError(f"writing the history failed: {exc}", path=self.path) from exc

    def close(self) -> None:
        """Flush, fsync and close the file; further appends raise."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.flush()
            self._closing()
        finally:
            with self._io_lock, self._buffer_lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    def _closing(self) -> None:
        """Bytes a clean close appends after the last flush (none for JSONL)."""

    def _write_now(self, data: bytes) -> None:
        """Append and fsync ``data`` at once (the Arrow stream's schema and end marker)."""
        with self._io_lock:
            fd = self._fd
            if fd is None:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                raise HistoryError(f"writing the history failed: {exc}", path=self.path) from exc

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise HistoryError(f"writing the history failed: {error}", path=self.path) from error

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._flush(background=True)


class ArrowHistoryWriter(HistoryWriter):
    """:class:`HistoryWriter` for an ``*.arrows`` file: each flush appends one Arrow record batch.

    Same cadence and guarantees: the schema is on disk when the writer is
    made, every flush appends one whole batch and fsyncs it, so a crash loses
    at most the last interval and may leave one torn batch at the end, which
    :func:`read_arrow` reports while returning everything before it. ``append``
    only takes the event's keys and values apart; they become columns at flush
    time.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval_s: float = 0.2):
        if not is_arrow(path):
            raise ValueError(f"an Arrow history file ends with {ARROW_SUFFIX}: {path}")
        if Path(path).exists() and Path(path).stat().st_size:
            raise HistoryError("exists already: an Arrow history is written by one writer, once", path=path)
        super().__init__(path, fsync_interval_s=fsync_interval_s)
        self._write_now(history_arrow.stream_schema_bytes())

    def _encode_one(self, event: Mapping[str, Any]) -> Any:
        return history_arrow.shaped(event)  # keys and values taken while the event is fresh in the cache

    def _encode(self, items: list[Any]) -> bytes:
        return history_arrow.batch_bytes(history_arrow.encode_shaped(items))

    def _encode_all(self, items: list[Any], sends: list[history_sends.SendColumns]) -> bytes:
        batches = []
        for part in map(history_sends.SendColumns.resolved, sends):
            batch = history_arrow.encode_columns(part.constant, part.columns, part.count)
            batches.append(batch if batch is not None else history_arrow.encode_shaped(part.rows()))
        if items:
            batches.append(history_arrow.encode_shaped(items))
        return history_arrow.batch_bytes(history_arrow.concat_batches(batches))

    def _closing(self) -> None:
        self._write_now(history_arrow.END_OF_STREAM)


def open_writer(directory: str | os.PathLike[str], stem: str, history_format: str, *,
                fsync_interval_s: float = 0.2) -> HistoryWriter:
    """The writer of ``directory/stem.jsonl`` or ``directory/stem.arrows``, by ``history_format`` (FORMATS)."""
    if history_format == "arrow":
        return ArrowHistoryWriter(Path(directory) / f"{stem}{ARROW_SUFFIX}", fsync_interval_s=fsync_interval_s)
    if history_format == "jsonl":
        return HistoryWriter(Path(directory) / f"{stem}{HISTORY_SUFFIX}", fsync_interval_s=fsync_interval_s)
    raise ValueError(f"history format {history_format!r} is not one of {FORMATS}")
