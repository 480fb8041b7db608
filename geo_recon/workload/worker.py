"""One region's load: producers and consumers that record every send, ack and receipt.

A worker is one process per region (inside the region's network namespace on
the local lab). It writes exactly one history file, ``history/<region>.arrows``
(Arrow record batches) or ``.jsonl`` (``workload.history_format``), through the
durable writer, and a progress file the controller reads.

Outcomes are recorded as Jepsen does: ``invoke`` before a send, then ``ok``
(with the message id), ``fail`` only when the client refused the message before
it left the process, and ``info`` when the outcome is unknown (timeout,
disconnect, crash). A worker killed mid-run leaves invokes with no completion,
which the checker reads as unknown.

Receipts are acknowledged only after their history lines are on disk (flush and
fsync), so an acknowledged message is never missing from the history.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from geo_recon import history
from geo_recon.errors import ConfigError
from geo_recon.history_sends import SendLog
from geo_recon.workload import billing_load, failover, message, schedule, threadstate
from geo_recon.workload.spec import WorkloadSpec

# Results that prove the message never left this process: the client refused it.
DEFINITE_FAILURES = {"ProducerQueueIsFull", "InvalidMessage", "MessageTooBig", "InvalidTopicName",
                     "ProducerBlockedQuotaExceededError", "ProducerBlockedQuotaExceededException"}


class _NoWindow:
    """The window of a callback whose caller releases its own."""

    def release(self) -> None:
        pass


_NO_WINDOW: Any = _NoWindow()


class WorkerConfig(BaseModel):
    """Everything a worker needs, written by the controller as JSON (never with a token in it)."""

    model_config = ConfigDict(extra="forbid")
    run_id: str
    region: str
    regions: list[str]
    service_url: str
    service_urls: dict[str, str] = {}  # every region's service URL, in topology order (client failover)
    admin_url: str
    tls_ca: str | None = None
    topics: list[str]
    workload: WorkloadSpec
    seed: int = 0
    start_at_ns: int
    run_dir: str
    clock_ref: str | None = None  # controller URL answering its clock, for the offset probe
    coordinated_drain: bool = True  # wait for the controller's "drained" signal (local runs)
    part: int = 0  # this producer process's share: producers i with i % parts == part
    parts: int = 1  # producer processes in the region (workload.processes)


def stem(region: str, role: str, part: int = 0) -> str:
    """The name a worker process's progress, summary and config files start with."""
    return region if role == "all" else f"{region}.{role}{part or ''}"


def history_file(region: str, role: str, part: int = 0, suffix: str = history.HISTORY_SUFFIX) -> str:
    """The history file a worker process writes: one per process, so no two processes share one."""
    if role in ("consume", "reconcile"):
        return f"{region}-recv{suffix}" if role == "consume" else f"{region}-reconciler{suffix}"
    return f"{region}{suffix}" if not part else f"{region}.{part}{suffix}"


class SendWindow:
    """At most ``size`` sends awaiting their callback, as a C-level queue of tokens.

    threading's semaphores are Python code over a Condition: acquiring and releasing
    one cost a sender about 6 CPU-us a message (measured on the lab), a third of
    what the client itself costs."""

    def __init__(self, size: int):
        self.size = size
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(size):
            self._tokens.put(None)
        self.release = partial(self._tokens.put, None)
        self.take = self._tokens.get  # take(True, timeout): a token, or queue.Empty

    def acquire(self, timeout: float) -> bool:
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def acquire_unless(self, stopping: threading.Event, every_s: float = 0.2) -> bool:
        """Wait for a token until ``stopping`` is set: True with a token, False when stopping."""
        while not self.acquire(every_s):
            if stopping.is_set():
                return False
        return True


@dataclass
class _Counters:
    """Live counts for the progress file; updated from client threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    acked: int = 0
    logs: dict[str, SendLog] = field(default_factory=dict)  # each producer's send log: its invokes and oks counted
    failed: int = 0
    unknown: int = 0
    stuck: int = 0  # sends whose callback never came before their producer was closed
    received: int = 0
    acked_by_producer: dict[str, int] = field(default_factory=dict)
    seen: dict[str, bytearray] = field(default_factory=dict)  # producer -> bitmap of seqs received here
    distinct_by_producer: dict[str, int] = field(default_factory=dict)
    recent_lag_ms: deque = field(default_factory=lambda: deque(maxlen=2000))

    def saw(self, producer: str, seq: int, lag_ms: float | None) -> None:
        with self.lock:
            self.received += 1
            bits = self.seen.setdefault(producer, bytearray())
            byte, bit = divmod(seq, 8)
            if byte >= len(bits):
                bits.extend(b"\0" * (byte + 1 - len(bits) + 1024))
            if not bits[byte] & (1 << bit):
                bits[byte] |= 1 << bit
                self.distinct_by_producer[producer] = self.distinct_by_producer.get(producer, 0) + 1
            if lag_ms is not None:
                self.recent_lag_ms.append(lag_ms)

    def add_log(self, producer: str, log: SendLog) -> None:
        with self.lock:
            self.logs[producer] = log

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            lags = sorted(self.recent_lag_ms)
            sent, acked, acked_by_producer = self.sent, self.acked, dict(self.acked_by_producer)
            for producer, log in self.logs.items():
                invokes, oks = log.counts()
                sent, acked = sent + invokes, acked + oks
                if oks:
                    acked_by_producer[producer] = acked_by_producer.get(producer, 0) + oks
            return {
                "sent": sent, "acked": acked,
                "failed": self.failed, "unknown": self.unknown,
                "stuck": self.stuck, "received": self.received, "acked_by_producer": acked_by_producer,
                "distinct_by_producer": dict(self.distinct_by_producer),
                "lag_ms_p50": lags[len(lags) // 2] if lags else None,
                "lag_ms_max": lags[-1] if lags else None,
            }


ROLES = ("all", "produce", "consume", "reconcile")


class Worker:
    """``role`` "all" runs producers and consumers in one process; the controller runs them as
    two processes per region ("produce", "consume"), which doubles the Python the region gets:
    the client calls back into Python for every send and every receipt."""

    def __init__(self, config: WorkerConfig, token: str | None = None, role: str = "all"):
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {ROLES}")
        self.cfg = config
        self.token = token
        self.role = role
        self.run_dir = Path(config.run_dir)
        self.region = config.region
        self.stopping = threading.Event()  # stop producing (signal or end of schedule)
        self.counters = _Counters()
        self.phase = "starting"
        # the reporter thread and run()'s last write share one temporary file name
        self._progress_lock = threading.Lock()
        self.clock_offset_ns = 0
        self.clock_rtt_ns: int | None = None
        self.achieved_rates: dict[str, float] = {}
        self.errors: list[str] = []
        self._last_receipt_at = time.monotonic()
        self.watcher: failover.Watcher | None = None  # follows the client's cluster when failover is on
        self.result_ok: Any = None  # pulsar.Result.Ok's value, once the client is loaded
        self.kept_threads, self.keep_thread = threadstate.keeper()  # the client's threads calling back
        self.subscription = f"geo-recon-{self.region}"  # the same name on every cluster the consumers reach
        workers_dir = self.run_dir / "workers"
        workers_dir.mkdir(parents=True, exist_ok=True)
        name = stem(self.region, role, config.part)
        self.progress_path = workers_dir / f"{name}.progress.json"
        self.summary_path = workers_dir / f"{name}.summary.json"
        self.sibling_progress = [workers_dir / f"{stem(self.region, 'produce', k)}.progress.json"
                                 for k in range(config.parts)]
        self.drained_flag = workers_dir / "drained"
        history_name = history_file(self.region, role, config.part, suffix="")
        # The reconciler records its receipts here too; its verdicts go to billing/verdicts.jsonl.
        self.writer = history.open_writer(self.run_dir / "history", history_name, config.workload.history_format)

    # ------------------------------------------------------------ lifecycle

    def run(self) -> dict[str, Any]:
        import pulsar

        self.result_ok = pulsar.Result.Ok.value
        self._install_signal_handlers()
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        mode = self.cfg.workload.failover.mode if self.role != "reconcile" else "none"
        urls = self.cfg.service_urls or {self.region: self.cfg.service_url}
        if mode != "none" and len(urls) < 2:
            raise ConfigError(f"workload.failover.mode {mode}: the worker config names no other region's "
                              "service URL (service_urls)")
        auth = pulsar.AuthenticationToken(self.token) if self.token else None
        service = failover.service_for(pulsar, mode, self.region, urls, self.cfg.workload.failover,
                                       auth=auth, tls_ca=self.cfg.tls_ca)
        log_path = log_dir / f"worker-{stem(self.region, self.role, self.cfg.part)}-client.log"
        switch_log = None
        if mode == "auto":  # the client's INFO line that marks the switch, caught as it is written
            logger: Any = _client_logger(log_path)
            switch_log = failover.SwitchLog()
            logger.addHandler(switch_log)
            logger.setLevel(logging.INFO)
        else:
            # The client's own file logger. Given a Python logger, the C++ client hands it every line,
            # DEBUG included (two a message sent), each under the GIL, whatever the logger's level:
            # measured 4,088 calls for 2,000 sends at WARNING.
            logger = pulsar.FileLogger(pulsar.LoggerLevel.Warn, str(log_path))
        plain = mode == "none"  # with a failover provider, credentials go on each region's ServiceInfo
        client = pulsar.Client(
            service,
            authentication=auth if plain else None,
            tls_trust_certs_file_path=self.cfg.tls_ca if plain else None,
            operation_timeout_seconds=15,
            io_threads=1 if self.role == "produce" else 2, message_listener_threads=1,
            logger=logger,
        )
        if mode != "none":
            self.watcher = failover.Watcher(
                client=client, provider=service, mode=mode, region=self.region, urls=urls,
                clients=self._client_roles(), writer=self.writer,
                control=failover.switch_file(self.run_dir / "workers", self.region), log=switch_log,
                errors=self.errors)
            self.watcher.start()
        progress = threading.Thread(target=self._report_progress, name="progress", daemon=True)
        progress.start()
        try:
            self.clock_offset_ns, self.clock_rtt_ns = probe_clock(self.cfg.clock_ref)
            if self.role == "reconcile":
                self.reconciler_summary = billing_load.reconcile(self, client)
                self.phase = "done"
                return self._finish_summary()
            consumers = self._start_consumers(client) if self.role != "produce" else []
            # bench load: subscribed now (nothing is missed), receiving once the producers are done
            deferred = self.role == "consume" and self.cfg.workload.consume_after_producers
            if not deferred:
                for consumer in consumers:
                    consumer.start()
            self.phase = "producing"
            if self.role != "consume":
                with _few_collections():
                    for thread in self._start_producers(client):
                        thread.join()
            else:
                self._wait_for_producers()
            if deferred:
                for consumer in consumers:
                    consumer.start()
            if self.role != "produce":
                self.phase = "draining"
                self._drain()
                for consumer in consumers:
                    consumer.stop.set()
                for consumer in consumers:
                    consumer.join(timeout=30)
                if self.cfg.workload.reader_drain:
                    self.phase = "reading"
                    self._read_everything(client)
            self.phase = "done"
        finally:
            if self.watcher is not None:
                self.watcher.stop.set()
                self.watcher.join(timeout=5)
            if self.writer is not None:
                self.writer.close()
            client.close()
            self._write_progress()
        return self._finish_summary()

    def _finish_summary(self) -> dict[str, Any]:
        summary = {
            "region": self.region, "run_id": self.cfg.run_id, "role": self.role, **self.counters.snapshot(),
            "clock_offset_ns": self.clock_offset_ns, "clock_rtt_ns": self.clock_rtt_ns,
            "achieved_rates": self.achieved_rates, "errors": self.errors,
            "processes": sorted(self._process_names()),
            "failovers": self.watcher.switches if self.watcher is not None else 0,
        }
        _atomic_write(self.summary_path, summary)
        return summary

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum, frame):  # noqa: ARG001
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _process_names(self) -> set[str]:
        w = self.cfg.workload
        names = set()
        if self.role == "reconcile":
            return {billing_load.reconciler_process(self.region)}
        if self.role != "consume":
            if w.billing is not None:
                names |= {f"{self.region}/{s}" for s, spec in w.billing.systems.items() if spec.region == self.region}
            else:
                names |= {f"{self.region}/p{i}" for i in self._my_producers()}
        if self.role != "produce":
            names |= {f"{self.region}/c{t}.{c}" for t in range(w.topics) for c in range(w.consumers)}
            names.add(f"{self.region}/reader")
        return names

    def _client_roles(self) -> dict[str, str]:
        """This process's producers and consumers (the clients a failover line is written for)."""
        w = self.cfg.workload
        roles = {}
        if self.role in ("all", "produce"):
            roles |= {f"{self.region}/p{i}": "producer" for i in self._my_producers()}
        if self.role in ("all", "consume"):
            roles |= {f"{self.region}/c{t}.{c}": "consumer" for t in range(w.topics) for c in range(w.consumers)}
        return roles

    def cluster(self) -> str | None:
        """The cluster this process's client uses now, when it is not the home region's (else None)."""
        if self.watcher is None or self.watcher.cluster == self.region:
            return None
        return self.watcher.cluster

    def _wait_for_producers(self) -> None:
        """Consume role: keep consuming until this region's producers are done (their progress
        file says so), or stopped, or well past the end of the schedule if they died."""
        w = self.cfg.workload
        latest = self.cfg.start_at_ns / 1e9 + w.duration_s + w.send_timeout_ms / 1000 + 60
        while time.time() < latest and not self.stopping.is_set():
            if all(_phase(path) == "done" for path in self.sibling_progress):
                return
            time.sleep(0.2)

    def _my_producers(self) -> list[int]:
        """The producer indices this process runs (all of them unless the region has several processes)."""
        return [i for i in range(self.cfg.workload.producers) if i % self.cfg.parts == self.cfg.part]

    # ------------------------------------------------------------ producing

    def _start_producers(self, client) -> list[threading.Thread]:
        w = self.cfg.workload
        if w.billing is not None:
            return billing_load.start_producers(self, client)
        threads = []
        rates = schedule.producer_rates(w.rate, w.producers)
        for index in self._my_producers():
            rate = rates[index]
            topic = self.cfg.topics[schedule.topic_of(index, w.topics)]
            thread = threading.Thread(target=self._produce, args=(client, index, topic, rate),
                                      name=f"producer-{index}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _produce(self, client, index: int, topic: str, rate: float) -> None:
        w = self.cfg.workload
        name = f"{self.region}/p{index}"
        try:
            producer = client.create_producer(
                topic,
                producer_name=f"{self.cfg.run_id}-{self.region}-p{index}" if w.producer_dedup else None,
                send_timeout_millis=w.send_timeout_ms,
                batching_enabled=w.batching,
                batching_max_publish_delay_ms=max(1, round(w.batch_delay_ms)),
                max_pending_messages=w.max_outstanding,
                block_if_queue_full=True,
            )
        except Exception as exc:  # the region is unreachable at start: nothing was invoked
            self.errors.append(f"{name}: could not create a producer on {topic}: {exc}")
            return
        outstanding = SendWindow(w.max_outstanding)
        payload = message.payload(w.message_size)
        total = schedule.count_in(rate, w.duration_s)
        start = self.cfg.start_at_ns
        base = {"f": "send", "region": self.region, "process": name, "producer": name}
        keys = schedule.key_stream(self.cfg.seed, name, w.keys)
        end_ns = start + int(w.duration_s * 1e9)
        log = self.writer.send_log(region=self.region, process=name, producer=name, topic=topic,
                                   msg_ids=message.msg_id_texts)
        self.counters.add_log(name, log)
        # The hot path, once per message: names bound once, the invoke appended as plain values to the
        # producer's send log (the writer formats a flush's worth at once), one C-level callback object
        # per send (see acknowledger). Every CPU-us here is one the client's threads wait for: one GIL.
        stopping, is_set, time_ns, check = self.stopping, self.stopping.is_set, time.time_ns, self.writer.check
        take_token, send = outstanding.take, message.sender(producer, payload, name, dedup=w.producer_dedup)
        invoke_key, invoke_seq, invoke_time = log.invoke_key, log.invoke_seq, log.invoke_time
        done = self.acknowledger(log, base, outstanding.release)
        for seq in range(total):
            now = time_ns()
            if now >= end_ns or is_set():
                break
            wait = start + int(seq * 1e9 / rate) - now  # schedule.due_ns, inline
            if wait > 0 and stopping.wait(wait / 1e9):
                break
            if not seq & 1023:
                check()  # a failed background write stops the producer, as an append would
            try:
                take_token(True, 0.2)
            except queue.Empty:
                if not outstanding.acquire_unless(stopping):
                    break
            now = time_ns()  # the invoke's time: after any wait for the window, just before the send
            key = next(keys)
            invoke_key(key)
            invoke_seq(seq)
            invoke_time(now)  # last: the invoke is whole (history_sends)
            try:
                send(seq, now, key, partial(done, seq))
            except Exception as exc:  # refused synchronously: it never left this process
                self.complete(base, seq, "fail", error=type(exc).__name__)
                outstanding.release()
        sent = log.counts()[0]
        elapsed = max((time.time_ns() - start) / 1e9, 1e-9)
        self.achieved_rates[name] = round(sent / min(elapsed, w.duration_s) if sent else 0.0, 2)
        self.finish_sends(producer, outstanding, name)

    def finish_sends(self, producer, outstanding: SendWindow, name: str) -> None:
        """Flush, wait for every callback (each send ends ok, fail or info; timeouts fire on their
        own), then close the producer. Sends still without a callback are counted as stuck and a
        failed flush or close is reported: the verdict judges both."""
        w = self.cfg.workload
        try:
            producer.flush()
        except Exception as exc:  # the sends still get their callbacks (or are counted stuck below)
            if type(exc).__name__ != "Timeout":  # a send that timed out is already recorded as info
                self.errors.append(f"{name}: flush failed: {type(exc).__name__}: {exc}")
        deadline = time.monotonic() + w.send_timeout_ms / 1000 + 30
        acquired = 0
        while acquired < w.max_outstanding and time.monotonic() < deadline:
            if outstanding.acquire(timeout=0.5):
                acquired += 1
        stuck = w.max_outstanding - acquired
        if stuck:
            with self.counters.lock:
                self.counters.stuck += stuck
        try:
            producer.close()
        except Exception as exc:
            self.errors.append(f"{name}: close failed: {type(exc).__name__}: {exc}")

    def on_sent(self, base: dict, seq: int, outstanding: SendWindow):
        kept, keep = self.kept_threads, self.keep_thread

        def callback(result, msg_id) -> None:
            try:
                if threading.get_ident() not in kept:  # the billing producers' callbacks too (threadstate)
                    keep()
                name = getattr(result, "name", str(result))
                if name == "Ok":
                    self.complete(base, seq, "ok", msg_id=message.format_msg_id(msg_id))
                elif name in DEFINITE_FAILURES:
                    self.complete(base, seq, "fail", error=name)
                else:
                    self.complete(base, seq, "info", error=name)
            finally:
                outstanding.release()
        return callback

    def acknowledger(self, log: SendLog, base: dict, release):
        """A producer's send callback, ``callback(seq, result, msg_id)`` (one ``partial`` of it a send): the
        common case, an acknowledgement with no failover, recorded with the least Python: three appends to
        the producer's send log (its message id read at flush, in bulk; its count is the log's); anything
        else as ``on_sent``. ``result.value``: comparing the client's enums costs 0.7 CPU-us, their values 0.15.
        The first callback on each of the client's threads keeps that thread's Python state (threadstate)."""
        ok, time_ns, ident = self.result_ok, time.time_ns, threading.get_ident
        ok_msg_id, ok_seq, ok_time = log.ok_msg_id, log.ok_seq, log.ok_time
        kept, keep = self.kept_threads, self.keep_thread

        def other(seq: int, result, msg_id) -> None:
            try:
                self.on_sent(base, seq, _NO_WINDOW)(result, msg_id)  # its callback keeps the thread's state
            finally:
                release()

        if self.watcher is not None:  # failover: an ok names the cluster that took it
            return other

        def acked(seq: int, result, msg_id) -> None:
            try:
                if ident() not in kept:
                    keep()
                if result.value == ok:
                    ok_msg_id(msg_id)
                    ok_seq(seq)
                    ok_time(time_ns())  # last: the ok is whole (history_sends)
                else:
                    self.on_sent(base, seq, _NO_WINDOW)(result, msg_id)
            finally:
                release()

        return acked

    def complete(self, base: dict, seq: int, kind: str, **extra: Any) -> None:
        if kind == "ok" and (cluster := self.cluster()) is not None:
            extra["cluster"] = cluster  # acknowledged by the cluster the client failed over to
        self.writer.append({"type": kind, **base, "time": history.now_ns(), "seq": seq, **extra})
        with self.counters.lock:
            if kind == "ok":
                self.counters.acked += 1
                producer = base["producer"]
                self.counters.acked_by_producer[producer] = self.counters.acked_by_producer.get(producer, 0) + 1
            elif kind == "fail":
                self.counters.failed += 1
            else:
                self.counters.unknown += 1

    # ------------------------------------------------------------ consuming

    def _start_consumers(self, client) -> list["_ConsumerLoop"]:
        """Subscribe every consumer of this region; the caller starts their loops."""
        import pulsar

        w = self.cfg.workload
        kinds = {"exclusive": pulsar.ConsumerType.Exclusive, "failover": pulsar.ConsumerType.Failover,
                 "key_shared": pulsar.ConsumerType.KeyShared, "shared": pulsar.ConsumerType.Shared}
        loops = []
        for t, topic in enumerate(self.cfg.topics):
            for c in range(w.consumers):
                consumer = client.subscribe(
                    topic, self.subscription, consumer_type=kinds[w.subscription_type],
                    initial_position=pulsar.InitialPosition.Earliest, consumer_name=f"{self.region}-c{t}.{c}",
                    receiver_queue_size=1000, replicate_subscription_state_enabled=w.replicated_subscription,
                )
                loops.append(_ConsumerLoop(self, consumer, topic, f"{self.region}/c{t}.{c}"))
        return loops

    def _drain(self) -> None:
        """Keep consuming until every region caught up (the controller says so), or a deadline."""
        w = self.cfg.workload
        deadline = time.monotonic() + w.drain_timeout_s
        while time.monotonic() < deadline:
            if self.cfg.coordinated_drain:
                if self.drained_flag.exists():
                    return
            elif time.monotonic() - self._last_receipt() >= w.drain_idle_s:
                return
            time.sleep(0.1)

    def _last_receipt(self) -> float:
        return self._last_receipt_at

    def _read_everything(self, client) -> None:
        """Read each topic from its first message: tells "never stored here" from "not consumed"."""
        import pulsar

        process = f"{self.region}/reader"
        for topic in self.cfg.topics:
            try:  # a region lost for good has no cluster left to read from: an error in words, not a crash
                partitions = client.get_topic_partitions(topic)
            except Exception as exc:
                self.errors.append(f"reader on {topic}: {type(exc).__name__}: {exc}")
                continue
            for part in partitions:
                try:
                    reader = client.create_reader(part, pulsar.MessageId.earliest, receiver_queue_size=1000)
                except Exception as exc:
                    self.errors.append(f"reader on {part}: {type(exc).__name__}: {exc}")
                    continue
                read = 0
                try:
                    while reader.has_message_available():
                        msg = reader.read_next(timeout_millis=10000)
                        read += 1
                        ident = message.identify(msg.properties())
                        if ident is None:
                            continue
                        self.writer.append({
                            "type": "recv", "time": history.now_ns(), "region": self.region, "process": process,
                            "producer": ident[0], "seq": ident[1], "msg_id": message.format_msg_id(msg.message_id()),
                            "redelivery": 0, "topic": topic, "via": "reader",
                            **({"cluster": cluster} if (cluster := self.cluster()) else {}),
                        })
                        self.counters.saw(ident[0], ident[1], None)
                except Exception as exc:  # which call failed: a non-partitioned topic is its only partition
                    self.errors.append(f"reader on {part}: {type(exc).__name__} after {read} message(s) read: {exc}")
                finally:
                    reader.close()
        self.writer.flush()

    # ------------------------------------------------------------ progress

    def _report_progress(self) -> None:
        while True:
            self._write_progress()
            time.sleep(0.5)

    def _write_progress(self) -> None:
        with self._progress_lock:
            _atomic_write(self.progress_path, {"region": self.region, "phase": self.phase,
                                               "time_ns": time.time_ns(), **self.counters.snapshot()})


class _ConsumerLoop(threading.Thread):
    """Receive, record, make the record durable, then acknowledge (in small batches)."""

    BATCH = 500
    FLUSH_EVERY_S = 0.1

    def __init__(self, worker: Worker, consumer, topic: str, process: str):
        super().__init__(name=f"consumer-{process}", daemon=True)
        self.worker, self.consumer, self.topic, self.process = worker, consumer, topic, process
        self.stop = threading.Event()
        self.sub_type = worker.cfg.workload.subscription_type

    def run(self) -> None:
        import pulsar

        pending = []
        last_flush = time.monotonic()
        w = self.worker
        while True:
            try:
                msg = self.consumer.receive(timeout_millis=100)
            except pulsar.Timeout:
                msg = None
            except Exception as exc:  # closed underneath us
                w.errors.append(f"{self.process}: {type(exc).__name__}: {exc}")
                break
            if msg is not None:
                now = history.now_ns()
                w._last_receipt_at = time.monotonic()
                ident = message.identify_sent(msg.properties())
                if ident is not None:
                    w.writer.append({
                        "type": "recv", "time": now, "region": w.region, "process": self.process,
                        "producer": ident[0], "seq": ident[1], "msg_id": message.format_msg_id(msg.message_id()),
                        "redelivery": msg.redelivery_count(), "topic": self.topic,
                        "subscription_type": self.sub_type, "subscription": w.subscription,
                        **({"cluster": cluster} if (cluster := w.cluster()) else {}),
                    })
                    sent = ident[2]
                    w.counters.saw(ident[0], ident[1], (now - sent) / 1e6 if sent else None)
                pending.append(msg)
            if pending and (len(pending) >= self.BATCH or time.monotonic() - last_flush >= self.FLUSH_EVERY_S):
                w.writer.flush()  # durable before acknowledged
                for m in pending:
                    self.consumer.acknowledge(m)
                pending.clear()
                last_flush = time.monotonic()
            elif not pending:
                last_flush = time.monotonic()
            if self.stop.is_set() and not pending and msg is None:
                break
        try:
            self.consumer.close()
        except Exception:
            pass


def probe_clock(url: str | None, samples: int = 15) -> tuple[int, int | None]:
    """Offset of the controller's clock from ours (controller minus ours), from the
    lowest-round-trip of a few UDP probes; (0, None) when there is no controller."""
    if not url or not url.startswith("udp://"):
        return 0, None
    import socket

    host, port = url[len("udp://"):].rsplit(":", 1)
    best: tuple[int, int] | None = None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        for _ in range(samples):
            try:
                t0 = time.time_ns()
                sock.sendto(b"t", (host, int(port)))
                remote = int(sock.recv(64))
                t1 = time.time_ns()
            except (OSError, ValueError):
                continue
            rtt = t1 - t0
            if best is None or rtt < best[1]:
                best = (remote - (t0 + t1) // 2, rtt)
    return best if best else (0, None)


@contextmanager
def _few_collections(young: int = 50_000):
    """Producing: the objects made so far (modules, client) out of every collection, and a young generation
    of ``young`` objects instead of 700. A send makes a few short-lived tracked objects (its callback, its
    events' tuples until the flush): with the defaults the collector ran every few dozen sends and cost the
    producer 1 to 3 CPU-us a message (measured on the lab, gc off against on)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _phase(progress_path: Path) -> str | None:
    try:
        return json.loads(progress_path.read_text()).get("phase")
    except (FileNotFoundError, ValueError):
        return None


def _client_logger(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"geo_recon.worker.{path.stem}")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        # warnings and errors, and the one INFO line that marks a cluster switch (failover: auto)
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or failover.SWITCH_LOG in r.getMessage())
        logger.addHandler(handler)
    return logger


def _atomic_write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def run_from_file(config_path: str | Path, role: str = "all") -> dict[str, Any]:
    cfg = WorkerConfig.model_validate_json(Path(config_path).read_text())
    return Worker(cfg, token=os.environ.get("GEO_RECON_TOKEN") or None, role=role).run()
