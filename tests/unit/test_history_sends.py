"""A producer's send log (history_sends): its invokes and oks reach the file as the events append(event) writes,
each exactly once, never an ok (or another item) in a flush before its invoke; appends go on while flushes take."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from geo_recon.history import iter_events, iter_file, open_writer, write_run_json

TOPIC = "persistent://geo/recon/t0"
T0 = 1_700_000_000_000_000_000


def texts(ids: list) -> list[str]:
    return [f"{ledger}:{entry}:-1:{batch}" for ledger, entry, batch in ids]


def invoke(seq: int) -> dict:
    return {"type": "invoke", "f": "send", "region": "a", "process": "a/p0", "producer": "a/p0", "time": T0 + seq,
            "seq": seq, "key": f"k{seq % 3}", "topic": TOPIC}


def ok(seq: int) -> dict:
    return {"type": "ok", "f": "send", "region": "a", "process": "a/p0", "producer": "a/p0", "time": T0 + seq + 5,
            "seq": seq, "msg_id": f"7:{seq // 4}:-1:{seq % 4}"}


def log_invoke(log, seq: int) -> None:
    log.invoke_key(f"k{seq % 3}")
    log.invoke_seq(seq)
    log.invoke_time(T0 + seq)


def log_ok(log, seq: int) -> None:
    log.ok_msg_id((7, seq // 4, seq % 4))
    log.ok_seq(seq)
    log.ok_time(T0 + seq + 5)


@pytest.mark.parametrize("history_format", ["jsonl", "arrow"])
def test_a_send_log_writes_the_events_append_writes(tmp_path: Path, history_format: str) -> None:
    with open_writer(tmp_path / "history", "a", history_format, fsync_interval_s=60) as writer:
        log = writer.send_log(region="a", process="a/p0", producer="a/p0", topic=TOPIC, msg_ids=texts)
        for seq in range(5):
            log_invoke(log, seq)
        for seq in range(3):
            log_ok(log, seq)
        fail = {"type": "fail", "f": "send", "region": "a", "process": "a/p0", "producer": "a/p0", "time": T0 + 9,
                "seq": 3, "error": "InvalidMessage"}
        writer.append(fail)
        assert log.counts() == (5, 3)
        writer.flush()
        log_ok(log, 4)  # the next flush: an ok whose invoke went out before
        assert log.counts() == (5, 4)
    write_run_json(tmp_path, ["a", "b"])
    # a flush writes the invokes, then the oks, then the other items: lines need not be sorted (DESIGN)
    assert list(iter_events(tmp_path)) == [*map(invoke, range(5)), *map(ok, range(3)), fail, ok(4)]


@pytest.mark.parametrize("history_format", ["jsonl", "arrow"])
def test_odd_keys_are_written_whole(tmp_path: Path, history_format: str) -> None:
    """A key to escape (JSONL) or not a string (Arrow's typed column): the same bytes as append(event) writes."""
    keys = ['say "hi"', "ü\n", 42]
    with open_writer(tmp_path / "log", "a", history_format, fsync_interval_s=60) as writer, \
            open_writer(tmp_path / "append", "a", history_format, fsync_interval_s=60) as reference:
        log = writer.send_log(region="a", process="a/p0", producer="a/p0", topic=TOPIC, msg_ids=texts)
        for seq, key in enumerate(keys):
            log.invoke_key(key)
            log.invoke_seq(seq)
            log.invoke_time(T0 + seq)
            reference.append({**invoke(seq), "key": key})
    assert (tmp_path / "log" / writer.path.name).read_bytes() == (tmp_path / "append" / writer.path.name).read_bytes()


@pytest.mark.parametrize("history_format", ["jsonl", "arrow"])
def test_appends_while_flushing_lose_nothing_and_no_ok_precedes_its_invoke(tmp_path: Path,
                                                                          history_format: str) -> None:
    n = 30_000
    writer = open_writer(tmp_path / "history", "a", history_format, fsync_interval_s=0.001)
    log = writer.send_log(region="a", process="a/p0", producer="a/p0", topic=TOPIC, msg_ids=texts)
    invoked = threading.Semaphore(0)

    def acknowledge() -> None:
        for seq in range(n):
            invoked.acquire()
            log_ok(log, seq)

    acks = threading.Thread(target=acknowledge)
    acks.start()
    for seq in range(n):
        log_invoke(log, seq)
        invoked.release()
    acks.join()
    writer.close()
    events = [event for _, kind, event, _ in iter_file(next((tmp_path / "history").iterdir())) if kind == "send"]
    assert sorted(e["seq"] for e in events if e["type"] == "invoke") == list(range(n))
    assert sorted(e["seq"] for e in events if e["type"] == "ok") == list(range(n))
    assert all(e == invoke(e["seq"]) if e["type"] == "invoke" else e == ok(e["seq"]) for e in events)
    seen: set[int] = set()
    for event in events:
        if event["type"] == "invoke":
            seen.add(event["seq"])
        else:
            assert event["seq"] in seen, f"ok {event['seq']} before its invoke"


def test_a_send_log_needs_the_background_flush(tmp_path: Path) -> None:
    with open_writer(tmp_path, "a", "jsonl", fsync_interval_s=0) as writer, pytest.raises(ValueError, match="flush"):
        writer.send_log(region="a", process="a/p0", producer="a/p0", topic=TOPIC, msg_ids=texts)
