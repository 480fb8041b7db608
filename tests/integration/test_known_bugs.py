"""The known-bug corpus on real Pulsar: the verifier flags the affected release and passes the fixed one.

apache/pulsar#22890 (topic-level replication loses the backlog when the topic reloads while a
peer is down), run through `geo-recon run --pulsar 3.0.2,3.0.7`: one fresh lab per version.
"""

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from tests.integration import run_helpers as r

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tbugs", 25600, 111
SCENARIO = REPO / "scenarios" / "known-bugs" / "pulsar-22890.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both versions, one after the other, on this module's lab name and ports."""
    tmp = tmp_path_factory.mktemp("bugs")
    data = yaml.safe_load(SCENARIO.read_text())
    data["topology"]["lab"] = {"name": NAME, "base_port": BASE, "subnet": SUBNET}
    scenario = tmp / "pulsar-22890.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    run_cli("lab", "down", "--name", NAME, "--force")
    proc = run_cli("run", str(scenario), "--runs", str(tmp / "runs"), "--pulsar", "3.0.2,3.0.7", timeout=1500)
    dirs = {json.loads((d / "resolved.json").read_text())["pulsar"]: d
            for d in sorted((tmp / "runs").iterdir()) if (d / "resolved.json").exists()}
    return {"proc": proc, "dirs": dirs, "expect": data["known_bug"]["expect"], "out": proc.stdout + proc.stderr}


def _unloaded(run_dir: Path) -> dict:
    start = next(e for e in r.events(run_dir) if e["type"] == "fault" and e["fault"] == "unload" and e["phase"] == "start")
    return start["measured"]["reloaded_on_ledger"]


def test_the_affected_version_loses_the_backlog_and_the_run_says_which_messages(runs):
    run_dir = runs["dirs"]["3.0.2"]
    assert runs["expect"]["3.0.2"] == "not met"
    assert json.loads((run_dir / "outcome.json").read_text())["met"] is False, runs["out"][-3000:]
    assert _unloaded(run_dir)  # the unload happened and was verified (a new ledger per topic)
    result = r.results(run_dir)
    assert result["regions"]["b"]["lost"] > 0
    assert result["regions"]["a"]["lost"] == 0
    # The lost ones are exactly the backlog of the bug: one unbroken run of a's messages, acknowledged
    # after b's stop began (scheduled at 5 s; its start line is written once the stop is verified,
    # a graceful stop later) and before the unload (its start line follows the verified reload).
    oks = r.acked(run_dir)
    first_send = min(invoke for invoke, _ in oks.values())
    unload_at, _, _ = r.fault_window(run_dir, "f2")
    in_b = r.first_receipts(run_dir, "b", consumers_only=False)
    lost = sorted(k for k in oks if k[0].startswith("a/") and k not in in_b)
    assert len(lost) == result["regions"]["b"]["lost"]
    assert all(first_send + 4e9 < oks[k][1] < unload_at for k in lost), "lost outside the stop-to-unload window"
    seqs = [seq for _, seq in lost]
    assert len({p for p, _ in lost}) == 1 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    report = (run_dir / "report.md").read_text()
    assert "lost" in report


def test_the_fixed_version_delivers_everything(runs):
    run_dir = runs["dirs"]["3.0.7"]
    assert runs["expect"]["3.0.7"] == "met"
    assert json.loads((run_dir / "outcome.json").read_text())["met"] is True, runs["out"][-3000:]
    assert _unloaded(run_dir)
    assert all(v["lost"] == 0 for v in r.results(run_dir)["regions"].values())


def test_run_compares_the_versions_side_by_side(runs):
    assert runs["proc"].returncode == 1  # one version did not meet the expectations
    assert "3.0.2" in runs["out"] and "3.0.7" in runs["out"]
    assert "async 3.0.2" in runs["out"] and "async 3.0.7" in runs["out"]  # the comparison's column labels
