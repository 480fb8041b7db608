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
    """p50/p90/p99/max in ms of an array sorted at least at the places these are read from."""
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
    present: list[int] = (np.flatnonzero(np.bincount(group[group >= 0].astype(np.int64))).tolist()
                          if len(group) else [])
    for code in present:
        stats = percentiles_ms(values_ns[group == code])
        if stats is not None:
            out[names[code]] = stats
    return out


def kth_across(segments: Sequence[np.ndarray], ks: Sequence[int]) -> list[int]:
    """The k-th smallest (0-based) values across sorted int64 arrays, for each k, by binary search on the value.

    All ranks are searched together: each step costs one vectorised searchsorted per array.
    """
    present = [s for s in segments if len(s)]
    lo = np.full(len(ks), min(int(s[0]) for s in present), dtype=np.int64)
    hi = np.full(len(ks), max(int(s[-1]) for s in present), dtype=np.int64)
    want = np.asarray(ks, dtype=np.int64) + 1
    while (lo < hi).any():
        mid = lo + (hi - lo) // 2
        count = sum(np.searchsorted(s, mid, side="right") for s in present)
        enough = count >= want
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid + 1)
    return lo.tolist()


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
    per_code = np.bincount(origin.astype(np.intp))
    codes = np.flatnonzero(per_code)
    sizes = per_code[codes]
    bounds = np.r_[0, np.cumsum(sizes)]
    # one int64 key per lag, origin above the lag (in place: these arrays are as long as the run); each origin's
    # keys take the places bounds[i]..bounds[i+1] of the key order, so partial sorting at the places the summaries
    # read gives each origin's exact order statistics, without sorting everything
    key = np.clip(lag_ns, -_LAG_LIMIT, _LAG_LIMIT - 1)
    key += _LAG_LIMIT
    high = origin.astype(np.int64)
    np.left_shift(high, _ORIGIN_SHIFT, out=high)
    key |= high
    del high
    places = {int(a) + r for a, size in zip(bounds[:-1].tolist(), sizes.tolist(), strict=True)
              for r in (0, rank(50, size), rank(90, size), rank(99, size), size - 1)}
    key.partition(sorted(places))
    key &= _LAG_MASK
    key -= _LAG_LIMIT
    lags = key
    segments = [lags[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
    by_origin = {region_names[c]: summary_ms(s) for c, s in zip(codes.tolist(), segments, strict=True)}
    ranks = [rank(p, n) for p in range(101)]
    lags.partition(sorted(set(ranks)))  # the overall order statistics, over every origin
    picked = lags[ranks].tolist()
    overall = {"p50": ms(picked[50]), "p90": ms(picked[90]), "p99": ms(picked[99]), "max": ms(picked[100])}
    cdf = [ms(v) for v in picked]
    del segments, lags, key
    series = lag_series(lag_ns=lag_ns, origin=origin, codes=codes, region_names=region_names,
                        ok_time=ok_time, t0=t0, bucket_s=bucket_s)
    return LagStats(overall, {k: v for k, v in by_origin.items() if v is not None}, cdf, series)


def lag_series(*, lag_ns: np.ndarray, origin: np.ndarray, codes: np.ndarray, region_names: Sequence[str],
               ok_time: np.ndarray, t0: int, bucket_s: int) -> dict[str, list[list[float]]]:
    """Per origin: [[bucket start (s since t0), p50 ms, p99 ms, max ms], ...] by the message's ok time."""
    bucket_ns = bucket_s * NS
    bucket = ok_time - t0
    bucket //= bucket_ns
    np.clip(bucket, 0, SERIES_POINTS - 1, out=bucket)
    n_buckets = int(bucket.max()) + 1
    rank_of = np.zeros(int(codes.max()) + 1, dtype=np.int64)
    rank_of[codes] = np.arange(len(codes))
    slot = rank_of[origin]  # origin rank, then bucket
    slot *= n_buckets
    slot += bucket
    del bucket
    top = np.full(len(codes) * n_buckets, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, slot, lag_ns)
    step = max(1, -(-len(lag_ns) // SERIES_SAMPLE))
    if len(codes) * n_buckets < 1 << 16:
        # one int64 sort key: slot (< 2**16) above the lag clipped to +-2**46 ns (+-19.5 h; the max stays exact)
        key = (slot[::step] << 47) | (np.clip(lag_ns[::step], -(1 << 46), (1 << 46) - 1) + (1 << 46))
        key.sort()
        s_slot, s_lag = key >> 47, (key & ((1 << 47) - 1)) - (1 << 46)
    else:
        order = np.lexsort((lag_ns[::step], slot[::step]))
        s_slot, s_lag = slot[::step][order], lag_ns[::step][order]
    starts = np.flatnonzero(np.r_[True, s_slot[1:] != s_slot[:-1]])
    sizes = np.diff(np.r_[starts, len(s_slot)])
    p50 = s_lag[starts + np.maximum((50 * sizes + 99) // 100 - 1, 0)] / 1e6
    p99 = s_lag[starts + np.maximum((99 * sizes + 99) // 100 - 1, 0)] / 1e6
    slots = s_slot[starts]
    peak = top[slots] / 1e6
    out: dict[str, list[list[float]]] = {region_names[c]: [] for c in codes.tolist()}
    for sl, a, b, c in zip(slots.tolist(), p50.round(3).tolist(), p99.round(3).tolist(), peak.round(3).tolist(),
                           strict=True):
        o, bk = divmod(sl, n_buckets)
        out[region_names[int(codes[o])]].append([float(bk * bucket_s), a, b, c])
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
