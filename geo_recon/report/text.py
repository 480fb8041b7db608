"""The terminal summary: the results in words, for a person at a shell (``geo-recon report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geo_recon.report import facts as F
from geo_recon.report.model import RunData


def table(rows: Sequence[Sequence[str]], *, left: Sequence[int] = (0,), indent: str = "") -> list[str]:
    """Aligned columns; columns in ``left`` are left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                                for i, (cell, w) in enumerate(zip(row, widths, strict=True)))).rstrip()
            for row in rows]


def summary(data: RunData, *, cases_per_kind: int = 3) -> str:
    """Verdict, judgements, per-region counts and lag, faults with convergence/RPO/RTO, first cases explained."""
    head = F.headline(data)
    lines = [F.identity_line(data), f"  {data.run_dir}", "", f"verdict: {head.label}: {head.words}"]
    judgements = F.judgement_rows(data)
    if judgements:
        lines.extend(f"  {F.met_word(j.met):<7}  {j.words}" for j in judgements)
    for note in data.notes():
        lines.append(f"note: {note}")
    results = data.results
    if results is None:
        schedule = F.scheduled_faults(data)
        if schedule:
            lines += ["", "faults scheduled (no results to measure them):"]
            lines.extend(f"  {s.get('id')}: {s.get('fault')} at {s.get('start_s')} s until {s.get('stop_s')} s"
                         for s in schedule)
        lines += _workers(data)
        return "\n".join(lines)

    lines += ["", F.checker_line(results), ""]
    head_row = ["region", "expected", *(short for _, short, _ in F.ANOMALIES), "lag ms p50/p99/max"]
    rows = [head_row]
    for r in F.region_rows(results):
        rows.append([r.region, F.fmt_count(r.expected), *(F.fmt_count(r.counts[k]) for k in F.ANOMALY_KINDS),
                     F.lag_triplet(r.lag)])
    lines += table(rows, left=(0, len(head_row) - 1), indent="  ")
    publish = results.get("publish_latency_ms") or {}
    if publish:
        lines += ["", "publish latency ms p50/p99/max: " + ", ".join(
            f"{origin} {F.lag_triplet(stats)}" for origin, stats in publish.items())]
    by_origin = [(region, origin, stats) for region, r in (results.get("regions") or {}).items()
                 for origin, stats in (r.get("lag_ms_by_origin") or {}).items()]
    if by_origin:
        lines.append("lag ms p50/p99/max by origin -> region: " + ", ".join(
            f"{origin}->{region} {F.lag_triplet(stats)}" for region, origin, stats in by_origin))

    faults = F.fault_rows(results)
    if faults:
        lines += ["", "faults:"]
        for f in faults:
            tag = " (region loss)" if f.region_loss else ""
            lines.append(f"  {f.id}: {f.what}, {F.fmt_s(f.start_s)} .. {F.fmt_s(f.stop_s)}{tag}")
            lines.append(f"    {f.convergence}")
            lines.extend(f"    {words}" for words in f.rpo)
            for lost in f.region_loss_rows:
                lines.append(f"    {lost[0]}")
                lines.extend(f"      {words}" for words in lost[1:])
            if f.rto:
                lines.append("    RTO: " + ", ".join(f.rto))
    else:
        lines += ["", "faults: none recorded in the history"]

    for group in F.case_groups(results, limit=cases_per_kind):
        lines += ["", f"{group.kind}: {group.total:,} in all ({group.phrase}); first {len(group.explanations)}:"]
        lines.extend(f"  - {e}" for e in group.explanations)
    for warning in results.get("warnings") or []:
        lines.append(f"warning: {warning}")
    lines += billing_lines(data)
    lines += _workers(data)
    return "\n".join(lines)


def billing_lines(data: RunData, cases: int = 3) -> list[str]:
    """The billing reconciliation in words: business errors found apart from what replication caused."""
    b = data.billing
    if not b:
        return []
    masked = b.get("missed", 0) - b.get("missed_unexplained", 0)
    out = ["", f"billing reconciliation in {b.get('reconciling_region')} (lateness {b.get('lateness_ms')} ms): "
               f"{b.get('transactions', 0):,} transactions, {b.get('matched', 0):,} matched",
           f"  injected business errors: {b.get('found', 0):,} of {b.get('injected', 0):,} found"
           + (f", {masked:,} hidden by the outage" if masked else ""),
           f"  exceptions by cause: " + ", ".join(f"{k} {v:,}" for k, v in (b.get("exceptions") or {}).items()),
           f"  late events by cause: " + (", ".join(f"{k} {v:,}" for k, v in (b.get("late_events") or {}).items())
                                          or "none"),
           f"  false exceptions from replication: {b.get('false_exceptions', 0):,}; without any cause: "
           f"{b.get('unexplained', 0):,}"]
    t = b.get("throughput")
    if t:
        out.append(f"  end to end: {t['transactions_per_s']:,.1f} transactions/s ({t['events_per_s']:,.1f} events/s) "
                   f"reconciled over {t['span_s']:.1f}s"
                   + (f", reconciler CPU {t['cpu_share'] * 100:.0f}% of a core" if t.get("cpu_share") is not None
                      else "")
                   + (f"; a verdict final {t['verdict_delay_ms_p50']:,.0f} ms (p50), "
                      f"{t['verdict_delay_ms_p99']:,.0f} ms (p99) after its event time"
                      if t.get("verdict_delay_ms_p50") is not None else ""))
    for label, explained in (b.get("cases") or {}).items():
        if label != "business":
            out.extend(f"  - {label}: {e}" for e in explained[:cases])
    return out


def _workers(data: RunData) -> list[str]:
    bad = [w for w in F.worker_rows(data) if w.fate != "finished" or w.errors]
    out = []
    for w in bad:
        out.append(f"worker {w.region}: {w.fate}" + (f"; errors: {'; '.join(w.errors[:3])}" if w.errors else ""))
    return ([""] + out) if out else []


# ---------------------------------------------------------------- the checker's result alone


def _lag_triple(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{stats['p50']:g}/{stats['p99']:g}/{stats['max']:g}"


def check_summary(j: dict[str, Any], *, run_dir: Path) -> str:
    """The checker's result alone (results.json's shape), for `geo-recon check`: no verdict, no scenario."""
    run, inp = j["run"], j["input"]
    verdict = "VALID" if j["valid"] else f"INVALID ({', '.join(j['anomaly_types'])})"
    lines = [f"{run_dir}: {verdict}",
             f"regions {', '.join(run['regions'])}; {run['sends']['ok']} acknowledged sends from "
             f"{run['producers']} producer(s); {run['receipts']} receipts over {run['duration_s']:g} s; "
             f"read from {inp['source']} ({inp['files']} file(s), {inp['lines']} line(s)"
             + (f", {inp['skipped']} bad skipped" if inp["skipped"] else "") + ")"]
    if j["allowed"]:
        lines.append(f"allowed: {', '.join(j['allowed'])}")
    head = ("region", "expected", "lost", "dup", "redeliv", "reorder", "unexp", "recov", "reader-only",
            "lag ms p50/p99/max")
    rows = [head]
    for name, r in j["regions"].items():
        rows.append((name, str(r["expected"]), str(r["lost"]), str(r["duplicates"]), str(r["redelivered"]),
                     str(r["reordered"]), str(r["unexpected"]), str(r["recovered"]), str(r["stored_not_consumed"]),
                     _lag_triple(r["lag_ms"])))
    lines.append("")
    lines += table(rows, left=(0, len(head) - 1))
    if j["publish_latency_ms"]:
        lines.append("")
        lines.append("publish latency ms p50/p99/max: " + ", ".join(
            f"{origin} {_lag_triple(stats)}" for origin, stats in j["publish_latency_ms"].items()))
    if j["faults"]:
        lines.append("")
        lines.append("faults:")
        conv = {c["fault_id"]: c for c in j["convergence"]}
        for w in j["faults"]:
            span = f"{_t(w['start_s'])} .. {_t(w['stop_s'])}"
            tag = " (region loss)" if w["region_loss"] else ""
            lines.append(f"  {w['id']}: {w['fault']} {w['target']}, {span}{tag}")
            c = conv.get(w["id"])
            if c is not None:
                if c["converged"]:
                    lines.append(f"    converged {c['ms']:g} ms after the stop")
                else:
                    missing = ", ".join(f"{r} {n}" for r, n in c["still_missing"].items() if n)
                    lines.append(f"    never converged (still missing: {missing})")
            # the words of the run's report (facts), so `check` and `report` show the same figures
            lines.extend(f"    {F.rpo_words(p)}" for p in j["rpo"] if p["fault_id"] == w["id"])
            for lost in (x for x in j.get("region_loss") or [] if x["fault_id"] == w["id"]):
                words = F.region_loss_lines(lost, with_rpo=False)
                lines.append(f"    {words[0]}")
                lines.extend(f"      {line}" for line in words[1:])
            rto = [x for x in j["rto"] if x["fault_id"] == w["id"]]
            if rto:
                lines.append("    RTO: " + ", ".join(
                    f"{x['region']} " + ("never recovered" if not x["recovered"] else f"{x['ms']:g} ms")
                    for x in rto))
    for kind, cases in j["cases"].items():
        if not cases:
            continue
        total = j["totals"][kind]
        lines.append("")
        lines.append(f"{kind} ({total} in all; first {len(cases)} shown):")
        lines.extend(f"  - {c['explanation']}" for c in cases)
    for warning in j["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _t(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.3f} s"
