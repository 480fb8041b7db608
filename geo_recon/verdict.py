"""Judge a checked run against a scenario's expectations. Pure: results in, verdict out.

Each rule becomes one line that says what was allowed, what was measured and
where. A line is met (True), not met (False) or could not be decided (None).
The run's verdict merges them as Jepsen's ``merge-valid`` does: any line not
met makes it not met; else any undecided line makes it undecided; a run with
no line at all is undecided too (nothing was judged), never met.

The rules, in report order:

* **Workers** (run.json ``workers``): a region whose worker died, reported
  errors (e.g. could not create a producer) or closed with sends that never
  completed is not met, with the count and the first error in words.
* **Liveness**: every publishing region had a send acknowledged, and every
  region's consumers received something.
* **Anomalies**: every anomaly the checker counts against validity (lost,
  duplicates, reordered, unexpected) fails the run unless the scenario allows
  the kind (``allow``, or run.json ``allowed``) or limits it (``max_*``; for
  lost also ``min_delivered_fraction``).
* The scenario's limits: lag, delivered fraction, convergence, RPO, RTO.
* **A lost region** (results.json ``region_loss``): every client's RTO
  (``max_client_rto_s``; "never" is not met, "not observed" undecided) and, per
  replicated subscription, re-consumption and gaps (``max_reconsumed``,
  ``max_subscription_gaps``). A limit about a lost region in a run that lost
  none (or recorded no clients, or no replicated subscription) is undecided, in
  words: it was never tested, so it is never met by accident.
* **Recovery** after every heal of a fault that stops clients: each region's
  producers and consumers work again within ``max_recovery_s``. Not recovered
  is "never" when the load went on that long after the heal, else "not
  observed" (undecided: the load ended first).
  A heal still not verified when the load ended at its cap (run.json ``load``
  ``heals_not_observed``) is one undecided line of its own.
* Billing: every injected error found, no exception without a cause.

:func:`judge_run_dir` applies the stored scenario to a stored run directory;
``geo-recon run`` and ``geo-recon judge`` both use it, so they always agree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from geo_recon.check.anomalies import VALIDITY
from geo_recon.check.recovery import unrecovered_outcome
from geo_recon.rundir import RunDir
from geo_recon.scenario import Limits

Met = bool | None


@dataclass(frozen=True)
class Judgement:
    name: str
    limit: float | None
    actual: float | None
    met: Met
    where: str
    words: str


def merge(lines: Iterable[Judgement]) -> Met:
    """False if any line is not met; else None if any is undecided or there is none; else True."""
    values = [j.met for j in lines]
    if any(v is False for v in values):
        return False
    if not values or any(v is None for v in values):
        return None
    return True


_NOUNS = {
    "lost": ("max_lost", "acknowledged message(s) lost"),
    "duplicates": ("max_duplicates", "message(s) stored more than once"),
    "reordered": ("max_reordered", "message(s) out of order"),
    "unexpected": ("max_unexpected", "message(s) received that were never sent"),
}


def judge(results: dict[str, Any] | None, limits: Limits, billing: dict[str, Any] | None = None, *,
          workers: dict[str, dict[str, Any]] | None = None,
          publishing: Sequence[str] | None = None, load: dict[str, Any] | None = None) -> tuple[Met, list[Judgement]]:
    """``workers``: run.json ``workers`` (per region: fate, sent, acked, errors, stuck); ``publishing``: the
    regions that must publish (default: every region in the results); ``load``: run.json ``load`` (how the
    load ended)."""
    if not results:
        return None, []
    regions = results.get("regions", {})
    out: list[Judgement] = []
    if workers is not None:
        out += _judge_workers(workers, _lost_for_good(results))
    out += _judge_liveness(results, workers or {}, list(regions) if publishing is None else list(publishing))
    out += _judge_anomalies(results, limits)
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
    for name in ("max_rpo_messages", "max_rpo_s"):
        if getattr(limits, name) is not None and not results.get("rpo"):
            out.append(_untested(name, getattr(limits, name), "the history shows no region-loss fault (lose, or "
                                 "kill/stop/pause of a whole region): there is no RPO to judge"))
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
    out += _judge_region_loss(results, limits)
    if limits.max_rto_s is not None:
        out += _judge_rto(results.get("rto", []), limits.max_rto_s)
    if limits.max_recovery_s is not None:
        out += _judge_recovery(results, limits.max_recovery_s, set(publishing if publishing is not None else regions))
    for fault_id in (load or {}).get("heals_not_observed") or []:
        out.append(Judgement("heal_observed", None, None, None, fault_id,
                             f"{fault_id}: its heal was not verified before the load ended at its cap "
                             f"({load['cap_s']:g} s): recovery after it was not observed"))
    if billing is not None:
        out += _judge_billing(billing, limits)
    return merge(out), out


def _untested(name: str, limit: float, why: str) -> Judgement:
    return Judgement(name, limit, None, None, "", f"{why} (limit {limit:g}): undecided")


def _judge_region_loss(results: dict[str, Any], limits: Limits) -> list[Judgement]:
    """Per lost region: each client's RTO, each replicated subscription's re-consumption and gaps."""
    wanted = {k: getattr(limits, k) for k in ("max_client_rto_s", "max_reconsumed", "max_subscription_gaps")
              if getattr(limits, k) is not None}
    if not wanted:
        return []
    rows = results.get("region_loss")
    if rows is None:
        return [_untested(k, v, "results.json has no region_loss (written by an older geo-recon): re-check with "
                          "`geo-recon check RUN_DIR --write`") for k, v in wanted.items()]
    if not rows:
        return [_untested(k, v, "the history shows no region-loss fault (lose, or kill/stop/pause of a whole "
                          "region): nothing to judge") for k, v in wanted.items()]
    out = []
    for row in rows:
        where = f"{row['fault_id']}/{row['region']}"
        head = f"region {row['region']} lost ({row['fault_id']})"
        limit = wanted.get("max_client_rto_s")
        if limit is not None:
            if not row.get("clients"):
                out.append(Judgement("max_client_rto_s", limit, None, None, where,
                                     f"{head}: no client of the region in the history (limit {limit:g} s): undecided"))
            for c in row.get("clients") or []:
                out.append(_client_rto(row, c, limit, head=head, where=f"{where}/{c['client']}"))
        for name, field, noun in (("max_reconsumed", "reconsumed", "message(s) received again after failover"),
                                  ("max_subscription_gaps", "gaps", "message(s) a surviving region received that "
                                   "it never got")):
            limit = wanted.get(name)
            if limit is None:
                continue
            subs = row.get("subscriptions")
            if not subs:
                why = ("run.json does not say replicated_subscription" if subs is None
                       else "no receipt of the region names a subscription")
                out.append(Judgement(name, limit, None, None, where, f"{head}: {why} (limit {limit:g}): undecided"))
                continue
            for sub in subs:
                actual = int(sub[field])
                out.append(Judgement(name, limit, actual, actual <= limit, f"{where}/{sub['subscription']}",
                                     f"{head}: subscription {sub['subscription']}: {actual} {noun} "
                                     f"(at most {limit:g})"))
    return out


def _client_rto(row: dict[str, Any], c: dict[str, Any], limit: float, *, head: str, where: str) -> Judgement:
    doing = "sending" if c["role"] == "producer" else "receiving"
    who = f"{head}: {c['role']} {c['client']}"
    if c.get("rto_s") is not None:
        served = f" on cluster {c['cluster']}" + (" after failing over" if c.get("failed_over") else "")
        return Judgement("max_client_rto_s", limit, c["rto_s"], c["rto_s"] <= limit, where,
                         f"{who}: {doing} again {c['rto_s']:.1f} s after the loss{served} (at most {limit:g} s)")
    loss, end = row.get("loss_s"), row.get("load_end_s")
    if loss is not None and end is not None and end - loss > limit:
        # nothing within the limit although the load went on: the RTO is above it, whatever comes after
        since = row.get("rebuilt_s") if row.get("rebuilt_s") is not None else loss
        never = unrecovered_outcome(since_s=since, load_end_s=end, limit_s=limit) == "never"
        what = f"never {doing} again" if never else f"not {doing} again within the limit"
        return Judgement("max_client_rto_s", limit, None, False, where,
                         f"{who}: {what} ({end - loss:.1f} s of load after the loss; at most {limit:g} s)")
    return Judgement("max_client_rto_s", limit, None, None, where,
                     f"{who}: RTO not observed: the load ended "
                     f"{'' if end is None or loss is None else f'{end - loss:.1f} s '}after the loss, before it was "
                     f"{doing} again (at most {limit:g} s)")


def _lost_for_good(results: dict[str, Any]) -> dict[str, float]:
    """Region -> when it was lost, for every region lost and never rebuilt (results.json ``region_loss``)."""
    return {row["region"]: row.get("loss_s") or 0.0 for row in results.get("region_loss") or []
            if row.get("rebuilt_s") is None}


def _judge_workers(workers: dict[str, dict[str, Any]], lost: dict[str, float]) -> list[Judgement]:
    """A worker that died, reported errors or left sends that never completed: the history is not the whole
    story of its region, so the run is not met. Except the death of a worker whose region was lost for good:
    that is what the fault does (its clients have no cluster left), reported in words."""
    out = []
    for region, w in workers.items():
        fate = w.get("fate", "finished")
        if fate != "finished" and region in lost:
            out.append(Judgement("worker_finished", None, None, True, region,
                                 f"region {region}: {fate}; expected: the region was lost for good at "
                                 f"{lost[region]:.1f} s and not rebuilt, so its clients had no cluster left"))
        else:
            out.append(Judgement("worker_finished", None, None, fate == "finished", region,
                                 f"region {region}: the workers finished" if fate == "finished"
                                 else f"region {region}: {fate}"))
        errors = list(w.get("errors") or [])
        if errors and region in lost:
            out.append(Judgement("worker_errors", None, len(errors), True, region,
                                 f"region {region}: {len(errors)} worker error(s), the first: {errors[0]}; "
                                 f"expected: the region was lost for good at {lost[region]:.1f} s"))
        elif errors:
            out.append(Judgement("worker_errors", 0, len(errors), False, region,
                                 f"region {region}: {len(errors)} worker error(s); the first: {errors[0]}"))
        stuck = int(w.get("stuck") or 0)
        if stuck:
            out.append(Judgement("stuck_sends", 0, stuck, False, region,
                                 f"region {region}: {stuck} send(s) never completed: the client gave no ok, "
                                 "failure or timeout before the producer closed (their outcome is unknown)"))
    return out


def _judge_liveness(results: dict[str, Any], workers: dict[str, dict[str, Any]],
                    publishing: list[str]) -> list[Judgement]:
    """Every publishing region had a send acknowledged; every region's consumers received."""
    out = []
    by_region = (results.get("run") or {}).get("sends_by_region")
    for region in publishing:
        if by_region is None:
            out.append(Judgement("published", 1, None, None, region,
                                 f"region {region}: results.json has no per-region send counts (written by an "
                                 "older geo-recon): re-check with `geo-recon check RUN_DIR --write`"))
            continue
        sends = by_region.get(region) or {}
        acked = int(sends.get("ok", 0))
        w = workers.get(region) or {}
        tried = sum(int(sends.get(k, 0)) for k in ("ok", "fail", "info", "pending"))
        detail = (f"{tried} send(s) invoked, none acknowledged" if tried
                  else "no send invoked" + (f" ({w['errors'][0]})" if w.get("errors") else ""))
        out.append(Judgement("published", 1, acked, acked > 0, region,
                             f"region {region}: {acked} send(s) acknowledged" if acked
                             else f"region {region}: never published: {detail}"))
        unknown = int(sends.get("info", 0))
        if acked and unknown:  # said in words: neither acknowledged nor failed, so neither counted nor lost
            out.append(Judgement("unknown_outcomes", None, unknown, True, region,
                                 f"region {region}: {unknown} send(s) ended with an unknown outcome (a timeout or "
                                 "an ambiguous error): not acknowledged, so not judged as lost; any received "
                                 "anyway are counted as recovered"))
    for region, r in (results.get("regions") or {}).items():
        receipts = int(r.get("receipts", 0))
        out.append(Judgement("received", 1, receipts, receipts > 0, region,
                             f"region {region}: {receipts} receipt(s)" if receipts
                             else f"region {region}: its consumers never received a message"))
    return out


def _judge_anomalies(results: dict[str, Any], limits: Limits) -> list[Judgement]:
    """Each counted anomaly per region: against its limit, or none allowed unless the scenario allows it."""
    allowed = set(limits.allow) | set(results.get("allowed") or [])
    out = []
    for kind in VALIDITY:
        limit_name, noun = _NOUNS[kind.value]
        limit = getattr(limits, limit_name)
        if limit is None and kind.value in allowed:
            continue
        if limit is None and kind.value == "lost" and limits.min_delivered_fraction is not None:
            continue  # limited by the delivered fraction, judged with it
        for region, r in (results.get("regions") or {}).items():
            actual = int(r.get(kind.value, 0))
            if limit is not None:
                out.append(Judgement(limit_name, limit, actual, actual <= limit, region,
                                     f"region {region}: {actual} {noun} (at most {limit} allowed)"))
            else:
                out.append(Judgement(kind.value, 0, actual, actual == 0, region,
                                     f"region {region}: {actual} {noun} (none allowed: the scenario neither "
                                     f"allows {kind.value} nor sets {limit_name})"))
    return out


def _judge_rto(rows: list[dict[str, Any]], limit_s: float) -> list[Judgement]:
    out = []
    for r in rows:
        if not r.get("failed"):
            continue
        where = f"{r['fault_id']}/{r['region']}"
        head = f"region {r['region']} during {r['fault_id']}"
        if r.get("recovered"):
            seconds = (r.get("ms") or 0) / 1000
            out.append(Judgement("max_rto_s", limit_s, seconds, seconds <= limit_s, where,
                                 f"{head}: publishing recovered in {seconds:.1f} s (at most {limit_s:g} s)"))
            continue
        first, end = r.get("first_failure_s"), r.get("load_end_s")
        if first is not None and end is not None and end - first > limit_s:
            # no ok send within the limit although the load went on: the RTO is above it, whatever comes after
            outcome = unrecovered_outcome(since_s=r.get("heal_s", first), load_end_s=end, limit_s=limit_s)
            out.append(Judgement("max_rto_s", limit_s, None, False, where,
                                 f"{head}: publishing {'never recovered' if outcome == 'never' else 'did not recover'}"
                                 f" ({end - first:.1f} s of load after the first failure; at most {limit_s:g} s)"))
        else:
            out.append(Judgement("max_rto_s", limit_s, None, None, where,
                                 f"{head}: RTO not observed: the load ended "
                                 f"{'' if end is None or first is None else f'{end - first:.1f} s '}after the first "
                                 f"failure, before publishing recovered (at most {limit_s:g} s)"))
    return out


def _judge_recovery(results: dict[str, Any], limit_s: float, publishing: set[str]) -> list[Judgement]:
    """After every heal of a fault that stops clients: each region publishes and receives again in time."""
    out = []
    for row in results.get("recovery") or []:
        for field, name, doing in (("publish_ms", "publish", "publishing"), ("receive_ms", "receive", "receiving")):
            if field == "publish_ms" and row["region"] not in publishing:
                continue
            where = f"{row['fault_id']}/{row['region']}/{name}"
            head = f"region {row['region']} after {row['fault_id']} healed"
            since = row.get("recovers_from_s", row.get("heal_s"))
            if row.get("held_down_by"):
                head += f" (and {row['held_down_by']}, which still held it down, at {since:.1f} s)"
            value = row.get(field)
            if value is not None:
                seconds = value / 1000
                out.append(Judgement("max_recovery_s", limit_s, seconds, seconds <= limit_s, where,
                                     f"{head}: {doing} again after {seconds:.1f} s (at most {limit_s:g} s)"))
                continue
            outcome = unrecovered_outcome(since_s=since, load_end_s=row.get("load_end_s"), limit_s=limit_s)
            tail = ("" if since is None or row.get("load_end_s") is None
                    else f"; the load ran {row['load_end_s'] - since:.1f} s past the heal")
            if outcome == "never":
                out.append(Judgement("max_recovery_s", limit_s, None, False, where,
                                     f"{head}: {doing} never recovered{tail} (at most {limit_s:g} s)"))
            else:
                out.append(Judgement("max_recovery_s", limit_s, None, None, where,
                                     f"{head}: {doing} recovery not observed: the load ended first{tail} "
                                     f"(at most {limit_s:g} s)"))
    return out


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


def mark(met: Met) -> str:
    """The fixed-width word a line starts with in progress output and ``geo-recon judge``."""
    return {True: "met      ", False: "NOT MET  ", None: "UNDECIDED"}[met]


def to_json(met: Met, judgements: list[Judgement]) -> dict[str, Any]:
    return {"met": met, "judgements": [asdict(j) for j in judgements]}


# --------------------------------------------------------------------------- a stored run


@dataclass(frozen=True)
class StoredVerdict:
    scenario: str
    scheme: str
    met: Met
    judgements: list[Judgement]

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "scheme": self.scheme, **to_json(self.met, self.judgements)}


def judge_run_dir(run_dir: str | Path) -> StoredVerdict:
    """The stored scenario's expectations applied to the stored results (results.json, billing/report.json,
    run.json's worker summaries). Raises :class:`~geo_recon.errors.ConfigError` when the scenario or run.json
    cannot be read; a run with no results.json is undecided, with one line saying so."""
    from geo_recon import scenario as scenario_mod
    from geo_recon.errors import ConfigError

    rd = RunDir(Path(run_dir))
    run_dir = rd.path
    scenario = scenario_mod.load(rd.file(RunDir.SCENARIO))
    run = _read_json(rd.file(RunDir.RUN))
    if run is None:
        raise ConfigError(f"{rd.file(RunDir.RUN)}: missing or not JSON: not a run directory")
    scheme = str(run.get("scheme") or scenario.scheme)
    limits = scenario.expectations.for_scheme(scheme)
    results = _read_json(rd.file(RunDir.RESULTS))
    if not results:
        return StoredVerdict(scenario.name, scheme, None, [Judgement(
            "checked", None, None, None, "", f"{run_dir}: no results.json: the history was never checked "
            "(`geo-recon check RUN_DIR --write` checks it)")])
    billing_spec = (run.get("workload") or {}).get("billing")
    billing = None
    publishing = None
    if billing_spec:
        publishing = sorted({s["region"] for s in billing_spec["systems"].values()})
        billing = _read_json(rd.file(RunDir.BILLING_REPORT))
        if billing is None:
            return StoredVerdict(scenario.name, scheme, None, [Judgement(
                "billing", None, None, None, "", f"{run_dir}: a billing run with no billing/report.json: "
                "the reconciliation was never labelled")])
    met, judgements = judge(results, limits, billing, workers=run.get("workers"), publishing=publishing,
                            load=run.get("load"))
    return StoredVerdict(scenario.name, scheme, met, judgements)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
