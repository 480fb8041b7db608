"""report.md: the same facts as report.html, as Markdown tables and lists (plots are in report.html)."""

from __future__ import annotations

from collections.abc import Sequence

from geo_recon.report import facts as F
from geo_recon.report.model import RunData


def cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> list[str]:
    out = ["| " + " | ".join(cell(h) for h in head) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def render(data: RunData) -> str:
    head = F.headline(data)
    lines = [f"# geo-recon: {data.title}", "", F.identity_line(data), "", f"`{data.run_dir}`", "",
             f"**Verdict: {head.label}**: {head.words}", ""]
    notes = data.notes()
    if notes:
        lines += [f"> {n}" for n in notes] + [""]
    lines += ["## Expectations", ""]
    judgements = F.judgement_rows(data)
    if data.verdict is None:
        lines += ["Not judged: no verdict.json.", ""]
    elif not judgements:
        lines += ["The scenario sets no limits.", ""]
    else:
        lines += table(["", "limit", "where", "allowed", "measured", "in words"],
                       [["met" if j.met else f"**{F.met_word(j.met)}**", j.name, j.where, F.judgement_value(j.limit),
                         F.judgement_value(j.actual), j.words] for j in judgements], right=(3, 4)) + [""]
    results = data.results
    if results is None:
        schedule = F.scheduled_faults(data)
        if schedule:
            lines += ["## Faults (scheduled; not measured without results)", ""]
            lines += table(["fault", "what", "start s", "stop s"],
                           [[s.get("id"), s.get("fault"), s.get("start_s"), s.get("stop_s")] for s in schedule])
            lines.append("")
    else:
        from geo_recon.report.text import billing_lines

        billing = billing_lines(data, cases=5)
        if billing:
            lines += ["## Billing reconciliation", "", "```", *[line for line in billing if line], "```", ""]
        lines += ["## Results", "", F.checker_line(results) + ".", ""]
        lines += table(["region", "expected", *F.ANOMALY_KINDS, "receipts", "lag p50", "lag p99", "lag max"],
                       [[r.region, F.fmt_count(r.expected), *(F.fmt_count(r.counts[k]) for k in F.ANOMALY_KINDS),
                         F.fmt_count(r.receipts), *(F.fmt_ms((r.lag or {}).get(p)) for p in ("p50", "p99", "max"))]
                        for r in F.region_rows(results)], right=tuple(range(1, 13))) + [""]
        publish = results.get("publish_latency_ms") or {}
        if publish:
            lines += ["Publish latency (invoke to acknowledgement), by origin:", ""]
            lines += table(["origin", "p50", "p90", "p99", "max"],
                           [[o, *(F.fmt_ms(s.get(p)) for p in ("p50", "p90", "p99", "max"))]
                            for o, s in publish.items()], right=(1, 2, 3, 4)) + [""]
        faults = F.fault_rows(results)
        lines += ["## Faults", ""]
        if not faults:
            lines += ["No fault was recorded in the history.", ""]
        else:
            lines += table(["fault", "what", "from", "until", "convergence", "RPO", "RTO"],
                           [[f.id, f.what + (" (region loss)" if f.region_loss else ""), F.fmt_s(f.start_s),
                             F.fmt_s(f.stop_s), f.convergence, "; ".join(f.rpo) or "-", ", ".join(f.rto) or "-"]
                            for f in faults]) + [""]
            for f in faults:
                for words in f.region_loss_rows:
                    lines += [f"**{words[0]}**", ""] + [f"- {w}" for w in words[1:]] + [""]
        groups = F.case_groups(results)
        lines += ["## First cases, explained", ""]
        if not groups:
            lines += ["No anomaly of any kind.", ""]
        for g in groups:
            lines += [f"### {g.kind}: {g.total:,} in all ({g.phrase}; first {len(g.explanations)} shown)", ""]
            lines += [f"{i}. {x}" for i, x in enumerate(g.explanations, 1)] + [""]
        warnings = results.get("warnings") or []
        if warnings:
            lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
        lines += ["Plots (lag over time, rates, lag distribution, anomalies) are in `report.html`.", ""]
    workers = F.worker_rows(data)
    if workers:
        lines += ["## Workers", ""]
        lines += table(["region", "fate", "sent", "acked", "failed", "unknown", "received", "errors"],
                       [[w.region, w.fate, *(F.fmt_count(v) if isinstance(v, (int, float)) else "-"
                                             for v in (w.sent, w.acked, w.failed, w.unknown, w.received)),
                         "; ".join(w.errors[:3])] for w in workers]) + [""]
    return "\n".join(lines).rstrip() + "\n"
