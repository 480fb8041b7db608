"""A hand-made history of a 2-region async region disaster (CONTRACT-13.md's events), for tests and the stored run.

Timeline (seconds after T0; each region's producer sends every 0.1 s, acked 3 ms later; replication a<->b
takes 0.5 s; consumers in the home cluster get a local message 5 ms after its ok):

* 0-20: normal. At 20.0 region a is lost (a ``lose`` start line).
* a's producer a/p0: its sends fail from 20.0 until it fails over to b at 23.0; from 23.2 they are acked by
  cluster b (``cluster: b``); at 32.0 it switches back to the rebuilt a (another failover line).
* a's consumer a/c0 (replicated subscription ``sub-a``) stops at 20.0, fails over to b at 24.0, and on b
  resumes from b's seq ``RESUME_B`` (so it receives again what it got between that and 20.0: re-consumed),
  skipping b's seqs in ``SKIPPED_B`` (gaps); then it stays on b.
* Region a is rebuilt at 30.0 (a ``lose`` stop line, ``rebuilt: true``).
* a's messages acked in (19.5, 20.0] never reach b: the RPO (5 messages, 19.603-20.003).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

S = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * S
END_S = 40.0
LOSS_S, REBUILD_S = 20.0, 30.0
PRODUCER_SWITCH_S, PRODUCER_BACK_S, CONSUMER_SWITCH_S = 23.0, 32.0, 24.0
FIRST_OK_AFTER_SWITCH_S = 23.2
REPLICATION_S = 0.5
RESUME_B = 185
SKIPPED_B = (200, 201)
N = int(END_S * 10)
TOPIC = "persistent://geo/recon/t0"


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000) * MS


def _send(region: str, seq: int, t: int, outcome: str, cluster: str | None = None) -> list[dict[str, Any]]:
    p = f"{region}/p0"
    base = {"f": "send", "region": region, "process": p, "producer": p, "seq": seq}
    done: dict[str, Any] = {"type": outcome, **base, "time": t + 3 * MS}
    if outcome == "ok":
        done["msg_id"] = f"{ord(cluster or region)}:{seq}:-1:0"
        if cluster is not None:
            done["cluster"] = cluster
    else:
        done["error"] = "Timeout"
    return [{"type": "invoke", **base, "time": t, "key": f"k{seq % 3}", "topic": TOPIC}, done]


def _recv(region: str, origin: str, seq: int, t: int, *, cluster: str | None = None,
          subscription: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "recv", "time": t, "region": region, "process": f"{region}/c0",
                           "producer": f"{origin}/p0", "seq": seq, "msg_id": f"{ord(cluster or region)}:{seq}:-1:0",
                           "redelivery": 0, "subscription_type": "Failover"}
    if subscription is not None:
        out["subscription"] = subscription
    if cluster is not None:
        out["cluster"] = cluster
    return out


def _failover(role: str, t: int, source: str, target: str) -> dict[str, Any]:
    client = "a/p0" if role == "producer" else "a/c0"
    return {"type": "failover", "time": t, "region": "a", "process": client, "client": client, "role": role,
            "from": source, "to": target, "mode": "auto"}


def histories(*, replicated: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The history files, by name."""
    sub_a = "sub-a" if replicated else None
    sub_b = "sub-b" if replicated else None
    a_send: list[dict[str, Any]] = []
    a_ok: dict[int, tuple[int, str | None]] = {}  # seq -> (ok time, serving cluster)
    for seq in range(N):
        t = at(seq / 10) + MS
        s = seq / 10
        if s < LOSS_S:
            a_send += _send("a", seq, t, "ok")
            a_ok[seq] = (t + 3 * MS, None)
        elif s < FIRST_OK_AFTER_SWITCH_S:
            a_send += _send("a", seq, t, "fail")
        elif s < PRODUCER_BACK_S:
            a_send += _send("a", seq, t, "ok", cluster="b")
            a_ok[seq] = (t + 3 * MS, "b")
        else:
            a_send += _send("a", seq, t, "ok")
            a_ok[seq] = (t + 3 * MS, None)
    b_send: list[dict[str, Any]] = []
    b_ok: dict[int, int] = {}
    for seq in range(N):
        t = at(seq / 10) + 2 * MS
        b_send += _send("b", seq, t, "ok")
        b_ok[seq] = t + 3 * MS
    loss, rebuild = at(LOSS_S), at(REBUILD_S)
    repl = round(REPLICATION_S * S)

    # b's consumer: b's messages locally; a's via replication (those acked by a within 0.5 s of the loss never
    # arrive; those acked by b on a's behalf arrive locally; those acked by the rebuilt a arrive by replication)
    b_recv = []
    for seq, t in b_ok.items():
        b_recv.append(_recv("b", "b", seq, t + 5 * MS, subscription=sub_b))
    for seq, (t, cluster) in a_ok.items():
        if cluster == "b":
            b_recv.append(_recv("b", "a", seq, t + 5 * MS, subscription=sub_b))
        elif t + repl < loss or t > rebuild:
            b_recv.append(_recv("b", "a", seq, t + repl, subscription=sub_b))
    b_recv.sort(key=lambda e: e["time"])

    # a's consumer: before the loss, both producers (b's by replication); after its failover, on cluster b
    a_recv = []
    for seq, (t, cluster) in a_ok.items():
        if cluster is None and t + 5 * MS < loss:
            a_recv.append(_recv("a", "a", seq, t + 5 * MS, subscription=sub_a))
    for seq, t in b_ok.items():
        if t + repl < loss:
            a_recv.append(_recv("a", "b", seq, t + repl, subscription=sub_a))
    # after its switch it reads cluster b's copy of the topic from RESUME_B on, in the order b stored it
    switch = at(CONSUMER_SWITCH_S)
    stored_in_b = ([(t, "b", seq) for seq, t in b_ok.items() if seq >= RESUME_B and seq not in SKIPPED_B]
                   + [(t, "a", seq) for seq, (t, cluster) in a_ok.items() if cluster == "b"]
                   + [(t + repl, "a", seq) for seq, (t, cluster) in a_ok.items() if cluster is None and t > rebuild])
    ready = switch + 100 * MS
    for arrived, origin, seq in sorted(stored_in_b):
        ready = max(ready + MS, arrived + 5 * MS)
        a_recv.append(_recv("a", origin, seq, ready, cluster="b", subscription=sub_a))
    a_recv.sort(key=lambda e: e["time"])

    faults = [
        {"type": "fault", "time": loss, "phase": "start", "fault": "lose", "target": "a", "id": "f1",
         "region_loss": True, "regions": ["a"], "verified": {"ports_refused": True, "data_deleted": True}},
        {"type": "fault", "time": rebuild, "phase": "stop", "fault": "lose", "target": "a", "id": "f1",
         "rebuilt": True},
    ]
    switches = [_failover("producer", at(PRODUCER_SWITCH_S), "a", "b"),
                _failover("consumer", at(CONSUMER_SWITCH_S), "a", "b"),
                _failover("producer", at(PRODUCER_BACK_S), "b", "a")]
    return {"a-send.jsonl": a_send, "b-send.jsonl": b_send, "a-recv.jsonl": a_recv + switches,
            "b-recv.jsonl": b_recv, "faults.jsonl": faults}


def run_json(*, scheme: str = "async", replicated: bool = True, name: str = "region-disaster") -> dict[str, Any]:
    return {"regions": ["a", "b"], "scheme": scheme, "run_id": f"r-{name}", "seed": 1, "topics": [TOPIC],
            "start_at_ns": T0, "clock_offsets_ns": {}, "allowed": [],
            "workload": {"rate": 10, "duration_s": END_S}, "failover": {"mode": "auto"},
            "replicated_subscription": replicated, "scenario": name, "interrupted": False, "error": None}


def write(run_dir: Path, *, files: dict[str, list[dict[str, Any]]] | None = None,
          run: dict[str, Any] | None = None) -> Path:
    """Write the run directory (history and run.json); return it."""
    (run_dir / "history").mkdir(parents=True, exist_ok=True)
    for name, lines in (files if files is not None else histories()).items():
        (run_dir / "history" / name).write_text("".join(json.dumps(x) + "\n" for x in lines))
    (run_dir / "run.json").write_text(json.dumps(run if run is not None else run_json(), indent=2) + "\n")
    return run_dir


STRONG_RESUME_S = 32.0  # writes resume 2 s after the rebuild


def strong_histories() -> dict[str, list[dict[str, Any]]]:
    """The same schedule under strong (one stretched cluster, no failover): while a is lost no write is acked in
    any region; 2 s after the rebuild they are again. Consumers get every acked message 5 ms after its ok."""
    files: dict[str, list[dict[str, Any]]] = {"a-send.jsonl": [], "b-send.jsonl": [], "a-recv.jsonl": [],
                                              "b-recv.jsonl": []}
    for region in "ab":
        for seq in range(N):
            s = seq / 10
            t = at(s) + MS
            ok = s < LOSS_S or s >= STRONG_RESUME_S
            files[f"{region}-send.jsonl"] += _send(region, seq, t, "ok" if ok else "fail")
            if ok:
                for observer in "ab":
                    files[f"{observer}-recv.jsonl"].append(_recv(observer, region, seq, t + 8 * MS))
    for observer in "ab":
        files[f"{observer}-recv.jsonl"].sort(key=lambda e: e["time"])
    files["faults.jsonl"] = histories()["faults.jsonl"]
    return files
