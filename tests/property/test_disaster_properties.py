"""Property tests: on random histories with a region lost, the checker's region_loss rows equal a plain-Python
reference written from the definitions in geo_recon.check.disaster (dicts and loops, meant to be read)."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_recon.check import check_run
from geo_recon.check.recovery import unrecovered_outcome
from geo_recon.faults.spec import DEFAULT_RECOVERY_S

S = 1_000_000_000
MS = 1_000_000
T0 = 1_750_000_000 * S


def simulate(seed: int, n_regions: int, messages: int, rebuild: bool, replicated: bool, fault: str) -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    """run.json and the events of a random history in which region a is lost."""
    rng = random.Random(seed)
    regions = ["a", "b", "c"][:n_regions]
    loss = T0 + rng.randint(5_000, 40_000) * MS
    stop = loss + rng.randint(1_000, 30_000) * MS if rebuild else None
    end = T0 + rng.choice([50_000, 90_000]) * MS
    events: list[dict[str, Any]] = []
    consumers = {r: [f"{r}/c{i}" for i in range(rng.randint(1, 2))] for r in regions}
    for region in regions:
        for p in range(rng.randint(1, 2)):
            producer = f"{region}/p{p}"
            times = sorted(rng.randint(0, (end - T0) // MS) for _ in range(rng.randint(1, messages)))
            for seq, t_ms in enumerate(times):
                t = T0 + t_ms * MS
                base = {"f": "send", "region": region, "process": producer, "producer": producer, "seq": seq}
                events.append({"type": "invoke", **base, "time": t})
                outcome = rng.choice(["ok", "ok", "ok", "fail", "info", None])
                if outcome is None:
                    continue
                done = t + rng.randint(1, 2000) * MS
                line = {"type": outcome, **base, "time": done}
                if outcome == "ok" and rng.random() < 0.3:
                    line["cluster"] = rng.choice(regions)
                events.append(line)
                if outcome != "ok":
                    continue
                for observer in regions:
                    for c in consumers[observer]:
                        if rng.random() < 0.25:
                            continue
                        for _ in range(rng.choice([1, 1, 1, 2])):
                            recv = {"type": "recv", "time": done + rng.randint(0, 3000) * MS, "region": observer,
                                    "process": c, "producer": producer, "seq": seq, "msg_id": f"{producer}:{seq}"}
                            if rng.random() < 0.1:
                                recv["via"] = "reader"
                            if replicated and rng.random() < 0.9:
                                recv["subscription"] = rng.choice([f"sub-{observer}", f"sub-{observer}-2"])
                            if rng.random() < 0.3:
                                recv["cluster"] = rng.choice(regions)
                            events.append(recv)
    events.append({"type": "fault", "time": loss, "phase": "start", "fault": fault, "target": "a", "id": "f1",
                   **({"region_loss": True, "regions": ["a"]} if fault == "lose" else {})})
    if stop is not None:
        events.append({"type": "fault", "time": stop, "phase": "stop", "fault": fault, "target": "a", "id": "f1"})
    for client, role in [("a/p0", "producer"), ("a/p1", "producer"), ("a/c0", "consumer"), ("a/c1", "consumer")]:
        for _ in range(rng.choice([0, 1, 1, 2])):
            events.append({"type": "failover", "time": loss + rng.randint(-3000, 20_000) * MS, "region": "a",
                           "process": client, "client": client, "role": role, "from": "a", "to": "b", "mode": "auto"})
    rng.shuffle(events)
    run = {"regions": regions, "scheme": rng.choice(["async", "strong"]), "replicated_subscription": replicated}
    return run, events


def _s(t: int, t0: int) -> float:
    return round((t - t0) / 1e9, 6)


def reference(run: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The region_loss row of region a and its lost count, straight from the definitions."""
    regions = run["regions"]
    sends = [e for e in events if e["type"] in ("invoke", "ok", "fail", "info")]
    recvs = [e for e in events if e["type"] == "recv"]
    start = next(e for e in events if e["type"] == "fault" and e["phase"] == "start")
    stops = [e for e in events if e["type"] == "fault" and e["phase"] == "stop"]
    loss, stop = start["time"], (stops[0]["time"] if stops else None)
    t0 = min([e["time"] for e in sends] + [start["time"]] + [e["time"] for e in stops])
    load_end = max(e["time"] for e in sends if e["type"] == "invoke")
    ok_time: dict[tuple[str, int], int] = {}
    origin: dict[tuple[str, int], str] = {}
    for e in sends:
        key = (e["producer"], e["seq"])
        origin.setdefault(key, e["region"]) if e["type"] != "invoke" else origin.__setitem__(key, e["region"])
        if e["type"] == "ok":
            ok_time[key] = min(ok_time.get(key, e["time"]), e["time"])

    def got(key: tuple[str, int], where: Any, *, consumer: bool = False, by: int | None = None) -> bool:
        return any((r["producer"], r["seq"]) == key and where(r["region"]) and
                   not (consumer and r.get("via") == "reader") and (by is None or r["time"] <= by) for r in recvs)

    def span(times: list[int]) -> dict[str, Any]:
        if not times:
            return {"count": 0, "first_ok_s": None, "last_ok_s": None, "span_s": 0.0}
        return {"count": len(times), "first_ok_s": _s(min(times), t0), "last_ok_s": _s(max(times), t0),
                "span_s": round((max(times) - min(times)) / 1e9, 6)}

    from_a = [k for k in ok_time if origin[k] == "a"]
    elsewhere = lambda r: r != "a" and r in regions  # noqa: E731
    rpo = [ok_time[k] for k in from_a if (stop is None or ok_time[k] < stop) and not got(k, elsewhere)]
    exposure = [ok_time[k] for k in from_a if ok_time[k] <= loss and not got(k, elsewhere, consumer=True, by=loss)]

    def switch(process: str, role: str) -> int | None:
        times = [e["time"] for e in events if e["type"] == "failover" and e["process"] == process
                 and e["role"] == role and e["time"] >= loss]
        return min(times) if times else None

    def client(process: str, role: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        sw = switch(process, role)
        after = max(loss, sw) if sw is not None else loss
        later = [e for e in lines if e["time"] >= after]
        row: dict[str, Any] = {"client": process, "role": role, "failed_over": sw is not None,
                               "failover_s": None if sw is None else _s(sw, t0)}
        if later:
            first = min(later, key=lambda e: e["time"])
            firsts = [e for e in later if e["time"] == first["time"]]
            row.update(outcome="recovered", rto_s=round((first["time"] - loss) / 1e9, 6),
                       recovered_s=_s(first["time"], t0),
                       cluster={e.get("cluster", "a") for e in firsts})
        else:
            since = stop if stop is not None else loss
            row.update(outcome=unrecovered_outcome(since_s=_s(since, t0), load_end_s=_s(load_end, t0),
                                                   limit_s=DEFAULT_RECOVERY_S), rto_s=None, recovered_s=None,
                       cluster=None)
        return row

    done = [e for e in sends if e["type"] in ("ok", "fail", "info") and e["region"] == "a"]
    clients = [client(p, "producer", [e for e in done if e["process"] == p and e["type"] == "ok"])
               for p in sorted({e["process"] for e in done})]
    in_a = [r for r in recvs if r["region"] == "a" and r.get("via") != "reader"]
    clients += [client(c, "consumer", [r for r in in_a if r["process"] == c]) for c in sorted({r["process"] for r in in_a})]

    not_counted = 0
    never_in_a = [k for k in ok_time if not got(k, lambda r: r == "a")]
    if start["fault"] == "lose":
        for k in never_in_a:
            before = [r["seq"] for r in recvs if r["region"] == "a" and r["producer"] == k[0] and r["time"] < loss]
            if (stop is None or ok_time[k] < stop) and (not before or k[1] > max(before)):
                not_counted += 1

    subscriptions = None
    if run["replicated_subscription"]:
        subscriptions = []
        for name in sorted({r["subscription"] for r in in_a if "subscription" in r}):
            mine = [r for r in in_a if r.get("subscription") == name]
            before, after = set(), set()
            for r in mine:
                sw = switch(r["process"], "consumer")
                (after if sw is not None and r["time"] >= sw else before).add((r["producer"], r["seq"]))
            received = before | after
            gaps = {(r["producer"], r["seq"]) for r in recvs if elsewhere(r["region"]) and r.get("via") != "reader"}
            gaps -= received
            subscriptions.append({"subscription": name, "receipts": len(mine), "reconsumed": len(before & after),
                                  "gaps": len(gaps), "gap_set": gaps})

    invoked = {}
    for e in sends:  # a write already in flight at the loss says nothing about new writes
        if e["type"] == "invoke":
            invoked.setdefault((e["producer"], e["seq"]), e["time"])
    oks = [e["time"] for e in sends if e["type"] == "ok" and invoked.get((e["producer"], e["seq"]), -1) >= loss]
    if oks:
        first = min(oks)
        writes = {"outcome": "resumed", "stalled_s": round((first - loss) / 1e9, 6), "resumed_s": _s(first, t0),
                  "after_rebuild_s": None if stop is None or first < stop else round((first - stop) / 1e9, 6)}
    else:
        since = stop if stop is not None else loss
        writes = {"outcome": unrecovered_outcome(since_s=_s(since, t0), load_end_s=_s(load_end, t0),
                                                 limit_s=DEFAULT_RECOVERY_S),
                  "stalled_s": None, "resumed_s": None, "after_rebuild_s": None}
    return {"rpo": span(rpo), "exposure": span(exposure), "clients": clients, "not_counted": not_counted,
            "lost_in_a": len(never_in_a) - not_counted, "subscriptions": subscriptions, "writes": writes,
            "loss_s": _s(loss, t0)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_regions=st.integers(2, 3), messages=st.integers(1, 30),
       rebuild=st.booleans(), replicated=st.booleans(), fault=st.sampled_from(["lose", "lose", "kill"]))
def test_region_loss_rows_match_the_reference(seed: int, n_regions: int, messages: int, rebuild: bool,
                                              replicated: bool, fault: str) -> None:
    run, events = simulate(seed, n_regions, messages, rebuild, replicated, fault)
    if not any(e["type"] == "ok" for e in events):
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "history").mkdir()
        (run_dir / "run.json").write_text(json.dumps(run))
        half = len(events) // 2
        for name, part in (("one.jsonl", events[:half]), ("two.jsonl", events[half:])):
            (run_dir / "history" / name).write_text("".join(json.dumps(e) + "\n" for e in part))
        result = check_run(run_dir).to_json()
    want = reference(run, events)
    (row,) = result["region_loss"]
    assert row["loss_s"] == want["loss_s"]
    assert row["rpo"] == want["rpo"]
    assert row["exposure"] == want["exposure"]
    assert row["writes"] == want["writes"]
    assert row["not_counted"] == want["not_counted"]
    assert result["regions"]["a"]["lost"] == want["lost_in_a"]
    assert len(row["clients"]) == len(want["clients"])
    for got, expected in zip(row["clients"], want["clients"], strict=True):
        clusters = expected.pop("cluster")
        cluster = got.pop("cluster")
        assert got == expected
        assert cluster is None if clusters is None else cluster in clusters
    if want["subscriptions"] is None:
        assert row["subscriptions"] is None
    else:
        assert len(row["subscriptions"]) == len(want["subscriptions"])
        for got, expected in zip(row["subscriptions"], want["subscriptions"], strict=True):
            gap_set = expected.pop("gap_set")
            examples = got.pop("gap_examples")
            assert got == expected
            assert len(examples) == min(5, len(gap_set))
            assert {(p, int(s)) for p, s in (x.rsplit(":", 1) for x in examples)} <= gap_set
