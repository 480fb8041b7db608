import pytest

from geo_recon.billing.reconciler import FlowSnapshot, ReadPlanner
from geo_recon.errors import ConfigError

MS = 1_000_000
SYSTEMS = ("order", "payment", "ledger")


def snap(watermarks_ms, *, idle=(False, False, False), open_transactions=0, buffered=(0, 0, 0)):
    return FlowSnapshot(SYSTEMS, tuple(None if w is None else w * MS for w in watermarks_ms), tuple(idle),
                        open_transactions, tuple(buffered))


def test_systems_close_together_are_all_read_laggard_first():
    plan = ReadPlanner(max_skew_ms=500).plan(snap((1000, 900, 1200)))
    assert plan.order == ("payment", "order", "ledger") and plan.paused == frozenset()


def test_a_system_too_far_ahead_of_the_slowest_is_paused():
    plan = ReadPlanner(max_skew_ms=500).plan(snap((1000, 400, 900)))  # 600 ahead: paused; exactly 500: not
    assert plan.paused == {"order"}
    assert plan.order == ("payment", "ledger")


def test_the_slowest_is_never_paused_even_when_memory_is_full():
    plan = ReadPlanner(max_skew_ms=500, max_open=10, max_buffered=5).plan(
        snap((1000, 990, 995), open_transactions=10, buffered=(9, 9, 9)))
    assert plan.paused == {"order", "ledger"} and plan.order == ("payment",)


def test_full_caller_buffers_pause_that_system():
    plan = ReadPlanner(max_buffered=100).plan(snap((1000, 1000, 1000), buffered=(0, 100, 0)))
    assert plan.paused == {"payment"}
    assert plan.order == ("order", "ledger")  # ties: system order


def test_a_system_that_never_delivered_is_the_slowest_and_everyone_waits_for_it():
    plan = ReadPlanner(max_skew_ms=10_000).plan(snap((1000, None, 1000)))
    assert plan.paused == {"order", "ledger"} and plan.order == ("payment",)


def test_idle_systems_are_not_waited_for_never_paused_and_read_last():
    plan = ReadPlanner(max_skew_ms=500).plan(snap((5000, 100, 4800), idle=(False, True, False)))
    assert plan.paused == frozenset()
    assert plan.order == ("ledger", "order", "payment")


def test_when_all_are_idle_all_are_read():
    plan = ReadPlanner().plan(snap((5, 3, None), idle=(True, True, True)))
    assert plan.paused == frozenset() and plan.order == ("ledger", "payment", "order")


def test_bad_planner_settings_and_snapshots():
    with pytest.raises(ConfigError, match="max_skew_ms"):
        ReadPlanner(max_skew_ms=-1)
    with pytest.raises(ConfigError, match="max_buffered and max_open"):
        ReadPlanner(max_open=0)
    with pytest.raises(ValueError, match="one watermark"):
        ReadPlanner().plan(FlowSnapshot(SYSTEMS, (1, 2), (False,) * 3, 0, (0,) * 3))
