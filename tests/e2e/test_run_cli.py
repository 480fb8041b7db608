"""`geo-recon run` end to end on real Pulsar: the smoke scenario, and Ctrl-C in the middle of a fault."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from geo_recon.deploy.pulsar_versions import default_version
from tests.conftest import REPO, run_cli
from tests.integration import lab_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "run", 22000, 10  # scenarios/smoke.yaml's lab; the Ctrl-C test runs its scenario there too


def test_the_smoke_scenario_from_nothing_to_a_verdict_that_check_reproduces(tmp_path):
    run_cli("lab", "down", "--name", NAME, "--force")
    proc = run_cli("run", str(REPO / "scenarios" / "smoke.yaml"), "--runs", str(tmp_path), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"async (Pulsar {default_version()}): expectations MET" in proc.stdout
    run_dir = (tmp_path / "latest").resolve()
    for name in ("scenario.yaml", "resolved.json", "run.json", "results.json", "verdict.json", "outcome.json"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "logs" / "components" / "a-standalone.log").exists()
    phases = json.loads((run_dir / "outcome.json").read_text())["phases"]
    assert list(phases) == ["lab up", "configure", "warm-up", "load and faults", "lab down", "check", "report"]
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["met"] is True and verdict["judgements"]
    # The run directory alone reproduces the verdict, with no cluster at all.
    assert h.leftovers(NAME, []) == []
    again = run_cli("check", str(run_dir), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["regions"] == json.loads((run_dir / "results.json").read_text())["regions"]
    judged = run_cli("judge", str(run_dir))  # the stored run re-judged: the same verdict
    assert judged.returncode == 0 and judged.stdout.splitlines()[-1].startswith("MET: smoke (async)"), judged.stdout


def test_ctrl_c_during_a_fault_heals_tears_down_and_keeps_the_history(tmp_path):
    # test_faults_async's partition, on this module's lab (that module may be running its own at the same time)
    doc = yaml.safe_load((REPO / "tests" / "integration" / "scenarios" / "partition-async.yaml").read_text())
    doc["topology"]["lab"] = {"name": NAME, "base_port": BASE, "subnet": SUBNET}
    scenario = tmp_path / "partition-async.yaml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_cli("lab", "down", "--name", NAME, "--force")
    cli = subprocess.Popen([sys.executable, "-m", "geo_recon", "run", str(scenario), "--runs", str(tmp_path)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                           # a suite started in the background inherits SIGINT ignored (see lab_helpers)
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        controller = None
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("*/history/controller.jsonl"))
            if found and '"phase":"start"' in found[0].read_text().replace(" ", ""):
                controller = found[0]
                break
            time.sleep(0.5)
        assert controller, "the partition never started"
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=240)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130, err[-3000:]
    run_dir = controller.parent.parent
    assert h.leftovers(NAME, []) == []  # no JVM, worker, proxy, namespace or rule left
    lines = [json.loads(x) for x in controller.read_text().splitlines()]
    assert [x["phase"] for x in lines] == ["start", "stop"]  # the partition was healed and recorded as such
    run = json.loads((run_dir / "run.json").read_text())
    assert run["interrupted"] is True
    check = run_cli("check", str(run_dir), "--json")
    assert check.returncode in (0, 1), check.stdout + check.stderr  # decidable: nothing recorded was lost
    assert json.loads(check.stdout)["run"]["sends"]["ok"] > 0
