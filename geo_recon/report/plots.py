"""Plots for the HTML reports, drawn with matplotlib and embedded as inline SVG.

matplotlib is imported inside the functions (importing this module costs
nothing) and only through its object API: each figure gets its own Agg canvas
and all settings live in an ``rc_context``, so no global state (pyplot, the
default backend, rcParams) is touched. SVG ids are prefixed per figure so that
several plots can live in one HTML document without their clip paths clashing.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from geo_recon.report.facts import ANOMALIES

RC = MappingProxyType({
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "svg.hashsalt": "geo-recon",  # deterministic ids
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
})
WIDTH_IN = 10.0


@dataclass(frozen=True, slots=True)
class Plot:
    """One figure of a report: an id for the HTML, a caption in words, and the SVG markup (or why not)."""

    id: str
    title: str
    caption: str
    svg: str | None
    error: str | None = None


# --------------------------------------------------------------------------- machinery


@contextmanager
def _style() -> Iterator[Any]:
    import matplotlib

    with matplotlib.rc_context(dict(RC)):
        yield matplotlib


def _figure(rows: int = 1, height_per_row: float = 2.6, *, sharex: bool = True) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, max(2.2, height_per_row * rows + 0.4)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)
    return fig, [row[0] for row in axes]


def to_svg(fig: Any, prefix: str) -> str:
    """The figure as an ``<svg>`` element ready to inline: no XML prolog, ids prefixed, width 100%."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue().decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m[1]}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m[1]})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m[1]}"', text)
    text = re.sub(r'^<svg([^>]*?)\swidth="[^"]*"\sheight="[^"]*"', r'<svg\1 width="100%"', text, count=1)
    # matplotlib's <style>*{...}</style> would apply to the whole HTML page once inlined: scope it
    text = text.replace("*{stroke", f"#{prefix}-svg *{{stroke")
    text = text.replace("<svg", f'<svg id="{prefix}-svg"', 1)
    return text.replace("<svg", f'<svg role="img" class="plot"', 1).strip()


def render(plot_id: str, title: str, caption: str, draw: Callable[[], Any]) -> Plot:
    """Draw one figure; a failure becomes a plot with an error in words instead of breaking the report."""
    try:
        with _style():
            fig = draw()
            svg = to_svg(fig, plot_id)
    except Exception as exc:  # noqa: BLE001 - one bad plot must not lose the report
        return Plot(plot_id, title, caption, None, error=f"{type(exc).__name__}: {exc}")
    return Plot(plot_id, title, caption, svg)


def _colors(names: Sequence[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
               "#7f7f7f", "#bcbd22"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _empty(ax: Any, words: str) -> None:
    ax.text(0.5, 0.5, words, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _shade_faults(ax: Any, faults: Sequence[Mapping[str, Any]], *, x_end: float, label: bool) -> None:
    for f in faults:
        start = f.get("start_s")
        stop = f.get("stop_s")
        a = 0.0 if start is None else float(start)
        b = x_end if stop is None else float(stop)
        color = "#d62728" if f.get("region_loss") else "#ff7f0e"
        ax.axvspan(a, max(b, a + 1e-3), color=color, alpha=0.12, lw=0)
        if label:
            ax.text(a, 1.0, f" {f.get('id')}: {f.get('fault')} {f.get('target')}", transform=ax.get_xaxis_transform(),
                    va="top", ha="left", fontsize=7.5, color=color, clip_on=True)


def _with_gaps(points: Sequence[Sequence[float]], columns: Sequence[int]) -> tuple[list[float], list[list[float]]]:
    """x and y columns, with NaN inserted where buckets are missing (so no line bridges a silent gap)."""
    xs = [float(p[0]) for p in points]
    steps = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    step = min(steps) if steps else 1.0
    out_x: list[float] = []
    out_y: list[list[float]] = [[] for _ in columns]
    for i, p in enumerate(points):
        if i and xs[i] - xs[i - 1] > step * 1.5:
            out_x.append(xs[i - 1] + step)
            for col in out_y:
                col.append(math.nan)
        out_x.append(xs[i])
        for col, c in zip(out_y, columns, strict=True):
            col.append(float(p[c]))
    if points:  # steps-post: the last bucket lasts one step too
        out_x.append(xs[-1] + step)
        for col in out_y:
            col.append(col[-1])
    return out_x, out_y


def _wide(values: Sequence[float]) -> bool:
    """Whether values span so many orders of magnitude that a (sym)log scale reads better."""
    finite = [abs(v) for v in values if v == v]
    if not finite:
        return False
    top = max(finite)
    typical = sorted(finite)[len(finite) // 2]
    return top > 1000 and top > 20 * max(typical, 1.0)


def _cdf_scale(ax: Any, values: Sequence[float]) -> None:
    """Log x when the lags span orders of magnitude (symlog if some are not positive: clock offsets), and
    limits that hug the data (symlog would otherwise pad with empty decades)."""
    finite = [v for v in values if v == v]
    lo, hi = min(finite), max(finite)
    if hi > 100 * max(1.0, sorted(finite)[len(finite) // 2]) or (lo > 0 and hi / lo > 1000):
        if lo > 0:
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(lo, hi if hi > lo else lo + 1)


def _legend_above(ax: Any, ncols: int) -> None:
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=ncols, borderaxespad=0.2)


def _x_end(results: Mapping[str, Any]) -> float:
    run = results.get("run") or {}
    return float(run.get("duration_s") or 1.0)


# --------------------------------------------------------------------------- a run's plots


def lag_over_time(results: Mapping[str, Any]) -> Any:
    series: Mapping[str, Mapping[str, list[list[float]]]] = results.get("lag_series") or {}
    faults = results.get("faults") or []
    regions = list((results.get("regions") or {}).keys())
    colors = _colors(regions)
    origins = list(series) or ["-"]
    fig, axes = _figure(len(origins), 2.4)
    x_end = _x_end(results)
    for i, (ax, origin) in enumerate(zip(axes, origins, strict=True)):
        by_region = series.get(origin) or {}
        if not by_region:
            _empty(ax, "no message was received anywhere: no lag to show")
            continue
        values: list[float] = []
        for region, points in by_region.items():
            if not points:
                continue
            x, (p50, p99) = _with_gaps(points, (1, 2))
            color = colors.get(region, "#333333")
            ax.plot(x, p50, color=color, lw=1.4, drawstyle="steps-post", label=f"{origin} → {region} p50")
            ax.plot(x, p99, color=color, lw=1.0, ls="--", alpha=0.8, drawstyle="steps-post",
                    label=f"{origin} → {region} p99")
            values += [v for v in p99 if v == v]
        _shade_faults(ax, faults, x_end=x_end, label=i == 0)
        if _wide(values):
            ax.set_yscale("symlog", linthresh=10.0)
        ax.set_ylabel("lag (ms)")
        ax.set_title(f"messages published in {origin}, by receiving region", loc="left", fontsize=9)
        _legend_above(ax, 2 * len(by_region))
    axes[-1].set_xlabel("seconds since the run started (by acknowledgement time)")
    axes[-1].set_xlim(left=0)
    return fig


def rates_over_time(results: Mapping[str, Any]) -> Any:
    rates = results.get("rates") or {}
    per_region: Mapping[str, list[list[float]]] = rates.get("regions") or {}
    columns = list(rates.get("columns") or ["t_s", "sent", "acked", "received"])
    faults = results.get("faults") or []
    names = list(per_region) or ["-"]
    fig, axes = _figure(len(names), 2.2)
    x_end = _x_end(results)
    style = {"sent": ("#7f7f7f", "--", "sent (invoked)"), "acked": ("#1f77b4", "-", "acknowledged"),
             "received": ("#2ca02c", "-", "received (all origins)")}
    for i, (ax, region) in enumerate(zip(axes, names, strict=True)):
        points = per_region.get(region) or []
        if not points:
            _empty(ax, "no rates recorded")
            continue
        wanted = [c for c in ("sent", "acked", "received") if c in columns]
        x, ys = _with_gaps(points, [columns.index(c) for c in wanted])
        for name, y in zip(wanted, ys, strict=True):
            color, ls, label = style[name]
            ax.plot(x, y, color=color, ls=ls, lw=1.2, drawstyle="steps-post", label=label)
        _shade_faults(ax, faults, x_end=x_end, label=i == 0)
        ax.set_ylabel("messages/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"region {region}", loc="left", fontsize=9)
        _legend_above(ax, 3)
    axes[-1].set_xlabel(f"seconds since the run started ({rates.get('bucket_s', 1)} s buckets)")
    axes[-1].set_xlim(left=0)
    return fig


def lag_cdf(results: Mapping[str, Any]) -> Any:
    cdfs: Mapping[str, list[float] | None] = results.get("lag_cdf") or {}
    fig, (ax,) = _figure(1, 3.2)
    colors = _colors(list(cdfs))
    values: list[float] = []
    drawn = 0
    for region, quantiles in cdfs.items():
        if not quantiles:
            continue
        ax.plot(quantiles, list(range(len(quantiles))), color=colors[region], lw=1.5, label=f"received in {region}")
        values += quantiles
        drawn += 1
    if not drawn:
        _empty(ax, "no message was received anywhere: no lag distribution")
        return fig
    for p in (50, 99):
        ax.axhline(p, color="#555555", lw=0.8, ls=":")
        ax.text(0.005, p, f"p{p}", transform=ax.get_yaxis_transform(), va="bottom", fontsize=7.5, color="#555555")
    _cdf_scale(ax, values)
    ax.set_xlabel("lag (ms): first receipt in the region minus the acknowledgement")
    ax.set_ylabel("percentile of messages")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    return fig


def anomaly_bars(results: Mapping[str, Any]) -> Any:
    regions: Mapping[str, Mapping[str, Any]] = results.get("regions") or {}
    fig, (ax,) = _figure(1, 3.0)
    names = list(regions)
    colors = _colors(names)
    kinds = [(k, short) for k, short, _ in ANOMALIES]
    if not names:
        _empty(ax, "no regions in the results")
        return fig
    width = 0.8 / len(names)
    top = 0
    for i, region in enumerate(names):
        counts = [int(regions[region].get(k, 0)) for k, _ in kinds]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(kinds))]
        bars = ax.bar(xs, counts, width=width * 0.95, color=colors[region], label=f"region {region}")
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=7.5, padding=1)
        top = max(top, *counts)
    from matplotlib.ticker import MaxNLocator

    ax.set_xticks(range(len(kinds)), [k for k, _ in kinds])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("count")
    ax.set_ylim(0, max(1, top) * 1.18)
    ax.grid(axis="x", visible=False)
    if top == 0:
        ax.text(0.5, 0.6, "no anomaly in any region", ha="center", transform=ax.transAxes, color="#2ca02c")
    ax.legend(loc="upper right")
    return fig


def run_plots(results: Mapping[str, Any]) -> list[Plot]:
    """The four plots of report.html, in order."""
    return [
        render("fig-lag", "Replication lag over time",
               "Lag of each origin → receiving-region pair over the run (p50 solid, p99 dashed), by the time the "
               "message was acknowledged; shaded bands are fault windows (red: region loss).",
               lambda: lag_over_time(results)),
        render("fig-rates", "Send and receive rates",
               "Messages per second in each region: sent (invoked), acknowledged, and received by the region's "
               "consumers from every origin; shaded bands are fault windows.",
               lambda: rates_over_time(results)),
        render("fig-lag-cdf", "Lag distribution",
               "Cumulative distribution of the lag per receiving region: the share of messages (y) first received "
               "within a lag (x).",
               lambda: lag_cdf(results)),
        render("fig-anomalies", "Anomalies per region",
               "Count of each anomaly per observing region (lost, duplicates, reordered and unexpected make a run "
               "invalid unless allowed; redelivered and recovered never do).",
               lambda: anomaly_bars(results)),
    ]


# --------------------------------------------------------------------------- comparison plots


def compare_latency(labels: Sequence[str], metrics: Sequence[Mapping[str, float | None]]) -> Any:
    """Grouped bars: publish p50/p99 and lag p50/p99 (worst region) per run."""
    keys = [("publish_p50_ms", "publish p50"), ("publish_p99_ms", "publish p99"), ("lag_p50_ms", "lag p50"),
            ("lag_p99_ms", "lag p99")]
    fig, (ax,) = _figure(1, 3.0)
    colors = _colors(list(labels))
    width = 0.8 / max(1, len(labels))
    values: list[float] = []
    for i, (label, m) in enumerate(zip(labels, metrics, strict=True)):
        ys = [float(m.get(k) or 0.0) for k, _ in keys]
        xs = [j + (i - (len(labels) - 1) / 2) * width for j in range(len(keys))]
        bars = ax.bar(xs, ys, width=width * 0.95, color=colors[label], label=label)
        ax.bar_label(bars, labels=[("-" if m.get(k) is None else f"{m[k]:.1f}") for k, _ in keys], fontsize=7.5,
                     padding=1)
        values += ys
    ax.set_xticks(range(len(keys)), [name for _, name in keys])
    ax.set_ylabel("ms (worst region)")
    if _wide(values):
        ax.set_yscale("symlog", linthresh=10.0)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")
    return fig


def compare_cdf(labels: Sequence[str], cdfs: Sequence[Mapping[str, list[float] | None]]) -> Any:
    """Every run's lag CDF per receiving region, in one axes."""
    fig, (ax,) = _figure(1, 3.2)
    colors = _colors(list(labels))
    styles = ["-", "--", ":", "-."]
    values: list[float] = []
    drawn = 0
    for label, by_region in zip(labels, cdfs, strict=True):
        for j, (region, q) in enumerate(by_region.items()):
            if not q:
                continue
            ax.plot(q, list(range(len(q))), color=colors[label], ls=styles[j % len(styles)], lw=1.4,
                    label=f"{label}: received in {region}")
            values += q
            drawn += 1
    if not drawn:
        _empty(ax, "no run has a lag distribution")
        return fig
    _cdf_scale(ax, values)
    ax.set_xlabel("lag (ms)")
    ax.set_ylabel("percentile of messages")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    return fig
