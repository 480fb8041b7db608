"""The canary's soak benchmark: hours of canary traffic through the streaming checker, faster than real time.

Memory must stay flat: the checker holds about ``rate x (deadline + horizon)``
messages per region whatever the run's length. The benchmark samples the
process's RSS at intervals of simulated time and reports them with the peak,
the events per second, and whether the counts match the simulation's ground
truth (lost = dropped, duplicated = duplicated, nothing reordered or late).
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from geo_recon.canary.checker import CanaryChecker
from geo_recon.canary.sim import SEC, SimSpec, Truth, events


@dataclass(frozen=True)
class RssSample:
    sim_s: float
    wall_s: float
    rss_mib: float
    state_messages: int


@dataclass(frozen=True)
class BenchFigures:
    regions: int
    rate: float
    sim_seconds: float
    deadline_s: float
    horizon_s: float
    events: int
    wall_s: float
    events_per_s: float
    speedup: float
    """Simulated seconds per wall-clock second."""
    peak_rss_mib: float
    samples: tuple[RssSample, ...]
    peak_state_messages: int
    state_bound: int
    """rate x regions x (2 x deadline + horizon): the most the rules let the checker hold."""
    lost: int
    dropped: int
    duplicated: int
    injected_duplicates: int
    reordered: int
    late: int
    valid: bool

    @property
    def rss_growth_mib(self) -> float:
        """RSS at the end minus RSS at the first sample after the state filled up (one deadline + horizon in)."""
        warm = [s for s in self.samples if s.sim_s >= 2 * (self.deadline_s + self.horizon_s)]
        return round(self.samples[-1].rss_mib - warm[0].rss_mib, 1) if warm else 0.0


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_bench(spec: SimSpec, *, deadline_s: float = 60.0, horizon_s: float | None = None,
              sample_every_s: float = 300.0, progress: Callable[[str], None] = lambda _m: None) -> BenchFigures:
    horizon = deadline_s if horizon_s is None else horizon_s
    checker = CanaryChecker(spec.regions, deadline_s=deadline_s, horizon_s=horizon)
    truth = Truth()
    sent, acked, failed, delivered = checker.sent, checker.acked, checker.failed, checker.delivered
    samples = [RssSample(0.0, 0.0, round(_rss_mib(), 1), 0)]
    next_sample = spec.start_ns + int(sample_every_s * SEC)
    n = 0
    peak_state = 0
    gc.collect()
    started = time.perf_counter()
    for ev in events(spec, truth):
        kind = ev[0]
        if kind == "d":
            delivered(ev[1], ev[2], ev[3], ev[4], ev[5])
        elif kind == "s":
            sent(ev[1], ev[2], ev[3], ev[4])
            t = ev[4]
            if t >= next_sample:
                live = checker.live()
                peak_state = max(peak_state, live)
                sample = RssSample(round((t - spec.start_ns) / SEC, 1), round(time.perf_counter() - started, 1),
                                   round(_rss_mib(), 1), live)
                samples.append(sample)
                progress(f"  simulated {sample.sim_s:7.0f} s in {sample.wall_s:6.1f} s: RSS {sample.rss_mib:6.1f} MiB, "
                         f"{live} messages held")
                next_sample += int(sample_every_s * SEC)
        elif kind == "a":
            acked(ev[1], ev[2], ev[3])
        else:
            failed(ev[1], ev[2], ev[3])
        n += 1
    end = spec.start_ns + int(spec.seconds * SEC)
    checker.advance(end + int((2 * deadline_s + horizon + spec.partition_s + 1) * SEC))
    wall = time.perf_counter() - started
    snap = checker.snapshot()
    samples.append(RssSample(round(spec.seconds, 1), round(wall, 1), round(_rss_mib(), 1), checker.live()))
    lost = sum(p.lost for p in snap.pairs)
    dups = sum(p.duplicated for p in snap.pairs)
    reordered = sum(p.reordered for p in snap.pairs)
    late = sum(p.late for p in snap.pairs)
    peak_state = max(peak_state, snap.peak_live)
    bound = int(spec.rate * len(spec.regions) * (2 * deadline_s + horizon))
    return BenchFigures(
        regions=len(spec.regions), rate=spec.rate, sim_seconds=spec.seconds, deadline_s=deadline_s,
        horizon_s=horizon, events=n, wall_s=round(wall, 2), events_per_s=round(n / wall) if wall else 0,
        speedup=round(spec.seconds / wall, 1) if wall else 0.0,
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        samples=tuple(samples), peak_state_messages=peak_state, state_bound=bound,
        lost=lost, dropped=truth.dropped, duplicated=dups, injected_duplicates=truth.duplicated,
        reordered=reordered, late=late,
        valid=(lost == truth.dropped and dups == truth.duplicated and reordered == 0 and late == 0
               and peak_state <= bound and checker.live() == 0),
    )


def render(f: BenchFigures) -> list[str]:
    lines = [
        f"canary soak: {f.regions} regions x {f.rate:g} msg/s, {f.sim_seconds:g} s simulated "
        f"(deadline {f.deadline_s:g} s, horizon {f.horizon_s:g} s)",
        f"  {f.events:,} events in {f.wall_s:.1f} s: {f.events_per_s:,} events/s, {f.speedup:g}x real time",
        f"  peak RSS {f.peak_rss_mib:.1f} MiB; RSS growth after warm-up {f.rss_growth_mib:+.1f} MiB; "
        f"peak state {f.peak_state_messages:,} messages (bound {f.state_bound:,})",
        f"  lost {f.lost} (dropped {f.dropped}), duplicated {f.duplicated} (injected {f.injected_duplicates}), "
        f"reordered {f.reordered}, late {f.late}: {'counts match the ground truth' if f.valid else 'MISMATCH'}",
        f"  {'simulated s':>12}{'wall s':>9}{'RSS MiB':>9}{'held':>10}",
    ]
    lines += [f"  {s.sim_s:>12.0f}{s.wall_s:>9.1f}{s.rss_mib:>9.1f}{s.state_messages:>10,}" for s in f.samples]
    return lines
