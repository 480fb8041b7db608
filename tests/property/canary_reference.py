"""A simple reference for the canary's streaming checker: the same rules, computed with hindsight.

It sees the whole event list at once and computes each message's due and
forget times directly, instead of keeping queues and watermarks; the property
tests hold the streaming checker to it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field

from geo_recon.canary.checker import LAG_BUCKETS_S

# Events, in processing order (times non-decreasing):
#   ("sent", t, producer, origin, seq) | ("acked", t, producer, seq) | ("failed", t, producer, seq)
#   ("delivered", t, region, producer, seq, msg_id) | ("advance", t)


@dataclass
class Reference:
    pairs: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    origins: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    lags: dict = field(default_factory=lambda: defaultdict(lambda: [0] * (len(LAG_BUCKETS_S) + 1)))


def reference(events: list[tuple], regions: list[str], deadline: int, horizon: int) -> Reference:
    out = Reference()
    end = max((e[1] for e in events), default=0)
    origin_of: dict[str, str] = {}
    msgs: dict[tuple[str, int], dict] = {}
    # Pass 1: every message's fate (the streaming checker's rules 1, 2).
    for e in events:
        if e[0] == "sent":
            _, t, producer, origin, seq = e
            origin_of.setdefault(producer, origin)
            msgs[(producer, seq)] = {"origin": origin, "sent": t, "state": "pending", "due": t + 2 * deadline}
        elif e[0] in ("acked", "failed"):
            _, t, producer, seq = e
            m = msgs.get((producer, seq))
            if m is None or m["state"] != "pending" or t > m["due"]:
                continue  # never sent, already completed, or already decided as unknown
            m["state"] = "ok" if e[0] == "acked" else "failed"
            m["ack"] = t
            m["due"] = t + deadline
    for m in msgs.values():
        m["forget"] = m["due"] + horizon
        out.origins[m["origin"]]["sent"] += 1
        if m["state"] == "ok":
            out.origins[m["origin"]]["acked"] += 1
        elif m["state"] == "failed" or m["due"] < end:
            out.origins[m["origin"]]["failed"] += 1
    # Pass 2: deliveries, in order.
    first: dict[tuple, object] = {}  # (region, producer, seq) -> first msg_id counted
    late_marked: set = set()
    hi: dict[tuple[str, str], int] = {}
    for e in events:
        if e[0] != "delivered":
            continue
        _, t, region, producer, seq, msg_id = e
        m = msgs.get((producer, seq))
        if m is None or t > m["forget"] or t < m["sent"]:
            origin = origin_of.get(producer)
            forgotten = [s for (p, s), x in msgs.items() if p == producer and x["forget"] < t]
            if origin is not None and forgotten and seq <= max(forgotten):
                out.pairs[(origin, region)]["late"] += 1
            else:
                guess = origin or producer.split("/", 1)[0]
                out.pairs[(guess if guess in regions else region, region)]["unexpected"] += 1
            continue
        origin = m["origin"]
        pair = out.pairs[(origin, region)]
        key = (region, producer, seq)
        decided = t > m["due"]
        if key not in first:
            first[key] = msg_id
            if decided and m["state"] == "ok":
                pair["late"] += 1
                late_marked.add(key)
                continue
            pair["delivered"] += 1
            top = hi.get((region, producer), -1)
            if seq < top:
                pair["reordered"] += 1
            else:
                hi[(region, producer)] = seq
            if m["state"] == "ok":
                lag = max(0, t - m["ack"]) / 1e9
                out.lags[(origin, region)][bisect_left(LAG_BUCKETS_S, lag)] += 1
                m.setdefault("seen", {})[region] = t
            else:
                m.setdefault("seen", {})[region] = t
        elif first[key] == msg_id:
            pair["redelivered"] += 1
        else:
            pair["duplicated"] += 1
    # Loss, pending, exposure at the end.
    for (producer, seq), m in msgs.items():
        if m["state"] != "ok":
            continue
        origin = m["origin"]
        seen = m.get("seen", {})
        in_time = {r for r, t in seen.items() if t <= m["due"]}
        if m["due"] < end:
            for r in regions:
                if r not in in_time:
                    out.pairs[(origin, r)]["lost"] += 1
        else:
            for r in regions:
                if r not in seen:
                    out.pairs[(origin, r)]["pending"] += 1
            if len(regions) > 1 and not any(r != origin for r in seen):
                out.origins[origin]["exposure"] += 1
    return out
