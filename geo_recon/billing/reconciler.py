"""The streaming reconciler: joins the systems' events by transaction id, in bounded memory.

Pure and driven by the caller: it never reads a clock or a socket. The caller
offers events with their *arrival time* (its own processing clock, ns) and
calls :meth:`Reconciler.tick` when time passes without events; verdicts
accumulate until :meth:`Reconciler.drain`.

The rules, exactly
------------------

Times: ``event_time`` is the producing system's timestamp on the event;
``now`` is the caller's processing clock: the arrival time of the event
being joined, or the time given to :meth:`Reconciler.tick` (arrivals are
expected in non-decreasing order). ``L`` is ``lateness_ms``.

1. **System watermark** ``W_s`` = the largest event time received from system
   ``s`` (minus infinity before its first event).
2. **Idle systems** (the processing-time bound). Every ``idle_ms / 8`` of
   processing time (at the first event or :meth:`Reconciler.tick` after
   that), an *idle check* notes whose watermarks advanced since the last one.
   System ``s`` becomes *idle* at the first check at least ``idle_ms`` after
   the check that last saw ``W_s`` advance (or after the first clock reading,
   if it never delivered), unless the caller paused it
   (:meth:`Reconciler.set_paused`: a system the caller chose not to read is
   never idle, and its silence counts from when it is resumed). A system is
   thus idle after between ``idle_ms`` and ``1.25 x idle_ms`` without
   progress, plus up to twice the caller's gap between calls; never sooner.
   An idle system no longer counts in ``W``; it is active again at its next
   event. A silent (stalled, partitioned, lost) system therefore holds
   verdicts back for at most about ``1.25 x idle_ms``. A system that is
   behind but still advancing is not idle: verdicts wait for it (that wait
   is its lag), and the :class:`ReadPlanner` stops the others from piling up
   in memory meanwhile. (Checks are periodic rather than per event to keep
   the per-event path short.)
3. **Global watermark** ``W`` = ``min(W_s over active systems) - L``, never
   decreasing. (If every system is idle: the highest ``W_s``, minus ``L``.)
4. **Final**: a transaction opens at its *first received* event, at event
   time ``t_first``. It is final, and its verdicts are emitted, once ``W``
   reaches the end of the ``granularity_ms`` bucket holding ``t_first``
   (1 ms by default): that is, once every active system has delivered an event
   at least ``L`` newer than the transaction's first one. Verdicts, per
   transaction: ``missing`` for each system with no event, ``duplicate`` for
   each system with two or more distinct events, one ``mismatched`` if the
   amounts differ, and ``matched`` if none of these.
5. **Late**: an event for a transaction that is final, or for an unknown
   transaction whose event time falls in a bucket that is final already
   (one ending at or below ``W``), is *late*: a ``late`` verdict is emitted
   for it; it is never joined and never silently dropped. Any other event for
   an unknown transaction opens it.
6. **Redelivery**: an event identical to one already joined to its transaction
   (same event id, amount and event time) counts as a redelivery, not a
   duplicate, also after the transaction is final (while its tombstone
   lasts). Two events with distinct ids (or one id with different contents)
   from one system are a ``duplicate``.
7. **Eviction**: a final transaction stays as a tombstone until every event
   time it may still see (up to the end of its bucket + ``L``) lies in a
   final bucket, where rule 5 calls any event late anyway; then it is
   dropped. Memory therefore holds the transactions of about ``L`` + (the
   systems' skew, bounded by the read planner or ``idle_ms``), plus ``L`` of
   tombstones, whatever the run's length.

For results not to depend on delivery order, ``L`` must cover the event-time
spread of one transaction's events (see
:meth:`geo_recon.billing.events.BillingSpec.max_spread_ms`) plus the disorder
of delivery within one system's topic. A constant per-system delay (one
region far behind) costs memory and verdict latency, never correctness.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from geo_recon.billing.events import BillingEvent, decode_fields
from geo_recon.errors import ConfigError

_NEG = -(1 << 62)
_INF = 1 << 62
_DIRTY = -(1 << 30)  # a present-count that can never reach len(systems)
_CLOSED = -(1 << 40)  # the count of a final transaction (a tombstone)
_GONE: tuple[()] = ()  # the slot of a system that was missing when its transaction became final

Record = tuple[str, int, int, int, int, int]
"""The engine's input: (txn_id, system index, amount_cents, event_id, event_time_ns, arrival_ns)."""


class VerdictKind(StrEnum):
    MATCHED = "matched"
    """Every system's event is present exactly once and all amounts agree."""
    MISMATCHED = "mismatched"
    """Every present event's amount does not agree."""
    MISSING = "missing"
    """A system's event was not received by the time the transaction became final."""
    DUPLICATE = "duplicate"
    """A system sent two or more distinct events (distinct event/charge ids) for the transaction."""
    LATE = "late"
    """An event arrived after its transaction was final; it was not joined."""


_MATCHED = VerdictKind.MATCHED
_MISMATCHED = VerdictKind.MISMATCHED
_MISSING = VerdictKind.MISSING
_DUPLICATE = VerdictKind.DUPLICATE
_LATE = VerdictKind.LATE


class Verdict(NamedTuple):
    """One final decision. A NamedTuple rather than a dataclass: one is made per transaction."""

    kind: VerdictKind
    txn_id: str
    system: str | None
    """missing/duplicate/late: that system; mismatched: the first system disagreeing with the
    most common amount; matched: None."""
    event_ids: tuple[int, ...]
    """duplicate: the system's distinct event ids by event time; late: the late event's id; else ()."""
    amounts: tuple[int | None, ...]
    """mismatched/missing/duplicate: each system's amount (of its earliest event), None where missing;
    late: (the late event's amount,); matched: ()."""
    event_time_ns: int
    """The transaction's first received event time; late: the late event's time."""
    decided_ns: int
    """Processing time at which the verdict became final."""
    watermark_ns: int
    """The global watermark W when it became final."""


_new = tuple.__new__


def _by_time(r: Record) -> tuple[int, int]:
    return (r[4], r[3])


def _lowest(eff: list[int]) -> tuple[int, int, int]:
    """(index of the lowest, the lowest, the second lowest) effective watermark."""
    m = min(eff)
    i = eff.index(m)
    second = min(eff[:i] + eff[i + 1:])
    return i, m, second


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """What the read planner needs to know, per system (in the reconciler's system order)."""

    systems: tuple[str, ...]
    watermarks_ns: tuple[int | None, ...]
    """W_s, or None before the system's first event."""
    idle: tuple[bool, ...]
    open_transactions: int
    """Transactions open in the reconciler (its memory)."""
    buffered: tuple[int, ...]
    """Events received by the caller but not yet offered, per system (zeros if it keeps none)."""


@dataclass(frozen=True, slots=True)
class ReconcilerStats:
    events: int
    redeliveries: int
    late: int
    open: int
    """Transactions open now."""
    peak_open: int
    """The most transactions ever open at once: the engine's memory high-water mark."""
    tombstones: int
    peak_tombstones: int
    verdicts: dict[str, int]
    watermark_ns: int | None
    idle: tuple[str, ...]


class Reconciler:
    """The streaming join engine. See the module docstring for the exact rules.

    State of a transaction (a list, kept in ``_live`` under its txn id):
    ``[slot per system..., t_first, first amount, count]`` where ``count`` is
    the number of systems present while everything agrees, ``_DIRTY`` once an
    amount differs or a system sent a second distinct event, and ``_CLOSED``
    once final; a slot is None, one record, a list of records (duplicates), or
    ``_GONE`` (missing when the transaction closed). A final transaction stays
    in ``_live`` as its own tombstone, so the hot path needs one lookup.
    """

    __slots__ = (
        "systems", "emit_matched", "lateness_ns", "idle_ns", "granularity_ns", "_index", "_k",
        "_live", "_buckets", "_next_bucket", "_tombq", "_tombstones",
        "_eff", "_idle_wm", "_mark_wm", "_mark_t", "_idle", "_paused", "_slow", "_floor2", "_close_at", "_open_from", "_W",
        "_now", "_check_at", "_period", "_started", "_events", "_matched", "_out", "_counts",
        "_redeliveries", "_late", "_peak_open", "_peak_tomb", "_nones",
    )

    def __init__(self, systems: Sequence[str], *, lateness_ms: float, idle_ms: float = 5_000.0,
                 granularity_ms: float = 1.0, emit_matched: bool = True) -> None:
        """``emit_matched=False``: matched transactions are only counted (see :meth:`stats`), which
        saves one object per transaction when a caller needs the exceptions and the counts only."""
        systems = tuple(systems)
        if len(systems) < 2 or len(set(systems)) != len(systems):
            raise ConfigError(f"reconciler: needs 2 or more distinct systems, got {list(systems)}")
        if lateness_ms < 0:
            raise ConfigError(f"reconciler: lateness_ms must be >= 0, got {lateness_ms}")
        if not idle_ms > 0:
            raise ConfigError(f"reconciler: idle_ms must be > 0, got {idle_ms}")
        if not granularity_ms > 0:
            raise ConfigError(f"reconciler: granularity_ms must be > 0, got {granularity_ms}")
        k = len(systems)
        self.systems = systems
        self.emit_matched = emit_matched
        self.lateness_ns = round(lateness_ms * 1e6)
        self.idle_ns = round(idle_ms * 1e6)
        self.granularity_ns = max(1, round(granularity_ms * 1e6))
        self._index = {name: i for i, name in enumerate(systems)}
        self._k = k
        self._live: dict[str, list] = {}  # open transactions and tombstones
        self._buckets: dict[int, list[str]] = {}  # bucket of t_first -> open txn ids
        self._next_bucket = _NEG  # every bucket below this one has been finalised (_NEG: none yet)
        self._tombq: deque[tuple[int, list[str]]] = deque()  # (last ns of a finalised bucket, its txn ids)
        self._tombstones = 0
        self._eff = [_NEG] * k  # W_s, or _INF while the system is idle
        self._idle_wm = [_NEG] * k  # W_s of an idle system
        self._mark_wm = [_NEG] * k  # W_s at the idle check that last saw it advance ...
        self._mark_t = [0] * k  # ... and the time of that check
        self._period = max(1, self.idle_ns // 8)  # idle checks run this often (processing time)
        self._idle = [False] * k
        self._paused = [False] * k
        self._slow = 0  # the system with the lowest effective watermark
        self._floor2 = _NEG  # a lower bound of the second lowest effective watermark
        self._close_at = _NEG  # the W at which the next bucket can be finalised
        self._open_from = _NEG  # the start of the first bucket that is not final
        self._W = _NEG
        self._now = _NEG
        self._check_at = _NEG  # the first clock reading runs _refresh, which starts the clock
        self._started = False
        self._events = 0
        self._matched = 0
        self._out: list[Verdict] = []
        self._counts: Counter[str] = Counter()
        self._redeliveries = 0
        self._late = 0
        self._peak_open = 0
        self._peak_tomb = 0
        self._nones = (None,) * k  # the empty system slots of a new transaction

    # ------------------------------------------------------------------ input

    def record(self, event: BillingEvent, arrival_ns: int) -> Record:
        """The engine record of an event (ValueError for a system it does not reconcile)."""
        try:
            s = self._index[event.system]
        except KeyError:
            raise ValueError(f"reconciler: unknown system {event.system!r}; reconciling {list(self.systems)}") from None
        return (event.txn_id, s, event.amount_cents, event.event_id, event.event_time_ns, arrival_ns)

    def record_from_payload(self, payload: bytes, arrival_ns: int) -> Record:
        """Decode a message payload straight into an engine record (PayloadError, ValueError)."""
        system, _region, txn, amount, eid, t = decode_fields(payload)
        try:
            s = self._index[system]
        except KeyError:
            raise ValueError(f"reconciler: unknown system {system!r}; reconciling {list(self.systems)}") from None
        return (txn, s, amount, eid, t, arrival_ns)

    def offer(self, event: BillingEvent, arrival_ns: int) -> None:
        """Join one event that arrived at ``arrival_ns`` (processing clock)."""
        self.offer_many((self.record(event, arrival_ns),))

    def offer_many(self, records: Iterable[Record]) -> None:
        """Join records in the order given: the hot path.

        Written for speed: locals only, no per-event objects (the records
        themselves are kept as the state), rare cases in methods.
        """
        if not isinstance(records, (list, tuple)):
            records = list(records)
        self._events += len(records)
        if not records:
            return
        live = self._live
        get = live.get
        buckets = self._buckets
        eff = self._eff
        idle = self._idle
        nones = self._nones
        ia = self._k + 1
        ic = self._k + 2
        gran = self.granularity_ns
        lateness = self.lateness_ns
        W = self._W
        slow = self._slow
        floor2 = self._floor2
        close_at = self._close_at
        open_from = self._open_from
        check_at = self._check_at
        cur_b = None  # the bucket new transactions went to last, and its list
        cur_lst: list[str] = []
        # The clock is the arrival time of the event being joined (arrivals are expected in order;
        # one out of order only makes an idle check or a decision time a little early).
        for r in records:
            txn, s, amount, _eid, t, arr = r
            if idle[s]:
                self._W, self._now = W, arr
                self._wake(s, t)
                slow, floor2, check_at = self._slow, self._floor2, self._check_at
            st = get(txn)
            if st is not None:
                if st[s] is None:
                    st[s] = r
                    if amount == st[ia]:
                        st[ic] += 1
                    else:
                        st[ic] = _DIRTY
                else:  # a redelivery, a duplicate, or an event for a final transaction
                    self._now = arr
                    self._again(st, s, r, W)
            elif t < open_from:  # its bucket is final already
                self._now = arr
                self._late_event(r, W)
            else:
                st = [*nones, t, amount, 1]
                st[s] = r
                live[txn] = st
                b = t // gran
                if b == cur_b:
                    cur_lst.append(txn)
                else:
                    lst = buckets.get(b)
                    if lst is None:
                        buckets[b] = lst = [txn]
                    else:
                        lst.append(txn)
                    cur_b, cur_lst = b, lst
            if t > eff[s]:
                eff[s] = t
                if s == slow:
                    if t > floor2:  # it may no longer be the slowest
                        slow, m, floor2 = _lowest(eff)
                    else:
                        m = t
                    m -= lateness
                    if m > W:
                        W = m
                        if W >= close_at:
                            self._W, self._now = W, arr
                            self._close_through(W)
                            close_at, open_from = self._close_at, self._open_from
                            cur_b = None
            if arr >= check_at:
                self._W, self._now = W, arr
                self._refresh(arr)
                W, slow, floor2, close_at, check_at = self._W, self._slow, self._floor2, self._close_at, self._check_at
                open_from = self._open_from
                cur_b = None
        self._W, self._slow, self._floor2 = W, slow, floor2
        last = records[-1][5]
        if last > self._now:
            self._now = last

    def tick(self, now_ns: int) -> None:
        """Processing time passed without events: apply the idle rule and advance the watermark."""
        if now_ns > self._now:
            self._now = now_ns
        self._refresh(self._now)

    def set_paused(self, systems: Iterable[str], now_ns: int) -> None:
        """Tell the engine which systems the caller is not reading (from ``now_ns`` on).

        A paused system never becomes idle; once resumed, its silence counts
        from the resume time.
        """
        paused = set(systems)
        unknown = paused - set(self.systems)
        if unknown:
            raise ValueError(f"reconciler: unknown systems {sorted(unknown)}")
        if not self._started:
            self._refresh(now_ns)
        for s, name in enumerate(self.systems):
            p = name in paused
            if self._paused[s] and not p:
                self._mark_t[s] = max(self._mark_t[s], now_ns)
                self._mark_wm[s] = self._eff[s]
            self._paused[s] = p

    def finish(self, now_ns: int | None = None) -> None:
        """End of input: every open transaction becomes final now; any later event is late."""
        if now_ns is not None and now_ns > self._now:
            self._now = now_ns
        if self._buckets:
            self._close_through(max(self._buckets) * self.granularity_ns + self.granularity_ns - 1,
                                watermark=max(self._W, 0))
        self._W = _INF
        self._close_at = _INF
        self._open_from = _INF
        self._live.clear()
        self._tombq.clear()
        self._tombstones = 0

    def drain(self) -> list[Verdict]:
        """The verdicts that became final since the last drain, in the order they did."""
        out = self._out
        self._out = []
        return out

    # ------------------------------------------------------------------ views

    @property
    def watermark_ns(self) -> int | None:
        """The global watermark W (None before it exists, and after finish)."""
        return None if self._W <= _NEG // 2 or self._W >= _INF else self._W

    def next_deadline_ns(self) -> int | None:
        """The processing time at which the idle rule may next change something: tick then."""
        return None if not self._started or self._check_at >= _INF else self._check_at

    def watermarks(self) -> tuple[int | None, ...]:
        """W_s per system (None before its first event)."""
        return tuple(None if w == _NEG else w for w in
                     (self._idle_wm[s] if self._idle[s] else self._eff[s] for s in range(self._k)))

    def open_transactions(self) -> int:
        return len(self._live) - self._tombstones

    def flow_snapshot(self, buffered: Sequence[int] | None = None) -> FlowSnapshot:
        """What the read planner needs; ``buffered``: events the caller holds, per system."""
        return FlowSnapshot(self.systems, self.watermarks(), tuple(self._idle), self.open_transactions(),
                            tuple(buffered) if buffered is not None else (0,) * self._k)

    def stats(self) -> ReconcilerStats:
        counts = Counter(self._counts)
        counts[_MATCHED] += self._matched
        return ReconcilerStats(
            events=self._events, redeliveries=self._redeliveries,
            late=self._late, open=self.open_transactions(),
            peak_open=max(self._peak_open, self.open_transactions()),
            tombstones=self._tombstones, peak_tombstones=max(self._peak_tomb, self._tombstones),
            verdicts={str(k): v for k, v in sorted(counts.items())},
            watermark_ns=self.watermark_ns,
            idle=tuple(n for n, i in zip(self.systems, self._idle) if i),
        )

    # ------------------------------------------------------------------ internals

    def _start(self, now_ns: int) -> None:
        """The first clock reading starts every system's silence clock."""
        self._started = True
        self._mark_t = [now_ns] * self._k
        self._check_at = now_ns + self._period

    def _wake(self, s: int, t: int) -> None:
        """An idle system delivered: it is active again and counts in the watermark."""
        self._idle[s] = False
        self._eff[s] = self._idle_wm[s]
        self._mark_wm[s] = _NEG  # its next idle check sees progress, and restarts its silence clock
        self._slow, _m, self._floor2 = _lowest(self._eff)

    def _refresh(self, now: int) -> None:
        """The idle check (rule 2), every idle_ms/8 of processing time; then advance W."""
        if not self._started:
            self._start(now)
        idle_ns = self.idle_ns
        idle, paused, eff = self._idle, self._paused, self._eff
        mark_wm, mark_t = self._mark_wm, self._mark_t
        for s in range(self._k):
            if idle[s]:
                continue
            if paused[s] or eff[s] != mark_wm[s]:
                mark_wm[s] = eff[s]
                mark_t[s] = now
            elif now - mark_t[s] >= idle_ns:
                idle[s] = True
                self._idle_wm[s] = eff[s]
                eff[s] = _INF
        self._slow, m, self._floor2 = _lowest(eff)
        if m == _INF:  # every system is idle: the highest watermark stands for all of them
            m = max(self._idle_wm)
        self._check_at = now + self._period
        if m > _NEG:
            m -= self.lateness_ns
            if m > self._W:
                self._W = m
                if m >= self._close_at:
                    self._close_through(m)

    def _close_through(self, W: int, *, watermark: int | None = None) -> None:
        """Finalise every transaction whose bucket ends at or below W; expire old tombstones."""
        gran = self.granularity_ns
        upto = (W + 1) // gran  # the buckets below this one end at or below W
        buckets, live, tombq = self._buckets, self._live, self._tombq
        out = self._out.append
        now = self._now
        wmark = self._W if watermark is None else watermark
        k = self._k
        ic = k + 2
        emit = self.emit_matched
        b = self._next_bucket
        matched = 0
        closed = 0
        opened = len(live) - self._tombstones
        if opened > self._peak_open:  # open transactions only grow between two closings
            self._peak_open = opened
        while b < upto and buckets:
            lst = buckets.pop(b, None)
            if lst is None:
                if b == _NEG or upto - b > 64:  # jump over an empty stretch
                    b = min(min(buckets), upto)
                else:
                    b += 1
                continue
            for txn in lst:
                st = live[txn]
                if st[ic] == k:
                    matched += 1
                    if emit:
                        out(_new(Verdict, (_MATCHED, txn, None, (), (), st[k], now, wmark)))
                else:
                    self._exceptions(txn, st, now, wmark)
                st[ic] = _CLOSED
            closed += len(lst)
            tombq.append((b * gran + gran - 1, lst))
            b += 1
        self._next_bucket = max(b, upto)
        self._close_at = self._next_bucket * gran + gran - 1
        self._open_from = self._next_bucket * gran
        self._matched += matched
        self._tombstones += closed
        if self._tombstones > self._peak_tomb:
            self._peak_tomb = self._tombstones
        # A tombstone goes once every event time its transaction may still have (up to the end of its
        # bucket + L) lies in a final bucket, where rule 5 calls any event late anyway.
        horizon = self._open_from - self.lateness_ns
        while tombq and tombq[0][0] < horizon:
            lst = tombq.popleft()[1]
            for txn in lst:
                del live[txn]
            self._tombstones -= len(lst)

    def _exceptions(self, txn: str, st: list, now: int, wmark: int) -> None:
        """Verdicts of a transaction that is not a clean match (rule 4); marks its missing slots."""
        systems = self.systems
        per_system: list[tuple[Record, ...]] = []
        for s in range(self._k):
            slot = st[s]
            if slot is None:
                st[s] = _GONE
                recs: tuple[Record, ...] = ()
            else:
                recs = tuple(sorted(slot, key=_by_time)) if type(slot) is list else (slot,)
            per_system.append(recs)
        amounts = tuple(recs[0][2] if recs else None for recs in per_system)
        t_first = st[self._k]
        emitted = False
        for s, recs in enumerate(per_system):
            if not recs:
                self._emit(_new(Verdict, (_MISSING, txn, systems[s], (), amounts, t_first, now, wmark)))
                emitted = True
        for s, recs in enumerate(per_system):
            if len(recs) > 1:
                ids = tuple(r[3] for r in recs)
                self._emit(_new(Verdict, (_DUPLICATE, txn, systems[s], ids, amounts, t_first, now, wmark)))
                emitted = True
        every = [r[2] for recs in per_system for r in recs]
        if len(set(every)) > 1:
            counts = Counter(every)
            best = max(counts.values())
            majority = next(a for a in every if counts[a] == best)  # ties: the first system's amount
            odd = next(s for s, recs in enumerate(per_system) if any(r[2] != majority for r in recs))
            self._emit(_new(Verdict, (_MISMATCHED, txn, systems[odd], (), amounts, t_first, now, wmark)))
            emitted = True
        if not emitted:  # cannot happen (dirty means a missing, extra or differing event), but never lose one
            self._emit(_new(Verdict, (_MATCHED, txn, None, (), (), t_first, now, wmark)))

    def _emit(self, verdict: Verdict) -> None:
        self._counts[verdict.kind] += 1
        self._out.append(verdict)

    def _again(self, st: list, s: int, r: Record, W: int) -> None:
        """An event for a system whose slot is taken: redelivery, duplicate, or late (rules 5, 6)."""
        slot = st[s]
        recs = () if slot is _GONE else slot if type(slot) is list else (slot,)
        for x in recs:
            if x[3] == r[3] and x[2] == r[2] and x[4] == r[4]:
                self._redeliveries += 1
                return
        if st[self._k + 2] == _CLOSED:
            self._late_event(r, W)
            return
        if type(slot) is list:
            slot.append(r)
        else:
            st[s] = [slot, r]
        st[self._k + 2] = _DIRTY

    def _late_event(self, r: Record, W: int) -> None:
        """Rule 5: an event for a transaction that is no longer open."""
        txn, s, amount, eid, t, _arr = r
        self._late += 1
        self._emit(_new(Verdict, (_LATE, txn, self.systems[s], (eid,), (amount,), t, self._now, W)))


# ---------------------------------------------------------------------------------------------
# Flow control


@dataclass(frozen=True, slots=True)
class ReadPlan:
    order: tuple[str, ...]
    """The systems to read, most urgent first (the laggard first; idle systems last, to notice them wake)."""
    paused: frozenset[str]
    """Systems not to read now: tell the reconciler with ``set_paused`` and stop receiving from them."""


@dataclass(frozen=True, slots=True)
class ReadPlanner:
    """Per-topic pacing, so that one delayed system does not make the others pile up in memory.

    Rules, over the active (non-idle) systems; ``floor`` is the lowest
    watermark among them (minus infinity if one has not delivered yet):

    - the *slowest* active system (lowest watermark, then system order) is
      never paused, nor is an idle one: reading always makes progress, either
      the laggard catches up or it goes idle and stops holding the others back;
    - any other active system is paused if its watermark is more than
      ``max_skew_ms`` above ``floor``, if the caller already buffers
      ``max_buffered`` of its events, or if the reconciler holds
      ``max_open`` open transactions: its events then wait in the broker, not
      in memory;
    - the order to read is the unpaused active systems by ascending watermark
      (the laggard first), then the idle ones (to notice them wake up).

    So open transactions stay below about ``rate x (max_skew + lateness)``
    and ``max_open``, whichever is smaller, however far one system lags.
    """

    max_skew_ms: float = 1_000.0
    max_buffered: int = 10_000
    max_open: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_skew_ms < 0:
            raise ConfigError(f"read planner: max_skew_ms must be >= 0, got {self.max_skew_ms}")
        if self.max_buffered < 1 or self.max_open < 1:
            raise ConfigError("read planner: max_buffered and max_open must be >= 1")

    def plan(self, snapshot: FlowSnapshot) -> ReadPlan:
        n = len(snapshot.systems)
        if not (len(snapshot.watermarks_ns) == len(snapshot.buffered) == len(snapshot.idle) == n):
            raise ValueError("read planner: a snapshot needs one watermark, buffered count and idle flag per system")
        wms = [_NEG if w is None else w for w in snapshot.watermarks_ns]
        active = [i for i in range(n) if not snapshot.idle[i]]
        idle = sorted((i for i in range(n) if snapshot.idle[i]), key=lambda i: (wms[i], i))
        if not active:
            return ReadPlan(tuple(snapshot.systems[i] for i in idle), frozenset())
        slowest = min(active, key=lambda i: (wms[i], i))
        floor = wms[slowest]
        skew = round(self.max_skew_ms * 1e6)
        full = snapshot.open_transactions >= self.max_open
        paused = {i for i in active if i != slowest and
                  (full or wms[i] - floor > skew or snapshot.buffered[i] >= self.max_buffered)}
        readable = sorted((i for i in active if i not in paused), key=lambda i: (wms[i], i)) + idle
        return ReadPlan(tuple(snapshot.systems[i] for i in readable),
                        frozenset(snapshot.systems[i] for i in paused))
