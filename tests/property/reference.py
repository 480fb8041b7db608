"""A small, obviously correct checker: DESIGN.md's definitions written as plain Python over event dicts.

Slow (dicts and sets per event) and meant only to be read and trusted. The
property tests compare geo_recon.check against it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

SEND = ("invoke", "ok", "fail", "info")


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], int, int]]]:
    """run.json and every event with its (file number, line number); files sorted by path."""
    run = json.loads((run_dir / "run.json").read_text())
    events = []
    files = sorted(p for p in (run_dir / "history").rglob("*.jsonl"))
    for f, path in enumerate(files):
        for n, text in enumerate(path.read_text().splitlines(), start=1):
            if text.strip():
                events.append((json.loads(text), f, n))
    return run, events


def ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def nearest_rank(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    v = sorted(values)

    def pick(p: int) -> float:
        return ms(v[max(math.ceil(p / 100 * len(v)) - 1, 0)])

    return {"p50": pick(50), "p90": pick(90), "p99": pick(99), "max": ms(v[-1])}


def ordering(sub: str | None) -> str:
    if sub is None:
        return "ordered"
    s = sub.lower().replace("_", "")
    return {"exclusive": "ordered", "failover": "ordered", "keyshared": "key", "shared": "none"}[s]


def check(run_dir: Path) -> dict[str, Any]:
    run, raw = read_run(run_dir)
    regions = run["regions"]
    offsets = run.get("clock_offsets_ns", {})
    events = []
    for e, f, n in raw:
        e = dict(e)
        e["time"] += offsets.get(e.get("process"), 0)
        events.append((e, f, n))

    # sends, per (producer, seq)
    lines = defaultdict(list)
    for e, f, n in events:
        if e["type"] in SEND and e.get("f") == "send":
            lines[(e["producer"], e["seq"])].append((e, f, n))
    outcome, ok_time, invoke_time, origin, key = {}, {}, {}, {}, {}
    for k, ls in lines.items():
        kinds = [e["type"] for e, _, _ in ls]
        completions = sum(1 for t in kinds if t != "invoke")
        if "ok" in kinds:
            outcome[k] = "ok"
            ok_time[k] = min(e["time"] for e, _, _ in ls if e["type"] == "ok")
        elif "info" in kinds or kinds.count("invoke") > completions:
            outcome[k] = "unknown"
        elif "fail" in kinds:
            outcome[k] = "fail"
        invokes = sorted((f, n, e) for e, f, n in ls if e["type"] == "invoke")
        first = invokes[0][2] if invokes else min(ls, key=lambda x: (x[1], x[2]))[0]
        origin[k] = first["region"]
        key[k] = first.get("key")
        if invokes:
            invoke_time[k] = min(e["time"] for _, _, e in invokes)
    expected = {k for k, o in outcome.items() if o == "ok"}

    recvs = [(e, f, n) for e, f, n in events if e["type"] == "recv"]
    out: dict[str, Any] = {"regions": {}}
    first_consumer: dict[str, dict[tuple[str, int], int]] = {}
    received_any: dict[str, set[tuple[str, int]]] = {}
    for region in regions:
        rs = [(e, f, n) for e, f, n in recvs if e["region"] == region]
        consumer = [(e, f, n) for e, f, n in rs if e.get("via") != "reader"]
        got = {(e["producer"], e["seq"]) for e, _, _ in rs}
        got_c = {(e["producer"], e["seq"]) for e, _, _ in consumer}
        first = {}
        for e, _, _ in consumer:
            k = (e["producer"], e["seq"])
            first[k] = min(first.get(k, e["time"]), e["time"])
        first_consumer[region] = first
        received_any[region] = got
        ids = defaultdict(set)
        for e, _, _ in rs:
            ids[(e["producer"], e["seq"])].add(e["msg_id"])
        deliveries = defaultdict(int)
        for e, _, _ in consumer:
            deliveries[(e["producer"], e["seq"], e["msg_id"])] += 1
        # reordering, per consumer process, in (time, file, line) order
        reordered = 0
        by_process = defaultdict(list)
        for e, f, n in consumer:
            by_process[e["process"]].append((e["time"], f, n, e))
        for items in by_process.values():
            seen = set()
            highest = {}
            for _, _, _, e in sorted(items, key=lambda x: x[:3]):
                k = (e["producer"], e["seq"])
                if k in seen:
                    continue
                seen.add(k)
                how = ordering(e.get("subscription_type"))
                if how == "none" or outcome.get(k) in (None, "fail"):
                    continue
                group = (e["producer"], key.get(k) if how == "key" else None, how)
                if group in highest and e["seq"] < highest[group]:
                    reordered += 1
                highest[group] = max(highest.get(group, e["seq"]), e["seq"])
        lags = defaultdict(list)
        for k in expected & got_c:
            lags[origin[k]].append(first[k] - ok_time[k])
        all_lags = [v for vs in lags.values() for v in vs]
        out["regions"][region] = {
            "expected": len(expected),
            "lost": len(expected - got),
            "stored_not_consumed": len((expected & got) - got_c),
            "duplicates": sum(len(v) - 1 for v in ids.values()),
            "redelivered": sum(c - 1 for c in deliveries.values()),
            "reordered": reordered,
            "unexpected": sum(1 for k in got if outcome.get(k) in (None, "fail")),
            "recovered": sum(1 for k in got if outcome.get(k) == "unknown"),
            "lag_ms": nearest_rank(all_lags),
            "lag_ms_by_origin": {o: nearest_rank(v) for o, v in sorted(lags.items())},
        }
    validity = ("lost", "duplicates", "reordered", "unexpected")
    allowed = set(run.get("allowed", []))
    out["valid"] = not any(out["regions"][r][k] for r in regions for k in validity if k not in allowed)

    pub = defaultdict(list)
    for k in expected:
        if k in invoke_time:
            pub[origin[k]].append(ok_time[k] - invoke_time[k])
    out["publish_latency_ms"] = {o: nearest_rank(v) for o, v in sorted(pub.items())}

    # faults
    faults = sorted((e for e, _, _ in events if e["type"] == "fault"), key=lambda e: e["time"])
    windows = []
    open_ = defaultdict(list)
    for e in faults:
        if e["phase"] == "start":
            w = {"start": e, "stop": None}
            open_[e["id"]].append(w)
            windows.append(w)
        elif open_[e["id"]]:
            open_[e["id"]].pop(0)["stop"] = e
        else:
            windows.append({"start": None, "stop": e})
    t0 = min([e["time"] for e, _, _ in events if e["type"] in SEND and e.get("f") == "send"]
             + [e["time"] for e in faults])

    def rel(t: int | None) -> float | None:
        return None if t is None else round((t - t0) / 1e9, 6)

    windows.sort(key=lambda w: ((w["start"] or w["stop"])["time"], (w["start"] or w["stop"])["id"]))
    conv, rpo, rto = [], [], []
    for w in windows:
        head = w["start"] or w["stop"]
        stop = w["stop"]["time"] if w["stop"] else None
        if stop is not None:
            before = [k for k in expected if ok_time[k] < stop]
            missing = {r: sum(1 for k in before if k not in first_consumer[r]) for r in regions}
            if any(missing.values()):
                conv.append({"fault_id": head["id"], "stop_s": rel(stop), "converged": False, "ms": None,
                             "still_missing": missing})
            else:
                reached = max((first_consumer[r][k] for r in regions for k in before), default=stop)
                conv.append({"fault_id": head["id"], "stop_s": rel(stop), "converged": True,
                             "ms": ms(max(0, reached - stop)), "still_missing": missing})
        declared = bool(w["start"] and w["start"].get("region_loss"))
        bare = head["target"] in regions
        if declared or (head["fault"] in ("kill", "stop", "pause") and bare):
            if w["start"] and w["start"].get("regions") is not None:
                lost_regions = [r for r in w["start"]["regions"] if r in regions]
            elif bare:
                lost_regions = [head["target"]]
            elif head["target"].split("/")[0] in regions:
                lost_regions = [head["target"].split("/")[0]]
            else:
                lost_regions = []
            for lr in lost_regions:
                gone = sorted(ok_time[k] for k in expected if origin[k] == lr
                              and (stop is None or ok_time[k] < stop)
                              and not any(k in received_any[r] for r in regions if r != lr))
                entry = {"fault_id": head["id"], "region": lr, "count": len(gone)}
                if gone:
                    entry["span_ms"] = ms(gone[-1] - gone[0])
                    entry["window_ms"] = ms(w["start"]["time"] - gone[0]) if w["start"] else None
                rpo.append(entry)
        if w["start"] is not None:
            start = w["start"]["time"]
            later = [x["start"]["time"] for x in windows if x["start"] and x["start"]["time"] > start]
            until = min(later) if later else None
            for r in regions:
                comps = [e for e, _, _ in events if e["type"] in ("ok", "fail", "info") and e.get("f") == "send"
                         and e["region"] == r]
                fails = sorted(e["time"] for e in comps if e["type"] != "ok" and e["time"] >= start
                               and (until is None or e["time"] < until))
                if not fails:
                    rto.append({"fault_id": head["id"], "region": r, "ms": 0.0, "recovered": True})
                    continue
                oks = sorted(e["time"] for e in comps if e["type"] == "ok" and e["time"] >= fails[0])
                rto.append({"fault_id": head["id"], "region": r, "ms": ms(oks[0] - fails[0]) if oks else None,
                            "recovered": bool(oks)})
    out["convergence"] = conv
    out["rpo"] = rpo
    out["rto"] = rto
    return out
