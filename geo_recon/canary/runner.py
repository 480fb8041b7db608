"""The running canary: a low-rate producer and a consumer in every region, one streaming checker.

One process reaches every region (as an SRE's monitoring host does): per
region a ``pulsar.Client`` with a paced producer and a Failover consumer on
one dedicated topic of the replicated namespace. Every send, outcome and
delivery goes, with its time, through one queue to the main loop, which feeds
the :class:`~geo_recon.canary.checker.CanaryChecker` and serves its snapshot
as Prometheus metrics.

Restarts: with a state directory the checker's state is checkpointed every few
seconds, and a region's received messages are acknowledged to Pulsar only once
a checkpoint that counts them is on disk. Messages delivered while the canary
is down wait in its durable subscriptions; the restored checker adds the
downtime to every due time, so the downtime never shows as loss. Without a
state directory, receipts are acknowledged at once and a restart starts
counting afresh.

Tokens come from the deployment (clusters file: env or file) and only ever go
to the client's authentication.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from geo_recon.canary.checker import CanaryChecker
from geo_recon.canary.explanations import explain
from geo_recon.canary.metrics import CanaryView, MetricsServer
from geo_recon.deployment import Deployment, RegionEndpoint
from geo_recon.errors import ConfigError
from geo_recon.workload import message, schedule
from geo_recon.workload.message import format_msg_id

STATE_FILE = "canary-state.json"
TOPIC_NAME = "geo-recon-canary"


@dataclass(frozen=True)
class CanarySettings:
    rate: float = 10.0
    """Messages per second per region."""
    deadline_s: float = 60.0
    horizon_s: float | None = None
    tenant: str = "geo"
    namespace: str = "recon"
    topic: str = TOPIC_NAME
    subscription: str = "geo-recon-canary"
    host: str = "127.0.0.1"
    port: int = 9464
    state_dir: Path | None = None
    checkpoint_every_s: float = 5.0
    send_timeout_s: float = 30.0
    message_size: int = 100
    report_every_s: float = 10.0

    def validate(self) -> None:
        if not 0 < self.rate <= 10_000:
            raise ConfigError(f"--rate {self.rate}: messages per second per region must be in (0, 10000]")
        if not self.deadline_s > 0:
            raise ConfigError(f"--deadline {self.deadline_s}: must be > 0 seconds")
        if self.send_timeout_s >= self.deadline_s * 2:
            raise ConfigError(f"--send-timeout {self.send_timeout_s}: must be below twice the deadline "
                              f"({self.deadline_s * 2:g} s), or an unanswered send would be forgotten first")
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port {self.port}: not a TCP port")
        if self.checkpoint_every_s <= 0:
            raise ConfigError(f"--checkpoint-every {self.checkpoint_every_s}: must be > 0 seconds")

    @property
    def topic_url(self) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.topic}"


@dataclass
class _RegionState:
    producer_ok: bool = False
    consumer_ok: bool = False
    last_ack_mono: float | None = None
    error: str | None = None


@dataclass
class _Shared:
    """What the region threads and the main loop share (the checker itself is the main loop's)."""

    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    stop: threading.Event = field(default_factory=threading.Event)  # stop producing
    stop_consuming: threading.Event = field(default_factory=threading.Event)  # after the last checkpoint's acks
    consumers_ready: threading.Event = field(default_factory=threading.Event)
    regions: dict[str, _RegionState] = field(default_factory=dict)


class Canary:
    def __init__(self, deployment: Deployment, settings: CanarySettings, *,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        settings.validate()
        self.deployment = deployment
        self.settings = settings
        self.progress = progress
        self.regions = deployment.region_names
        self.shared = _Shared(regions={r: _RegionState() for r in self.regions})
        self._lock = threading.Lock()
        self._checkpoint_ns: int | None = None
        self._loop_mono = time.monotonic()
        self._to_ack: list[tuple[Any, Any]] = []
        self.checker = self._restore()
        self.epoch = f"k{time.time_ns() // 1_000_000}"

    # ------------------------------------------------------------------ state

    @property
    def state_path(self) -> Path | None:
        return None if self.settings.state_dir is None else self.settings.state_dir / STATE_FILE

    def _restore(self) -> CanaryChecker:
        s = self.settings
        path = self.state_path
        if path is not None and path.exists():
            try:
                saved = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ConfigError(f"{path}: not a canary state file ({exc}); move it away to start afresh") from None
            checker = CanaryChecker.from_state(saved["checker"], now_ns=time.time_ns(), regions=self.regions,
                                               deadline_s=s.deadline_s, horizon_s=s.horizon_s)
            down = max(0.0, (time.time_ns() - saved["checker"]["now_ns"]) / 1e9)
            self.progress(f"restored {path}: {checker.live()} messages in flight; {down:.1f} s of downtime added "
                          "to their deadlines")
            return checker
        return CanaryChecker(self.regions, deadline_s=s.deadline_s, horizon_s=s.horizon_s)

    def _checkpoint(self) -> None:
        path = self.state_path
        if path is None:
            return
        with self._lock:
            data = orjson.dumps({"checker": self.checker.to_state()})
            ackable, self._to_ack = self._to_ack, []
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._checkpoint_ns = time.time_ns()
        _acknowledge(ackable)  # only now: a crash before this point gets them redelivered

    # ------------------------------------------------------------------ views

    def view(self) -> CanaryView:
        with self._lock:
            self.checker.advance(time.time_ns())
            snap = self.checker.snapshot()
        return CanaryView(snap, {r: self._region_up(r) for r in self.regions}, self._checkpoint_ns)

    def _region_up(self, region: str) -> bool:
        st = self.shared.regions[region]
        fresh = max(10.0, 5.0 / self.settings.rate)
        return (st.producer_ok and st.consumer_ok and st.last_ack_mono is not None
                and time.monotonic() - st.last_ack_mono < fresh)

    def health(self) -> tuple[bool, dict[str, Any]]:
        loop_age = time.monotonic() - self._loop_mono
        regions = {}
        for r, st in self.shared.regions.items():
            regions[r] = {"up": self._region_up(r), "producer": st.producer_ok, "consumer": st.consumer_ok,
                          "last_ack_age_s": None if st.last_ack_mono is None else
                          round(time.monotonic() - st.last_ack_mono, 3), "error": st.error}
        # The canary is healthy when its own loop runs; the regions' state is reported, and alerted on by metrics.
        return loop_age < 10.0, {"loop_age_s": round(loop_age, 3), "regions": regions,
                                 "state_messages": self.checker.live()}

    # ------------------------------------------------------------------ run

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set (or KeyboardInterrupt); checkpoint and close on the way out."""
        s = self.settings
        stop = stop or threading.Event()
        server = MetricsServer(s.host, s.port, view=self.view, health=self.health)
        self.progress(f"canary: {len(self.regions)} regions ({', '.join(self.regions)}), {s.rate:g} msg/s each on "
                      f"{s.topic_url}; loss deadline {s.deadline_s:g} s; metrics on http://{s.host}:{server.port}/metrics")
        threads = []
        for ep in self.deployment.regions:
            link = _RegionLink(ep, s, self.shared, self.epoch, self.regions, self.progress)
            threads.append(link)
            link.start()
        try:
            self._loop(stop)
        except KeyboardInterrupt:
            self.progress("canary: stopping")
        finally:
            self.shared.stop.set()
            for link in threads:  # producers flush: their last outcomes come in
                link.produced.wait(timeout=s.send_timeout_s + 5)
            self._process_queue(limit=None)
            self._checkpoint()
            if self.state_path is None:
                _acknowledge(self._to_ack)
            self.shared.stop_consuming.set()
            for link in threads:
                link.join(timeout=10)
            server.close()

    def _loop(self, stop: threading.Event) -> None:
        s = self.settings
        next_checkpoint = time.monotonic() + s.checkpoint_every_s
        next_report = time.monotonic() + s.report_every_s
        waiting_since = time.monotonic()
        while not stop.is_set():
            self._loop_mono = time.monotonic()
            if not self.shared.consumers_ready.is_set():
                if all(st.consumer_ok for st in self.shared.regions.values()) or \
                        time.monotonic() - waiting_since > 60:
                    if not all(st.consumer_ok for st in self.shared.regions.values()):
                        down = [r for r, st in self.shared.regions.items() if not st.consumer_ok]
                        self.progress(f"canary: no subscription yet in {', '.join(down)} after 60 s; producing anyway "
                                      "(messages replicated there before it subscribes count as lost)")
                    self.shared.consumers_ready.set()
            try:
                first = self.shared.events.get(timeout=0.2)
            except queue.Empty:
                first = None
            self._process_queue(first=first, limit=5000)
            self._report_cases()
            now = time.monotonic()
            if self.state_path is None:
                with self._lock:
                    ackable, self._to_ack = self._to_ack, []
                _acknowledge(ackable)
            elif now >= next_checkpoint:
                self._checkpoint()
                next_checkpoint = now + s.checkpoint_every_s
            if now >= next_report:
                self.progress(summary_line(self.view()))
                next_report = now + s.report_every_s

    def _process_queue(self, *, first: tuple | None = None, limit: int | None) -> None:
        events = self.shared.events
        checker = self.checker
        regions = self.shared.regions
        with self._lock:
            n = 0
            ev = first
            while True:
                if ev is None:
                    try:
                        ev = events.get_nowait()
                    except queue.Empty:
                        break
                kind = ev[0]
                if kind == "d":
                    _, region, producer, seq, msg_id, t, consumer, msg = ev
                    checker.delivered(region, producer, seq, msg_id, t)
                    self._to_ack.append((consumer, msg))
                elif kind == "s":
                    checker.sent(ev[1], ev[2], ev[3], ev[4])
                elif kind == "a":
                    checker.acked(ev[1], ev[2], ev[3])
                    regions[ev[4]].last_ack_mono = time.monotonic()
                else:
                    checker.failed(ev[1], ev[2], ev[3])
                ev = None
                n += 1
                if limit is not None and n >= limit:
                    break
            checker.advance(time.time_ns())

    def _report_cases(self) -> None:
        with self._lock:
            cases = self.checker.drain_cases()
        if not cases:
            return
        for case in cases[:5]:
            self.progress(f"canary: {case.kind}: {explain(case)}")
        if len(cases) > 5:
            self.progress(f"canary: ... and {len(cases) - 5} more cases")


def check_namespace(deployment: Deployment, settings: CanarySettings, *,
                    progress: Callable[[str], None] = lambda _m: None) -> None:
    """The canary's namespace must exist in every region (and be replicated to all of them, on the async
    scheme). Unreachable regions are reported and left to the canary to wait for."""
    from geo_recon.admin import AdminError

    ns = f"{settings.tenant}/{settings.namespace}"
    for ep in deployment.regions:
        admin = ep.admin(deadline=10.0)
        try:
            clusters = admin.get(f"/admin/v2/namespaces/{ns}/replication")
        except AdminError as exc:
            if exc.status in (403, 404):
                raise ConfigError(f"region {ep.region} ({ep.admin_url}): namespace {ns}: HTTP {exc.status} "
                                  f"({exc.detail}); run `geo-recon configure` first, or pass --tenant/--namespace") from None
            progress(f"canary: region {ep.region}: cannot read namespace {ns} now ({exc}); going on")
            continue
        finally:
            admin.close()
        if deployment.scheme != "strong" and len(deployment.regions) > 1 and isinstance(clusters, list) \
                and len(clusters) < len(deployment.regions):
            progress(f"canary: warning: namespace {ns} in {ep.region} replicates to {clusters} only")


def summary_line(view: CanaryView) -> str:
    snap = view.snapshot
    parts = []
    for o in snap.origins:
        parts.append(f"{o.origin}: sent {o.sent} acked {o.acked} exposure {o.exposure}")
    for p in snap.pairs:
        p99 = p.lag.quantile(0.99)
        parts.append(f"{p.origin}->{p.region} delivered {p.delivered} lost {p.lost}"
                     + (f" p99<={p99:g}s" if p99 is not None else "")
                     + (f" pending {p.pending} ({p.oldest_pending_s:.1f}s)" if p.pending else ""))
    return "canary: " + "; ".join(parts)


def _acknowledge(items: list[tuple[Any, Any]]) -> None:
    for consumer, msg in items:
        try:
            consumer.acknowledge(msg)
        except Exception:  # a region gone since: the message comes again, as a redelivery
            pass


class _RegionLink(threading.Thread):
    """One region: its client, a paced producer (this thread) and a consumer (a thread of its own)."""

    def __init__(self, ep: RegionEndpoint, settings: CanarySettings, shared: _Shared, epoch: str,
                 regions: list[str], progress: Callable[[str], None]) -> None:
        super().__init__(name=f"canary-{ep.region}", daemon=True)
        self.ep, self.settings, self.shared, self.progress = ep, settings, shared, progress
        self.state = shared.regions[ep.region]
        self.producer_name = f"{ep.region}/{epoch}"
        self.regions = regions
        self.produced = threading.Event()

    def run(self) -> None:
        import pulsar

        client = pulsar.Client(
            self.ep.service_url,
            authentication=pulsar.AuthenticationToken(self.ep.token) if self.ep.token else None,
            tls_trust_certs_file_path=self.ep.tls_ca, operation_timeout_seconds=10,
            io_threads=1, message_listener_threads=1, logger=_quiet_logger(),
        )
        consumer_thread = threading.Thread(target=self._consume, args=(client,), name=f"canary-{self.ep.region}-c",
                                           daemon=True)
        consumer_thread.start()
        try:
            while not (self.shared.consumers_ready.wait(0.5) or self.shared.stop.is_set()):
                pass
            self._produce(client)
        finally:
            self.produced.set()
            self.shared.stop_consuming.wait()
            consumer_thread.join(timeout=5)
            try:
                client.close()
            except Exception:
                pass

    # -------------------------------------------------------------- producing

    def _produce(self, client: Any) -> None:
        s, shared = self.settings, self.shared
        events = shared.events
        region, name = self.ep.region, self.producer_name
        payload = message.payload(s.message_size)
        seq = 0
        while not shared.stop.is_set():
            try:
                producer = client.create_producer(
                    s.topic_url, send_timeout_millis=int(s.send_timeout_s * 1000), batching_enabled=False,
                    max_pending_messages=max(100, int(s.rate * s.send_timeout_s * 2)), block_if_queue_full=False)
            except Exception as exc:
                self.state.producer_ok = False
                self.state.error = f"producer: {type(exc).__name__}: {exc}"
                shared.stop.wait(2.0)
                continue
            self.state.producer_ok = True
            self.state.error = None
            start = time.time_ns()
            index = 0
            while not shared.stop.is_set():
                due = schedule.due_ns(start, s.rate, index)
                wait = (due - time.time_ns()) / 1e9
                if wait > 0 and shared.stop.wait(wait):
                    break
                if wait < -1.0:  # more than a second behind (a stall): skip ahead rather than burst
                    start, index = time.time_ns(), 0
                t = time.time_ns()
                events.put(("s", name, region, seq, t))
                try:
                    producer.send_async(payload, self._on_sent(name, seq), properties=message.properties(name, seq, t))
                except Exception:  # refused before it left this process
                    events.put(("f", name, seq, time.time_ns()))
                seq += 1
                index += 1
            try:
                producer.flush()
                producer.close()
            except Exception:
                pass

    def _on_sent(self, name: str, seq: int) -> Callable[[Any, Any], None]:
        events, region = self.shared.events, self.ep.region

        def done(result: Any, _msg_id: Any) -> None:
            if getattr(result, "name", str(result)) == "Ok":
                events.put(("a", name, seq, time.time_ns(), region))
            else:  # refused or unknown (timeout, disconnect): either way not expected anywhere
                events.put(("f", name, seq, time.time_ns()))

        return done

    # -------------------------------------------------------------- consuming

    def _consume(self, client: Any) -> None:
        import pulsar

        s, shared = self.settings, self.shared
        region = self.ep.region
        events = shared.events
        consumer = None
        while not shared.stop_consuming.is_set():
            if consumer is None:
                try:
                    consumer = client.subscribe(
                        s.topic_url, s.subscription, consumer_type=pulsar.ConsumerType.Failover,
                        initial_position=pulsar.InitialPosition.Latest, receiver_queue_size=1000,
                        consumer_name=f"geo-recon-canary-{region}")
                    self.state.consumer_ok = True
                except Exception as exc:
                    self.state.consumer_ok = False
                    self.state.error = f"consumer: {type(exc).__name__}: {exc}"
                    shared.stop_consuming.wait(2.0)
                    continue
            try:
                msg = consumer.receive(timeout_millis=200)
            except pulsar.Timeout:
                continue
            except Exception as exc:
                self.state.error = f"consumer: {type(exc).__name__}: {exc}"
                shared.stop_consuming.wait(0.5)
                continue
            t = time.time_ns()
            ident = message.identify(msg.properties())
            if ident is None:
                consumer.acknowledge(msg)  # not a canary message: nothing to count
                continue
            events.put(("d", region, ident[0], ident[1], format_msg_id(msg.message_id()), t, consumer, msg))
        if consumer is not None:
            try:
                consumer.close()
            except Exception:
                pass


def _quiet_logger():
    import logging

    logger = logging.getLogger("geo_recon.canary.client")
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


__all__ = ["Canary", "CanarySettings", "check_namespace", "summary_line"]
