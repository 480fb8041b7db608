"""The words and numbers every report shares: one place decides how a run is described.

The terminal summary, report.md and report.html all render these values, so
they never disagree. Pure functions of :class:`~geo_recon.report.model.RunData`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geo_recon.report.model import Judgement, RunData

#: Anomaly kinds in report order, with a short column name and a phrase.
ANOMALIES: tuple[tuple[str, str, str], ...] = (
    ("lost", "lost", "acknowledged but never received"),
    ("stored_not_consumed", "reader-only", "stored, but never delivered to a consumer"),
    ("duplicates", "dup", "stored more than once"),
    ("redelivered", "redeliv", "delivered again with the same msg_id"),
    ("reordered", "reorder", "received out of order"),
    ("unexpected", "unexp", "received but never sent"),
    ("recovered", "recov", "unknown send outcome, but received (not a violation)"),
)
ANOMALY_KINDS = tuple(k for k, _, _ in ANOMALIES)


# --------------------------------------------------------------------------- number formats


def fmt_ms(value: float | None, *, unit: bool = True) -> str:
    """A duration given in ms, to a sensible precision: 0.42 ms, 8.28 ms, 17.0 ms, 632 ms, 1.85 s."""
    if value is None:
        return "-"
    v = float(value)
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} s" if unit else f"{v:.0f}"
    if abs(v) >= 100:
        text = f"{v:.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2f}"
    return f"{text} ms" if unit else text


def fmt_s(value: float | None) -> str:
    """Seconds since the run started: 12.345 s."""
    return "-" if value is None else f"{float(value):.3f} s"


def fmt_count(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}/s"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def lag_triplet(stats: Mapping[str, float] | None) -> str:
    """p50/p99/max without units (the column header says ms)."""
    if not stats:
        return "-"
    return "/".join(fmt_ms(stats.get(k), unit=False) for k in ("p50", "p99", "max"))


# --------------------------------------------------------------------------- the verdict


@dataclass(frozen=True, slots=True)
class Headline:
    status: str  #: "met" | "not-met" | "undecided"
    label: str  #: MET / NOT MET / COULD NOT DECIDE / NO VERDICT
    words: str  #: one sentence


def headline(data: RunData) -> Headline:
    met = data.met
    verdict = data.verdict
    if met is True:
        n = len(verdict.judgements) if verdict else 0
        words = (f"every expectation of the scenario was met ({plural(n, 'check')})." if n
                 else "the scenario sets no limits, and the run completed.")
        return Headline("met", "MET", words)
    if met is False:
        if verdict is not None and verdict.judgements:
            bad = verdict.not_met
            return Headline("not-met", "NOT MET",
                            f"{len(bad)} of {len(verdict.judgements)} expectations not met: "
                            + "; ".join(j.words for j in bad[:3]) + ("; ..." if len(bad) > 3 else "") + ".")
        return Headline("not-met", "NOT MET", "the run did not meet its expectations.")
    if data.interrupted:
        return Headline("undecided", "COULD NOT DECIDE", "the run was interrupted; nothing is decided.")
    if data.error:
        return Headline("undecided", "COULD NOT DECIDE", f"{data.error}.")
    if verdict is not None and verdict.undecided:
        open_lines = verdict.undecided
        return Headline("undecided", "COULD NOT DECIDE", "; ".join(j.words for j in open_lines[:3])
                        + ("; ..." if len(open_lines) > 3 else "") + ".")
    if verdict is not None and not verdict.judgements:
        return Headline("undecided", "COULD NOT DECIDE", "nothing was judged.")
    if data.results is not None and verdict is None:
        valid = data.results.get("valid")
        return Headline("undecided", "NO VERDICT",
                        "no scenario expectations were judged (no verdict.json); the checker found the history "
                        + ("valid." if valid else f"INVALID ({', '.join(data.results.get('anomaly_types') or [])})."))
    return Headline("undecided", "COULD NOT DECIDE", "there are no results to judge.")


def checker_line(results: Mapping[str, Any]) -> str:
    """The checker's verdict and what it read, in one line."""
    run = results.get("run") or {}
    sends = run.get("sends") or {}
    verdict = "VALID" if results.get("valid") else f"INVALID ({', '.join(results.get('anomaly_types') or [])})"
    allowed = results.get("allowed") or []
    extra = f"; allowed: {', '.join(allowed)}" if allowed else ""
    return (f"checker: {verdict}{extra}: {fmt_count(sends.get('ok', 0))} acknowledged sends from "
            f"{run.get('producers', '?')} producer(s) in {len(run.get('regions') or [])} region(s), "
            f"{fmt_count(run.get('receipts', 0))} receipts over {run.get('duration_s', 0):g} s")


def met_word(met: bool | None) -> str:
    """A judgement's state in one word: met, NOT MET, or UNDECIDED (could not be decided)."""
    return {True: "met", False: "NOT MET"}.get(met, "UNDECIDED")  # type: ignore[arg-type]


def judgement_value(value: float | None) -> str:
    return "-" if value is None else (fmt_count(value) if float(value).is_integer() else f"{value:g}")


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True, slots=True)
class RegionRow:
    region: str
    expected: int
    counts: Mapping[str, int]
    receipts: int
    lag: Mapping[str, float] | None


def region_rows(results: Mapping[str, Any]) -> list[RegionRow]:
    out = []
    for name, r in (results.get("regions") or {}).items():
        out.append(RegionRow(region=name, expected=int(r.get("expected", 0)),
                             counts={k: int(r.get(k, 0)) for k in ANOMALY_KINDS},
                             receipts=int(r.get("receipts", 0)), lag=r.get("lag_ms")))
    return out


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True, slots=True)
class FaultRow:
    id: str
    what: str  #: "kill a"
    start_s: float | None
    stop_s: float | None
    region_loss: bool
    convergence: str  #: words
    rpo: tuple[str, ...]  #: words, one per lost region
    rto: tuple[str, ...]  #: words, one per region
    region_loss_rows: tuple[tuple[str, ...], ...] = ()  #: per lost region, :func:`region_loss_lines`


def convergence_words(c: Mapping[str, Any] | None) -> str:
    if c is None:
        return "no stop recorded: convergence not measured"
    if c.get("converged"):
        ms = c.get("ms") or 0.0
        return "converged at once (nothing was behind)" if ms == 0 else f"converged {fmt_ms(ms)} after the stop"
    missing = ", ".join(f"{r} {n}" for r, n in (c.get("still_missing") or {}).items() if n)
    return f"never converged (still missing: {missing or 'unknown'})"


def rpo_words(p: Mapping[str, Any]) -> str:
    count = int(p.get("count") or 0)
    head = f"RPO {p.get('region')}: {plural(count, 'acknowledged message')} never left it"
    if count and p.get("window_ms") is not None:
        head += (f" (oldest {fmt_ms(p['window_ms'])} before the fault; their acks span "
                 f"{fmt_ms(p.get('span_ms') or 0.0)})")
    if p.get("note"):
        head += f" ({p['note']})"
    return head


def rto_words(x: Mapping[str, Any]) -> str:
    region = x.get("region")
    if not x.get("failed"):
        return f"{region} no failed send"
    if not x.get("recovered"):
        if x.get("outcome") == "not observed":  # the load ended before the region could be seen recovering
            return (f"{region} recovery not observed (first failure at {fmt_s(x.get('first_failure_s'))}; "
                    f"the load ended at {fmt_s(x.get('load_end_s'))})")
        return f"{region} never recovered (first failure at {fmt_s(x.get('first_failure_s'))})"
    return f"{region} {fmt_ms(x.get('ms'))}"


def _seconds(value: float | None) -> str:
    """A duration given in seconds, to a sensible precision (as :func:`fmt_ms`)."""
    return "-" if value is None else fmt_ms(float(value) * 1000)


def _client_words(c: Mapping[str, Any]) -> str:
    who = f"{c.get('client')} ({c.get('role')})"
    if c.get("outcome") == "recovered":
        served = f" on {c.get('cluster')}" + (", failed over" if c.get("failed_over") else "")
        return f"{who} {_seconds(c.get('rto_s'))}{served}"
    tail = ", failed over" if c.get("failed_over") else ""
    return f"{who} {'never' if c.get('outcome') == 'never' else 'not observed (the load ended first)'}{tail}"


def stalls_for_the_region(row: Mapping[str, Any]) -> bool:
    """One stretched cluster (strong) and no client failed over: whether writes stalled is the question."""
    from geo_recon.errors import ConfigError
    from geo_recon.schemes import get

    try:
        stretched = get(str(row.get("scheme"))).stretched
    except ConfigError:
        return False
    return stretched and not row.get("failed_over")


def region_loss_lines(row: Mapping[str, Any], *, with_rpo: bool = True) -> list[str]:
    """What losing one region cost, in words: RPO, exposure, RTO per client, subscriptions, writes.

    ``with_rpo=False`` leaves out the RPO line, for reports that already show :func:`rpo_words`."""
    region = row.get("region")
    rebuilt = row.get("rebuilt_s")
    head = (f"region {region} lost at {fmt_s(row.get('loss_s'))} ({row.get('fault')} {row.get('fault_id')}; "
            + (f"rebuilt at {fmt_s(rebuilt)})" if rebuilt is not None
               else (f"back at {fmt_s(row['healed_s'])})" if row.get("healed_s") is not None
                     else "not back before the run ended)")))
    out = [head]
    rpo = row.get("rpo") or {}
    count = int(rpo.get("count") or 0)
    if with_rpo:
        out.append(f"RPO {region}: {plural(count, 'acknowledged message')} produced in {region} never reached "
                   "another region" + (f", acks spanning {_seconds(rpo.get('span_s'))} ({fmt_s(rpo.get('first_ok_s'))}"
                                       f" .. {fmt_s(rpo.get('last_ok_s'))})" if count else ""))
    exp = row.get("exposure") or {}
    n = int(exp.get("count") or 0)
    out.append(f"exposure at the loss: {plural(n, 'acknowledged message')} of {region} not yet received elsewhere"
               + (f", acks spanning {_seconds(exp.get('span_s'))}" if n else ""))
    clients = row.get("clients") or []
    out.append("RTO per client: " + ("; ".join(_client_words(c) for c in clients) if clients
                                     else f"no client of {region} in the history"))
    subs = row.get("subscriptions")
    for sub in subs or []:
        gaps = int(sub.get("gaps") or 0)
        shown = list(sub.get("gap_examples") or [])
        examples = ", ".join(shown + (["..."] if gaps > len(shown) else []))
        out.append(f"subscription {sub.get('subscription')}: {plural(int(sub.get('reconsumed') or 0), 'message')} "
                   f"re-consumed after failover, {plural(gaps, 'gap')}" + (f" ({examples})" if gaps else ""))
    if subs is not None and not subs:
        out.append("replicated subscriptions: no receipt of the region names a subscription")
    writes = row.get("writes") or {}
    if stalls_for_the_region(row):
        out.append(stall_words(writes, rebuilt=rebuilt))
    elif writes.get("outcome") == "resumed":
        out.append(f"writes: first acknowledgement in any region {_seconds(writes.get('stalled_s'))} after the loss")
    else:
        out.append(stall_words(writes, rebuilt=rebuilt))
    if row.get("not_counted"):
        out.append(f"not counted: {plural(int(row['not_counted']), 'acknowledged message')} region {region}'s "
                   "consumers could not receive while it was lost (reported, not counted as lost there)")
    return out


def stall_words(writes: Mapping[str, Any], *, rebuilt: float | None) -> str:
    """The plain sentence about writes after a loss (strong: the stretched cluster stalls or not)."""
    if writes.get("outcome") == "resumed":
        words = f"writes stalled for {_seconds(writes.get('stalled_s'))}"
        if writes.get("after_rebuild_s") is not None:
            words += f": they resumed {_seconds(writes['after_rebuild_s'])} after the rebuild"
        elif rebuilt is not None and writes.get("resumed_s") is not None:
            # the rebuild is declared done after its own checks (configure, a round trip); writes may resume
            # as soon as the new bookies join, just before that
            words += (f" (they resumed {_seconds(rebuilt - float(writes['resumed_s']))} before the rebuilt region "
                      "was declared back)")
        return words
    if writes.get("outcome") == "never":
        return ("writes stalled and never resumed" + (" after the rebuild" if rebuilt is not None else "")
                + " before the run ended")
    return "writes stalled; whether they resume was not observed (the load ended first)"


def fault_rows(results: Mapping[str, Any]) -> list[FaultRow]:
    conv = {c.get("fault_id"): c for c in results.get("convergence") or []}
    out = []
    for w in results.get("faults") or []:
        fid = w.get("id")
        out.append(FaultRow(
            id=str(fid), what=f"{w.get('fault')} {w.get('target')}", start_s=w.get("start_s"),
            stop_s=w.get("stop_s"), region_loss=bool(w.get("region_loss")),
            convergence=convergence_words(conv.get(fid)),
            rpo=tuple(rpo_words(p) for p in results.get("rpo") or [] if p.get("fault_id") == fid),
            rto=tuple(rto_words(x) for x in results.get("rto") or [] if x.get("fault_id") == fid),
            region_loss_rows=tuple(tuple(region_loss_lines(x, with_rpo=False)) for x in results.get("region_loss") or []
                              if x.get("fault_id") == fid)))
    return out


def scheduled_faults(data: RunData) -> list[Mapping[str, Any]]:
    """The schedule the orchestrator planned (run.json or resolved.json): shown when there are no results."""
    for source in (data.run, data.resolved):
        schedule = (source or {}).get("schedule")
        if isinstance(schedule, list):
            return [s for s in schedule if isinstance(s, dict)]
    return []


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True, slots=True)
class CaseGroup:
    kind: str
    phrase: str
    total: int
    explanations: tuple[str, ...]


def case_groups(results: Mapping[str, Any], *, limit: int | None = None) -> list[CaseGroup]:
    """The first cases of each anomaly found, with the checker's explanation in words."""
    totals = results.get("totals") or {}
    phrases = {k: p for k, _, p in ANOMALIES}
    out = []
    for kind, cases in (results.get("cases") or {}).items():
        if not cases:
            continue
        shown = cases if limit is None else cases[:limit]
        out.append(CaseGroup(kind=kind, phrase=phrases.get(kind, kind), total=int(totals.get(kind, len(cases))),
                             explanations=tuple(str(c.get("explanation", c)) for c in shown)))
    return out


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class WorkerRow:
    region: str
    fate: str
    sent: Any
    acked: Any
    failed: Any
    unknown: Any
    received: Any
    rate: str
    errors: tuple[str, ...]


def worker_rows(data: RunData) -> list[WorkerRow]:
    out = []
    for region, w in ((data.run or {}).get("workers") or {}).items():
        if not isinstance(w, dict):
            continue
        rates = w.get("achieved_rates") or {}
        rate = ", ".join(f"{p} {fmt_rate(v)}" for p, v in rates.items()) if isinstance(rates, dict) else ""
        errors = w.get("errors") or []
        out.append(WorkerRow(region=region, fate=str(w.get("fate", "?")), sent=w.get("sent"), acked=w.get("acked"),
                             failed=w.get("failed"), unknown=w.get("unknown"), received=w.get("received"),
                             rate=rate, errors=tuple(str(e) for e in errors) if isinstance(errors, list) else ()))
    return out


def identity_line(data: RunData) -> str:
    parts = [data.scenario or "(scenario unknown)", f"{data.scheme or '?'} scheme",
             f"seed {data.seed if data.seed is not None else '?'}"]
    if data.regions:
        parts.append(f"regions {', '.join(data.regions)}")
    if data.run_id:
        parts.append(f"run {data.run_id}")
    pulsar = ((data.resolved or {}).get("versions") or {}).get("pulsar")
    if pulsar:
        parts.append(f"Pulsar {pulsar}")
    return " · ".join(parts)


def judgement_rows(data: RunData) -> Sequence[Judgement]:
    return data.verdict.judgements if data.verdict else ()
