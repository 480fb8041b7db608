"""`geo-recon billing bench` on a small run, through the real CLI, so that it cannot rot."""

import json

from tests.conftest import run_cli


def test_bench_prints_the_figures_and_checks_the_verdicts():
    proc = run_cli("billing", "bench", "--transactions", "3000", "--repeat", "2", "--rate", "2000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "3,000 transactions, 9,0" in out
    assert "events/s median" in out and "goal 500,000 events/s" in out
    assert "peak RSS" in out and "open transactions" in out
    assert "unexplained 0: valid" in out
    assert proc.stderr.count("run ") == 2


def test_bench_json_and_a_lateness_too_short_to_be_right():
    proc = run_cli("billing", "bench", "--transactions", "2000", "--repeat", "1", "--lateness-ms", "0", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # on-time events are called late: the check fails
    data = json.loads(proc.stdout)
    assert data["valid"] is False and data["summary"]["unexplained"] > 0
    assert data["verdicts"]["late"] > 0
    assert "below the events' spread" in data["notes"][0]
    assert data["median"] > 0 and data["peak_open"] <= data["window_bound"]


def test_bad_options_are_one_line_errors():
    proc = run_cli("billing", "bench", "--transactions", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--transactions" in proc.stderr
