"""The columnar copy: same history, used only while it matches the JSONL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from geo_recon.check import check_run, load_history, write_columnar
from geo_recon.check.columnar import open_fresh
from geo_recon.history import HistoryError
from tests.unit.check.helpers import fault, make_run, recv, sent


def run(tmp_path: Path) -> Path:
    sends = [x for s in range(20) for x in sent("a/p0", s, s, key=f"k{s % 2}")] + sent("a/p0", 20, 30,
                                                                                       outcome="info")
    a = [recv("a/c0", "a/p0", s, s + 2) for s in range(21)]
    b = [recv("b/c0", "a/p0", s, s + 9, subscription_type="Shared") for s in range(0, 20, 2)]
    b += [recv("b/reader", "a/p0", s, 100 + s, via="reader") for s in range(20)]
    nemesis = [fault("start", 5, target="a"), fault("stop", 8, target="a")]
    return make_run(tmp_path, {"p.jsonl": sends, "a.jsonl": a, "sub/b.jsonl": b, "n.jsonl": nemesis})


def test_the_copy_holds_the_same_history(tmp_path: Path) -> None:
    run_dir = run(tmp_path)
    jsonl = load_history(run_dir, source="jsonl")
    write_columnar(run_dir)
    columnar = load_history(run_dir, source="columnar")
    assert columnar.input.source == "columnar"
    for name in ("regions", "region_names", "processes", "producers", "keys", "files", "faults", "receipt_counts",
                 "line_index"):
        assert getattr(columnar, name) == getattr(jsonl, name), name
    for name in ("producer", "seq", "origin", "key", "process", "outcome", "invoke_time", "done_time", "done_ref"):
        assert np.array_equal(getattr(columnar.messages, name), getattr(jsonl.messages, name)), name
    for code in range(len(jsonl.region_names)):
        for name in ("msg", "time", "process", "msg_hash", "flags", "ref"):
            assert np.array_equal(getattr(columnar.region_receipts(code), name),
                                  getattr(jsonl.region_receipts(code), name)), name
    a, b = check_run(run_dir, source="jsonl").to_json(), check_run(run_dir).to_json()
    assert b["input"]["source"] == "columnar"
    a.pop("input"), b.pop("input")
    assert a == b


def test_a_changed_history_makes_the_copy_stale(tmp_path: Path) -> None:
    run_dir = run(tmp_path)
    write_columnar(run_dir)
    assert open_fresh(run_dir)[0] is not None
    path = run_dir / "history" / "a.jsonl"
    with open(path, "a") as fh:
        fh.write('{"type":"recv","time":1,"region":"a","process":"a/c0","producer":"a/p0","seq":99,"msg_id":"x"}\n')
    history, why = open_fresh(run_dir)
    assert history is None and "changed" in why
    assert check_run(run_dir).to_json()["input"]["source"] == "jsonl"  # auto falls back, and sees the new line
    with pytest.raises(HistoryError, match="cannot use the columnar copy"):
        check_run(run_dir, source="columnar")


def test_a_new_file_or_touched_file_makes_it_stale(tmp_path: Path) -> None:
    run_dir = run(tmp_path)
    write_columnar(run_dir)
    st = (run_dir / "history" / "p.jsonl").stat()
    os.utime(run_dir / "history" / "p.jsonl", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert open_fresh(run_dir)[0] is None
    write_columnar(run_dir)
    (run_dir / "history" / "new.jsonl").write_text("")
    assert open_fresh(run_dir)[0] is None


def test_a_copy_written_skipping_bad_lines_needs_skip_bad(tmp_path: Path) -> None:
    run_dir = run(tmp_path)
    with open(run_dir / "history" / "a.jsonl", "a") as fh:
        fh.write("garbage\n")
    with pytest.raises(HistoryError):
        write_columnar(run_dir)
    write_columnar(run_dir, skip_bad=True)
    assert open_fresh(run_dir)[0] is None
    history, _ = open_fresh(run_dir, skip_bad=True)
    assert history is not None and history.input.skipped == 1


def test_run_json_is_read_live(tmp_path: Path) -> None:
    run_dir = run(tmp_path)
    write_columnar(run_dir)
    (run_dir / "run.json").write_text('{"regions": ["a", "b"], "allowed": ["lost"]}')
    history, _ = open_fresh(run_dir)
    assert history is not None and history.run["allowed"] == ["lost"]
    (run_dir / "run.json").write_text('{"regions": ["a", "b", "c"]}')
    assert open_fresh(run_dir)[0] is None  # a region it has no table for
