"""Fault windows, convergence, RPO and RTO on hand-made histories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo_recon.check import check_run
from geo_recon.check import recovery as recovery_module
from geo_recon.check.model import Completions, FaultEvent
from geo_recon.check.recovery import fault_windows, recovery
from tests.unit.check.helpers import fault, make_run, recv, sent


def ev(phase: str, t: int, id: str = "f", fault: str = "kill", target: str = "a", **kw: object) -> FaultEvent:
    return FaultEvent(time=t, phase=phase, fault=fault, target=target, id=id, **kw)  # type: ignore[arg-type]


def test_windows_pair_by_id_in_time_order() -> None:
    windows = fault_windows([ev("stop", 30, "x"), ev("start", 10, "x"), ev("start", 40, "x"), ev("stop", 5, "y"),
                             ev("start", 20, "z", fault="partition", target="a|b")], regions=["a", "b"])
    assert [(w.id, w.start, w.stop) for w in windows] == [("y", None, 5), ("x", 10, 30), ("z", 20, None),
                                                          ("x", 40, None)]


def test_which_faults_lose_a_region() -> None:
    regions = ["a", "b"]
    cases = [
        (ev("start", 1, fault="kill", target="a"), ("a",)),
        (ev("start", 1, fault="pause", target="b"), ("b",)),
        (ev("start", 1, fault="stop", target="a"), ("a",)),
        (ev("start", 1, fault="kill", target="a/broker"), ()),
        (ev("start", 1, fault="restart", target="a"), ()),
        (ev("start", 1, fault="kill", target="zookeeper"), ()),
        (ev("start", 1, fault="kill", target="a/bookie-0", region_loss=True), ("a",)),
        (ev("start", 1, fault="partition", target="a|b", region_loss=True, regions=("b",)), ("b",)),
    ]
    for event, lost in cases:
        (w,) = fault_windows([event], regions=regions)
        assert w.lost_regions == lost, event
        assert w.region_loss == bool(lost) or event.region_loss is True


def base(n: int = 6) -> list[dict]:
    return [x for s in range(n) for x in sent("a/p0", s, 10 * s)]


def test_convergence_after_a_stop(tmp_path: Path) -> None:
    # messages 0..5 acked at 1, 11, ..., 51 ms; b receives 0-3 quickly, 4 and 5 at 120 and 130 ms
    a = [recv("a/c0", "a/p0", s, 10 * s + 2) for s in range(6)]
    b = [recv("b/c0", "a/p0", s, 10 * s + 5) for s in range(4)] + [recv("b/c0", "a/p0", 4, 120),
                                                                     recv("b/c0", "a/p0", 5, 130)]
    nemesis = [fault("start", 20, target="a|b", fault="partition", id="p"), fault("stop", 45, target="a|b",
                                                                                   fault="partition", id="p"),
               fault("start", 60, target="a/broker", id="k"), fault("stop", 70, target="a/broker", id="k"),
               fault("start", 80, target="a/broker", id="early"), fault("stop", 2, target="a/broker", id="gone")]
    got = check_run(make_run(tmp_path, {"p.jsonl": base(), "a.jsonl": a, "b.jsonl": b, "n.jsonl": nemesis})).to_json()
    conv = {c["fault_id"]: c for c in got["convergence"]}
    # stop at 45 ms: acked before it are 0..4 (ok at 41 ms); the last arrives at 120 ms: 75 ms later
    assert conv["p"] == {"fault_id": "p", "stop_s": 0.045, "converged": True, "ms": 75.0,
                         "still_missing": {"a": 0, "b": 0}}
    # stop at 70 ms: all six; the last arrives at 130 ms
    assert conv["k"]["ms"] == 60.0
    # stop at 2 ms (a stop with no start): message 0, acked at 1 ms, reached b at 5 ms
    assert conv["gone"]["converged"] is True and conv["gone"]["ms"] == 3.0
    assert "early" not in conv  # never stopped


def test_never_converged_counts_what_is_missing(tmp_path: Path) -> None:
    a = [recv("a/c0", "a/p0", s, 10 * s + 2) for s in range(6)]
    b = [recv("b/c0", "a/p0", s, 10 * s + 5) for s in (0, 1, 5)]
    nemesis = [fault("start", 20, target="b"), fault("stop", 45, target="b")]
    got = check_run(make_run(tmp_path, {"p.jsonl": base(), "a.jsonl": a, "b.jsonl": b, "n.jsonl": nemesis})).to_json()
    (conv,) = got["convergence"]
    assert conv["converged"] is False and conv["ms"] is None
    assert conv["still_missing"] == {"a": 0, "b": 3}  # 2, 3 and 4 (acked at 21, 31, 41 ms)


def test_rpo_counts_acked_messages_that_never_left_the_lost_region(tmp_path: Path) -> None:
    sends = base(6) + [x for s in range(2) for x in sent("b/p0", s, 10 * s)]
    a = [recv("a/c0", "a/p0", s, 10 * s + 2) for s in range(6)]
    # b got a's 0, 1 and 5 (after recovery); 2, 3 and 4 (acked 21, 31, 41 ms) never left a
    b = [recv("b/c0", "a/p0", s, 10 * s + 5) for s in (0, 1, 5)] + [recv("b/c0", "b/p0", s, 10 * s + 2)
                                                                    for s in range(2)]
    a += [recv("a/c0", "b/p0", s, 10 * s + 9) for s in range(2)]
    nemesis = [fault("start", 45, target="a", fault="kill", id="loss"), fault("stop", 48, target="a", id="loss")]
    got = check_run(make_run(tmp_path, {"p.jsonl": sends, "a.jsonl": a, "b.jsonl": b, "n.jsonl": nemesis})).to_json()
    (rpo,) = got["rpo"]
    assert rpo["fault_id"] == "loss" and rpo["region"] == "a"
    assert rpo["count"] == 3
    assert rpo["first_ok_s"] == 0.021 and rpo["last_ok_s"] == 0.041
    assert rpo["span_ms"] == 20.0
    assert rpo["window_ms"] == 24.0  # from the oldest (21 ms) to the fault start (45 ms)
    assert got["regions"]["b"]["lost"] == 3


def test_rto_from_first_failure_to_next_ok_per_region(tmp_path: Path) -> None:
    sends = (sent("a/p0", 0, 0) + sent("a/p0", 1, 20, outcome="fail") + sent("a/p0", 2, 30, outcome="info")
             + sent("a/p0", 3, 50) + sent("b/p0", 0, 25) + sent("b/p0", 1, 200, outcome="fail"))
    a = [recv("a/c0", "a/p0", s, 60) for s in (0, 3)] + [recv("a/c0", "b/p0", 0, 60)]
    b = [recv("b/c0", "a/p0", s, 60) for s in (0, 3)] + [recv("b/c0", "b/p0", 0, 60)]
    nemesis = [fault("start", 15, target="a", id="k1"), fault("stop", 40, target="a", id="k1"),
               fault("start", 150, target="a|b", fault="partition", id="p2")]
    got = check_run(make_run(tmp_path, {"p.jsonl": sends, "a.jsonl": a, "b.jsonl": b, "n.jsonl": nemesis})).to_json()
    rto = {(r["fault_id"], r["region"]): r for r in got["rto"]}
    # a: first failure completes at 21 ms, the next ok at 51 ms
    assert rto[("k1", "a")]["ms"] == 30.0 and rto[("k1", "a")]["recovered"] is True
    assert rto[("k1", "a")]["first_failure_s"] == 0.021 and rto[("k1", "a")]["recovered_s"] == 0.051
    # b: no failure between k1's start and the next fault's start
    assert rto[("k1", "b")]["ms"] == 0.0 and rto[("k1", "b")]["failed"] is False
    # after p2, b's send failed and nothing succeeded afterwards
    assert rto[("p2", "b")]["ms"] is None and rto[("p2", "b")]["recovered"] is False


def _outage(tmp_path: Path, *, load_ms: float) -> dict:
    """a killed 100..200 ms: its sends fail then; b publishes until ``load_ms``, a never again after the kill."""
    sends = [x for s in range(10) for x in sent("a/p0", s, 10 * s, outcome="ok" if s < 10 else "info")]
    sends += [x for s in range(10, 20) for x in sent("a/p0", s, 10 * s, outcome="info")]
    b_sends = [x for s in range(int(load_ms // 10)) for x in sent("b/p0", s, 10 * s)]
    receipts = [recv("b/c0", "b/p0", s, 10 * s + 2) for s in range(int(load_ms // 10))]
    receipts += [recv("a/c0", "b/p0", s, 10 * s + 3) for s in range(int(load_ms // 10))]
    nemesis = [fault("start", 100), fault("stop", 200)]
    return check_run(make_run(tmp_path, {"a.jsonl": sends, "b.jsonl": b_sends, "r.jsonl": receipts,
                                         "n.jsonl": nemesis})).to_json()


def test_recovery_after_the_heal_and_rto_never_or_not_observed(tmp_path: Path) -> None:
    short = _outage(tmp_path / "short", load_ms=400)
    rows = {r["region"]: r for r in short["recovery"]}
    assert rows["a"]["publish_ms"] is None and rows["a"]["receive_ms"] == 3.0
    assert rows["b"]["publish_ms"] == 1.0 and rows["a"]["heal_s"] == 0.2 - 0.0 and rows["a"]["load_end_s"] == 0.39
    rto_a = next(r for r in short["rto"] if r["region"] == "a")
    assert rto_a["recovered"] is False and rto_a["outcome"] == "not observed"  # 0.19 s of load past the heal
    # 31 s of load past the heal (more than the default recovery limit of 30 s): "never"
    long = _outage(tmp_path / "long", load_ms=31_300)
    rto_a = next(r for r in long["rto"] if r["region"] == "a")
    assert rto_a["outcome"] == "never"


def test_a_region_still_lost_to_another_fault_recovers_from_that_faults_heal(tmp_path: Path) -> None:
    """pulsar-22890's shape: b stopped 50..300 ms, a's topics unloaded at 100 ms (instant). b cannot work
    again after the unload before its own stop heals: its recovery after the unload counts from 300 ms."""
    sends = [x for s in range(40) for x in sent("a/p0", s, 10 * s)]
    sends += [x for s in range(5) for x in sent("b/p0", s, 10 * s)] + \
        [x for s in range(5, 40) for x in sent("b/p0", s, 10 * s, outcome="ok" if 10 * s >= 320 else "info")]
    receipts = [recv("a/c0", "a/p0", s, 10 * s + 2) for s in range(40)]
    receipts += [recv("b/c0", "a/p0", s, 10 * s + 2) for s in range(40) if s < 5 or 10 * s >= 330]
    nemesis = [fault("start", 50, fault="stop", target="b", id="f1"), fault("stop", 300, fault="stop", target="b",
                                                                           id="f1"),
               fault("start", 100, fault="unload", target="a", id="f2"), fault("stop", 100, fault="unload",
                                                                                target="a", id="f2")]
    got = check_run(make_run(tmp_path, {"s.jsonl": sends, "r.jsonl": receipts, "n.jsonl": nemesis})).to_json()
    rows = {(r["fault_id"], r["region"]): r for r in got["recovery"]}
    held = rows[("f2", "b")]
    assert held["held_down_by"] == "f1" and held["recovers_from_s"] == 0.3 and held["heal_s"] == 0.1
    assert held["publish_ms"] == 21.0 and held["receive_ms"] == 32.0  # from 300 ms, not from the unload at 100 ms
    assert "held_down_by" not in rows[("f2", "a")] and rows[("f2", "a")]["publish_ms"] == 1.0
    assert "held_down_by" not in rows[("f1", "b")] and rows[("f1", "b")]["publish_ms"] == 21.0


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1), st.sampled_from([2, 3, 4])), max_size=60),
       st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 200), st.sampled_from(["a", "b"])), min_size=1,
                max_size=30))
def test_recovery_is_the_same_whether_the_ok_times_are_sorted_or_scanned(
        sends: list[tuple[int, int, int]], faults: list[tuple[int, int, str]]) -> None:
    events = [e for i, (t, span, target) in enumerate(faults)
              for e in (ev("start", t, f"f{i}", target=target), ev("stop", t + span, f"f{i}", target=target))]
    windows = fault_windows(events, regions=["a", "b"])
    completions = Completions(time=np.array([t for t, _, _ in sends], dtype=np.int64),
                              region=np.array([r for _, r, _ in sends], dtype=np.int16),
                              outcome=np.array([o for _, _, o in sends], dtype=np.int8),
                              process=np.zeros(len(sends), dtype=np.int32), cluster=np.full(len(sends), -1, np.int16))

    def run() -> list[dict[str, object]]:
        return recovery(windows, completions=completions, first_receipt_after={}, regions=["a", "b"],
                        region_names=["a", "b"], load_end=None, t0=0)

    scanned = run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recovery_module, "_FEW_HEALS", -1)  # every heal count takes the sorted path
        assert run() == scanned
