"""`geo-recon check` and `geo-recon bench check` as a user runs them: output, files, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from geo_recon.cli import cli
from tests.conftest import run_cli
from tests.unit.check.helpers import fault, make_run, recv, sent


def history(tmp_path: Path, *, lose: bool = False) -> Path:
    sends = [x for s in range(5) for x in sent("a/p0", s, 10 * s)]
    a = [recv("a/c0", "a/p0", s, 10 * s + 2) for s in range(5)]
    b = [recv("b/c0", "a/p0", s, 10 * s + 30) for s in range(5) if not (lose and s == 1)]
    nemesis = [fault("start", 12, target="b"), fault("stop", 25, target="b")]
    return make_run(tmp_path, {"a-p0.jsonl": sends, "a-c0.jsonl": a, "b-c0.jsonl": b, "nemesis.jsonl": nemesis})


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_valid_run_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    run = history(tmp_path)
    code, out, _ = invoke("check", str(run))
    assert code == 0
    assert out.splitlines()[0] == f"{run}: VALID"
    assert "region  expected  lost" in out
    assert not (run / "results.json").exists()


def test_anomalies_exit_1_with_explanations(tmp_path: Path) -> None:
    run = history(tmp_path, lose=True)
    code, out, _ = invoke("check", str(run))
    assert code == 1
    assert "INVALID (lost)" in out
    assert "a/p0 seq 1 was acknowledged in a at 0.011 s (history/a-p0.jsonl:4) but was never received in b" in out
    assert "never converged (still missing: b 1)" in out


def test_json_output_and_write(tmp_path: Path) -> None:
    run = history(tmp_path, lose=True)
    code, out, _ = invoke("check", str(run), "--json", "--write")
    assert code == 1
    result = json.loads(out)
    assert json.loads((run / "results.json").read_text()) == result
    assert result["valid"] is False
    assert set(result["regions"]["b"]) >= {"expected", "lost", "duplicates", "redelivered", "reordered",
                                           "unexpected", "recovered", "lag_ms"}
    assert set(result["regions"]["b"]["lag_ms"]) == {"p50", "p90", "p99", "max"}
    for key in ("lag_series", "rates", "lag_cdf", "faults", "publish_latency_ms", "convergence", "rpo", "rto"):
        assert key in result
    assert result["faults"][0] == {"id": "f1", "fault": "kill", "target": "b", "start_s": 0.012, "stop_s": 0.025,
                                   "region_loss": True, "lost_regions": ["b"], "regions": None}
    assert len(result["lag_cdf"]["a"]) == 101
    assert result["lag_series"]["a"]["b"][0][0] == 0.0


def test_allow_makes_it_valid(tmp_path: Path) -> None:
    run = history(tmp_path, lose=True)
    assert invoke("check", str(run), "--allow", "lost")[0] == 0


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    run = history(tmp_path)
    with open(run / "history" / "b-c0.jsonl", "a") as fh:
        fh.write('{"type":"recv","time":')
    code, out, err = invoke("check", str(run))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {run / 'history' / 'b-c0.jsonl'}:6: not valid JSON (truncated "
                                        "line?): unexpected end of data: line 1 column 23 (char 22)"]
    code, out, _ = invoke("check", str(run), "--skip-bad")
    assert code == 0
    assert "1 bad skipped" in out and "warning: 1 bad line(s) skipped" in out


def test_missing_or_bad_run_json_exits_2(tmp_path: Path) -> None:
    run = history(tmp_path)
    (run / "run.json").unlink()
    code, _, err = invoke("check", str(run))
    assert code == 2 and f"{run / 'run.json'}: missing" in err
    (run / "run.json").write_text('{"regions": "a"}')
    code, _, err = invoke("check", str(run))
    assert code == 2 and "'regions' must be a non-empty list" in err


def test_nothing_acknowledged_exits_2(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"p.jsonl": sent("a/p0", 0, 0, outcome="info")})
    code, _, err = invoke("check", str(run))
    assert code == 2 and "no acknowledged send" in err


def test_unknown_allow_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("check", str(history(tmp_path)), "--allow", "lots")
    assert code == 2 and "unknown anomaly 'lots'" in err


def test_columnar_copy_from_the_command_line(tmp_path: Path) -> None:
    run = history(tmp_path, lose=True)
    code, out, _ = invoke("check", str(run), "--write-columnar", "--json")
    assert code == 1 and json.loads(out)["input"]["source"] == "columnar"
    assert (run / "columnar" / "meta.json").exists()
    code, out, _ = invoke("check", str(run), "--source", "jsonl", "--json")
    assert json.loads(out)["input"]["source"] == "jsonl"


def test_the_real_command_line(tmp_path: Path) -> None:
    run = history(tmp_path, lose=True)
    proc = run_cli("check", str(run), "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["regions"]["b"]["lost"] == 1
    proc = run_cli("check", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_bench_runs_end_to_end_on_a_tiny_history(tmp_path: Path) -> None:
    proc = run_cli("bench", "check", "--messages", "3000", "--regions", "2", "--keep", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["found_equals_injected"] is True
    assert report["baseline_agrees"] is True
    assert report["check"]["receipts"] > 6000 and report["check"]["peak_rss_mib"] > 0
    assert report["jsonl"]["lines_per_second"] > 0 and report["baseline"]["seconds"] > 0
    # the workers' Arrow history and the JSONL, checked beside DuckDB over the JSONL: same facts, ratios printed
    assert report["check_native_agrees"] is True and report["check_jsonl_agrees"] is True
    assert report["baseline_jsonl_agrees"] is True
    for path in ("check_native", "check_jsonl"):  # peak RSS per path: the checking process, its workers, together
        c = report[path]
        assert c["peak_rss_mib"] > 0 and c["workers_peak_rss_mib"] >= 0 and c["tree_peak_rss_mib"] > 0
    assert set(report["ratios"]) == {"native_vs_duckdb_jsonl", "jsonl_vs_duckdb_jsonl", "columnar_vs_duckdb_columnar"}
    assert all(v > 0 for v in report["ratios"].values())
    assert len(report["rounds"]) == 1 and report["median"]["native"]["seconds"] == report["check_native"]["seconds"]
    proc = run_cli("bench", "check", "--messages", "2000", "--regions", "2", "--rounds", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["rounds"]) == 3 and len(report["ratios_by_round"]) == 3
    times = sorted(x["native"]["seconds"] for x in report["rounds"])
    assert report["median"]["native"]["seconds"] == times[1]
    duckdb = report["median"]["duckdb_jsonl"]["seconds"]
    assert report["ratios"]["native_vs_duckdb_jsonl"] == round(times[1] / duckdb, 3)
    proc = run_cli("bench", "check", "--messages", "500", "--regions", "1", "--no-baseline", "--rounds", "2")
    assert proc.returncode == 0, proc.stderr
    assert "receipts/s" in proc.stdout and "peak RSS" in proc.stdout and "baseline" not in proc.stdout
    assert "MiB at most at once" in proc.stdout and "rounds (s" in proc.stdout


def test_bench_refuses_to_overwrite_a_directory_that_is_not_a_bench_run(tmp_path: Path) -> None:
    run = history(tmp_path / "real")
    code, _, err = invoke("bench", "check", "--messages", "100", "--keep", str(run), "--no-baseline")
    assert code == 2 and "refusing to overwrite" in err
    assert (run / "history" / "a-p0.jsonl").exists()
