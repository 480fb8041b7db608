"""Faults and what they cost: windows, convergence after each stop, RPO, RTO. Pure functions.

* Fault windows pair ``start`` and ``stop`` lines by ``id`` in time order (a
  stop closes the oldest open start of its id). A start without a stop has
  ``stop_s`` null; a stop without a start has ``start_s`` null.
* A **region-loss fault** is a kill/stop/pause/lose whose target is a bare region
  name, or any fault whose start line says ``"region_loss": true``. The lost
  regions are the start line's ``regions`` if given, else the target if it is a
  region, else the part of the target before ``/``.
* **Convergence** after a stop at time S: the time from S until every message
  acked before S has been received by a consumer in every run.json region
  (0 if that was already so at S; null, with how many are still missing per
  region, if it never happens).
* **RPO** of a region-loss fault on region L: the acked messages produced in L,
  acked before the stop (or at any time, if it never stopped), that no consumer
  or reader in any other run.json region ever received: their count, the span
  of their ok times, and the window from the oldest of them to the fault start.
* **RTO** per fault and region: from the first fail/info send completion in
  the region at or after the fault start (and before the next fault starts) to
  the next ok completion in the region: 0 when no send failed in that window;
  null with ``recovered: false`` when no ok completion followed. ``outcome``
  says which of three it is: ``recovered`` (a number), ``never`` (the load went
  on for at least ``DEFAULT_RECOVERY_S`` after the fault's heal and nothing
  recovered) or ``not observed`` (the load ended first); ``heal_s`` and
  ``load_end_s`` let a verdict decide the same with its own limit.
* **Recovery** after each heal of a fault that stops clients (every kind but
  latency and bandwidth), per region: how long after the heal the region's
  producers had a send acknowledged (``publish_ms``) and its consumers received
  a message (``receive_ms``), null when that never happened; ``load_end_s`` is
  the last send invoked in the run, so a reader can tell "never" (the load went
  on) from "not observed" (it ended first). A region still lost to another
  fault at that heal (e.g. an unload in a while b is stopped) recovers from
  that fault's heal instead: the row says so (``held_down_by``, its id;
  ``recovers_from_s``) and both times count from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geo_recon.check.model import NEVER, Completions, FaultEvent, Messages, Outcome
from geo_recon.check.timing import ms
from geo_recon.faults.recovery import DEFAULT_RECOVERY_S, DEGRADATION_KINDS

REGION_LOSS_FAULTS = frozenset({"kill", "stop", "pause", "lose"})


@dataclass(frozen=True, slots=True)
class FaultWindow:
    id: str
    fault: str
    target: str
    start: int | None  #: ns
    stop: int | None  #: ns
    regions: tuple[str, ...] | None  #: the start line's ``regions``
    region_loss: bool
    lost_regions: tuple[str, ...]


def fault_windows(events: Sequence[FaultEvent], *, regions: Sequence[str]) -> list[FaultWindow]:
    """Pair fault start and stop lines into windows, ordered by start (stop-only windows by stop)."""
    open_by_id: dict[str, list[FaultEvent]] = {}
    pairs: list[tuple[FaultEvent | None, FaultEvent | None]] = []
    for event in sorted(events, key=lambda e: e.time):
        if event.phase == "start":
            open_by_id.setdefault(event.id, []).append(event)
            pairs.append((event, None))
        else:
            waiting = open_by_id.get(event.id)
            if waiting:
                opened = waiting.pop(0)
                index = next(i for i, (s, _) in enumerate(pairs) if s is opened)
                pairs[index] = (opened, event)
            else:
                pairs.append((None, event))
    out = []
    for start, stop in pairs:
        head = start if start is not None else stop
        assert head is not None
        declared = bool(start is not None and start.region_loss)
        bare = head.target in regions
        loss = declared or (head.fault in REGION_LOSS_FAULTS and bare)
        lost: tuple[str, ...] = ()
        if loss:
            if start is not None and start.regions is not None:
                lost = tuple(r for r in start.regions if r in regions)
            elif bare:
                lost = (head.target,)
            elif head.target.split("/", 1)[0] in regions:
                lost = (head.target.split("/", 1)[0],)
        out.append(FaultWindow(id=head.id, fault=head.fault, target=head.target,
                               start=None if start is None else start.time,
                               stop=None if stop is None else stop.time,
                               regions=None if start is None else start.regions, region_loss=loss,
                               lost_regions=lost))
    out.sort(key=lambda w: (w.start if w.start is not None else w.stop or 0, w.id))
    return out


def _s(t: int | None, t0: int) -> float | None:
    return None if t is None else round((t - t0) / 1e9, 6)


def window_json(w: FaultWindow, t0: int) -> dict[str, Any]:
    return {"id": w.id, "fault": w.fault, "target": w.target, "start_s": _s(w.start, t0),
            "stop_s": _s(w.stop, t0), "region_loss": w.region_loss, "lost_regions": list(w.lost_regions),
            "regions": None if w.regions is None else list(w.regions)}


def convergence(windows: Sequence[FaultWindow], *, messages: Messages, latest: np.ndarray,
                missing_ok: dict[str, np.ndarray], t0: int) -> list[dict[str, Any]]:
    """Per fault stop: how long until everything acked before it was received everywhere.

    ``latest``: per message, the latest of its first consumer receipts over the run.json regions (NEVER if
    some region's consumers never got it); ``missing_ok``: per region, the sorted ok times of the acked
    messages its consumers never got.
    """
    stops = sorted({w.stop for w in windows if w.stop is not None})
    if not stops:
        return []
    ok = messages.outcome == Outcome.OK
    done = messages.done_time[ok]
    stop_arr = np.array(stops, dtype=np.int64)
    # acked before stop j  <=>  done < stops[j]  <=>  j >= number of stops <= done
    bucket = np.searchsorted(stop_arr, done, side="right")
    worst = np.full(len(stops) + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(worst, bucket, latest[ok])
    worst = np.maximum.accumulate(worst)
    by_stop: dict[int, dict[str, Any]] = {}
    for j, stop in enumerate(stops):
        still = {r: int(np.searchsorted(t, stop, side="left")) for r, t in missing_ok.items()}
        if worst[j] == NEVER:
            by_stop[stop] = {"converged": False, "ms": None, "still_missing": still}
        else:
            reached = int(worst[j])
            waited = 0.0 if reached == np.iinfo(np.int64).min else ms(max(0, reached - stop))
            by_stop[stop] = {"converged": True, "ms": waited, "still_missing": still}
    return [{"fault_id": w.id, "stop_s": _s(w.stop, t0), **by_stop[w.stop]} for w in windows if w.stop is not None]


def rpo(windows: Sequence[FaultWindow], *, messages: Messages, received: dict[str, np.ndarray],
        region_names: Sequence[str], t0: int) -> list[dict[str, Any]]:
    """Per region-loss fault and lost region: acked messages that never left it."""
    out = []
    ok = messages.outcome == Outcome.OK
    for w in windows:
        for lost_region in w.lost_regions:
            code = region_names.index(lost_region)
            elsewhere = np.zeros(len(messages), dtype=bool)
            others = [r for r in received if r != lost_region]
            for region in others:
                elsewhere |= received[region]
            mask = ok & (messages.origin == code) & ~elsewhere
            if w.stop is not None:
                mask &= messages.done_time < w.stop
            times = messages.done_time[mask]
            entry: dict[str, Any] = {"fault_id": w.id, "region": lost_region, "count": int(mask.sum()),
                                     "first_ok_s": None, "last_ok_s": None, "span_ms": 0.0, "window_ms": None}
            if not others:
                entry["note"] = "no other region in run.json: nothing can have left it"
            if len(times):
                first, last = int(times.min()), int(times.max())
                entry.update(first_ok_s=_s(first, t0), last_ok_s=_s(last, t0), span_ms=ms(last - first),
                             window_ms=None if w.start is None else ms(w.start - first))
            out.append(entry)
    return out


def unrecovered_outcome(*, since_s: float | None, load_end_s: float | None, limit_s: float) -> str:
    """``never`` when the load went on for ``limit_s`` after ``since_s`` (a heal, or the first failure of a
    fault never healed) and nothing recovered; ``not observed`` when it ended first."""
    if since_s is None or load_end_s is None or load_end_s - since_s < limit_s:
        return "not observed"
    return "never"


def heals(windows: Sequence[FaultWindow]) -> list[int]:
    """The stop times after which clients must work again (faults that stop clients), sorted."""
    return sorted({w.stop for w in windows if w.stop is not None and w.fault not in DEGRADATION_KINDS})


def recovery(windows: Sequence[FaultWindow], *, completions: Completions, first_receipt_after: dict[str, list[int | None]],
             regions: Sequence[str], region_names: Sequence[str], load_end: int | None, t0: int) -> list[dict[str, Any]]:
    """Per healed fault that stops clients, and region: time from the heal to the region's next ok send and
    to its consumers' next receipt. ``first_receipt_after[region][j]``: the first consumer receipt at or after
    ``heals(windows)[j]``."""
    stops = heals(windows)
    if not stops:
        return []
    oks = {}
    for region in regions:
        here = (completions.region == region_names.index(region)) & (completions.outcome == Outcome.OK)
        times = completions.time[here]
        # a few heals: one pass each is cheaper than sorting every ok
        oks[region] = times if len(stops) <= _FEW_HEALS else np.sort(times)
    out = []
    for w in windows:
        if w.stop is None or w.fault in DEGRADATION_KINDS:
            continue
        for region in regions:
            holder = held_down_by(windows, w, region)
            since = w.stop if holder is None else holder.stop
            assert since is not None
            j = stops.index(since)
            published = _first_at_or_after(oks[region], since, is_sorted=len(stops) > _FEW_HEALS)
            received = first_receipt_after.get(region, [None] * len(stops))[j]
            row = {"fault_id": w.id, "region": region, "heal_s": _s(w.stop, t0),
                   "publish_ms": None if published is None else ms(published - since),
                   "receive_ms": None if received is None else ms(received - since),
                   "load_end_s": _s(load_end, t0)}
            if holder is not None:
                row.update(held_down_by=holder.id, recovers_from_s=_s(since, t0))
            out.append(row)
    return out


_FEW_HEALS = 16


def _first_at_or_after(times: np.ndarray, since: int, *, is_sorted: bool) -> int | None:
    if is_sorted:
        i = int(np.searchsorted(times, since, side="left"))
        return int(times[i]) if i < len(times) else None
    later = times[times >= since]
    return int(later.min()) if len(later) else None


def held_down_by(windows: Sequence[FaultWindow], healed: FaultWindow, region: str) -> FaultWindow | None:
    """The loss of ``region`` (a whole-region kill, stop, pause or lose) still in effect when ``healed`` healed
    and healed last after it: the region's clients cannot work again before that one heals too."""
    holding = [o for o in windows if o is not healed and region in o.lost_regions and o.start is not None
               and o.stop is not None and healed.stop is not None and o.start <= healed.stop < o.stop]
    return max(holding, key=lambda o: o.stop or 0, default=None)


def rto(windows: Sequence[FaultWindow], *, completions: Completions, regions: Sequence[str],
        region_names: Sequence[str], t0: int, load_end: int | None = None) -> list[dict[str, Any]]:
    """Per fault and region: first failed/unknown send after the fault start to the next ok send."""
    starts = sorted(w.start for w in windows if w.start is not None)
    if not starts:
        return []
    per_region = {}
    for region in regions:
        code = region_names.index(region)
        here = completions.region == code
        t = completions.time[here]
        ok = completions.outcome[here] == Outcome.OK
        per_region[region] = (np.sort(t[~ok]), t[ok])
    out = []
    for w in windows:
        if w.start is None:
            continue
        later = [s for s in starts if s > w.start]
        until = later[0] if later else None
        for region in regions:
            failed, oks = per_region[region]
            i = int(np.searchsorted(failed, w.start, side="left"))
            entry: dict[str, Any] = {"fault_id": w.id, "region": region, "heal_s": _s(w.stop, t0),
                                     "load_end_s": _s(load_end, t0)}
            if i == len(failed) or (until is not None and failed[i] >= until):
                entry.update(ms=0.0, recovered=True, failed=False, first_failure_s=None, recovered_s=None,
                             outcome="recovered")
                out.append(entry)
                continue
            first_failure = int(failed[i])
            after = oks[oks >= first_failure]  # one pass per fault and region: cheaper than sorting every ok
            if not len(after):
                since = entry["heal_s"] if w.stop is not None else _s(first_failure, t0)
                entry.update(ms=None, recovered=False, failed=True, first_failure_s=_s(first_failure, t0),
                             recovered_s=None, outcome=unrecovered_outcome(
                                 since_s=since, load_end_s=entry["load_end_s"], limit_s=DEFAULT_RECOVERY_S))
            else:
                back = int(after.min())
                entry.update(ms=ms(back - first_failure), recovered=True, failed=True,
                             first_failure_s=_s(first_failure, t0), recovered_s=_s(back, t0), outcome="recovered")
            out.append(entry)
    return out
