"""Billing transactions and their events: a seeded, pure generator, and the wire format.

A *transaction* happens at time ``t0`` (its index over the rate, from
``start_ns``). Each *system* (``order``, ``payment``, ``ledger`` by default)
records it as one event in its own region, ``delay_ms + U(0, jitter_ms)``
after ``t0``: that is the event's ``event_time_ns`` (the systems' time
difference of arrival starts here). All of a transaction's events carry its
amount, except where a business error was injected on purpose:

- ``amount_mismatch``: the error system's (payment's) amount differs from the
  others' by 1..500 cents;
- ``missing_payment``: the error system emits no event;
- ``duplicate_charge``: the error system emits two events with distinct
  event ids (charge ids), the second ``U(0, duplicate_gap_ms)`` after the first.

A transaction carries at most one injected error; whether it does is drawn with
probability ``error_rate`` and the kind uniformly from ``error_kinds``. The
generator draws the same random numbers per transaction whatever is injected,
so a spec and seed always give the same events, in every process: a worker
per system can regenerate its own events independently.

Every event has an ``event_id`` unique within the run
(``index * (len(systems) + 1) + system position``; the extra slot is the
duplicate charge). For payment events it is the charge id.

Wire format (one Pulsar message per event): the message key is the
transaction id (so a Key_Shared subscription keeps a transaction on one
consumer), the event timestamp is ``event_time_ns // 1e6``, and the payload is
``>BqqqBBB`` (format version 1, event_time_ns, amount_cents, event_id, and the
byte lengths of system, region and txn_id) followed by those three UTF-8
strings. The payload is self-contained: a reconciler needs nothing else. The
history fields (producer, seq) travel as message properties, added by the
worker.
"""

from __future__ import annotations

import heapq
import random
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from geo_recon.errors import ConfigError

DEFAULT_SYSTEMS: tuple[str, ...] = ("order", "payment", "ledger")
FORMAT_VERSION = 1
_HEAD = struct.Struct(">BqqqBBB")
_MAX_DELTA_CENTS = 500


class ErrorKind(StrEnum):
    """A business error injected on purpose; the reconciler must find every one."""

    AMOUNT_MISMATCH = "amount_mismatch"
    """The error system's amount differs from the other systems' amount."""
    MISSING_PAYMENT = "missing_payment"
    """The error system emits no event for the transaction."""
    DUPLICATE_CHARGE = "duplicate_charge"
    """The error system emits two events with distinct event (charge) ids."""


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """One publishing system: its region and how long after a transaction it records it."""

    name: str
    region: str
    delay_ms: float = 0.0
    """Base delay from the transaction's time to this system's event time."""
    jitter_ms: float = 0.0
    """Uniform extra delay in [0, jitter_ms)."""


@dataclass(frozen=True, slots=True)
class BillingSpec:
    """Everything that determines a run's transactions, events and injected errors."""

    systems: tuple[SystemSpec, ...]
    transactions: int
    rate_per_s: float = 100.0
    """Transactions per second of event time."""
    error_rate: float = 0.0
    """Probability that a transaction carries an injected business error."""
    error_kinds: tuple[ErrorKind, ...] = tuple(ErrorKind)
    error_system: str = "payment"
    """The system whose event is altered, dropped or duplicated by an injected error."""
    seed: int = 0
    start_ns: int = 0
    txn_prefix: str = "t"
    min_amount_cents: int = 100
    max_amount_cents: int = 100_000
    duplicate_gap_ms: float = 5.0

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""
        names = [s.name for s in self.systems]
        if len(names) < 2:
            raise ConfigError(f"billing: at least 2 systems are needed to reconcile, got {names}")
        if len(set(names)) != len(names):
            raise ConfigError(f"billing: system names must be distinct, got {names}")
        for s in self.systems:
            for label, text in (("system", s.name), ("region", s.region)):
                if not text or len(text.encode()) > 255:
                    raise ConfigError(f"billing: {label} name {text!r} must be 1..255 bytes")
            if s.delay_ms < 0 or s.jitter_ms < 0:
                raise ConfigError(f"billing: system {s.name!r}: delay_ms and jitter_ms must be >= 0")
        if self.transactions < 0:
            raise ConfigError(f"billing: transactions must be >= 0, got {self.transactions}")
        if not self.rate_per_s > 0:
            raise ConfigError(f"billing: rate_per_s must be > 0, got {self.rate_per_s}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigError(f"billing: error_rate must be within [0, 1], got {self.error_rate}")
        if self.error_rate > 0:
            if self.error_system not in names:
                raise ConfigError(f"billing: error_system {self.error_system!r} is not one of the systems {names}")
            if not self.error_kinds:
                raise ConfigError("billing: error_rate > 0 needs at least one error kind")
        if not 1 <= self.min_amount_cents <= self.max_amount_cents:
            raise ConfigError("billing: amounts need 1 <= min_amount_cents <= max_amount_cents")
        if self.duplicate_gap_ms < 0:
            raise ConfigError("billing: duplicate_gap_ms must be >= 0")
        # The last transaction id is the longest one.
        if len(f"{self.txn_prefix}{max(self.transactions - 1, 0)}".encode()) > 255:
            raise ConfigError("billing: transaction ids must fit in 255 bytes")

    @property
    def system_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.systems)

    def max_spread_ms(self) -> float:
        """The widest event-time spread of one transaction's events.

        A reconciler's lateness must be at least this plus the disorder of
        delivery, or on-time events will be reported late.
        """
        latest = max(s.delay_ms + s.jitter_ms + (self.duplicate_gap_ms if s.name == self.error_system else 0.0)
                     for s in self.systems)
        return latest - min(s.delay_ms for s in self.systems)


def default_systems(regions: Iterable[str] = ("a", "b", "c")) -> tuple[SystemSpec, ...]:
    """order, payment, ledger in the given regions (cycled), with typical delays."""
    regions = tuple(regions)
    delays = {"order": (0.0, 20.0), "payment": (50.0, 40.0), "ledger": (120.0, 60.0)}
    return tuple(SystemSpec(name, regions[i % len(regions)], *delays[name]) for i, name in enumerate(DEFAULT_SYSTEMS))


@dataclass(frozen=True, slots=True)
class BillingEvent:
    """One system's record of one transaction (one Pulsar message)."""

    txn_id: str
    system: str
    region: str
    """The region the system publishes from (the message's origin)."""
    amount_cents: int
    event_id: int
    """Unique within the run; for payment events this is the charge id."""
    event_time_ns: int
    """When the system recorded it, on its clock (ns since the epoch)."""

    @property
    def key(self) -> tuple[str, str]:
        """(system, txn_id): the key replication facts and verdicts are joined on."""
        return (self.system, self.txn_id)


@dataclass(frozen=True, slots=True)
class InjectedError:
    """Ground truth: a business error injected on purpose into one transaction."""

    txn_id: str
    kind: ErrorKind
    system: str


@dataclass(frozen=True, slots=True)
class Transaction:
    txn_id: str
    index: int
    time_ns: int
    amount_cents: int
    events: tuple[BillingEvent, ...]
    """In system order; a duplicate charge follows its first charge."""
    error: InjectedError | None


# A raw event, as the generator produces it internally: (system index, amount, event id, event time).
_RawEvent = tuple[int, int, int, int]


def _raw(spec: BillingSpec) -> Iterator[tuple[int, str, int, int, int, list[_RawEvent]]]:
    """Per transaction: (index, txn_id, t0, amount, injected kind index or -1, raw events).

    Draws exactly 5 + len(systems) random numbers per transaction, whatever is injected.
    """
    spec.validate()
    rng = random.Random(spec.seed)
    rand = rng.random
    k = len(spec.systems)
    stride = k + 1
    delays = [round(s.delay_ms * 1e6) for s in spec.systems]
    jitters = [s.jitter_ms * 1e6 for s in spec.systems]
    names = spec.system_names
    err_idx = names.index(spec.error_system) if spec.error_system in names else -1
    kinds = spec.error_kinds
    kind_index = {kind: i for i, kind in enumerate(kinds)}
    mismatch = kind_index.get(ErrorKind.AMOUNT_MISMATCH, -2)
    missing = kind_index.get(ErrorKind.MISSING_PAYMENT, -2)
    duplicate = kind_index.get(ErrorKind.DUPLICATE_CHARGE, -2)
    n_kinds = max(len(kinds), 1)
    span = spec.max_amount_cents - spec.min_amount_cents + 1
    gap = spec.duplicate_gap_ms * 1e6
    interval = 1e9 / spec.rate_per_s
    prefix = spec.txn_prefix
    rate = spec.error_rate
    for i in range(spec.transactions):
        t0 = spec.start_ns + round(i * interval)
        amount = spec.min_amount_cents + int(rand() * span)
        u_err = rand()
        u_kind = rand()
        u_delta = rand()
        u_gap = rand()
        kind = int(u_kind * n_kinds) if u_err < rate and err_idx >= 0 else -1
        base = i * stride
        events: list[_RawEvent] = []
        for j in range(k):
            t = t0 + delays[j] + int(rand() * jitters[j])
            if j != err_idx or kind < 0:
                events.append((j, amount, base + j, t))
            elif kind == mismatch:
                delta = 1 + int(u_delta * _MAX_DELTA_CENTS)
                lower = u_gap < 0.5 and amount - delta >= 1
                events.append((j, amount - delta if lower else amount + delta, base + j, t))
            elif kind == missing:
                pass
            elif kind == duplicate:
                events.append((j, amount, base + j, t))
                events.append((j, amount, base + k, t + int(u_gap * gap)))
        yield i, f"{prefix}{i}", t0, amount, kind, events


def transactions(spec: BillingSpec) -> Iterator[Transaction]:
    """Every transaction with its events and injected error, in transaction order (lazy)."""
    names = spec.system_names
    regions = tuple(s.region for s in spec.systems)
    kinds = spec.error_kinds
    for i, txn_id, t0, amount, kind, raw in _raw(spec):
        events = tuple(BillingEvent(txn_id, names[j], regions[j], a, eid, t) for j, a, eid, t in raw)
        error = InjectedError(txn_id, kinds[kind], spec.error_system) if kind >= 0 else None
        yield Transaction(txn_id, i, t0, amount, events, error)


def injected_errors(spec: BillingSpec) -> tuple[InjectedError, ...]:
    """The ground truth: every business error injected on purpose, in transaction order."""
    kinds = spec.error_kinds
    return tuple(InjectedError(txn_id, kinds[kind], spec.error_system)
                 for _i, txn_id, _t0, _a, kind, _raw_events in _raw(spec) if kind >= 0)


def events_in_time_order(spec: BillingSpec, systems: Iterable[str] | None = None) -> Iterator[BillingEvent]:
    """The events of the given systems (all by default) in event-time order, lazily.

    This is the order in which a system publishes them. Memory is bounded by
    the events of one delay-plus-jitter window, not by the run length.
    """
    names = spec.system_names
    wanted = set(names if systems is None else systems)
    unknown = wanted - set(names)
    if unknown:
        raise ConfigError(f"billing: unknown systems {sorted(unknown)}; the systems are {list(names)}")
    regions = tuple(s.region for s in spec.systems)
    indexes = {j for j, name in enumerate(names) if name in wanted}
    floor = min(round(s.delay_ms * 1e6) for s in spec.systems if s.name in wanted)
    pending: list[tuple[int, int, str, int, int]] = []
    for _i, txn_id, t0, _amount, _kind, raw in _raw(spec):
        for j, a, eid, t in raw:
            if j in indexes:
                heapq.heappush(pending, (t, eid, txn_id, j, a))
        # No later transaction has an event before t0 + the smallest delay.
        bound = t0 + floor
        while pending and pending[0][0] <= bound:
            t, eid, tid, j, a = heapq.heappop(pending)
            yield BillingEvent(tid, names[j], regions[j], a, eid, t)
    while pending:
        t, eid, tid, j, a = heapq.heappop(pending)
        yield BillingEvent(tid, names[j], regions[j], a, eid, t)


@dataclass(frozen=True, slots=True)
class Generated:
    """A whole (small) run materialised: events in event-time order and the ground truth."""

    spec: BillingSpec
    events: tuple[BillingEvent, ...]
    injected: tuple[InjectedError, ...]


def generate(spec: BillingSpec) -> Generated:
    """Materialise a run; for tests and small runs (use the iterators for big ones)."""
    events: list[BillingEvent] = []
    injected: list[InjectedError] = []
    for txn in transactions(spec):
        events.extend(txn.events)
        if txn.error is not None:
            injected.append(txn.error)
    events.sort(key=lambda e: (e.event_time_ns, e.event_id))
    return Generated(spec, tuple(events), tuple(injected))


# ---------------------------------------------------------------------------------------------
# Wire format


class PayloadError(ValueError):
    """A message payload that is not a billing event of a known format version."""


def encode(event: BillingEvent) -> bytes:
    """The message payload of an event (see the module docstring for the layout)."""
    system = event.system.encode()
    region = event.region.encode()
    txn = event.txn_id.encode()
    if len(system) > 255 or len(region) > 255 or len(txn) > 255:
        raise ValueError(f"billing: names and ids must fit in 255 bytes: {event}")
    return (_HEAD.pack(FORMAT_VERSION, event.event_time_ns, event.amount_cents, event.event_id,
                       len(system), len(region), len(txn)) + system + region + txn)


def decode_fields(payload: bytes) -> tuple[str, str, str, int, int, int]:
    """(system, region, txn_id, amount_cents, event_id, event_time_ns) of a payload; the fast path."""
    try:
        version, t, amount, eid, ls, lr, lt = _HEAD.unpack_from(payload)
    except struct.error as exc:
        raise PayloadError(f"billing payload too short ({len(payload)} bytes)") from exc
    if version != FORMAT_VERSION:
        raise PayloadError(f"billing payload has format version {version}, expected {FORMAT_VERSION}")
    start = _HEAD.size
    end = start + ls + lr + lt
    if len(payload) != end:
        raise PayloadError(f"billing payload is {len(payload)} bytes, its header says {end}")
    try:
        system = payload[start:start + ls].decode()
        region = payload[start + ls:start + ls + lr].decode()
        txn = payload[start + ls + lr:end].decode()
    except UnicodeDecodeError as exc:
        raise PayloadError(f"billing payload has a name that is not UTF-8: {exc}") from exc
    return system, region, txn, amount, eid, t


def decode(payload: bytes) -> BillingEvent:
    """The event a payload encodes; PayloadError if it is not one."""
    system, region, txn, amount, eid, t = decode_fields(payload)
    return BillingEvent(txn, system, region, amount, eid, t)


@dataclass(frozen=True, slots=True)
class BillingMessage:
    """How one event is published to Pulsar."""

    topic: str
    partition_key: str
    """The transaction id."""
    payload: bytes
    event_timestamp_ms: int


def topic_for(system: str, *, namespace: str = "geo/recon", prefix: str = "billing-") -> str:
    """The topic a system publishes to: one topic per system."""
    return f"persistent://{namespace}/{prefix}{system}"


def to_message(event: BillingEvent, *, namespace: str = "geo/recon", prefix: str = "billing-") -> BillingMessage:
    return BillingMessage(topic_for(event.system, namespace=namespace, prefix=prefix), event.txn_id,
                          encode(event), event.event_time_ns // 1_000_000)
