"""`geo-recon history cat` and `history export` as a user runs them: output, files, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.e2e.test_check_cli import history, invoke


def test_export_arrow_then_jsonl_gives_the_same_events_and_verdict(tmp_path: Path) -> None:
    run = history(tmp_path / "src", lose=True)
    code, out, _ = invoke("history", "export", "--arrow", str(run), "--out", str(tmp_path / "arrow"))
    assert code == 0 and "wrote 4 file(s)" in out
    assert sorted(p.name for p in (tmp_path / "arrow" / "history").iterdir()) == [
        "a-c0.arrows", "a-p0.arrows", "b-c0.arrows", "nemesis.arrows"]
    code, _, _ = invoke("history", "export", "--jsonl", str(tmp_path / "arrow"), "--out", str(tmp_path / "back"))
    assert code == 0
    for name in ("a-c0", "a-p0", "b-c0", "nemesis"):
        original = [json.loads(x) for x in (run / "history" / f"{name}.jsonl").read_text().splitlines()]
        back = [json.loads(x) for x in (tmp_path / "back" / "history" / f"{name}.jsonl").read_text().splitlines()]
        assert back == original
    verdicts = [invoke("check", str(d))[0] for d in (run, tmp_path / "arrow", tmp_path / "back")]
    assert verdicts == [1, 1, 1]


def test_cat_prints_jsonl_and_reports_a_torn_batch(tmp_path: Path) -> None:
    run = history(tmp_path / "src")
    invoke("history", "export", "--arrow", str(run), "--out", str(tmp_path / "arrow"))
    code, out, _ = invoke("history", "cat", str(tmp_path / "arrow"))
    assert code == 0
    events = [json.loads(x) for x in out.splitlines()]
    assert len(events) == 5 * 2 + 5 + 5 + 2 and events[0]["type"] == "recv"  # files in path order: a-c0 first
    path = tmp_path / "arrow" / "history" / "b-c0.arrows"
    path.write_bytes(path.read_bytes()[:-30])  # into the last batch (past the end-of-stream marker)
    code, out, err = invoke("history", "cat", str(tmp_path / "arrow"))
    assert code == 1
    assert len(out.splitlines()) == 5 * 2 + 5 + 2
    assert "b-c0.arrows: torn last record batch" in err


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = history(tmp_path / "src")
    code, _, err = invoke("history", "export", str(run))
    assert code == 2 and "--jsonl or --arrow" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    proc = run_cli("history", "export", "--jsonl", str(run), "--out", str(tmp_path / "full"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'full'}: exists and is not empty: export into a new directory"
    (run / "history" / "a-p0.jsonl").write_text('{"type": "ok"\n')
    proc = run_cli("history", "export", "--arrow", str(run), "--out", str(tmp_path / "new"))
    assert proc.returncode == 2 and "a-p0.jsonl:1: not valid JSON" in proc.stderr
