"""The canary's streaming checker on small hand-made histories: each rule, one test."""

from __future__ import annotations

import json

import pytest

from geo_recon.canary.cases import DuplicatedCase, LateCase, LostCase, ReorderedCase
from geo_recon.canary.checker import CanaryChecker
from geo_recon.canary.explanations import explain
from geo_recon.errors import ConfigError

S = 1_000_000_000
MS = 1_000_000


def _pair(checker: CanaryChecker, origin: str, region: str):
    return next(p for p in checker.snapshot().pairs if (p.origin, p.region) == (origin, region))


def _origin(checker: CanaryChecker, origin: str):
    return next(o for o in checker.snapshot().origins if o.origin == origin)


def _send_ack(c: CanaryChecker, seq: int, t: int, producer: str = "a/p", origin: str = "a") -> None:
    c.sent(producer, origin, seq, t)
    c.acked(producer, seq, t + MS)


def test_delivered_everywhere_in_time_is_counted_with_its_lag_and_nothing_else():
    c = CanaryChecker(["a", "b"], deadline_s=10)
    _send_ack(c, 0, 0)
    c.delivered("a", "a/p", 0, "1:0", 2 * MS)
    c.delivered("b", "a/p", 0, "7:0", 301 * MS)
    c.advance(60 * S)
    b = _pair(c, "a", "b")
    assert (b.delivered, b.lost, b.duplicated, b.reordered, b.late) == (1, 0, 0, 0, 0)
    assert b.lag.count == 1 and b.lag.quantile(0.99) == 0.5  # 300 ms falls in the (0.25, 0.5] bucket
    assert c.live() == 0


def test_not_delivered_by_the_deadline_is_lost_once_and_a_later_delivery_is_late():
    c = CanaryChecker(["a", "b"], deadline_s=10)
    _send_ack(c, 0, 0)
    c.delivered("a", "a/p", 0, "1:0", 2 * MS)
    c.advance(MS + 10 * S)  # exactly the due time: still in time
    assert _pair(c, "a", "b").lost == 0
    c.advance(MS + 10 * S + 1)
    assert _pair(c, "a", "b").lost == 1 and _pair(c, "a", "a").lost == 0
    [case] = c.drain_cases()
    assert isinstance(case, LostCase) and case.seen_in == ("a",)
    assert "was not delivered in b within the 10 s deadline; it was delivered in a" in explain(case)
    c.delivered("b", "a/p", 0, "7:0", 12 * S)
    b = _pair(c, "a", "b")
    assert (b.lost, b.late, b.delivered) == (1, 1, 0)
    assert isinstance(c.drain_cases()[0], LateCase)


def test_exposure_is_what_only_the_origin_holds_and_pending_ages_per_pair():
    c = CanaryChecker(["a", "b", "c"], deadline_s=30)
    for seq in range(3):
        _send_ack(c, seq, seq * S)
        c.delivered("a", "a/p", seq, f"{seq}", seq * S + 2 * MS)
    c.delivered("c", "a/p", 0, "x0", 3 * S)  # seq 0 reached c: no longer exposed, still pending for b
    c.advance(5 * S)
    a = _origin(c, "a")
    assert a.exposure == 2 and a.exposure_oldest_s == pytest.approx(4 - 0.001, abs=1e-6)
    b = _pair(c, "a", "b")
    assert b.pending == 3 and b.oldest_pending_s == pytest.approx(5 - 0.001, abs=1e-6)
    assert _pair(c, "a", "c").pending == 2


def test_duplicates_redeliveries_and_reordering():
    c = CanaryChecker(["a"], deadline_s=10)
    for seq in range(3):
        _send_ack(c, seq, seq * MS)
    c.delivered("a", "a/p", 0, "m0", 10 * MS)
    c.delivered("a", "a/p", 2, "m2", 11 * MS)
    c.delivered("a", "a/p", 1, "m1", 12 * MS)  # after 2: reordered
    c.delivered("a", "a/p", 1, "m1", 13 * MS)  # the same msg_id again: a redelivery
    c.delivered("a", "a/p", 0, "m9", 14 * MS)  # another msg_id: stored twice
    p = _pair(c, "a", "a")
    assert (p.delivered, p.reordered, p.redelivered, p.duplicated) == (3, 1, 1, 1)
    cases = c.drain_cases()
    assert [type(x) for x in cases] == [ReorderedCase, DuplicatedCase]
    assert explain(cases[1]) == "a/p seq 0 from a is stored twice in a: msg_id m0, then m9."


def test_a_failed_or_unanswered_send_is_never_lost():
    c = CanaryChecker(["a", "b"], deadline_s=1)
    c.sent("a/p", "a", 0, 0)
    c.failed("a/p", 0, MS)
    c.sent("a/p", "a", 1, MS)  # never answered: unknown after 2 deadlines
    c.delivered("b", "a/p", 1, "x", 1500 * MS)
    c.advance(10 * S)
    assert sum(p.lost for p in c.snapshot().pairs) == 0
    assert _origin(c, "a").failed == 2 and _pair(c, "a", "b").delivered == 1


def test_delivery_before_the_ack_gets_its_lag_at_the_ack():
    c = CanaryChecker(["a"], deadline_s=5)
    c.sent("a/p", "a", 0, 0)
    c.delivered("a", "a/p", 0, "x", 3 * MS)
    c.acked("a/p", 0, 5 * MS)
    p = _pair(c, "a", "a")
    assert p.lag.count == 1 and p.lag.sum_s == 0 and p.pending == 0


def test_beyond_the_horizon_deliveries_are_late_and_strangers_are_unexpected():
    c = CanaryChecker(["a", "b"], deadline_s=1, horizon_s=1)
    _send_ack(c, 0, 0)
    c.delivered("a", "a/p", 0, "x", MS)
    c.delivered("b", "a/p", 0, "y", MS)
    c.advance(5 * S)
    assert c.live() == 0
    c.delivered("b", "a/p", 0, "y", 6 * S)  # forgotten: late (beyond the horizon)
    c.delivered("b", "b/other", 0, "z", 6 * S)  # never seen
    assert _pair(c, "a", "b").late == 1 and _pair(c, "b", "b").unexpected == 1


def test_state_is_bounded_by_rate_times_the_windows_however_long_the_run():
    c = CanaryChecker(["a", "b"], deadline_s=2, horizon_s=1)
    rate = 100
    peak = 0
    for i in range(rate * 60):
        t = i * S // rate
        _send_ack(c, i, t)
        c.delivered("a", "a/p", i, i, t + 2 * MS)
        c.delivered("b", "a/p", i, i, t + 50 * MS)
        peak = max(peak, c.live())
    assert peak <= rate * (2 + 1 + 1)


def test_a_restart_after_downtime_longer_than_the_deadline_reports_no_loss():
    c = CanaryChecker(["a", "b"], deadline_s=10)
    for seq in range(5):
        _send_ack(c, seq, seq * S)
        c.delivered("a", "a/p", seq, seq, seq * S + MS)
    saved = json.loads(json.dumps(c.to_state()))  # the canary dies at 4 s; b delivered none of them yet
    back = CanaryChecker.from_state(saved, now_ns=64 * S, regions=["a", "b"], deadline_s=10)  # down 60 s
    back.advance(64 * S + 1)
    assert sum(p.lost for p in back.snapshot().pairs) == 0
    for seq in range(5):  # the backlog waiting in b's subscription comes in
        back.delivered("b", "a/p", seq, seq, 65 * S)
    back.advance(200 * S)
    b = _pair(back, "a", "b")
    assert (b.delivered, b.lost) == (5, 0) and back.live() == 0


def test_a_restart_still_finds_real_loss():
    c = CanaryChecker(["a", "b"], deadline_s=10)
    _send_ack(c, 0, 0)
    back = CanaryChecker.from_state(json.loads(json.dumps(c.to_state())), now_ns=30 * S, regions=["a", "b"],
                                    deadline_s=10)
    back.advance(30 * S + 10 * S + 2 * MS)
    assert _pair(back, "a", "b").lost == 1 and _pair(back, "a", "a").lost == 1


def test_a_state_of_other_regions_or_bad_settings_is_refused_in_one_line():
    c = CanaryChecker(["a", "b"], deadline_s=10)
    with pytest.raises(ConfigError, match="saved for regions"):
        CanaryChecker.from_state(c.to_state(), now_ns=0, regions=["a", "c"], deadline_s=10)
    with pytest.raises(ConfigError, match="deadline"):
        CanaryChecker(["a"], deadline_s=0)
    with pytest.raises(ConfigError, match="distinct"):
        CanaryChecker(["a", "a"], deadline_s=1)
