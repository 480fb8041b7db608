"""report.html: one self-contained file (inline CSS, plots as inline SVG), readable offline and mailable."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from geo_recon import __version__
from geo_recon.report import facts as F
from geo_recon.report.model import RunData
from geo_recon.report.plots import Plot

CSS = """
:root { --ok: #1a7f37; --bad: #c62828; --grey: #5f6368; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: #1f2328; margin: 0 auto; max-width: 1100px;
       padding: 1.2rem 1.5rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.muted, .ident { color: var(--grey); }
code, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: .88em; }
.verdict { border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; font-size: 1.05rem; border: 1px solid; }
.verdict strong { font-size: 1.3rem; margin-right: .6rem; }
.verdict.met { background: #e6f4ea; border-color: var(--ok); color: #0b3d1a; }
.verdict.not-met { background: #fdecea; border-color: var(--bad); color: #5c1010; }
.verdict.undecided { background: #f1f3f4; border-color: var(--grey); color: #202124; }
.notes { background: #fff8e1; border: 1px solid #f0c36d; border-radius: 6px; padding: .6rem 1rem .6rem 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; vertical-align: top; }
th { background: var(--bg); text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad, span.bad { color: var(--bad); font-weight: bold; }
td.good, span.good { color: var(--ok); }
tr:nth-child(even) td { background: #fbfcfd; }
.scroll { overflow-x: auto; }
figure { margin: 1.2rem 0; padding: .6rem; border: 1px solid var(--line); border-radius: 6px; }
figure svg.plot { display: block; width: 100%; height: auto; }
figcaption { color: var(--grey); font-size: .88rem; margin-top: .4rem; }
.plot-error { color: var(--bad); }
ol.cases li { margin-bottom: .35rem; }
footer { margin-top: 3rem; color: var(--grey); font-size: .8rem; }
"""


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(head: Sequence[str] | None, rows: Iterable[Sequence[tuple[str, str]]], *, id: str | None = None,
           titles: Sequence[str] = ()) -> str:
    """rows of (html, css class) cells; the html is already escaped. ``titles``: tooltips for the headers."""
    attr = f' id="{e(id)}"' if id else ""
    out = [f'<div class="scroll"><table{attr}>']
    if head is not None:
        out.append("<thead><tr>")
        out += [f'<th title="{e(t)}">{e(h)}</th>' if t else f"<th>{e(h)}</th>"
                for h, t in zip(head, list(titles) + [""] * (len(head) - len(titles)), strict=True)]
        out.append("</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>"
                                    for cell, cls in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure(plot: Plot) -> str:
    body = plot.svg if plot.svg is not None else (
        f'<p class="plot-error">This plot could not be drawn: {e(plot.error)}</p>')
    return (f'<figure id="{e(plot.id)}">{body}<figcaption><strong>{e(plot.title)}.</strong> '
            f"{e(plot.caption)}</figcaption></figure>")


def page(title: str, body: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"generator\" content=\"geo-recon {e(__version__)}\">"
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body)
            + f"\n<footer>Made by geo-recon {e(__version__)} from the files of the run directory; "
              "nothing here needs a network.</footer>\n</body></html>\n")


def render(data: RunData, plots: Sequence[Plot]) -> str:
    """The whole report.html."""
    head = F.headline(data)
    body = [f"<header><h1>geo-recon: {e(data.title)}</h1>",
            f'<p class="ident">{e(F.identity_line(data))}</p>',
            f'<p class="muted mono">{e(data.run_dir)}</p></header>',
            f'<section id="verdict" class="verdict {head.status}"><strong>{e(head.label)}</strong>'
            f"{e(head.words)}</section>"]
    notes = data.notes()
    if notes:
        body.append('<section id="notes"><ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in notes)
                    + "</ul></section>")
    body.append(_judgements(data))
    results = data.results
    if results is not None:
        body.append(_results(results))
        body.append(_faults(results))
        body.append('<section id="plots"><h2>Plots</h2>' + "".join(figure(p) for p in plots) + "</section>")
        body.append(_cases(results))
    else:
        body.append(_schedule(data))
        body.append('<section id="plots"><h2>Plots</h2><p class="muted">No plots: they are drawn from results.json, '
                    "which this run does not have (see above).</p></section>")
    body.append(_workers(data))
    body.append(_run_facts(data))
    return page(f"geo-recon: {data.title}", body)


def _judgements(data: RunData) -> str:
    judgements = F.judgement_rows(data)
    if data.verdict is None:
        return '<section id="judgements"><h2>Expectations</h2><p class="muted">Not judged: no verdict.json.</p></section>'
    if not judgements:
        return ('<section id="judgements"><h2>Expectations</h2><p class="muted">The scenario sets no limits.</p>'
                "</section>")
    rows = [[(F.met_word(j.met), {True: "good", False: "bad"}.get(j.met, "")),  # type: ignore[arg-type]
             (e(j.name), ""), (e(j.where), ""),
             (e(F.judgement_value(j.limit)), "num"), (e(F.judgement_value(j.actual)), "num"), (e(j.words), "")]
            for j in judgements]
    return ('<section id="judgements"><h2>Expectations</h2>'
            + _table(["", "limit", "where", "allowed", "measured", "in words"], rows, id="judgement-table")
            + "</section>")


def _results(results: dict[str, Any] | Any) -> str:
    out = ['<section id="results"><h2>Results</h2>', f"<p>{e(F.checker_line(results))}.</p>"]
    head = ["region", "expected", *(short for _, short, _ in F.ANOMALIES), "receipts", "lag p50", "lag p90",
            "lag p99", "lag max"]
    titles = ["", "acknowledged sends, expected in every region", *(f"{k}: {p}" for k, _, p in F.ANOMALIES)]
    rows = []
    for r in F.region_rows(results):
        lag = r.lag or {}
        row = [(e(r.region), ""), (e(F.fmt_count(r.expected)), "num")]
        for k in F.ANOMALY_KINDS:
            n = r.counts[k]
            bad = n and k in ("lost", "duplicates", "reordered", "unexpected")
            row.append((e(F.fmt_count(n)), "num bad" if bad else "num"))
        row.append((e(F.fmt_count(r.receipts)), "num"))
        row += [(e(F.fmt_ms(lag.get(p))), "num") for p in ("p50", "p90", "p99", "max")]
        rows.append(row)
    out.append(_table(head, rows, id="region-table", titles=titles))
    out.append('<p class="muted">Anomalies are counted per observing region: '
               + "; ".join(f"<em>{e(short)}</em> ({e(k)}): {e(p)}" for k, short, p in F.ANOMALIES) + ".</p>")
    publish = results.get("publish_latency_ms") or {}
    if publish:
        out.append("<h3>Publish latency (invoke to acknowledgement), by origin</h3>")
        out.append(_table(["origin", "p50", "p90", "p99", "max"],
                          [[(e(o), "")] + [(e(F.fmt_ms(s.get(p))), "num") for p in ("p50", "p90", "p99", "max")]
                           for o, s in publish.items()], id="publish-table"))
    pairs = [(origin, region, stats) for region, r in (results.get("regions") or {}).items()
             for origin, stats in (r.get("lag_ms_by_origin") or {}).items()]
    if pairs:
        out.append("<h3>End-to-end lag, by origin → receiving region</h3>")
        out.append(_table(["origin → region", "p50", "p90", "p99", "max"],
                          [[(e(f"{o} → {r}"), "")] + [(e(F.fmt_ms(s.get(p))), "num") for p in ("p50", "p90", "p99", "max")]
                           for o, r, s in pairs], id="lag-table"))
    warnings = results.get("warnings") or []
    if warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _faults(results: Any) -> str:
    rows = F.fault_rows(results)
    if not rows:
        return '<section id="faults"><h2>Faults</h2><p class="muted">No fault was recorded in the history.</p></section>'
    table = _table(["fault", "what", "from", "until", "convergence after the stop", "RPO", "RTO (publishing)"],
                   [[(e(f.id), ""), (e(f.what) + (' <span class="bad">(region loss)</span>' if f.region_loss else ""), ""),
                     (e(F.fmt_s(f.start_s)), "num"), (e(F.fmt_s(f.stop_s)), "num"), (e(f.convergence), ""),
                     ("<br>".join(e(w) for w in f.rpo) or '<span class="muted">not a region loss</span>', ""),
                     ("<br>".join(e(w) for w in f.rto) or "-", "")] for f in rows], id="fault-table")
    lost = [words for f in rows for words in f.region_loss_rows]
    disaster = ("".join(f'<h3 class="region-loss">{e(words[0])}</h3><ul>'
                        + "".join(f"<li>{e(w)}</li>" for w in words[1:]) + "</ul>" for words in lost)
                + '<p class="muted">Exposure: acknowledged messages of the lost region that no other region had '
                  "received at the moment of the loss (an upper bound on the RPO). RTO per client: from the loss to "
                  "the client's first acknowledged send (producer) or receipt (consumer) after its failover, with "
                  "the cluster that served it.</p>") if lost else ""
    return ('<section id="faults"><h2>Faults</h2>' + table + disaster
            + '<p class="muted">Times are seconds since the run started. Convergence: from the fault stop until '
              "everything acknowledged before it was received in every region. RPO: acknowledged messages of a lost "
              "region that no other region ever received. RTO: per region, from the first failed send after the "
              "fault started to the next acknowledged one.</p></section>")


def _schedule(data: RunData) -> str:
    schedule = F.scheduled_faults(data)
    if not schedule:
        return '<section id="faults"><h2>Faults</h2><p class="muted">None scheduled.</p></section>'
    return ('<section id="faults"><h2>Faults (scheduled; not measured without results)</h2>'
            + _table(["fault", "what", "start", "stop"],
                     [[(e(s.get("id")), ""), (e(s.get("fault")), ""), (e(s.get("start_s")), "num"),
                       (e(s.get("stop_s")), "num")] for s in schedule], id="fault-table") + "</section>")


def _cases(results: Any) -> str:
    groups = F.case_groups(results)
    if not groups:
        return ('<section id="cases"><h2>Cases</h2><p class="good">No anomaly of any kind: nothing to explain.</p>'
                "</section>")
    out = ['<section id="cases"><h2>First cases, explained</h2>']
    for g in groups:
        out.append(f'<h3 id="cases-{e(g.kind)}">{e(g.kind)}: {g.total:,} in all <span class="muted">({e(g.phrase)}; '
                   f"first {len(g.explanations)} shown)</span></h3>")
        out.append('<ol class="cases">' + "".join(f"<li>{e(x)}</li>" for x in g.explanations) + "</ol>")
    out.append("</section>")
    return "".join(out)


def _workers(data: RunData) -> str:
    rows = F.worker_rows(data)
    if not rows:
        return ""
    table = _table(["region", "fate", "sent", "acked", "failed", "unknown", "received", "achieved rate", "errors"],
                   [[(e(w.region), ""), (e(w.fate), "" if w.fate == "finished" else "bad"),
                     *((e(F.fmt_count(v) if isinstance(v, (int, float)) else "-"), "num")
                       for v in (w.sent, w.acked, w.failed, w.unknown, w.received)),
                     (e(w.rate), ""), ("<br>".join(e(x) for x in w.errors[:5]), "")] for w in rows], id="worker-table")
    return f'<section id="workers"><h2>Workers</h2>{table}</section>'


def _run_facts(data: RunData) -> str:
    items: list[tuple[str, str]] = []
    workload = (data.run or {}).get("workload") or ((data.resolved or {}).get("scenario") or {}).get("workload") or {}
    if workload:
        items.append(("workload", _pairs(workload)))
    drain = (data.run or {}).get("drain")
    if isinstance(drain, dict):
        items.append(("drain", _pairs(drain)))
    if data.outcome and data.outcome.phases:
        items.append(("phases", ", ".join(f"{k} {v:g} s" for k, v in data.outcome.phases.items())))
    versions = (data.resolved or {}).get("versions")
    if isinstance(versions, dict):
        items.append(("versions", _pairs(versions)))
    machine = (data.resolved or {}).get("machine")
    if isinstance(machine, dict):
        items.append(("machine", _pairs(machine)))
    inp = (data.results or {}).get("input")
    if isinstance(inp, dict):
        items.append(("history read", f"{inp.get('source')}: {inp.get('files')} file(s), {inp.get('lines')} line(s), "
                                      f"{inp.get('skipped', 0)} skipped"))
    if not items:
        return ""
    return ('<section id="run"><h2>Run</h2>'
            + _table(None, [[(f"<strong>{e(k)}</strong>", ""), (e(v), "mono")] for k, v in items], id="run-table")
            + "</section>")


def _pairs(values: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return json.dumps(v) if isinstance(v, (bool, type(None), list, dict)) else str(v)

    return ", ".join(f"{k} {one(v)}" for k, v in values.items())
