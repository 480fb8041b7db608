"""Facts about billing messages from a history, and the label they give a late event."""

import json

from geo_recon.billing.classify import Label, ReplicationFacts, label_verdicts
from geo_recon.billing.reconciler import Verdict, VerdictKind
from geo_recon.workload.billing_facts import replication_facts

S = 1_000_000_000


def _write(run_dir, lines):
    (run_dir / "history").mkdir()
    (run_dir / "history" / "h.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"regions": ["a", "b"]}))


def _send(producer, seq, txn, invoke, ok=None):
    out = [{"type": "invoke", "f": "send", "time": invoke, "region": producer[0], "process": producer,
            "producer": producer, "seq": seq, "key": txn, "topic": "t"}]
    if ok is not None:
        out.append({"type": "ok", "f": "send", "time": ok, "region": producer[0], "process": producer,
                    "producer": producer, "seq": seq, "msg_id": "1:1:-1:-1"})
    return out


def _recv(producer, seq, t, msg_id, region="b", via=None):
    line = {"type": "recv", "time": t, "region": region, "process": f"{region}/c0.0", "producer": producer,
            "seq": seq, "msg_id": msg_id, "redelivery": 0}
    if via:
        line["via"] = via
    return line


def test_each_message_gets_the_fact_of_its_slowest_stage(tmp_path):
    lines = [
        *_send("a/order", 0, "t0", 10 * S, 10 * S + 5_000_000), _recv("a/order", 0, 10 * S + 9_000_000, "1:0"),
        *_send("a/order", 1, "t1", 11 * S, 11 * S + 5_000_000),  # acked, never reached b
        *_send("a/order", 2, "t2", 12 * S, 12 * S + 5_000_000), _recv("a/order", 2, 20 * S, "1:2"),  # replication slow
        *_send("a/order", 3, "t3", 13 * S, 19 * S), _recv("a/order", 3, 19 * S + 1_000_000, "1:3"),  # publish slow
        *_send("a/order", 4, "t4", 14 * S),  # never acked
        *_send("a/order", 5, "t5", 15 * S, 15 * S + 1_000_000), _recv("a/order", 5, 15 * S + 2_000_000, "1:5"),
        _recv("a/order", 5, 40 * S, "9:5"),  # stored again later: replicated twice
    ]
    _write(tmp_path, lines)
    born = {("order", f"t{i}"): (10 + i) * S for i in range(7)}  # t6 was never published at all
    facts = replication_facts(tmp_path, "b", lateness_ms=2000, event_times=born)
    assert facts.lost == {("order", "t1")}
    assert facts.late == {("order", "t2")}
    assert facts.unacked == {("order", "t3"), ("order", "t4"), ("order", "t6")}
    assert facts.duplicated == {("order", "t5")}


def test_a_late_copy_of_an_event_already_joined_is_a_replication_duplicate():
    late = Verdict(VerdictKind.LATE, "t5", "order", (7,), (100,), 15 * S, 40 * S, 38 * S)
    facts = ReplicationFacts(duplicated=frozenset({("order", "t5")}))
    (case,) = label_verdicts([late], [], facts)
    assert case.label == Label.REPLICATION_DUPLICATE
    (case,) = label_verdicts([late], [], ReplicationFacts())
    assert case.label == Label.UNEXPLAINED


def test_end_to_end_rate_and_verdict_delay():
    from geo_recon.billing.reconciler import Verdict, VerdictKind
    from geo_recon.workload.billing_facts import end_to_end

    stats = {"first_receipt_ns": 1_000_000_000, "last_receipt_ns": 11_000_000_000, "events": 3000, "cpu_s": 2.5}
    verdicts = [Verdict(VerdictKind("matched"), f"t{i}", None, (), (), 0, (i + 1) * 1_000_000, 0) for i in range(100)]
    t = end_to_end(stats, 1000, verdicts)
    assert t["span_s"] == 10.0
    assert t["transactions_per_s"] == 100.0 and t["events_per_s"] == 300.0
    assert t["cpu_share"] == 0.25
    assert t["verdict_delay_ms_p50"] == 51.0 and t["verdict_delay_ms_p99"] == 100.0
    assert end_to_end({"events": 1}, 1, verdicts) is None  # an older reconciler.json without the span


def test_lateness_counts_from_the_transactions_earliest_event(tmp_path):
    # t915 of a real strong run: the ledger event reached b 1.956 s after its own event time, in time
    # by itself, but 2.12 s after the order event of the same transaction: the reconciler had already
    # made the transaction final (L = 2 s). Publishing took the time, so the source is to blame.
    ms = 1_000_000
    lines = [*_send("a/order", 0, "t0", 10 * S, 12_159 * ms), _recv("a/order", 0, 12_156 * ms, "1:0"),
             *_send("a/ledger", 0, "t0", 10_164 * ms, 12_135 * ms), _recv("a/ledger", 0, 12_120 * ms, "2:0"),
             *_send("b/payment", 0, "t0", 10_058 * ms, 10_062 * ms), _recv("b/payment", 0, 10_062 * ms, "3:0")]
    _write(tmp_path, lines)
    born = {("order", "t0"): 10 * S, ("ledger", "t0"): 10_164 * ms, ("payment", "t0"): 10_058 * ms}
    facts = replication_facts(tmp_path, "b", lateness_ms=2000, event_times=born)
    assert facts.unacked == {("order", "t0"), ("ledger", "t0")}
    assert not facts.late and not facts.lost


def _reconciler_recv(producer, seq, t, msg_id, region="b"):
    return {**_recv(producer, seq, t, msg_id, region), "process": f"{region}/reconciler"}


def test_the_reconcilers_recorded_receipt_decides_lateness_and_its_own_delay_has_its_own_label(tmp_path):
    # t990 of a real strong run: the recording consumer in b had the payment 1.998 s after the
    # transaction's first event (in time, L = 2 s), the reconciler's own subscription 2.342 s after
    # (its recorded receipt says when): acked at once, so neither the source nor replication was
    # late: the reconciler's own subscription was.
    ms = 1_000_000
    lines = [*_send("a/order", 0, "t0", 10 * S, 10_005 * ms), _recv("a/order", 0, 10_008 * ms, "1:0"),
             *_send("b/payment", 0, "t0", 10_068 * ms, 10_073 * ms), _recv("b/payment", 0, 11_998 * ms, "3:0")]
    _write(tmp_path, lines)
    born = {("order", "t0"): 10 * S, ("payment", "t0"): 10_068 * ms}
    without = replication_facts(tmp_path, "b", lateness_ms=2000, event_times=born)
    assert not without.late and not without.unacked and not without.reconciler_late

    (tmp_path / "history" / "b-reconciler.jsonl").write_text("\n".join(json.dumps(x) for x in (
        _reconciler_recv("a/order", 0, 10_010 * ms, "1:0"), _reconciler_recv("b/payment", 0, 12_342 * ms, "3:0"))))
    facts = replication_facts(tmp_path, "b", lateness_ms=2000, event_times=born)
    assert facts.reconciler_late == {("payment", "t0")}
    assert not facts.late and not facts.unacked and not facts.lost
    late = Verdict(VerdictKind.LATE, "t0", "payment", (3,), (100,), 10_068 * ms, 12_343 * ms, 12_300 * ms)
    (case,) = label_verdicts([late], [], facts)
    assert case.label == Label.RECONCILER_LAG  # not replication_lag: replication delivered it in time


def test_a_receipt_late_for_both_consumers_is_replication_lag(tmp_path):
    ms = 1_000_000
    lines = [*_send("a/order", 0, "t0", 10 * S, 10_005 * ms), _recv("a/order", 0, 13_000 * ms, "1:0"),
             _reconciler_recv("a/order", 0, 13_100 * ms, "1:0")]
    _write(tmp_path, lines)
    facts = replication_facts(tmp_path, "b", lateness_ms=2000, event_times={("order", "t0"): 10 * S})
    assert facts.late == {("order", "t0")} and not facts.reconciler_late


def test_facts_never_read_the_reconcilers_verdicts(tmp_path):
    # A late verdict is the reconciler's output; only recorded receipts are evidence of when it arrived.
    ms = 1_000_000
    lines = [*_send("b/payment", 0, "t0", 10 * S, 10_005 * ms), _recv("b/payment", 0, 10_010 * ms, "3:0")]
    _write(tmp_path, lines)
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "verdicts.jsonl").write_text(json.dumps(
        {"kind": "late", "txn_id": "t0", "system": "payment", "event_ids": [1], "amounts": [1],
         "event_time_ns": 10 * S, "decided_ns": 19 * S, "watermark_ns": 18 * S}) + "\n")
    facts = replication_facts(tmp_path, "b", lateness_ms=2000, event_times={("payment", "t0"): 10 * S})
    assert not facts.late and not facts.reconciler_late and not facts.unacked
