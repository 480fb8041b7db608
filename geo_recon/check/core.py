"""check_history: a History in, a CheckResult out. check_run: the same from a run directory.

The pipeline, per run.json region R (one region's receipts in memory at a time):
clock offsets -> :func:`~geo_recon.check.regions.region_facts` -> one detector
per anomaly -> lag. Then, across regions: lost (which needs every region's
receipts), convergence, RPO, RTO, publish latency, rates. Detectors are pure;
the only I/O is loading the history and, in :func:`check_run`, reading back
the few history lines that cases cite (to show their msg_ids).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from geo_recon import history_arrow
from geo_recon.check import columnar, regions as R
from geo_recon.check.anomalies import ALL, VALIDITY, Anomaly, parse_allowed
from geo_recon.check.cases import Case, Sighting, case_to_json
from geo_recon.check.explanations import explain
from geo_recon.check.ingest import read_history
from geo_recon.check.model import (
    FLAG_READER,
    NEVER,
    NO_TIME,
    Completions,
    FaultEvent,
    History,
    InputSummary,
    Messages,
    Outcome,
    Receipts,
    split_ref,
)
from geo_recon.check import disaster as D
from geo_recon.check.recovery import convergence, fault_windows, heals, recovery, rpo, rto, window_json
from geo_recon.check.timing import (
    LagStats,
    bucket_seconds,
    per_second,
    percentiles_by_group,
    rate_points,
    region_lag,
)
from geo_recon.errors import GeoReconError
from geo_recon.history import HistoryError, is_arrow, read_arrow
from geo_recon.rundir import RunDir

RESULTS_JSON = RunDir.RESULTS
COUNTED = (Anomaly.LOST, Anomaly.STORED_NOT_CONSUMED, Anomaly.DUPLICATES, Anomaly.REDELIVERED,
           Anomaly.REORDERED, Anomaly.UNEXPECTED, Anomaly.RECOVERED)


class CannotDecide(GeoReconError):
    """The history does not allow a verdict (exit code 2)."""


@dataclass(frozen=True, slots=True)
class RegionResult:
    expected: int
    counts: Mapping[str, int]  #: per anomaly name
    receipts: int
    lag: LagStats

    def to_json(self) -> dict[str, Any]:
        return {"expected": self.expected, **{k.value: self.counts[k.value] for k in COUNTED},
                "receipts": self.receipts, "lag_ms": self.lag.overall, "lag_ms_by_origin": self.lag.by_origin}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict and everything behind it. ``to_json()`` gives the DESIGN.md shape (results.json).

    Times ``*_s`` are seconds since the run's first send or fault line; ``*_ms`` are milliseconds;
    percentiles are nearest-rank and exact (see :mod:`geo_recon.check.timing`). Fields of ``to_json()``:

    * ``valid``; ``anomaly_types``: the anomalies that made it invalid; ``allowed``.
    * ``regions``: per run.json region ``expected, lost, stored_not_consumed, duplicates, redelivered,
      reordered, unexpected, recovered, receipts, lag_ms {p50, p90, p99, max}, lag_ms_by_origin {origin:
      {...}}`` (definitions in :mod:`geo_recon.check.anomalies`); ``totals``: the same counts summed.
    * ``cases``: per anomaly, the first ``max_cases`` per region, each with its data and ``explanation``.
    * ``faults``: windows ``{id, fault, target, start_s, stop_s, region_loss, lost_regions, regions}``;
      ``convergence``: per stop ``{fault_id, stop_s, converged, ms, still_missing {region: n}}``;
      ``rpo``: per region-loss fault and lost region ``{fault_id, region, count, first_ok_s, last_ok_s,
      span_ms, window_ms}``; ``rto``: per fault and region ``{fault_id, region, ms, recovered, failed,
      first_failure_s, recovered_s, heal_s, load_end_s, outcome}``; ``recovery``: per heal of a fault that
      stops clients, and region ``{fault_id, region, heal_s, publish_ms, receive_ms, load_end_s}``
      (definitions in :mod:`geo_recon.check.recovery`).
    * ``region_loss``: per region-loss fault (``lose``, or kill/stop/pause of a region) and lost region
      ``{fault_id, fault, region, scheme, failover_mode (run.json's, or null), loss_s, rebuilt_s (lose only), healed_s, load_end_s,
      rpo {count, first_ok_s, last_ok_s, span_s}, exposure {count, first_ok_s, last_ok_s, span_s},
      clients: [{client, role, outcome ("recovered" | "never" | "not observed"), rto_s, recovered_s, cluster,
      failed_over, failover_s}], failed_over, subscriptions: null (run.json has no replicated_subscription) or
      [{subscription, receipts, reconsumed, gaps, gap_examples}], writes {outcome ("resumed" | "never" |
      "not observed"), stalled_s, resumed_s, after_rebuild_s}, not_counted}``: ``not_counted`` is how many
      acked messages the region's consumers could not receive while a ``lose`` had destroyed it (not counted
      in its ``lost``) (definitions in :mod:`geo_recon.check.disaster`).
    * ``publish_latency_ms``: per origin region, ok time minus invoke time ``{p50, p90, p99, max}``.
    * ``lag_series``: ``{origin: {observer: [[t_s, p50_ms, p99_ms, max_ms], ...]}}``, at most 2000 points
      by the message's ok time; ``lag_cdf``: per observer, 101 quantiles (0..100) in ms.
    * ``rates``: ``{bucket_s, columns: [t_s, sent, acked, received], regions: {region: [[...], ...]}}``,
      per-second rates averaged over buckets of ``bucket_s`` seconds, at most 2000 points.
    * ``run``: regions, start/end (ns), duration, producers, send outcomes (``sends``, and per origin region
      ``sends_by_region``), receipts, scheme, seed;
      ``input``: what was read (source, files, lines, skipped lines with examples, ignored lines);
      ``warnings``.
    """

    valid: bool
    allowed: frozenset[Anomaly]
    regions: Mapping[str, RegionResult]
    cases: Mapping[str, tuple[Case, ...]]
    faults: list[dict[str, Any]]
    convergence: list[dict[str, Any]]
    rpo: list[dict[str, Any]]
    rto: list[dict[str, Any]]
    recovery: list[dict[str, Any]]
    region_loss: list[dict[str, Any]]
    publish_latency_ms: dict[str, dict[str, float]]
    rates: dict[str, Any]
    run: dict[str, Any]
    input: InputSummary
    warnings: list[str] = field(default_factory=list)

    @property
    def anomaly_types(self) -> list[str]:
        """Anomalies found that make the run invalid (not allowed)."""
        return [k.value for k in VALIDITY if k not in self.allowed
                and any(r.counts[k.value] for r in self.regions.values())]

    def totals(self) -> dict[str, int]:
        return {k.value: sum(r.counts[k.value] for r in self.regions.values()) for k in COUNTED}

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "anomaly_types": self.anomaly_types,
            "allowed": sorted(a.value for a in self.allowed),
            "regions": {name: r.to_json() for name, r in self.regions.items()},
            "totals": self.totals(),
            "cases": {kind: [{**case_to_json(c), "explanation": explain(c)} for c in cases]
                      for kind, cases in self.cases.items()},
            "faults": self.faults,
            "convergence": self.convergence,
            "rpo": self.rpo,
            "rto": self.rto,
            "recovery": self.recovery,
            "region_loss": self.region_loss,
            "publish_latency_ms": self.publish_latency_ms,
            "lag_series": {origin: {region: r.lag.series.get(origin, []) for region, r in self.regions.items()
                                    if origin in r.lag.series}
                           for origin in _origins(self.regions)},
            "lag_cdf": {name: r.lag.cdf for name, r in self.regions.items()},
            "rates": self.rates,
            "run": self.run,
            "input": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.input).items()},
            "warnings": self.warnings,
        }


def _origins(regions: Mapping[str, RegionResult]) -> list[str]:
    seen: list[str] = []
    for r in regions.values():
        for origin in r.lag.series:
            if origin not in seen:
                seen.append(origin)
    return seen


# --------------------------------------------------------------------------- clock offsets


def _offsets(history: History) -> tuple[np.ndarray | None, list[str]]:
    raw = history.run.get("clock_offsets_ns") or {}
    assert isinstance(raw, dict)
    if not raw:
        return None, []
    index = {name: i for i, name in enumerate(history.processes)}
    off = np.zeros(len(history.processes) + 1, dtype=np.int64)  # last slot: process -1
    unknown = []
    for name, value in raw.items():
        if name in index:
            off[index[name]] = int(value)
        else:
            unknown.append(name)
    warnings = [f"run.json clock_offsets_ns names processes not in the history: {', '.join(sorted(unknown))}"] \
        if unknown else []
    return off, warnings


def _shift(times: np.ndarray, process: np.ndarray, off: np.ndarray | None) -> np.ndarray:
    if off is None:
        return times
    return np.where(times == NO_TIME, NO_TIME, times + off[process])


def apply_offsets(history: History) -> tuple[History, list[str]]:
    """The history with every time corrected by run.json ``clock_offsets_ns`` (added to that process's times)."""
    off, warnings = _offsets(history)
    if off is None:
        return history, warnings
    m = history.messages
    messages = dataclasses.replace(m, invoke_time=_shift(m.invoke_time, m.process, off),
                                   done_time=_shift(m.done_time, m.process, off))
    c = history.completions
    completions = dataclasses.replace(c, time=c.time + off[c.process])
    raw = history.run.get("clock_offsets_ns") or {}
    assert isinstance(raw, dict)
    faults = tuple(dataclasses.replace(f, time=f.time + int(raw.get(f.process, 0))) if f.process else f
                   for f in history.faults)
    failovers = tuple(dataclasses.replace(f, time=f.time + int(raw.get(f.process, 0))) for f in history.failovers)

    def shifted(code: int) -> Any:
        def load() -> Receipts:
            rec = history.region_receipts(code)
            return dataclasses.replace(rec, time=rec.time + off[rec.process])
        return load

    receipts = tuple(shifted(code) for code in range(len(history.receipts)))
    return dataclasses.replace(history, messages=messages, completions=completions, faults=faults,
                               failovers=failovers, receipts=receipts), warnings


# --------------------------------------------------------------------------- the check


@dataclass(slots=True)
class _RegionPass:
    """What one observing region contributes; everything else about it is dropped after its pass."""

    counts: dict[str, int]
    cases: dict[str, tuple[Case, ...]]
    received: np.ndarray
    after_heals: list[int | None]  #: the first consumer receipt at or after each heal
    first: np.ndarray | None
    missing_ok: np.ndarray
    lag: LagStats
    per_second: np.ndarray
    receipts: int
    end: int
    #: per loss of this region: its consumers' RTO rows, what it could not observe, its subscriptions
    lost: list[tuple[D.Loss, list[dict[str, Any]], np.ndarray, list[D.SubscriptionView]]] = field(default_factory=list)


def _empty_receipts() -> Receipts:
    i64 = np.zeros(0, dtype=np.int64)
    return Receipts(msg=i64, time=i64, process=np.zeros(0, dtype=np.int32), msg_hash=i64,
                    flags=np.zeros(0, dtype=np.int8), ref=i64, subscription=np.zeros(0, dtype=np.int32),
                    cluster=np.zeros(0, dtype=np.int16))


def _lost_views(ctx: R.Context, *, losses: list[D.Loss], receipts: Receipts, received: np.ndarray,
                load_end: int | None, t0: int) -> list[tuple[D.Loss, list[dict[str, Any]], np.ndarray,
                                                             list[D.SubscriptionView]]]:
    """What a lost region's own receipts say about each of its losses (while they are in memory)."""
    history = ctx.history
    replicated = bool(history.run.get("replicated_subscription"))
    out = []
    for loss in losses:
        consumers = D.consumer_rto(loss, receipts=receipts, processes=history.processes,
                                   region_names=history.region_names, failovers=history.failovers,
                                   load_end=load_end, t0=t0)
        unseen = (D.not_observable(loss, messages=history.messages, receipts=receipts, received=received)
                  if loss.fault == "lose" else np.zeros(len(history.messages), dtype=bool))
        views = (D.subscription_views(loss, receipts=receipts, n_messages=len(history.messages),
                                      processes=history.processes, subscriptions=history.subscriptions,
                                      failovers=history.failovers) if replicated else [])
        out.append((loss, consumers, unseen, views))
    return out


def _region_pass(ctx: R.Context, *, code: int, region: str, ok: np.ndarray, t0: int,
                 series_bucket: int, heal_times: list[int], losses: list[D.Loss] = (),  # type: ignore[assignment]
                 load_end: int | None = None, lag_pool: Executor | None = None) -> _RegionPass:
    """Facts, the detectors and lag for one region (its receipts are in memory only during this call).

    ``lag_pool``: where the lag statistics are computed while the detectors run (numpy's sorting and partitioning
    release the GIL); here, after them, without one.
    """
    history, messages = ctx.history, ctx.history.messages
    counts = {k.value: 0 for k in COUNTED}
    ok_time = messages.done_time
    if history.receipt_counts[code] == 0:
        nothing = np.zeros(len(messages), dtype=bool)
        return _RegionPass(counts=counts, cases={}, received=nothing,
                           after_heals=[None] * len(heal_times), first=None,
                           missing_ok=np.sort(ok_time[ok]), lag=LagStats(None, {}, None),
                           per_second=np.zeros(0, dtype=np.int64), receipts=0, end=t0,
                           lost=_lost_views(ctx, losses=list(losses), receipts=_empty_receipts(), received=nothing,
                                            load_end=load_end, t0=t0))
    receipts = history.region_receipts(code)
    facts = R.region_facts(messages, receipts, code=code, name=region)
    first = facts.first_consumer

    def lag_stats() -> LagStats:
        lagged = np.flatnonzero(ok & (first != NEVER))
        acked = ok_time[lagged]
        lag = first[lagged]
        lag -= acked
        origin = messages.origin[lagged]
        del lagged
        return region_lag(lag_ns=lag, origin=origin, region_names=history.region_names, ok_time=acked, t0=t0,
                          bucket_s=series_bucket)

    # without a pool the lag's arrays are made after the detectors, so that they never add to the detectors' peak
    pending = lag_pool.submit(lag_stats) if lag_pool is not None else None
    cases: dict[str, tuple[Case, ...]] = {}
    for kind, detector in ((Anomaly.STORED_NOT_CONSUMED, R.detect_stored_not_consumed),
                           (Anomaly.DUPLICATES, R.detect_duplicates),
                           (Anomaly.REDELIVERED, R.detect_redelivered),
                           (Anomaly.REORDERED, R.detect_reordered),
                           (Anomaly.UNEXPECTED, R.detect_unexpected),
                           (Anomaly.RECOVERED, R.detect_recovered)):
        found = detector(ctx, facts)
        counts[kind.value] = found.count
        cases[kind.value] = found.cases  # type: ignore[assignment]
    missing_ok = np.sort(ok_time[ok & (first == NEVER)])
    consumer_times = receipts.time if facts.reader is None else receipts.time[~facts.reader]
    last = int(consumer_times.max()) if len(consumer_times) else t0
    per_sec = per_second(consumer_times, t0=t0, n_seconds=max(1, (last - t0) // 10**9 + 1))
    after_heals: list[int | None] = []
    for heal in heal_times:  # a few heals: one pass each is cheaper than sorting every receipt
        later = consumer_times[consumer_times >= heal]
        after_heals.append(int(later.min()) if len(later) else None)
    lost = _lost_views(ctx, losses=list(losses), receipts=receipts, received=facts.received, load_end=load_end,
                       t0=t0)
    stats = pending.result() if pending is not None else lag_stats()
    del pending
    return _RegionPass(counts=counts, cases=cases, received=facts.received, after_heals=after_heals,
                       first=first, missing_ok=missing_ok,
                       lag=stats, per_second=per_sec, receipts=len(receipts), end=int(receipts.time.max()),
                       lost=lost)


def check_history(history: History, *, allowed: Iterable[Anomaly] = (), max_cases: int = 10,
                  threads: int = 1) -> CheckResult:
    """Check a normalised history against DESIGN.md's definitions. Pure: no I/O besides loading receipts.

    ``threads``: regions checked at the same time (each holds its receipts and a few per-message arrays).
    """
    history, warnings = apply_offsets(history)
    messages = history.messages
    ok = messages.outcome == Outcome.OK
    n_ok = int(ok.sum())
    if n_ok == 0:
        raise CannotDecide(f"no acknowledged send (no 'ok' send line) in {history.input.files} history file(s), "
                           f"{history.input.lines} line(s): there is nothing to check")
    t0, end = _time_range(history)
    ctx = R.Context.of(history, t0=t0, max_cases=max_cases)
    names = history.region_names
    listed = [r for r in history.regions]
    codes = {r: names.index(r) for r in listed}  # every run.json region has a code, receipts or not
    ok_time = messages.done_time
    span = int(ok_time[ok].max()) - t0
    series_bucket = bucket_seconds(span)

    # kept across regions: who received what (bool per message and region), the latest first receipt over
    # the regions (for convergence) and the ok times of what each region's consumers never got
    received_by_code: list[np.ndarray | None] = [None] * len(names)
    latest = np.full(len(messages), np.iinfo(np.int64).min, dtype=np.int64)
    missing_ok: dict[str, np.ndarray] = {}
    region_counts: dict[str, dict[str, int]] = {}
    region_lags: dict[str, LagStats] = {}
    cases: dict[str, list[Case]] = {k.value: [] for k in ALL}
    received_per_second: dict[str, np.ndarray] = {}
    receipts_total = 0
    windows = fault_windows(history.faults, regions=listed)
    heal_times = heals(windows)
    after_heals: dict[str, list[int | None]] = {}
    invoke_times = messages.invoke_time[messages.invoke_time != NO_TIME]
    load_end = int(invoke_times.max()) if len(invoke_times) else None  # the last send the load invoked
    del invoke_times
    losses = D.losses(windows)
    # per lost region: the first consumer receipt of each message in any other run.json region
    earliest_elsewhere = {loss.region: np.full(len(messages), NEVER, dtype=np.int64) for loss in losses}
    lost_views: dict[str, list[tuple[D.Loss, list[dict[str, Any]], np.ndarray, list[D.SubscriptionView]]]] = {}

    def one(region: str, lag_pool: Executor | None) -> _RegionPass:
        return _region_pass(ctx, code=codes[region], region=region, ok=ok, t0=t0, series_bucket=series_bucket,
                            heal_times=heal_times, losses=[x for x in losses if x.region == region],
                            load_end=load_end, lag_pool=lag_pool)

    # regions one at a time by default: two at a time is faster but holds two regions' receipts and temporaries
    # (with tune_allocator's single malloc arena the threads reuse the heap the read left, instead of faulting in
    # arenas of their own)
    pool = ThreadPoolExecutor(max_workers=min(threads, len(listed))) if threads > 1 and len(listed) > 1 else None
    # with region threads, each region's lag statistics (sorting, partitioning) run in a thread of their own beside
    # the detectors, one per region thread: a single one made every region's pass wait for the lags of the regions
    # before it, and the last region, alone in its pass, then keeps both CPUs busy
    lag_pool = ThreadPoolExecutor(max_workers=min(threads, len(listed))) if pool is not None else None
    with pool or contextlib.nullcontext(), lag_pool or contextlib.nullcontext():
        passes = (pool.map(one, listed, [lag_pool] * len(listed)) if pool
                  else (one(region, None) for region in listed))
        for region, done in zip(listed, passes, strict=True):
            region_counts[region] = done.counts
            for kind, kind_cases in done.cases.items():
                cases[kind].extend(kind_cases)
            received_by_code[codes[region]] = done.received
            after_heals[region] = done.after_heals
            if done.first is None:
                latest[:] = NEVER
            else:
                np.maximum(latest, done.first, out=latest)
                for lost_region, earliest in earliest_elsewhere.items():
                    if lost_region != region:
                        np.minimum(earliest, done.first, out=earliest)
            lost_views[region] = done.lost
            missing_ok[region] = done.missing_ok
            region_lags[region] = done.lag
            received_per_second[region] = done.per_second
            receipts_total += done.receipts
            end = max(end, done.end)
            del done

    # what a lost region could not observe while it was gone is reported, not counted as lost there
    received_listed = {r: received_by_code[codes[r]] for r in listed}
    not_counted: dict[tuple[str, str], int] = {}
    for region, views in lost_views.items():
        for loss, _, unseen, _ in views:
            if unseen.any():
                not_counted[(loss.fault_id, region)] = int(unseen.sum())
                received_by_code[codes[region]] = received_by_code[codes[region]] | unseen  # type: ignore[operator]

    picked = {codes[r]: R.first_lost(ctx, received=received_by_code[codes[r]]) for r in listed}  # type: ignore[arg-type]
    wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *picked.values()]))
    first_seen = {codes[r]: _first_consumer_times(history, codes[r], wanted) for r in listed} if len(wanted) else {}
    for region in listed:
        lost = R.detect_lost(ctx, code=codes[region], received=received_by_code, picked=picked[codes[region]],
                             first_seen=first_seen)
        region_counts[region][Anomaly.LOST.value] = lost.count
        cases[Anomaly.LOST.value].extend(lost.cases)  # type: ignore[arg-type]

    conv = convergence(windows, messages=messages, latest=latest, missing_ok=missing_ok, t0=t0)
    del latest
    rpo_rows = rpo(windows, messages=messages, received=received_listed, region_names=names,  # type: ignore[arg-type]
                   t0=t0)
    rto_rows = rto(windows, completions=history.completions, regions=listed, region_names=names, t0=t0,
                   load_end=load_end)
    recovery_rows = recovery(windows, completions=history.completions, first_receipt_after=after_heals,
                             regions=listed, region_names=names, load_end=load_end, t0=t0)
    loss_rows = _loss_rows(history, losses=losses, views=lost_views, rpo_rows=rpo_rows,
                           earliest_elsewhere=earliest_elsewhere, not_counted=not_counted, load_end=load_end, t0=t0)

    invoked = ok & (messages.invoke_time != NO_TIME)
    publish = percentiles_by_group(messages.done_time[invoked] - messages.invoke_time[invoked],
                                   messages.origin[invoked], names)
    rates = _rates(history, listed=listed, codes=codes, t0=t0, end=end, received=received_per_second)

    allowed_set = frozenset(allowed)
    results = {r: RegionResult(expected=n_ok, counts=region_counts[r], receipts=history.receipt_counts[codes[r]],
                               lag=region_lags[r]) for r in listed}
    valid = not any(results[r].counts[k.value] for r in listed for k in VALIDITY if k not in allowed_set)
    warnings = warnings + _warnings(history, listed=listed, codes=codes)
    run = _run_summary(history, t0=t0, end=end, receipts=receipts_total)
    return CheckResult(
        valid=valid, allowed=allowed_set, regions=results, cases={k: tuple(v) for k, v in cases.items()},
        faults=[window_json(w, t0) for w in windows], convergence=conv, rpo=rpo_rows, rto=rto_rows,
        recovery=recovery_rows, region_loss=loss_rows,
        publish_latency_ms=publish, rates=rates, run=run, input=history.input, warnings=warnings)


def _loss_rows(history: History, *, losses: list[D.Loss], views: dict[str, list[Any]], rpo_rows: list[dict[str, Any]],
               earliest_elsewhere: dict[str, np.ndarray], not_counted: dict[tuple[str, str], int],
               load_end: int | None, t0: int) -> list[dict[str, Any]]:
    """One row per lost region of each region-loss fault (definitions in :mod:`geo_recon.check.disaster`)."""
    names = history.region_names
    replicated = bool(history.run.get("replicated_subscription"))
    failover = history.run.get("failover")
    failover_mode = failover.get("mode") if isinstance(failover, dict) else None
    out = []
    for loss in losses:
        mine = next(((c, v) for x, c, _, v in views.get(loss.region, []) if x == loss), ([], []))
        consumers, subs = mine
        producers = D.producer_rto(loss, completions=history.completions, processes=history.processes,
                                   region_names=names, failovers=history.failovers, load_end=load_end, t0=t0)
        rpo_row = next((r for r in rpo_rows if r["fault_id"] == loss.fault_id and r["region"] == loss.region), None)
        earliest = earliest_elsewhere[loss.region]
        out.append(D.loss_row(
            loss, rpo_row=rpo_row,
            exposure_row=D.exposure(loss, messages=history.messages, earliest_elsewhere=earliest,
                                    origin=names.index(loss.region), t0=t0),
            clients=producers + consumers,
            subscriptions=D.subscription_rows(subs, messages=history.messages, producers=history.producers,
                                              earliest_elsewhere=earliest) if replicated else None,
            writes_row=D.writes(loss, messages=history.messages, load_end=load_end, t0=t0),
            not_counted=not_counted.get((loss.fault_id, loss.region), 0), scheme=history.run.get("scheme"),
            load_end=load_end, t0=t0, failover_mode=failover_mode))
    return out


def _first_consumer_times(history: History, code: int, wanted: np.ndarray) -> dict[int, int]:
    """First consumer receipt time in region ``code`` of each wanted message that has one (for case words)."""
    if not history.receipt_counts[code]:
        return {}
    rec = history.region_receipts(code)
    mark = np.zeros(len(history.messages), dtype=bool)
    mark[wanted] = True
    rows = np.flatnonzero(mark[rec.msg] & ((rec.flags & FLAG_READER) == 0))
    first = np.full(len(wanted), NEVER, dtype=np.int64)
    np.minimum.at(first, np.searchsorted(wanted, rec.msg[rows]), rec.time[rows])
    return {int(m): int(t) for m, t in zip(wanted.tolist(), first.tolist(), strict=True) if t != NEVER}


def _time_range(history: History) -> tuple[int, int]:
    """The run's start (first send line or fault) and the latest such time."""
    m = history.messages
    times = [m.invoke_time[m.invoke_time != NO_TIME], m.done_time[m.done_time != NO_TIME], history.completions.time,
             np.array([f.time for f in history.faults], dtype=np.int64)]
    present = [t for t in times if len(t)]
    return min(int(t.min()) for t in present), max(int(t.max()) for t in present)


def _rates(history: History, *, listed: list[str], codes: dict[str, int], t0: int, end: int,
           received: dict[str, np.ndarray]) -> dict[str, Any]:
    n_seconds = max(1, (end - t0) // 10**9 + 1)
    bucket = bucket_seconds(end - t0 + 1)
    m, c = history.messages, history.completions
    invoked = m.invoke_time != NO_TIME
    out: dict[str, Any] = {"bucket_s": bucket, "columns": ["t_s", "sent", "acked", "received"], "regions": {}}
    for region in listed:
        code = codes[region]
        sent = per_second(m.invoke_time[invoked & (m.origin == code)], t0=t0, n_seconds=n_seconds)
        acked = per_second(c.time[(c.region == code) & (c.outcome == Outcome.OK)], t0=t0, n_seconds=n_seconds)
        got = np.zeros(n_seconds, dtype=np.int64)
        r = received.get(region, np.zeros(0, dtype=np.int64))[:n_seconds]
        got[:len(r)] = r
        out["regions"][region] = rate_points([sent, acked, got], bucket_s=bucket)
    return out


def _warnings(history: History, *, listed: list[str], codes: dict[str, int]) -> list[str]:
    out = []
    for code, name in enumerate(history.region_names):
        if name not in listed and history.receipt_counts[code]:
            out.append(f"{history.receipt_counts[code]} receipt(s) in region {name!r}, which run.json does not "
                       "list: not checked")
    m = history.messages
    origins = np.flatnonzero(np.bincount(m.origin[m.origin >= 0].astype(np.intp))).tolist()
    strays = [history.region_names[o] for o in origins if history.region_names[o] not in listed]
    if strays:
        out.append(f"sends from regions run.json does not list: {', '.join(strays)}")
    if history.input.skipped:
        out.append(f"{history.input.skipped} bad line(s) skipped (--skip-bad)")
    if history.input.not_read:
        shown = ", ".join(history.input.not_read[:5]) + (" ..." if len(history.input.not_read) > 5 else "")
        out.append(f"{len(history.input.not_read)} file(s) under history/ not read (not *.jsonl): {shown}")
    if history.input.ignored:
        out.append("lines not used: " + ", ".join(f"{n} {kind!r}" for kind, n in sorted(history.input.ignored.items())))
    return out


def _run_summary(history: History, *, t0: int, end: int, receipts: int) -> dict[str, Any]:
    m = history.messages
    outcome_counts = np.bincount(m.outcome, minlength=5)
    return {
        "regions": list(history.regions), "start_ns": t0, "end_ns": end, "duration_s": round((end - t0) / 1e9, 3),
        "producers": int(np.count_nonzero(np.bincount(m.producer[m.outcome != Outcome.NEVER_INVOKED].astype(np.intp)))),
        "sends": {"ok": int(outcome_counts[Outcome.OK]), "fail": int(outcome_counts[Outcome.FAIL]),
                  "info": int(outcome_counts[Outcome.INFO]), "pending": int(outcome_counts[Outcome.PENDING]),
                  "never_invoked": int(outcome_counts[Outcome.NEVER_INVOKED])},
        "sends_by_region": _sends_by_region(history),
        "receipts": receipts,
        "scheme": history.run.get("scheme"), "seed": history.run.get("seed"),
    }


def _sends_by_region(history: History) -> dict[str, dict[str, int]]:
    """Send outcomes per origin region (every region name, sends or not): who published at all."""
    m = history.messages
    invoked = m.outcome != Outcome.NEVER_INVOKED
    out = {}
    for code, name in enumerate(history.region_names):
        counts = np.bincount(m.outcome[invoked & (m.origin == code)], minlength=5)
        out[name] = {"ok": int(counts[Outcome.OK]), "fail": int(counts[Outcome.FAIL]),
                     "info": int(counts[Outcome.INFO]), "pending": int(counts[Outcome.PENDING])}
    return out


# --------------------------------------------------------------------------- from a run directory


def load_history(run_dir: str | os.PathLike[str], *, skip_bad: bool = False, source: str = "auto",
                 workers: int | None = None) -> History:
    """The run's history: from a fresh columnar copy when there is one (``auto``), else from the JSONL."""
    if source not in ("auto", "jsonl", "columnar"):
        raise ValueError(source)
    if source != "jsonl":
        history, why = columnar.open_fresh(run_dir, skip_bad=skip_bad)
        if history is not None:
            return history
        if source == "columnar":
            raise HistoryError(f"cannot use the columnar copy: {why}", path=Path(run_dir) / columnar.COLUMNAR_DIR)
    return read_history(run_dir, skip_bad=skip_bad, workers=workers)


def check_run(run_dir: str | os.PathLike[str], *, skip_bad: bool = False, allow: Iterable[str] = (),
              max_cases: int = 10, source: str = "auto", workers: int | None = None) -> CheckResult:
    """Check ``RUN_DIR``: read run.json and the history, apply the definitions, explain the first cases."""
    allowed = parse_allowed(allow, source="--allow")
    history = load_history(run_dir, skip_bad=skip_bad, source=source, workers=workers)
    from_run = history.run.get("allowed") or []
    assert isinstance(from_run, list)  # validated with run.json
    allowed |= parse_allowed(from_run, source=f"{Path(run_dir) / 'run.json'}: allowed")
    try:
        result = check_history(history, allowed=allowed, max_cases=max_cases, threads=region_threads(history))
    except CannotDecide as exc:
        raise CannotDecide(f"{Path(run_dir) / 'history'}: {exc}") from None
    return fill_msg_ids(result, run_dir=run_dir, history=history)


def region_threads(history: History) -> int:
    """Regions to check at the same time: two (on two CPUs or more) when every region's receipts are already in
    memory, where a second region costs only its temporaries; else one, since loading a second region's receipts
    (memory-mapped from the columnar copy or a spilled read) would add them to the peak."""
    in_memory = all(isinstance(r, Receipts) for r in history.receipts)
    return min(2, os.cpu_count() or 1) if in_memory and len(history.regions) > 1 else 1


def fill_msg_ids(result: CheckResult, *, run_dir: str | os.PathLike[str], history: History) -> CheckResult:
    """Read the history lines the cases cite and fill in their msg_ids."""
    refs = sorted({s.ref for cases in result.cases.values() for c in cases for s in _sightings(c)})
    if not refs:
        return result
    lines = read_lines(run_dir, history, refs)

    def fill(value: Any) -> Any:
        if isinstance(value, Sighting):
            raw = lines.get(value.ref)
            if raw is None:
                return value
            try:
                msg_id = orjson.loads(raw).get("msg_id")
            except (orjson.JSONDecodeError, AttributeError):
                return value
            return dataclasses.replace(value, msg_id=msg_id if isinstance(msg_id, str) else None)
        if isinstance(value, tuple):
            return tuple(fill(v) for v in value)
        return value

    cases = {kind: tuple(dataclasses.replace(c, **{f.name: fill(getattr(c, f.name))  # type: ignore[misc]
                                                 for f in dataclasses.fields(c)})
                         for c in kind_cases)
             for kind, kind_cases in result.cases.items()}
    return dataclasses.replace(result, cases=cases)


def _sightings(case: Any) -> list[Sighting]:
    out = []
    for f in dataclasses.fields(case):
        value = getattr(case, f.name)
        if isinstance(value, Sighting):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, Sighting))
    return out


def read_lines(run_dir: str | os.PathLike[str], history: History, refs: list[int]) -> dict[int, bytes]:
    """The raw history lines for line references, reading only the chunks (of the line index) they are in."""
    out: dict[int, bytes] = {}
    by_chunk: dict[tuple[int, int, int, int], list[tuple[int, int]]] = {}
    by_arrow: dict[int, list[tuple[int, int]]] = {}
    for ref in refs:
        file_index, line = split_ref(ref)
        if is_arrow(history.files[file_index]):
            by_arrow.setdefault(file_index, []).append((line, ref))
            continue
        index = history.line_index[file_index] if history.line_index else ((1, 0),)
        k = max(i for i, (first, _) in enumerate(index) if first <= line) if index[0][0] <= line else 0
        first_line, offset = index[k]
        end = index[k + 1][1] if k + 1 < len(index) else -1
        by_chunk.setdefault((file_index, first_line, offset, end), []).append((line, ref))
    for (file_index, first_line, offset, end), wanted in by_chunk.items():
        try:
            with open(Path(run_dir) / history.files[file_index], "rb") as fh:
                fh.seek(offset)
                data = fh.read(end - offset if end >= 0 else -1)
        except OSError:
            continue
        starts = np.r_[0, np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1]
        for line, ref in wanted:
            i = line - first_line
            if 0 <= i < len(starts) and starts[i] < len(data):
                stop = starts[i + 1] if i + 1 < len(starts) else len(data)
                out[ref] = data[starts[i]:stop]
    for file_index, wanted in by_arrow.items():  # an event of an Arrow file, as its JSONL line
        try:
            table = read_arrow(Path(run_dir) / history.files[file_index]).table
        except HistoryError:
            continue
        for line, ref in wanted:
            if 1 <= line <= table.num_rows:
                event = history_arrow.decode_rows(table.slice(line - 1, 1))[0]
                out[ref] = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
    return out


def write_results(result: CheckResult, run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/results.json`` (atomically) and return its path."""
    path = Path(run_dir) / RESULTS_JSON
    tmp = path.with_name(f".{RESULTS_JSON}.tmp")
    tmp.write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)
    return path


__all__ = ["CannotDecide", "CheckResult", "RegionResult", "check_history", "check_run", "load_history",
           "write_results", "FaultEvent", "Messages", "Completions"]
