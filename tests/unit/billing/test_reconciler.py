"""The streaming join engine, one rule at a time, on hand-built event sequences."""

import pytest

from geo_recon.billing.events import BillingEvent, encode
from geo_recon.billing.reconciler import Reconciler, Verdict, VerdictKind
from geo_recon.errors import ConfigError

MS = 1_000_000
SYSTEMS = ("order", "payment", "ledger")


def ev(txn, system, t_ms, amount=100, eid=None):
    eid = eid if eid is not None else hash((txn, system)) & 0xFFFFFFFF
    return BillingEvent(txn, system, "r", amount, eid, round(t_ms * MS))


def engine(**kw):
    return Reconciler(SYSTEMS, **{"lateness_ms": 100, "idle_ms": 1000, **kw})


def feed(rec, *events, at_ms):
    for e in events:
        rec.offer(e, round(at_ms * MS))
    return rec.drain()


def fill(rec, t_ms, at_ms, systems=SYSTEMS):
    """Move the given systems' watermarks to t_ms with a filler transaction."""
    return feed(rec, *(ev(f"fill-{t_ms}", s, t_ms) for s in systems), at_ms=at_ms)


def kinds(verdicts, txn=None):
    return sorted((v.kind, v.system) for v in verdicts if txn is None or v.txn_id == txn)


def test_a_complete_transaction_matches_once_every_system_is_past_it_by_the_lateness():
    rec = engine()
    assert feed(rec, ev("t1", "order", 0), ev("t1", "payment", 10), ev("t1", "ledger", 20), at_ms=30) == []
    assert fill(rec, 100, at_ms=40) == []  # W = 100 - 100 = 0: not yet past t1's 1 ms bucket
    assert fill(rec, 100.5, at_ms=41) == []
    assert fill(rec, 101, at_ms=50, systems=("order", "payment")) == []  # ledger still holds W back
    out = fill(rec, 101, at_ms=60, systems=("ledger",))
    assert [(v.kind, v.txn_id) for v in out] == [(VerdictKind.MATCHED, "t1")]
    v = out[0]
    assert (v.event_time_ns, v.decided_ns, v.watermark_ns) == (0, 60 * MS, 1 * MS)
    assert rec.watermark_ns == 1 * MS


def test_mismatched_amounts_name_the_odd_system():
    rec = engine()
    feed(rec, ev("t1", "order", 0, 100), ev("t1", "payment", 1, 105), ev("t1", "ledger", 2, 100), at_ms=5)
    out = [v for v in fill(rec, 200, at_ms=10) if v.txn_id == "t1"]
    assert [(v.kind, v.system, v.amounts) for v in out] == [(VerdictKind.MISMATCHED, "payment", (100, 105, 100))]


def test_missing_names_each_absent_system():
    rec = engine()
    feed(rec, ev("t1", "payment", 0, 100), at_ms=5)
    out = fill(rec, 200, at_ms=10)
    assert kinds(out, "t1") == [(VerdictKind.MISSING, "ledger"), (VerdictKind.MISSING, "order")]
    assert all(v.amounts == (None, 100, None) for v in out if v.txn_id == "t1")


def test_two_charges_are_a_duplicate_but_a_redelivered_copy_is_not():
    rec = engine()
    feed(rec, ev("t1", "order", 0), ev("t1", "payment", 1, eid=7), ev("t1", "payment", 2, eid=8),
         ev("t1", "ledger", 3), at_ms=5)
    feed(rec, ev("t2", "order", 0), ev("t2", "payment", 1, eid=9), ev("t2", "payment", 1, eid=9),
         ev("t2", "ledger", 3), at_ms=6)
    out = fill(rec, 200, at_ms=10)
    dup = [v for v in out if v.txn_id == "t1"]
    assert [(v.kind, v.system, v.event_ids) for v in dup] == [(VerdictKind.DUPLICATE, "payment", (7, 8))]
    assert kinds(out, "t2") == [(VerdictKind.MATCHED, None)]
    assert rec.stats().redeliveries == 1


def test_one_event_id_with_two_contents_is_a_duplicate_and_a_mismatch():
    rec = engine()
    feed(rec, ev("t1", "order", 0), ev("t1", "payment", 1, 100, eid=7), ev("t1", "payment", 1, 999, eid=7),
         ev("t1", "ledger", 2), at_ms=5)
    assert kinds(fill(rec, 200, at_ms=10), "t1") == [(VerdictKind.DUPLICATE, "payment"),
                                                     (VerdictKind.MISMATCHED, "payment")]


def test_events_after_the_verdict_are_late_never_joined_and_copies_stay_redeliveries():
    rec = engine()
    feed(rec, ev("t1", "order", 0), ev("t1", "payment", 1, eid=7), at_ms=5)
    assert kinds(fill(rec, 200, at_ms=10), "t1") == [(VerdictKind.MISSING, "ledger")]
    late = feed(rec, ev("t1", "ledger", 2), ev("t1", "payment", 3, eid=8), at_ms=11)
    assert [(v.kind, v.txn_id, v.system, v.event_ids) for v in late] == [
        (VerdictKind.LATE, "t1", "ledger", (hash(("t1", "ledger")) & 0xFFFFFFFF,)),
        (VerdictKind.LATE, "t1", "payment", (8,)),
    ]
    assert late[0].watermark_ns == 100 * MS and late[0].event_time_ns == 2 * MS
    assert feed(rec, ev("t1", "payment", 1, eid=7), at_ms=12) == []  # the same charge again
    stats = rec.stats()
    assert (stats.late, stats.redeliveries, stats.events) == (2, 1, 8)


def test_an_unknown_transaction_below_the_watermark_is_late():
    rec = engine()
    fill(rec, 300, at_ms=10)
    out = feed(rec, ev("ghost", "order", 150), at_ms=11)
    assert [(v.kind, v.txn_id) for v in out] == [(VerdictKind.LATE, "ghost")]
    assert feed(rec, ev("fresh", "order", 250), at_ms=12) == []  # above W = 200: opens a transaction
    assert rec.open_transactions() == 2  # fresh, and the filler at 300


def test_tombstones_expire_and_memory_is_released():
    rec = engine()
    for i in range(50):
        feed(rec, *(ev(f"t{i}", s, i) for s in SYSTEMS), at_ms=i)
    assert rec.open_transactions() == 50
    fill(rec, 160, at_ms=60)  # W = 60 ms: every bucket ending by then is final: t0..t49
    stats = rec.stats()
    assert (stats.open, stats.tombstones) == (1, 50)  # the filler at 160 ms is still open
    fill(rec, 400, at_ms=70)  # W = 300 ms: L past the end of every bucket up to 199 ms: dropped
    stats = rec.stats()
    assert (stats.open, stats.tombstones) == (1, 0)
    assert stats.verdicts == {"matched": 51}
    assert stats.peak_tombstones == 51
    assert stats.peak_open == 51
    # Past its tombstone, a copy of an old event is simply late.
    assert kinds(feed(rec, ev("t3", "order", 3), at_ms=71)) == [(VerdictKind.LATE, "order")]


def test_a_silent_system_goes_idle_and_stops_holding_verdicts_back():
    rec = engine()  # idle_ms = 1000, checked every 125 ms
    feed(rec, *(ev("t0", s, 0) for s in SYSTEMS), at_ms=0)
    verdicts = []
    # From now on the ledger is silent; the others keep going, one transaction every 100 ms.
    for i in range(1, 20):
        verdicts += feed(rec, ev(f"t{i}", "order", 100 * i), ev(f"t{i}", "payment", 100 * i + 1), at_ms=100 * i)
        if i < 10:
            assert verdicts == [], f"no verdict may be final at {i}00 ms while the ledger is only quiet"
    assert "ledger" in rec.stats().idle
    assert verdicts[0].kind == VerdictKind.MATCHED and verdicts[0].txn_id == "t0"
    assert kinds(verdicts[1:]) == [(VerdictKind.MISSING, "ledger")] * (len(verdicts) - 1)
    # The ledger last advanced at 0 ms: idle between 1000 and 1250 ms later, + twice the 100 ms between events.
    assert 1000 * MS <= verdicts[0].decided_ns <= 1450 * MS
    # The ledger wakes up with an old event: it is late, and the ledger is active again.
    out = feed(rec, ev("t1", "ledger", 101), at_ms=2000)
    assert [(v.kind, v.txn_id) for v in out] == [(VerdictKind.LATE, "t1")]
    assert rec.stats().idle == ()


def test_a_paused_system_never_goes_idle():
    rec = engine()
    feed(rec, *(ev("t0", s, 0) for s in SYSTEMS), at_ms=0)
    rec.set_paused(["ledger"], 0)
    for i in range(1, 30):
        assert feed(rec, ev(f"t{i}", "order", 100 * i), ev(f"t{i}", "payment", 100 * i), at_ms=100 * i) == []
    assert rec.stats().idle == ()
    rec.set_paused([], 3000 * MS)
    out = []
    for i in range(30, 50):
        out += feed(rec, ev(f"t{i}", "order", 100 * i), ev(f"t{i}", "payment", 100 * i), at_ms=100 * i)
        if i < 40:
            assert out == [], "silence counts from the resume"
    assert "ledger" in rec.stats().idle and out


def test_when_every_system_is_silent_the_highest_watermark_stands_for_all():
    rec = engine()
    feed(rec, ev("t1", "order", 0), ev("t1", "payment", 500), at_ms=0)
    rec.tick(900 * MS)
    assert rec.drain() == []
    rec.tick(2000 * MS)
    out = rec.drain()
    assert kinds(out) == [(VerdictKind.MISSING, "ledger")]
    assert rec.watermark_ns == 400 * MS
    assert set(rec.stats().idle) == set(SYSTEMS)
    assert rec.next_deadline_ns() == 2125 * MS


def test_finish_decides_everything_open_and_later_events_are_late():
    rec = engine()
    feed(rec, ev("t1", "order", 0), ev("t1", "payment", 1), ev("t2", "order", 50), at_ms=5)
    rec.finish(7 * MS)
    out = rec.drain()
    assert kinds(out) == [(VerdictKind.MISSING, "ledger"), (VerdictKind.MISSING, "ledger"),
                          (VerdictKind.MISSING, "payment")]
    assert {v.decided_ns for v in out} == {7 * MS}
    assert kinds(feed(rec, ev("t1", "ledger", 2), at_ms=8)) == [(VerdictKind.LATE, "ledger")]
    assert rec.stats().open == 0 and rec.watermark_ns is None


def test_the_watermark_never_decreases_and_is_per_system_minimum_minus_lateness():
    rec = engine()
    fill(rec, 500, at_ms=1)
    assert rec.watermark_ns == 400 * MS
    feed(rec, ev("x", "order", 100), ev("x", "payment", 100), ev("x", "ledger", 100), at_ms=2)  # old: late
    assert rec.watermark_ns == 400 * MS
    assert rec.watermarks() == (500 * MS, 500 * MS, 500 * MS)


def test_coarser_buckets_close_together():
    rec = engine(granularity_ms=10)
    feed(rec, *(ev("a", s, 0) for s in SYSTEMS), *(ev("b", s, 9) for s in SYSTEMS), at_ms=10)
    assert fill(rec, 105, at_ms=11) == []  # W = 5 ms: bucket [0, 10) not over
    assert [v.txn_id for v in fill(rec, 110, at_ms=12)] == ["a", "b"]


def test_emit_matched_false_counts_matches_only():
    rec = engine(emit_matched=False)
    feed(rec, *(ev("a", s, 0) for s in SYSTEMS), ev("b", "order", 0), at_ms=1)
    out = fill(rec, 300, at_ms=2)
    assert kinds(out) == [(VerdictKind.MISSING, "ledger"), (VerdictKind.MISSING, "payment")]
    assert rec.stats().verdicts == {"matched": 1, "missing": 2}


def test_offer_many_takes_records_from_payloads_and_generators():
    rec = engine()
    payloads = [encode(ev("t1", s, 0)) for s in SYSTEMS]
    rec.offer_many(rec.record_from_payload(p, 5 * MS) for p in payloads)
    rec.offer_many([rec.record(e, 6 * MS) for e in (ev("f", s, 300) for s in SYSTEMS)])
    out = rec.drain()
    assert [(v.kind, v.txn_id) for v in out] == [(VerdictKind.MATCHED, "t1")]
    assert rec.drain() == []
    assert rec.stats().events == 6


def test_verdicts_are_named_tuples():
    v = Verdict(VerdictKind.MISSING, "t", "ledger", (), (1, None), 3, 4, 5)
    assert v.kind == "missing" and v.system == "ledger" and v._asdict()["decided_ns"] == 4


def test_bad_input_is_refused():
    rec = engine()
    with pytest.raises(ValueError, match="unknown system 'refund'"):
        rec.offer(ev("t", "refund", 0), 0)
    with pytest.raises(ValueError, match="unknown system 'refund'"):
        rec.record_from_payload(encode(ev("t", "refund", 0)), 0)
    with pytest.raises(ValueError, match="unknown systems"):
        rec.set_paused(["refund"], 0)
    for kw, message in [(dict(lateness_ms=-1), "lateness_ms"), (dict(idle_ms=0), "idle_ms"),
                        (dict(granularity_ms=0), "granularity_ms")]:
        with pytest.raises(ConfigError, match=message):
            engine(**kw)
    with pytest.raises(ConfigError, match="2 or more distinct systems"):
        Reconciler(("order",), lateness_ms=1)
    with pytest.raises(ConfigError, match="2 or more distinct systems"):
        Reconciler(("order", "order"), lateness_ms=1)
