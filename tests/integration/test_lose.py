"""A region lost for good on real labs (`kind: lose`): killed, its data deleted, verified, rebuilt empty, and
nothing left after the run; and the negative control of the strong scheme's placement check.

Each run starts its own lab (no --reuse-lab): that the run's normal teardown removes what a lost and a
rebuilt region leave is part of what is tested.
"""

import json
from pathlib import Path

import pytest
import requests

from geo_recon.deploy import local, state
from geo_recon.deploy.topology import LabSpec
from tests.conftest import run_cli
from tests.integration import lab_helpers as h
from tests.integration import run_helpers as r

pytestmark = [pytest.mark.integration, pytest.mark.root]
NAME, BASE, SUBNET = "tlose", 26800, 122


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    run_cli("lab", "down", "--name", NAME, "--force")
    yield tmp_path_factory.mktemp("runs")
    run_cli("lab", "down", "--name", NAME, "--force")


def _run(name: str, runs: Path) -> tuple[Path, str]:
    proc = run_cli("run", str(r.SCENARIOS / f"{name}.yaml"), "--runs", str(runs), timeout=900)
    run_dir = (runs / "latest").resolve()
    log = proc.stdout + proc.stderr
    assert json.loads((run_dir / "outcome.json").read_text())["error"] is None, log[-3000:]
    return run_dir, log


def _lose_lines(run_dir: Path) -> tuple[dict, dict]:
    lines = [e for e in r.events(run_dir) if e["type"] == "fault" and e["id"] == "f1"]
    assert [e["phase"] for e in lines] == ["start", "stop"], lines
    return lines[0], lines[1]


def _nothing_left(run_dir: Path) -> None:
    assert h.leftovers(NAME, []) == []
    assert not (state.lab_dir(NAME) / "data").exists()


def test_an_async_region_lost_then_rebuilt_empty_rejoins_and_nothing_is_left(runs):
    run_dir, log = _run("lose-async", runs)
    start, stop = _lose_lines(run_dir)
    assert start["fault"] == "lose" and start["region_loss"] is True and start["regions"] == ["a"]
    verified = start["verified"]
    assert verified["killed"] == ["a/standalone"]
    assert len(verified["ports_refused"]) == 2  # broker and web
    assert {Path(p).name for p in verified["data_deleted"]} >= {"metadata", "bookkeeper"}
    assert stop["rebuilt"] is True and stop["measured"]["round_trip_ms"] > 0
    # b's replicator to the new a was seen connected (unloaded first if it had got stuck: the stop line says)
    assert stop["measured"]["replicators_not_connected"] == [], stop["measured"]
    # Rejoined: the survivors replicate to the new, empty a again, and a's new messages reach b.
    oks = r.acked(run_dir)
    # stored there: read by a consumer or by the final reader (at a load average of 26 a's new consumers had
    # not caught up when the drain ended; how fast they do is the verdict's recovery line)
    in_a, in_b = (r.first_receipts(run_dir, x, consumers_only=False) for x in ("a", "b"))
    b_after = [k for k, (_, ok) in oks.items() if k[0].startswith("b/") and ok > stop["time"] + 2e9]
    a_after = [k for k, (_, ok) in oks.items() if k[0].startswith("a/") and ok > stop["time"] + 2e9]
    assert b_after and all(k in in_a for k in b_after), "b's messages after the rebuild did not reach a"
    assert a_after and all(k in in_b for k in a_after), "a's messages after the rebuild did not reach b"
    _nothing_left(run_dir)  # the run's teardown removed the rebuilt region like every other


def test_a_strong_region_lost_then_rebuilt_joins_the_stretched_cluster_and_nothing_is_left(runs):
    run_dir, log = _run("lose-strong", runs)
    # Positive control: with two bookies per region and region-aware placement, every probed write set spans.
    assert "ok   ledger placement spans regions: 32 write sets of 16 ledgers" in log, log[-3000:]
    start, stop = _lose_lines(run_dir)
    verified = start["verified"]
    assert sorted(verified["killed"]) == ["a/bookie", "a/bookie2", "a/broker"]
    assert len(verified["ports_refused"]) == 4  # two bookies, broker, web
    assert verified["metadata_store"].startswith("kept: zk/zookeeper on the witness site")
    assert stop["rebuilt"] is True
    # The replacements are NEW BookKeeper identities: a lost identity never comes back on an empty disk (ledger
    # recovery would take its "no such entry" as proof and truncate acked entries). Unless they were labelled
    # with a's rack, the stop line (a round trip in a) and a's writes below would never come.
    renamed = stop["measured"]["new_bookie_identities"]
    assert sorted(renamed) == ["a/bookie", "a/bookie2"]
    assert not set(renamed.values()) & set(verified["ports_refused"]), renamed
    # The lab's WAN was armed before its JVMs started (2 regions, 5 ports each way), and the new identities'
    # ports got their links from b before anything connected to them: b's connections to them go through
    # the WAN like every other cross-region connection.
    assert "WAN: 10 link proxies armed between a, b" in log and "WAN: 2 link proxies armed between a, b" in log, \
        log[-3000:]
    assert r.results(run_dir)["regions"]["b"]["lost"] == 0
    oks = r.acked(run_dir)
    assert any(ok > stop["time"] for k, (_, ok) in oks.items() if k[0].startswith("a/")), \
        "region a's producers published nothing after the rebuild"
    _nothing_left(run_dir)


def test_verify_config_fails_a_stretched_cluster_without_region_aware_placement(runs):
    """The negative control: two bookies per region, BookKeeper's default (random) placement. Some ensembles
    land in one region, and the placement probe must say so; the same probe passes with region-aware
    placement (the strong run above)."""
    spec = LabSpec(regions=("a", "b"), scheme="strong", name=NAME, base_port=BASE, subnet=SUBNET,
                   bookies_per_region=2, placement="random")
    local.up(spec)
    try:
        lab = state.load(NAME)
        admin = lab.endpoints[0].admin_url
        for path, body in (("/admin/v2/tenants/geo", {"adminRoles": [], "allowedClusters": ["geo"]}),
                           ("/admin/v2/namespaces/geo/recon", None)):
            assert requests.put(admin + path, json=body, timeout=30).status_code in (200, 204, 409)
        persistence = {"bookkeeperEnsemble": 2, "bookkeeperWriteQuorum": 2, "bookkeeperAckQuorum": 2,
                       "managedLedgerMaxMarkDeleteRate": 0}
        assert requests.post(admin + "/admin/v2/namespaces/geo/recon/persistence", json=persistence,
                             timeout=30).status_code in (200, 204)
        proc = run_cli("verify-config", "--lab", NAME, "--json")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        checks = {(c["name"], c.get("region")): c for c in json.loads(proc.stdout)["checks"]}
        placement = checks[("ledger placement spans regions", None)]
        assert not placement["ok"] and "in one region" in placement["detail"], placement
        assert not checks[("region-aware placement", "a")]["ok"]
    finally:
        local.down(NAME)
    _nothing_left(Path())
