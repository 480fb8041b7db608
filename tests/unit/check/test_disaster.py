"""A lost region: RPO, exposure, RTO per client, replicated subscriptions, writes, what is not counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geo_recon.check import check_run, write_columnar
from geo_recon.check.ingest import read_history
from geo_recon.history import HistoryError
from tests.unit.check import disaster_history as DH
from tests.unit.check.helpers import fault, make_run, recv, sent


@pytest.fixture(scope="module")
def disaster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return DH.write(tmp_path_factory.mktemp("dr") / "run")


def _row(run_dir: Path, **kw: Any) -> dict[str, Any]:
    (row,) = check_run(run_dir, **kw).to_json()["region_loss"]
    return row


def test_async_lose_with_failover_and_replicated_subscription(disaster: Path) -> None:
    result = check_run(disaster).to_json()
    t0 = DH.T0 + DH.MS  # the first send
    (row,) = result["region_loss"]
    assert (row["fault_id"], row["fault"], row["region"], row["scheme"]) == ("f1", "lose", "a", "async")
    assert row["loss_s"] == pytest.approx(DH.LOSS_S - 0.001) and row["rebuilt_s"] == pytest.approx(DH.REBUILD_S - 0.001)
    # a's messages acked in the last 0.5 s before the loss (seqs 195-199) never reached b
    assert row["rpo"] == {"count": 5, "first_ok_s": pytest.approx((DH.at(19.5) + 4 * DH.MS - t0) / 1e9),
                          "last_ok_s": pytest.approx((DH.at(19.9) + 4 * DH.MS - t0) / 1e9), "span_s": 0.4}
    assert row["exposure"] == row["rpo"]
    producer, consumer = row["clients"]
    assert producer == {"client": "a/p0", "role": "producer", "failed_over": True, "failover_s": pytest.approx(22.999),
                        "outcome": "recovered", "rto_s": pytest.approx(3.204), "recovered_s": pytest.approx(23.203),
                        "cluster": "b"}
    assert (consumer["client"], consumer["role"], consumer["failed_over"], consumer["cluster"]) == \
        ("a/c0", "consumer", True, "b")
    assert consumer["rto_s"] == pytest.approx(4.1 + 0.001, abs=0.002)
    assert row["subscriptions"] == [{"subscription": "sub-a", "receipts": result["regions"]["a"]["receipts"],
                                     "reconsumed": 10, "gaps": 2, "gap_examples": ["b/p0:200", "b/p0:201"]}]
    assert row["failed_over"] is True
    assert row["writes"]["outcome"] == "resumed" and row["writes"]["stalled_s"] == pytest.approx(0.005)
    # b lost a's 5; a's consumers missed b's 200-201 while a was lost: reported, not counted in a
    assert result["regions"]["b"]["lost"] == 5 and result["regions"]["a"]["lost"] == 0
    assert row["not_counted"] == 2


def test_columnar_copy_gives_the_same_figures(disaster: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    DH.write(run)
    write_columnar(run)
    assert check_run(run, source="columnar").to_json()["region_loss"] == check_run(disaster).to_json()["region_loss"]
    history = read_history(run)
    assert history.subscriptions == ("sub-a", "sub-b")
    assert [(f.client, f.role, f.source, f.target, f.mode) for f in history.failovers] == [
        ("a/p0", "producer", "a", "b", "auto"), ("a/c0", "consumer", "a", "b", "auto"),
        ("a/p0", "producer", "b", "a", "auto")]


def test_exact_path_reads_the_same_as_the_fast_path(tmp_path: Path) -> None:
    files = DH.histories()
    fast = DH.write(tmp_path / "fast", files=files)
    # an indented line sends every chunk of that file through parse_line, line by line
    slow_files = {name: lines for name, lines in files.items()}
    slow = DH.write(tmp_path / "slow", files=slow_files)
    for name in slow_files:
        path = slow / "history" / name
        path.write_text(" " + path.read_text())
    a, b = read_history(fast), read_history(slow)
    assert a.failovers == b.failovers and a.subscriptions == b.subscriptions
    for code in range(len(a.region_names)):
        ra, rb = a.region_receipts(code), b.region_receipts(code)
        assert (ra.subscription == rb.subscription).all() and (ra.cluster == rb.cluster).all()
    assert (a.completions.cluster == b.completions.cluster).all()
    assert check_run(fast).to_json()["region_loss"] == check_run(slow).to_json()["region_loss"]


def test_without_replicated_subscription_no_subscription_figures(tmp_path: Path) -> None:
    run = DH.write(tmp_path / "run", files=DH.histories(replicated=False), run=DH.run_json(replicated=False))
    row = _row(run)
    assert row["subscriptions"] is None
    assert row["rpo"]["count"] == 5 and row["clients"][0]["rto_s"] == pytest.approx(3.204)


def test_strong_without_failover_says_writes_stalled_until_the_rebuild(tmp_path: Path) -> None:
    # a stretched cluster: while a is lost no write is acked anywhere; 2 s after the rebuild they resume
    lines: list[dict] = []
    for i in range(60):
        t = i * 1000.0
        for region in "ab":
            ok = t < 20_000 or t >= 32_000
            lines += sent(f"{region}/p0", i, t, outcome="ok" if ok else "fail")
            if ok:
                lines += [recv(f"{r}/c0", f"{region}/p0", i, t + 5) for r in "ab"]
    lines += [fault("start", 20_000, fault="lose", region_loss=True, regions=["a"]),
              fault("stop", 30_000, fault="lose", rebuilt=True)]
    run = make_run(tmp_path / "run", {"h.jsonl": lines}, scheme="strong")
    row = _row(run)
    assert row["failed_over"] is False and row["rpo"]["count"] == 0 and row["exposure"]["count"] == 0
    assert row["writes"] == {"outcome": "resumed", "stalled_s": 12.001, "resumed_s": 32.001, "after_rebuild_s": 2.001}
    assert {c["client"]: (c["outcome"], c["rto_s"], c["cluster"], c["failed_over"]) for c in row["clients"]} == {
        "a/p0": ("recovered", 12.001, "a", False), "a/c0": ("recovered", 12.005, "a", False)}
    from geo_recon.report.facts import region_loss_lines
    words = region_loss_lines(row)
    assert "writes stalled for 12.00 s: they resumed 2.00 s after the rebuild" in words


def test_never_and_not_observed(tmp_path: Path) -> None:
    # a is lost at 10 s for good; b publishes until 50 s (long enough: "never") or 20 s (not long enough)
    def run(end_s: int, name: str) -> dict[str, Any]:
        lines: list[dict] = []
        for i in range(end_s):
            t = i * 1000.0
            lines += sent("b/p0", i, t) + [recv("b/c0", "b/p0", i, t + 5)]
            if t < 10_000:
                lines += sent("a/p0", i, t) + [recv("a/c0", "a/p0", i, t + 5), recv("b/c0", "a/p0", i, t + 5),
                                               recv("a/c0", "b/p0", i, t + 5)]
        lines.append(fault("start", 10_000, fault="lose", region_loss=True, regions=["a"]))
        return _row(make_run(tmp_path / name, {"h.jsonl": lines}))

    long, short = run(50, "long"), run(20, "short")
    assert [c["outcome"] for c in long["clients"]] == ["never", "never"]
    assert [c["outcome"] for c in short["clients"]] == ["not observed", "not observed"]
    assert long["rebuilt_s"] is None and long["healed_s"] is None
    # a's consumer never saw b's messages from 10 s on: not counted while a is lost (no rebuild)
    assert long["not_counted"] == 40


def test_a_gap_a_lost_region_could_have_seen_still_counts(tmp_path: Path) -> None:
    # a received b's seq 0-4 and 6-9 before the loss at 20 s, never seq 5: lost in a, not excused
    lines: list[dict] = []
    for i in range(30):
        lines += sent("b/p0", i, i * 1000.0) + [recv("b/c0", "b/p0", i, i * 1000.0 + 5)]
        if i < 10 and i != 5:
            lines.append(recv("a/c0", "b/p0", i, i * 1000.0 + 5))
    lines.append(fault("start", 20_000, fault="lose", region_loss=True, regions=["a"]))
    result = check_run(make_run(tmp_path / "run", {"h.jsonl": lines})).to_json()
    assert result["regions"]["a"]["lost"] == 1 and result["region_loss"][0]["not_counted"] == 20
    assert result["cases"]["lost"][0]["seq"] == 5


def test_a_kill_of_a_region_gets_the_figures_but_nothing_is_excused(tmp_path: Path) -> None:
    lines: list[dict] = []
    for i in range(30):
        lines += sent("b/p0", i, i * 1000.0) + [recv("b/c0", "b/p0", i, i * 1000.0 + 5)]
        if i < 10:
            lines.append(recv("a/c0", "b/p0", i, i * 1000.0 + 5))
    lines += [fault("start", 10_000), fault("stop", 15_000)]
    result = check_run(make_run(tmp_path / "run", {"h.jsonl": lines})).to_json()
    (row,) = result["region_loss"]
    assert row["fault"] == "kill" and row["rebuilt_s"] is None and row["healed_s"] == pytest.approx(15.0)
    assert row["not_counted"] == 0 and result["regions"]["a"]["lost"] == 20


def test_old_history_without_the_new_fields(tmp_path: Path) -> None:
    lines = sent("a/p0", 0, 0) + [recv("a/c0", "a/p0", 0, 5), recv("b/c0", "a/p0", 0, 5)]
    result = check_run(make_run(tmp_path / "run", {"h.jsonl": lines})).to_json()
    assert result["region_loss"] == [] and result["valid"]


@pytest.mark.parametrize("bad, words", [
    ({"role": "driver"}, "field 'role' must be 'producer' or 'consumer'"),
    ({"to": None}, "missing field 'to'"),
])
def test_a_bad_failover_line_is_named(tmp_path: Path, bad: dict, words: str) -> None:
    line = {"type": "failover", "time": 1, "region": "a", "process": "a/p0", "client": "a/p0", "role": "producer",
            "from": "a", "to": "b", "mode": "auto"}
    line.update(bad)
    line = {k: v for k, v in line.items() if v is not None}
    run = make_run(tmp_path / "run", {"h.jsonl": sent("a/p0", 0, 0) + [line]})
    with pytest.raises(HistoryError, match=words) as info:
        read_history(run)
    assert "h.jsonl" in str(info.value) and ":3" in str(info.value)


def test_a_non_string_cluster_is_bad(tmp_path: Path) -> None:
    lines = sent("a/p0", 0, 0) + [{**recv("a/c0", "a/p0", 0, 5), "cluster": 7}]
    with pytest.raises(HistoryError, match="field 'cluster' must be a string"):
        read_history(make_run(tmp_path / "run", {"h.jsonl": lines}))


def test_results_json_round_trips(disaster: Path) -> None:
    row = _row(disaster)
    assert json.loads(json.dumps(row)) == row
