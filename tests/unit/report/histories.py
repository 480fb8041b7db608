"""Small, deterministic run directories for the report tests, checked by the real checker.

``write_region_loss(run_dir, scheme)`` simulates the region-loss scenario on two
regions (a, b): region a is killed from 6 s to 12 s while both regions publish
40 msg/s for 20 s.

* async: a's acknowledged sends of the last 0.8 s before the kill never leave a
  (lost in b: the RPO); the replicator sends two older ones twice after the
  restart (duplicates in b); b keeps publishing; a catches up after the restart.
* strong: nothing acknowledged is lost; publishes cost one inter-region round
  trip; b's publishes stall for 1.5 s after the kill (unknown outcomes, then acks).
* both: sends in flight at the kill end unknown (one of them was stored:
  "recovered"), a's sends fail while it is down, one redelivery in b.

The run directory gets what the orchestrator writes (run.json, resolved.json,
outcome.json), results.json from :func:`geo_recon.check.check_run`, and
verdict.json judged by the real :func:`geo_recon.verdict.judge_run_dir` from the scenario.yaml written here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

from geo_recon.check import check_run, write_results
from geo_recon.verdict import judge_run_dir

S = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * S
TOPIC = "persistent://geo/recon/t0"
REGIONS = ("a", "b")
RATE = 40.0
DURATION_S = 20.0
KILL = (6.0, 12.0)
UNREPLICATED_S = 0.8

LIMITS: dict[str, dict[str, float]] = {
    "async": {"max_unexpected": 0, "max_duplicates": 0, "min_delivered_fraction": 0.9},
    "strong": {"max_unexpected": 0, "max_duplicates": 0, "min_delivered_fraction": 0.9, "max_lost": 0,
               "max_rpo_messages": 0},
}


def _t(seconds: float) -> int:
    return T0 + int(round(seconds * S))


def write_region_loss(run_dir: Path, scheme: str, *, seed: int = 3) -> Path:
    rng = random.Random(f"{seed}-{scheme}")
    ks, kstop = _t(KILL[0]), _t(KILL[1])
    lines: dict[str, list[dict[str, Any]]] = {r: [] for r in REGIONS}
    controller = [
        {"type": "fault", "time": ks, "phase": "start", "fault": "kill", "target": "a", "id": "f1",
         "process": "controller"},
        {"type": "fault", "time": kstop, "phase": "stop", "fault": "kill", "target": "a", "id": "f1",
         "process": "controller"},
    ]
    # per receiving region: producer -> [(natural receive time, seq, msg_id)]
    arrivals: dict[str, dict[str, list[tuple[int, int, str]]]] = {r: {} for r in REGIONS}
    counts = {r: {"sent": 0, "acked": 0, "failed": 0, "unknown": 0} for r in REGIONS}
    recovered_done = False
    duplicated: list[tuple[str, int]] = []
    redelivered: tuple[str, int, str] | None = None

    for origin in REGIONS:
        producer = f"{origin}/p0"
        for seq in range(int(RATE * DURATION_S)):
            invoke = _t(seq / RATE + (0.003 if origin == "b" else 0.0) + rng.uniform(0, 0.004))
            base = {"f": "send", "region": origin, "process": producer, "producer": producer, "seq": seq}
            lines[origin].append({"type": "invoke", "time": invoke, **base, "key": f"k{seq % 10}", "topic": TOPIC})
            counts[origin]["sent"] += 1
            publish = rng.uniform(2, 8) * MS if scheme == "async" else rng.uniform(21, 35) * MS
            outcome, done, stored = "ok", invoke + int(publish), True
            if origin == "a" and ks - 50 * MS <= invoke < ks:
                outcome, done, stored = "info", invoke + 500 * MS, False  # in flight at the kill
                if not recovered_done:
                    stored, recovered_done = True, True
            elif origin == "a" and ks <= invoke < kstop:
                outcome, done, stored = "fail", invoke + 2 * MS, False  # region a is down
            elif scheme == "strong" and origin == "b" and ks <= invoke < ks + S:
                outcome, done, stored = "info", invoke + 500 * MS, False  # no quorum in two regions
            elif scheme == "strong" and origin == "b" and ks + S <= invoke < ks + 3 * S // 2:
                done = ks + 3 * S // 2 + int(publish)  # stalled until the ensemble changes
            if outcome == "ok":
                lines[origin].append({"type": "ok", "time": done, **base, "msg_id": f"{origin}:{seq}:-1:0"})
                counts[origin]["acked"] += 1
            else:
                lines[origin].append({"type": outcome, "time": done, **base})
                counts[origin]["failed" if outcome == "fail" else "unknown"] += 1
            if not stored:
                continue
            ack = done if outcome == "ok" else invoke + 5 * MS
            for region in REGIONS:
                if region == origin:
                    lag = rng.uniform(1, 5) * MS
                elif scheme == "async":
                    lag = rng.uniform(20, 60) * MS
                    if origin == "a" and ks - UNREPLICATED_S * S <= ack < ks:
                        continue  # never left region a: lost in b
                    if origin == "a" and ack < ks <= ack + lag:
                        lag = kstop + 400 * MS - ack  # replicated after the restart
                else:
                    lag = rng.uniform(4, 12) * MS
                msg_id = f"{region}{origin}:{seq}:-1:0"
                arrivals[region].setdefault(producer, []).append((ack + int(lag), seq, msg_id))
                if (scheme == "async" and origin == "a" and region == "b" and len(duplicated) < 2
                        and ks - 1.5 * S <= ack < ks - UNREPLICATED_S * S):
                    duplicated.append((producer, seq))
                if region == "b" and origin == "b" and redelivered is None and ack > kstop + S:
                    redelivered = (producer, seq, msg_id)

    for region in REGIONS:
        consumer = f"{region}/c0"
        for producer, got in arrivals[region].items():
            got.sort(key=lambda x: x[1])
            last = 0
            for natural, seq, msg_id in got:
                t = natural
                if region == "a" and ks <= t < kstop + 500 * MS:
                    t = kstop + 500 * MS  # a's consumer is down: catch up after the restart
                t = max(t, last + 1000)  # a failover subscription delivers each producer's messages in order
                last = t
                recv = {"type": "recv", "time": t, "region": region, "process": consumer, "producer": producer,
                        "seq": seq, "msg_id": msg_id, "redelivery": 0, "subscription_type": "Failover"}
                lines[region].append(recv)
                if (producer, seq) in duplicated and region == "b":
                    lines[region].append({**recv, "time": kstop + 700 * MS + seq * 1000, "msg_id": f"dup:{seq}:-1:0"})
                if redelivered == (producer, seq, msg_id) and region == "b":
                    lines[region].append({**recv, "time": t + 40 * MS, "redelivery": 1})

    history = run_dir / "history"
    history.mkdir(parents=True, exist_ok=True)
    for region, events in lines.items():
        (history / f"{region}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (history / "controller.jsonl").write_text("".join(json.dumps(e) + "\n" for e in controller))

    schedule = [{"id": "f1", "fault": "kill a", "start_s": KILL[0], "stop_s": KILL[1]}]
    received = {r: sum(len(v) for v in arrivals[r].values()) for r in REGIONS}
    run = {
        "regions": list(REGIONS), "scheme": scheme, "run_id": f"r-test-{scheme}", "seed": seed, "topics": [TOPIC],
        "workload": {"rate": RATE, "duration_s": DURATION_S, "message_size": 100, "keys": 10, "producers": 1,
                     "subscription_type": "failover"},
        "clock_offsets_ns": {}, "start_at_ns": T0, "allowed": [],
        "workers": {r: {"fate": "finished", **counts[r], "received": received[r],
                        "achieved_rates": {f"{r}/p0": RATE}, "errors": []} for r in REGIONS},
        "drain": {"caught_up": True, "waited_s": 1.2},
        "scenario": "region-loss", "interrupted": False, "schedule": schedule, "error": None,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    (run_dir / "resolved.json").write_text(json.dumps({
        "scenario": {"name": "region-loss", "seed": seed, "topology": {"regions": list(REGIONS)}}, "scheme": scheme,
        "seed": seed, "schedule": schedule, "versions": {"geo-recon": "0.1.0", "pulsar": "4.0.7"},
        "machine": {"host": "test", "cpus": 2}}, indent=2))

    result = check_run(run_dir)
    write_results(result, run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    (run_dir / "scenario.yaml").write_text(yaml.safe_dump({
        "name": "region-loss", "seed": seed, "scheme": scheme, "topology": {"regions": list(REGIONS)},
        "workload": {"rate": RATE, "duration_s": DURATION_S}, "expectations": LIMITS[scheme],
        "faults": [{"kind": "kill", "target": "a", "at_s": KILL[0], "duration_s": KILL[1] - KILL[0]}]}))
    stored = judge_run_dir(run_dir)  # the real judge, as `geo-recon run` and `geo-recon judge` use it
    met = stored.met
    (run_dir / "verdict.json").write_text(json.dumps(stored.to_json(), indent=2))
    (run_dir / "outcome.json").write_text(json.dumps(
        {"met": met, "exit_code": {True: 0, False: 1, None: 2}[met], "error": None, "interrupted": False,
         "phases": {"lab up": 21.5, "configure": 0.7, "load and faults": 22.0, "check": 0.4}}, indent=2))
    return run_dir
