"""The plots draw what the results say: series per origin -> region pair, fault windows, gaps, empty data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from geo_recon.report import plots as P
from tests.unit.report.conftest import load


def spans(ax: Any) -> list[tuple[float, float]]:
    """The x extent of the shaded fault windows (axvspan rectangles) of an axes."""
    return [(round(p.get_x(), 1), round(p.get_x() + p.get_width(), 1)) for p in ax.patches
            if hasattr(p, "get_width")]


def test_lag_plot_has_one_axes_per_origin_two_lines_per_pair_and_the_fault(region_loss: dict[str, Path]) -> None:
    results = load(region_loss["async"], "results.json")
    with P._style():
        fig = P.lag_over_time(results)
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in axes] == ["messages published in a, by receiving region",
                                                        "messages published in b, by receiving region"]
    for ax in axes:
        labels = sorted(line.get_label() for line in ax.get_lines())
        origin = ax.get_title(loc="left").split()[3].rstrip(",")
        assert labels == sorted(f"{origin} → {r} {p}" for r in "ab" for p in ("p50", "p99"))
        assert spans(ax) == [(6.0, 12.0)]  # the kill, in the same time base as the series
    # a published nothing while it was down: its line has a gap (NaN), not a bridge over the kill
    a_to_b = next(line for line in axes[0].get_lines() if line.get_label() == "a → b p50")
    x, y = a_to_b.get_xdata(), a_to_b.get_ydata()
    assert any(math.isnan(v) for v in y)
    assert not any(6.5 < t < 11.5 and not math.isnan(v) for t, v in zip(x, y, strict=True))


def test_rates_plot_per_region(region_loss: dict[str, Path]) -> None:
    results = load(region_loss["strong"], "results.json")
    with P._style():
        fig = P.rates_over_time(results)
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in axes] == ["region a", "region b"]
    a = axes[0]
    acked = next(line for line in a.get_lines() if line.get_label() == "acknowledged")
    # nothing acknowledged in a while it was down (7-11 s), about 40/s before
    during = [v for t, v in zip(acked.get_xdata(), acked.get_ydata(), strict=True) if 7 <= t <= 10]
    before = [v for t, v in zip(acked.get_xdata(), acked.get_ydata(), strict=True) if 1 <= t <= 4]
    assert during and all(v == 0 for v in during)
    assert before and all(35 <= v <= 45 for v in before)


def test_empty_results_draw_a_message_not_a_crash() -> None:
    empty: dict[str, Any] = {"regions": {"a": {}}, "lag_series": {}, "lag_cdf": {"a": None}, "rates": {},
                             "faults": [], "run": {}}
    plots = P.run_plots(empty)
    assert [p.id for p in plots] == ["fig-lag", "fig-rates", "fig-lag-cdf", "fig-anomalies"]
    assert all(p.error is None and p.svg for p in plots)
    assert "no message was received anywhere" in (plots[0].svg or "")
    assert "no anomaly in any region" in (plots[3].svg or "")


def test_svg_ids_are_prefixed_per_figure(region_loss: dict[str, Path]) -> None:
    results = load(region_loss["strong"], "results.json")
    with P._style():
        one = P.to_svg(P.anomaly_bars(results), "x1")
        two = P.to_svg(P.anomaly_bars(results), "x2")
    assert one.startswith('<svg role="img" class="plot" id="x1-svg"') and 'width="100%"' in one[:300]
    assert "<?xml" not in one and "<!DOCTYPE" not in one and "<metadata>" not in one
    assert one.replace("x1-", "x2-") == two  # deterministic, and only the prefix differs
