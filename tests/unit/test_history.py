"""The history format: line validation, the durable writer, run.json, iter_events."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from geo_recon.errors import GeoReconError
from geo_recon.history import (
    BadLine,
    HistoryError,
    HistoryWriter,
    check_event,
    iter_events,
    now_ns,
    parse_line,
    read_run_json,
    write_run_json,
)

SEND = {"type": "ok", "f": "send", "time": 5, "region": "a", "process": "a/p0", "producer": "a/p0", "seq": 1}
RECV = {"type": "recv", "time": 7, "region": "b", "process": "b/c0", "producer": "a/p0", "seq": 1, "msg_id": "1:2"}
FAULT = {"type": "fault", "time": 9, "phase": "start", "fault": "kill", "target": "a", "id": "f1"}


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.parametrize("event, kind", [(SEND, "send"), (RECV, "recv"), (FAULT, "fault"),
                                         ({**SEND, "type": "invoke", "key": "k1"}, "send"),
                                         ({**RECV, "via": "reader"}, "recv"),
                                         ({**RECV, "subscription_type": "Key_Shared"}, "recv"),
                                         ({**RECV, "subscription_type": "KeyShared"}, "recv"),
                                         ({**FAULT, "regions": ["a"], "region_loss": True}, "fault"),
                                         ({"type": "log", "message": "hello"}, "ignored"),
                                         ({**SEND, "f": "poll"}, "ignored"),
                                         ({**SEND, "topic": 5, "extra": {"nested": [1]}}, "send")])
def test_valid_lines_are_classified(event: dict, kind: str) -> None:
    got, parsed, reason = parse_line(line(event))
    assert (got, reason) == (kind, None)
    assert parsed == event


@pytest.mark.parametrize("raw, words", [
    (b'{"type":"ok","f":"send","time":5,"reg', "truncated"),
    (b"[1, 2]\n", "not a JSON object"),
    (b'{"time": 5}\n', "missing field 'type'"),
    (line({**SEND, "seq": "17"}), "'seq' must be an integer"),
    (line({**SEND, "seq": 1.0}), "'seq' must be an integer"),
    (line({**SEND, "time": True}), "'time' must be an integer"),
    (line({**SEND, "time": 2**63}), "'time' must be an integer"),
    (line({k: v for k, v in SEND.items() if k != "producer"}), "missing field 'producer'"),
    (line({**SEND, "region": None}), "missing field 'region'"),
    (line({k: v for k, v in SEND.items() if k != "f"}), "missing field 'f'"),
    (line({**SEND, "key": 3}), "'key' must be a string"),
    (line({k: v for k, v in RECV.items() if k != "msg_id"}), "missing field 'msg_id'"),
    (line({**RECV, "via": "broker"}), "'via' must be one of"),
    (line({**RECV, "subscription_type": "Sometimes"}), "unknown subscription_type"),
    (line({**FAULT, "phase": "middle"}), "'phase' must be 'start' or 'stop'"),
    (line({**FAULT, "regions": "a"}), "'regions' must be a list"),
    (line({**FAULT, "region_loss": "yes"}), "'region_loss' must be true or false"),
    (b'{"type":"recv"} {"type":"ok"}\n', "not valid JSON"),
])
def test_bad_lines_say_why(raw: bytes, words: str) -> None:
    kind, event, reason = parse_line(raw)
    assert kind == "bad" and event is None
    assert reason is not None and words in reason


def test_blank_lines_are_skipped_quietly() -> None:
    assert parse_line(b"   \n")[0] == "blank"
    assert check_event({"type": "ok", "f": "send"})[0] == "bad"


def write_history(run_dir: Path, files: dict[str, list[bytes]], regions: tuple[str, ...] = ("a", "b")) -> None:
    write_run_json(run_dir, list(regions))
    for name, lines in files.items():
        path = run_dir / "history" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(lines))


def test_iter_events_reads_every_file_in_path_order(tmp_path: Path) -> None:
    write_history(tmp_path, {"b.jsonl": [line(RECV)], "a.jsonl": [line(SEND), b"\n", line({"type": "x"})],
                             "sub/c.jsonl": [line(FAULT)], "notes.txt": [b"not history"]})
    assert list(iter_events(tmp_path)) == [SEND, RECV, FAULT]


def test_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    write_history(tmp_path, {"a.jsonl": [line(SEND), line(RECV), b'{"type":"recv","ti']})
    with pytest.raises(HistoryError) as err:
        list(iter_events(tmp_path))
    assert err.value.line == 3
    assert str(err.value).startswith(f"{tmp_path / 'history' / 'a.jsonl'}:3: ")
    assert isinstance(err.value, GeoReconError)


def test_skip_bad_counts_and_reports(tmp_path: Path) -> None:
    write_history(tmp_path, {"a.jsonl": [line(SEND), b"garbage\n", line(RECV), line({**RECV, "seq": None})]})
    skipped: list[BadLine] = []
    assert list(iter_events(tmp_path, skip_bad=True, skipped=skipped)) == [SEND, RECV]
    assert [(s.line, s.path.endswith("a.jsonl")) for s in skipped] == [(2, True), (4, True)]


def test_missing_history_dir_is_an_error(tmp_path: Path) -> None:
    write_run_json(tmp_path, ["a"])
    with pytest.raises(HistoryError, match="no history directory"):
        list(iter_events(tmp_path))


def test_run_json_round_trip_and_extra_fields(tmp_path: Path) -> None:
    path = write_run_json(tmp_path, ["a", "b"], scheme="async", seed=3, clock_offsets_ns={"a/p0": -5})
    assert path == tmp_path / "run.json"
    assert read_run_json(tmp_path) == {"regions": ["a", "b"], "scheme": "async", "seed": 3,
                                       "clock_offsets_ns": {"a/p0": -5}}


@pytest.mark.parametrize("content, words", [
    (None, "missing"),
    ("{", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"regions": []}', "non-empty list"),
    ('{"regions": ["a", "a"]}', "twice"),
    ('{"regions": ["a", 3]}', "non-empty strings"),
    ('{"regions": ["a"], "clock_offsets_ns": {"p": 1.5}}', "clock_offsets_ns"),
    ('{"regions": ["a"], "allowed": "lost"}', "'allowed'"),
])
def test_bad_run_json_names_the_file(tmp_path: Path, content: str | None, words: str) -> None:
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(HistoryError) as err:
        read_run_json(tmp_path)
    assert words in str(err.value)
    assert str(tmp_path / "run.json") in str(err.value)


def test_writer_appends_lines_that_read_back(tmp_path: Path) -> None:
    path = tmp_path / "history" / "a-p0.jsonl"
    with HistoryWriter(path, fsync_interval_s=0.05) as writer:
        writer.append(SEND)
        writer.append(RECV)
    with HistoryWriter(path, fsync_interval_s=0) as writer:  # reopening appends
        writer.append(FAULT)
    write_run_json(tmp_path, ["a"])
    assert list(iter_events(tmp_path)) == [SEND, RECV, FAULT]


def test_writer_flushes_on_its_cadence_without_more_appends(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    writer = HistoryWriter(path, fsync_interval_s=0.05)
    try:
        writer.append(SEND)
        assert path.read_bytes() == b""  # buffered, not written yet
        deadline = time.monotonic() + 5
        while not path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.read_bytes() == line(SEND).replace(b", ", b",").replace(b": ", b":")
    finally:
        writer.close()


def test_writer_is_thread_safe_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with HistoryWriter(path, fsync_interval_s=0.01) as writer:
        def work(t: int) -> None:
            for i in range(500):
                writer.append({"type": "recv", "time": now_ns(), "thread": t, "i": i})
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    seen = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(seen) == 2000
    for t in range(4):
        assert [e["i"] for e in seen if e["thread"] == t] == list(range(500))


def test_writer_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    with HistoryWriter(tmp_path / "w.jsonl", fsync_interval_s=0) as writer:
        writer.append(SEND)
        assert synced, "an append with fsync_interval_s=0 is durable when it returns"


def test_writer_refuses_appends_after_close(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "w.jsonl")
    writer.close()
    with pytest.raises(HistoryError, match="closed"):
        writer.append(SEND)


def test_writer_reports_a_background_write_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = HistoryWriter(tmp_path / "w.jsonl", fsync_interval_s=0.01)

    def broken(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", broken)
    writer.append(SEND)
    time.sleep(0.1)
    with pytest.raises(HistoryError, match="No space left"):
        writer.append(RECV)
    monkeypatch.undo()
    writer.close()  # what failed to go out is still buffered and is written now; RECV was refused
    assert [json.loads(x) for x in (tmp_path / "w.jsonl").read_text().splitlines()] == [SEND]


def test_a_crash_loses_at_most_the_tail(tmp_path: Path) -> None:
    """A cut-off last line (what a crash mid-write leaves) is reported, or skipped with --skip-bad."""
    path = tmp_path / "history" / "a.jsonl"
    with HistoryWriter(path, fsync_interval_s=0) as writer:
        writer.append(SEND)
        writer.append(RECV)
    with open(path, "ab") as fh:
        fh.write(b'{"type":"recv","time":1')
    write_run_json(tmp_path, ["a"])
    with pytest.raises(HistoryError, match=r"a\.jsonl:3: .*truncated"):
        list(iter_events(tmp_path))
    assert list(iter_events(tmp_path, skip_bad=True)) == [SEND, RECV]
