"""Properties of the streaming reconciler, against the batch reference and the generator's ground truth.

Scenarios are drawn by hypothesis: systems with their delays and jitters,
injected business errors, per-system transport to the reconciling region
(constant skew plus jitter), and replication faults (lost, delayed,
redelivered events, a region that stops).
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon.billing.classify import Label, ReplicationFacts, classify
from geo_recon.billing.events import BillingSpec, Generated, SystemSpec, generate
from geo_recon.billing.reconciler import ReadPlanner, Reconciler, VerdictKind
from geo_recon.billing.reference import batch_reconcile, outcomes
from geo_recon.billing.sim import Transport, deliver, drive, run_paced

MS = 1_000_000
NAMES = ("order", "payment", "ledger", "audit")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Scenario:
    """One drawn setup. A plain class, so that hypothesis prints its repr (the spec), not its events."""

    def __init__(self, spec: BillingSpec, generated: Generated, transport: dict[str, Transport], jitter_ms: float,
                 lateness_ms: float) -> None:
        self.spec = spec
        self.generated = generated
        self.transport = transport
        self.jitter_ms = jitter_ms  # the largest transport jitter: the delivery disorder within one topic
        self.lateness_ms = lateness_ms

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep the events out
        return (f"Scenario(spec={self.spec!r}, transport={self.transport!r}, jitter_ms={self.jitter_ms!r}, "
                f"lateness_ms={self.lateness_ms!r})")

    @property
    def systems(self) -> tuple[str, ...]:
        return self.spec.system_names

    def engine(self, **kw: object) -> Reconciler:
        # idle_ms far above any silence a healthy run has (skew <= 3 s, rate >= 20/s).
        return Reconciler(self.systems, lateness_ms=self.lateness_ms, idle_ms=kw.pop("idle_ms", 20_000), **kw)

    def keys(self) -> list[tuple[str, str]]:
        return sorted({(e.system, e.txn_id) for e in self.generated.events})


@st.composite
def scenarios(draw: st.DrawFn, *, min_txns: int = 1, max_txns: int = 120) -> Scenario:
    k = draw(st.integers(2, 4))
    systems = tuple(SystemSpec(NAMES[i], f"r{i}", draw(st.floats(0, 300)), draw(st.floats(0, 100))) for i in range(k))
    spec = BillingSpec(systems=systems, transactions=draw(st.integers(min_txns, max_txns)),
                       rate_per_s=draw(st.floats(20, 3000)), error_rate=draw(st.sampled_from([0.0, 0.1, 0.5])),
                       seed=draw(st.integers(0, 2**32)), start_ns=draw(st.integers(0, 10**18)),
                       duplicate_gap_ms=draw(st.floats(0, 20)))
    jitter = draw(st.floats(0, 200))
    transport = {s.name: Transport(draw(st.floats(0, 3000)), draw(st.floats(0, jitter))) for s in systems}
    lateness = spec.max_spread_ms() + jitter + draw(st.floats(0, 100))
    return Scenario(spec, generate(spec), transport, jitter, lateness)


def run(s: Scenario, *, seed: int = 0, **faults) -> tuple[list, ReplicationFacts, Reconciler]:
    delivery = deliver(s.generated.events, transport=s.transport, seed=seed, **faults)
    rec = s.engine()
    return drive(rec, delivery.arrivals), delivery.facts, rec


@SETTINGS
@given(scenarios())
def test_without_faults_it_agrees_with_the_batch_reference_and_finds_every_injected_error_once(s):
    verdicts, facts, rec = run(s)
    assert outcomes(verdicts) == outcomes(batch_reconcile(s.generated.events, s.systems))
    summary = classify(verdicts, s.generated.injected, facts)
    assert summary.found == summary.injected == len(s.generated.injected)
    assert summary.found_more_than_once == () and summary.missed == ()
    assert set(summary.exceptions) <= {Label.BUSINESS}, "no false exception without replication faults"
    assert summary.late_events == {} and rec.stats().late == 0
    assert summary.valid
    assert summary.transactions == s.spec.transactions


@SETTINGS
@given(scenarios(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_reordering_and_delaying_within_the_bound_changes_nothing(s, seed_a, seed_b):
    a, _f, _r = run(s, seed=seed_a)
    # Another delivery: other jitter draws, and every system's constant delay changed as well.
    shifted = Scenario(s.spec, s.generated, {n: Transport(t.delay_ms * 0.5 + 700, t.jitter_ms)
                                             for n, t in s.transport.items()}, s.jitter_ms, s.lateness_ms)
    b, _f, _r = run(shifted, seed=seed_b)
    assert outcomes(a) == outcomes(b)


@SETTINGS
@given(scenarios(), st.data())
def test_lost_and_late_events_are_reported_and_labelled_as_replication_never_unexplained(s, data):
    keys = s.keys()
    lose = data.draw(st.sets(st.sampled_from(keys), max_size=max(1, len(keys) // 5)))
    late_keys = data.draw(st.sets(st.sampled_from(keys), max_size=max(1, len(keys) // 5))) - lose
    beyond = s.lateness_ms + max(t.delay_ms for t in s.transport.values()) + s.jitter_ms
    delays = {k: beyond + data.draw(st.floats(1, 5000)) for k in late_keys}
    verdicts, facts, _rec = run(s, lose=lose, delay_ms=delays)
    summary = classify(verdicts, s.generated.injected, facts)
    assert summary.unexplained == 0, [c for cases in summary.cases.values() for c in cases]
    assert summary.valid
    # Every injected error is found, or replication hid it on that very transaction.
    assert summary.found + len(summary.missed) == summary.injected
    assert all(m.masked_by for m in summary.missed)
    # What the faults did is visible: every lost key that belongs to a decided transaction is reported missing.
    decided = {v.txn_id for v in verdicts if v.kind != VerdictKind.LATE}
    missing = {(v.system, v.txn_id) for v in verdicts if v.kind == VerdictKind.MISSING}
    assert {k for k in lose if k[1] in decided} <= missing
    # And a delayed event is either joined in time, or reported: late, or missing (when it is the one absent).
    late = {(v.system, v.txn_id) for v in verdicts if v.kind == VerdictKind.LATE}
    assert late <= set(late_keys)
    assert {(v.system, v.txn_id) for v in verdicts if v.kind == VerdictKind.MISSING} <= set(lose) | set(late_keys) | {
        (i.system, i.txn_id) for i in s.generated.injected}


@SETTINGS
@given(scenarios(), st.data())
def test_redelivered_copies_are_never_duplicates(s, data):
    keys = s.keys()
    copies = data.draw(st.dictionaries(st.sampled_from(keys), st.floats(0, s.lateness_ms), max_size=10))
    clean, _f, _r = run(s)
    verdicts, _facts, rec = run(s, redeliver=copies)
    assert outcomes(v for v in verdicts if v.kind != VerdictKind.LATE) == outcomes(clean)
    events_per_key = {}
    for e in s.generated.events:
        events_per_key[(e.system, e.txn_id)] = events_per_key.get((e.system, e.txn_id), 0) + 1
    extra = sum(events_per_key[k] for k in copies)
    stats = rec.stats()
    assert stats.redeliveries + stats.late == extra
    # A copy can only be late once its transaction's tombstone is gone; with copies this close, it never is.
    assert stats.late == 0


def _longest_silence_ms(events) -> float:
    """The longest time between two consecutive events of one system, by event time."""
    times: dict[str, list[int]] = {}
    for e in events:
        times.setdefault(e.system, []).append(e.event_time_ns)
    for ts in times.values():
        ts.sort()
    gaps = [b - a for ts in times.values() for a, b in zip(ts, ts[1:])]
    return max(gaps, default=0) / MS


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(min_txns=400, max_txns=1500))
def test_memory_is_bounded_by_rate_times_window_not_by_run_length(s):
    _v, _f, rec = run(s)
    spec = s.spec
    skew = max(t.delay_ms for t in s.transport.values()) - min(t.delay_ms for t in s.transport.values())
    # The watermark is the slowest system's: it waits out a system's longest silence in event time, which is
    # longer than one transaction's interval when business errors leave that system's events out (4 missing
    # payments in a row at 20/s: 250 ms, 6 transactions open).
    gap = max(1000 / spec.rate_per_s + max(x.jitter_ms for x in spec.systems) + spec.duplicate_gap_ms,
              _longest_silence_ms(s.generated.events))
    window_ms = s.lateness_ms + skew + s.jitter_ms + spec.max_spread_ms() + gap + 1  # + the 1 ms bucket
    bound = math.ceil(spec.rate_per_s * window_ms / 1000) + 1
    stats = rec.stats()
    assert stats.peak_open <= bound
    assert stats.peak_tombstones <= math.ceil(spec.rate_per_s * (window_ms + s.lateness_ms) / 1000) + 1


def test_memory_stays_flat_when_the_run_gets_longer():
    peaks = []
    for n in (2_000, 8_000):
        spec = BillingSpec(systems=(SystemSpec("order", "a", 0, 10), SystemSpec("payment", "b", 30, 20),
                                    SystemSpec("ledger", "c", 60, 40)), transactions=n, rate_per_s=1000,
                           error_rate=0.05, seed=3)
        s = Scenario(spec, generate(spec), {"payment": Transport(500, 10)}, 10, spec.max_spread_ms() + 20)
        _v, _f, rec = run(s)
        peaks.append(rec.stats().peak_open)
    assert peaks[1] <= peaks[0] * 1.05 + 5
    assert peaks[1] < 1000  # about 1000 txn/s x (lateness + 0.5 s skew), far below the 8000 of the run


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(min_txns=200, max_txns=600), st.floats(0.2, 0.8))
def test_a_lost_region_is_noticed_by_the_idle_rule_and_labelled_replication_loss(s, cut):
    """The payment system's region goes away for good part-way through: everything after is lost."""
    events = s.generated.events
    t_cut = events[0].event_time_ns + cut * (events[-1].event_time_ns - events[0].event_time_ns)
    lost = {(e.system, e.txn_id) for e in events if e.system == "payment" and e.event_time_ns >= t_cut}
    delivery = deliver(events, transport=s.transport, seed=1, lose=lost)
    idle_ms = 2_000 + max(t.delay_ms for t in s.transport.values())
    rec = s.engine(idle_ms=idle_ms)
    # No finish: the worker keeps running and ticking after the last arrival; nothing more comes.
    verdicts = drive(rec, delivery.arrivals, finish=False, until_ns=delivery.arrivals[-1][0] + 2 * idle_ms * MS)
    assert "payment" in rec.stats().idle
    summary = classify(verdicts, s.generated.injected, delivery.facts)
    decided = {v.txn_id for v in verdicts if v.kind != VerdictKind.LATE}
    assert summary.exceptions.get(Label.UNEXPLAINED, 0) == 0 and summary.late_events == {}
    assert all(m.masked_by or m.error.txn_id not in decided for m in summary.missed)
    reported = {(v.system, v.txn_id) for v in verdicts if v.kind == VerdictKind.MISSING}
    assert {k for k in lost if k[1] in decided} <= reported
    # Every system is silent now, so W = the highest watermark - lateness: only the last lateness may wait.
    window_ms = s.lateness_ms + s.spec.max_spread_ms() + 1
    assert rec.stats().open <= math.ceil(s.spec.rate_per_s * window_ms / 1000) + 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(min_txns=300, max_txns=800), st.floats(1000, 5000))
def test_pacing_bounds_memory_when_one_system_lags_and_changes_no_verdict(s, lag_ms):
    slow = s.systems[-1]
    transport = {**{n: Transport(0, t.jitter_ms) for n, t in s.transport.items()},
                 slow: Transport(lag_ms, s.transport[slow].jitter_ms)}
    arrivals = deliver(s.generated.events, transport=transport, seed=2).arrivals
    skew_ms = 100.0
    free = run_paced(s.engine(), None, arrivals)
    paced = run_paced(s.engine(), ReadPlanner(max_skew_ms=skew_ms), arrivals)
    reference = outcomes(batch_reconcile(s.generated.events, s.systems))
    assert outcomes(free.verdicts) == outcomes(paced.verdicts) == reference
    rate = s.spec.rate_per_s
    window = s.lateness_ms + skew_ms + s.jitter_ms + s.spec.max_spread_ms() + 1000 / rate + 50
    assert paced.peak_open <= math.ceil(rate * window / 1000) + 16 + 1  # + one batch read at a time


@st.composite
def tight_runs(draw: st.DrawFn) -> tuple[list[tuple[int, BillingEvent]], list[BillingEvent], float]:
    """Events with every offset and delay chosen by hypothesis (so it can push them to the edges),
    and a lateness exactly equal to spread + delivery disorder: the tightest bound that must hold."""
    from geo_recon.billing.events import BillingEvent

    spread, jitter = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    skew = {name: draw(st.integers(0, 300)) for name in NAMES[:3]}
    gap = draw(st.integers(0, 15))
    events, arrivals = [], []
    for i in range(draw(st.integers(1, 25))):
        for name in NAMES[:3]:
            copies = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
            for c in range(copies):
                t = (i * gap + draw(st.integers(0, spread))) * MS
                e = BillingEvent(f"t{i}", name, "r", draw(st.sampled_from([100, 100, 100, 250])), i * 10 + c * 4 + NAMES.index(name), t)
                events.append(e)
                arrivals.append((t + (skew[name] + draw(st.integers(0, jitter))) * MS, len(arrivals), e))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    return [(a, e) for a, _n, e in arrivals], events, float(spread + jitter)


@settings(max_examples=300, deadline=None)
@given(tight_runs())
def test_at_the_exact_lateness_bound_nothing_is_late_and_the_result_is_the_batch_one(run_):  # tight
    arrivals, events, lateness = run_
    rec = Reconciler(NAMES[:3], lateness_ms=lateness, idle_ms=60_000)
    verdicts = drive(rec, arrivals)
    assert rec.stats().late == 0
    assert outcomes(verdicts) == outcomes(batch_reconcile(events, NAMES[:3]))
