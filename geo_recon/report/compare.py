"""Compare runs side by side: the same scenario under different schemes (strong vs async), one column per run.

``compare_runs(run_dirs, out_dir, *, force=False) -> str`` reads each run
directory, refuses runs of different scenarios or seeds unless ``force``
(:class:`CompareRefused`, exit code 2), writes comparison.json, comparison.md
and comparison.html into ``out_dir``, and returns the terminal table. Each row
(RPO, RTO, publish latency, lag, duplicates, lost, convergence, throughput,
verdict) also gets a plain-words verdict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geo_recon.errors import GeoReconError
from geo_recon.report import facts as F
from geo_recon.report.model import ReportError, RunData, load_run
from geo_recon.rundir import RunDir

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_HTML = "comparison.html"


class CompareRefused(GeoReconError):
    """Runs of different scenarios or seeds are not comparable (without --force); exit code 2."""


# --------------------------------------------------------------------------- per run


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """What the comparison needs from one run. ``None``: not measured (no results, or does not apply)."""

    label: str
    run_dir: str
    scenario: str | None
    scheme: str | None
    seed: int | None
    met: bool | None
    verdict_words: str
    has_results: bool
    lost_regions: tuple[str, ...] = ()  #: regions a region-loss fault took down
    rpo_messages: int | None = None
    rpo_s: float | None = None  #: oldest unreplicated acknowledgement before the fault, in s
    rto_s: dict[str, float | None] = field(default_factory=dict)  #: per region, worst fault; None: never recovered
    rto_failed: dict[str, bool] = field(default_factory=dict)  #: per region: did any send fail during a fault
    rto_unobserved: dict[str, bool] = field(default_factory=dict)  #: per region: None because the load ended first
    publish_p50_ms: dict[str, float] = field(default_factory=dict)  #: per origin
    publish_p99_ms: dict[str, float] = field(default_factory=dict)
    lag_p50_ms: dict[str, float] = field(default_factory=dict)  #: per receiving region
    lag_p99_ms: dict[str, float] = field(default_factory=dict)
    lag_cdf: dict[str, list[float] | None] = field(default_factory=dict)
    duplicates: int | None = None
    lost: int | None = None
    lost_by_region: dict[str, int] = field(default_factory=dict)
    faults: int = 0
    convergence_s: float | None = None  #: worst over fault stops
    never_converged: dict[str, int] | None = None  #: still missing per region, when some stop never converged
    throughput: float | None = None  #: acknowledged sends per second of workload
    billing: Mapping[str, Any] | None = None  #: billing/report.json, for billing runs
    region_loss: tuple[Mapping[str, Any], ...] = ()  #: results.json region_loss rows (per lost region)


def metrics(data: RunData, label: str) -> RunMetrics:
    head = F.headline(data)
    base = dict(label=label, run_dir=str(data.run_dir), scenario=data.scenario, scheme=data.scheme, seed=data.seed,
                met=data.met, verdict_words=head.words)
    r = data.results
    if r is None:
        return RunMetrics(**base, has_results=False)  # type: ignore[arg-type]
    regions = r.get("regions") or {}
    rpo_rows = r.get("rpo") or []
    lost_regions = tuple(dict.fromkeys(str(p.get("region")) for p in rpo_rows))
    rpo_messages = sum(int(p.get("count") or 0) for p in rpo_rows) if rpo_rows else None
    windows = [round(p["window_ms"] / 1000, 6) for p in rpo_rows if p.get("count") and p.get("window_ms") is not None]
    rpo_s = (max(windows) if windows else 0.0) if rpo_rows else None
    rto: dict[str, float | None] = {}
    failed: dict[str, bool] = {}
    unobserved: dict[str, bool] = {}
    for x in r.get("rto") or []:
        region = str(x.get("region"))
        failed[region] = failed.get(region, False) or bool(x.get("failed"))
        if not x.get("recovered") and x.get("outcome") == "not observed":
            unobserved[region] = True
        value = None if not x.get("recovered") else round(float(x.get("ms") or 0.0) / 1000, 6)
        if region not in rto:
            rto[region] = value
        elif rto[region] is not None:
            rto[region] = None if value is None else max(rto[region] or 0.0, value)
    conv = r.get("convergence") or []
    never: dict[str, int] | None = None
    convergence_s = None
    if conv:
        if all(c.get("converged") for c in conv):
            convergence_s = round(max(float(c.get("ms") or 0.0) for c in conv) / 1000, 6)
        else:
            never = {}
            for c in conv:
                if not c.get("converged"):
                    for region, n in (c.get("still_missing") or {}).items():
                        never[region] = max(never.get(region, 0), int(n))
    ok = ((r.get("run") or {}).get("sends") or {}).get("ok")
    seconds = data.workload_seconds
    totals = r.get("totals") or {}
    publish = r.get("publish_latency_ms") or {}
    return RunMetrics(
        **base, has_results=True, lost_regions=lost_regions, rpo_messages=rpo_messages, rpo_s=rpo_s,  # type: ignore[arg-type]
        rto_s=rto, rto_failed=failed, rto_unobserved=unobserved,
        publish_p50_ms={o: s["p50"] for o, s in publish.items() if s and s.get("p50") is not None},
        publish_p99_ms={o: s["p99"] for o, s in publish.items() if s and s.get("p99") is not None},
        lag_p50_ms={g: v["lag_ms"]["p50"] for g, v in regions.items() if v.get("lag_ms")},
        lag_p99_ms={g: v["lag_ms"]["p99"] for g, v in regions.items() if v.get("lag_ms")},
        lag_cdf=dict(r.get("lag_cdf") or {}),
        duplicates=int(totals.get("duplicates", 0)), lost=int(totals.get("lost", 0)),
        lost_by_region={g: int(v.get("lost", 0)) for g, v in regions.items() if v.get("lost")},
        faults=len(r.get("faults") or []), convergence_s=convergence_s, never_converged=never,
        throughput=None if ok is None or not seconds else round(ok / seconds, 3), billing=data.billing,
        region_loss=tuple(r.get("region_loss") or ()))


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    cells: tuple[str, ...]  #: one per run, for the table
    values: tuple[Any, ...]  #: one per run, raw (JSON)
    words: str


@dataclass(frozen=True, slots=True)
class Comparison:
    scenario: str | None
    seed: int | None
    runs: tuple[RunMetrics, ...]
    rows: tuple[Row, ...]
    forced: bool
    mismatches: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seed": self.seed, "forced": self.forced,
                "mismatches": list(self.mismatches),
                "runs": [{k: v for k, v in asdict(m).items() if k != "lag_cdf"} for m in self.runs],
                "rows": [{"key": r.key, "label": r.label, "values": list(r.values), "cells": list(r.cells),
                          "words": r.words} for r in self.rows]}


def _worst(values: dict[str, float]) -> float | None:
    return max(values.values()) if values else None


def _per_region(values: dict[str, float], fmt: Callable[[float], str]) -> str:
    return ", ".join(f"{k} {fmt(v)}" for k, v in values.items()) or "-"


def _join(parts: Sequence[str]) -> str:
    return "; ".join(p for p in parts if p)


def _compare_lower(what: str, pairs: Sequence[tuple[str, float | None]], fmt: Callable[[float], str], *,
                   higher_is_better: bool = False) -> str:
    """A sentence saying which run is best on one number, and by how much the others differ."""
    known = [(label, v) for label, v in pairs if v is not None]
    missing = [label for label, v in pairs if v is None]
    tail = f" ({', '.join(missing)}: not measured)" if missing else ""
    if not known:
        return f"not measured in any run ({what})."
    if len(known) == 1:
        return f"only {known[0][0]} has it: {fmt(known[0][1])} ({what}){tail}."
    values = [v for _, v in known]
    lo, hi = min(values), max(values)
    if hi - lo <= max(abs(hi), abs(lo)) * 0.05 or hi == lo:
        return (f"about the same in every run: {', '.join(f'{label} {fmt(v)}' for label, v in known)} "
                f"({what}){tail}.")
    best_label, best = (max if higher_is_better else min)(known, key=lambda lv: lv[1])
    others = []
    for label, v in known:
        if label == best_label:
            continue
        diff = v - best
        ratio = f", {v / best:.1f}×" if best > 0 and not higher_is_better and v / best >= 1.5 else ""
        pct = f", {diff / best:+.0%}" if higher_is_better and best else ""
        others.append(f"{label} {fmt(v)} ({'+' if diff >= 0 else '-'}{fmt(abs(diff))}{ratio}{pct})")
    word = "highest" if higher_is_better else "lowest"
    return f"{word} in {best_label}: {fmt(best)} ({what}); {', '.join(others)}{tail}."


def _unrecovered(m: RunMetrics, region: str) -> str:
    """An RTO with no number: "never" (the load went on) or "not observed" (it ended first)."""
    return "not observed" if m.rto_unobserved.get(region) else "never"


def _no_results(m: RunMetrics) -> str:
    return f"{m.label} has no results ({m.verdict_words.rstrip('.')})"


def _lost_cell(m: RunMetrics, cell: Callable[[Mapping[str, Any]], str]) -> str:
    if not m.has_results:
        return "-"
    return "; ".join(f"{x.get('region')}: {cell(x)}" for x in m.region_loss) or "n/a"


def _region_loss_rows(runs: Sequence[RunMetrics], undecided: list[str]) -> list[Row]:
    """Per lost region: RPO in seconds of data, exposure, RTO per client, subscriptions, what writes did."""
    out = []

    def seconds(v: Any) -> str:
        return "-" if v is None else F.fmt_ms(float(v) * 1000)

    def span(part: Mapping[str, Any] | None) -> str:
        part = part or {}
        n = int(part.get("count") or 0)
        return f"{n:,} ({seconds(part.get('span_s'))})" if n else "0"

    def words(describe: Callable[[RunMetrics, Mapping[str, Any]], str]) -> str:
        parts = [f"{m.label}: {describe(m, x)}" for m in runs for x in m.region_loss]
        parts += [f"{m.label} lost no region" for m in runs if m.has_results and not m.region_loss]
        return _join(parts + undecided) + "."

    out.append(Row("rpo_span_s", "RPO per lost region (messages, seconds of data)",
                   tuple(_lost_cell(m, lambda x: span(x.get("rpo"))) for m in runs),
                   tuple([(x.get("rpo") or {}).get("span_s") for x in m.region_loss] or None for m in runs),
                   words(lambda m, x: f"losing {x.get('region')} lost "
                         f"{F.plural(int((x.get('rpo') or {}).get('count') or 0), 'acknowledged message')}"
                         + (f" spanning {seconds((x.get('rpo') or {}).get('span_s'))} of writes"
                            if (x.get("rpo") or {}).get("count") else ""))))
    out.append(Row("exposure", "exposure at the loss (acked, not yet elsewhere)",
                   tuple(_lost_cell(m, lambda x: span(x.get("exposure"))) for m in runs),
                   tuple([(x.get("exposure") or {}).get("count") for x in m.region_loss] or None for m in runs),
                   words(lambda m, x: f"{F.plural(int((x.get('exposure') or {}).get('count') or 0), 'message')} of "
                         f"{x.get('region')} had not reached another region when it was lost")))

    def client_cell(x: Mapping[str, Any]) -> str:
        cells = []
        for c in x.get("clients") or []:
            if c.get("rto_s") is not None:
                cells.append(f"{c['client']} {seconds(c['rto_s'])}" + (f" via {c['cluster']}"
                                                                     if c.get("failed_over") else ""))
            else:
                cells.append(f"{c['client']} {c.get('outcome')}")
        return ", ".join(cells) or "no client"

    out.append(Row("client_rto", "RTO per client of the lost region",
                   tuple(_lost_cell(m, client_cell) for m in runs),
                   tuple([{c.get("client"): c.get("rto_s") for c in x.get("clients") or []} for x in m.region_loss]
                         or None for m in runs),
                   words(lambda m, x: client_cell(x) + (" (clients failed over)" if x.get("failed_over")
                                                        else " (no client failed over)"))))
    if any(x.get("subscriptions") for m in runs for x in m.region_loss):
        def sub_cell(x: Mapping[str, Any]) -> str:
            subs = x.get("subscriptions")
            if subs is None:
                return "not replicated"
            return ", ".join(f"{s['subscription']} {s['reconsumed']:,} again / {s['gaps']:,} gaps" for s in subs) or "-"
        out.append(Row("subscriptions", "replicated subscriptions (re-consumed / gaps)",
                       tuple(_lost_cell(m, sub_cell) for m in runs),
                       tuple([x.get("subscriptions") for x in m.region_loss] or None for m in runs),
                       words(lambda m, x: sub_cell(x))))

    def writes_cell(x: Mapping[str, Any]) -> str:
        if F.stalls_for_the_region(x):
            return F.stall_words(x.get("writes") or {}, rebuilt=x.get("rebuilt_s"))
        w = x.get("writes") or {}
        return (f"first ack {seconds(w.get('stalled_s'))} after the loss" if w.get("outcome") == "resumed"
                else F.stall_words(w, rebuilt=x.get("rebuilt_s")))

    out.append(Row("writes_after_loss", "writes after the loss",
                   tuple(_lost_cell(m, writes_cell) for m in runs),
                   tuple([x.get("writes") for x in m.region_loss] or None for m in runs),
                   words(lambda m, x: writes_cell(x))))
    return out


def build_rows(runs: Sequence[RunMetrics]) -> list[Row]:
    rows: list[Row] = []

    def add(key: str, label: str, cells: Sequence[str], values: Sequence[Any], words: str) -> None:
        rows.append(Row(key, label, tuple(cells), tuple(values), words))

    labels = [m.label for m in runs]
    undecided = [_no_results(m) for m in runs if not m.has_results]

    # verdict
    cells = [{True: "met", False: "NOT MET"}.get(m.met, "could not decide") for m in runs]  # type: ignore[arg-type]
    parts = []
    for m in runs:
        if m.met is True:
            parts.append(f"{m.label} met every expectation of the scenario")
        elif m.met is False:
            parts.append(f"{m.label} did not: {m.verdict_words.split(': ', 1)[-1].rstrip('.')}")
        else:
            parts.append(f"{m.label} could not decide: {m.verdict_words.rstrip('.')}")
    add("verdict", "verdict", cells, [m.met for m in runs], _join(parts) + ".")

    # RPO
    has_rpo = [m for m in runs if m.rpo_messages is not None]
    if not has_rpo:
        no_rpo = "no region-loss fault in these runs: RPO does not apply"
        add("rpo_messages", "RPO (acknowledged messages lost)",
            ["n/a" if m.has_results else "-" for m in runs], [None] * len(runs), _join([no_rpo, *undecided]) + ".")
        add("rpo_s", "RPO (seconds)", ["n/a" if m.has_results else "-" for m in runs], [None] * len(runs),
            _join([no_rpo, *undecided]) + ".")
    else:
        parts = []
        first = True
        for m in runs:
            if m.rpo_messages is None:
                parts.append(_no_results(m) if not m.has_results else f"{m.label} lost no region")
                continue
            rpo = f" (RPO {m.rpo_s:.2f} s)" if m.rpo_messages and m.rpo_s is not None else ""
            if first:
                died = ", ".join(m.lost_regions)
                parts.append(f"{m.label} lost {F.plural(m.rpo_messages, 'acknowledged message')} when region "
                             f"{died} died{rpo}")
                first = False
            else:
                parts.append(f"{m.label} lost {m.rpo_messages:,}{rpo}")
        add("rpo_messages", "RPO (acknowledged messages lost)",
            [F.fmt_count(m.rpo_messages) if m.rpo_messages is not None else ("n/a" if m.has_results else "-")
             for m in runs], [m.rpo_messages for m in runs], _join(parts) + ".")
        parts = []
        for m in runs:
            if m.rpo_s is None:
                continue
            if m.rpo_messages:
                parts.append(f"{m.label} lost acknowledged writes going back {m.rpo_s:.2f} s before the fault")
            else:
                parts.append(f"{m.label} lost nothing acknowledged (RPO 0)")
        add("rpo_s", "RPO (seconds: oldest lost acknowledgement before the fault)",
            [f"{m.rpo_s:.2f} s" if m.rpo_s is not None else ("n/a" if m.has_results else "-") for m in runs],
            [m.rpo_s for m in runs], _join(parts + undecided) + ".")

    # RTO
    def rto_cell(m: RunMetrics) -> str:
        if not m.has_results:
            return "-"
        if not m.rto_s:
            return "n/a"
        return ", ".join(f"{g} {_unrecovered(m, g) if v is None else (f'{v:.2f} s' if m.rto_failed.get(g) else '0 s')}"
                         for g, v in m.rto_s.items())

    regions = list(dict.fromkeys(g for m in runs for g in m.rto_s))
    if not regions:
        words = _join(["no fault in these runs: RTO does not apply", *undecided]) + "."
    else:
        parts = []
        for g in regions:
            per = []
            for m in runs:
                if g not in m.rto_s:
                    continue
                v = m.rto_s[g]
                per.append(f"{m.label} " + (("never recovered" if _unrecovered(m, g) == "never" else
                                             "recovery not observed (the load ended first)") if v is None else
                                            (f"{v:.2f} s" if m.rto_failed.get(g) else "no failed send")))
            parts.append(f"publishing in {g}: {', '.join(per)}")
        words = _join(parts + undecided) + "."
    add("rto", "RTO (worst per region)", [rto_cell(m) for m in runs], [m.rto_s or None for m in runs], words)
    if any(m.region_loss for m in runs):
        rows.extend(_region_loss_rows(runs, undecided))

    # latencies
    for key, label, attr, what in (
            ("publish_p50_ms", "publish latency p50", "publish_p50_ms", "worst origin"),
            ("publish_p99_ms", "publish latency p99", "publish_p99_ms", "worst origin"),
            ("lag_p50_ms", "end-to-end lag p50", "lag_p50_ms", "worst receiving region"),
            ("lag_p99_ms", "end-to-end lag p99", "lag_p99_ms", "worst receiving region")):
        values = [getattr(m, attr) for m in runs]
        add(key, label, [_per_region(v, F.fmt_ms) if m.has_results else "-" for m, v in zip(runs, values, strict=True)],
            [v or None for v in values],
            _compare_lower(what, [(m.label, _worst(v)) for m, v in zip(runs, values, strict=True)], F.fmt_ms))

    # duplicates, lost
    dups = [m for m in runs if m.duplicates is not None]
    if dups and all(m.duplicates == 0 for m in dups):
        dup_words = "no run stored any message more than once"
    else:
        dup_words = _join([f"{m.label} stored {F.plural(m.duplicates or 0, 'message')} more than once"
                           if m.duplicates else f"{m.label} none" for m in dups])
    add("duplicates", "duplicates (stored more than once)",
        [F.fmt_count(m.duplicates) if m.duplicates is not None else "-" for m in runs], [m.duplicates for m in runs],
        _join([dup_words, *undecided]) + ".")
    lost_parts = []
    for m in runs:
        if m.lost is None:
            continue
        if m.lost:
            where = (f"in {next(iter(m.lost_by_region))}" if len(m.lost_by_region) == 1 else
                     "counted per region: " + ", ".join(f"{g} {n:,}" for g, n in m.lost_by_region.items()))
            lost_parts.append(f"{m.label} lost {F.plural(m.lost, 'acknowledged message')} {where}")
        else:
            lost_parts.append(f"{m.label} lost none")
    lost_words = ("no run lost any acknowledged message" if lost_parts and all(m.lost == 0 for m in runs
                                                                                if m.lost is not None)
                  else _join(lost_parts))
    add("lost", "lost (acknowledged, never received; per region)",
        [(F.fmt_count(m.lost) + (f" ({_per_region(m.lost_by_region, F.fmt_count)})" if m.lost else ""))
         if m.lost is not None else "-" for m in runs], [m.lost for m in runs], _join([lost_words, *undecided]) + ".")

    # convergence
    def conv_cell(m: RunMetrics) -> str:
        if not m.has_results:
            return "-"
        if m.never_converged is not None:
            missing = ", ".join(f"{g} {n:,}" for g, n in m.never_converged.items() if n)
            return f"never ({missing} missing)" if missing else "never"
        return "n/a" if m.convergence_s is None else f"{m.convergence_s:.2f} s"

    parts = []
    for m in runs:
        if not m.has_results:
            continue
        if m.never_converged is not None:
            missing = ", ".join(f"{n:,} in {g}" for g, n in m.never_converged.items() if n)
            parts.append(f"{m.label} never converged ({missing or 'some'} still missing)")
        elif m.convergence_s is not None:
            parts.append(f"{m.label} converged {m.convergence_s:.2f} s after the fault healed")
    conv_words = ("no fault was healed in these runs: convergence does not apply" if not parts
                  else ", ".join(parts))
    add("convergence", "convergence after the heal", [conv_cell(m) for m in runs],
        [m.convergence_s for m in runs], _join([conv_words, *undecided]) + ".")

    # throughput
    add("throughput", "throughput (acknowledged/s)", [F.fmt_rate(m.throughput) for m in runs],
        [m.throughput for m in runs],
        _compare_lower("acknowledged sends per second of workload", [(m.label, m.throughput) for m in runs],
                       F.fmt_rate, higher_is_better=True))
    if any(m.billing for m in runs):
        _billing_rows(runs, add)
    assert len({r.key for r in rows}) == len(rows), [r.key for r in rows]
    assert all(len(r.cells) == len(labels) for r in rows)
    return rows


def _billing_rows(runs: Sequence[RunMetrics], add: Callable[..., None]) -> None:
    """The billing reconciliation: what it found, and the false exceptions replication caused."""
    def cell(m: RunMetrics, key: str) -> str:
        return "-" if not m.billing else f"{m.billing.get(key, 0):,}"

    add("billing_false", "billing: false exceptions from replication (loss, lag)",
        [cell(m, "false_exceptions") for m in runs], [(m.billing or {}).get("false_exceptions") for m in runs],
        "; ".join(f"{m.label}: {m.billing['false_exceptions']:,} exception(s) the reconciler raised only because "
                  f"replication lost or delayed a message" if m.billing else f"{m.label}: not a billing run"
                  for m in runs) + ".")
    add("billing_unavailable", "billing: exceptions from sources that could not publish",
        [cell(m, "source_unavailable") for m in runs], [(m.billing or {}).get("source_unavailable") for m in runs],
        "; ".join(f"{m.label}: {m.billing.get('source_unavailable', 0):,}" for m in runs if m.billing)
        + " (a system whose region was down, or whose writes stalled, published late or not at all).")
    add("billing_found", "billing: injected business errors found",
        [("-" if not m.billing else f"{m.billing['found']:,}/{m.billing['injected']:,}") for m in runs],
        [(m.billing or {}).get("found") for m in runs],
        "; ".join(f"{m.label} found {m.billing['found']:,} of {m.billing['injected']:,}"
                  + (f" ({m.billing['missed'] - m.billing['missed_unexplained']:,} hidden by the outage)"
                     if m.billing.get("missed") else "")
                  + (f", {m.billing['unexplained']:,} exception(s) without a cause" if m.billing.get("unexplained")
                     else "") for m in runs if m.billing) + ".")

    def delay(m: RunMetrics) -> float | None:
        return ((m.billing or {}).get("throughput") or {}).get("verdict_delay_ms_p99")

    add("billing_delay", "billing: verdict final after its event time (p99)",
        [("-" if delay(m) is None else f"{delay(m):,.0f} ms") for m in runs], [delay(m) for m in runs],
        _compare_lower("p99 time from a transaction's event time to its final verdict",
                       [(m.label, delay(m)) for m in runs], lambda v: f"{v:,.0f} ms"))


# --------------------------------------------------------------------------- the comparison


def _labels(runs: Sequence[RunData]) -> list[str]:
    schemes = [d.scheme for d in runs]
    if all(schemes) and len(set(schemes)) == len(schemes):
        return [str(s) for s in schemes]
    # The same scheme on several Pulsar versions (`run --pulsar V1,V2`).
    versions = [((d.resolved or {}).get("versions") or {}).get("pulsar") for d in runs]
    by_version = [f"{s} {v}" for s, v in zip(schemes, versions, strict=True)]
    if all(versions) and len(set(by_version)) == len(by_version):
        return by_version
    names = [d.run_dir.name for d in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{i + 1}:{name}" for i, name in enumerate(names)]


def mismatches(runs: Sequence[RunData]) -> list[str]:
    """Why the runs are not the same experiment (different scenarios or seeds, or unknown)."""
    out = []
    scenarios = {d.scenario for d in runs}
    if len(scenarios) > 1 or None in scenarios:
        out.append("scenarios differ: " + ", ".join(f"{d.run_dir} is {d.scenario or 'unknown'}" for d in runs))
    seeds = {d.seed for d in runs}
    if len(seeds) > 1 or None in seeds:
        out.append("seeds differ: " + ", ".join(
            f"{d.run_dir} has seed {d.seed if d.seed is not None else 'unknown'}" for d in runs))
    return out


def compare(run_dirs: Sequence[str | os.PathLike[str]], *, force: bool = False) -> Comparison:
    if len(run_dirs) < 2:
        raise ReportError("compare needs at least two run directories")
    runs = [load_run(d) for d in run_dirs]
    problems = mismatches(runs)
    if problems and not force:
        raise CompareRefused("refusing to compare runs of different experiments: " + "; ".join(problems)
                             + " (--force compares them anyway)")
    labels = _labels(runs)
    measured = [metrics(d, label) for d, label in zip(runs, labels, strict=True)]
    return Comparison(scenario=runs[0].scenario, seed=runs[0].seed, runs=tuple(measured),
                      rows=tuple(build_rows(measured)), forced=bool(problems), mismatches=tuple(problems))


def text(c: Comparison) -> str:
    from geo_recon.report.text import table

    head = (f"comparison of {c.scenario or 'unknown scenario'} (seed {c.seed if c.seed is not None else '?'}): "
            + ", ".join(f"{m.label} = {m.run_dir}" for m in c.runs))
    lines = [head]
    if c.mismatches:
        lines += [f"warning (--force): {m}" for m in c.mismatches]
    lines.append("")
    lines += table([["", *(m.label for m in c.runs)], *([r.label, *r.cells] for r in c.rows)],
                   left=tuple(range(len(c.runs) + 1)), indent="  ")
    lines += ["", "in words:"]
    lines += [f"  - {r.label}: {r.words}" for r in c.rows]
    return "\n".join(lines)


def markdown(c: Comparison) -> str:
    from geo_recon.report.markdown import table

    lines = [f"# geo-recon comparison: {c.scenario or 'unknown scenario'}", "",
             f"Seed {c.seed if c.seed is not None else '?'}; runs: "
             + ", ".join(f"**{m.label}** (`{m.run_dir}`)" for m in c.runs), ""]
    lines += [f"> Compared with --force: {m}" for m in c.mismatches]
    lines += table(["", *(m.label for m in c.runs)], [[r.label, *r.cells] for r in c.rows]) + [""]
    lines += ["## In words", ""] + [f"- **{r.label}**: {r.words}" for r in c.rows] + [""]
    return "\n".join(lines)


def html(c: Comparison, out_dir: Path) -> str:
    from geo_recon.report import plots
    from geo_recon.report.html import e, figure, page

    labels = [m.label for m in c.runs]
    drawn = [m for m in c.runs if m.has_results]
    figs = [
        plots.render("fig-compare-latency", "Latency per run",
                     "Publish latency (invoke to acknowledgement) and end-to-end lag, p50 and p99, of the worst "
                     "origin or receiving region in each run.",
                     lambda: plots.compare_latency([m.label for m in drawn],
                                                   [{"publish_p50_ms": _worst(m.publish_p50_ms),
                                                     "publish_p99_ms": _worst(m.publish_p99_ms),
                                                     "lag_p50_ms": _worst(m.lag_p50_ms),
                                                     "lag_p99_ms": _worst(m.lag_p99_ms)} for m in drawn])),
        plots.render("fig-compare-cdf", "Lag distribution per run",
                     "Cumulative distribution of the end-to-end lag, per run and receiving region.",
                     lambda: plots.compare_cdf([m.label for m in drawn], [m.lag_cdf for m in drawn])),
    ]
    head_cells = "".join(f"<th>{e(label)}</th>" for label in labels)
    body_rows = []
    for r in c.rows:
        cells = "".join(f'<td class="num{" bad" if r.key == "verdict" and cell == "NOT MET" else ""}'
                        f'{" good" if r.key == "verdict" and cell == "met" else ""}">{e(cell)}</td>' for cell in r.cells)
        body_rows.append(f'<tr id="row-{e(r.key)}"><th>{e(r.label)}</th>{cells}<td>{e(r.words)}</td></tr>')
    links = []
    for m in c.runs:
        report = RunDir(Path(m.run_dir)).file(RunDir.REPORT_HTML)
        if report.exists():
            links.append(f'<li><a href="{e(os.path.relpath(report, out_dir))}">{e(m.label)}: {e(m.run_dir)}</a></li>')
        else:
            links.append(f"<li>{e(m.label)}: {e(m.run_dir)} (no report.html)</li>")
    body = [f"<header><h1>geo-recon comparison: {e(c.scenario or 'unknown scenario')}</h1>",
            f'<p class="ident">seed {e(c.seed if c.seed is not None else "?")} · '
            + " vs ".join(e(label) for label in labels) + "</p></header>"]
    if c.mismatches:
        body.append('<ul class="notes">' + "".join(f"<li>Compared with --force: {e(m)}</li>" for m in c.mismatches)
                    + "</ul>")
    body.append('<section id="comparison"><h2>Side by side</h2><div class="scroll"><table id="comparison-table">'
                f"<thead><tr><th></th>{head_cells}<th>in words</th></tr></thead><tbody>{''.join(body_rows)}"
                "</tbody></table></div></section>")
    body.append('<section id="plots"><h2>Plots</h2>' + "".join(figure(f) for f in figs) + "</section>")
    body.append('<section id="runs"><h2>Runs</h2><ul>' + "".join(links) + "</ul></section>")
    return page(f"geo-recon comparison: {c.scenario or 'unknown'}", body)


def compare_runs(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 force: bool = False) -> str:
    """Compare runs; write comparison.json/.md/.html into ``out_dir``; return the terminal table."""
    from geo_recon.report import write_text

    c = compare(run_dirs, force=force)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / COMPARISON_JSON, json.dumps(c.to_json(), indent=2) + "\n")
    write_text(out / COMPARISON_MD, markdown(c))
    write_text(out / COMPARISON_HTML, html(c, out))
    return text(c)


def default_out_dir(run_dirs: Sequence[str | os.PathLike[str]]) -> Path:
    """Beside the first run: ``compare-<scenario>-<label>-vs-<label>``."""
    runs = [load_run(d) for d in run_dirs]
    name = "-vs-".join(_labels(runs))
    return Path(run_dirs[0]).resolve().parent / f"compare-{runs[0].scenario or 'runs'}-{name}"
