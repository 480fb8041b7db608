"""Percentiles (nearest rank), selection across sorted arrays, series and rates."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from geo_recon.check.timing import (
    bucket_seconds,
    kth_across,
    lag_series,
    per_second,
    percentiles_ms,
    rank,
    rate_points,
    region_lag,
    summary_ms,
)

values = st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=200)


@given(values)
def test_percentiles_are_nearest_rank(xs: list[int]) -> None:
    s = sorted(xs)

    def nr(p: int) -> float:
        return round(s[max(math.ceil(p / 100 * len(s)) - 1, 0)] / 1e6, 3)

    want = {"p50": nr(50), "p90": nr(90), "p99": nr(99), "max": round(s[-1] / 1e6, 3)}
    assert percentiles_ms(np.array(xs, dtype=np.int64)) == want
    assert summary_ms(np.array(s, dtype=np.int64)) == want


def test_rank_is_exact_for_round_numbers() -> None:
    assert [rank(90, 10), rank(50, 4), rank(99, 100), rank(100, 7), rank(0, 7)] == [8, 1, 98, 6, 0]


@given(st.lists(st.lists(st.integers(-1000, 1000), max_size=30), min_size=1, max_size=5), st.data())
def test_kth_across_sorted_arrays(parts: list[list[int]], data: st.DataObject) -> None:
    merged = sorted(x for p in parts for x in p)
    if not merged:
        return
    ks = data.draw(st.lists(st.integers(0, len(merged) - 1), min_size=1, max_size=5))
    assert kth_across([np.array(sorted(p), dtype=np.int64) for p in parts], ks) == [merged[k] for k in ks]


def test_region_lag_overall_per_origin_and_cdf() -> None:
    lag = np.array([5, 1, 9, 3, 7, 100, 200], dtype=np.int64) * 1_000_000
    origin = np.array([0, 0, 0, 0, 0, 1, 1], dtype=np.int16)
    stats = region_lag(lag_ns=lag, origin=origin, region_names=["a", "b"], ok_time=np.arange(7) * 10**9, t0=0,
                       bucket_s=1)
    assert stats.by_origin["a"] == {"p50": 5.0, "p90": 9.0, "p99": 9.0, "max": 9.0}
    assert stats.by_origin["b"] == {"p50": 100.0, "p90": 200.0, "p99": 200.0, "max": 200.0}
    assert stats.overall == percentiles_ms(lag)
    assert stats.cdf is not None and stats.cdf[0] == 1.0 and stats.cdf[100] == 200.0
    assert stats.cdf == sorted(stats.cdf)


def test_lag_series_points() -> None:
    ok_time = np.array([0, 1, 2, 10, 11], dtype=np.int64) * 10**9
    lag = np.array([1, 3, 2, 10, 20], dtype=np.int64) * 1_000_000
    series = lag_series(lag_ns=lag, origin=np.zeros(5, dtype=np.int64), codes=np.array([0]), region_names=["a"],
                        ok_time=ok_time, t0=0, bucket_s=5)
    assert series == {"a": [[0.0, 2.0, 3.0, 3.0], [10.0, 10.0, 20.0, 20.0]]}


def test_bucket_seconds_keeps_at_most_2000_points() -> None:
    assert bucket_seconds(10**9) == 1
    assert bucket_seconds(1999 * 10**9) == 1
    assert bucket_seconds(2001 * 10**9) == 2
    assert bucket_seconds(86_400 * 10**9) == 44


def test_rates_per_second_in_buckets() -> None:
    t = np.array([0, 0.5, 1.2, 3.9, 99], dtype=np.float64) * 1e9
    counts = per_second(t.astype(np.int64), t0=0, n_seconds=5)
    assert counts.tolist() == [2, 1, 0, 1, 1]  # 99 s is past the end: counted in the last second
    assert rate_points([counts, counts * 2], bucket_s=2) == [[0.0, 1.5, 3.0], [2.0, 0.5, 1.0], [4.0, 0.5, 1.0]]


@given(st.lists(st.tuples(st.integers(-10**12, 10**12), st.integers(0, 3)), min_size=1, max_size=300))
def test_region_lag_equals_sorting_everything(rows: list[tuple[int, int]]) -> None:
    lag = np.array([x for x, _ in rows], dtype=np.int64)
    origin = np.array([o for _, o in rows], dtype=np.int16)
    stats = region_lag(lag_ns=lag.copy(), origin=origin, region_names=["a", "b", "c", "d"],
                       ok_time=np.zeros(len(rows), dtype=np.int64), t0=0, bucket_s=1)
    everything = np.sort(lag)
    assert stats.cdf == [round(float(everything[rank(p, len(rows))]) / 1e6, 3) for p in range(101)]
    for code, name in enumerate("abcd"):
        mine = np.sort(lag[origin == code])
        assert stats.by_origin.get(name) == summary_ms(mine)
