"""Judge a checked run against a scenario's expectations. Pure: results in, verdict out.

Each limit becomes one line that says what was allowed, what was measured and
where; ``met`` is True when every judged line holds, False when one does not,
and None when the run could not be decided (no results).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from geo_recon.scenario import Limits


@dataclass(frozen=True)
class Judgement:
    name: str
    limit: float
    actual: float | None
    met: bool
    where: str
    words: str


def judge(results: dict[str, Any] | None, limits: Limits,
          billing: dict[str, Any] | None = None) -> tuple[bool | None, list[Judgement]]:
    if not results:
        return None, []
    out: list[Judgement] = []
    if billing is not None:
        out += _judge_billing(billing, limits)
    regions = results.get("regions", {})

    def per_region(limit_name: str, field: str, noun: str) -> None:
        limit = getattr(limits, limit_name)
        if limit is None:
            return
        for region, r in regions.items():
            actual = r.get(field, 0)
            out.append(Judgement(limit_name, limit, actual, actual <= limit, region,
                                 f"region {region}: {actual} {noun} (at most {limit} allowed)"))

    per_region("max_lost", "lost", "acknowledged message(s) lost")
    per_region("max_duplicates", "duplicates", "message(s) stored more than once")
    per_region("max_reordered", "reordered", "message(s) out of order")
    per_region("max_unexpected", "unexpected", "message(s) received that were never sent")
    if limits.max_lag_p99_ms is not None:
        for region, r in regions.items():
            p99 = (r.get("lag_ms") or {}).get("p99")
            out.append(Judgement("max_lag_p99_ms", limits.max_lag_p99_ms, p99,
                                 p99 is not None and p99 <= limits.max_lag_p99_ms, region,
                                 f"region {region}: replication lag p99 {p99} ms (at most {limits.max_lag_p99_ms:g})"))
    if limits.min_delivered_fraction is not None:
        for region, r in regions.items():
            expected = r.get("expected", 0)
            fraction = 1.0 if not expected else 1 - r.get("lost", 0) / expected
            out.append(Judgement("min_delivered_fraction", limits.min_delivered_fraction, round(fraction, 6),
                                 fraction >= limits.min_delivered_fraction, region,
                                 f"region {region}: {fraction:.4%} of acknowledged messages delivered "
                                 f"(at least {limits.min_delivered_fraction:.2%})"))
    if limits.max_convergence_s is not None:
        for c in results.get("convergence", []):
            seconds = None if c.get("ms") is None else c["ms"] / 1000
            met = bool(c.get("converged")) and seconds is not None and seconds <= limits.max_convergence_s
            words = (f"after {c['fault_id']} healed: converged in {seconds:.1f} s" if c.get("converged")
                     else f"after {c['fault_id']} healed: never converged (missing {c.get('still_missing')})")
            out.append(Judgement("max_convergence_s", limits.max_convergence_s, seconds, met, c["fault_id"],
                                 f"{words} (at most {limits.max_convergence_s:g} s)"))
    for p in results.get("rpo", []):
        if limits.max_rpo_messages is not None:
            out.append(Judgement("max_rpo_messages", limits.max_rpo_messages, p["count"],
                                 p["count"] <= limits.max_rpo_messages, f"{p['fault_id']}/{p['region']}",
                                 f"losing region {p['region']} ({p['fault_id']}): {p['count']} acknowledged "
                                 f"message(s) never left it (at most {limits.max_rpo_messages})"))
        if limits.max_rpo_s is not None:
            span = (p.get("span_ms") or 0) / 1000
            out.append(Judgement("max_rpo_s", limits.max_rpo_s, span, span <= limits.max_rpo_s,
                                 f"{p['fault_id']}/{p['region']}",
                                 f"losing region {p['region']}: unreplicated writes span {span:.2f} s "
                                 f"(at most {limits.max_rpo_s:g} s)"))
    if limits.max_rto_s is not None:
        for r in results.get("rto", []):
            if not r.get("failed"):
                continue
            seconds = None if r.get("ms") is None else r["ms"] / 1000
            met = bool(r.get("recovered")) and seconds is not None and seconds <= limits.max_rto_s
            words = (f"region {r['region']} during {r['fault_id']}: publishing recovered in {seconds:.1f} s"
                     if r.get("recovered") else f"region {r['region']} during {r['fault_id']}: publishing never recovered")
            out.append(Judgement("max_rto_s", limits.max_rto_s, seconds, met, f"{r['fault_id']}/{r['region']}",
                                 f"{words} (at most {limits.max_rto_s:g} s)"))
    return all(j.met for j in out), out


def _judge_billing(b: dict[str, Any], limits: Limits) -> list[Judgement]:
    """The reconciler must find every injected business error, and no exception may lack a cause."""
    masked = b["missed"] - b["missed_unexplained"]
    found_all = b["missed_unexplained"] == 0 and b["found_more_than_once"] == 0
    out = [
        Judgement("billing_errors_found", 0, b["missed_unexplained"], found_all, b["reconciling_region"],
                  f"billing in {b['reconciling_region']}: found {b['found']} of {b['injected']} injected business "
                  f"errors" + (f" ({masked} hidden by replication faults)" if masked else "")
                  + (f"; {b['found_more_than_once']} found twice" if b["found_more_than_once"] else "")),
        Judgement("billing_unexplained", 0, b["unexplained"], b["unexplained"] == 0, b["reconciling_region"],
                  f"billing in {b['reconciling_region']}: {b['unexplained']} exception(s) with no cause "
                  "(neither injected nor explained by replication)"),
    ]
    if limits.max_false_exceptions is not None:
        out.append(Judgement(
            "max_false_exceptions", limits.max_false_exceptions, b["false_exceptions"],
            b["false_exceptions"] <= limits.max_false_exceptions, b["reconciling_region"],
            f"billing in {b['reconciling_region']}: {b['false_exceptions']} false exception(s) caused by replication "
            f"loss or lag (at most {limits.max_false_exceptions}; {b['source_unavailable']} more from sources "
            "that could not publish)"))
    return out


def to_json(met: bool | None, judgements: list[Judgement]) -> dict[str, Any]:
    return {"met": met, "judgements": [asdict(j) for j in judgements]}
