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
