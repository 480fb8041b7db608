"""Arrow history files: the durable writer, torn last batches, a worker killed mid-write, the checker's reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geo_recon.check.core import check_run
from geo_recon.check.ingest import read_history
from geo_recon.history import (
    ArrowHistoryWriter,
    HistoryError,
    iter_events,
    open_writer,
    read_arrow,
    write_run_json,
)
from geo_recon.history_arrow import END_OF_STREAM, stream_schema_bytes

SEND = {"type": "ok", "f": "send", "time": 5, "region": "a", "process": "a/p0", "producer": "a/p0", "seq": 1}
RECV = {"type": "recv", "time": 7, "region": "b", "process": "b/c0", "producer": "a/p0", "seq": 1, "msg_id": "1:2"}


def sends(n: int, start: int = 0) -> list[dict]:
    return [{**SEND, "type": kind, "seq": seq, "time": 10 * seq + (kind == "ok")}
            for seq in range(start, start + n) for kind in ("invoke", "ok")]


def write_batches(path: Path, batches: list[list[dict]]) -> list[int]:
    """Write one flush per batch; return the file size after each."""
    sizes = []
    with ArrowHistoryWriter(path, fsync_interval_s=60) as writer:
        for batch in batches:
            for event in batch:
                writer.append(event)
            writer.flush()
            sizes.append(path.stat().st_size)
    return sizes


def test_writer_round_trip_and_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "history" / "a.arrows"
    write_batches(path, [sends(3), sends(2, 3), [RECV]])
    assert path.read_bytes().startswith(stream_schema_bytes()) and path.read_bytes().endswith(END_OF_STREAM)
    read = read_arrow(path)
    assert read.torn is None and read.table.num_rows == 11
    write_run_json(tmp_path, ["a", "b"])
    assert list(iter_events(tmp_path)) == sends(5) + [RECV]


def test_schema_is_on_disk_before_the_first_event(tmp_path: Path) -> None:
    writer = open_writer(tmp_path, "a", "arrow", fsync_interval_s=60)
    try:
        assert (tmp_path / "a.arrows").read_bytes() == stream_schema_bytes()
        assert read_arrow(tmp_path / "a.arrows").table.num_rows == 0
    finally:
        writer.close()


def test_an_arrow_history_is_never_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "a.arrows"
    write_batches(path, [sends(1)])
    with pytest.raises(HistoryError, match="exists already"):
        ArrowHistoryWriter(path)


@pytest.mark.parametrize("cut", [1, 7, 100, -9])
def test_a_torn_last_batch_is_reported_and_the_batches_before_it_survive(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "history" / "a.arrows"
    sizes = write_batches(path, [sends(3), sends(2, 3), sends(4, 5)])
    end = sizes[1] + cut if cut > 0 else sizes[2] + cut  # inside the third batch (or its last bytes)
    with open(path, "r+b") as fh:
        fh.truncate(end)
    read = read_arrow(path)
    assert read.table.num_rows == 10
    assert read.torn is not None and f"{end - sizes[1]} bytes after the last whole batch" in read.torn
    write_run_json(tmp_path, ["a"])
    with pytest.raises(HistoryError, match=r"a\.arrows:11: torn last record batch"):
        read_history(tmp_path)
    history = read_history(tmp_path, skip_bad=True)
    assert history.input.skipped == 1 and history.input.lines == 11
    assert history.input.skipped_examples[0].endswith(".arrows:11: " + read.torn)
    assert len(history.messages.seq) == 5
    with pytest.raises(HistoryError, match=r"a\.arrows:11"):
        list(iter_events(tmp_path))
    assert list(iter_events(tmp_path, skip_bad=True)) == sends(5)


def test_a_file_cut_inside_its_schema_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.arrows"
    path.write_bytes(stream_schema_bytes()[:40])
    read = read_arrow(path)
    assert read.table.num_rows == 0 and "inside its schema" in (read.torn or "")


def test_a_file_that_is_not_an_arrow_history_is_named(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "a.arrows").write_bytes(b'{"type": "ok"}\n' * 200)
    write_run_json(tmp_path, ["a"])
    with pytest.raises(HistoryError, match=r"a\.arrows: not an Arrow IPC stream"):
        read_history(tmp_path)


_KILLED_WRITER = """
import sys, time
from geo_recon.history import ArrowHistoryWriter
w = ArrowHistoryWriter(sys.argv[1], fsync_interval_s=0.005)
seq = 0
while True:
    w.append({"type": "invoke", "f": "send", "time": time.time_ns(), "region": "a", "process": "a/p0",
              "producer": "a/p0", "seq": seq, "key": "k" * (seq % 50)})
    seq += 1
    if seq == 2000:
        print("writing", flush=True)
"""


@pytest.mark.parametrize("attempt", range(3))
def test_a_worker_killed_mid_write_leaves_a_readable_prefix(tmp_path: Path, attempt: int) -> None:
    """kill -9 while the background thread flushes every 5 ms: whatever is on disk is a prefix of what was
    appended (whole batches), and a torn last batch, if the kill cut one, is reported, never raised as garbage."""
    path = tmp_path / "history" / "a.arrows"
    path.parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        # the first 2000 on disk (a busy machine may take a while to run the flush thread), then kill at a
        # moment the test does not choose
        deadline = time.monotonic() + 60
        while (not path.exists() or len(read_arrow(path).table) < 2000) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.05 * attempt)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    read = read_arrow(path)
    seqs = read.table.column("seq").to_pylist()
    assert len(seqs) >= 2000
    assert seqs == list(range(len(seqs)))
    write_run_json(tmp_path, ["a"])
    history = read_history(tmp_path, skip_bad=True)
    assert len(history.messages.seq) == len(seqs)
    assert history.input.skipped == (read.torn is not None)


def test_the_checker_reads_arrow_and_jsonl_files_of_one_run_alike(tmp_path: Path) -> None:
    """A run may mix formats (the Go producers write JSONL): both are read, and the verdict is the same."""
    events = sends(4) + [{**RECV, "region": r, "process": f"{r}/c0", "seq": s, "msg_id": f"1:{s}", "time": 100 + s}
                         for r in ("a", "b") for s in range(4)]
    for run, fmt in ((tmp_path / "j", "jsonl"), (tmp_path / "x", "arrow"), (tmp_path / "m", "mixed")):
        producer = open_writer(run / "history", "a", "jsonl" if fmt == "mixed" else fmt)
        consumer = open_writer(run / "history", "b-recv", "arrow" if fmt == "mixed" else fmt)
        for e in events:
            (producer if e["type"] != "recv" else consumer).append(e)
        producer.close()
        consumer.close()
        write_run_json(run, ["a", "b"])
    results = {name: check_run(tmp_path / name).to_json() for name in ("j", "x", "m")}
    assert {r["input"]["source"] for r in results.values()} == {"jsonl", "arrow", "jsonl+arrow"}
    assert results["j"]["regions"] == results["x"]["regions"] == results["m"]["regions"]
    assert results["j"]["regions"]["b"]["expected"] == 4 and results["j"]["valid"]


@pytest.mark.parametrize("history_format", ["jsonl", "arrow"])
def test_events_appended_as_fields_read_back_as_the_events_in_order(tmp_path: Path, history_format: str) -> None:
    """The producers' hot path (keys and values, encoded at flush) writes what append(event) writes."""
    events = sends(3) + [RECV, {**SEND, "type": "info", "error": "Timeout", "extra_field": [1, None]}]
    with open_writer(tmp_path / "history", "a", history_format, fsync_interval_s=60) as writer:
        for i, event in enumerate(events):
            if i % 2:
                writer.append(event)
            else:
                writer.append_fields(tuple(event), tuple(event.values()))
        writer.flush()
        writer.append_fields(tuple(SEND), tuple(SEND.values()))  # after a flush: the next batch
    write_run_json(tmp_path, ["a", "b"])
    assert list(iter_events(tmp_path)) == [*events, SEND]
    with pytest.raises(HistoryError, match="closed"):
        writer.append_fields(tuple(SEND), tuple(SEND.values()))
