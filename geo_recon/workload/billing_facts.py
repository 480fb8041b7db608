"""After a billing run: what replication did to each billing message, and why each exception happened.

The facts come from the history alone (the same lines the checker reads; never
from the reconciler's verdicts, which they judge), per
``(system, txn_id)`` and for the reconciling region R:

- ``lost``: acked in its origin, never received in R (not even by the final reader);
- ``late`` or ``unacked`` when it reached R (by the reconciler's own recorded
  receipt, ``R/reconciler``; else the recording consumer's in R) more than
  ``lateness_ms`` after the earliest event time of its transaction (the
  reconciler makes a transaction final no sooner than that, so an event
  arriving later may miss it; an event in time by its own event time can still
  be too late for its transaction): ``late`` when replicating took longer than
  publishing did, ``unacked`` (the source could not publish in time, e.g. a
  stretched cluster stalling writes) when publishing took longer;
- ``reconciler_late`` when the recording consumer had it in time and only the
  reconciler's own subscription delivered it late;
- ``unacked`` too when it was never published or never acknowledged;
- ``duplicated`` when R stored it more than once (distinct message ids).

``billing_report`` labels every reconciler verdict with them
(geo_recon.billing.classify) and writes ``billing/report.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from geo_recon import history
from geo_recon.workload import billing_load
from geo_recon.workload.spec import WorkloadSpec

REPORT = "report.json"


def replication_facts(run_dir: Path, region: str, lateness_ms: float,
                      event_times: dict[tuple[str, str], int]):
    """``event_times``: (system, txn_id) -> when the generator says the system recorded it (the
    earliest, for a duplicate charge). A key never published at all, or acked more than
    ``lateness_ms`` after its event time, is ``unacked``: the source could not publish in time.
    The reconciler reads its own subscription, which can deliver later than the recording
    consumer's: its recorded receipts decide lateness where it has them."""
    from geo_recon.billing.classify import ReplicationFacts

    key_of: dict[tuple[str, int], tuple[str, str]] = {}
    acked: dict[tuple[str, int], int] = {}
    first_recv: dict[tuple[str, int], int] = {}
    reconciler_recv: dict[tuple[str, int], int] = {}
    reconciler = billing_load.reconciler_process(region)
    seen: set[tuple[str, int]] = set()
    stored_as: dict[tuple[str, int], set[str]] = {}
    for event in history.iter_events(run_dir):
        kind = event.get("type")
        if kind == "invoke" and "/" in event.get("producer", ""):
            key_of[(event["producer"], event["seq"])] = (event["producer"].split("/", 1)[1], event.get("key", ""))
        elif kind == "ok":
            acked[(event["producer"], event["seq"])] = event["time"]
        elif kind == "recv" and event.get("region") == region:
            ident = (event["producer"], event["seq"])
            seen.add(ident)
            stored_as.setdefault(ident, set()).add(event.get("msg_id", ""))
            if event.get("process") == reconciler:
                reconciler_recv[ident] = min(reconciler_recv.get(ident, event["time"]), event["time"])
            elif event.get("via") != "reader":
                first_recv[ident] = min(first_recv.get(ident, event["time"]), event["time"])
    bound = lateness_ms * 1e6
    # The reconciler can make a transaction final once every system is L past its first event
    # (see geo_recon.billing.reconciler, rules 3 and 4), so lateness counts from the transaction's
    # earliest event time, not from each event's own.
    txn_first: dict[str, int] = {}
    for (_system, txn), t in event_times.items():
        if t < txn_first.get(txn, t + 1):
            txn_first[txn] = t
    lost, late, unacked, reconciler_late = set(), set(), set(), set()
    published = set(key_of.values())
    unacked.update(key for key in event_times if key not in published)
    for ident, key in key_of.items():
        ok = acked.get(ident)
        born = event_times.get(key, ok)
        first = txn_first.get(key[1], born)
        recorded = first_recv.get(ident)
        arrived = reconciler_recv.get(ident, recorded)
        if ok is None:
            unacked.add(key)
        elif ident not in seen:
            lost.add(key)
        elif arrived is not None and arrived - first > bound:
            if recorded is not None and recorded - first <= bound and ok - first <= bound:
                reconciler_late.add(key)  # here in time; only the reconciler's own subscription was late
            else:  # late end to end: blame the stage that took longer, publishing or replicating
                (unacked if ok - born >= arrived - ok else late).add(key)
        elif ok - txn_first.get(key[1], born) > bound:
            unacked.add(key)
    duplicated = {key_of[ident] for ident, ids in stored_as.items() if len(ids) > 1 and ident in key_of}
    return ReplicationFacts(lost=frozenset(lost), late=frozenset(late), unacked=frozenset(unacked),
                            duplicated=frozenset(duplicated), reconciler_late=frozenset(reconciler_late))


def billing_report(run_dir: Path) -> dict[str, Any]:
    """Label the reconciler's verdicts and write billing/report.json; returns the report."""
    from geo_recon.billing.classify import classify, explain, explain_missed
    from geo_recon.billing.events import injected_errors, transactions

    run = history.read_run_json(run_dir)
    workload = WorkloadSpec.model_validate(run["workload"])
    b = workload.billing
    if b is None:
        raise ValueError(f"{run_dir}: not a billing run")
    cfg = SimpleNamespace(workload=workload, seed=run.get("seed", 0), start_at_ns=run["start_at_ns"])
    spec = billing_load.billing_spec(cfg)
    verdicts = billing_load.read_verdicts(run_dir)
    event_times: dict[tuple[str, str], int] = {}
    for txn in transactions(spec):
        for event in txn.events:
            event_times[event.key] = min(event_times.get(event.key, event.event_time_ns), event.event_time_ns)
    facts = replication_facts(run_dir, b.reconcile_in, b.lateness_ms, event_times)
    summary = classify(verdicts, injected_errors(spec), facts)
    replication = ("replication_loss", "replication_lag", "replication_duplicate")
    false_exceptions = sum(summary.exceptions.get(label, 0) + summary.late_events.get(label, 0) for label in replication)
    unavailable = summary.exceptions.get("source_unavailable", 0) + summary.late_events.get("source_unavailable", 0)
    reconciler_lag = summary.exceptions.get("reconciler_lag", 0) + summary.late_events.get("reconciler_lag", 0)
    stats_path = run_dir / billing_load.BILLING_DIR / "reconciler.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
    report = {
        "reconciling_region": b.reconcile_in, "lateness_ms": b.lateness_ms,
        "transactions": summary.transactions, "matched": summary.matched,
        "injected": summary.injected, "found": summary.found,
        "found_more_than_once": len(summary.found_more_than_once),
        "missed": len(summary.missed), "missed_unexplained": sum(1 for m in summary.missed if not m.masked_by),
        "exceptions": summary.exceptions, "exceptions_by_kind": summary.exceptions_by_kind,
        "late_events": summary.late_events, "false_exceptions": false_exceptions,
        "source_unavailable": unavailable, "reconciler_lag": reconciler_lag,
        "unexplained": summary.unexplained, "valid": summary.valid,
        "facts": {"lost": len(facts.lost), "late": len(facts.late), "unacked": len(facts.unacked),
                  "duplicated": len(facts.duplicated), "reconciler_late": len(facts.reconciler_late)},
        "reconciler": stats,
        "throughput": end_to_end(stats, summary.transactions, verdicts),
        "cases": {label: [explain(c) for c in cases] for label, cases in summary.cases.items()},
        "missed_cases": [explain_missed(m) for m in summary.missed[:5]],
    }
    path = run_dir / billing_load.BILLING_DIR / REPORT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, path)
    return report


def end_to_end(stats: dict[str, Any] | None, transactions: int, verdicts: list) -> dict[str, Any] | None:
    """The reconciler on the lab: transactions and events per second over the span it received
    events in, the CPU it spent, and how long after its event time a verdict became final."""
    if not stats or stats.get("first_receipt_ns") is None or stats.get("last_receipt_ns") is None:
        return None
    span_s = max((stats["last_receipt_ns"] - stats["first_receipt_ns"]) / 1e9, 1e-9)
    delays = sorted((v.decided_ns - v.event_time_ns) / 1e6 for v in verdicts
                    if v.decided_ns is not None and v.event_time_ns is not None)

    def pct(q: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 1) if delays else None

    cpu_s = stats.get("cpu_s")
    return {"span_s": round(span_s, 3), "transactions_per_s": round(transactions / span_s, 1),
            "events_per_s": round(stats.get("events", 0) / span_s, 1), "cpu_s": cpu_s,
            "cpu_share": None if cpu_s is None else round(cpu_s / span_s, 3),
            "verdict_delay_ms_p50": pct(0.50), "verdict_delay_ms_p99": pct(0.99)}
