"""What losing a region cost: RPO, exposure, RTO per client, replicated subscriptions. Pure functions.

For every region-loss fault (a ``lose``, or a kill/stop/pause of a whole
region, see :mod:`geo_recon.check.recovery`) and every lost region L, with
t_loss the fault's start and the rebuild (a ``lose`` stop line) if any:

* **RPO**: acked messages produced in L (home region L) that no consumer or
  reader of another run.json region ever received (acked before the rebuild,
  if there was one): count, first and last ok time, ``span_s`` (the seconds of
  data lost). Row of :func:`geo_recon.check.recovery.rpo`.
* **Exposure**: acked messages produced in L, acked at or before t_loss, that
  no consumer outside L had received by t_loss: count and span. An upper bound
  on the RPO, and meaningful even when the region returns with its data.
* **RTO per client** of L (each producer and consumer process whose home
  region is L): from t_loss to its first ok send (producer) or first receipt
  (consumer) at or after t_loss and after its failover line, if it has one.
  ``outcome``: ``recovered`` (``rto_s``), ``never`` (the load went on for
  ``DEFAULT_RECOVERY_S`` after t_loss, or after the rebuild, and nothing came)
  or ``not observed`` (the load ended first). ``cluster``: the cluster that
  served that first send or receipt; ``failed_over``: whether the client wrote
  a failover line at or after t_loss.
* **Replicated subscriptions** (only when run.json says
  ``replicated_subscription``), per subscription named on L's consumer
  receipts: ``reconsumed``, the messages it received both before and after its
  consumer's failover line; ``gaps``, the messages some consumer outside L
  received that this subscription never received, in any cluster.
* **Writes**: from t_loss to the first ok of a send *invoked* at or after
  t_loss, in any region (``stalled_s``): a write already in flight at the loss
  may still be acknowledged, which says nothing about new writes;
  and how long after the rebuild that was (``after_rebuild_s``), or that
  writes never resumed. Under the strong scheme with no failover this is the
  plain answer to "do writes stall".
* **Not counted**: a ``lose`` destroys L's consumers' view too. The acked
  messages L's consumers never received, acked before the rebuild (or at any
  time, without one), and later in their producer's sequence than anything L
  received from that producer before t_loss, are what L could not observe
  while it was gone: they are reported here and not counted as lost in L. A
  gap L could have seen (before its last receipt of the producer) still counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geo_recon.check.model import FLAG_READER, NEVER, Completions, FailoverEvent, Messages, Outcome, Receipts
from geo_recon.check.recovery import FaultWindow, unrecovered_outcome
from geo_recon.faults.recovery import DEFAULT_RECOVERY_S

GAP_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Loss:
    """One lost region of one region-loss fault."""

    fault_id: str
    fault: str
    region: str
    start: int  #: ns, t_loss
    stop: int | None  #: ns, the rebuild (or heal); None: lost until the end


def losses(windows: Sequence[FaultWindow]) -> list[Loss]:
    return [Loss(fault_id=w.id, fault=w.fault, region=region, start=w.start, stop=w.stop)
            for w in windows if w.region_loss and w.start is not None for region in w.lost_regions]


def _s(t: int | None, t0: int) -> float | None:
    return None if t is None else round((t - t0) / 1e9, 6)


def _span(times: np.ndarray, t0: int) -> dict[str, Any]:
    if not len(times):
        return {"count": 0, "first_ok_s": None, "last_ok_s": None, "span_s": 0.0}
    first, last = int(times.min()), int(times.max())
    return {"count": int(len(times)), "first_ok_s": _s(first, t0), "last_ok_s": _s(last, t0),
            "span_s": round((last - first) / 1e9, 6)}


def exposure(loss: Loss, *, messages: Messages, earliest_elsewhere: np.ndarray, origin: int, t0: int) -> dict[str, Any]:
    """Acked in L by t_loss and not yet received by a consumer outside L at t_loss.

    ``earliest_elsewhere``: per message, the first consumer receipt in any run.json region but L (NEVER if none).
    """
    mask = ((messages.outcome == Outcome.OK) & (messages.origin == origin) & (messages.done_time <= loss.start)
            & (earliest_elsewhere > loss.start))
    return _span(messages.done_time[mask], t0)


def _switch_time(failovers: Sequence[FailoverEvent], *, process: str, role: str, since: int) -> int | None:
    """The first failover line of this client at or after ``since``."""
    times = [f.time for f in failovers if f.process == process and f.role == role and f.time >= since]
    return min(times) if times else None


def _client(loss: Loss, *, process: str, role: str, times: np.ndarray, clusters: np.ndarray,
            failovers: Sequence[FailoverEvent], region_names: Sequence[str], load_end: int | None,
            t0: int) -> dict[str, Any]:
    switch = _switch_time(failovers, process=process, role=role, since=loss.start)
    after = max(loss.start, switch) if switch is not None else loss.start
    later = np.flatnonzero(times >= after)
    row: dict[str, Any] = {"client": process, "role": role, "failed_over": switch is not None,
                           "failover_s": _s(switch, t0)}
    if len(later):
        i = int(later[np.argmin(times[later])])
        code = int(clusters[i])
        row.update(outcome="recovered", rto_s=round((int(times[i]) - loss.start) / 1e9, 6),
                   recovered_s=_s(int(times[i]), t0),
                   cluster=loss.region if code < 0 else region_names[code])
    else:
        since = loss.stop if loss.stop is not None else loss.start
        row.update(outcome=unrecovered_outcome(since_s=_s(since, t0), load_end_s=_s(load_end, t0),
                                               limit_s=DEFAULT_RECOVERY_S),
                   rto_s=None, recovered_s=None, cluster=None)
    return row


def producer_rto(loss: Loss, *, completions: Completions, processes: Sequence[str], region_names: Sequence[str],
                 failovers: Sequence[FailoverEvent], load_end: int | None, t0: int) -> list[dict[str, Any]]:
    """RTO of each producer process of L: to its first ok send at or after t_loss (and its failover)."""
    here = completions.region == region_names.index(loss.region)
    out = []
    for code in np.unique(completions.process[here]).tolist():
        mine = here & (completions.process == code) & (completions.outcome == Outcome.OK)
        out.append(_client(loss, process=processes[code], role="producer", times=completions.time[mine],
                           clusters=completions.cluster[mine], failovers=failovers, region_names=region_names,
                           load_end=load_end, t0=t0))
    return out


def consumer_rto(loss: Loss, *, receipts: Receipts, processes: Sequence[str], region_names: Sequence[str],
                 failovers: Sequence[FailoverEvent], load_end: int | None, t0: int) -> list[dict[str, Any]]:
    """RTO of each consumer process of L (its receipts, not the end-of-run reader's)."""
    consumer = (receipts.flags & FLAG_READER) == 0
    out = []
    for code in np.unique(receipts.process[consumer]).tolist():
        mine = consumer & (receipts.process == code)
        out.append(_client(loss, process=processes[code], role="consumer", times=receipts.time[mine],
                           clusters=receipts.cluster[mine], failovers=failovers, region_names=region_names,
                           load_end=load_end, t0=t0))
    return out


def not_observable(loss: Loss, *, messages: Messages, receipts: Receipts, received: np.ndarray) -> np.ndarray:
    """Bool per message: what L's consumers could not receive because L was gone (see the module docstring).

    ``received``: per message, whether L received it at all (consumer or reader)."""
    before = receipts.time < loss.start
    last_seq = np.full(int(messages.producer.max()) + 1 if len(messages) else 0, np.iinfo(np.int64).min,
                       dtype=np.int64)
    if before.any():
        rows = receipts.msg[before]
        np.maximum.at(last_seq, messages.producer[rows], messages.seq[rows])
    mask = (messages.outcome == Outcome.OK) & ~received
    if len(last_seq):
        mask &= messages.seq > last_seq[messages.producer]
    if loss.stop is not None:
        mask &= messages.done_time < loss.stop
    return mask


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What one subscription of L's consumers received: kept past L's pass, for its gaps."""

    name: str
    receipts: int
    reconsumed: int
    received: np.ndarray  #: bool per message


def subscription_views(loss: Loss, *, receipts: Receipts, n_messages: int, processes: Sequence[str],
                       subscriptions: Sequence[str], failovers: Sequence[FailoverEvent]) -> list[SubscriptionView]:
    """Per subscription named on L's consumer receipts: received messages and the re-consumed count."""
    consumer = ((receipts.flags & FLAG_READER) == 0) & (receipts.subscription >= 0)
    switch = np.full(len(processes) + 1, NEVER, dtype=np.int64)
    for code in np.unique(receipts.process[consumer]).tolist():
        t = _switch_time(failovers, process=processes[code], role="consumer", since=loss.start)
        if t is not None:
            switch[code] = t
    out = []
    for code in np.unique(receipts.subscription[consumer]).tolist():
        mine = consumer & (receipts.subscription == code)
        msg = receipts.msg[mine]
        after = receipts.time[mine] >= switch[receipts.process[mine]]
        seen_before = np.zeros(n_messages, dtype=bool)
        seen_before[msg[~after]] = True
        seen_after = np.zeros(n_messages, dtype=bool)
        seen_after[msg[after]] = True
        received = seen_before | seen_after
        out.append(SubscriptionView(name=subscriptions[code], receipts=int(mine.sum()),
                                    reconsumed=int((seen_before & seen_after).sum()), received=received))
    return out


def subscription_rows(views: Sequence[SubscriptionView], *, messages: Messages, producers: Sequence[str],
                      earliest_elsewhere: np.ndarray) -> list[dict[str, Any]]:
    """Per subscription: receipts, re-consumed, and the gaps against what consumers outside L received."""
    elsewhere = earliest_elsewhere != NEVER
    out = []
    for v in views:
        gaps = np.flatnonzero(elsewhere & ~v.received)
        out.append({"subscription": v.name, "receipts": v.receipts, "reconsumed": v.reconsumed,
                    "gaps": int(len(gaps)),
                    "gap_examples": [f"{producers[int(messages.producer[m])]}:{int(messages.seq[m])}"
                                     for m in gaps[:GAP_EXAMPLES]]})
    return out


def writes(loss: Loss, *, messages: Messages, load_end: int | None, t0: int) -> dict[str, Any]:
    """From t_loss to the first ok of a send invoked at or after it, in any region; with a rebuild, how
    long after it."""
    new = (messages.outcome == Outcome.OK) & (messages.invoke_time >= loss.start)
    ok = messages.done_time[new]
    if not len(ok):
        since = loss.stop if loss.stop is not None else loss.start
        return {"outcome": unrecovered_outcome(since_s=_s(since, t0), load_end_s=_s(load_end, t0),
                                               limit_s=DEFAULT_RECOVERY_S),
                "stalled_s": None, "resumed_s": None, "after_rebuild_s": None}
    first = int(ok.min())
    return {"outcome": "resumed", "stalled_s": round((first - loss.start) / 1e9, 6), "resumed_s": _s(first, t0),
            "after_rebuild_s": None if loss.stop is None or first < loss.stop
            else round((first - loss.stop) / 1e9, 6)}


def loss_row(loss: Loss, *, rpo_row: Mapping[str, Any] | None, exposure_row: dict[str, Any],
             clients: list[dict[str, Any]], subscriptions: list[dict[str, Any]] | None,
             writes_row: dict[str, Any], not_counted: int, scheme: Any, load_end: int | None,
             t0: int, failover_mode: Any = None) -> dict[str, Any]:
    """The results.json row of one lost region (see :class:`~geo_recon.check.core.CheckResult`)."""
    rpo_part = {"count": 0, "first_ok_s": None, "last_ok_s": None, "span_s": 0.0}
    if rpo_row is not None:
        rpo_part = {k: rpo_row[k] for k in ("count", "first_ok_s", "last_ok_s")}
        rpo_part["span_s"] = round(rpo_row["span_ms"] / 1000, 6)
    return {"fault_id": loss.fault_id, "fault": loss.fault, "region": loss.region, "scheme": scheme,
            "failover_mode": failover_mode,
            "loss_s": _s(loss.start, t0), "rebuilt_s": _s(loss.stop, t0) if loss.fault == "lose" else None,
            "healed_s": _s(loss.stop, t0), "load_end_s": _s(load_end, t0),
            "rpo": rpo_part, "exposure": exposure_row, "clients": clients,
            "failed_over": any(c["failed_over"] for c in clients),
            "subscriptions": subscriptions, "writes": writes_row, "not_counted": not_counted}
