"""`geo-recon canary` from the command line: the soak benchmark, and bad input in one line with exit code 2."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_a_short_soak_counts_exactly_what_the_simulation_injected():
    proc = run_cli("canary", "bench", "--hours", "0.02", "--rate", "200", "--deadline", "10",
                   "--sample-every", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["valid"] is True and figures["events"] > 0
    assert figures["peak_state_messages"] <= figures["state_bound"]
    assert len(figures["samples"]) >= 3 and figures["peak_rss_mib"] > 0


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("regions:\n  a: {service_url: 'http://x', admin_url: 'http://x'}\n")
    for args, needle in (
        (["--clusters", str(clusters)], "service_url must start with pulsar://"),
        (["--clusters", str(tmp_path / "none.yaml")], "does not exist"),
        (["--lab", "nolab"], "no lab named 'nolab'"),
        (["--lab", "nolab", "--listen", "9464"], "--listen '9464': expected HOST:PORT"),
        (["--lab", "nolab", "--rate", "0"], "--rate 0.0"),
        (["--lab", "nolab", "--deadline", "5", "--send-timeout", "30"], "--send-timeout 30.0"),
    ):
        proc = run_cli("canary", "run", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
