"""The billing workload on real Pulsar: each system publishes its events from its region, and a
streaming reconciler in one region joins them as they arrive.

Producers publish the generator's events (geo_recon.billing.events) at their event
times, one Pulsar producer per system, recorded in the history exactly like any
other send (producer ``<region>/<system>``, key = transaction id), so the checker
judges the billing topics too. The reconciler is a third worker role in the
reconciling region: it reads every system's topic under its own subscription,
paced by the read planner, records every receipt in the history like every
consumer (process ``<region>/reconciler``), writes each final verdict to
``billing/verdicts.jsonl`` (receipts and verdicts durably, before acknowledging
what it read) and its statistics at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Protocol

from geo_recon import history
from geo_recon.workload import message

class BillingWorker(Protocol):
    """What the billing roles use of the worker process that runs them (workload.worker.Worker): its
    config, history writer, counters and send bookkeeping. A protocol, so this module does not import
    the worker that calls it."""

    cfg: Any
    region: str
    run_dir: Path
    writer: Any
    counters: Any
    stopping: threading.Event
    drained_flag: Path
    errors: list[str]
    achieved_rates: dict[str, float]
    phase: str

    def on_sent(self, base: dict, seq: int, outstanding: Any) -> Callable[..., None]: ...

    def complete(self, base: dict, seq: int, kind: str, **extra: Any) -> None: ...

    def finish_sends(self, producer: Any, outstanding: Any, name: str) -> None: ...


BILLING_DIR = "billing"
SUBSCRIPTION = "geo-recon-billing"  # the reconciler's one subscription (on recv lines too)
SEEN_WINDOW = 500_000  # message ids remembered to drop broker redeliveries (bounded memory)


def reconciler_process(region: str) -> str:
    """The reconciler's process name on its history lines."""
    return f"{region}/reconciler"


def billing_spec(worker_cfg) -> Any:
    """The generator spec every process rebuilds identically from the run's config."""
    from geo_recon.billing.events import BillingSpec, ErrorKind, SystemSpec

    b = worker_cfg.workload.billing
    return BillingSpec(
        systems=tuple(SystemSpec(name, s.region, s.delay_ms, s.jitter_ms) for name, s in b.systems.items()),
        transactions=int(b.rate * worker_cfg.workload.duration_s), rate_per_s=b.rate, error_rate=b.error_rate,
        error_kinds=tuple(ErrorKind(k) for k in b.error_kinds), error_system=b.error_system,
        seed=worker_cfg.seed, start_ns=worker_cfg.start_at_ns, txn_prefix="t",
    )


def topic_index(worker_cfg, system: str) -> int:
    return list(worker_cfg.workload.billing.systems).index(system)


def start_producers(worker: BillingWorker, client) -> list[threading.Thread]:
    b = worker.cfg.workload.billing
    threads = []
    for system, spec in b.systems.items():
        if spec.region != worker.region:
            continue
        thread = threading.Thread(target=_produce, args=(worker, client, system), name=f"billing-{system}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _produce(worker: BillingWorker, client, system: str) -> None:
    from geo_recon.billing.events import encode, events_in_time_order

    w = worker.cfg.workload
    topic = worker.cfg.topics[topic_index(worker.cfg, system)]
    name = f"{worker.region}/{system}"
    try:
        producer = client.create_producer(topic, send_timeout_millis=w.send_timeout_ms, batching_enabled=w.batching,
                                          max_pending_messages=w.max_outstanding, block_if_queue_full=True)
    except Exception as exc:
        worker.errors.append(f"{name}: could not create a producer on {topic}: {exc}")
        return
    outstanding = threading.BoundedSemaphore(w.max_outstanding)
    base = {"f": "send", "region": worker.region, "process": name, "producer": name}
    end_ns = worker.cfg.start_at_ns + int(w.duration_s * 1e9)
    sent = 0
    for seq, event in enumerate(events_in_time_order(billing_spec(worker.cfg), systems=[system])):
        if worker.stopping.is_set() or time.time_ns() >= end_ns + 5_000_000_000:
            break
        wait = (event.event_time_ns - time.time_ns()) / 1e9
        if wait > 0 and worker.stopping.wait(wait):
            break
        while not outstanding.acquire(timeout=0.2):
            if worker.stopping.is_set():
                break
        else:
            sent_ns = history.now_ns()
            worker.writer.append({"type": "invoke", **base, "time": sent_ns, "seq": seq, "key": event.txn_id,
                                  "topic": topic})
            with worker.counters.lock:
                worker.counters.sent += 1
            try:
                producer.send_async(encode(event), worker.on_sent(base, seq, outstanding),
                                    properties=message.properties(name, seq, sent_ns), partition_key=event.txn_id,
                                    event_timestamp=event.event_time_ns // 1_000_000)
            except Exception as exc:
                worker.complete(base, seq, "fail", error=type(exc).__name__)
                outstanding.release()
            sent += 1
            continue
        break
    worker.achieved_rates[name] = round(sent / max(w.duration_s, 1e-9), 2)
    worker.finish_sends(producer, outstanding, name)


def reconcile(worker: BillingWorker, client) -> dict[str, Any]:
    """The reconciler role: read, join, write verdicts durably, acknowledge; until the drain ends."""
    import pulsar

    from geo_recon.billing.reconciler import ReadPlanner, Reconciler

    b = worker.cfg.workload.billing
    systems = list(b.systems)
    out_dir = worker.run_dir / BILLING_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    verdicts = history.HistoryWriter(out_dir / "verdicts.jsonl")
    engine = Reconciler(systems, lateness_ms=b.lateness_ms, idle_ms=b.idle_ms)
    planner = ReadPlanner(max_skew_ms=b.max_skew_ms)
    consumers = {
        system: client.subscribe(worker.cfg.topics[i], SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Failover,
                                 initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=1000)
        for i, system in enumerate(systems)
    }
    pending: dict[str, list] = {s: [] for s in systems}
    bad = 0
    # An idempotent consumer: after a broker failover the subscription re-delivers what was not yet
    # acknowledged, as the same message (same id). Those copies are dropped here, by message id, in a
    # bounded window; a message stored twice (a new id, e.g. re-sent by the replicator) still goes on.
    seen_ids: set[tuple[str, str]] = set()
    seen_order: deque[tuple[str, str]] = deque()
    redelivered = 0
    last_flush = time.monotonic()

    def write(out: list) -> None:
        for v in out:
            verdicts.append({"kind": str(v.kind), "txn_id": v.txn_id, "system": v.system,
                             "event_ids": list(v.event_ids), "amounts": list(v.amounts),
                             "event_time_ns": v.event_time_ns, "decided_ns": v.decided_ns,
                             "watermark_ns": v.watermark_ns})

    def flush_and_ack() -> None:
        verdicts.flush()  # verdicts and receipts on disk before what produced them is acknowledged
        worker.writer.flush()
        for system, msgs in pending.items():
            for m in msgs:
                consumers[system].acknowledge(m)
            msgs.clear()

    paused: frozenset[str] = frozenset()
    cpu_at_start = time.process_time()
    first_receipt_ns = last_receipt_ns = None
    while not worker.drained_flag.exists():
        plan = planner.plan(engine.flow_snapshot())
        if plan.paused != paused:
            paused = plan.paused
            engine.set_paused(paused, time.time_ns())
        got = 0
        for system in plan.order:
            for _ in range(200):
                try:
                    msg = consumers[system].receive(timeout_millis=5)
                except pulsar.Timeout:
                    break
                now = time.time_ns()
                if first_receipt_ns is None:
                    first_receipt_ns = now
                last_receipt_ns = now
                pending[system].append(msg)
                _record_receipt(worker, msg, now, system)
                ident = (system, str(msg.message_id()))
                if ident in seen_ids:
                    redelivered += 1
                    continue
                seen_ids.add(ident)
                seen_order.append(ident)
                if len(seen_order) > SEEN_WINDOW:
                    seen_ids.discard(seen_order.popleft())
                try:
                    engine.offer_many([engine.record_from_payload(msg.data(), now)])
                except ValueError:
                    bad += 1
                got += 1
        engine.tick(time.time_ns())
        write(engine.drain())
        if time.monotonic() - last_flush > 0.2 or sum(map(len, pending.values())) > 2000:
            flush_and_ack()
            last_flush = time.monotonic()
        worker.phase = "reconciling"
        if not got:
            time.sleep(0.02)
    engine.finish(time.time_ns())
    write(engine.drain())
    flush_and_ack()
    verdicts.close()
    for consumer in consumers.values():
        try:
            consumer.close()
        except Exception:
            pass
    stats = engine.stats()
    summary = {"events": stats.events, "redeliveries": stats.redeliveries, "late": stats.late,
               "peak_open": stats.peak_open, "peak_tombstones": stats.peak_tombstones, "verdicts": stats.verdicts,
               "undecodable": bad, "redeliveries_dropped": redelivered, "systems": systems,
               "region": worker.region,
               "lateness_ms": b.lateness_ms, "idle_ms": b.idle_ms,
               # for the end-to-end rate: the span it received events in, and the CPU it spent
               "first_receipt_ns": first_receipt_ns, "last_receipt_ns": last_receipt_ns,
               "cpu_s": round(time.process_time() - cpu_at_start, 3)}
    tmp = out_dir / "reconciler.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out_dir / "reconciler.json")
    return summary


def _record_receipt(worker: BillingWorker, msg, now: int, system: str) -> None:
    """A ``recv`` line for the reconciler's receipt, as every consumer writes one (redeliveries too)."""

    ident = message.identify(msg.properties())
    if ident is None:
        return
    worker.writer.append({"type": "recv", "time": now, "region": worker.region,
                          "process": reconciler_process(worker.region), "producer": ident[0], "seq": ident[1],
                          "msg_id": message.format_msg_id(msg.message_id()), "redelivery": msg.redelivery_count(),
                          "topic": worker.cfg.topics[topic_index(worker.cfg, system)],
                          "subscription": SUBSCRIPTION})


def read_verdicts(run_dir: Path) -> list:
    """The verdicts a run's reconciler wrote, as the engine's Verdict tuples."""
    from geo_recon.billing.reconciler import Verdict, VerdictKind

    path = run_dir / BILLING_DIR / "verdicts.jsonl"
    out = []
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            out.append(Verdict(VerdictKind(d["kind"]), d["txn_id"], d["system"], tuple(d["event_ids"]),
                               tuple(d["amounts"]), d["event_time_ns"], d["decided_ns"], d["watermark_ns"]))
    return out
