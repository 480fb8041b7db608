"""`geo-recon billing bench`: the join engine alone, measured for real.

A seeded run (order, payment, ledger; 1% injected errors by default) is
streamed in arrival order (transport delays 0/30/60 ms +- jitter) in chunks of
freshly made records, as a worker would hand over decoded messages. Only
``offer_many`` and ``drain`` are timed; making the records is not. The figure
is events per second of the engine thread's CPU time (``thread_time``; wall
time is shown too, but on a shared machine it mostly measures the neighbours),
best and median of ``repeat`` runs. Memory: the process's peak RSS, the RSS
before the engine ran, and the engine's own high-water marks (open
transactions, tombstones) beside the bound rate x window that the design
promises. The first run's verdicts are checked: every injected error found,
nothing unexplained.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from geo_recon.billing.classify import Classification, classify
from geo_recon.billing.events import BillingSpec, SystemSpec, injected_errors
from geo_recon.billing.reconciler import Reconciler, Verdict, VerdictKind
from geo_recon.billing.sim import Transport, arrival_records
from geo_recon.errors import ConfigError

GOAL_EVENTS_PER_S = 500_000
SYSTEMS = (SystemSpec("order", "a", 0, 20), SystemSpec("payment", "b", 50, 40), SystemSpec("ledger", "c", 120, 60))
TRANSPORT = {"order": Transport(0, 5), "payment": Transport(30, 10), "ledger": Transport(60, 10)}


@dataclass(frozen=True, slots=True)
class BenchFigures:
    transactions: int
    events: int
    lateness_ms: float
    rate_per_s: float
    emit_matched: bool
    cpu_events_per_s: tuple[float, ...]
    """Per run, events / engine CPU seconds."""
    wall_events_per_s: tuple[float, ...]
    peak_open: int
    peak_tombstones: int
    window_bound: int
    """rate x (lateness + transport skew + jitter + spread + gap + 1 ms): the promised bound on open transactions."""
    baseline_rss_mib: float
    peak_rss_mib: float
    verdicts: dict[str, int]
    summary: Classification
    load_average: tuple[float, float, float]
    gc_collections: int
    notes: tuple[str, ...] = field(default=())

    @property
    def best(self) -> float:
        return max(self.cpu_events_per_s)

    @property
    def median(self) -> float:
        return statistics.median(self.cpu_events_per_s)

    @property
    def valid(self) -> bool:
        return self.summary.valid and self.summary.found == self.summary.injected


def _rss_mib() -> float:
    """Resident set size now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_bench(*, transactions: int, lateness_ms: float, rate_per_s: float = 10_000.0, error_rate: float = 0.01,
              seed: int = 1, chunk: int = 4096, repeat: int = 3, emit_matched: bool = True,
              progress: Callable[[str], None] = lambda _m: None) -> BenchFigures:
    if transactions < 1 or chunk < 1 or repeat < 1:
        raise ConfigError("billing bench: transactions, chunk and repeat must be >= 1")
    spec = BillingSpec(systems=SYSTEMS, transactions=transactions, rate_per_s=rate_per_s, error_rate=error_rate,
                       seed=seed)
    spec.validate()
    jitter = max(t.jitter_ms for t in TRANSPORT.values())
    notes = []
    if lateness_ms < spec.max_spread_ms() + jitter:
        notes.append(f"lateness {lateness_ms:g} ms is below the events' spread + disorder "
                     f"({spec.max_spread_ms() + jitter:g} ms): on-time events will be reported late")
    skew = max(t.delay_ms for t in TRANSPORT.values()) - min(t.delay_ms for t in TRANSPORT.values())
    gap = 1000 / rate_per_s + max(s.jitter_ms for s in SYSTEMS) + spec.duplicate_gap_ms
    window_ms = lateness_ms + skew + jitter + spec.max_spread_ms() + gap + 1
    bound = math.ceil(rate_per_s * window_ms / 1000) + 1

    baseline = _rss_mib()
    cpu_rates: list[float] = []
    wall_rates: list[float] = []
    peak_open = peak_tomb = 0
    verdict_counts: Counter[str] = Counter()
    exceptions: list[Verdict] = []
    events = 0
    gc_before = sum(s["collections"] for s in gc.get_stats())
    for run in range(repeat):
        rec = Reconciler(spec.system_names, lateness_ms=lateness_ms, idle_ms=10_000, emit_matched=emit_matched)
        stream = arrival_records(spec, transport=TRANSPORT, seed=seed)
        cpu = wall = 0.0
        n = 0
        while True:
            records = list(itertools.islice(stream, chunk))
            if not records:
                break
            c0, w0 = time.thread_time(), time.perf_counter()
            rec.offer_many(records)
            out = rec.drain()
            cpu += time.thread_time() - c0
            wall += time.perf_counter() - w0
            n += len(records)
            if run == 0:
                exceptions.extend(v for v in out if v.kind != VerdictKind.MATCHED)
        c0, w0 = time.thread_time(), time.perf_counter()
        rec.finish()
        out = rec.drain()
        cpu += time.thread_time() - c0
        wall += time.perf_counter() - w0
        stats = rec.stats()
        if run == 0:
            exceptions.extend(v for v in out if v.kind != VerdictKind.MATCHED)
            verdict_counts.update(stats.verdicts)
        events = n
        cpu_rates.append(n / cpu if cpu > 0 else math.inf)
        wall_rates.append(n / wall if wall > 0 else math.inf)
        peak_open = max(peak_open, stats.peak_open)
        peak_tomb = max(peak_tomb, stats.peak_tombstones)
        progress(f"run {run + 1}/{repeat}: {cpu_rates[-1]:,.0f} events/s (CPU), {wall_rates[-1]:,.0f} (wall)")
        del rec, stream
    summary = classify(exceptions, injected_errors(spec))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchFigures(
        transactions=transactions, events=events, lateness_ms=lateness_ms, rate_per_s=rate_per_s,
        emit_matched=emit_matched, cpu_events_per_s=tuple(cpu_rates), wall_events_per_s=tuple(wall_rates),
        peak_open=peak_open, peak_tombstones=peak_tomb, window_bound=bound, baseline_rss_mib=baseline,
        peak_rss_mib=peak_rss, verdicts=dict(sorted(verdict_counts.items())), summary=summary,
        load_average=os.getloadavg(), gc_collections=sum(s["collections"] for s in gc.get_stats()) - gc_before,
        notes=tuple(notes),
    )


def render(f: BenchFigures) -> list[str]:
    """The figures, for people."""
    best, median = f.best, f.median
    if median >= GOAL_EVENTS_PER_S:
        goal = f"goal {GOAL_EVENTS_PER_S:,} events/s: met (median)"
    elif best >= GOAL_EVENTS_PER_S:
        goal = (f"goal {GOAL_EVENTS_PER_S:,} events/s: met by the best run only; "
                f"the median is {100 * (1 - median / GOAL_EVENTS_PER_S):.0f}% short")
    else:
        goal = f"goal {GOAL_EVENTS_PER_S:,} events/s: NOT met, the best run is {100 * (1 - best / GOAL_EVENTS_PER_S):.0f}% short"
    s = f.summary
    lines = [
        f"billing join engine: {f.transactions:,} transactions, {f.events:,} events, lateness {f.lateness_ms:g} ms, "
        f"{f.rate_per_s:,.0f} transactions/s of event time, matched verdicts {'emitted' if f.emit_matched else 'counted only'}",
        f"machine: {os.cpu_count()} cores, load average {f.load_average[0]:.1f} (others' work shows in wall time)",
        f"engine: {median:,.0f} events/s median, {best:,.0f} best of {len(f.cpu_events_per_s)} "
        f"(engine CPU time; {1e6 / median:.2f} us/event); wall {statistics.median(f.wall_events_per_s):,.0f} events/s",
        goal,
        f"state: peak {f.peak_open:,} open transactions, {f.peak_tombstones:,} tombstones; "
        f"bound rate x window = {f.window_bound:,} (independent of the run length)",
        f"memory: peak RSS {f.peak_rss_mib:.0f} MiB (before the engine: {f.baseline_rss_mib:.0f} MiB); "
        f"{f.gc_collections} garbage collections (gen-0 threshold {gc.get_threshold()[0]})",
        "verdicts: " + ", ".join(f"{k} {v:,}" for k, v in f.verdicts.items()),
        f"check: injected errors found {s.found:,}/{s.injected:,}, unexplained {s.unexplained}: "
        + ("valid" if f.valid else "NOT valid"),
    ]
    lines += [f"note: {n}" for n in f.notes]
    return lines
