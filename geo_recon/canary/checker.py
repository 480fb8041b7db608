"""The canary's streaming checker: every message across regions accounted for, in bounded memory.

Pure and driven by the caller (the billing reconciler's rules are the model):
it never reads a clock or a socket. Every event carries its time ``t`` (ns);
the checker's processing clock is ``now = max(now, t)`` over the events it was
given and the times passed to :meth:`CanaryChecker.advance`.

The rules, exactly
------------------

A message is one ``(producer, seq)``; its producer belongs to one ``origin``
region; every region (the origin too) is expected to deliver it once.
``D`` is ``deadline_s``, ``H`` is ``horizon_s`` (how long a decided message is
remembered, for duplicates and late deliveries).

1. **Outcome.** ``sent`` opens the message (pending). ``acked`` makes it expected
   at ack time ``A``; ``failed`` (refused, timed out, unknown) makes it not
   expected: it is never lost, and its deliveries only count as delivered.
2. **Due time.** An acked message is due at ``A + D``; a failed one at its
   completion time ``+ D``; a pending one (no outcome yet) at its send time
   ``+ 2D`` (then it is treated as failed: its outcome is unknown).
3. **Watermark.** ``now - D`` passes ack times in order: before applying an event
   at ``t``, every message whose due time is below ``t`` is *decided*. An acked
   message decided with no delivery in region R is **lost** in R (origin -> R).
   A delivery at exactly ``A + D`` is in time.
4. **Deliveries.** The first delivery of a message in R counts as *delivered*,
   and its lag (delivery time minus ack time, at least 0; observed at the ack if
   the delivery came first) goes into the pair's histogram. It is **reordered** if
   a higher seq of the same producer was already delivered first-time in R. A
   later delivery in R is a **redelivery** (same ``msg_id``) or a **duplicate**
   (another ``msg_id``). A first delivery in R after the message was counted
   lost there is **late** (the loss stays counted).
5. **Eviction.** A decided message is remembered until its due time ``+ H``.
   After that, a delivery of any seq at or below the highest seq forgotten of a
   known producer is **late** (beyond the horizon); a delivery of a producer
   never seen, or of a seq never sent, is **unexpected**.
6. **Exposure** (the RPO if the origin died now): the acked messages of an
   origin, not yet decided, delivered in no region other than the origin.
   **Pending** per pair: acked, not yet decided, not yet delivered in R.

Memory is therefore about ``rate x (D + H + outcome delay)`` messages per origin,
whatever the run's length; sent/ack/delivery events must reach the checker in
about the order they happened (the caller's queue), and deliveries of an
origin's message may come before its ack.

Restarts: :meth:`CanaryChecker.to_state` and :meth:`CanaryChecker.from_state`
carry everything; the time the canary was down is added to every due time, so
its own downtime never turns into loss.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from geo_recon.canary.anomalies import CanaryAnomaly
from geo_recon.canary.cases import CanaryCase, DuplicatedCase, LateCase, LostCase, ReorderedCase
from geo_recon.errors import ConfigError

#: Lag histogram buckets (seconds): 5 ms to 10 minutes.
LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
STATE_VERSION = 1

# Entry layout: a list per message (one object, one lookup on the hot path).
_PROD, _SEQ, _ORIG, _SENT, _ACK, _ST, _DUE, _EXPOSED, _SLOTS = range(9)
# States.
_PENDING, _OK, _UNKNOWN, _DECIDED_OK, _DECIDED_NOT = range(5)
_NEVER = 1 << 62


class _Lost:
    """The slot of a region in which an acked message was counted lost."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LOST"


LOST = _Lost()


class _Early(tuple):
    """A delivery that came before its message's ack: (msg_id, time); the lag waits for the ack."""

    __slots__ = ()


PAIR_COUNTERS = ("delivered", "lost", "late", "duplicated", "redelivered", "reordered", "unexpected")


@dataclass(frozen=True, slots=True)
class LagHistogram:
    buckets_s: tuple[float, ...]
    counts: tuple[int, ...]
    """Non-cumulative: counts[i] observations <= buckets_s[i] (and above the previous); the last is +Inf."""
    sum_s: float
    count: int

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (None when empty)."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for bound, n in zip((*self.buckets_s, float("inf")), self.counts):
            seen += n
            if seen >= rank:
                return bound
        return float("inf")


@dataclass(frozen=True, slots=True)
class PairView:
    origin: str
    region: str
    delivered: int
    lost: int
    late: int
    duplicated: int
    redelivered: int
    reordered: int
    unexpected: int
    pending: int
    """Acked, not yet decided, not yet delivered here."""
    oldest_pending_s: float
    """Age of the oldest of them (0 when none): the replication lag as it stands now."""
    lag: LagHistogram
    last_delivery_ns: int | None


@dataclass(frozen=True, slots=True)
class OriginView:
    origin: str
    sent: int
    acked: int
    failed: int
    exposure: int
    """Acked here, not yet delivered in any other region (and not yet decided)."""
    exposure_oldest_s: float
    last_ack_ns: int | None


@dataclass(frozen=True, slots=True)
class CanarySnapshot:
    now_ns: int
    regions: tuple[str, ...]
    deadline_s: float
    origins: tuple[OriginView, ...]
    pairs: tuple[PairView, ...]
    live: int
    """Messages held (undecided and remembered): the checker's memory."""
    peak_live: int


class CanaryChecker:
    """See the module docstring for the rules."""

    def __init__(self, regions: Sequence[str], *, deadline_s: float, horizon_s: float | None = None,
                 max_cases: int = 20) -> None:
        regions = tuple(regions)
        if not regions or len(set(regions)) != len(regions):
            raise ConfigError(f"canary checker: needs 1 or more distinct regions, got {list(regions)}")
        if not deadline_s > 0:
            raise ConfigError(f"canary checker: the deadline must be > 0 s, got {deadline_s}")
        horizon_s = deadline_s if horizon_s is None else horizon_s
        if horizon_s < 0:
            raise ConfigError(f"canary checker: the horizon must be >= 0 s, got {horizon_s}")
        self.regions = regions
        self.deadline_s = float(deadline_s)
        self.horizon_s = float(horizon_s)
        self._deadline = round(deadline_s * 1e9)
        self._horizon = round(horizon_s * 1e9)
        self._r = {name: i for i, name in enumerate(regions)}
        k = len(regions)
        self._k = k
        self._now = 0
        self._wake = _NEVER  # the earliest due or forget time at a queue's head: below it, nothing to decide
        self._live: dict[str, dict[int, list]] = {}  # producer -> seq -> entry (undecided and tombstones)
        self._origin_of: dict[str, int] = {}  # producer -> origin index
        self._forgot: dict[str, int] = {}  # producer -> highest seq forgotten (rule 5)
        self._pending_q: deque[list] = deque()  # by send time: entries that may still be pending
        self._done_q: deque[list] = deque()  # by completion time: acked or failed, undecided
        self._tomb_q: deque[tuple[int, list]] = deque()  # (forget at, entry), in decision order
        self._hi: list[dict[str, int]] = [{} for _ in range(k)]  # per region: producer -> highest first-time seq
        self._count = 0  # entries held
        self._peak = 0
        # Per origin.
        self._sent = [0] * k
        self._acked = [0] * k
        self._failed = [0] * k
        self._exposure = [0] * k
        self._last_ack: list[int | None] = [None] * k
        # Per pair (origin * k + region).
        n = k * k
        self._c = {name: [0] * n for name in PAIR_COUNTERS}
        self._delivered, self._lost_c, self._late_c = self._c["delivered"], self._c["lost"], self._c["late"]
        self._dup_c, self._redel_c, self._reord_c = self._c["duplicated"], self._c["redelivered"], self._c["reordered"]
        self._unexp_c = self._c["unexpected"]
        self._pending = [0] * n
        self._last_delivery: list[int | None] = [None] * n
        self._hist = [[0] * (len(LAG_BUCKETS_S) + 1) for _ in range(n)]
        self._hist_sum = [0.0] * n
        self._hist_n = [0] * n
        self._cases: dict[str, deque[CanaryCase]] = {a.value: deque(maxlen=max_cases) for a in CanaryAnomaly}
        self._new_cases: list[CanaryCase] = []

    # ------------------------------------------------------------------ events

    def sent(self, producer: str, origin: str, seq: int, t_ns: int) -> None:
        """``producer`` (of region ``origin``) invoked a send of ``seq`` at ``t_ns``."""
        if t_ns > self._now:
            self._now = t_ns
        if self._now > self._wake:
            self._run_due()
        o = self._r[origin]
        known = self._origin_of.setdefault(producer, o)
        if known != o:
            raise ValueError(f"producer {producer!r} belongs to {self.regions[known]}, not {origin}")
        per = self._live.get(producer)
        if per is None:
            per = self._live[producer] = {}
        due = self._now + 2 * self._deadline
        entry = [producer, seq, o, t_ns, None, _PENDING, due, False] + [None] * self._k
        per[seq] = entry
        self._pending_q.append(entry)
        if due < self._wake:
            self._wake = due
        self._sent[o] += 1
        self._count += 1
        if self._count > self._peak:
            self._peak = self._count

    def acked(self, producer: str, seq: int, t_ns: int) -> None:
        """The send of ``seq`` was acknowledged (stored in its origin region) at ``t_ns``."""
        if t_ns > self._now:
            self._now = t_ns
        if self._now > self._wake:
            self._run_due()
        per = self._live.get(producer)
        entry = None if per is None else per.get(seq)
        if entry is None or entry[_ST] != _PENDING:
            return  # an ack for a message already decided (unknown outcome) or never sent: nothing expected
        o = entry[_ORIG]
        entry[_ST] = _OK
        entry[_ACK] = t_ns
        due = entry[_DUE] = self._now + self._deadline
        self._done_q.append(entry)
        if due < self._wake:
            self._wake = due
        self._acked[o] += 1
        self._last_ack[o] = t_ns
        k = self._k
        base = o * k
        elsewhere = False
        for r in range(k):
            slot = entry[_SLOTS + r]
            if slot is None:
                self._pending[base + r] += 1
            else:
                if r != o:
                    elsewhere = True
                if type(slot) is _Early:  # delivered before the ack: its lag is known now
                    self._observe(base + r, max(0, slot[1] - t_ns))
                    entry[_SLOTS + r] = slot[0]
        if not elsewhere and k > 1:
            entry[_EXPOSED] = True
            self._exposure[o] += 1

    def failed(self, producer: str, seq: int, t_ns: int) -> None:
        """The send of ``seq`` was refused, or its outcome is unknown: it is not expected anywhere."""
        self._advance(t_ns)
        entry = self._entry(producer, seq)
        if entry is None or entry[_ST] != _PENDING:
            return
        entry[_ST] = _UNKNOWN
        due = entry[_DUE] = self._now + self._deadline
        self._done_q.append(entry)
        if due < self._wake:
            self._wake = due
        self._failed[entry[_ORIG]] += 1

    def delivered(self, region: str, producer: str, seq: int, msg_id: Hashable, t_ns: int) -> None:
        """Region ``region``'s consumer received ``(producer, seq)`` stored as ``msg_id``, at ``t_ns``."""
        if t_ns > self._now:
            self._now = t_ns
        if self._now > self._wake:
            self._run_due()
        r = self._r[region]
        k = self._k
        per = self._live.get(producer)
        entry = None if per is None else per.get(seq)
        if entry is None:
            o = self._origin_of.get(producer)
            if o is not None and seq <= self._forgot.get(producer, -1):
                self._late_c[o * k + r] += 1
                self._case(CanaryAnomaly.LATE, LateCase(self.regions[o], region, producer, seq, t_ns, True))
            else:
                origin = self._r.get(producer.split("/", 1)[0], r) if o is None else o
                self._unexp_c[origin * k + r] += 1
            return
        o = entry[_ORIG]
        p = o * k + r
        slot = entry[_SLOTS + r]
        if slot is None:
            self._delivered[p] += 1
            self._last_delivery[p] = t_ns
            hi = self._hi[r]
            top = hi.get(producer, -1)
            if seq < top:
                self._reord_c[p] += 1
                self._case(CanaryAnomaly.REORDERED, ReorderedCase(self.regions[o], region, producer, seq, top))
            else:
                hi[producer] = seq
            state = entry[_ST]
            if state == _OK:
                self._observe(p, max(0, t_ns - entry[_ACK]))
                self._pending[p] -= 1
                entry[_SLOTS + r] = msg_id
            elif state == _PENDING:
                entry[_SLOTS + r] = _Early((msg_id, t_ns))
            else:
                entry[_SLOTS + r] = msg_id
            if r != o and entry[_EXPOSED]:
                entry[_EXPOSED] = False
                self._exposure[o] -= 1
        elif slot is LOST:
            entry[_SLOTS + r] = msg_id
            self._late_c[p] += 1
            self._last_delivery[p] = t_ns
            self._case(CanaryAnomaly.LATE, LateCase(self.regions[o], region, producer, seq, t_ns, False))
        else:
            first = slot[0] if type(slot) is _Early else slot
            if first == msg_id:
                self._redel_c[p] += 1
            else:
                self._dup_c[p] += 1
                self._case(CanaryAnomaly.DUPLICATED,
                           DuplicatedCase(self.regions[o], region, producer, seq, str(first), str(msg_id)))

    def advance(self, now_ns: int) -> None:
        """Processing time passed without events: decide what is due."""
        self._advance(now_ns)

    # ------------------------------------------------------------------ views

    @property
    def now_ns(self) -> int:
        return self._now

    def live(self) -> int:
        return self._count

    def drain_cases(self) -> list[CanaryCase]:
        """Cases found since the last drain, in the order they were."""
        out, self._new_cases = self._new_cases, []
        return out

    def recent_cases(self) -> dict[str, list[CanaryCase]]:
        """The last few cases of each kind (bounded)."""
        return {kind: list(cases) for kind, cases in self._cases.items() if cases}

    def snapshot(self) -> CanarySnapshot:
        k, now = self._k, self._now
        oldest_pending = [0.0] * (k * k)
        oldest_exposed = [0.0] * k
        todo = {p for p in range(k * k) if self._pending[p]}
        todo_exp = {o for o in range(k) if self._exposure[o]}
        for entry in self._done_q:  # completion order: the first one found is the oldest
            if not (todo or todo_exp):
                break
            if entry[_ST] != _OK:
                continue
            o = entry[_ORIG]
            age = max(0.0, (now - entry[_ACK]) / 1e9)
            if o in todo_exp and entry[_EXPOSED]:
                oldest_exposed[o] = age
                todo_exp.discard(o)
            for r in range(k):
                p = o * k + r
                if p in todo and entry[_SLOTS + r] is None:
                    oldest_pending[p] = age
                    todo.discard(p)
        origins = tuple(OriginView(self.regions[o], self._sent[o], self._acked[o], self._failed[o],
                                   self._exposure[o], oldest_exposed[o], self._last_ack[o]) for o in range(k))
        pairs = []
        for o in range(k):
            for r in range(k):
                p = o * k + r
                pairs.append(PairView(
                    self.regions[o], self.regions[r], *(self._c[name][p] for name in PAIR_COUNTERS),
                    pending=self._pending[p], oldest_pending_s=oldest_pending[p],
                    lag=LagHistogram(LAG_BUCKETS_S, tuple(self._hist[p]), self._hist_sum[p], self._hist_n[p]),
                    last_delivery_ns=self._last_delivery[p]))
        return CanarySnapshot(now, self.regions, self.deadline_s, origins, tuple(pairs), self._count,
                              max(self._peak, self._count))

    # ------------------------------------------------------------------ internals

    def _entry(self, producer: str, seq: int) -> list | None:
        per = self._live.get(producer)
        return None if per is None else per.get(seq)

    def _observe(self, p: int, lag_ns: int) -> None:
        s = lag_ns / 1e9
        self._hist[p][bisect_left(LAG_BUCKETS_S, s)] += 1
        self._hist_sum[p] += s
        self._hist_n[p] += 1

    def _case(self, kind: CanaryAnomaly, case: CanaryCase) -> None:
        self._cases[kind.value].append(case)
        if len(self._new_cases) < 1000:  # a caller that never drains must not grow us
            self._new_cases.append(case)

    def _advance(self, t: int) -> None:
        if t > self._now:
            self._now = t
        if self._now > self._wake:
            self._run_due()

    def _run_due(self) -> None:
        now = self._now
        done, pending, tomb = self._done_q, self._pending_q, self._tomb_q
        # Decide in due order across both queues, so that the tombstones are in forget order.
        while True:
            while pending and pending[0][_ST] != _PENDING:
                pending.popleft()  # completed since: it waits in the done queue
            d = done[0][_DUE] if done else None
            p = pending[0][_DUE] if pending else None
            if p is not None and p < now and (d is None or p < d):
                entry = pending.popleft()  # no outcome in 2D: unknown (rule 2)
                self._failed[entry[_ORIG]] += 1
                self._decide(entry)
            elif d is not None and d < now:
                self._decide(done.popleft())
            else:
                break
        while tomb and tomb[0][0] < now:
            self._forget(tomb.popleft()[1])
        wake = _NEVER
        if done:
            wake = done[0][_DUE]
        if pending and pending[0][_DUE] < wake:
            wake = pending[0][_DUE]  # perhaps stale (completed since): then this only wakes us early
        if tomb and tomb[0][0] < wake:
            wake = tomb[0][0]
        self._wake = wake

    def _decide(self, entry: list) -> None:
        """Rule 3: the watermark passed this message's due time."""
        k = self._k
        if entry[_ST] == _OK:
            o = entry[_ORIG]
            base = o * k
            lost_in = [r for r in range(k) if entry[_SLOTS + r] is None]
            if lost_in:
                seen = tuple(self.regions[r] for r in range(k)
                             if entry[_SLOTS + r] is not None)
                for r in lost_in:
                    entry[_SLOTS + r] = LOST
                    self._pending[base + r] -= 1
                    self._lost_c[base + r] += 1
                    self._case(CanaryAnomaly.LOST, LostCase(self.regions[o], self.regions[r], entry[_PROD],
                                                            entry[_SEQ], entry[_ACK], self.deadline_s, seen))
            if entry[_EXPOSED]:
                entry[_EXPOSED] = False
                self._exposure[o] -= 1
            entry[_ST] = _DECIDED_OK
        else:
            entry[_ST] = _DECIDED_NOT
        for r in range(k):
            slot = entry[_SLOTS + r]
            if type(slot) is _Early:
                entry[_SLOTS + r] = slot[0]
        self._tomb_q.append((entry[_DUE] + self._horizon, entry))

    def _forget(self, entry: list) -> None:
        """Rule 5: past the horizon."""
        producer, seq = entry[_PROD], entry[_SEQ]
        per = self._live[producer]
        del per[seq]
        if seq > self._forgot.get(producer, -1):
            self._forgot[producer] = seq
        self._count -= 1

    # ------------------------------------------------------------------ checkpoints

    def to_state(self) -> dict[str, Any]:
        """Everything needed to go on counting after a restart (JSON values)."""
        entries: list[list] = []
        for queue, where in ((self._pending_q, "p"), (self._done_q, "d")):
            for e in queue:
                if where == "p" and e[_ST] != _PENDING:
                    continue
                entries.append([where, *e[:_SLOTS], [_enc_slot(s) for s in e[_SLOTS:]]])
        for forget_at, e in self._tomb_q:
            entries.append(["t", *e[:_SLOTS], [_enc_slot(s) for s in e[_SLOTS:]], forget_at])
        return {
            "version": STATE_VERSION, "regions": list(self.regions), "deadline_s": self.deadline_s,
            "horizon_s": self.horizon_s, "now_ns": self._now, "peak": self._peak,
            "origin_of": self._origin_of, "forgot": self._forgot, "hi": self._hi,
            "sent": self._sent, "acked": self._acked, "failed": self._failed, "last_ack": self._last_ack,
            "counters": self._c, "last_delivery": self._last_delivery,
            "hist": self._hist, "hist_sum": self._hist_sum, "hist_n": self._hist_n,
            "entries": entries,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], *, now_ns: int, regions: Sequence[str], deadline_s: float,
                   horizon_s: float | None = None) -> "CanaryChecker":
        """Restore a checker saved by :meth:`to_state`. The time between the save and ``now_ns`` (the
        canary's downtime) is added to every due time: waiting is suspended while nobody watches."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"canary state: version {state.get('version')!r}, expected {STATE_VERSION}")
        if list(state["regions"]) != list(regions):
            raise ConfigError(f"canary state: saved for regions {state['regions']}, now {list(regions)}; "
                              "remove the state file to start counting afresh")
        checker = cls(regions, deadline_s=deadline_s, horizon_s=horizon_s)
        down = max(0, now_ns - int(state["now_ns"]))
        checker._now = max(now_ns, int(state["now_ns"]))
        checker._peak = int(state["peak"])
        checker._origin_of = {p: int(o) for p, o in state["origin_of"].items()}
        checker._forgot = {p: int(s) for p, s in state["forgot"].items()}
        checker._hi = [{p: int(s) for p, s in hi.items()} for hi in state["hi"]]
        checker._sent, checker._acked, checker._failed = list(state["sent"]), list(state["acked"]), list(state["failed"])
        checker._last_ack = list(state["last_ack"])
        for name in PAIR_COUNTERS:
            checker._c[name][:] = state["counters"][name]
        checker._last_delivery = list(state["last_delivery"])
        checker._hist = [list(h) for h in state["hist"]]
        checker._hist_sum, checker._hist_n = list(state["hist_sum"]), list(state["hist_n"])
        k = checker._k
        checker._wake = 0  # the next event looks at the queues' heads
        for item in state["entries"]:
            where = item[0]
            entry = [*item[1:1 + _SLOTS], *(_dec_slot(s) for s in item[1 + _SLOTS])]
            entry[_DUE] += down
            checker._live.setdefault(entry[_PROD], {})[entry[_SEQ]] = entry
            checker._count += 1
            o = entry[_ORIG]
            if where == "p":
                checker._pending_q.append(entry)
            elif where == "d":
                checker._done_q.append(entry)
            else:
                checker._tomb_q.append((int(item[2 + _SLOTS]) + down, entry))
            if entry[_ST] == _OK:
                for r in range(k):
                    if entry[_SLOTS + r] is None:
                        checker._pending[o * k + r] += 1
                if entry[_EXPOSED]:
                    checker._exposure[o] += 1
        return checker


def _enc_slot(slot: Any) -> Any:
    if slot is None:
        return None
    if slot is LOST:
        return {"lost": True}
    if type(slot) is _Early:
        return {"early": [slot[0], slot[1]]}
    return {"id": slot}


def _dec_slot(slot: Any) -> Any:
    if slot is None:
        return None
    if "lost" in slot:
        return LOST
    if "early" in slot:
        return _Early((slot["early"][0], int(slot["early"][1])))
    return slot["id"]
