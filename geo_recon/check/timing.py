"""Latencies and rates: exact percentiles, lag series, lag CDFs, per-second rates. Pure functions.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted
values is value number ceil(p/100 * n) (1-based); the 0th is the minimum. They
are exact. The p50/p99 of ``lag_series`` points are computed on a systematic
sample of at most ``SERIES_SAMPLE`` lags per observing region (exact below
that); the ``max`` of each point is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SERIES_POINTS = 2000
SERIES_SAMPLE = 1_000_000
_ORIGIN_SHIFT = 57
_LAG_LIMIT = 1 << 56  # lags are clipped to +-2**56 ns (about 2.3 years) when sorted by origin
_LAG_MASK = (1 << _ORIGIN_SHIFT) - 1
NS = 1_000_000_000


def ms(ns: float | int) -> float:
    return round(float(ns) / 1e6, 3)


def rank(p: int, n: int) -> int:
    """0-based index of the nearest-rank p-th percentile (p in 0..100) of n values."""
    return max((p * n + 99) // 100 - 1, 0)


def summary_ms(sorted_ns: np.ndarray) -> dict[str, float] | None:
    """p50/p90/p99/max in ms of an already sorted array."""
    n = len(sorted_ns)
    if not n:
        return None
    return {"p50": ms(sorted_ns[rank(50, n)]), "p90": ms(sorted_ns[rank(90, n)]),
            "p99": ms(sorted_ns[rank(99, n)]), "max": ms(sorted_ns[-1])}


def percentiles_ms(values_ns: np.ndarray) -> dict[str, float] | None:
    """p50/p90/p99/max in ms of an unsorted array (by partial sorting)."""
    n = len(values_ns)
    if not n:
        return None
    ranks = sorted({rank(50, n), rank(90, n), rank(99, n), n - 1})
    part = np.partition(values_ns, ranks)
    return {"p50": ms(part[rank(50, n)]), "p90": ms(part[rank(90, n)]), "p99": ms(part[rank(99, n)]),
            "max": ms(part[n - 1])}


def percentiles_by_group(values_ns: np.ndarray, group: np.ndarray, names: Sequence[str]
                         ) -> dict[str, dict[str, float]]:
    """:func:`percentiles_ms` per group code (codes index ``names``); empty groups are left out."""
    out = {}
    for code in np.unique(group).tolist():
        if code < 0:
            continue
        stats = percentiles_ms(values_ns[group == code])
        if stats is not None:
            out[names[code]] = stats
    return out


def kth_across(segments: Sequence[np.ndarray], k: int) -> int:
    """The k-th smallest (0-based) value across sorted int64 arrays, by binary search on the value."""
    present = [s for s in segments if len(s)]
    lo = min(int(s[0]) for s in present)
    hi = max(int(s[-1]) for s in present)
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(int(np.searchsorted(s, mid, side="right")) for s in present) >= k + 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True, slots=True)
class LagStats:
    """Lag of one observing region: first consumer receipt minus the ok time."""

    overall: dict[str, float] | None
    by_origin: dict[str, dict[str, float]]
    cdf: list[float] | None  #: 101 quantiles (0..100), ms
    series: dict[str, list[list[float]]] = field(default_factory=dict)  #: origin -> [t_s, p50, p99, max]


def region_lag(*, lag_ns: np.ndarray, origin: np.ndarray, region_names: Sequence[str], ok_time: np.ndarray,
               t0: int, bucket_s: int) -> LagStats:
    """Exact percentiles overall and per origin, the CDF, and the series by ok time."""
    n = len(lag_ns)
    if not n:
        return LagStats(None, {}, None)
    origin64 = origin.astype(np.int64)
    key = (origin64 << _ORIGIN_SHIFT) | (np.clip(lag_ns, -_LAG_LIMIT, _LAG_LIMIT - 1) + _LAG_LIMIT)
    key.sort()
    codes = np.unique(origin64)
    bounds = np.searchsorted(key, np.r_[codes, codes[-1] + 1] << _ORIGIN_SHIFT)
    lags = (key & _LAG_MASK) - _LAG_LIMIT
    del key
    segments = [lags[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    by_origin = {region_names[c]: summary_ms(s) for c, s in zip(codes.tolist(), segments, strict=True)}
    top = max(int(s[-1]) for s in segments if len(s))
    overall = {"p50": ms(kth_across(segments, rank(50, n))), "p90": ms(kth_across(segments, rank(90, n))),
               "p99": ms(kth_across(segments, rank(99, n))), "max": ms(top)}
    cdf = [ms(kth_across(segments, rank(p, n))) for p in range(101)]
    series = lag_series(lag_ns=lag_ns, origin=origin64, codes=codes, region_names=region_names,
                        ok_time=ok_time, t0=t0, bucket_s=bucket_s)
    return LagStats(overall, {k: v for k, v in by_origin.items() if v is not None}, cdf, series)


def lag_series(*, lag_ns: np.ndarray, origin: np.ndarray, codes: np.ndarray, region_names: Sequence[str],
               ok_time: np.ndarray, t0: int, bucket_s: int) -> dict[str, list[list[float]]]:
    """Per origin: [[bucket start (s since t0), p50 ms, p99 ms, max ms], ...] by the message's ok time."""
    bucket_ns = bucket_s * NS
    bucket = np.clip((ok_time - t0) // bucket_ns, 0, SERIES_POINTS - 1)
    n_buckets = int(bucket.max()) + 1
    slot = origin * n_buckets + bucket
    top = np.full(int(codes.max() + 1) * n_buckets, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, slot, lag_ns)
    step = max(1, -(-len(lag_ns) // SERIES_SAMPLE))
    s_slot, s_lag = slot[::step], lag_ns[::step]
    order = np.lexsort((s_lag, s_slot))
    s_slot, s_lag = s_slot[order], s_lag[order]
    starts = np.flatnonzero(np.r_[True, s_slot[1:] != s_slot[:-1]])
    ends = np.r_[starts[1:], len(s_slot)]
    out: dict[str, list[list[float]]] = {region_names[c]: [] for c in codes.tolist()}
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        o, bk = divmod(int(s_slot[a]), n_buckets)
        values = s_lag[a:b]
        out[region_names[o]].append([float(bk * bucket_s), ms(values[rank(50, len(values))]),
                                     ms(values[rank(99, len(values))]), ms(top[o * n_buckets + bk])])
    return out


def bucket_seconds(span_ns: int, points: int = SERIES_POINTS) -> int:
    """Whole seconds per bucket so that ``span_ns`` fits in at most ``points`` buckets."""
    seconds = max(1, -(-int(span_ns) // NS))
    return max(1, -(-seconds // points))


def per_second(times_ns: np.ndarray, *, t0: int, n_seconds: int) -> np.ndarray:
    """Counts per second since t0 (earlier times count in the first second, later in the last)."""
    if not len(times_ns):
        return np.zeros(n_seconds, dtype=np.int64)
    sec = np.clip((times_ns - t0) // NS, 0, n_seconds - 1)
    return np.bincount(sec, minlength=n_seconds)


def rate_points(series: Sequence[np.ndarray], *, bucket_s: int) -> list[list[float]]:
    """Merge per-second counts into buckets: [[t_s, rate/s of each series...], ...]."""
    n = len(series[0])
    n_buckets = -(-n // bucket_s)
    padded = [np.pad(s, (0, n_buckets * bucket_s - n)).reshape(n_buckets, bucket_s).sum(axis=1) for s in series]
    return [[float(b * bucket_s)] + [round(float(s[b]) / bucket_s, 3) for s in padded] for b in range(n_buckets)]
