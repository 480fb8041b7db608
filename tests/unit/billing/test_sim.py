from collections import Counter

from geo_recon.billing.classify import ReplicationFacts
from geo_recon.billing.events import BillingSpec, default_systems, generate
from geo_recon.billing.reconciler import ReadPlanner, Reconciler, VerdictKind
from geo_recon.billing.reference import batch_reconcile, outcomes
from geo_recon.billing.sim import Transport, arrival_records, deliver, drive, run_paced

MS = 1_000_000
SPEC = BillingSpec(systems=default_systems(), transactions=400, rate_per_s=200, error_rate=0.1, seed=5)


def test_delivery_adds_transport_and_reports_what_it_broke():
    events = generate(SPEC).events
    lost = {("payment", "t3"), ("ledger", "t4"), ("ledger", "nope")}
    d = deliver(events, transport={"payment": Transport(100, 20)}, seed=1, lose=lost,
                delay_ms={("order", "t5"): 700.0}, redeliver={("order", "t6"): 5.0})
    assert [a for a, _e in d.arrivals] == sorted(a for a, _e in d.arrivals)
    assert d.facts == ReplicationFacts(lost=frozenset(lost - {("ledger", "nope")}),
                                       late=frozenset({("order", "t5")}))
    keys = Counter((e.system, e.txn_id) for _a, e in d.arrivals)
    assert keys[("payment", "t3")] == 0 and keys[("order", "t6")] == 2
    for a, e in d.arrivals:
        delay = (a - e.event_time_ns) / MS
        if e.system == "payment":
            assert 100 <= delay < 120
        elif (e.system, e.txn_id) == ("order", "t5"):
            assert delay == 700
        elif (e.system, e.txn_id) != ("order", "t6"):
            assert delay == 0


def test_one_lost_event_does_not_move_the_others():
    events = generate(SPEC).events
    a = dict(((e.event_id, arr) for arr, e in deliver(events, transport={"order": Transport(0, 50)}).arrivals))
    b = dict(((e.event_id, arr) for arr, e in deliver(events, transport={"order": Transport(0, 50)},
                                                      lose={("order", "t0")}).arrivals))
    assert len(a) == len(b) + 1 and all(a[k] == b[k] for k in b)


def test_arrival_records_stream_the_whole_run_in_arrival_order():
    transport = {"order": Transport(0, 5), "payment": Transport(300, 50), "ledger": Transport(20, 0)}
    records = list(arrival_records(SPEC, transport=transport, seed=3))
    assert [r[5] for r in records] == sorted(r[5] for r in records)
    names = SPEC.system_names
    assert sorted((r[0], names[r[1]], r[2], r[3], r[4]) for r in records) == sorted(
        (e.txn_id, e.system, e.amount_cents, e.event_id, e.event_time_ns) for e in generate(SPEC).events)
    for r in records:
        tr = transport[names[r[1]]]
        assert tr.delay_ms * MS <= r[5] - r[4] < (tr.delay_ms + tr.jitter_ms) * MS + 1


def test_drive_ticks_through_silences_so_a_stalled_system_is_noticed():
    events = [e for e in generate(SPEC).events if not (e.system == "ledger" and e.event_time_ns > 500 * MS)]
    rec = Reconciler(SPEC.system_names, lateness_ms=300, idle_ms=400)
    verdicts = drive(rec, deliver(events).arrivals, finish=False)
    missing = [v for v in verdicts if v.kind == VerdictKind.MISSING and v.system == "ledger"]
    assert missing, "the ledger went idle and the others' transactions were decided without it"
    assert "ledger" in rec.stats().idle


def test_paced_reading_keeps_a_lagging_system_from_piling_up_the_others():
    arrivals = deliver(generate(SPEC).events, transport={"ledger": Transport(1500, 0)}).arrivals
    free = run_paced(Reconciler(SPEC.system_names, lateness_ms=200, idle_ms=5000), None, arrivals)
    paced = run_paced(Reconciler(SPEC.system_names, lateness_ms=200, idle_ms=5000), ReadPlanner(max_skew_ms=100),
                      arrivals)
    assert outcomes(free.verdicts) == outcomes(paced.verdicts) == outcomes(batch_reconcile(
        generate(SPEC).events, SPEC.system_names))
    assert free.peak_open >= 1500 / 1000 * 200  # 1.5 s of transactions wait for the ledger
    assert paced.peak_open <= (200 + 100 + 300) / 1000 * 200  # lateness + skew + spread, at 200 txn/s
    assert paced.paused_steps > 0
